"""A request is resolved once, at submit: the job carries what it comes to and the backend only executes it."""

from __future__ import annotations

import pytest
from PIL import Image

import core.resolved
from core.backend import GeneratedImage
from core.errors import UnknownLora
from core.requests import Txt2ImgRequest
from core.resolved import ResolvedGeneration
from core.samplers import resolve_schedule

SMALL = {"width": 64, "height": 64, "steps": 2}


def test_resolved_generation_takes_the_tags_out_and_makes_everything_concrete():
    request = Txt2ImgRequest(
        prompt="a mug <lora:grain:0.5> on a table", sampler="DPM++ 2M", seed=41, batch_size=2, batch_count=2
    )
    resolved = ResolvedGeneration.of(request)
    assert resolved.prompt == "a mug  on a table"
    assert [(tag.name, tag.weight) for tag in resolved.loras] == [("grain", 0.5)]
    assert resolved.schedule == resolve_schedule("DPM++ 2M", "Automatic") != "Automatic"
    assert resolved.seeds == (41, 42, 43, 44)
    assert resolved.batch_seeds(1, 2) == [43, 44]


def test_a_random_seed_or_a_bad_tag_cannot_be_resolved():
    with pytest.raises(ValueError, match="random"):
        ResolvedGeneration.of(Txt2ImgRequest(prompt="a mug", seed=-1))
    with pytest.raises(ValueError):
        ResolvedGeneration.of(Txt2ImgRequest(prompt="<lora:a:1> <lora:a:1>", seed=1))


def test_submit_resolves_once_and_the_job_carries_it(make_gated_studio, monkeypatch):
    studio, backend = make_gated_studio()
    calls: list[str] = []
    real_of = ResolvedGeneration.of.__func__  # type: ignore[attr-defined]

    def counting_of(cls, request):
        calls.append(request.prompt)
        return real_of(cls, request)

    monkeypatch.setattr(ResolvedGeneration, "of", classmethod(counting_of))
    counted = {"extract_loras": 0, "resolve_schedule": 0}
    for name in counted:
        real = getattr(core.resolved, name)

        def counting(*args, _real=real, _name=name):
            counted[_name] += 1
            return _real(*args)

        monkeypatch.setattr(core.resolved, name, counting)
    backend.open()
    job = studio.jobs.submit(Txt2ImgRequest(prompt="a mug", seed=-1, batch_size=2, **SMALL))
    job.wait(30)
    assert job.error is None
    assert calls == ["a mug"] and counted == {"extract_loras": 1, "resolve_schedule": 1}
    assert job.resolved is not None and job.resolved.seeds == (job.request.seed, job.request.seed + 1)
    (run,) = backend.runs
    assert run.resolved is job.resolved  # handed to the backend as it was worked out
    assert [image.seed for image in job.images] == list(job.resolved.seeds) == job.seeds


def test_a_bad_lora_tag_is_refused_at_submit(make_gated_studio):
    studio, backend = make_gated_studio()
    with pytest.raises(UnknownLora):
        studio.jobs.submit(Txt2ImgRequest(prompt="<lora:a:1> <lora:a:2>", **SMALL))
    with pytest.raises(UnknownLora):  # a well-formed tag naming a LoRA that is not here
        studio.jobs.submit(Txt2ImgRequest(prompt="<lora:nothere:1>", **SMALL))
    assert backend.runs == []


def test_the_local_backend_executes_what_it_is_given(studio):
    """Seeds and schedule come from the resolution the backend is handed, not from the request again."""
    request = Txt2ImgRequest(prompt="a mug", model="tiny-sd1", seed=5, batch_size=2, **SMALL)
    given = ResolvedGeneration(prompt="a mug", loras=(), schedule="Karras", seeds=(900, 77))
    images = [e for e in studio.backend.run(request, given) if isinstance(e, GeneratedImage)]
    assert [image.seed for image in images] == [900, 77]
    assert all("Schedule type: Karras" in image.infotext for image in images)
    alone = [
        e
        for e in studio.backend.run(request.model_copy(update={"seed": 900}))
        if isinstance(e, GeneratedImage)
    ]
    # image 0 has seed 900 both ways; with the same schedule it is the same picture
    same_schedule = ResolvedGeneration.of(request.model_copy(update={"seed": 900}))
    again = [
        e
        for e in studio.backend.run(request.model_copy(update={"seed": 900}), same_schedule)
        if isinstance(e, GeneratedImage)
    ]
    assert _pixels(alone[0].image) == _pixels(again[0].image)


def _pixels(image: Image.Image) -> bytes:
    return image.convert("RGB").tobytes()
