"""What the browser tests share: Debian's Chromium under Playwright, screenshots, and small page actions.

Each browser test module calls `require_chromium()` right after its imports: without Chromium the module is
skipped, or fails when EASEL_REQUIRE_BROWSER is set (CI machines that must run the browser tests).
With EASEL_SCREENSHOTS=/some/dir, `shot(page, name)` saves a full-page screenshot there as `name.png`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

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
VIEWPORT = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
ADVANCED_OF = {"outpaint": "inpaint"}  # element id prefixes whose Advanced section is another tab's
TIMEOUT_MS = 90_000  # generous: CI machines are slow and busy
JOB_TIMEOUT_MS = 120_000  # a generation: queue, model load on first use, the steps


def require_chromium() -> None:
    """Skip the calling test module without Debian's Chromium; fail instead when EASEL_REQUIRE_BROWSER is set."""
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("EASEL_REQUIRE_BROWSER"):
        raise RuntimeError(
            "EASEL_REQUIRE_BROWSER is set but Debian's chromium is missing (apt-get install chromium)"
        )
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)


def screenshots_dir() -> Path | None:
    """Where screenshots go (EASEL_SCREENSHOTS), or None when they are not wanted."""
    value = os.environ.get("EASEL_SCREENSHOTS")
    return Path(value) if value else None


def shot(page: Page, name: str) -> None:
    """A full-page screenshot `name.png` in EASEL_SCREENSHOTS (nothing when it is not set)."""
    folder = screenshots_dir()
    if folder:
        folder.mkdir(parents=True, exist_ok=True)
        settle(page)
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def settle(page: Page) -> None:
    """Wait for the page's short animations (a toast flying in, a handle moving) to finish; long ones
    (a toast's countdown bar, spinners) are left running."""
    page.evaluate(
        """async () => {
            const frame = () => new Promise(resolve => requestAnimationFrame(resolve));
            for (let round = 0; round < 20; round++) {
                await frame(); await frame();  // animations start on the frames after a change
                const short = document.getAnimations().filter(a => a.playState !== "finished"
                    && a.effect && a.effect.getComputedTiming().endTime <= 2000);
                if (!short.length) return;
                await Promise.all(short.map(a => a.finished.catch(() => null)));
            }
        }"""
    )


def close_toasts(page: Page) -> None:
    """Close every toast on the page (those that closed by themselves meanwhile included) and wait until
    they are gone."""
    page.evaluate("document.querySelectorAll('.toast-close').forEach(button => button.click())")
    page.locator(".toast-body").first.wait_for(state="detached")


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Browser, **context: Any) -> Page:
    """A page in a fresh browser context (cookies and storage of its own), laptop-sized."""
    page = browser.new_context(**{"viewport": VIEWPORT, **context}).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return page


@contextlib.contextmanager
def app_page(url: str, ready: str = "#txt2img_generate", **context: Any) -> Iterator[Page]:
    """The app at `url` in a new Chromium, once the element `ready` is on the page."""
    with chromium() as browser:
        page = new_page(browser, **context)
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_selector(ready)
        yield page


def page_fixture(ready: str = "#txt2img_generate", **context: Any) -> Any:
    """A module-scoped `page` fixture: the module's `running_app` in one Chromium page, shared by its tests
    (in file order, each test going on from where the one before left the page). In a test module:
    `page = page_fixture()`."""

    @pytest.fixture(scope="module")
    def page(running_app: tuple[Any, str]) -> Iterator[Page]:
        with app_page(running_app[1], ready, **context) as opened:
            yield opened

    return page


def reveal(page: Page, elem_id: str) -> None:
    """Open the tab's Advanced section (`{tab}_advanced`) when the element `elem_id` is not on the page:
    a closed section's widgets are not there until it opens."""
    if not elem_id or page.locator(f"#{elem_id}").count():
        return
    tab = elem_id.split("_")[0]
    section = f"{ADVANCED_OF.get(tab, tab)}_advanced"
    if page.locator(f"#{section}").count():
        open_accordion(page, section)
        page.locator(f"#{elem_id}").first.wait_for(state="attached")


def _id_in(selector: str) -> str:
    found = re.match(r"#([\w-]+)", selector)
    return found.group(1) if found else ""


