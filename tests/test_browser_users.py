"""Two people logged in at once in real Chromium: each sees only their own job and can stop only their own."""

import time

import pytest

from tests.conftest import served_app
from tests.test_browser import ARGS, CHROMIUM


@pytest.fixture(scope="module")
def team_app(tiny_models_dir, tmp_path_factory):
    with served_app(
        tiny_models_dir, tmp_path_factory.mktemp("outputs"), auth=["alice:wonderland", "bob:builder"]
    ) as app:
        yield app


def _login(browser, url, user, password):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(90_000)
    page.goto(url)
    page.locator("input[type=text]").first.fill(user)
    page.locator("input[type=password]").first.fill(password)
    page.keyboard.press("Enter")
    page.wait_for_selector("#txt2img_generate")
    return page


def _slider(page, elem_id, value):
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def test_each_user_sees_and_stops_only_their_own_job(team_app):
    from playwright.sync_api import sync_playwright

    from studio import JobState

    app, url = team_app
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        alice, bob = _login(browser, url, "alice", "wonderland"), _login(browser, url, "bob", "builder")
        alice.locator("#txt2img_prompt textarea").fill("alice's long job")
        _slider(alice, "txt2img_steps", 150)
        _slider(alice, "txt2img_width", 128)
        _slider(alice, "txt2img_height", 128)
        alice.click("#txt2img_generate")
        alice.wait_for_function("document.querySelector('#txt2img_status')?.innerText.includes('Step')")
        job = app.studio.latest_job("alice")
        assert job is not None and job.state is JobState.RUNNING

        # bob sees nothing of it, and his Interrupt does not touch it
        assert bob.inner_text("#txt2img_status").strip() == ""
        bob.click("#txt2img_interrupt")
        time.sleep(1.0)
        assert job.state is JobState.RUNNING
        assert bob.locator("#txt2img_preview img").count() == 0

        # alice can stop it
        alice.click("#txt2img_interrupt")
        alice.wait_for_function(
            "document.querySelector('#txt2img_status')?.innerText.includes('Interrupted')"
        )
        assert job.state is JobState.CANCELLED
        browser.close()
