"""Settings: one typed class, filled from EASEL_* environment variables and command-line flags."""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Device = Literal["auto", "cuda", "mps", "cpu"]
DType = Literal["auto", "fp16", "bf16", "fp32"]

# What the page starts at in demo mode: small pictures in few steps, so every control answers in seconds on a CPU.
DEMO_START_VALUES = {"width": 256, "height": 256, "steps": 8}
ROOT = Path(__file__).resolve().parent.parent  # Easel's folder (scripts/start runs app.py from there)
HELP_WIDTH = (
    80  # the help is laid out the same on every terminal (scripts/start prints a copy before installing)
)


class Settings(BaseSettings):
    """Everything Easel can be configured with. Each field is also a CLI flag (see `python app.py --help`)."""

    model_config = SettingsConfigDict(env_prefix="EASEL_", extra="forbid", validate_default=True)

    host: str = Field("127.0.0.1", description="Address to bind. The default serves this computer only.")
    port: int = Field(7860, ge=1, le=65535, description="TCP port of the web UI.")
    models_dir: Path = Field(
        Path("models"), description="Folder with checkpoints (.safetensors files or diffusers folders)."
    )
    outputs_dir: Path = Field(
        Path("outputs"), description="Folder where generated images and the gallery index live."
    )
    model: list[str] = Field(
        default_factory=list,
        description="Hub repo id(s) to offer besides the files in models/ (downloaded when the network allows).",
    )
    default_model: str = Field("", description="Model selected at start (a name from the model list).")
    presets_dir: Path = Field(
        ROOT / "presets",
        description="Folder with the shipped presets (*.json) and styles.csv.",
    )
    user_presets_dir: Path | None = Field(
        None, description="Folder for the team's own presets and styles (default: <presets-dir>/user)."
    )
    demo: bool = Field(
        False,
        description="Offer a tiny random-weight demo model (pictures are noise); the page starts at 256x256 "
        "pixels and 8 steps.",
    )
    device: Device = Field("auto", description="Compute device: auto picks cuda, then mps, then cpu.")
    dtype: DType = Field("auto", description="Weights precision: auto = fp16 on cuda/mps, fp32 on cpu.")
    max_gpu_models: int = Field(
        1, ge=1, le=16, description="Models kept resident on the compute device (LRU)."
    )
    max_ram_models: int = Field(
        1, ge=0, le=16, description="Further models kept in CPU RAM, ready to move back quickly (LRU)."
    )
    xformers: bool = Field(
        False, description="Use xformers attention (CUDA only; needs requirements-gpu.txt)."
    )
    queue_size: int = Field(
        32, ge=1, le=10_000, description="Jobs waiting at most; more get a 'queue full' error."
    )
    preview_every: int = Field(3, ge=0, le=150, description="Live preview every N steps (0 = off).")
    max_upload_mb: int = Field(25, ge=1, le=1024, description="Largest file accepted from a browser, in MB.")
    listen: bool = Field(False, description="Serve on every network interface (0.0.0.0); needs --auth.")
    share: bool = Field(False, description="Create a public Gradio share link; needs --auth.")
    auth: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="A login as user:password (repeatable; EASEL_AUTH takes several, comma-separated).",
    )
    auth_file: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="File of logins, one user:password (or user:pbkdf2 hash) a line, ':admin' for admins.",
    )
    api: bool = Field(False, description="Serve the AUTOMATIC1111-compatible HTTP API under /sdapi/v1.")
    api_auth: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Extra user:password logins for the HTTP API only (repeatable)."
    )
    unsafe_no_auth: bool = Field(
        False, description="Allow --listen/--share without logins: anyone who reaches the server can use it."
    )
    max_queued_per_user: int = Field(
        4, ge=1, le=10_000, description="Jobs one user may have waiting at once (admins are exempt)."
    )
    max_batch: int = Field(
        0,
        ge=0,
        le=64,
        description="Images of several users' waiting jobs sampled as one batch when they share model, size and "
        "settings (1: every job alone; 0: sized from free GPU memory, 1 on a CPU).",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Further host names the server answers to, e.g. a reverse proxy's (repeatable; '*.example.com' "
        "matches its subdomains). This computer's own names and addresses and the share link always are.",
    )
    session_hours: float = Field(
        24, gt=0, le=24 * 366, description="Hours a login in the page lasts before it must be entered again."
    )

    @field_validator("auth", "api_auth", "auth_file", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _host_names(cls, value: object) -> object:
        """Names from a comma-separated string or from each of several flags, lower-cased."""
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            return value
        return [part.strip().lower() for item in items for part in str(item).split(",") if part.strip()]

    def start_values(self) -> dict[str, int]:
        """Request fields whose starting value in the page differs from the request model's default."""
        return dict(DEMO_START_VALUES) if self.demo else {}

    def exposed(self) -> bool:
        """True when the server can be reached from other computers."""
        if self.listen or self.share:
            return True
        try:
            return not (self.host == "localhost" or ipaddress.ip_address(self.host).is_loopback)
        except ValueError:
            return True


def build_parser() -> argparse.ArgumentParser:
    """An argparse parser whose flags mirror the Settings fields (A1111-style names)."""
    parser = argparse.ArgumentParser(
        prog="app.py",
        description="Easel: a self-hosted Stable Diffusion studio. Every flag can also be set as EASEL_<NAME>.",
        formatter_class=lambda prog: argparse.HelpFormatter(prog, width=HELP_WIDTH),
    )
    for name, field in Settings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        help_text = f"{field.description} (env EASEL_{name.upper()})"
        if field.annotation is bool:
            parser.add_argument(flag, action="store_true", default=None, help=help_text)
        elif name in ("model", "auth", "auth_file", "api_auth", "allowed_hosts"):
            metavar = {"model": "REPO_ID", "auth_file": "PATH", "allowed_hosts": "HOST"}.get(
                name, "USER:PASSWORD"
            )
            parser.add_argument(flag, action="append", default=None, metavar=metavar, help=help_text)
        else:
            choices = getattr(field.annotation, "__args__", None) if name in ("device", "dtype") else None
            default = field.default
            if isinstance(default, Path) and default.is_relative_to(ROOT):
                default = default.relative_to(ROOT)  # the same help wherever Easel's folder is
            parser.add_argument(
                flag,
                default=None,
                choices=choices,
                metavar=None if choices else name.upper(),
                help=f"{help_text} [default: {default}]",
            )
    return parser


def settings_from_args(argv: Sequence[str] | None = None) -> Settings:
    """Settings from environment variables, overridden by the flags given on the command line."""
    args = build_parser().parse_args(argv)
    given = {k: v for k, v in vars(args).items() if v is not None}
    return Settings(**given)
