"""One user cannot lock the others out of the queue: a cap on each person's waiting jobs (429 over the API, a
message in the page), admins exempt, jobs of clients that hung up dropped, and each person's own way to
drain their waiting jobs. Driven over HTTP and gradio_client against the served app, as a flooding user would.

A gate holds the worker on a "blocker" job, so that what waits, and in which order it starts, is deterministic.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from gradio_client import Client

from core.requests import Txt2ImgRequest
from studio.jobs import FINISHED, JobState
from tests.helpers import served_app, wait_for

log = logging.getLogger(__name__)
LOGINS = {"alice": "wonderland", "bob": "builder", "root": "toor"}
SMALL = {"steps": 1, "width": 64, "height": 64}
LIMIT = 4


class Gate:
    """Wraps the backend's `run`: a job whose prompt is "blocker" holds the worker until `release()`."""

    def __init__(self, run: Callable[..., Iterator[Any]]) -> None:
        self._run = run
        self._open = threading.Event()

    def run(self, request: Any, resolved: Any = None) -> Iterator[Any]:
        if request.prompt == "blocker":
            from core.backend import Progress

            while not self._open.wait(0.02):
                yield Progress(step=0, total=1)
        yield from self._run(request, resolved)

    def release(self) -> None:
        self._open.set()


@pytest.fixture(scope="module")
def served(tiny_models_dir, tmp_path_factory):
    auth = ["alice:wonderland", "bob:builder", "root:toor:admin"]
    with served_app(
        tiny_models_dir, tmp_path_factory.mktemp("outputs"), auth=auth, api=True, preview_every=0,
        max_queued_per_user=LIMIT,
    ) as (app, url):  # fmt: skip
        yield app, url


@pytest.fixture
def gate(served, monkeypatch) -> Iterator[Gate]:
    app, _ = served
    gate = Gate(app.studio.backend.run)
    monkeypatch.setattr(app.studio.backend, "run", gate.run)
    yield gate
    gate.release()
    for user in LOGINS:
        app.studio.jobs.cancel_all(user)
    wait_for(lambda: all(j is None or j.state in FINISHED for j in map(app.studio.jobs.latest_job, LOGINS)))


def _post_in_thread(url: str, user: str, body: dict, timeout: float = 120) -> dict[str, Any]:
    box: dict[str, Any] = {}

    def post() -> None:
        with httpx.Client(base_url=url, auth=(user, LOGINS[user]), timeout=timeout) as http:
            try:
                box["response"] = http.post("/sdapi/v1/txt2img", json=body)
            except httpx.HTTPError as exc:
                box["error"] = exc

    box["thread"] = threading.Thread(target=post, daemon=True)
    box["thread"].start()
    return box


def _jobs_of(app, user: str) -> list:
    with app.studio.jobs._jobs_lock:
        return sorted((j for j in app.studio.jobs._jobs.values() if j.user == user), key=lambda j: j.created)


def _start_blocker(app, url: str, user: str = "alice") -> dict[str, Any]:
    box = _post_in_thread(url, user, {"prompt": "blocker", "seed": 1, **SMALL})
    wait_for(lambda: (job := app.studio.jobs.running_job()) is not None and job.request.prompt == "blocker")
    return box


