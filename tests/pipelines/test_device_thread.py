"""Every job of a device runs on one long-lived thread, in turn."""

from __future__ import annotations

import threading

import pytest

from core.backend import GeneratedImage
from core.requests import Txt2ImgRequest
from pipelines.device_thread import DeviceThread

SMALL = {"width": 64, "height": 64, "steps": 1, "model": "tiny-sd1"}


def test_work_runs_in_order_on_one_thread_and_errors_reach_the_caller():
    device = DeviceThread()
    assert device.ident is None  # nothing starts before the first job
    seen: list[tuple[int, int]] = []
    futures = [device.submit(lambda i=i: seen.append((i, threading.get_ident())) or i) for i in range(5)]
    assert [f.result(10) for f in futures] == list(range(5))
    assert [i for i, _ in seen] == list(range(5))
    assert {ident for _, ident in seen} == {device.ident} and device.ident != threading.get_ident()

    def broken() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        device.submit(broken).result(10)
    assert device.submit(lambda: "still serving").result(10) == "still serving"
    ident = device.ident
    device.close()
    assert ident not in {t.ident for t in threading.enumerate()} and device.ident is None
    assert device.submit(lambda: "again").result(10) == "again"  # a later job starts a new thread
    device.close()


def test_a_job_cancelled_before_it_starts_never_runs():
    device = DeviceThread()
    gate, ran = threading.Event(), []
    first = device.submit(gate.wait)
    second = device.submit(lambda: ran.append("second"))
    assert second.cancel()
    gate.set()
    first.result(10)
    device.submit(lambda: None).result(10)  # everything before it has been taken off the queue
    assert ran == []
    device.close()


def test_the_local_backend_runs_every_job_on_its_device_thread(studio, monkeypatch):
    backend = studio.backend
    threads: list[int] = []
    real = backend._execute

    def recording(*args, **kwargs):
        threads.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(backend, "_execute", recording)
    for seed in (1, 2):
        events = list(backend.run(Txt2ImgRequest(prompt="a mug", seed=seed, **SMALL)))
        assert sum(isinstance(e, GeneratedImage) for e in events) == 1
    assert len(threads) == 2 and set(threads) == {backend.device_thread.ident}
    assert "easel-job" not in [t.name for t in threading.enumerate()]  # no thread of its own per job


def test_closing_a_run_early_cancels_it_and_the_thread_serves_the_next(studio):
    backend = studio.backend
    events = backend.run(Txt2ImgRequest(prompt="a mug", seed=3, **{**SMALL, "steps": 20}))
    next(events)  # the first progress event: the job is running
    events.close()  # cancels within a step and waits for the job to stop
    after = [
        e
        for e in backend.run(Txt2ImgRequest(prompt="a mug", seed=3, **SMALL))
        if isinstance(e, GeneratedImage)
    ]
    assert len(after) == 1
