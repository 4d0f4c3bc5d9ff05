"""The generating tabs' layout in a real Chromium, on a laptop (1440×900) and a phone (390×844): a short default
view with everything else in Advanced, Generate and Interrupt always on screen, progress beside the button that
started the work, a session history that keeps every run, and an inpaint upload that always arrives."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.browser.pages import (
    PHONE,
    chromium,
    fill,
    new_page,
    open_accordion,
    require_chromium,
    shot,
    small_settings,
    wait_status,
)

require_chromium()

LAPTOP = {"width": 1440, "height": 900}
TABS = ("txt2img", "img2img", "inpaint")
DEFAULT_VIEW = ("prompt", "negative", "preset", "aspect", "batch_size", "generate", "interrupt")
# pages were about 2,000 (txt2img) to 3,000 px (inpaint) tall before the Advanced sections
PAGE_HEIGHT = {"txt2img": 900, "img2img": 1400, "inpaint": 1700}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as opened:
        yield opened


def _open(browser: Any, url: str, viewport: dict[str, int]) -> Any:
    page = new_page(browser, viewport=viewport)
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector("#txt2img_generate")
    return page


def _show_tab(page: Any, tab: str) -> None:
    page.click(f"#tab_{tab}-button")
    page.wait_for_selector(f"#{tab}_generate", state="visible")
    page.wait_for_timeout(300)  # a tab's first opening lays it out


def _box(page: Any, elem_id: str) -> dict[str, float]:
    box = page.locator(f"#{elem_id}").bounding_box()
    assert box is not None, f"#{elem_id} is not shown"
    return box


def _on_screen(page: Any, elem_id: str) -> bool:
    """The element lies wholly inside the viewport (at the current scroll position)."""
    box, view = _box(page, elem_id), page.viewport_size
    return box["y"] >= 0 and box["y"] + box["height"] <= view["height"] and box["width"] > 0


def _page_height(page: Any) -> int:
    return int(page.evaluate("document.documentElement.scrollHeight"))


def _scroll_to_bottom(page: Any) -> None:
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    page.wait_for_timeout(200)
    assert page.evaluate("window.scrollY") > 0, "the page is too short to scroll"


def test_laptop_default_views_are_short_with_everything_else_in_advanced(running_app, browser):
    page = _open(browser, running_app[1], LAPTOP)
    try:
        for tab in TABS:
            _show_tab(page, tab)
            shot(page, f"layout-laptop-{tab}")
            for part in DEFAULT_VIEW:
                assert page.locator(f"#{tab}_{part}").is_visible(), (
                    f"#{tab}_{part} is not in the default view"
                )
            # the rest waits, closed, in Advanced: its widgets are not even on the page
            assert page.locator(f"#{tab}_advanced").is_visible()
            for part in ("sampler", "steps", "seed", "width", "model"):
                assert page.locator(f"#{tab}_{part}").count() == 0, f"#{tab}_{part} is outside Advanced"
            assert _on_screen(page, f"{tab}_generate") and _on_screen(page, f"{tab}_interrupt")
            assert _page_height(page) <= PAGE_HEIGHT[tab], f"{tab}: {_page_height(page)} px tall"
        # nothing was removed: Advanced holds the settings, the sub-sections and the tab's tools
        _show_tab(page, "txt2img")
        open_accordion(page, "txt2img_advanced")
        for part in (
            "sampler",
            "schedule",
            "steps",
            "cfg",
            "width",
            "height",
            "seed",
            "batch_count",
            "model",
        ):
            page.locator(f"#txt2img_{part}").wait_for(state="visible")
        for section in ("txt2img_variation", "txt2img_hires", "txt2img_xyz", "txt2img_presets_panel"):
            assert page.locator(f"#{section}").is_visible(), f"#{section} is missing from Advanced"
        shot(page, "layout-laptop-txt2img-advanced")
    finally:
        page.context.close()


def test_laptop_generate_and_interrupt_stay_on_screen_at_the_bottom_of_a_long_page(running_app, browser):
    page = _open(browser, running_app[1], LAPTOP)
    try:
        for tab in TABS:
            _show_tab(page, tab)
            open_accordion(page, f"{tab}_advanced")
            page.locator(f"#{tab}_seed").wait_for(state="visible")
            assert _page_height(page) > LAPTOP["height"] + 400  # Advanced open: a long page
            _scroll_to_bottom(page)
            assert _on_screen(page, f"{tab}_generate"), f"{tab}: Generate scrolled away"
            assert _on_screen(page, f"{tab}_interrupt"), f"{tab}: Interrupt scrolled away"
            page.evaluate("window.scrollTo(0, 0)")
    finally:
        page.context.close()


def test_phone_generate_is_on_screen_at_first_and_after_scrolling(running_app, browser):
    page = _open(browser, running_app[1], PHONE)
    try:
        # every tab is reachable from the tab bar, none hidden behind "⋯"
        for tab in ("txt2img", "img2img", "inpaint", "retouch", "gallery", "pnginfo"):
            assert _on_screen(page, f"tab_{tab}-button"), f"the {tab} tab is not in the tab bar"
        for tab in TABS:
            _show_tab(page, tab)
            page.evaluate("window.scrollTo(0, 0)")
            assert _on_screen(page, f"{tab}_generate"), f"{tab}: Generate is below the fold on a phone"
            shot(page, f"layout-phone-{tab}")
            _scroll_to_bottom(page)
            assert _on_screen(page, f"{tab}_generate") and _on_screen(page, f"{tab}_interrupt")
            page.evaluate("window.scrollTo(0, 0)")
        _show_tab(page, "txt2img")
        open_accordion(page, "txt2img_advanced")
        page.locator("#txt2img_seed").wait_for(state="visible")
        # help texts wrap by phrase (no column narrower than a few words), labels are never cut off
        squeezed = page.evaluate(
            """() => Array.from(document.querySelectorAll('#tab_txt2img .info-text'))
                .filter(e => e.offsetParent !== null && e.getBoundingClientRect().width < 180)
                .map(e => e.innerText.trim())"""
        )
        assert squeezed == [], f"help texts squeezed into a narrow column on a phone: {squeezed}"
        cut = page.evaluate(
            """() => Array.from(document.querySelectorAll('#tab_txt2img [data-testid="block-info"]'))
                .filter(e => e.offsetParent !== null)
                .filter(e => {
                    const box = e.getBoundingClientRect(), block = e.closest('.block').getBoundingClientRect();
                    const clipped = getComputedStyle(e).display !== 'inline' && e.scrollWidth > e.clientWidth + 1;
                    return clipped || box.right > block.right + 1 || box.left < block.left - 1;
                })
                .map(e => e.innerText.trim())"""
        )
        assert cut == [], f"labels cut off on a phone: {cut}"
        shot(page, "layout-phone-txt2img-advanced")
    finally:
        page.context.close()


def _history_count(page: Any, tab: str = "txt2img") -> int:
    return int(page.evaluate(f"document.querySelectorAll('#{tab}_history img').length"))


def _wait_history(page: Any, count: int, tab: str = "txt2img") -> None:
    page.wait_for_function(
        f"""() => {{ const images = Array.from(document.querySelectorAll('#{tab}_history img'));
            return images.length === {count} && images.every(i => i.complete && i.naturalWidth > 0); }}""",
        timeout=120_000,
    )


def test_history_keeps_every_run_and_picking_there_works_like_picking_a_result(running_app, browser):
    app, url = running_app
    page = _open(browser, url, LAPTOP)
    try:
        assert not page.locator("#txt2img_history").is_visible()  # nothing to show yet
        small_settings(page, "txt2img", "a mug on a counter")
        for seed in (101, 202):
            fill(page, "#txt2img_seed input", seed)
            page.click("#txt2img_generate")
            wait_status(page, "txt2img", f"seed {seed}")
        _wait_history(page, 2)
        first, second = app.studio.gallery.recent(limit=2)[::-1]
        assert (first.seed, second.seed) == (101, 202)
        # the latest run alone in Results, both runs in the history, newest first
        assert page.locator("#txt2img_gallery img").count() == 1
        captions = page.locator("#txt2img_history").inner_text()
        assert captions.index("seed 202") < captions.index("seed 101")

        # variations add to the history (Results shows them alone); their progress shows under their button
        fill(page, "#txt2img_variations_count input", 2)
        page.click("#txt2img_variations")
        page.wait_for_function(
            "document.querySelector('#txt2img_variations_status')?.innerText.includes('2 image(s)')",
            timeout=120_000,
        )
        button, status = _box(page, "txt2img_variations"), _box(page, "txt2img_variations_status")
        assert 0 <= status["y"] - (button["y"] + button["height"]) <= 40, "the progress is not by its button"
        assert _on_screen(page, "txt2img_variations_status")
        _wait_history(page, 4)
        assert page.locator("#txt2img_gallery img").count() == 2

        # picking the oldest picture of the history: its info, its seed for "Reuse", and the send buttons
        page.locator("#txt2img_history .thumbnail-item").last.click()
        page.wait_for_function(
            "document.querySelector('#txt2img_info textarea')?.value.includes('Seed: 101')"
        )
        assert page.locator("#txt2img_info textarea").input_value() == first.infotext
        shot(page, "layout-history")
        page.click("#txt2img_reuse_seed")
        page.wait_for_function("document.querySelector('#txt2img_seed input')?.value === '101'")
        page.click("#txt2img_send_img2img")
        page.wait_for_selector("#tab_img2img", state="visible")
        page.wait_for_selector("#img2img_image img")
        sent = page.locator("#img2img_image img").first.get_attribute("src") or ""
        assert Path(app.studio.gallery.file_path(first.id)).name in sent
    finally:
        page.context.close()


def test_make_grid_shows_its_progress_under_its_button_and_adds_to_the_history(running_app, browser):
    page = _open(browser, running_app[1], LAPTOP)
    try:
        small_settings(page, "txt2img", "a logo grid")
        open_accordion(page, "txt2img_xyz")
        fill(page, "#txt2img_xyz_x_values textarea", "1-2")
        fill(page, "#txt2img_xyz_y_values textarea", "7")
        page.click("#txt2img_xyz_run")
        page.wait_for_function(
            "document.querySelector('#txt2img_xyz_status')?.innerText.includes('grid + 2 cell(s)')",
            timeout=120_000,
        )
        button, status = _box(page, "txt2img_xyz_run"), _box(page, "txt2img_xyz_status")
        assert 0 <= status["y"] - (button["y"] + button["height"]) <= 40, "the progress is not by its button"
        _wait_history(page, 3)  # the grid and its two cells
        wait_status(page, "txt2img", "grid + 2 cell(s)")  # and in the bar by Generate
    finally:
        page.context.close()


def _picture_shown(page: Any) -> float:
    """The share of the editor's area that shows the uploaded gradient (dark green channel, blue ≈ 128)."""
    pixels = np.asarray(Image.open(io.BytesIO(page.locator("#inpaint_editor").screenshot())).convert("RGB"))
    pixels = pixels.astype(int)
    return float(((pixels[..., 1] < 40) & (abs(pixels[..., 2] - 128) < 30)).mean())


