"""The Retouch tab in a real Chromium: remove a product shot's background, download a transparent PNG, then
replay the run's recipe on a batch of uploads."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

from core.recipes import parse_recipe, recipe_from_png
from tests.browser.pages import open_accordion, page_fixture, require_chromium, shot, wait_images, wait_status

require_chromium()
page = page_fixture(ready="#tab_retouch-button", accept_downloads=True)


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
    wait_images(page, "#retouch_result img", 2)
    shot(page, "tab_retouch")
    assert "Done" in page.inner_text("#retouch_status")
    assert app.studio.gallery.count() == before + 1

    link = page.locator("#retouch_downloads a").first
    with page.expect_download() as caught:
        link.click()
    data = caught.value.path().read_bytes()
    with Image.open(io.BytesIO(data)) as result:
        result.load()
        assert result.format == "PNG" and result.mode == "RGBA" and result.size == (120, 90)
        assert _corners_clear_centre_solid(result)


def test_apply_the_recipe_of_a_run_to_a_batch_of_two_pictures(running_app, page, tmp_path):
    app, _ = running_app
    studio = app.studio
    # the run above filled the recipe box with its chain; that run's gallery picture carries the same recipe
    (last_run,) = studio.gallery.recent(limit=1)
    recipe = recipe_from_png(studio.gallery.file_path(last_run.id).read_bytes())
    assert recipe is not None and [op.op for op in recipe.ops] == ["remove_background"]
    open_accordion(page, title="Recipe: replay this chain")
    page.wait_for_selector("#retouch_recipe .cm-content", state="visible")
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
