"""The Retouch tab in a real Chromium: build a chain of steps (add, reorder, remove), remove a product shot's
background and download a transparent PNG, see a failing step stop the chain with the steps before it kept,
then replay a run's recipe on a batch of uploads."""

from __future__ import annotations

import io
import json
import re

from PIL import Image, ImageDraw

from core.infotext import EASEL_CHUNK_KEY
from core.recipes import parse_recipe, recipe_from_png
from tests.browser.pages import open_accordion, page_fixture, require_chromium, shot, wait_images, wait_status

require_chromium()
page = page_fixture(
    ready="#tab_retouch-button", accept_downloads=True, viewport={"width": 1440, "height": 900}
)


def _product(path, size, colour):
    """A "product" (a disc) on a near-white studio background."""
    width, height = size
    picture = Image.new("RGB", size, (245, 245, 245))
    ImageDraw.Draw(picture).ellipse((width * 0.3, height * 0.2, width * 0.7, height * 0.8), fill=colour)
    picture.save(path)
    return path


def _corners_clear_centre_solid(picture):
    alpha = picture.getchannel("A")
    w, h = picture.size
    corners = [alpha.getpixel(p) for p in ((0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1))]
    return corners == [0, 0, 0, 0] and alpha.getpixel((w // 2, h // 2)) == 255


TOOL_NAMES = {
    "Remove background": "remove_background", "Replace background": "replace_background", "Enhance": "enhance",
    "Upscale": "upscale", "SD upscale": "sd_upscale", "Vectorise": "vectorize", "Logo pack": "logo_pack",
}  # fmt: skip


def _add_step(page, tool_label):
    """Pick the tool, press Add step, and wait for its panel (the next pick must not race the tool list)."""
    box = page.locator("#retouch_tool input")
    box.click()
    box.fill(tool_label)
    page.locator("#retouch_tool li[role=option]", has_text=tool_label).first.click()
    page.click("#retouch_add_step")
    page.wait_for_selector(f"#retouch_step_{TOOL_NAMES[tool_label]}", state="visible")
    page.wait_for_function(
        "(label) => !document.querySelector('#retouch_tool input').value.startsWith(label)", arg=tool_label
    )


def _steps_in_page_order(page):
    """The shown step panels' tools, top to bottom, as the page lays them out."""
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('#retouch_steps > [id^=retouch_step_]'))
            .filter(p => p.offsetParent !== null)
            .sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top)
            .map(p => p.id.replace('retouch_step_', ''))"""
    )


def _clear_steps(page):
    for tool in _steps_in_page_order(page):
        page.click(f"#retouch_step_{tool}_remove")
    _wait_steps(page, [])


def _wait_steps(page, tools):
    page.wait_for_function(
        """(tools) => {
            const shown = Array.from(document.querySelectorAll('#retouch_steps > [id^=retouch_step_]'))
              .filter(p => p.offsetParent !== null)
              .sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top)
              .map(p => p.id.replace('retouch_step_', ''));
            return JSON.stringify(shown) === JSON.stringify(tools);
        }""",
        arg=tools,
    )


def test_steps_are_added_reordered_and_removed_and_enhance_is_not_on_by_default(page):
    page.click("#tab_retouch-button")
    page.wait_for_selector("#retouch_image", state="visible")
    assert _steps_in_page_order(page) == []  # nothing runs until a step is added: no Enhance by default
    assert "No steps yet" in page.inner_text("#retouch_chain")
    _add_step(page, "Upscale")
    _add_step(page, "Enhance")
    _add_step(page, "Vectorise")
    _wait_steps(page, ["upscale", "enhance", "vectorize"])
    page.click("#retouch_step_vectorize_up")
    _wait_steps(page, ["upscale", "vectorize", "enhance"])
    assert "Step 2 · Vectorise" in page.inner_text("#retouch_step_vectorize_title")
    page.click("#retouch_step_upscale_down")
    _wait_steps(page, ["vectorize", "upscale", "enhance"])
    page.click("#retouch_step_vectorize_remove")
    _wait_steps(page, ["upscale", "enhance"])
    page.click("#retouch_step_upscale_remove")
    page.click("#retouch_step_enhance_remove")
    _wait_steps(page, [])
    # the SD upscale tile size shows its whole maximum (not cut to "204")
    _add_step(page, "SD upscale")
    page.wait_for_selector("#retouch_tile_size", state="visible")
    maximum = page.locator("#retouch_tile_size").inner_text()
    assert "2048" in maximum
    page.locator("#retouch_tile_size").scroll_into_view_if_needed()
    shot(page, "retouch-sd-upscale")
    number = page.locator("#retouch_tile_size input[type=number]")
    assert number.evaluate("n => n.scrollWidth <= n.clientWidth")  # "512" fits its box
    page.click("#retouch_step_sd_upscale_remove")
    _wait_steps(page, [])


def test_remove_background_and_download_a_png_with_transparent_corners(running_app, page, tmp_path):
    app, _ = running_app
    source = tmp_path / "mug-shot.png"
    picture = Image.new("RGB", (120, 90), (245, 245, 245))
    ImageDraw.Draw(picture).ellipse((35, 20, 85, 70), fill=(30, 120, 60))
    picture.save(source)
    before = app.studio.gallery.count()

    page.set_input_files("#retouch_image input[type=file]", str(source))
    page.wait_for_selector("#retouch_image img")
    page.wait_for_function(
        "document.querySelector('#retouch_title input, #retouch_title textarea')?.value === 'mug-shot'"
    )
    _add_step(page, "Remove background")
    _wait_steps(page, ["remove_background"])
    page.click("#retouch_run")
    page.wait_for_function(
        "document.querySelector('#retouch_info textarea')?.value.includes('remove_background')",
        timeout=120_000,
    )
    page.wait_for_selector("#retouch_downloads a")
    wait_images(page, "#retouch_result img", 2)
    shot(page, "tab_retouch")
    assert "Done" in page.inner_text("#retouch_status")
    assert "Done" in page.inner_text("#retouch_step_remove_background_state")
    assert app.studio.gallery.count() == before + 1

    (saved,) = app.studio.gallery.recent(limit=1)
    with Image.open(app.studio.gallery.file_path(saved.id)) as kept:
        assert json.loads(kept.info[EASEL_CHUNK_KEY]).get("title") == "mug-shot"  # the upload's name
    link = page.locator("#retouch_downloads a").first
    with page.expect_download() as caught:
        link.click()
    data = caught.value.path().read_bytes()
    with Image.open(io.BytesIO(data)) as result:
        result.load()
        assert result.format == "PNG" and result.mode == "RGBA" and result.size == (120, 90)
        assert _corners_clear_centre_solid(result)


def test_a_failing_step_stops_the_chain_and_keeps_the_steps_before_it(running_app, page, tmp_path):
    """Remove background → Upscale → Vectorise → Logo pack on a picture with nothing in it: the cut-out takes
    everything, so the logo pack refuses (nothing to make a logo of). Steps 1 to 3 are kept."""
    app, _ = running_app
    studio = app.studio
    page.click("#tab_retouch-button")
    page.wait_for_selector("#retouch_image", state="visible")
    _clear_steps(page)
    blank = tmp_path / "blank.png"
    Image.new("RGB", (64, 48), (240, 240, 240)).save(blank)
    page.set_input_files("#retouch_image input[type=file]", str(blank))
    page.wait_for_function(
        "document.querySelector('#retouch_title input, #retouch_title textarea')?.value === 'blank'"
    )
    for label in ("Remove background", "Upscale", "Vectorise", "Logo pack"):
        _add_step(page, label)
    _wait_steps(page, ["remove_background", "upscale", "vectorize", "logo_pack"])
    before = studio.gallery.count()
    page.click("#retouch_run")
    wait_status(page, "retouch", "Failed")
    page.wait_for_function(
        "document.querySelector('#retouch_step_logo_pack_state')?.innerText.includes('Failed')",
        timeout=30_000,
    )
    wait_images(page, "#retouch_step_results img", 2)
    shot(page, "retouch-failed-step")
    failure = page.inner_text("#retouch_step_logo_pack_state")
    assert "transparent" in failure
    assert "Step 4" in page.inner_text("#retouch_status")
    for tool in ("remove_background", "upscale", "vectorize"):
        assert "Done" in page.inner_text(f"#retouch_step_{tool}_state") or "Done, but" in page.inner_text(
            f"#retouch_step_{tool}_state"
        )
    # the cut-out and its upscaled copy are in the gallery, and the SVG of step 3 among the downloads
    assert studio.gallery.count() == before + 2
    upscaled, cut = studio.gallery.recent(limit=2)
    assert (cut.width, upscaled.width) == (64, 128)
    listed = page.inner_text("#retouch_downloads")
    assert re.search(r"blank-[0-9a-f]{8}-vector\s*\.svg", listed), listed
    assert page.locator("#retouch_svg_preview img").count() == 1


def test_apply_the_recipe_of_a_run_to_a_batch_of_two_pictures(running_app, page, tmp_path):
    app, _ = running_app
    studio = app.studio
    # the failing run above filled the recipe box with its chain; run a plain remove background first
    _clear_steps(page)
    page.set_input_files(
        "#retouch_image input[type=file]", str(_product(tmp_path / "p.png", (80, 60), (9, 99, 9)))
    )
    page.wait_for_function(
        "document.querySelector('#retouch_title input, #retouch_title textarea')?.value === 'p'"
    )
    _add_step(page, "Remove background")
    page.click("#retouch_run")
    wait_status(page, "retouch", "Done")
    (last_run,) = studio.gallery.recent(limit=1)
    recipe = recipe_from_png(studio.gallery.file_path(last_run.id).read_bytes())
    assert recipe is not None and [op.op for op in recipe.ops] == ["remove_background"]
    open_accordion(page, title="Recipe: replay this chain")
    page.wait_for_selector("#retouch_recipe .cm-content", state="visible")
    page.wait_for_function(
        "!document.querySelector('#retouch_recipe .cm-content').innerText.includes('upscale')"
    )
    shown = parse_recipe(page.locator("#retouch_recipe .cm-content").inner_text())
    assert shown == recipe

    sizes = [(96, 64), (64, 80)]  # different sizes tell the two results apart
    files = [
        _product(tmp_path / f"item{i}.png", size, colour)
        for i, (size, colour) in enumerate(zip(sizes, [(200, 30, 30), (30, 30, 200)], strict=True))
    ]
    before = studio.gallery.count()
    page.set_input_files("#retouch_batch input[type=file]", [str(f) for f in files])
    for file in files:  # both uploads listed under the file box
        page.wait_for_selector(f"#retouch_batch [aria-label='{file.name}']")
    page.click("#retouch_apply_batch")
    wait_status(page, "retouch", "2 of 2 pictures done")
    wait_images(page, "#retouch_batch_gallery img", 2)
    shot(page, "retouch-batch")

    assert studio.gallery.count() == before + 2
    made = studio.gallery.recent(limit=2)[::-1]  # oldest first: the order of the uploads
    for image, size in zip(made, sizes, strict=True):
        data = studio.gallery.file_path(image.id).read_bytes()
        assert recipe_from_png(data) == recipe, "a batch result does not carry the recipe it was made with"
        with Image.open(io.BytesIO(data)) as result:
            assert result.mode == "RGBA" and result.size == size
            assert _corners_clear_centre_solid(result)


def test_a_picture_sent_from_the_gallery_lands_at_the_top_of_the_tab(page):
    """ "Send to retouch" from a page scrolled down: the Retouch tab opens scrolled to its top, picture in view."""
    page.set_viewport_size({"width": 1440, "height": 480})  # short: the gallery tab scrolls
    try:
        page.click("#tab_gallery-button")
        page.locator("#gallery_grid img").first.click()
        page.wait_for_selector("#gallery_send_retouch", state="visible")
        page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        page.wait_for_function("window.scrollY > 100")
        page.evaluate("document.getElementById('gallery_send_retouch').click()")  # no scrolling to the button
        page.wait_for_selector("#tab_retouch", state="visible")
        page.wait_for_selector("#retouch_image img")
        page.wait_for_function("window.scrollY === 0")
        assert page.locator("#retouch_image").bounding_box()["y"] >= 0
        assert (
            page.input_value("#retouch_title input, #retouch_title textarea") == ""
        )  # not an upload: no title
    finally:
        page.set_viewport_size({"width": 1440, "height": 900})


def test_the_tab_on_a_phone(page):
    """The tab at 390×844 with a chain of two steps (screenshots to look at): no control wider than the page."""
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        page.click("#tab_retouch-button")
        page.wait_for_selector("#retouch_image", state="visible")
        _clear_steps(page)
        _add_step(page, "Replace background")
        _add_step(page, "Logo pack")
        _wait_steps(page, ["replace_background", "logo_pack"])
        page.evaluate("window.scrollTo(0, 0)")
        shot(page, "retouch-phone")
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
    finally:
        page.set_viewport_size({"width": 1440, "height": 900})
