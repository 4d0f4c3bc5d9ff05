"""Jobs of several users that sample the same way run as one batch (`max_batch`), with fair order, per-job
images and progress, and a cancel that stops only the job it names."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.presets import PresetBook
from core.requests import Img2ImgRequest, Txt2ImgRequest
from core.resolved import ResolvedGeneration
from gallery.store import Gallery
from studio import Studio
from studio.jobs import Job, JobState
from studio.queue import FairQueue
from tests.fakes import WAIT, BatchingGatedBackend

SMALL = {"width": 64, "height": 64, "steps": 3, "model": "tiny-sd1"}


@pytest.fixture
def batching_studio(tmp_path: Path):
    made: list[tuple[Studio, BatchingGatedBackend]] = []

    def make(max_batch: int | None = 4) -> tuple[Studio, BatchingGatedBackend]:
        backend = BatchingGatedBackend()
        (tmp_path / "outputs").mkdir(exist_ok=True)
        studio = Studio(
            backend,
            Gallery(tmp_path / "outputs"),
            presets=PresetBook(None, tmp_path / "user-presets"),
            max_queued_per_user=None,
            max_batch=max_batch,
        )
        made.append((studio, backend))
        return studio, backend  # not started: the test queues jobs first, then starts the worker

    yield make
    for studio, backend in made:
        backend.open()
        studio.close()


def _submit(studio: Studio, user: str, prompt: str, seed: int, **fields) -> Job:
    return studio.jobs.submit(Txt2ImgRequest(prompt=prompt, seed=seed, **{**SMALL, **fields}), user)


def test_waiting_jobs_that_sample_alike_run_as_one_batch_each_keeping_its_own_images(batching_studio):
    studio, backend = batching_studio(max_batch=4)
    alice = _submit(studio, "alice", "a red mug", 10)
    bob = _submit(studio, "bob", "a blue mug", 20, batch_size=2)
    other_size = _submit(studio, "carol", "a green mug", 30, width=128)  # another size: not in the batch
    dave = _submit(studio, "dave", "a grey mug", 40)
    backend.open()
    studio.start()
    for job in (alice, bob, other_size, dave):
        assert job.wait(WAIT) and job.state is JobState.DONE, job.error
    assert [[r.prompt for r in batch] for batch in backend.batches] == [
        ["a red mug", "a blue mug", "a grey mug"]
    ]
    assert [i.seed for i in alice.images] == [10] and [i.seed for i in bob.images] == [20, 21]
    assert [i.seed for i in dave.images] == [40] and [i.seed for i in other_size.images] == [30]
    for job in (alice, bob, dave):  # saved to its own job, with its author and its own words
        for image in job.images:
            meta = studio.gallery.metadata(image.id)
            assert image.author == job.user and str(job.request.prompt) in str(meta)


def test_a_batch_never_holds_more_images_than_max_batch(batching_studio):
    studio, backend = batching_studio(max_batch=3)
    jobs = [_submit(studio, f"user{i}", f"mug {i}", i * 10, batch_size=2 if i == 1 else 1) for i in range(4)]
    backend.open()
    studio.start()
    for job in jobs:
        assert job.wait(WAIT) and job.state is JobState.DONE
    sizes = [sum(r.batch_size for r in batch) for batch in backend.batches]
    assert sizes and max(sizes) <= 3
    assert sum(sizes) + (len(backend.runs) - len(backend.batches)) == 5  # every image ran exactly once


def test_max_batch_1_runs_every_job_alone(batching_studio):
    studio, backend = batching_studio(max_batch=1)
    jobs = [_submit(studio, user, "a mug", seed) for user, seed in (("alice", 1), ("bob", 2))]
    backend.open()
    studio.start()
    for job in jobs:
        assert job.wait(WAIT) and job.state is JobState.DONE
    assert backend.batches == [] and len(backend.runs) == 2


def test_cancelling_one_job_of_a_batch_lets_the_others_finish(batching_studio):
    studio, backend = batching_studio(max_batch=4)
    alice = _submit(studio, "alice", "a red mug", 10)
    bob = _submit(studio, "bob", "a blue mug", 20)
    studio.start()
    (run,) = backend.wait_for_runs(1)
    backend.release(1)
    backend.wait_for_step(run, 1)
    assert alice.state is bob.state is JobState.RUNNING and alice.step == bob.step == 1  # progress for both
    studio.jobs.cancel(bob.id, "bob")
    backend.open()
    assert alice.wait(WAIT) and bob.wait(WAIT)
    assert alice.state is JobState.DONE and [i.seed for i in alice.images] == [10]
    assert bob.state is JobState.CANCELLED and bob.images == []
    assert run.finished and not run.closed_early  # the batch went on for alice


def test_cancelling_every_job_of_a_batch_stops_it(batching_studio):
    studio, backend = batching_studio(max_batch=4)
    jobs = [_submit(studio, user, "a mug", seed) for user, seed in (("alice", 1), ("bob", 2))]
    studio.start()
    (run,) = backend.wait_for_runs(1)
    backend.release(1)
    backend.wait_for_step(run, 1)
    for job in jobs:
        studio.jobs.cancel(job.id, job.user)
    backend.release(1)
    assert all(job.wait(WAIT) and job.state is JobState.CANCELLED for job in jobs)
    assert run.ended.wait(WAIT) and run.closed_early


def _queued(user: str, prompt: str) -> Job:
    return Job(request=Txt2ImgRequest(prompt=prompt, **SMALL), user=user)


def test_batchmates_are_taken_in_fair_order_and_oldest_first_within_a_user():
    queue = FairQueue(16)
    jobs = [
        _queued("alice", "a1 big"),
        _queued("alice", "a2"),
        _queued("bob", "b1"),
        _queued("carol", "c1"),
        _queued("bob", "b2"),
    ]
    for job in jobs:
        queue.put(job)
    first = queue.get()
    assert first is jobs[0]
    # "big" jobs do not match; alice's a2 may join (her oldest waiting), then bob's, then carol's
    taken = queue.take_matching(lambda job: "big" not in str(job.request.prompt), 3, lambda job: 1)
    assert [job.request.prompt for job in taken] == ["b1", "c1", "a2"]
    assert [queue.get(0).request.prompt] == ["b2"]  # type: ignore[union-attr]


def test_a_users_younger_job_never_overtakes_their_older_one():
    queue = FairQueue(16)
    older, younger = _queued("alice", "no match"), _queued("alice", "match")
    for job in (_queued("bob", "lead"), older, younger):
        queue.put(job)
    queue.get()
    assert queue.take_matching(lambda job: job.request.prompt == "match", 3, lambda job: 1) == []


# --- the local backend: which jobs may run together, and the pictures they give ---------------------------


def _resolved(**fields) -> tuple[Txt2ImgRequest, ResolvedGeneration]:
    request = Txt2ImgRequest(**{"prompt": "a mug", "seed": 5, **SMALL, **fields})
    return request, ResolvedGeneration.of(request)


def test_batch_key_admits_other_prompts_and_seeds_and_refuses_what_changes_sampling(studio):
    key = studio.backend.batch_key
    base = key(*_resolved())
    assert base is not None
    assert key(*_resolved(prompt="another mug", negative_prompt="blurry", seed=99, batch_size=3)) == base
    for other in ({"steps": 4}, {"cfg_scale": 5.0}, {"width": 128}, {"sampler": "Euler a"}, {"tiling": True}):
        assert key(*_resolved(**other)) != base, other
    for alone in (
        {"batch_count": 2},
        {"enable_hr": True},
        {"subseed_strength": 0.5, "subseed": 3},
        {"sampler": "DPM++ SDE"},
        {"restore_faces": True},
    ):
        assert key(*_resolved(**alone)) is None, alone
    png = io.BytesIO()
    Image.new("RGB", (64, 64)).save(png, "PNG")
    img2img = Img2ImgRequest(prompt="a mug", seed=5, init_image=png.getvalue(), **SMALL)
    assert key(img2img, ResolvedGeneration.of(img2img)) is None
    with pytest.raises(ValueError, match="batch key"):
        list(studio.backend.run_together([_resolved(), _resolved(steps=4)]))


@pytest.mark.parametrize("sampler", ["Euler a", "DPM++ 2M"])
def test_pictures_run_together_are_those_each_job_makes_alone(studio, sampler):
    from core.backend import GeneratedImage

    items = [
        _resolved(prompt="a red mug on a table", seed=11, sampler=sampler),
        _resolved(prompt="a blue logo", negative_prompt="blurry", seed=22, batch_size=2, sampler=sampler),
        _resolved(prompt="(a long prompt:1.2), " + "with many words " * 20, seed=33, sampler=sampler),
    ]
    together = [e for e in studio.backend.run_together(items) if isinstance(e, GeneratedImage)]
    assert [(e.slot, e.seed) for e in together] == [(0, 11), (1, 22), (1, 23), (2, 33)]
    alone = [
        e
        for request, resolved in items
        for e in studio.backend.run(request, resolved)
        if isinstance(e, GeneratedImage)
    ]
    assert [e.infotext for e in together] == [e.infotext for e in alone]
    worst = max(
        int(np.abs(np.asarray(a.image, dtype=int) - np.asarray(b.image, dtype=int)).max())
        for a, b in zip(together, alone, strict=True)
    )
    # batched maths may round differently in the last bits; the pictures are the same
    assert worst <= 2


def test_without_a_max_batch_the_backend_sizes_it(batching_studio):
    studio, backend = batching_studio(max_batch=None)  # what --max-batch 0 (the default) gives
    jobs = [_submit(studio, f"user{i}", "a mug", i) for i in range(5)]
    backend.open()
    studio.start()
    for job in jobs:
        assert job.wait(WAIT) and job.state is JobState.DONE
    assert studio.jobs.max_batch == backend.suggested_batch() == 3
    assert [len(batch) for batch in backend.batches] == [3, 2]


def test_the_local_backend_batches_nothing_on_a_cpu(studio):
    assert studio.backend.suggested_batch() == 1


def test_max_batch_is_a_flag_and_refuses_nonsense():
    from pydantic import ValidationError

    from core.settings import Settings, settings_from_args

    assert Settings().max_batch == 0
    assert settings_from_args(["--max-batch", "6"]).max_batch == 6
    with pytest.raises(ValidationError):
        Settings(max_batch=-1)
    with pytest.raises(ValueError, match="at least 1"):
        Studio(BatchingGatedBackend(), Gallery(Path("/nonexistent-never-created")), max_batch=0)