def test_an_inpaint_upload_right_after_the_tab_opens_always_arrives(running_app, browser, tmp_path):
    pixels = np.zeros((96, 128, 3), np.uint8)
    pixels[..., 0] = np.linspace(0, 255, 128, dtype=np.uint8)[None, :]
    pixels[..., 2] = 128
    source = tmp_path / "product.png"
    Image.fromarray(pixels, "RGB").save(source)
    for attempt in range(2):
        page = _open(browser, running_app[1], LAPTOP)
        try:
            # a busy machine: the page's scripts run four times slower
            page.context.new_cdp_session(page).send("Emulation.setCPUThrottlingRate", {"rate": 4})
            page.click("#tab_inpaint-button")
            with page.expect_file_chooser() as chooser:
                page.click("#inpaint_upload")
            chooser.value.set_files(str(source))
            shown = 0.0
            for _ in range(60):
                shown = _picture_shown(page)
                if shown > 0.2:
                    break
                page.wait_for_timeout(500)
            assert shown > 0.2, f"attempt {attempt + 1}: the editor does not show the uploaded picture"
            open_accordion(page, "inpaint_advanced")
            page.wait_for_function(
                "document.querySelector('#inpaint_width input[type=number]')?.value === '128'"
            )
            if attempt == 0:
                shot(page, "layout-inpaint-upload")
        finally:
            page.context.close()
