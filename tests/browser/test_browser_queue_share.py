"""In real Chromium: the login form (through the login guard) gives a session cookie that expires, a person
over their share of the queue is told so in a toast, and "Cancel my queued jobs" drains only their jobs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.pages import chromium, logged_in_page, require_chromium, shot, small_settings
from tests.helpers import served_app

require_chromium()

LIMIT = 2


@pytest.fixture(scope="module")
def team_app(tiny_models_dir, tmp_path_factory):
    with served_app(
        tiny_models_dir, tmp_path_factory.mktemp("outputs"), auth=["alice:wonderland", "bob:builder"],
        max_queued_per_user=LIMIT, preview_every=0,
    ) as app:  # fmt: skip
        yield app


def test_the_page_says_when_your_share_is_full_and_cancels_only_your_waiting_jobs(team_app, monkeypatch):
    from core.backend import Progress
    from core.requests import Txt2ImgRequest

    app, url = team_app
    studio = app.studio
    gate, real_run = threading.Event(), studio.backend.run

    def run(request: Any, resolved: Any = None) -> Iterator[Any]:
        while request.prompt == "blocker" and not gate.wait(0.02):
            yield Progress(step=0, total=1)
        yield from real_run(request, resolved)

    monkeypatch.setattr(studio.backend, "run", run)
    small = {"steps": 1, "width": 64, "height": 64}
    try:
        blocker = studio.jobs.submit(Txt2ImgRequest(prompt="blocker", **small), "bob")
        bob_waiting = studio.jobs.submit(Txt2ImgRequest(prompt="bob waits", **small), "bob")
        for i in range(LIMIT):  # alice's jobs from another tab fill her share
            studio.jobs.submit(Txt2ImgRequest(prompt=f"alice {i}", **small), "alice")
        with chromium() as browser:
            page = logged_in_page(browser, url, "alice", "wonderland")
            cookies = [c for c in page.context.cookies() if c["name"].startswith("access-token")]
            assert cookies and all(c["expires"] > 0 for c in cookies)  # not a cookie that lives forever
            small_settings(page, "txt2img", "one more")
            page.click("#txt2img_generate")
            page.get_by_text("jobs waiting").first.wait_for(timeout=30_000)
            shot(page, "txt2img_queue_share_full")
            assert studio.jobs.waiting_count("alice") == LIMIT
            page.click("#txt2img_cancel_queued")
            page.get_by_text(f"Cancelled {LIMIT} waiting job(s).").first.wait_for(timeout=30_000)
            assert studio.jobs.waiting_count("alice") == 0
            assert bob_waiting.state.value == "queued" and not blocker.cancel_requested
    finally:
        gate.set()
        studio.jobs.cancel_all("bob")
