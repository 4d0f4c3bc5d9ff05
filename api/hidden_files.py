"""Never serve hidden files from the outputs folder: the gallery index (`.easel-index.sqlite3` and its -wal,
-shm files, which hold every prompt), the favourites file, the trash, cached thumbnails, temp files.

Gradio's file route (`/gradio_api/file=PATH`, and the older `/file=PATH`, `/file/PATH`) serves any file under
its `allowed_paths`, which hold the outputs folder. Its `blocked_paths` name the gallery's own files and the
trash (see `gallery.private_paths`), but cannot say "anything whose name starts with a dot"; this middleware
does: a file route request for a path inside a guarded folder that has a component starting with "." gets
404 before Gradio sees it. Pictures shown in the page are copies in Gradio's cache, so nothing legitimate is
refused.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

_FILE_ROUTE = re.compile(r"/file[=/](?P<path>.*)$", re.DOTALL)


def is_hidden(path: str, roots: Iterable[Path]) -> bool:
    """True when `path` (as the file route would read it) lies in one of `roots` and any part of it below
    the root starts with "." (so `..` tricks are judged after they are resolved, too)."""
    if not path:
        return False
    plain = Path(os.path.abspath(path))
    try:
        resolved = plain.resolve()
    except (OSError, RuntimeError):
        resolved = plain
    for root in roots:
        for candidate in (plain, resolved):
            for base in (root, root.resolve()):
                try:
                    parts = candidate.relative_to(base).parts
                except ValueError:
                    continue
                if any(part.startswith(".") for part in parts):
                    return True
    return False


class HiddenFiles:
    """ASGI middleware: file route requests for hidden files inside `roots` get 404."""

    def __init__(self, app: ASGIApp, roots: Iterable[Path | str]) -> None:
        self.app = app
        self.roots = [Path(os.path.abspath(root)) for root in roots]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            match = _FILE_ROUTE.search(scope.get("path", ""))
            if match is not None and is_hidden(match.group("path"), self.roots):
                await PlainTextResponse("Not found", status_code=404)(scope, receive, send)
                return
        await self.app(scope, receive, send)
