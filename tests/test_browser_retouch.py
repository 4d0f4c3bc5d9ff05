"""The Retouch tab in a real Chromium: upload a product shot, remove its background, download a transparent PNG."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw

from tests.test_browser import ARGS, CHROMIUM, _shot  # noqa: F401  (skips the module without chromium)


@pytest.fixture(scope="module")
def page(running_app):
    from playwright.sync_api import sync_playwright

    _, url = running_app
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 900}, accept_downloads=True)
        page.set_default_timeout(90_000)
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_selector("#tab_retouch-button")
        yield page
        browser.close()


def test_remove_background_and_download_a_png_with_transparent_corners(running_app, page, tmp_path):
    app, _ = running_app
    source = tmp_path / "product.png"
    picture = Image.new("RGB", (120, 90), (245, 245, 245))
    ImageDraw.Draw(picture).ellipse((35, 20, 85, 70), fill=(30, 120, 60))
    picture.save(source)
    before = app.studio.gallery.count()

    page.click("#tab_retouch-button")
    page.wait_for_selector("#retouch_image", state="visible")
    page.set_input_files("#retouch_image input[type=file]", str(source))
    page.wait_for_selector("#retouch_image img")
    ops = page.locator("#retouch_ops")
    ops.get_by_label("Enhance").uncheck()
    ops.get_by_label("Remove background").check()
    page.click("#retouch_run")
    page.wait_for_function(
        "document.querySelector('#retouch_info textarea')?.value.includes('remove_background')",
        timeout=120_000,
    )
    page.wait_for_selector("#retouch_downloads a")
    _shot(page, "retouch-result")
    assert "Done" in page.inner_text("#retouch_status")
    assert app.studio.gallery.count() == before + 1

    link = page.locator("#retouch_downloads a").first
    with page.expect_download() as caught:
        link.click()
    data = caught.value.path().read_bytes()
    with Image.open(io.BytesIO(data)) as result:
        result.load()
        assert result.format == "PNG" and result.mode == "RGBA" and result.size == (120, 90)
        alpha = result.getchannel("A")
        corners = [alpha.getpixel(p) for p in ((0, 0), (119, 0), (0, 89), (119, 89))]
        assert corners == [0, 0, 0, 0] and alpha.getpixel((60, 45)) == 255
