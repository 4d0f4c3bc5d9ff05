"""Load: 8 clients × 10 jobs, half through the Gradio API and half through /sdapi/v1, at once (loopback only).

Bounded in count and time; asserts every job succeeds, every image is saved exactly once and the index
matches the files afterwards (DESIGN.md §5 item 14).
"""

import base64
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from gradio_client import Client

from tests.fakes import GatedBackend
from tests.helpers import served_app

CLIENTS, JOBS = 8, 10
USERS = [(f"user{i}", f"pw{i}") for i in range(CLIENTS)]


@pytest.fixture(scope="module")
def loaded_app(tiny_models_dir, tmp_path_factory):
    logins = [f"{u}:{p}" for u, p in USERS]
    outputs = tmp_path_factory.mktemp("outputs")
    with served_app(
        tiny_models_dir, outputs, auth=logins, api=True, queue_size=CLIENTS * JOBS, preview_every=0
    ) as (app, url):
        # what is under load here is the front ends, the queue and the gallery, not the model: the jobs run
        # on a scripted backend whose steps are all let through, so they finish at once
        gated = GatedBackend()
        gated.open()
        app.studio.backend.run = gated.run
        yield app, url


@pytest.mark.timeout(300)
def test_concurrent_clients_all_succeed_and_every_image_is_saved_once(loaded_app):
    from gallery.store import Gallery

    app, url = loaded_app
    seeds_seen: list[int] = []
    lock = threading.Lock()

    def gradio_client(index: int) -> None:
        client = Client(url, auth=USERS[index], verbose=False)
        try:
            for job in range(JOBS):
                result = client.predict(
                    prompt=f"c{index} j{job}", steps=1, width=64, height=64, seed=index * 100 + job,
                    api_name="/txt2img",
                )  # fmt: skip
                with lock:
                    seeds_seen.extend(result["seeds"])
        finally:
            client.close()

    def sdapi_client(index: int) -> None:
        with httpx.Client(base_url=url, auth=USERS[index], timeout=120) as http:
            for job in range(JOBS):
                body = {
                    "prompt": f"c{index} j{job}",
                    "steps": 1,
                    "width": 64,
                    "height": 64,
                    "seed": index * 100 + job,
                }
                response = http.post("/sdapi/v1/txt2img", json=body)
                assert response.status_code == 200, response.text
                assert len(response.json()["images"]) == 1
                base64.b64decode(response.json()["images"][0])
                with lock:
                    seeds_seen.append(index * 100 + job)

    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(gradio_client if i % 2 else sdapi_client, i) for i in range(CLIENTS)]
        for future in futures:
            future.result(timeout=240)
    assert time.monotonic() - started < 240
    expected = sorted(i * 100 + j for i in range(CLIENTS) for j in range(JOBS))
    assert sorted(seeds_seen) == expected
    gallery = app.studio.gallery
    records = gallery.recent(limit=1000)
    assert len(records) == CLIENTS * JOBS
    assert sorted(r.seed for r in records) == expected  # every image saved exactly once
    assert {r.author for r in records} == {u for u, _ in USERS}
    with Gallery(gallery.outputs_dir) as reopened:  # the index matches the files
        assert reopened.count() == CLIENTS * JOBS
