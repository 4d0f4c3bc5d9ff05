"""The Gallery tab in a real Chromium: an upload found again by its file name, a retouch described by its steps with
its SVG beside it, transparency on a checkerboard, the star that changes at once, and a detail pane that follows
the filters. Screenshots at 1440×900 and 390×844 (EASEL_SCREENSHOTS)."""

from __future__ import annotations

from PIL import Image

from core.images import encode_png
from core.retouch import RetouchRequest
from gallery import GalleryQuery
from studio import JobState
from tests.browser.pages import (
    open_accordion,
    page_fixture,
    require_chromium,
    search_gallery,
    shot,
    wait_images,
)
from tests.helpers import flat_product

require_chromium()
page = page_fixture(ready="#tab_gallery-button", viewport={"width": 1440, "height": 900})

PAGE_LABEL = "document.querySelector('#gallery_page')?.innerText"
META = "document.querySelector('#gallery_meta')?.innerText"
CAPTION = "#gallery_grid .caption-label"


def _retouch_an_upload(studio, name: str):
    """What the Retouch tab sends for an upload named `name`: its file name as the title, a cut-out, an SVG."""
    ops = [{"op": "remove_background", "method": "key"}, {"op": "vectorize", "colors": "binary"}]
    request = RetouchRequest(image=encode_png(flat_product()), ops=ops, title=name)
    job = studio.jobs.submit(request)
    assert job.wait(120) and job.state is JobState.DONE, job.error
    return studio.gallery.get(job.images[-1].id), job


def test_an_upload_is_found_by_its_file_name_and_shows_its_steps_and_its_svg(running_app, page):
    app, _ = running_app
    studio = app.studio
    saved, job = _retouch_an_upload(studio, "mug-shot.png")
    other = studio.gallery.save(
        Image.new("RGB", (48, 32), "navy"),
        infotext="a lighthouse at dusk\nSteps: 2, Seed: 3, Size: 48x32",
        seed=3,
        task="txt2img",
        author="local",
        model="tiny",
    )
    assert studio.gallery.count() == 2

    page.click("#tab_gallery-button")
    wait_images(page, "#gallery_grid img", 2)
    search_gallery(page, "mug")
    page.wait_for_function(f"{PAGE_LABEL}?.includes('· 1 image')")
    # the tile's caption starts with the upload's name
    assert page.locator(CAPTION).first.inner_text().startswith("mug-shot.png · Retouch")
    page.locator("#gallery_grid img").first.click()
    page.wait_for_function(f"{META}?.includes('Retouch: remove background → vectorize')")
    meta = page.inner_text("#gallery_meta")
    assert f"#{saved.id}" in meta and "mug-shot.png" in meta and "model ?" not in meta and "seed" not in meta
    assert other.id != saved.id

    # the SVG the chain exported is offered beside the picture, served from the outputs folder
    page.wait_for_selector("#gallery_exports a", state="visible")
    links = page.locator("#gallery_exports a")
    assert links.count() == 1 and job.exports[0].name in "".join(page.inner_text("#gallery_exports").split())
    href = links.first.get_attribute("href") or ""
    assert href.endswith("/" + job.exports[0].name), href
    svg = page.request.get(href)
    assert svg.ok and svg.body() == job.exports[0].read_bytes()

    # transparency on a checkerboard, in the grid and in the detail pane
    for selector in ("#gallery_grid img", "#gallery_detail_image img"):
        background = page.locator(selector).first.evaluate("img => getComputedStyle(img).backgroundImage")
        assert "conic-gradient" in background, (selector, background)
    shot(page, "gallery-1440x900")


def test_the_star_changes_as_soon_as_it_is_clicked(running_app, page):
    app, _ = running_app
    star = page.locator("#gallery_favourite")
    assert star.inner_text().strip() == "☆ Favourite"
    star.click()
    page.wait_for_function("document.querySelector('#gallery_favourite')?.innerText.trim() === '★ Favourite'")
    page.wait_for_function(f"{META}?.includes('★ favourite')")
    (picked,) = app.studio.gallery.query(GalleryQuery(text="mug")).items
    assert picked.favourite
    page.wait_for_function(f"document.querySelector('{CAPTION}')?.innerText.startsWith('★ mug-shot.png')")
    star.click()
    page.wait_for_function("document.querySelector('#gallery_favourite')?.innerText.trim() === '☆ Favourite'")
    page.wait_for_function(f"!{META}?.includes('★ favourite')")
    page.wait_for_function(f"document.querySelector('{CAPTION}')?.innerText.startsWith('mug-shot.png')")
    assert not app.studio.gallery.query(GalleryQuery(text="mug")).items[0].favourite
    # starred among the ticked ones: the picked picture's star changes too
    open_accordion(page, title="Select several")
    page.locator("#gallery_selection label", has_text="mug-shot.png").first.click()
    page.click("#gallery_favourite_selected")
    page.wait_for_function("document.querySelector('#gallery_favourite')?.innerText.trim() === '★ Favourite'")
    assert app.studio.gallery.query(GalleryQuery(text="mug")).items[0].favourite


def test_the_detail_pane_lets_go_of_a_picture_the_filters_leave_out(running_app, page):
    search_gallery(page, "lighthouse")
    page.wait_for_function(f"{PAGE_LABEL}?.includes('· 1 image')")
    page.wait_for_function(f"{META}?.startsWith('Click an image')")
    assert page.locator("#gallery_detail_image img").count() == 0
    assert not page.locator("#gallery_exports").is_visible()
    # a filter that keeps the picked picture keeps it shown
    page.locator("#gallery_grid img").first.click()
    page.wait_for_function(f"{META}?.includes('txt2img')")
    search_gallery(page, "dusk")
    page.wait_for_function(f"{PAGE_LABEL}?.includes('· 1 image')")
    assert "txt2img" in page.inner_text("#gallery_meta")


def test_on_a_phone_the_gallery_fits_the_width(running_app, page):
    search_gallery(page, "")
    page.wait_for_function(f"{PAGE_LABEL}?.includes('· 2 image')")
    page.set_viewport_size({"width": 390, "height": 844})
    page.locator("#gallery_grid img").first.click()
    page.wait_for_function(f"{META}?.includes('#')")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # one row of two tiles: the grid is about as tall as the row, not a fixed 620 px box
    assert page.evaluate("document.querySelector('#gallery_grid').offsetHeight") < 400
    shot(page, "gallery-390x844")
    page.set_viewport_size({"width": 1440, "height": 900})
