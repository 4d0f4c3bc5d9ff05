"""The Tiling and Restore faces checkboxes in a real Chromium: ticked, they reach the request and the infotext."""

from tests.browser.pages import fill, page_fixture, require_chromium, shot, small_settings, wait_status

require_chromium()
page = page_fixture()


def test_tiling_and_restore_faces_checkboxes_reach_the_infotext(running_app, page):
    app, _ = running_app
    small_settings(page, "txt2img", "a seamless tile of leaves")
    fill(page, "#txt2img_seed input", 515)
    for box in ("txt2img_tiling", "txt2img_restore_faces"):
        page.locator(f"#{box} input[type=checkbox]").check()
    shot(page, "txt2img-tiling")
    page.click("#txt2img_generate")
    wait_status(page, "txt2img")
    page.wait_for_function(
        "document.querySelector('#txt2img_info textarea')?.value.includes('Seed: 515')", timeout=90_000
    )
    info = page.locator("#txt2img_info textarea").input_value()
    assert "Tiling: True" in info and "Face restoration: none installed" in info  # no restorer in the tests
    record = app.studio.gallery.recent(limit=1)[0]
    assert "Tiling: True" in record.infotext
    for box in ("txt2img_tiling", "txt2img_restore_faces"):
        page.locator(f"#{box} input[type=checkbox]").uncheck()
