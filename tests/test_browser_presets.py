"""Presets, styles and the aspect picker in a real Chromium: pick a preset, see the widgets change, generate."""

import os
import shutil
import time
from pathlib import Path

import pytest

from core.aspect import size_for
from core.styles import read_styles_csv

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
        page.set_default_timeout(90_000)
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


def _number(page, elem_id):
    return page.locator(f"#{elem_id} input[type=number]").input_value()


def _pick(page, elem_id, text):
    """Choose the dropdown option whose label is `text`."""
    box = page.locator(f"#{elem_id} input")
    box.click()
    box.fill(text)
    page.locator(f"#{elem_id} li[role=option]", has_text=text).first.click()


def test_choosing_a_preset_sets_the_widgets_and_generates(running_app, page):
    app, _ = running_app
    preset = app.studio.preset("Banner (16:9)")
    width, height = size_for("16:9", "sd1")  # the tiny model is an SD 1.x model
    _pick(page, "txt2img_preset", preset.name)
    page.wait_for_function(
        f"document.querySelector('#txt2img_width input[type=number]')?.value === '{width}'"
    )
    assert _number(page, "txt2img_height") == str(height)
    assert _number(page, "txt2img_steps") == str(preset.steps)
    assert page.locator("#txt2img_aspect input[value='16:9']").is_checked()
    assert page.locator("#txt2img_sampler input").input_value() == preset.sampler
    chosen = page.locator("#txt2img_styles").inner_text()
    assert all(name in chosen for name in preset.styles)

    # the final prompt follows the prompt box
    page.locator("#txt2img_prompt textarea").fill("a fox in a meadow")
    page.wait_for_function(
        "document.querySelector('#txt2img_final_prompt textarea')?.value.startsWith('wide web banner of a fox in a meadow')"
    )
    final = page.locator("#txt2img_final_prompt textarea").input_value()
    assert "Negative prompt: " in final
    _shot(page, "presets-applied")

    # the aspect picker sets the size for the model; a moved slider shows "custom"
    page.locator("#txt2img_aspect label", has_text="1:1").click()
    page.wait_for_function("document.querySelector('#txt2img_width input[type=number]')?.value === '512'")
    assert _number(page, "txt2img_height") == "512"
    _set_slider(page, "txt2img_steps", 2)
    _set_slider(page, "txt2img_width", 128)
    _set_slider(page, "txt2img_height", 64)  # 2:1, not a picker ratio
    page.wait_for_function("document.querySelector('#txt2img_aspect input[value=\"custom\"]')?.checked")

    before = app.studio.gallery.count()
    page.click("#txt2img_generate")
    page.wait_for_function(  # the info box is filled by the job's last update
        "document.querySelector('#txt2img_info textarea')?.value.includes('Size: 128x64')", timeout=120_000
    )
    info = page.locator("#txt2img_info textarea").input_value()
    assert info.startswith("wide web banner of a fox in a meadow")
    assert f'Styles: "{", ".join(preset.styles)}"' in info and "Size: 128x64" in info
    assert app.studio.gallery.count() == before + 1
    _shot(page, "presets-generated")


def test_save_a_preset_from_the_page_and_delete_it(running_app, page):
    app, _ = running_app
    page.click("#txt2img_presets_panel")
    page.locator("#txt2img_preset_name textarea, #txt2img_preset_name input").first.fill("Our banner")
    page.click("#txt2img_preset_save")
    page.wait_for_function("document.querySelector('#txt2img_preset input')?.value === 'Our banner'")
    saved = app.studio.preset("Our banner")
    assert (
        saved.steps == 2
        and saved.width == 128
        and saved.height == 64
        and not app.studio.preset_is_shipped(saved.name)
    )
    _shot(page, "presets-saved")
    page.click("#txt2img_preset_delete")
    page.wait_for_function("document.querySelector('#txt2img_preset input')?.value === ''")
    assert "Our banner" not in [p.name for p in app.studio.presets()]


def test_import_a1111_styles_csv_and_export_it(running_app, page, tmp_path):
    app, _ = running_app
    source = tmp_path / "styles.csv"
    source.write_bytes(
        '\ufeffname,prompt,negative_prompt\nTeam neon,"neon sign of {prompt}, glowing",dull\n'.encode()
    )
    page.set_input_files("#txt2img_styles_import input[type=file]", str(source))
    deadline = time.monotonic() + 90
    while "Team neon" not in [s.name for s in app.studio.styles()]:
        assert time.monotonic() < deadline, "the styles file was not imported"
        page.wait_for_timeout(200)
    styles = page.locator("#txt2img_styles input")
    styles.click()
    page.locator("#txt2img_styles li[role=option]", has_text="Team neon").first.click()
    page.locator("#txt2img_prompt textarea").fill("a cafe")
    page.wait_for_function(
        "(v => v.startsWith('neon sign of ') && v.includes('a cafe') && v.includes(', glowing'))"
        "(document.querySelector('#txt2img_final_prompt textarea')?.value || '')"
    )
    page.click("#txt2img_styles_export")
    link = page.locator("#txt2img_styles_file a").first
    link.wait_for()
    href = link.get_attribute("href") or ""
    assert href.endswith("styles.csv")
    exported = read_styles_csv(
        page.request.get(href if "://" in href else page.url.rstrip("/") + href).body()
    )
    assert exported == app.studio.styles() and "Team neon" in [s.name for s in exported]