def test_a_flooding_user_gets_429_while_others_still_get_in_and_go_first(served, gate):
    app, url = served
    studio = app.studio
    blocker = _start_blocker(app, url)
    # 1. alice fills her share of the queue: 4 waiting jobs are accepted ...
    alice_jobs = [
        _post_in_thread(url, "alice", {"prompt": f"a{i}", "seed": 10 + i, **SMALL}) for i in range(LIMIT)
    ]
    wait_for(lambda: studio.jobs.waiting_count("alice") == LIMIT)
    # 2. ... the fifth is refused with 429, a reason and a Retry-After
    with httpx.Client(base_url=url, auth=("alice", LOGINS["alice"]), timeout=30) as alice:
        refused = alice.post("/sdapi/v1/txt2img", json={"prompt": "one too many", "seed": 99, **SMALL})
        assert refused.status_code == 429, refused.text
        assert "4 jobs waiting" in refused.json()["detail"]
        assert int(refused.headers["Retry-After"]) >= 1
        script = {
            "prompt": "x",
            "script_name": "prompts from file or textbox",
            "script_args": [False, False, "start", "a\nb"],
        }
        assert alice.post("/sdapi/v1/txt2img", json={**script, **SMALL}).status_code == 429  # a job group too
        assert alice.get("/easel/v1/queue").json() == {"waiting": LIMIT, "limit": LIMIT, "running": True}
    # 3. the page (gradio_client goes through the same handlers as the browser) says so too
    client = Client(url, auth=("alice", LOGINS["alice"]), verbose=False)
    try:
        with pytest.raises(Exception, match="jobs waiting"):
            client.predict(prompt="from the page", seed=5, api_name="/txt2img", **SMALL)
    finally:
        client.close()
    # 4. bob still gets in, and the admin is not limited
    bob_submitted = time.monotonic()
    bob = _post_in_thread(url, "bob", {"prompt": "bob's turn", "seed": 20, **SMALL})
    root_jobs = [
        _post_in_thread(url, "root", {"prompt": f"r{i}", "seed": 30 + i, **SMALL}) for i in range(LIMIT + 1)
    ]
    wait_for(lambda: studio.jobs.waiting_count("bob") == 1 and studio.jobs.waiting_count("root") == LIMIT + 1)
    # 5. open the gate: bob's job starts right after alice's running one, before any of her waiting ones
    released = time.monotonic()
    gate.release()
    for box in [blocker, bob, *alice_jobs, *root_jobs]:
        box["thread"].join(120)
        assert box["response"].status_code == 200, box["response"].text
    bob_job = _jobs_of(app, "bob")[-1]
    alice_waited = [j for j in _jobs_of(app, "alice") if j.request.prompt.startswith("a")]
    assert len(alice_waited) == LIMIT and all(j.state is JobState.DONE for j in alice_waited)
    assert all(bob_job.started < j.started for j in alice_waited)
    log.info(
        "bob's job started %.2f s after the worker was free (%.2f s after he sent it); alice's waiting jobs "
        "started %.2f-%.2f s after",
        bob_job.started - released, bob_job.started - bob_submitted,
        min(j.started for j in alice_waited) - released, max(j.started for j in alice_waited) - released,
    )  # fmt: skip


def test_the_job_of_a_client_that_hung_up_is_dropped_before_it_runs(served, gate):
    app, url = served
    blocker = _start_blocker(app, url)
    # bob's client gives up after a second; his job is still waiting behind the blocker
    gone = _post_in_thread(url, "bob", {"prompt": "nobody waits for me", "seed": 4242, **SMALL}, timeout=1)
    gone["thread"].join(30)
    assert isinstance(gone.get("error"), httpx.TimeoutException)
    job = wait_for(lambda: next((j for j in _jobs_of(app, "bob") if j.request.seed == 4242), None))
    wait_for(lambda: job.state is JobState.CANCELLED, timeout=15)
    gate.release()
    blocker["thread"].join(120)
    assert job.started is None  # it never ran
    assert all(image.seed != 4242 for image in app.studio.gallery.recent(limit=1000))


def test_cancel_my_queued_jobs_drains_only_the_callers_waiting_jobs(served, gate):
    app, url = served
    studio = app.studio
    blocker = _start_blocker(app, url)
    alice_boxes = [
        _post_in_thread(url, "alice", {"prompt": f"drain{i}", "seed": 50 + i, **SMALL}) for i in range(2)
    ]
    base = Txt2ImgRequest(prompt="variations", seed=7, **SMALL)
    group = studio.groups.variations(base, 3, 0.5, "alice")  # a job group counts as one waiting job of hers
    bob = _post_in_thread(url, "bob", {"prompt": "keep me", "seed": 60, **SMALL})
    wait_for(lambda: studio.jobs.waiting_count("alice") == 3 and studio.jobs.waiting_count("bob") == 1)
    with httpx.Client(base_url=url, auth=("alice", LOGINS["alice"]), timeout=30) as alice:
        assert alice.post("/easel/v1/queue/cancel").json() == {"cancelled": 3}
        assert alice.get("/easel/v1/queue").json()["waiting"] == 0
    for box in alice_boxes:  # the waiting requests end at once, with nothing made
        box["thread"].join(30)
        answer = box["response"].json()
        assert box["response"].status_code == 200 and answer["images"] == []
        assert "interrupted" in " ".join(json.loads(answer["info"])["warnings"])
    assert group.wait(30) and group.state is JobState.CANCELLED
    # her running job and bob's waiting one are untouched
    running = studio.jobs.running_job()
    assert running is not None and running.request.prompt == "blocker" and not running.cancel_requested
    assert studio.jobs.waiting_count("bob") == 1
    gate.release()
    for box in (blocker, bob):
        box["thread"].join(120)
        assert box["response"].status_code == 200 and len(box["response"].json()["images"]) == 1
    with httpx.Client(base_url=url, auth=("bob", LOGINS["bob"]), timeout=30) as bob_http:
        assert bob_http.post("/easel/v1/queue/cancel").json() == {"cancelled": 0}
