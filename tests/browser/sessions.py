"""A page session driven over raw HTTP, as the page's JavaScript drives it: log in, read the page's config,
call its event handlers through the queue (`/gradio_api/queue/join` and the event stream). A test can so call
one step of a chain on its own, as a script could, skipping the steps the page runs before it."""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx


class PageSession:
    """One page session; logged in as `user` when given (the app has logins)."""

    def __init__(self, url: str, user: str | None = None, password: str = "") -> None:
        self.http = httpx.Client(base_url=url, timeout=60)
        if user is not None:
            assert self.http.post("/login", data={"username": user, "password": password}).status_code == 200
        config = self.http.get("/config").json()
        self.ids = {c["props"]["elem_id"]: c["id"] for c in config["components"] if c["props"].get("elem_id")}
        self.dependencies = config["dependencies"]
        self.session = secrets.token_hex(8)

    def first(self, elem_id: str, event: str) -> int:
        """The index of the first handler of `event` on the element."""
        target = [self.ids[elem_id], event]
        return next(i for i, d in enumerate(self.dependencies) if target in d["targets"])

    def then(self, index: int) -> int:
        """The index of the step that runs after handler `index` succeeds."""
        wanted = self.dependencies[index]["id"]
        return next(i for i, d in enumerate(self.dependencies) if d["trigger_after"] == wanted)

    def call(self, index: int, data: list, event_data: Any = None) -> dict:
        """Run handler `index` with `data`; the finished message (`success`, `output`)."""
        body = {"data": data, "fn_index": index, "session_hash": self.session, "event_data": event_data}
        event_id = self.http.post("/gradio_api/queue/join", json=body).json()["event_id"]
        with self.http.stream(
            "GET", "/gradio_api/queue/data", params={"session_hash": self.session}
        ) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    message = json.loads(line[5:])
                    if message.get("event_id") == event_id and message.get("msg") == "process_completed":
                        return message
        raise AssertionError("the event stream ended without an answer")


# The Gallery tab's filters (search, model, task, made by, favourites only, from, to, sort): everyone's, newest.
FILTERS = ["", "all", "all", "everyone", False, "", "", "newest first"]
