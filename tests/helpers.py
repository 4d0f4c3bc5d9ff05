"""Helpers the test modules share: a free port, the whole app served in-process."""

from __future__ import annotations

import contextlib
from pathlib import Path


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def served_app(models_dir: Path, outputs_dir: Path, **settings: object):
    """The whole app (page, API, worker) served in-process on a free local port: yields (app, base URL)."""
    from app import create_app
    from core.settings import Settings

    fields = {
        "port": free_port(),
        "device": "cpu",
        "default_model": "tiny-sd1",
        "user_presets_dir": outputs_dir.with_name(outputs_dir.name + "-user-presets"),
        **settings,
    }
    app = create_app(Settings(models_dir=models_dir, outputs_dir=outputs_dir, **fields))
    _, url, _ = app.launch(prevent_thread_lock=True)
    try:
        yield app, url.rstrip("/")
    finally:
        app.close()
