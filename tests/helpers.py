"""Helpers the test modules share: a free port, the whole app served in-process, PNGs in base64 as the HTTP
APIs carry them, a plain "product" picture for retouch tests, and a wait on a condition another thread meets."""

from __future__ import annotations

import base64
import contextlib
import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from PIL import Image, ImageDraw, PngImagePlugin


def png_b64(image: Image.Image, *, prefix: bool = False, **text_chunks: str) -> str:
    """`image` as base64 PNG text, with `text_chunks` as PNG text chunks; `prefix` adds the data-URL head."""
    chunks = PngImagePlugin.PngInfo()
    for key, value in text_chunks.items():
        chunks.add_text(key, value)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=chunks)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f"data:image/png;base64,{encoded}" if prefix else encoded


def open_b64(encoded: str) -> Image.Image:
    """The picture in base64 text, fully read."""
    image = Image.open(io.BytesIO(base64.b64decode(encoded)))
    image.load()
    return image


def flat_product(
    size: tuple[int, int] = (96, 64),
    *,
    box: tuple[int, int, int, int] | None = None,
    colour: tuple[int, int, int] = (190, 30, 40),
    background: tuple[int, int, int] = (236, 236, 236),
    shape: Literal["ellipse", "rectangle"] = "ellipse",
) -> Image.Image:
    """A plain "product" (a red disc unless told otherwise) on a flat light background. `box` defaults to the
    middle third across and the middle three fifths down."""
    width, height = size
    box = box or (width // 3, height // 5, 2 * width // 3, 4 * height // 5)
    image = Image.new("RGB", size, background)
    getattr(ImageDraw.Draw(image), shape)(box, fill=colour)
    return image


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Poll `predicate` (state another thread or process changes) until it is truthy; its value. AssertionError
    after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out")


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
