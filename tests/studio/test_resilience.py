"""Crash safety and memory over many jobs (DESIGN.md §5 items 15 and 17)."""

import gc
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from gradio_client import Client

from core.requests import Txt2ImgRequest
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]


def _wait_for_server(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early:\n{process.stderr.read()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise AssertionError("server did not come up")


def test_kill_9_during_a_job_leaves_a_consistent_index_and_no_half_written_images(tiny_models_dir, tmp_path):
    from gallery.store import Gallery

    outputs, port = tmp_path / "outputs", free_port()
    command = [
        sys.executable, "app.py", "--models-dir", str(tiny_models_dir), "--outputs-dir", str(outputs),
        "--port", str(port), "--device", "cpu", "--default-model", "tiny-sd1",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_server(url, server)
        client = Client(url, verbose=False)
        done = client.predict(
            prompt="kept", steps=2, width=64, height=64, seed=1, batch_size=2, api_name="/txt2img"
        )
        assert len(done["ids"]) == 2
        # a long batch-count job: images are saved one batch after another while it runs
        client.submit(
            prompt="cut short", steps=3, width=128, height=128, seed=2, batch_count=16, api_name="/txt2img"
        )
        deadline = time.monotonic() + 120
        while len(list(outputs.rglob("*.png"))) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        server.send_signal(signal.SIGKILL)
        server.wait(30)
        client.close()
    finally:
        if server.poll() is None:
            server.kill()
    files = sorted(
        p.relative_to(outputs).as_posix() for p in outputs.rglob("*.png") if ".trash" not in p.parts
    )
    assert 4 <= len(files) < 2 + 16
    with Gallery(outputs) as gallery:  # a restart: the index is checked against the files
        indexed = sorted(gallery.get(i.id).relpath for i in gallery.recent(limit=100))
        assert indexed == files
        for image_id in (i.id for i in gallery.recent(limit=100)):
            from PIL import Image

            with Image.open(gallery.file_path(image_id)) as png:
                png.load()  # every file is whole
                assert "parameters" in png.text
    assert not [p for p in outputs.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.timeout(600)
def test_memory_stays_flat_over_200_jobs_with_model_switches(make_studio):
    studio = make_studio(max_gpu_models=1, max_ram_models=1, preview_every=1)
    process = psutil.Process()
    models = ["tiny-sd1", "tiny-sd1-other", "tiny-sd1"]

    def run(count: int) -> None:
        for i in range(count):
            request = Txt2ImgRequest(model=models[i % 3], prompt="x", steps=1, width=64, height=64, seed=i)
            job = studio.jobs.submit(request, "local")
            assert job.wait(60) and job.state.value == "done", job.error

    run(30)  # warm up: every model loaded, caches and allocator settled
    gc.collect()
    before = process.memory_info().rss
    run(200)
    gc.collect()
    after = process.memory_info().rss
    assert studio.backend.manager.load_count == 2  # switches A→B→A come from the cache, never from disk
    on_device, in_ram = studio.backend.manager.resident()
    assert len(on_device) <= 1 and len(in_ram) <= 1
    assert after <= before * 1.05, f"RSS grew from {before / 2**20:.0f} MiB to {after / 2**20:.0f} MiB"
