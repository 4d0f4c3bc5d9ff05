"""Easel: composition root. Flags → Settings → Studio → Gradio page → launch."""

from __future__ import annotations

import logging
import socket
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.settings import Settings, settings_from_args
from core.throttle import LoginThrottle
from core.users import AuthConfigError, UserBook

if TYPE_CHECKING:  # the heavy imports (torch, gradio) wait until the app is built, so --help is instant
    import gradio as gr

    from api.hosts import AllowedHosts
    from api.sessions import SessionTimes
    from core.backend import Backend
    from pipelines.registry import ModelRegistry
    from studio import Studio

log = logging.getLogger("easel")

# The tabs whose request controls `set_start_values` sets (their ids are `{tab}_{field}`, e.g. txt2img_steps);
# retouch_steps is SD upscale's.
START_VALUE_TABS = ("txt2img", "img2img", "inpaint", "retouch")
BACKEND_START_S = 10.0  # seconds after the page is up: the deferred backend is built by then at the latest
MODEL_LIST_FILE = ".easel-models.json"  # in the outputs folder: the last model scan, for a quick restart


@dataclass
class App:
    settings: Settings
    studio: Studio
    page: gr.Blocks
    users: UserBook
    api_users: UserBook
    throttle: LoginThrottle = field(default_factory=LoginThrottle)  # wrong passwords: page and API together
    hosts: AllowedHosts | None = None  # the Host names served, set by launch()
    sessions: SessionTimes | None = None  # when each page login was made, set by launch()

    def launch(self, **overrides: object) -> tuple[object, str, str | None]:
        """Start the worker and the web server; returns Gradio's (app, local_url, share_url)."""
        from starlette.middleware import Middleware

        from api.hidden_files import HiddenFiles
        from api.hosts import AllowedHosts, HostCheck
        from api.origin import SameOriginWrites
        from api.sessions import LoginGuard, SessionTimes
        from ui.layout import launch_kwargs

        self.studio.start()
        self.page.queue(max_size=self.settings.queue_size * 4, default_concurrency_limit=8)
        kwargs = launch_kwargs(str(self.settings.outputs_dir.resolve()), self.settings.max_upload_mb)
        host = "0.0.0.0" if self.settings.listen else self.settings.host
        kwargs.update(server_name=host, server_port=self.settings.port, quiet=True, share=self.settings.share)
        if self.users:
            kwargs["auth"] = self.users.authenticate
            kwargs["auth_message"] = "Easel: log in with the user name and password you were given."
        self.hosts = AllowedHosts.for_server(
            self.settings.host, listen=self.settings.listen, extra=self.settings.allowed_hosts
        )
        self.sessions = SessionTimes(self.settings.session_hours * 3600)
        kwargs["app_kwargs"] = {
            "middleware": [  # outermost first: an unknown Host is refused before anything else looks at it
                Middleware(HostCheck, hosts=self.hosts),
                Middleware(SameOriginWrites),
                Middleware(HiddenFiles, roots=[self.settings.outputs_dir]),  # no dot-files from outputs/
                Middleware(LoginGuard, throttle=self.throttle, sessions=self.sessions),
            ],
        }
        if self.users or self.api_users:  # the list of every route is for those who may use them
            kwargs["app_kwargs"]["openapi_url"] = None
        kwargs.update(overrides)
        result = self.page.launch(**kwargs)
        share_url = result[2] if isinstance(result, tuple) and len(result) > 2 else None
        if isinstance(share_url, str) and share_url:
            from urllib.parse import urlsplit

            self.hosts.add(urlsplit(share_url).hostname or "")
        if self.settings.api:
            from api import queue, retouch
            from api.sdapi import build_router

            api_users = self.users.merged(self.api_users)
            self.page.app.include_router(
                build_router(self.studio, api_users, self.throttle, settings=self.settings)
            )
            self.page.app.include_router(retouch.build_router(self.studio, api_users, self.throttle))
            self.page.app.include_router(queue.build_router(self.studio, api_users, self.throttle))
        return result

    def close(self) -> None:
        self.page.close()
        self.studio.close()


def build_studio(settings: Settings, users: UserBook | None = None, *, deferred: bool = False) -> Studio:
    """Wire the services: registry, device, pipeline manager, local backend, gallery; `users` says who is admin.

    `deferred`: the local backend (torch, the device, the pipeline manager) is built on a background thread
    once `start()` is called on it, so that the page is served first (pipelines/deferred.py)."""
    from core.presets import PresetBook
    from gallery.store import Gallery
    from pipelines.registry import ModelRegistry
    from studio import Studio

    registry = ModelRegistry(
        settings.models_dir,
        hub_ids=settings.model,
        demo=settings.demo,
        demo_dir=settings.models_dir / ".demo",
    )
    if deferred:
        from pipelines.deferred import DeferredBackend

        backend: Backend = DeferredBackend(
            registry,
            lambda: local_backend(settings, registry),
            preferred=settings.default_model,
            model_list_file=settings.outputs_dir / MODEL_LIST_FILE,
        )
    else:
        backend = local_backend(settings, registry)
    settings.outputs_dir.mkdir(parents=True, exist_ok=True)
    presets = PresetBook(settings.presets_dir, settings.user_presets_dir or settings.presets_dir / "user")
    return Studio(
        backend,
        Gallery(settings.outputs_dir),
        queue_size=settings.queue_size,
        max_queued_per_user=settings.max_queued_per_user,
        max_batch=settings.max_batch or None,  # 0: the backend sizes it from free GPU memory
        presets=presets,
        users=users,
    )


