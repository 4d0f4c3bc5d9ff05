"""The page in a real Chromium: type a prompt, generate, see the image, find the file and its index row."""

import io
import re
from pathlib import Path

from tests.browser.pages import (
    close_accordion,
    close_toasts,
    fetch,
    fill,
    open_accordion,
    page_fixture,
    require_chromium,
    search_gallery,
    set_slider,
    shot,
    slider_value,
    small_settings,
    wait_images,
    wait_status,
    wait_until,
)

require_chromium()
page = page_fixture()


def test_type_prompt_generate_and_see_the_saved_image(running_app, page):
    app, _ = running_app
    before = app.studio.gallery.count()
    shot(page, "txt2img-empty")
    small_settings(page, "txt2img", "a red fox logo, flat vector")
    fill(page, "#txt2img_seed input", 4242)
    page.click("#txt2img_generate")
    page.wait_for_selector("#txt2img_gallery img", timeout=120_000)
    wait_status(page, "txt2img", timeout=90_000)
    for accordion in ("txt2img_variation", "txt2img_hires"):
        open_accordion(page, accordion)
    page.wait_for_selector("#txt2img_subseed_strength", state="visible")
    page.wait_for_selector("#txt2img_hr_scale", state="visible")
    shot(page, "tab_txt2img")
    for accordion in ("txt2img_variation", "txt2img_hires"):
        close_accordion(page, accordion)
    assert "seed 4242" in page.inner_text("#txt2img_status")
    info = page.locator("#txt2img_info textarea").input_value()
    assert info.startswith("a red fox logo, flat vector") and "Seed: 4242" in info and "Steps: 2" in info
    assert app.studio.gallery.count() == before + 1
    record = app.studio.gallery.recent(limit=1)[0]
    assert record.seed == 4242 and record.prompt == "a red fox logo, flat vector"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}/\d{5}-4242\.png", record.relpath)
    assert app.studio.gallery.file_path(record.id).is_file()


def test_invalid_value_shows_an_error_toast_and_saves_nothing(running_app, page):
    app, _ = running_app
    before = app.studio.gallery.count()
    open_accordion(page, "txt2img_advanced")
    page.locator("#txt2img_model input").fill("")
    page.evaluate("document.querySelector('#txt2img_sampler input').value = ''")
    set_slider(page, "txt2img_width", 64)
    page.locator("#txt2img_prompt textarea").fill("x" * 8001)
    page.click("#txt2img_generate")
    toast = page.locator(".toast-body").first
    toast.wait_for(timeout=90_000)
    assert "prompt" in toast.inner_text().lower()
    shot(page, "txt2img-error")
    close_toasts(page)
    assert app.studio.gallery.count() == before
    page.locator("#txt2img_prompt textarea").fill("a red fox logo")


def test_gallery_search_open_an_image_and_reuse_its_parameters(running_app, page):
    app, _ = running_app
    page.click("#tab_gallery-button")
    page.wait_for_selector("#gallery_grid img")
    assert page.locator("#gallery_grid img").count() == app.studio.gallery.count()
    search_gallery(page, "fox")
    page.wait_for_function("document.querySelector('#gallery_page')?.innerText.includes('1 image')")
    page.locator("#gallery_grid img").first.click()
    page.wait_for_function(
        "document.querySelector('#gallery_details textarea')?.value.includes('Seed: 4242')"
    )
    shot(page, "tab_gallery")
    page.click("#gallery_reuse")
    page.wait_for_function("document.querySelector('#txt2img_seed input')?.value === '4242'")
    page.wait_for_selector("#tab_txt2img", state="visible")
    assert page.locator("#txt2img_prompt textarea").input_value() == "a red fox logo, flat vector"
    assert slider_value(page, "txt2img_steps") == "2"
    page.locator("#txt2img_seed input").fill("-1")


