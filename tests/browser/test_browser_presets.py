"""Presets, styles and the aspect picker in a real Chromium: pick a preset, see the widgets change, generate."""

from core.aspect import size_for
from core.styles import read_styles_csv
from tests.browser.pages import (
    close_toasts,
    fetch,
    open_accordion,
    page_fixture,
    pick,
    require_chromium,
    set_slider,
    shot,
    slider_value,
    wait_until,
)

require_chromium()
page = page_fixture()


def _open_advanced(page) -> None:
    """Show the settings beyond the default view (sampler, steps, size, …) where the tab has such a section."""
    if page.locator("#txt2img_advanced").count():
        open_accordion(page, "txt2img_advanced")


def test_choosing_a_preset_sets_the_widgets_and_generates(running_app, page):
    app, _ = running_app
    preset = app.studio.presets_book.get("Banner (16:9)")
    width, height = size_for("16:9", "sd1")  # the tiny model is an SD 1.x model
    _open_advanced(page)
    pick(page, "txt2img_preset", preset.name)
    page.wait_for_function(
        f"document.querySelector('#txt2img_width input[type=number]')?.value === '{width}'"
    )
    assert slider_value(page, "txt2img_height") == str(height)
    assert slider_value(page, "txt2img_steps") == str(preset.steps)
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
    shot(page, "presets-applied")

    # the aspect picker sets the size for the model; a moved slider shows "custom"
    page.locator("#txt2img_aspect label", has_text="1:1").click()
    page.wait_for_function("document.querySelector('#txt2img_width input[type=number]')?.value === '512'")
    assert slider_value(page, "txt2img_height") == "512"
    set_slider(page, "txt2img_steps", 2)
    set_slider(page, "txt2img_width", 128)
    set_slider(page, "txt2img_height", 64)  # 2:1, not a picker ratio
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
    shot(page, "presets-generated")


def test_save_a_preset_from_the_page_and_delete_it(running_app, page):
    app, _ = running_app
    open_accordion(page, "txt2img_presets_panel")
    page.locator("#txt2img_preset_name textarea, #txt2img_preset_name input").first.fill("Our banner")
    page.click("#txt2img_preset_save")
    page.wait_for_function("document.querySelector('#txt2img_preset input')?.value === 'Our banner'")
    saved = app.studio.presets_book.get("Our banner")
    assert (
        saved.steps == 2
        and saved.width == 128
        and saved.height == 64
        and not app.studio.presets_book.is_shipped(saved.name)
    )
    shot(page, "tab_presets")
    page.click("#txt2img_preset_delete")
    page.wait_for_function("document.querySelector('#txt2img_preset input')?.value === ''")
    assert "Our banner" not in [p.name for p in app.studio.presets_book.presets()]


def test_import_a1111_styles_csv_and_export_it(running_app, page, tmp_path):
    app, _ = running_app
    source = tmp_path / "styles.csv"
    source.write_bytes(
        '\ufeffname,prompt,negative_prompt\nTeam neon,"neon sign of {prompt}, glowing",dull\n'.encode()
    )
    page.set_input_files("#txt2img_styles_import input[type=file]", str(source))
    wait_until(
        page,
        lambda: "Team neon" in [s.name for s in app.studio.presets_book.styles()],
        "the styles import",
        90,
    )
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
    exported = read_styles_csv(fetch(page, href))
    assert exported == app.studio.presets_book.styles() and "Team neon" in [s.name for s in exported]


def _toast(page, text: str) -> str:
    toast = page.locator(".toast-body", has_text=text).first
    toast.wait_for()
    said = toast.inner_text()
    close_toasts(page)
    return said


def _final(page) -> str:
    return page.locator("#txt2img_final_prompt textarea").input_value()


def _info(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id}").inner_text()


def test_apply_says_what_it_changed_and_the_final_box_shows_what_will_be_sent(running_app, page):
    app, _ = running_app
    preset = app.studio.presets_book.get("Logo — flat vector (1:1)")
    _open_advanced(page)
    set_slider(page, "txt2img_steps", 10)
    page.locator("#txt2img_prompt textarea").fill("minimal logo for a coffee brand")
    pick(page, "txt2img_preset", preset.name)

    # 1. Apply says what it changed, in a toast and under the preset
    said = _toast(page, f"'{preset.name}' applied")  # not an earlier test's toast
    assert preset.name in said and f"steps 10 → {preset.steps}" in said
    assert f"steps 10 → {preset.steps}" in page.locator("#txt2img_preset_description").inner_text()

    # 2. one place shows the composed prompt and the settings that the controls hold
    page.wait_for_function(
        "(document.querySelector('#txt2img_final_prompt textarea')?.value || '').includes(' set by preset ')"
    )
    lines = _final(page).splitlines()
    assert lines[0].startswith("flat vector minimal logo for a coffee brand, minimalist, ")
    assert lines[1].startswith("Negative prompt: ")
    settings = lines[-1]
    assert slider_value(page, "txt2img_steps") == str(preset.steps)
    assert f"{preset.steps} steps" in settings and f"CFG {preset.cfg_scale:g}" in settings
    width, height = slider_value(page, "txt2img_width"), slider_value(page, "txt2img_height")
    assert f"{width}×{height}" in settings and f"{preset.sampler} ({preset.schedule_type})" in settings
    assert settings.endswith(f"set by preset {preset.name!r}: sampler, schedule, steps, CFG, size")

    # 3. the controls it set say so, until they are changed by hand
    assert f"Set by preset {preset.name!r}" in _info(page, "txt2img_steps")
    assert f"Set by preset {preset.name!r}" in _info(page, "txt2img_cfg")
    shot(page, "presets-apply-said")
    set_slider(page, "txt2img_steps", 12)
    page.wait_for_function(
        "(document.querySelector('#txt2img_final_prompt textarea')?.value || '').includes('12 steps')"
    )
    assert (
        _final(page).splitlines()[-1].endswith(f"set by preset {preset.name!r}: sampler, schedule, CFG, size")
    )
    page.wait_for_function("!document.querySelector('#txt2img_steps').innerText.includes('Set by preset')")
    assert f"Set by preset {preset.name!r}" in _info(page, "txt2img_cfg")


def test_plot_axes_of_presets_are_picked_not_typed(page):
    open_accordion(page, "txt2img_xyz")
    values = page.locator("#txt2img_xyz_x_values textarea")
    values.wait_for(state="visible")
    assert "10-30" in (values.get_attribute("placeholder") or "")  # steps: a range is an example
    assert not page.locator("#txt2img_xyz_x_pick").is_visible()
    pick(page, "txt2img_xyz_x_type", "Preset")
    page.locator("#txt2img_xyz_x_pick").wait_for(state="visible")
    page.wait_for_function(
        "!(document.querySelector('#txt2img_xyz_x_values textarea')?.placeholder || '').includes('10-30')"
    )
    assert "pick" in (values.get_attribute("placeholder") or "")
    names = ["Logo — flat vector (1:1)", "Product — studio white (1:1)"]
    for name in names:
        pick(page, "txt2img_xyz_x_pick", name)
    page.wait_for_function(
        "(v => v.includes('Logo — flat vector (1:1), Product — studio white (1:1)'))"
        "(document.querySelector('#txt2img_xyz_x_values textarea')?.value || '')"
    )
    page.keyboard.press("Escape")
    shot(page, "xyz-picked-presets")
    # a type of numbers has no picker
    pick(page, "txt2img_xyz_x_type", "CFG Scale")
    page.locator("#txt2img_xyz_x_pick").wait_for(state="hidden")
    assert "4-10 (+2)" in (values.get_attribute("placeholder") or "")
