"""Easel: composition root. Flags → Settings → Studio → Gradio page → launch."""

from __future__ import annotations

import ipaddress
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.settings import Settings, settings_from_args

if TYPE_CHECKING:  # the heavy imports (torch, gradio) wait until the app is built, so --help is instant
    import gradio as gr

    from studio import Studio

log = logging.getLogger("easel")


@dataclass
class App:
    settings: Settings
    studio: Studio
    page: gr.Blocks

    def launch(self, **overrides: object) -> tuple[object, str, str | None]:
        """Start the worker and the web server; returns Gradio's (app, local_url, share_url)."""
        from starlette.middleware import Middleware

        from api.origin import SameOriginWrites
        from ui.layout import launch_kwargs

        self.studio.start()
        self.page.queue(max_size=self.settings.queue_size * 4, default_concurrency_limit=8)
        kwargs = launch_kwargs(str(self.settings.outputs_dir.resolve()), self.settings.max_upload_mb)
        kwargs.update(server_name=self.settings.host, server_port=self.settings.port, quiet=True)
        kwargs["app_kwargs"] = {"middleware": [Middleware(SameOriginWrites)]}
        kwargs.update(overrides)
        return self.page.launch(**kwargs)

    def close(self) -> None:
        self.page.close()
        self.studio.close()


def build_studio(settings: Settings) -> Studio:
    """Wire the services: registry, device, pipeline manager, local backend, gallery."""
    from huggingface_hub import constants as hub_constants

    from gallery.store import Gallery
    from pipelines.backend import LocalBackend
    from pipelines.device import DeviceChoice, choose_device
    from pipelines.loader import load_pipeline
    from pipelines.manager import PipelineManager
    from pipelines.registry import ModelEntry, ModelRegistry
    from studio import Studio

    device = choose_device(settings.device, settings.dtype)
    registry = ModelRegistry(
        settings.models_dir,
        hub_ids=settings.model,
        demo=settings.demo,
        demo_dir=settings.models_dir / ".demo",
    )

    def load(entry: ModelEntry, where: DeviceChoice):
        return load_pipeline(
            entry, device=where.device, dtype=where.dtype, local_files_only=bool(hub_constants.HF_HUB_OFFLINE)
        )

    manager = PipelineManager(
        load,
        device,
        max_gpu_models=settings.max_gpu_models,
        max_ram_models=settings.max_ram_models,
        xformers=settings.xformers,
    )
    backend = LocalBackend(
        registry, manager, preview_every=settings.preview_every, preferred=settings.default_model
    )
    settings.outputs_dir.mkdir(parents=True, exist_ok=True)
    return Studio(backend, Gallery(settings.outputs_dir), queue_size=settings.queue_size)


def create_app(settings: Settings) -> App:
    from ui.layout import build_page

    check_exposure(settings)
    studio = build_studio(settings)
    return App(settings=settings, studio=studio, page=build_page(studio))


def check_exposure(settings: Settings) -> None:
    """Refuse to serve beyond this computer: this version has no authentication."""
    host = settings.host
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(
            f"Refusing to listen on {host}: Easel has no login yet, so anyone who can reach this address could use "
            "it. Serve on 127.0.0.1 (the default) and reach it through an SSH tunnel instead."
        )


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings_from_args(argv)
    app = create_app(settings)
    models = [m for m in app.studio.models() if not m.refused]
    if all(m.demo for m in models):
        log.warning(
            "No model found in %s. Put a .safetensors checkpoint (SD 1.x, SD 2.x or SDXL) or a diffusers folder "
            "there, or pass --model REPO_ID. Meanwhile a tiny demo model with random weights is offered.",
            settings.models_dir.resolve(),
        )
    _, local_url, _ = app.launch(prevent_thread_lock=True)
    log.info("Easel is running on %s", local_url)
    try:
        app.page.block_thread()
    finally:
        app.close()


if __name__ == "__main__":
    main(sys.argv[1:])