def set_slider(page: Page, elem_id: str, value: float) -> None:
    """Type `value` into a slider's number box and confirm it."""
    reveal(page, elem_id)
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def slider_value(page: Page, elem_id: str) -> str:
    reveal(page, elem_id)
    return page.locator(f"#{elem_id} input[type=number]").input_value()


def fill(page: Page, selector: str, value: object) -> None:
    """Type into a box and leave it (Tab), so its change event fires."""
    reveal(page, _id_in(selector))
    box = page.locator(selector)
    box.fill(str(value))
    box.press("Tab")


def small_settings(page: Page, prefix: str, prompt: str, steps: int = 2, size: int = 64) -> None:
    """A prompt and the cheapest settings: a few steps on a small picture."""
    page.locator(f"#{prefix}_prompt textarea").fill(prompt)
    set_slider(page, f"{prefix}_steps", steps)
    set_slider(page, f"{prefix}_width", size)
    set_slider(page, f"{prefix}_height", size)


def wait_status(page: Page, prefix: str, text: str = "Done", timeout: float = JOB_TIMEOUT_MS) -> None:
    """Wait until the tab's status line (`#{prefix}_status`) says `text`."""
    page.wait_for_function(
        f"document.querySelector('#{prefix}_status')?.innerText.includes({text!r})", timeout=timeout
    )


def _accordion_header(page: Page, elem_id: str = "", title: str = "") -> Locator:
    if title:
        return page.locator("button.label-wrap", has_text=title).first
    return page.locator(f"#{elem_id} > button, #{elem_id} button.label-wrap").first


def wait_images(page: Page, selector: str, count: int, timeout: float = TIMEOUT_MS) -> None:
    """Wait until exactly `count` images match `selector` and every one of them has loaded."""
    page.wait_for_function(
        """([selector, count]) => {
            const images = Array.from(document.querySelectorAll(selector));
            return images.length === count && images.every(i => i.complete && i.naturalWidth > 0);
        }""",
        arg=[selector, count],
        timeout=timeout,
    )


def open_accordion(page: Page, elem_id: str = "", *, title: str = "") -> None:
    """Open the accordion `elem_id` (or the one headed `title`); nothing when it is already open."""
    reveal(page, elem_id)
    header = _accordion_header(page, elem_id, title)
    if "open" not in (header.get_attribute("class") or "").split():
        header.click()


def close_accordion(page: Page, elem_id: str = "", *, title: str = "") -> None:
    header = _accordion_header(page, elem_id, title)
    if "open" in (header.get_attribute("class") or "").split():
        header.click()


def pick(page: Page, elem_id: str, text: str) -> None:
    """Choose the dropdown option whose label is `text`."""
    reveal(page, elem_id)
    box = page.locator(f"#{elem_id} input")
    box.click()
    box.fill(text)
    page.locator(f"#{elem_id} li[role=option]", has_text=text).first.click()


def search_gallery(page: Page, text: str) -> None:
    """Search the Gallery tab (Enter runs the search)."""
    search = page.locator("#gallery_search textarea, #gallery_search input").first
    search.fill(text)
    search.press("Enter")


def fetch(page: Page, src: str) -> bytes:
    """The bytes behind a link or image source on the page, fetched with the page's cookies."""
    url = src if "://" in src else page.url.split("?")[0].rstrip("/") + "/" + src.lstrip("/")
    response = page.request.get(url)
    assert response.ok, f"{url}: HTTP {response.status}"
    return response.body()


def wait_until(page: Page, condition: Callable[[], bool], what: str, timeout_s: float = 120) -> None:
    """Poll a server-side condition (e.g. a gallery count) while the page keeps running."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        page.wait_for_timeout(200)


def logged_in_page(browser: Browser, url: str, user: str, password: str) -> Page:
    """A 1280×900 page logged in through Gradio's own form as `user`, with the txt2img tab ready."""
    page = new_page(browser, viewport={"width": 1280, "height": 900})
    page.goto(url)
    page.locator("input[type=text]").first.fill(user)
    page.locator("input[type=password]").first.fill(password)
    page.keyboard.press("Enter")
    page.wait_for_selector("#txt2img_generate")
    return page
