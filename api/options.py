"""A1111 options over the API: what `/sdapi/v1/options` reads and writes, and what a job's options change.

The option keys, types and defaults are data in `core.a1111_options`; each user's values live in the Studio's
`OptionsStore` (studio/options.py). Here they meet the HTTP side: a request's effective options (the user's,
overlaid with the body's `override_settings`) become request fields (VAE, clip skip, ENSD), and the pictures a
generation answers with are re-encoded in `samples_format` (the gallery keeps its PNG: nothing is lost).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from PIL import Image

from core.a1111_options import HONOURED, OPTION_KEYS, unknown_keys
from core.backend import VaeInfo
from core.infotext import INFOTEXT_KEY
from core.requests import GenerationRequest
from studio.options import OptionsError, validated

OWN_VAE = ("Automatic", "None")
# Honoured per job (the rest of HONOURED is about the model choice and the option store itself).
JOB_KEYS = frozenset(
    {"sd_vae", "CLIP_stop_at_last_layers", "eta_noise_seed_delta", "samples_format", "jpeg_quality",
     "webp_lossless", "enable_pnginfo", "sd_model_checkpoint"}
)  # fmt: skip
_EXIF_USER_COMMENT = 0x9286
_EXIF_IFD = 0x8769


def resolve_vae(name: str, vaes: Sequence[VaeInfo], where: str = "sd_vae") -> str:
    """The VAE name `name` means ("Automatic"/"None" as they are); OptionsError naming the choices otherwise."""
    wanted = name.strip()
    for own in OWN_VAE:
        if wanted.casefold() == own.casefold():
            return own
    usable = [v for v in vaes if v.refusal is None]
    for match in (
        lambda v: v.name == wanted,
        lambda v: v.name.casefold() == wanted.casefold(),
        lambda v: v.name.rsplit(".", 1)[0].casefold() == wanted.casefold(),
    ):
        found = [v.name for v in usable if match(v)]
        if found:
            return found[0]
    refused = [v for v in vaes if v.refusal is not None and v.name.casefold() == wanted.casefold()]
    if refused:
        raise OptionsError(f"{where}: VAE {refused[0].name!r} cannot be used: {refused[0].refusal}")
    choices = ", ".join([*OWN_VAE, *(v.name for v in usable)])
    raise OptionsError(f"{where}: unknown VAE {name!r}. Available: {choices}")


def job_options(
    stored: Mapping[str, Any], overrides: Mapping[str, Any] | None, vaes: Callable[[], Sequence[VaeInfo]]
) -> tuple[dict[str, Any], list[str]]:
    """The options one job runs with (the user's, overlaid with the known `override_settings`) and warnings
    for the overrides that change nothing here. OptionsError naming `override_settings.<key>` for a bad value,
    or `sd_vae` for a VAE that is not (or no longer) there; `vaes` lists them (asked only when one is named)."""
    known = {k: v for k, v in (overrides or {}).items() if k in OPTION_KEYS and k != "sd_model_checkpoint"}
    checked = validated(known, "override_settings.")
    if "sd_vae" in checked:
        checked["sd_vae"] = resolve_vae(checked["sd_vae"], vaes(), "override_settings.sd_vae")
    elif str(stored.get("sd_vae", "Automatic")) not in OWN_VAE:
        checked["sd_vae"] = resolve_vae(str(stored["sd_vae"]), vaes(), "sd_vae (your option)")
    ineffective = sorted(k for k in checked if k not in JOB_KEYS)
    warnings = (
        [f"override_settings {ineffective} have no effect here (they are kept only as options)"]
        if ineffective
        else []
    )
    return {**stored, **checked}, warnings


def request_fields(options: Mapping[str, Any]) -> dict[str, Any]:
    """The request fields the options set (VAE, clip skip, ENSD)."""
    vae = str(options.get("sd_vae") or "")
    return {
        "vae": "" if vae in OWN_VAE else vae,
        "clip_skip": int(options.get("CLIP_stop_at_last_layers", 1)),
        "eta_noise_seed_delta": int(options.get("eta_noise_seed_delta", 0)),
    }


def with_options(request: GenerationRequest, options: Mapping[str, Any]) -> GenerationRequest:
    """`request` with the fields its options set (values already checked by the option types)."""
    fields = request_fields(options)
    changed = {k: v for k, v in fields.items() if getattr(request, k) != v}
    return request.model_copy(update=changed) if changed else request


def encode_answer(png: bytes, infotext: str, options: Mapping[str, Any]) -> bytes:
    """A gallery PNG as the API answers with it: in `samples_format`, with the infotext as A1111 carries it
    (PNG: the `parameters` chunk; JPEG/WebP: EXIF UserComment), none with `enable_pnginfo` false."""
    fmt = str(options.get("samples_format", "png")).lower()
    keep_info = bool(options.get("enable_pnginfo", True))
    if fmt == "png" and keep_info:
        return png
    image = Image.open(io.BytesIO(png))
    image.load()
    out = io.BytesIO()
    if fmt == "png":
        image.save(out, format="PNG")
        return out.getvalue()
    exif = Image.Exif()
    if keep_info and infotext:
        exif.get_ifd(_EXIF_IFD)[_EXIF_USER_COMMENT] = b"UNICODE\0" + infotext.encode("utf-16-be")
    quality = int(options.get("jpeg_quality", 80))
    if fmt in ("jpg", "jpeg"):
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        image.save(out, format="JPEG", quality=quality, exif=exif.tobytes())
    else:
        lossless = bool(options.get("webp_lossless", False))
        image.save(
            out, format="WEBP", quality=100 if lossless else quality, lossless=lossless, exif=exif.tobytes()
        )
    return out.getvalue()


def read_user_comment(data: bytes) -> str | None:
    """The infotext a JPEG/WebP answer carries in its EXIF UserComment (A1111's encoding), else None."""
    image = Image.open(io.BytesIO(data))
    raw = image.getexif().get_ifd(_EXIF_IFD).get(_EXIF_USER_COMMENT)
    if not isinstance(raw, bytes):
        return image.info.get(INFOTEXT_KEY)
    if raw.startswith(b"UNICODE\0"):
        return raw[8:].decode("utf-16-be")
    return raw.split(b"\0", 1)[-1].decode("utf-8", "replace")


__all__ = [
    "HONOURED",
    "OptionsError",
    "encode_answer",
    "job_options",
    "resolve_vae",
    "unknown_keys",
    "with_options",
]
