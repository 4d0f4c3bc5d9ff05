"""Studio end to end on tiny checkpoints: queue → backend → pipeline manager → gallery on disk."""

import re
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from core.infotext import INFOTEXT_KEY, parse_infotext, request_fields_from_infotext
from core.requests import Txt2ImgRequest
from studio import JobState, NotYourJob, UnknownModel, UnknownTool

FAST = {"steps": 2, "width": 64, "height": 64}


def _done(job, timeout=120):
    assert job.wait(timeout), "job did not finish"
    return job


def test_generate_saves_pngs_with_infotext_and_index_rows(make_studio):
    studio = make_studio()
    request = Txt2ImgRequest(
        prompt="a red fox logo, flat vector", negative_prompt="blurry", seed=1234, batch_size=2, **FAST
    )
    job = _done(studio.jobs.submit(request, "local"))
    assert job.state is JobState.DONE, job.error
    assert [i.seed for i in job.images] == [1234, 1235]
    for record in job.images:
        path = studio.gallery.file_path(record.id)
        assert re.fullmatch(rf"\d{{4}}-\d{{2}}-\d{{2}}/\d{{5}}-{record.seed}\.png", record.relpath)
        assert path.is_file() and path.suffix == ".png"
        with Image.open(path) as png:
            assert png.size == (64, 64)
            infotext = png.text[INFOTEXT_KEY]
        assert infotext == record.infotext
        assert f"Seed: {record.seed}" in infotext and "Model: tiny-sd1" in infotext
        assert re.search(r"Model hash: [0-9a-f]{10}", infotext)
    assert [i.id for i in studio.gallery.recent(limit=2)] == sorted((i.id for i in job.images), reverse=True)
    assert studio.gallery.count() == 2


def test_infotext_parses_back_to_the_same_request(make_studio):
    studio = make_studio()
    request = Txt2ImgRequest(
        model="tiny-sd1",
        prompt="logo, 'quoted': yes\nsecond line",
        negative_prompt="text, watermark",
        sampler="Euler a",
        steps=3,
        cfg_scale=6.5,
        width=72,
        height=64,
        seed=77,
    )
    job = _done(studio.jobs.submit(request, "local"))
    fields = request_fields_from_infotext(parse_infotext(job.images[0].infotext))
    again = Txt2ImgRequest(**fields)
    assert again == request.model_copy(update={"schedule_type": "Uniform"})  # Automatic resolved for Euler a


def test_reusing_the_infotext_gives_the_same_pixels(make_studio):
    studio = make_studio()
    first = _done(studio.jobs.submit(Txt2ImgRequest(prompt="badge", seed=99, **FAST), "local"))
    fields = request_fields_from_infotext(parse_infotext(first.images[0].infotext))
    second = _done(studio.jobs.submit(Txt2ImgRequest(**fields), "local"))
    a = np.asarray(Image.open(studio.gallery.file_path(first.images[0].id)))
    b = np.asarray(Image.open(studio.gallery.file_path(second.images[0].id)))
    assert np.array_equal(a, b)


def test_random_seed_is_resolved_and_shown(make_studio):
    studio = make_studio()
    job = _done(studio.jobs.submit(Txt2ImgRequest(prompt="x", seed=-1, **FAST), "local"))
    seed = job.images[0].seed
    assert 0 <= seed < 2**32
    assert job.request.seed == seed and f"Seed: {seed}," in job.images[0].infotext


def test_unknown_or_refused_model_is_rejected_and_nothing_is_saved(make_studio):
    studio = make_studio()
    with pytest.raises(UnknownModel, match="Unknown model 'nope'.*tiny-sd1"):
        studio.jobs.submit(Txt2ImgRequest(model="nope", prompt="x", **FAST), "local")
    assert studio.gallery.count() == 0


def test_same_model_is_not_reloaded_and_switching_keeps_it_cached(make_studio):
    studio = make_studio(max_gpu_models=1, max_ram_models=1)
    manager = studio.backend.manager
    _done(studio.jobs.submit(Txt2ImgRequest(model="tiny-sd1", prompt="a", **FAST), "local"))
    _done(studio.jobs.submit(Txt2ImgRequest(model="tiny-sd1", prompt="b", **FAST), "local"))
    assert manager.load_count == 1
    _done(studio.jobs.submit(Txt2ImgRequest(model="tiny-sd1-other", prompt="c", **FAST), "local"))
    assert manager.load_count == 2
    assert manager.resident() == (["tiny-sd1-other"], ["tiny-sd1"])
    _done(studio.jobs.submit(Txt2ImgRequest(model="tiny-sd1", prompt="d", **FAST), "local"))
    assert manager.load_count == 2  # came back from RAM, not from disk


