"""Iteration tools in a real Chromium: an X/Y plot from the txt2img tab, Variations on a result, Compare."""

from core.infotext import parse_infotext
from tests.browser.pages import (
    close_toasts,
    fill,
    open_accordion,
    page_fixture,
    require_chromium,
    shot,
    small_settings,
    wait_status,
)

require_chromium()
page = page_fixture()


def test_make_a_2x2_grid_over_steps_and_seed(running_app, page):
    app, _ = running_app
    studio = app.studio
    before = studio.gallery.count()
    small_settings(page, "txt2img", "a fox badge")
    open_accordion(page, "txt2img_xyz")
    page.wait_for_selector("#txt2img_xyz_x_values textarea", state="visible")
    # the axis types default to Steps (X) and Seed (Y)
    assert page.locator("#txt2img_xyz_x_type input").input_value() == "Steps"
    assert page.locator("#txt2img_xyz_y_type input").input_value() == "Seed"
    fill(page, "#txt2img_xyz_x_values textarea", "1-2")
    fill(page, "#txt2img_xyz_y_values textarea", "11, 12")
    page.click("#txt2img_xyz_run")
    wait_status(page, "txt2img", "grid + 4 cell(s)")
    page.wait_for_function("document.querySelectorAll('#txt2img_gallery img').length >= 5")
    page.locator("#txt2img_gallery .thumbnail-item").first.click()  # the grid, shown whole
    page.wait_for_selector("#txt2img_gallery button[aria-label='Close']")
    page.wait_for_function(
        "document.querySelector('#txt2img_info textarea')?.value.includes('X Type: Steps')"
    )
    shot(page, "tab_xyz")
    page.click("#txt2img_gallery button[aria-label='Close']")
    page.wait_for_selector("#txt2img_gallery button[aria-label='Close']", state="detached")
    assert studio.gallery.count() == before + 5
    newest = studio.gallery.recent(limit=5)
    grid = newest[0]
    assert grid.task == "grid"
    assert sorted((parse_infotext(i.infotext).params["Steps"], i.seed) for i in newest[1:]) == [
        ("1", 11), ("1", 12), ("2", 11), ("2", 12),
    ]  # fmt: skip
    plot = studio.groups.plot_of(grid.id)
    assert (plot.x.type, plot.x.values, plot.y.type, plot.y.values) == ("steps", "1-2", "seed", "11, 12")
    assert plot.base.prompt == "a fox badge" and plot.base.width == 64


def test_a_bad_axis_value_is_an_error_toast(running_app, page):
    before = running_app[0].studio.gallery.count()
    fill(page, "#txt2img_xyz_x_values textarea", "1-2 (+0)")
    page.click("#txt2img_xyz_run")
    toast = page.locator(".toast-body").first
    toast.wait_for(timeout=60_000)
    assert "the step must not be 0" in toast.inner_text()
    assert running_app[0].studio.gallery.count() == before
    close_toasts(page)


def test_variations_of_a_result_and_compare(running_app, page):
    app, _ = running_app
    studio = app.studio
    small_settings(page, "txt2img", "a heron logo")
    fill(page, "#txt2img_seed input", 777)
    page.click("#txt2img_generate")
    wait_status(page, "txt2img", "seed 777")
    original = studio.gallery.recent(limit=1)[0]
    page.click("#txt2img_compare_a")  # the result as A
    fill(page, "#txt2img_variations_count input", 3)
    before = studio.gallery.count()
    page.click("#txt2img_variations")
    wait_status(page, "txt2img", "3 image(s)")
    page.wait_for_function("document.querySelectorAll('#txt2img_gallery img').length === 3")
    assert studio.gallery.count() == before + 3
    made = studio.gallery.recent(limit=3)
    subseeds = set()
    for image in made:
        params = parse_infotext(image.infotext).params
        assert image.seed == 777 and params["Variation seed strength"] == "0.15"
        subseeds.add(params["Variation seed"])
    assert len(subseeds) == 3 and original.id not in {i.id for i in made}
    # the first variation (now selected) as B: the slider shows both
    page.click("#txt2img_compare_b")
    page.wait_for_selector("#txt2img_compare", state="visible")
    page.wait_for_function("document.querySelectorAll('#txt2img_compare img').length >= 2")
    shot(page, "variations-compare")


def test_gallery_reruns_a_plot_from_its_grid_and_varies_a_cell(running_app, page):
    app, _ = running_app
    studio = app.studio
    page.click("#tab_gallery-button")
    page.wait_for_selector("#gallery_grid img")
    task = page.locator("#gallery_task input")
    task.click()
    page.get_by_role("option", name="grid", exact=True).click()
    page.wait_for_function("document.querySelector('#gallery_page')?.innerText.includes('1 image')")
    page.locator("#gallery_grid img").first.click()
    page.wait_for_function(
        "document.querySelector('#gallery_details textarea')?.value.includes('X Type: Steps')"
    )
    open_accordion(page, "gallery_iteration")
    page.wait_for_selector("#gallery_rerun_plot", state="visible")
    before = studio.gallery.count()
    page.click("#gallery_rerun_plot")
    page.wait_for_function(
        "document.querySelector('#gallery_variations_status')?.innerText.includes('grid + 4 cell(s)')",
        timeout=120_000,
    )
    page.wait_for_function("document.querySelectorAll('#gallery_variations_gallery img').length >= 5")
    assert studio.gallery.count() == before + 5
    # variations of a grid make no sense: the toast says to pick a cell
    page.click("#gallery_variations")
    toast = page.locator(".toast-body").first
    toast.wait_for(timeout=60_000)
    assert "pick one of its cells" in toast.inner_text()
    assert studio.gallery.count() == before + 5
    shot(page, "gallery-rerun")
