"""The status line under a tab's buttons: the outcome of the last run, seeds only where a run used one."""

from __future__ import annotations

from PIL import Image

from core.images import encode_png
from core.requests import Txt2ImgRequest
from core.retouch import RetouchRequest
from gallery import GalleryImage
from studio import Job, JobState
from ui.common import FAILED_REASON_CHARS, failed_html, progress_html

PICTURE = encode_png(Image.new("RGB", (64, 48), (200, 200, 200)))


def _image(seed: int) -> GalleryImage:
    return GalleryImage(
        id=1, relpath="2026-01-01/00001-1.png", created="2026-01-01T00:00:00", task="retouch", author="local",
        model="", seed=seed, width=64, height=48, prompt="", negative_prompt="", infotext="",
    )  # fmt: skip


def _done(request, seed: int) -> Job:
    job = Job(request=request, user="local", state=JobState.DONE, started=1.0, finished=2.5)
    job.images.append(_image(seed))
    return job


def test_a_finished_generation_names_its_seed():
    text = progress_html(_done(Txt2ImgRequest(prompt="a fox", seed=4242), 4242), None)
    assert 'data-state="done"' in text and "seed 4242" in text


def test_a_retouch_chain_without_a_diffusion_operation_names_no_seed():
    request = RetouchRequest(image=PICTURE, ops=[{"op": "remove_background"}])
    assert not request.needs_model
    text = progress_html(_done(request, 123456), None)
    assert 'data-state="done"' in text and "1 image(s)" in text
    assert "seed" not in text and "123456" not in text


def test_a_retouch_chain_with_a_diffusion_operation_names_its_seed():
    request = RetouchRequest(image=PICTURE, ops=[{"op": "sd_upscale"}], seed=77)
    assert request.needs_model
    assert "seed 77" in progress_html(_done(request, 77), None)


def test_a_failed_run_says_it_failed_with_a_short_escaped_reason():
    job = Job(request=Txt2ImgRequest(prompt="a fox"), user="local", state=JobState.FAILED)
    job.error = "Out of memory <at> 2048×2048\nTraceback details that the user need not see"
    text = progress_html(job, None)
    assert 'data-state="failed"' in text and "Failed: Out of memory &lt;at&gt; 2048×2048" in text
    assert "Traceback" not in text and "Done" not in text
    long = failed_html("x" * 1000)
    assert "x" * FAILED_REASON_CHARS not in long and "…" in long
    assert failed_html("") == '<div class="easel-status" data-state="failed">Failed</div>'
