"""The catalog: what the backend offers (models, LoRAs, embeddings, VAEs, retouch tools, status) and the model
each user chose for requests that name none."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from core.backend import (
    Backend,
    BackendStatus,
    EmbeddingInfo,
    LoraInfo,
    ModelInfo,
    RetouchTools,
    VaeInfo,
)
from core.errors import UnknownLora, UnknownModel
from core.hires import LATENT_UPSCALE_MODES


class Catalog:
    """The backend's lists, read by both front ends, and each user's preferred model."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._preferred: dict[str, str] = {}  # user → model chosen for requests that name none
        self._lock = threading.Lock()

    def models(self, refresh: bool = False) -> list[ModelInfo]:
        """Models the backend can run, refused ones included (with the reason)."""
        return self.backend.models(refresh=refresh)

    def loras(self, refresh: bool = False) -> list[LoraInfo]:
        """LoRA files a prompt can name with <lora:name:weight>, refused ones included (with the reason)."""
        return self.backend.loras(refresh=refresh)

    def embeddings(self, refresh: bool = False) -> list[EmbeddingInfo]:
        """Textual-inversion embeddings (models/embeddings/), refused ones included (with the reason)."""
        return self.backend.embeddings(refresh=refresh)

    def vaes(self, refresh: bool = False) -> list[VaeInfo]:
        """VAEs under models/VAE/ a job can use instead of its model's own, refused ones included."""
        return self.backend.vaes(refresh=refresh)

    def default_model(self) -> str | None:
        return self.backend.default_model()

    def status(self) -> BackendStatus:
        return self.backend.status()

    def retouch_tools(self, refresh: bool = False) -> RetouchTools:
        return self.backend.retouch_tools(refresh=refresh)

    def hires_upscalers(self, refresh: bool = False) -> list[str]:
        """Upscalers hires fix can use: A1111's latent modes, then Lanczos, Nearest and the model upscalers."""
        return [*LATENT_UPSCALE_MODES, *self.retouch_tools(refresh=refresh).upscalers]

    # -- the model of a request ------------------------------------------------------------------------
    def prefer_model(self, user: str, name: str) -> None:
        """Use `name` for this user's requests that name no model (A1111's `sd_model_checkpoint` option)."""
        self._usable(name)
        with self._lock:
            self._preferred[user] = name

    def preferred_model(self, user: str) -> str | None:
        with self._lock:
            preferred = self._preferred.get(user)
        return preferred or self.default_model()

    def model_for(self, name: str, user: str) -> ModelInfo:
        """The model a request naming `name` ("" = the user's choice or the default) runs on; UnknownModel
        when there is none, it is not here or it cannot be used."""
        model = name or self.preferred_model(user)
        if not model:
            raise UnknownModel(
                "No model is available. Put a .safetensors checkpoint into models/ or start with --demo."
            )
        return self._usable(model, say_why=True)

    def _usable(self, name: str, *, say_why: bool = False) -> ModelInfo:
        """The model called `name`; UnknownModel (naming the usable ones, or why it is refused) otherwise."""
        known = {m.name: m for m in self.models()}
        model = known.get(name)
        if model is not None and model.refusal and say_why:
            raise UnknownModel(f"Model {name!r} cannot be used: {model.refusal}")
        if model is None or model.refusal:
            usable = ", ".join(sorted(n for n, m in known.items() if not m.refusal)) or "none"
            raise UnknownModel(f"Unknown model {name!r}. Available: {usable}")
        return model

    def check_loras(self, names: Sequence[str]) -> None:
        """UnknownLora when a LoRA is unknown or cannot be used (the message names the available ones)."""
        try:
            self.backend.check_loras(names)
        except ValueError as exc:
            raise UnknownLora(str(exc)) from exc
