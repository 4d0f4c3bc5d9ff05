"""Two people logged in at once in real Chromium: each sees only their own job and can stop only their own."""

import pytest

from tests.browser.pages import chromium, logged_in_page, require_chromium, set_slider
from tests.helpers import served_app

require_chromium()


@pytest.fixture(scope="module")
def team_app(tiny_models_dir, tmp_path_factory):
    with served_app(
        tiny_models_dir, tmp_path_factory.mktemp("outputs"), auth=["alice:wonderland", "bob:builder"]
    ) as app:
        yield app


def test_each_user_sees_and_stops_only_their_own_job(team_app):
    from studio import JobState

    app, url = team_app
    with chromium() as browser:
        alice, bob = (
            logged_in_page(browser, url, "alice", "wonderland"),
            logged_in_page(browser, url, "bob", "builder"),
        )
        alice.locator("#txt2img_prompt textarea").fill("alice's long job")
        set_slider(alice, "txt2img_steps", 150)
        set_slider(alice, "txt2img_width", 128)
        set_slider(alice, "txt2img_height", 128)
        alice.click("#txt2img_generate")
        alice.wait_for_function("document.querySelector('#txt2img_status')?.innerText.includes('Step')")
        job = app.studio.jobs.latest_job("alice")
        assert job is not None and job.state is JobState.RUNNING

        # bob sees nothing of it, and his Interrupt does not touch it
        assert bob.inner_text("#txt2img_status").strip() == ""
        with bob.expect_response(lambda r: r.url.endswith("/gradio_api/run/predict")) as answer:
            bob.click("#txt2img_interrupt")  # the Interrupt event runs at once (no queue)
        assert answer.value.ok
        assert not job.cancel_requested and job.state is JobState.RUNNING
        assert bob.locator("#txt2img_preview img").count() == 0

        # alice can stop it
        alice.click("#txt2img_interrupt")
        alice.wait_for_function(
            "document.querySelector('#txt2img_status')?.innerText.includes('Interrupted')"
        )
        assert job.state is JobState.CANCELLED