def test_interrupt_stops_within_a_step_saves_nothing_and_the_next_job_runs(make_studio):
    """End to end on the tiny model: the real pipeline's step callback honours the cancel."""
    studio = make_studio()
    entry = studio.backend.registry.get("tiny-sd1")
    third_step = threading.Event()
    with studio.backend.manager.lease(entry) as pipe:
        calls = []

        def count(module, args):
            calls.append(1)
            if len(calls) == 3:
                third_step.set()

        hook = pipe.unet.register_forward_pre_hook(count)
    try:
        long_job = studio.jobs.submit(
            Txt2ImgRequest(prompt="x", steps=150, width=64, height=64, seed=1), "local"
        )
        assert third_step.wait(120), "the job did not reach its third step"
    finally:
        hook.remove()
    assert long_job.state is JobState.RUNNING
    studio.jobs.cancel(long_job.id, "local")
    cancelled_at = long_job.step
    _done(long_job, 30)
    assert long_job.state is JobState.CANCELLED
    assert long_job.step <= cancelled_at + 1 < long_job.total
    assert long_job.images == [] and studio.gallery.count() == 0
    assert not list((studio.gallery.outputs_dir).rglob("*.png"))
    nxt = _done(studio.jobs.submit(Txt2ImgRequest(prompt="y", seed=2, **FAST), "local"))
    assert nxt.state is JobState.DONE and len(nxt.images) == 1


def test_only_the_owner_can_cancel_or_see_a_job(make_studio):
    studio = make_studio()
    job = studio.jobs.submit(Txt2ImgRequest(prompt="x", seed=3, **FAST), "alice")
    with pytest.raises(NotYourJob):
        studio.jobs.cancel(job.id, "bob")
    with pytest.raises(NotYourJob):
        studio.jobs.job(job.id, "bob")
    assert _done(job).state is JobState.DONE
    assert job.images[0].author == "alice"


def test_an_admin_can_cancel_anyones_job(make_gated_studio):
    studio, backend = make_gated_studio()
    job = studio.jobs.submit(Txt2ImgRequest(prompt="x", seed=3, **FAST), "alice")
    (run,) = backend.wait_for_runs(1)
    assert job.state is JobState.RUNNING and studio.jobs.running_job() is job
    studio.jobs.cancel(job.id, "root", admin=True)
    backend.release()  # one more step: the worker sees the cancel after it and closes the run
    assert _done(job, 30).state is JobState.CANCELLED
    assert run.closed_early and not run.finished and job.images == [] and studio.gallery.count() == 0


def test_an_unknown_hires_upscaler_is_refused_at_submit_and_the_next_job_runs(make_studio):
    studio = make_studio()
    with pytest.raises(UnknownTool, match="Unknown hires upscaler 'No such upscaler'"):
        studio.jobs.submit(
            Txt2ImgRequest(prompt="x", enable_hr=True, hr_upscaler="No such upscaler", **FAST), "local"
        )
    assert studio.jobs.latest_job("local") is None  # nothing was queued
    good = _done(studio.jobs.submit(Txt2ImgRequest(prompt="x", seed=5, **FAST), "local"))
    assert good.state is JobState.DONE


def test_out_of_memory_mid_job_frees_memory_and_the_next_job_succeeds(make_studio):
    studio = make_studio(max_gpu_models=2, max_ram_models=0)
    manager = studio.backend.manager
    _done(studio.jobs.submit(Txt2ImgRequest(model="tiny-sd1-other", prompt="warm", **FAST), "local"))
    entry = studio.backend.registry.get("tiny-sd1")
    with manager.lease(entry) as pipe:
        calls = []

        def explode(module, args):
            calls.append(1)
            if len(calls) == 2:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

        hook = pipe.unet.register_forward_pre_hook(explode)
    try:
        job = _done(
            studio.jobs.submit(
                Txt2ImgRequest(model="tiny-sd1", prompt="x", steps=4, width=64, height=64), "local"
            )
        )
    finally:
        hook.remove()
    assert job.state is JobState.FAILED
    assert "Out of GPU memory" in job.error and "smaller" in job.error
    assert studio.gallery.count() == 1  # only the warm-up image
    assert manager.resident() == (["tiny-sd1"], [])  # the other model was dropped to free memory
    after = _done(studio.jobs.submit(Txt2ImgRequest(model="tiny-sd1", prompt="x", seed=1, **FAST), "local"))
    assert after.state is JobState.DONE


def test_model_switch_requested_during_a_job_does_not_change_the_running_job(make_studio):
    studio = make_studio()
    first = studio.jobs.submit(
        Txt2ImgRequest(model="tiny-sd1", prompt="x", steps=20, width=64, height=64, seed=1), "a"
    )
    second = studio.jobs.submit(Txt2ImgRequest(model="tiny-sd1-other", prompt="x", seed=1, **FAST), "b")
    _done(first)
    _done(second)
    assert "Model: tiny-sd1," in first.images[0].infotext
    assert "Model: tiny-sd1-other," in second.images[0].infotext


def test_progress_reports_steps_and_a_preview(make_studio):
    studio = make_studio(preview_every=1)
    job = studio.jobs.submit(
        Txt2ImgRequest(prompt="x", steps=3, width=64, height=64, batch_count=2, seed=1), "local"
    )
    _done(job)
    assert job.step == job.total == 6
    assert job.preview is not None and job.preview.size == (8, 8)