def test_png_info_reads_a_picture_and_sends_it_to_txt2img(running_app, page):
    app, _ = running_app
    record = app.studio.gallery.recent(limit=1)[0]
    page.click("#tab_pnginfo-button")
    page.set_input_files("#pnginfo_image input[type=file]", str(app.studio.gallery.file_path(record.id)))
    page.wait_for_function("document.querySelector('#pnginfo_text textarea')?.value.includes('Seed:')")
    assert page.locator("#pnginfo_text textarea").input_value() == record.infotext
    shot(page, "tab_pnginfo")
    page.click("#pnginfo_send_txt2img")
    page.wait_for_function(f"document.querySelector('#txt2img_seed input')?.value === '{record.seed}'")
    assert page.locator("#txt2img_prompt textarea").input_value() == record.prompt
    page.locator("#txt2img_seed input").fill("-1")


def test_settings_survive_a_reload_in_the_same_browser(running_app, page):
    page.click("#tab_txt2img-button")
    page.locator("#txt2img_prompt textarea").fill("kept across reloads")
    set_slider(page, "txt2img_steps", 3)
    set_slider(page, "txt2img_width", 72)
    set_slider(page, "txt2img_height", 64)
    page.click("#txt2img_generate")
    wait_status(page, "txt2img", timeout=90_000)
    page.reload(wait_until="domcontentloaded")
    page.wait_for_selector("#txt2img_generate")
    page.wait_for_function(
        "document.querySelector('#txt2img_prompt textarea')?.value === 'kept across reloads'", timeout=90_000
    )
    assert slider_value(page, "txt2img_steps") == "3"
    assert slider_value(page, "txt2img_width") == "72"
    assert page.locator("#txt2img_seed input").input_value() == "-1"  # the seed is not remembered


def _source_png(tmp_path_factory) -> Path:
    import numpy as np
    from PIL import Image

    pixels = np.zeros((96, 128, 3), np.uint8)
    pixels[..., 0] = np.linspace(0, 255, 128, dtype=np.uint8)[None, :]
    pixels[..., 2] = 128
    path = tmp_path_factory.mktemp("src") / "source.png"
    Image.fromarray(pixels, "RGB").save(path)
    return path


def test_send_a_txt2img_result_to_img2img_and_generate(running_app, page):
    app, _ = running_app
    page.click("#tab_txt2img-button")
    small_settings(page, "txt2img", "a badge")
    page.click("#txt2img_generate")
    wait_status(page, "txt2img")
    page.click("#txt2img_send_img2img")
    page.wait_for_selector("#img2img_image img")
    page.wait_for_selector("#tab_img2img", state="visible")
    shot(page, "img2img-sent")
    open_accordion(page, "img2img_advanced")
    page.wait_for_function("document.querySelector('#img2img_width input[type=number]')?.value === '64'")
    before = app.studio.gallery.count()
    set_slider(page, "img2img_steps", 4)
    page.click("#img2img_generate")
    wait_status(page, "img2img")
    assert app.studio.gallery.count() == before + 1
    record = app.studio.gallery.recent(limit=1)[0]
    assert record.task == "img2img" and "Denoising strength: 0.75" in record.infotext


def test_compare_an_img2img_result_with_its_source(running_app, page):
    import numpy as np
    from PIL import Image

    app, _ = running_app
    result, source = app.studio.gallery.recent(
        limit=2
    )  # the img2img result, the txt2img picture it started from
    assert (result.task, source.task) == ("img2img", "txt2img")
    page.click("#img2img_compare_source")
    wait_images(page, "#img2img_compare img", 2)
    shot(page, "tab_img2img")
    sources = [img.get_attribute("src") or "" for img in page.locator("#img2img_compare img").all()]
    shown = [np.asarray(Image.open(io.BytesIO(fetch(page, src))).convert("RGB")) for src in sources]
    expected = [
        np.asarray(Image.open(app.studio.gallery.file_path(r.id)).convert("RGB")) for r in (source, result)
    ]
    assert not np.array_equal(*expected)  # img2img changed the picture, so the two sides tell them apart
    assert np.array_equal(shown[0], expected[0]), "the slider's A side is not the source picture"
    assert np.array_equal(shown[1], expected[1]), "the slider's B side is not the result"


