"""The page in a real Chromium: type a prompt, generate, see the image, find the file and its index row."""

import os
import re
import shutil
import time
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
SCREENSHOTS = Path(os.environ.get("EASEL_SCREENSHOTS", "")) if os.environ.get("EASEL_SCREENSHOTS") else None

if not Path(CHROMIUM).exists():
    if os.environ.get("EASEL_REQUIRE_BROWSER"):
        raise RuntimeError(
            "EASEL_REQUIRE_BROWSER is set but Debian's chromium is missing (apt-get install chromium)"
        )
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def page(running_app):
    from playwright.sync_api import sync_playwright

    _, url = running_app
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.set_default_timeout(90_000)  # generous: CI machines are slow and busy
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_selector("#txt2img_generate")
        yield page
        browser.close()


def _shot(page, name):
    if SCREENSHOTS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _set_slider(page, elem_id, value):
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def test_type_prompt_generate_and_see_the_saved_image(running_app, page):
    app, _ = running_app
    before = app.studio.gallery.count()
    _shot(page, "txt2img-empty")
    page.locator("#txt2img_prompt textarea").fill("a red fox logo, flat vector")
    _set_slider(page, "txt2img_steps", 2)
    _set_slider(page, "txt2img_width", 64)
    _set_slider(page, "txt2img_height", 64)
    seed = page.locator("#txt2img_seed input")
    seed.fill("4242")
    seed.press("Tab")
    page.click("#txt2img_generate")
    page.wait_for_selector("#txt2img_gallery img", timeout=120_000)
    page.wait_for_function(
        "document.querySelector('#txt2img_status')?.innerText.includes('Done')", timeout=90_000
    )
    _shot(page, "txt2img-result")
    assert "seed 4242" in page.inner_text("#txt2img_status")
    info = page.locator("#txt2img_info textarea").input_value()
    assert info.startswith("a red fox logo, flat vector") and "Seed: 4242" in info and "Steps: 2" in info
    assert app.studio.gallery.count() == before + 1
    record = app.studio.recent_images(limit=1)[0]
    assert record.seed == 4242 and record.prompt == "a red fox logo, flat vector"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}/\d{5}-4242\.png", record.relpath)
    assert app.studio.image_path(record.id).is_file()


def test_invalid_value_shows_an_error_toast_and_saves_nothing(running_app, page):
    app, _ = running_app
    before = app.studio.gallery.count()
    page.locator("#txt2img_model input").fill("")
    page.evaluate("document.querySelector('#txt2img_sampler input').value = ''")
    _set_slider(page, "txt2img_width", 64)
    page.locator("#txt2img_prompt textarea").fill("x" * 8001)
    page.click("#txt2img_generate")
    toast = page.locator(".toast-body").first
    toast.wait_for(timeout=90_000)
    assert "prompt" in toast.inner_text().lower()
    _shot(page, "txt2img-error")
    assert app.studio.gallery.count() == before
    page.locator("#txt2img_prompt textarea").fill("a red fox logo")


def test_gallery_search_open_an_image_and_reuse_its_parameters(running_app, page):
    app, _ = running_app
    page.click("#tab_gallery-button")
    page.wait_for_selector("#gallery_grid img")
    assert page.locator("#gallery_grid img").count() == app.studio.gallery.count()
    search = page.locator("#gallery_search textarea, #gallery_search input").first
    search.fill("fox")
    search.press("Enter")
    page.wait_for_function("document.querySelector('#gallery_page')?.innerText.includes('1 image')")
    page.locator("#gallery_grid img").first.click()
    page.wait_for_function(
        "document.querySelector('#gallery_details textarea')?.value.includes('Seed: 4242')"
    )
    _shot(page, "gallery")
    page.click("#gallery_reuse")
    page.wait_for_function("document.querySelector('#txt2img_seed input')?.value === '4242'")
    page.wait_for_selector("#tab_txt2img", state="visible")
    assert page.locator("#txt2img_prompt textarea").input_value() == "a red fox logo, flat vector"
    assert page.locator("#txt2img_steps input[type=number]").input_value() == "2"
    page.locator("#txt2img_seed input").fill("-1")


def test_png_info_reads_a_picture_and_sends_it_to_txt2img(running_app, page):
    app, _ = running_app
    record = app.studio.recent_images(limit=1)[0]
    page.click("#tab_pnginfo-button")
    page.set_input_files("#pnginfo_image input[type=file]", str(app.studio.image_path(record.id)))
    page.wait_for_function("document.querySelector('#pnginfo_text textarea')?.value.includes('Seed:')")
    assert page.locator("#pnginfo_text textarea").input_value() == record.infotext
    page.click("#pnginfo_send_txt2img")
    page.wait_for_function(f"document.querySelector('#txt2img_seed input')?.value === '{record.seed}'")
    assert page.locator("#txt2img_prompt textarea").input_value() == record.prompt
    page.locator("#txt2img_seed input").fill("-1")