def test_queue_full_is_a_clear_error_and_nothing_deadlocks(make_gated_studio):
    from studio import QueueFull

    studio, backend = make_gated_studio(queue_size=2)
    running = studio.jobs.submit(Txt2ImgRequest(prompt="x", seed=1, **FAST), "a")
    backend.wait_for_runs(1)
    assert running.state is JobState.RUNNING
    waiting = [
        studio.jobs.submit(Txt2ImgRequest(prompt="y", seed=s, **FAST), u) for s, u in ((2, "a"), (3, "b"))
    ]
    assert [studio.jobs.queue_position(j) for j in waiting] == [2, 1]  # b first: a is being served
    with pytest.raises(QueueFull, match="queue is full"):
        studio.jobs.submit(Txt2ImgRequest(prompt="z", **FAST), "c")
    studio.jobs.cancel(running.id, "a")
    backend.open()
    for job in waiting:
        assert _done(job).state is JobState.DONE
    assert _done(running).state is JobState.CANCELLED
    assert studio.gallery.count() == 2


def test_jobs_of_several_users_alternate(make_gated_studio):
    studio, backend = make_gated_studio()
    blocker = studio.jobs.submit(Txt2ImgRequest(prompt="x", seed=1, **FAST), "a")
    backend.wait_for_runs(1)
    a_jobs = [studio.jobs.submit(Txt2ImgRequest(prompt="a", seed=s, **FAST), "a") for s in (10, 11, 12)]
    b_jobs = [studio.jobs.submit(Txt2ImgRequest(prompt="b", seed=s, **FAST), "b") for s in (20, 21)]
    studio.jobs.cancel(blocker.id, "a")
    backend.open()
    for job in a_jobs + b_jobs:
        assert _done(job).state is JobState.DONE
    order = sorted(a_jobs + b_jobs, key=lambda j: j.started)
    assert [j.user for j in order] == ["b", "a", "b", "a", "a"]  # a just ran, so b goes first
    assert [(r.request.prompt, r.request.seed) for r in backend.runs[1:]] == [
        ("b", 20), ("a", 10), ("b", 21), ("a", 11), ("a", 12),
    ]  # fmt: skip


def test_sdxl_checkpoint_generates_through_the_same_path(tmp_path):
    from app import build_studio
    from core.settings import Settings
    from pipelines.tiny import save_tiny

    save_tiny(tmp_path / "models" / "tiny-xl.safetensors", arch="sdxl", seed=0)
    studio = build_studio(
        Settings(models_dir=tmp_path / "models", outputs_dir=tmp_path / "out", device="cpu")
    )
    studio.start()
    try:
        request = Txt2ImgRequest(prompt="a glossy 3d logo", sampler="Euler a", seed=11, batch_size=2, **FAST)
        job = _done(studio.jobs.submit(request, "local"))
        assert job.state is JobState.DONE, job.error
        assert [i.seed for i in job.images] == [11, 12]
        assert "Model: tiny-xl," in job.images[0].infotext
        again = _done(studio.jobs.submit(request.model_copy(update={"batch_size": 1, "seed": 12}), "local"))
        a = np.asarray(Image.open(studio.gallery.file_path(job.images[1].id))).astype(int)
        b = np.asarray(Image.open(studio.gallery.file_path(again.images[0].id))).astype(int)
        assert np.abs(a - b).max() <= 2  # seed 12 in batch slot 1 and alone: the same picture
    finally:
        studio.close()


def test_preferred_model_and_latest_job_per_user(make_studio):
    studio = make_studio()
    assert studio.jobs.latest_job("alice") is None
    studio.catalog.prefer_model("alice", "tiny-sd1-other")
    with pytest.raises(UnknownModel):
        studio.catalog.prefer_model("alice", "nope")
    job = _done(studio.jobs.submit(Txt2ImgRequest(prompt="x", seed=1, **FAST), "alice"))
    other = _done(studio.jobs.submit(Txt2ImgRequest(prompt="x", seed=1, **FAST), "bob"))
    assert job.request.model == "tiny-sd1-other" and other.request.model == "tiny-sd1"
    assert studio.jobs.latest_job("alice") is job and studio.jobs.latest_job("bob") is other


def test_waiting_jobs_get_a_start_estimate_once_the_pace_is_known(make_gated_studio):
    studio, backend = make_gated_studio()
    first = studio.jobs.submit(Txt2ImgRequest(prompt="x", seed=1, **FAST), "a")
    assert studio.jobs.wait_estimate(first) is None or first.state is not JobState.QUEUED
    backend.release(FAST["steps"])
    _done(first)
    running = studio.jobs.submit(Txt2ImgRequest(prompt="x", seed=2, **FAST), "a")
    backend.wait_for_runs(2)
    waiting = studio.jobs.submit(Txt2ImgRequest(prompt="y", seed=3, **FAST), "b")
    behind = studio.jobs.submit(Txt2ImgRequest(prompt="z", seed=4, **FAST), "c")
    first_wait, second_wait = studio.jobs.wait_estimate(waiting), studio.jobs.wait_estimate(behind)
    assert first_wait is not None and second_wait is not None and second_wait > first_wait >= 0
    studio.jobs.cancel(running.id, "a")
    backend.open()
    assert studio.jobs.wait_estimate(_done(waiting)) is None