def test_paint_a_mask_and_inpaint_only_there(running_app, page, tmp_path_factory):
    import numpy as np
    from PIL import Image

    app, _ = running_app
    source = _source_png(tmp_path_factory)
    # the picture reaches the editor the way a designer's usually does: from the gallery, "Send to inpaint"
    app.studio.gallery.save(
        Image.open(source), infotext="gradient source", seed=1, task="txt2img", author="local", model="upload"
    )
    page.click("#tab_gallery-button")
    search_gallery(page, "gradient")
    page.wait_for_function("document.querySelector('#gallery_page')?.innerText.includes('· 1 image')")
    page.locator("#gallery_grid img").first.click()
    page.wait_for_function("document.querySelector('#gallery_details textarea')?.value === 'gradient source'")
    page.click("#gallery_send_inpaint")
    page.wait_for_selector("#tab_inpaint", state="visible")
    open_accordion(page, "inpaint_advanced")
    page.wait_for_function("document.querySelector('#inpaint_width input[type=number]')?.value === '128'")
    page.wait_for_selector("#inpaint_editor canvas")
    page.wait_for_timeout(500)
    page.click("#inpaint_editor button[aria-label=Brush]")
    box = page.locator("#inpaint_editor canvas").first.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx - 30, cy)
    page.mouse.down()
    for i in range(7):
        page.mouse.move(cx - 30 + i * 10, cy)
    page.mouse.up()
    shot(page, "inpaint-painted")
    page.locator("#inpaint_prompt textarea").fill("a red dot")
    set_slider(page, "inpaint_steps", 2)
    before = app.studio.gallery.count()
    page.click("#inpaint_generate")
    wait_status(page, "inpaint")
    shot(page, "tab_inpaint")
    assert app.studio.gallery.count() == before + 1
    record = app.studio.gallery.recent(limit=1)[0]
    assert record.task == "inpaint" and "Mask blur: 4" in record.infotext
    out = np.asarray(Image.open(app.studio.gallery.file_path(record.id)).convert("RGB")).astype(int)
    src = np.asarray(Image.open(source)).astype(int)
    assert out.shape == src.shape
    changed = np.any(out != src, axis=2)
    assert changed.any(), "the painted stroke was not repainted"
    rows, cols = np.nonzero(changed)
    # only a band around the stroke changed: the corners and edges of the picture are untouched
    assert rows.min() > 5 and rows.max() < 90 and cols.min() > 5 and cols.max() < 122

    # "Erase" refills the same mask from its surroundings, with no prompt
    page.click("#inpaint_erase")
    wait_until(page, lambda: app.studio.gallery.count() >= before + 2, "the erased picture")
    erased = app.studio.gallery.recent(limit=1)[0]
    assert erased.prompt == "" and "Masked content: fill" in erased.infotext


def test_inpaint_tab_offers_the_inpainting_sibling(running_app, page):
    page.click("#tab_inpaint-button")
    button = page.locator("#inpaint_use_sibling")
    button.wait_for(timeout=90_000)
    assert "tiny-sd1-inpainting" in button.inner_text()
    button.click()
    page.wait_for_function(
        "document.querySelector('#inpaint_model input')?.value.includes('tiny-sd1-inpainting')",
        timeout=90_000,
    )


def test_gallery_refresh_picks_up_files_copied_into_outputs(running_app, page):
    import shutil

    app, _ = running_app
    record = app.studio.gallery.recent(limit=1)[0]
    source = app.studio.gallery.file_path(record.id)
    copy = source.parent / "99999-777.png"
    shutil.copy(source, copy)
    before = app.studio.gallery.count()
    page.click("#tab_gallery-button")
    page.locator("#gallery_search textarea, #gallery_search input").first.fill("")
    page.click("#gallery_refresh")
    page.wait_for_function(
        f"document.querySelector('#gallery_page')?.innerText.includes('{before + 1} image')"
    )
    assert app.studio.gallery.count() == before + 1