def test_settings_survive_a_reload_in_the_same_browser(running_app, page):
    page.click("#tab_txt2img-button")
    page.locator("#txt2img_prompt textarea").fill("kept across reloads")
    _set_slider(page, "txt2img_steps", 3)
    _set_slider(page, "txt2img_width", 72)
    _set_slider(page, "txt2img_height", 64)
    page.click("#txt2img_generate")
    page.wait_for_function(
        "document.querySelector('#txt2img_status')?.innerText.includes('Done')", timeout=90_000
    )
    page.reload(wait_until="domcontentloaded")
    page.wait_for_selector("#txt2img_generate")
    page.wait_for_function(
        "document.querySelector('#txt2img_prompt textarea')?.value === 'kept across reloads'", timeout=90_000
    )
    assert page.locator("#txt2img_steps input[type=number]").input_value() == "3"
    assert page.locator("#txt2img_width input[type=number]").input_value() == "72"
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


def _wait_done(page, prefix):
    page.wait_for_function(
        f"document.querySelector('#{prefix}_status')?.innerText.includes('Done')", timeout=120_000
    )


def test_send_a_txt2img_result_to_img2img_and_generate(running_app, page):
    app, _ = running_app
    page.click("#tab_txt2img-button")
    page.locator("#txt2img_prompt textarea").fill("a badge")
    _set_slider(page, "txt2img_steps", 2)
    _set_slider(page, "txt2img_width", 64)
    _set_slider(page, "txt2img_height", 64)
    page.click("#txt2img_generate")
    _wait_done(page, "txt2img")
    page.click("#txt2img_send_img2img")
    page.wait_for_selector("#img2img_image img")
    page.wait_for_selector("#tab_img2img", state="visible")
    _shot(page, "img2img-sent")
    page.wait_for_function("document.querySelector('#img2img_width input[type=number]')?.value === '64'")
    before = app.studio.gallery.count()
    _set_slider(page, "img2img_steps", 4)
    page.click("#img2img_generate")
    _wait_done(page, "img2img")
    assert app.studio.gallery.count() == before + 1
    record = app.studio.recent_images(limit=1)[0]
    assert record.task == "img2img" and "Denoising strength: 0.75" in record.infotext


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
    search = page.locator("#gallery_search textarea, #gallery_search input").first
    search.fill("gradient")
    search.press("Enter")
    page.wait_for_function("document.querySelector('#gallery_page')?.innerText.includes('· 1 image')")
    page.locator("#gallery_grid img").first.click()
    page.wait_for_function("document.querySelector('#gallery_details textarea')?.value === 'gradient source'")
    page.click("#gallery_send_inpaint")
    page.wait_for_selector("#tab_inpaint", state="visible")
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
    _shot(page, "inpaint-painted")
    page.locator("#inpaint_prompt textarea").fill("a red dot")
    _set_slider(page, "inpaint_steps", 2)
    before = app.studio.gallery.count()
    page.click("#inpaint_generate")
    _wait_done(page, "inpaint")
    _shot(page, "inpaint-result")
    assert app.studio.gallery.count() == before + 1
    record = app.studio.recent_images(limit=1)[0]
    assert record.task == "inpaint" and "Mask blur: 4" in record.infotext
    out = np.asarray(Image.open(app.studio.image_path(record.id)).convert("RGB")).astype(int)
    src = np.asarray(Image.open(source)).astype(int)
    assert out.shape == src.shape
    changed = np.any(out != src, axis=2)
    assert changed.any(), "the painted stroke was not repainted"
    rows, cols = np.nonzero(changed)
    # only a band around the stroke changed: the corners and edges of the picture are untouched
    assert rows.min() > 5 and rows.max() < 90 and cols.min() > 5 and cols.max() < 122

    # "Erase" refills the same mask from its surroundings, with no prompt
    page.click("#inpaint_erase")
    deadline = time.monotonic() + 120
    while app.studio.gallery.count() < before + 2 and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    erased = app.studio.recent_images(limit=1)[0]
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
    record = app.studio.recent_images(limit=1)[0]
    source = app.studio.image_path(record.id)
    copy = source.parent / "99999-777.png"
    shutil.copy(source, copy)
    before = app.studio.gallery.count()
    page.click("#tab_gallery-button")
    search = page.locator("#gallery_search textarea, #gallery_search input").first
    search.fill("")
    page.click("#gallery_refresh")
    page.wait_for_function(
        f"document.querySelector('#gallery_page')?.innerText.includes('{before + 1} image')"
    )
    assert app.studio.gallery.count() == before + 1