def local_backend(settings: Settings, registry: ModelRegistry) -> Backend:
    """The backend that runs the models in this process (imports torch and diffusers, picks the device)."""
    from huggingface_hub import constants as hub_constants

    from pipelines.backend import LocalBackend
    from pipelines.device import DeviceChoice, choose_device
    from pipelines.loader import load_pipeline
    from pipelines.manager import PipelineManager
    from pipelines.registry import ModelEntry

    device = choose_device(settings.device, settings.dtype)

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
    return LocalBackend(
        registry, manager, preview_every=settings.preview_every, preferred=settings.default_model
    )


def create_app(settings: Settings, *, deferred: bool = False) -> App:
    """The app for `settings`; `deferred` (as `main` starts it): the page is up before torch is imported."""
    users, api_users = load_users(settings)
    check_exposure(settings, users)
    from ui.layout import PageOptions, build_page

    studio = build_studio(settings, users.merged(api_users), deferred=deferred)
    options = PageOptions(open_to_all=settings.exposed() and not users)
    page = build_page(studio, options)
    set_start_values(page, settings.start_values())
    if deferred:  # the backend is built once a browser has the page (or when a job or main's timer asks)
        with page:
            page.load(studio.backend.start, api_visibility="private", queue=False)
    return App(settings=settings, studio=studio, page=page, users=users, api_users=api_users)


def set_start_values(page: gr.Blocks, values: Mapping[str, object]) -> None:
    """Start the generation tabs' controls of these request fields (e.g. `steps`) at these values (the demo's
    small sizes), instead of the request model's defaults. The controls are found by their element ids."""
    wanted = {f"{tab}_{name}": value for tab in START_VALUE_TABS for name, value in values.items()}
    for block in page.blocks.values():
        elem_id = getattr(block, "elem_id", None)
        if elem_id in wanted:
            block.value = wanted[elem_id]


def load_users(settings: Settings) -> tuple[UserBook, UserBook]:
    """(logins for the page and the API, extra logins for the API only) — a clear exit on a bad entry."""
    try:
        users = UserBook.from_sources(settings.auth, settings.auth_file)
        api_users = UserBook.from_sources(settings.api_auth)
    except AuthConfigError as exc:
        raise SystemExit(f"Bad login configuration: {exc}") from None
    return users, api_users


def check_exposure(settings: Settings, users: UserBook) -> None:
    """Serving beyond this computer needs logins, unless the owner explicitly says otherwise."""
    if not settings.exposed() or users or settings.unsafe_no_auth:
        return
    what = "--share" if settings.share else "--listen" if settings.listen else f"--host {settings.host}"
    raise SystemExit(
        f"Refusing to start with {what} and no login: anyone who can reach the server could use it.\n"
        "Add logins with --auth user:password (repeatable), --auth-file FILE (one user:password a line), or "
        "EASEL_AUTH=user:password,user2:password2 — or pass --unsafe-no-auth if you really want it open."
    )


def announce(settings: Settings, local_url: str, share_url: str | None) -> None:
    """Say where the app can be reached, and whether the share link could be made."""
    log.info("Easel is running on %s", local_url)
    if settings.listen:
        log.info("On your network: http://%s:%d", lan_address(), settings.port)
    if settings.share:
        if share_url:
            log.info("Public share link: %s", share_url)
        else:
            log.warning(
                "The public share link could not be created (no internet connection?); serving locally only."
            )
    if settings.api:
        log.info("AUTOMATIC1111-compatible API: %s/sdapi/v1", local_url.rstrip("/"))


def lan_address() -> str:
    """This computer's first non-loopback IPv4 address (for the "on your network" line)."""
    import psutil

    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                return address.address
    return "127.0.0.1"


def port_is_free(host: str, port: int) -> bool:
    """True when a server could listen on host:port now (binding as the web server does)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return True  # an unknown host name: the web server's own error says so
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError:
            return False
    return True


def check_port(settings: Settings) -> None:
    """Exit with status 2 and a one-line hint (the next free port) when the port is taken: before anything
    slow happens (the model scan, importing Gradio and torch)."""
    host = "0.0.0.0" if settings.listen else settings.host
    if port_is_free(host, settings.port):
        return
    free = next(
        (p for p in range(settings.port + 1, min(settings.port + 100, 65536)) if port_is_free(host, p)), None
    )
    hint = f"try --port {free}" if free else "pass another one with --port"
    sys.stderr.write(f"port {settings.port} is busy: {hint}\n")
    raise SystemExit(2)


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings_from_args(argv)
    check_exposure(settings, load_users(settings)[0])  # a refused configuration is said first, then
    check_port(settings)  # a busy port: both before anything slow (create_app checks the logins again)
    app = create_app(settings, deferred=True)
    models = [m for m in app.studio.catalog.models() if not m.refusal]
    if all(m.demo for m in models):
        log.warning(
            "No model found in %s. Put a .safetensors checkpoint (SD 1.x, SD 2.x or SDXL) or a diffusers folder "
            "there, or pass --model REPO_ID. Meanwhile a tiny demo model with random weights is offered.",
            settings.models_dir.resolve(),
        )
    _, local_url, share_url = app.launch(prevent_thread_lock=True)
    announce(settings, local_url, share_url)
    # torch, the device and the pipeline manager: when a browser has loaded the page (not to slow it down), when
    # a job needs them, or after BACKEND_START_S at the latest
    timer = threading.Timer(BACKEND_START_S, app.studio.backend.start)
    timer.daemon = True
    timer.start()
    try:
        app.page.block_thread()
    finally:
        app.close()


if __name__ == "__main__":
    main(sys.argv[1:])
