"""Resolving a request once, at submit: its model, styles, LoRA tags, hires upscaler, retouch tools and the
seed of every image are checked and made concrete here, so that a bad one is refused before anything queues
and the backend only executes what it gets."""

from __future__ import annotations

from collections.abc import Sequence

from core.errors import PresetError, StyleProblem, UnknownLora, UnknownPreset, UnknownStyle, UnknownTool
from core.presets import PresetBook
from core.requests import MAX_PROMPT_CHARS, GenerationRequest, Txt2ImgRequest
from core.resolved import ResolvedGeneration
from core.retouch import RetouchRequest
from core.retouch_ops import Op as RetouchOp
from core.retouch_ops import RemoveBackgroundOp, ReplaceBackgroundOp, RestoreFacesOp
from core.seeds import image_seed, random_seed
from core.styles import Style, apply_styles
from studio.catalog import Catalog


class Resolver:
    """Turns a submitted request into the one a job runs: everything named exists, everything is concrete."""

    def __init__(self, catalog: Catalog, presets: PresetBook) -> None:
        self.catalog = catalog
        self.presets = presets

    def resolve(
        self, request: GenerationRequest | RetouchRequest, user: str
    ) -> tuple[GenerationRequest | RetouchRequest, ResolvedGeneration | None]:
        """The request as its job runs it and, for a generation, what it comes to (prompt without LoRA tags,
        the tags, the concrete schedule, every image's seed). UnknownModel, UnknownLora, UnknownStyle,
        StyleProblem, UnknownTool (all RequestRefused) when something it names is not here or cannot be used."""
        if isinstance(request, RetouchRequest):
            return self.resolve_retouch(request, user), None
        return self.resolve_generation(request, user)

    def resolve_generation(
        self, request: GenerationRequest, user: str
    ) -> tuple[GenerationRequest, ResolvedGeneration]:
        """A generation request with its model, styled prompts and seeds, and what it comes to; its LoRAs and
        hires upscaler checked."""
        updates: dict[str, object] = {"model": self.catalog.model_for(request.model, user).name}
        if request.styles:  # expanded once, here: the job carries the final prompt and the style names
            updates["prompt"], updates["negative_prompt"] = self.styled(request)
        if isinstance(request, Txt2ImgRequest) and request.enable_hr:
            self.check_hires_upscaler(request.hr_upscaler)
        if request.seed == -1:
            updates["seed"] = random_seed(request.image_count)
        if request.subseed == -1 and request.subseed_strength > 0:  # image i uses subseed + i
            updates["subseed"] = random_seed(request.image_count)
        resolved_request = request.model_copy(update=updates)
        try:  # the <lora:…> tags are parsed here, once: the backend gets them with the prompt without them
            resolved = ResolvedGeneration.of(resolved_request)
        except ValueError as exc:
            raise UnknownLora(str(exc)) from exc
        self.catalog.check_loras([tag.name for tag in resolved.loras])
        return resolved_request, resolved

    def check_hires_upscaler(self, name: str) -> None:
        """UnknownTool when hires fix names an upscaler that is not here."""
        available = self.catalog.hires_upscalers()
        if name not in available:
            raise UnknownTool(f"Unknown hires upscaler {name!r}. Available: {', '.join(available)}")

    # -- styles ------------------------------------------------------------------------------------------
    def styled(self, request: GenerationRequest) -> tuple[str, str]:
        """The request's prompt and negative prompt with its styles applied (StyleProblem when too long)."""
        styles = self.named_styles(request.styles)
        prompt, negative = apply_styles(request.prompt, request.negative_prompt, styles)
        for what, text in (("prompt", prompt), ("negative prompt", negative)):
            if len(text) > MAX_PROMPT_CHARS:
                raise StyleProblem(
                    f"With its styles the {what} has {len(text)} characters; at most {MAX_PROMPT_CHARS} fit"
                )
        return prompt, negative

    def named_styles(self, names: Sequence[str]) -> list[Style]:
        try:
            return self.presets.styles_named(names)
        except KeyError as exc:
            known = ", ".join(sorted(s.name for s in self.presets.styles())) or "none"
            raise UnknownStyle(f"Unknown style {exc.args[0]!r}. Available: {known}") from None

    def styled_background(self, op: ReplaceBackgroundOp) -> ReplaceBackgroundOp:
        """The operation with its preset and styles applied (as `styled` does for generation): `resolve` does
        this once; the Retouch tab calls it to show the final prompt. UnknownPreset, UnknownStyle or
        StyleProblem when they cannot be applied."""
        preset = None
        if op.preset:
            try:
                preset = self.presets.get(op.preset)
            except PresetError:
                known = ", ".join(sorted(p.name for p in self.presets.presets())) or "none"
                raise UnknownPreset(f"Unknown preset {op.preset!r}. Available: {known}") from None
        styles = self.named_styles(op.style_names(preset))
        try:
            return op.styled(preset, styles)
        except ValueError as exc:
            raise StyleProblem(f"replace_background with its preset and styles: {exc}") from None

    # -- retouch -----------------------------------------------------------------------------------------
    def resolve_retouch(self, request: RetouchRequest, user: str) -> RetouchRequest:
        """The chain with its tools checked, a model for each diffusion step (only those need one) and
        concrete seeds: the request's seed, and seed + i for the i-th diffusion step whose seed is -1."""
        self.check_tools(request)
        seed = request.seed if request.seed != -1 else random_seed(len(request.diffusion_ops))
        ops: list[RetouchOp] = []
        nth = 0
        for op in request.ops:
            if isinstance(op, ReplaceBackgroundOp) and (op.preset or op.styles):
                op = self.styled_background(op)
            if op.needs_model:
                op = self._with_model_and_seed(op, user, image_seed(seed, nth))
                nth += 1
            ops.append(op)
        return request.model_copy(update={"ops": ops, "seed": seed})

    def _with_model_and_seed(self, op: RetouchOp, user: str, seed: int) -> RetouchOp:
        """A diffusion step with its model resolved and, when it asks for a random one, `seed`."""
        model = str(getattr(op, "model", ""))
        updates: dict[str, object] = {"model": self.catalog.model_for(model, user).name}
        if getattr(op, "seed", None) == -1:
            updates["seed"] = seed
        return op.model_copy(update=updates)

    def check_tools(self, request: RetouchRequest) -> None:
        """UnknownTool when an operation names an upscaler, face restorer or segmenter that is not here."""
        tools = self.catalog.retouch_tools()
        for op in request.ops:
            upscaler = getattr(op, "upscaler", None)
            if upscaler is not None and upscaler not in tools.upscalers:
                raise UnknownTool(f"Unknown upscaler {upscaler!r}. Available: {', '.join(tools.upscalers)}")
            if isinstance(op, RestoreFacesOp) and op.model and op.model not in tools.face_restorers:
                names = ", ".join(tools.face_restorers) or "none (put a model file into models/)"
                raise UnknownTool(f"Unknown face restoration model {op.model!r}. Available: {names}")
            segmenter = op.model if isinstance(op, RemoveBackgroundOp) else getattr(op, "segmenter", "")
            if isinstance(op, RemoveBackgroundOp | ReplaceBackgroundOp) and segmenter:
                if segmenter not in tools.segmenters:
                    names = ", ".join(tools.segmenters) or "none (put a model file into models/)"
                    raise UnknownTool(f"Unknown background removal model {segmenter!r}. Available: {names}")
