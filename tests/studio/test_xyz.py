"""X/Y/Z plots: value syntax, cell expansion and validation, the grid image, and plots run through a Studio
on tiny checkpoints (each cell equals a direct generation; a model axis loads each model once)."""

import json

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from core.grid import GAP, draw_grid, grid_layout
from core.requests import Img2ImgRequest, Txt2ImgRequest, validation_message
from core.xyz import (
    MAX_CELLS,
    Axis,
    AxisContext,
    PlotError,
    PlotRequest,
    axis_choices,
    cells,
    parse_values,
    plot_from_json,
    run_order,
    split_values,
)
from studio import JobState, UnknownModel

FAST = {"steps": 2, "width": 64, "height": 64}


# -- value syntax ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("1, 2,3", "int", [1, 2, 3]),
        ("1-5", "int", [1, 2, 3, 4, 5]),
        ("5-1", "int", [5, 4, 3, 2, 1]),
        ("5-30 (+5)", "int", [5, 10, 15, 20, 25, 30]),
        ("10-1 (-3)", "int", [10, 7, 4, 1]),
        ("1-10 (+4)", "int", [1, 5, 9]),
        ("1-10 [4]", "int", [1, 4, 7, 10]),
        ("-1, 7", "int", [-1, 7]),
        ("0.1-0.9 [5]", "float", [0.1, 0.3, 0.5, 0.7, 0.9]),
        ("1-2 (+0.25)", "float", [1.0, 1.25, 1.5, 1.75, 2.0]),
        ("7.5, .5, 3", "float", [7.5, 0.5, 3.0]),
        ("3-3 [1]", "float", [3.0]),
        ("1, 2-3", "int", [1, 2, 3]),
        ("Euler a, DPM++ 2M", "str", ["Euler a", "DPM++ 2M"]),
        ('"a, b", c', "str", ["a, b", "c"]),
        ("red\nblue, green", "str", ["red", "blue", "green"]),
        ("a,, b ,", "str", ["a", "b"]),
        ("512x768, 64 X 64, 96×128", "size", [(512, 768), (64, 64), (96, 128)]),
        ("", "int", []),
    ],
)
def test_values_parse_as_in_a1111(text, kind, expected):
    assert parse_values(text, kind) == expected


@pytest.mark.parametrize(
    ("text", "kind", "message"),
    [
        ("abc", "int", r"'abc' is not a whole number; write a list like 1, 2, 3 or a range"),
        ("1.5", "int", "is not a whole number"),
        ("nan", "float", "'nan' is not a number"),
        ("inf", "float", "'inf' is not a number"),
        ("1-5 (0)", "int", "the step must not be 0"),
        ("1-5 (-1)", "int", "a step of -1 never goes from 1 to 5"),
        ("1-5 [0]", "int", "at least one value"),
        ("1-100000", "int", f"gives 100000 values; a plot has at most {MAX_CELLS} cells"),
        ("0-1 [1000]", "float", "gives 1000 values"),
        ("1-5 (+1", "int", "is not a whole number"),
        ('"unclosed', "str", "put a value holding a comma in double quotes"),
        ("512", "size", "'512' is not a size; write width x height"),
    ],
)
def test_bad_values_are_clear_errors(text, kind, message):
    with pytest.raises(PlotError, match=message):
        parse_values(text, kind)


def test_many_single_values_are_capped_too():
    with pytest.raises(PlotError, match=f"more than {MAX_CELLS} values"):
        parse_values(",".join(str(i) for i in range(MAX_CELLS + 1)), "int")


def test_split_values_keeps_quoted_commas():
    assert split_values('"cat, dog", "fox"') == ["cat, dog", "fox"]


# -- the plot request and its cells ----------------------------------------------------------------


def _plot(**axes):
    base = axes.pop(
        "base", Txt2ImgRequest(prompt="a red fox logo", negative_prompt="blurry fox", seed=3, **FAST)
    )
    return PlotRequest(base=base, **{k: Axis(type=t, values=v) for k, (t, v) in axes.items()})


def test_cells_come_in_layout_order_with_each_axis_value_applied():
    plot = _plot(x=("steps", "1-3"), y=("cfg_scale", "5, 7.5"), z=("seed", "10, 20"))
    assert plot.shape == (3, 2, 2)
    made = cells(plot)
    assert [(c.x, c.y, c.z) for c in made] == [
        (x, y, z) for z in range(2) for y in range(2) for x in range(3)
    ]
    for cell in made:
        assert cell.request.steps == [1, 2, 3][cell.x]
        assert cell.request.cfg_scale == [5.0, 7.5][cell.y]
        assert cell.request.seed == [10, 20][cell.z]
        assert cell.request.prompt == "a red fox logo" and cell.request.width == 64
    assert plot.axis_labels() == (
        ["Steps: 1", "Steps: 2", "Steps: 3"],
        ["CFG Scale: 5", "CFG Scale: 7.5"],
        ["Seed: 10", "Seed: 20"],
    )


def test_no_axes_or_empty_axes_make_one_cell_the_base():
    for plot in (_plot(), _plot(x=("nothing", ""), y=("steps", "  "))):
        (cell,) = cells(plot)
        assert (cell.x, cell.y, cell.z) == (0, 0, 0) and cell.request == plot.base
        assert plot.axes() == []


def test_prompt_search_replace_replaces_in_prompt_and_negative_prompt():
    plot = _plot(x=("prompt_sr", "fox, cat, owl"))
    made = cells(plot)
    assert [c.request.prompt for c in made] == ["a red fox logo", "a red cat logo", "a red owl logo"]
    assert [c.request.negative_prompt for c in made] == ["blurry fox", "blurry cat", "blurry owl"]
    assert plot.axis_labels()[0] == ["fox", "cat", "owl"]


def test_prompt_search_replace_must_find_its_first_value():
    with pytest.raises(
        PlotError, match="X axis: Prompt S/R did not find 'wolf' in the prompt or negative prompt"
    ):
        cells(_plot(x=("prompt_sr", "wolf, cat")))


def test_size_styles_sampler_and_variation_axes():
    made = cells(_plot(x=("size", "64x96, 128x64"), y=("styles", "Logo, Photo")))
    assert [(c.request.width, c.request.height) for c in made[:2]] == [(64, 96), (128, 64)]
    assert [c.request.styles for c in made[::2]] == [("Logo",), ("Photo",)]
    made = cells(_plot(x=("sampler", "Euler a, DDIM"), y=("variation_strength", "0-1 [3]")))
    assert [c.request.sampler for c in made[:2]] == ["Euler a", "DDIM"]
    assert [c.request.subseed_strength for c in made[::2]] == [0.0, 0.5, 1.0]


def test_preset_axis_applies_each_preset_and_keeps_one_image_per_cell():
    from core.presets import Preset

    presets = {
        "Quick": Preset(name="Quick", steps=4, cfg_scale=5.0, batch_count=4),
        "Wide": Preset(name="Wide", prompt="wide shot of {prompt}", aspect="2:1", styles=("Photo",)),
    }
    plot = _plot(x=("preset", "Quick, Wide"))
    with pytest.raises(PlotError, match="unknown preset 'Quick'; available: none"):
        cells(plot)
    quick, wide = cells(plot, AxisContext(presets=presets, family_of=lambda model: "sd1"))
    assert (quick.request.steps, quick.request.cfg_scale, quick.request.image_count) == (4, 5.0, 1)
    assert quick.request.prompt == "a red fox logo" and quick.request.width == 64
    assert wide.request.prompt == "wide shot of a red fox logo" and wide.request.styles == ("Photo",)
    assert wide.request.width == 2 * wide.request.height and wide.request.steps == FAST["steps"]


def test_a_bad_value_is_reported_with_its_axis_before_anything_runs():
    with pytest.raises(
        PlotError, match=r"Y axis, Steps '200': steps: Input should be less than or equal to 150"
    ):
        cells(_plot(x=("cfg_scale", "7"), y=("steps", "10, 200")))
    with pytest.raises(PlotError, match=r"X axis, Sampler 'Euler b': sampler: unknown sampler 'Euler b'"):
        cells(_plot(x=("sampler", "Euler a, Euler b")))
    with pytest.raises(PlotError, match=r"X axis, Size '100x64': width: width must be a multiple of 8"):
        cells(_plot(x=("size", "100x64")))
    # each value is fine alone, the combination is not: the cell names both
    with pytest.raises(
        PlotError, match=r"cell X 'Euler a', Y 'Karras': .*does not support the 'Karras' schedule"
    ):
        cells(_plot(x=("sampler", "DPM++ 2M, Euler a"), y=("schedule_type", "Karras")))


def test_plot_request_rejects_what_cannot_run():
    with pytest.raises(ValidationError) as error:
        PlotRequest.model_validate({"base": {"task": "txt2img"}, "y": {"type": "steps", "values": "ten"}})
    assert validation_message(error.value).startswith("y: Steps: 'ten' is not a whole number")
    with pytest.raises(
        ValidationError, match=f"the plot would make 9 × 8 × 1 = 72 cells; at most {MAX_CELLS}"
    ):
        _plot(x=("steps", "1-9"), y=("seed", "1-8"))
    with pytest.raises(ValidationError, match="one image per cell: set batch size and batch count to 1"):
        _plot(base=Txt2ImgRequest(batch_size=2, **FAST), x=("steps", "1-2"))
    with pytest.raises(ValidationError, match="X and Z axes both set steps"):
        _plot(x=("steps", "1-2"), z=("steps", "3"))
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        PlotRequest(base=Txt2ImgRequest(), w=Axis(type="steps", values="1"))
    with pytest.raises(ValidationError, match="Input should be 'nothing', 'seed'"):
        PlotRequest(base=Txt2ImgRequest(), x={"type": "eta", "values": "1"})


def test_axes_that_do_not_apply_to_the_task_are_refused_and_not_offered():
    png = _png()
    with pytest.raises(ValidationError, match="X axis: Hires steps does not apply to img2img"):
        PlotRequest(base=Img2ImgRequest(init_image=png, **FAST), x=Axis(type="hires_steps", values="1"))
    img2img_axes = {key for _, key in axis_choices(Img2ImgRequest)}
    assert "hires_steps" not in img2img_axes and {"denoising_strength", "steps", "seed"} <= img2img_axes
    assert {"hires_steps", "prompt_sr", "model", "size", "preset"} <= {
        k for _, k in axis_choices(Txt2ImgRequest)
    }


def test_run_order_groups_cells_by_model_and_keeps_layout_order_within():
    plot = _plot(x=("model", "b, a"), y=("seed", "1, 2, 3"))
    made = cells(plot)
    assert [c.request.model for c in made] == ["b", "a"] * 3
    ordered = run_order(made)
    assert [c.request.model for c in ordered] == ["b"] * 3 + ["a"] * 3
    assert [(c.x, c.y) for c in ordered] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]


def test_plot_json_round_trips_for_every_task():
    plot = _plot(x=("prompt_sr", '"fox, red", cat'), y=("size", "64x64, 64x128"), z=("cfg_scale", "1-3 (+1)"))
    assert plot_from_json(plot.model_dump_json()) == plot
    assert plot_from_json(json.loads(plot.model_dump_json())) == plot
    img2img = PlotRequest(
        base=Img2ImgRequest(init_image=_png(), **FAST), x=Axis(type="denoising_strength", values="0.5, 1")
    )
    assert plot_from_json(json.loads(img2img.model_dump_json())) == img2img
    with pytest.raises(PlotError, match="not a usable plot definition"):
        plot_from_json({"base": {"task": "txt2img"}, "x": {"type": "steps", "values": "1"}, "colour": "red"})


def _png(size=(64, 64)) -> bytes:
    from core.images import encode_png

    return encode_png(Image.new("RGB", size, (200, 30, 30)))


# -- the grid image --------------------------------------------------------------------------------


def _tiles(n, size=(64, 64)):
    return [Image.new("RGB", size, (20 * i % 256, 255 - 20 * i % 256, 90)) for i in range(n)]


def test_grid_size_is_cells_times_cell_size_plus_label_margins():
    tiles = _tiles(12)
    xs, ys, zs = (
        ["Steps: 1", "Steps: 2", "Steps: 3"],
        ["CFG Scale: 5", "CFG Scale: 7"],
        ["Seed: 1", "Seed: 2"],
    )
    grid = draw_grid(tiles, (3, 2, 2), xs, ys, zs)
    layout = grid_layout([t.size for t in tiles], (3, 2, 2), xs, ys, zs)
    assert layout.left > 0 and layout.top > 0 and layout.title > 0
    plane = layout.left + 3 * 64
    assert grid.size == (2 * plane + GAP, layout.title + layout.top + 2 * 64)
    # every cell sits in its box, untouched by the labels
    for index, tile in enumerate(tiles):
        z, rest = divmod(index, 6)
        y, x = divmod(rest, 3)
        ox, oy = layout.cell_origin(x, y, z)
        assert (ox, oy) == (z * (plane + GAP) + layout.left + 64 * x, layout.title + layout.top + 64 * y)
        assert np.array_equal(np.asarray(grid.crop((ox, oy, ox + 64, oy + 64))), np.asarray(tile))
    # the label margins carry text (dark pixels), the gap between planes does not
    pixels = np.asarray(grid.convert("L"))
    assert pixels[: layout.title + layout.top, :].min() < 100
    assert pixels[layout.title + layout.top :, : layout.left].min() < 100
    assert pixels[:, plane : plane + GAP].min() == 255


def test_grid_without_labels_is_exactly_the_cells():
    grid = draw_grid(_tiles(6), (3, 2, 1))
    assert grid.size == (3 * 64, 2 * 64)


def test_cells_of_different_sizes_are_centred_in_the_largest_box():
    tiles = [Image.new("RGB", (64, 128), "red"), Image.new("RGB", (128, 64), "blue")]
    grid = draw_grid(tiles, (2, 1, 1))
    assert grid.size == (2 * 128, 128)
    pixels = np.asarray(grid)
    assert (pixels[0:128, 32:96] == (255, 0, 0)).all()  # 64 wide, centred in the first 128 box
    assert (pixels[32:96, 128:256] == (0, 0, 255)).all()  # 64 high, centred in the second
    assert (pixels[0:32, 128:256] == 255).all() and (pixels[:, 0:32] == 255).all()


def test_long_labels_wrap_within_their_column_and_make_the_margin_taller():
    short = grid_layout([(64, 64)] * 2, (2, 1, 1), ["a", "b"], [], [])
    long = grid_layout(
        [(64, 64)] * 2, (2, 1, 1), ["a", "a very long label that cannot fit on one line"], [], []
    )
    assert long.top > 2 * short.top
    assert long.size[0] == short.size[0] == 128


def test_grid_refuses_images_or_labels_that_do_not_fit_the_shape():
    with pytest.raises(ValueError, match="5 images do not fill a 3×2×1 grid"):
        draw_grid(_tiles(5), (3, 2, 1))
    with pytest.raises(ValueError, match="2 column labels for 3 columns"):
        draw_grid(_tiles(3), (3, 1, 1), ["a", "b"])


# -- plots through a Studio ------------------------------------------------------------------------


def _pixels(studio, image):
    with Image.open(studio.gallery.file_path(image.id)) as picture:
        return np.asarray(picture.convert("RGB"))


def _finished(group, timeout=180):
    assert group.wait(timeout), "the group did not finish"
    return group


def test_each_cell_equals_a_direct_generation_and_the_grid_holds_them(make_studio):
    studio = make_studio()
    plot = _plot(x=("steps", "1-2"), y=("seed", "7, 8"))
    group = _finished(studio.groups.run_plot(plot, "local"))
    assert group.state is JobState.DONE, group.error
    assert group.step == group.total == 1 + 2 + 1 + 2
    assert len(group.cell_images) == 4 and group.grid is not None
    assert [(i.seed, i.task) for i in group.cell_images] == [(7, "txt2img")] * 2 + [(8, "txt2img")] * 2
    # the grid: cells × cell size + labels, each cell's pixels in its box
    xs, ys, _ = plot.axis_labels()
    layout = grid_layout([(64, 64)] * 4, (2, 2, 1), xs, ys, [])
    assert (group.grid.width, group.grid.height) == layout.size and group.grid.task == "grid"
    grid = _pixels(studio, group.grid)
    for cell, image in zip(studio.groups.plot_cells(group.plot), group.cell_images, strict=True):
        direct = studio.jobs.submit(cell.request, "local")
        assert direct.wait(60) and direct.state is JobState.DONE
        assert np.array_equal(_pixels(studio, direct.images[0]), _pixels(studio, image)), (cell.x, cell.y)
        ox, oy = layout.cell_origin(cell.x, cell.y, 0)
        assert np.array_equal(grid[oy : oy + 64, ox : ox + 64], _pixels(studio, image))
    # its metadata holds the whole plot (seeds fixed), and re-running gives the same cells
    assert studio.groups.plot_of(group.grid.id) == group.plot
    assert group.plot.base.seed == 3 and group.plot.x == plot.x and group.plot.y == plot.y
    assert "X Type: Steps" in group.grid.infotext and 'Y Values: "7, 8"' in group.grid.infotext
    again = _finished(studio.groups.rerun_plot(group.grid.id, "local"))
    assert again.state is JobState.DONE and again.plot == group.plot
    assert np.array_equal(_pixels(studio, again.grid), grid)


def test_an_img2img_plot_over_denoising_and_seed_equals_direct_img2img_generations(make_studio):
    studio = make_studio()
    source = _png()
    base = Img2ImgRequest(init_image=source, prompt="a red fox logo", seed=4, steps=2, width=64, height=64)
    plot = PlotRequest(
        base=base,
        x=Axis(type="denoising_strength", values="0.5, 1"),
        y=Axis(type="seed", values="7, 8"),
    )
    group = _finished(studio.groups.run_plot(plot, "local"))
    assert group.state is JobState.DONE, group.error
    assert len(group.cell_images) == 4 and group.grid is not None
    assert [(i.seed, i.task) for i in group.cell_images] == [(7, "img2img")] * 2 + [(8, "img2img")] * 2
    xs, ys, _ = plot.axis_labels()
    assert xs == ["Denoising: 0.5", "Denoising: 1"] and ys == ["Seed: 7", "Seed: 8"]
    layout = grid_layout([(64, 64)] * 4, (2, 2, 1), xs, ys, [])
    assert (group.grid.width, group.grid.height) == layout.size
    grid = _pixels(studio, group.grid)
    cell_pixels = [_pixels(studio, image) for image in group.cell_images]
    for cell, pixels in zip(studio.groups.plot_cells(group.plot), cell_pixels, strict=True):
        request = Img2ImgRequest(
            init_image=source, prompt="a red fox logo", steps=2, width=64, height=64, model="tiny-sd1",
            denoising_strength=(0.5, 1.0)[cell.x], seed=(7, 8)[cell.y],
        )  # fmt: skip
        assert (cell.request.denoising_strength, cell.request.seed) == (
            request.denoising_strength,
            request.seed,
        )
        assert cell.request.init_image == source and cell.request.subseed_strength == 0
        direct = studio.jobs.submit(request, "local")
        assert direct.wait(60) and direct.state is JobState.DONE, direct.error
        assert np.array_equal(_pixels(studio, direct.images[0]), pixels), (cell.x, cell.y)
        ox, oy = layout.cell_origin(cell.x, cell.y, 0)
        assert np.array_equal(grid[oy : oy + 64, ox : ox + 64], pixels)
    # the strength and the seed each change the picture
    assert not np.array_equal(cell_pixels[0], cell_pixels[1]) and not np.array_equal(
        cell_pixels[0], cell_pixels[2]
    )
    # the grid's metadata holds the plot, source picture included, and re-running it gives the same grid
    assert studio.groups.plot_of(group.grid.id) == group.plot and group.plot.base.init_image == source
    again = _finished(studio.groups.rerun_plot(group.grid.id, "local"))
    assert again.state is JobState.DONE, again.error
    assert np.array_equal(_pixels(studio, again.grid), grid)


def test_the_img2img_tab_has_its_own_plot_accordion(make_studio):
    import gradio as gr

    from core.images import encode_png
    from ui import img2img, txt2img

    with gr.Blocks() as page:
        studio = make_studio()
        txt2img.build(studio)
        img2img.build(studio)
    ids = [block.elem_id for block in page.blocks.values() if getattr(block, "elem_id", None)]
    wanted = [
        "img2img_xyz",
        "img2img_xyz_run",
        "img2img_xyz_x_type",
        "img2img_xyz_y_values",
        "img2img_xyz_z_type",
    ]
    assert all(ids.count(elem_id) == 1 for elem_id in wanted), ids
    assert ids.count("txt2img_xyz_run") == 1
    by_id = {block.elem_id: block for block in page.blocks.values() if getattr(block, "elem_id", None)}
    x_type = by_id["img2img_xyz_x_type"]
    assert x_type.value == "denoising_strength"
    assert "hires_steps" not in {key for _, key in x_type.choices}
    # Make grid: the tab's source picture, strength and prompt are the plot's base
    run = by_id["img2img_xyz_run"]
    (handler,) = [f for f in page.fns.values() if (run._id, "click") in f.targets]
    # the widgets' values as the page sends them (an empty text box sends "")
    data = {c: "" if isinstance(c, gr.Textbox) and c.value is None else c.value for c in handler.inputs}
    source = Image.new("RGB", (64, 64), (200, 30, 30))
    data.update({
        by_id["img2img_image"]: source, by_id["img2img_prompt"]: "a fox", by_id["img2img_denoising"]: 0.5,
        by_id["img2img_xyz_x_values"]: "0.5, 1", by_id["img2img_xyz_y_values"]: "7, 8",
        by_id["img2img_steps"]: 2, by_id["img2img_width"]: 64, by_id["img2img_height"]: 64,
    })  # fmt: skip
    *_, last = handler.fn(data, None)
    gallery = last[by_id["img2img_gallery"]]
    assert [caption for _, caption in gallery] == [
        "grid", "Denoising: 0.5 · Seed: 7", "Denoising: 1 · Seed: 7", "Denoising: 0.5 · Seed: 8",
        "Denoising: 1 · Seed: 8",
    ]  # fmt: skip
    direct = studio.jobs.submit(
        Img2ImgRequest(init_image=encode_png(source), prompt="a fox", steps=2, width=64, height=64, seed=8),
        "local",
    )
    assert direct.wait(60) and direct.state is JobState.DONE, direct.error
    with Image.open(gallery[3][0]) as cell:
        assert np.array_equal(np.asarray(cell.convert("RGB")), _pixels(studio, direct.images[0]))


def test_a_random_seed_is_fixed_once_for_the_whole_plot(make_studio):
    studio = make_studio()
    group = _finished(
        studio.groups.run_plot(
            _plot(base=Txt2ImgRequest(prompt="x", **FAST), x=("cfg_scale", "5, 9")), "local"
        )
    )
    assert group.state is JobState.DONE, group.error
    seeds = {image.seed for image in group.cell_images}
    assert len(seeds) == 1 and seeds == {group.plot.base.seed} and group.plot.base.seed != -1


def test_a_model_axis_loads_each_model_once(make_studio):
    studio = make_studio(max_gpu_models=1, max_ram_models=0)
    manager = studio.backend.manager
    plot = _plot(
        base=Txt2ImgRequest(prompt="logo", steps=1, width=64, height=64, seed=1),
        x=("model", "tiny-sd1, tiny-sd1-other"),
        y=("seed", "1, 2, 3"),
    )
    group = _finished(studio.groups.run_plot(plot, "local"))
    assert group.state is JobState.DONE, group.error
    assert manager.load_count == 2  # layout order would switch models at every cell: 6 loads
    assert [job.request.model for job in group.jobs] == ["tiny-sd1"] * 3 + ["tiny-sd1-other"] * 3
    assert [image.model for image in group.cell_images] == ["tiny-sd1", "tiny-sd1-other"] * 3


def test_an_unknown_model_in_an_axis_fails_before_anything_runs(make_studio):
    studio = make_studio()
    with pytest.raises(UnknownModel, match="Unknown model 'nope'"):
        studio.groups.run_plot(_plot(x=("model", "tiny-sd1, nope")), "local")
    assert studio.gallery.count() == 0


def test_cancelling_a_plot_stops_its_jobs_and_makes_no_grid(make_gated_studio):
    studio, backend = make_gated_studio()
    plot = _plot(base=Txt2ImgRequest(prompt="x", steps=60, width=64, height=64, seed=1), x=("seed", "1-4"))
    group = studio.groups.run_plot(plot, "local")
    (run,) = backend.wait_for_runs(1)
    backend.release()
    backend.wait_for_step(run, 1)
    studio.jobs.cancel_all("local")
    backend.open()
    _finished(group)
    assert group.state is JobState.CANCELLED and group.grid is None
    assert len(group.jobs) == 1 and group.jobs[0].state is JobState.CANCELLED
    assert run.closed_early and len(backend.runs) == 1  # the other cells never ran
    assert studio.gallery.count() == 0
    # the queue goes on
    after = studio.jobs.submit(Txt2ImgRequest(prompt="y", **FAST), "local")
    assert after.wait(60) and after.state is JobState.DONE


def test_xyz_and_variations_over_the_gradio_api(running_app):
    import base64
    import io

    from gradio_client import Client

    app, url = running_app
    client = Client(url, verbose=False)
    plot = {
        "base": {"task": "txt2img", "prompt": "a fox logo", "seed": 5, **FAST},
        "x": {"type": "cfg_scale", "values": "4, 8"},
    }
    result = client.predict(plot=plot, api_name="/xyz")
    assert result["state"] == "done" and len(result["ids"]) == 2 and result["seeds"] == [5, 5]
    assert PlotRequest.model_validate(result["plot"]) == app.studio.groups.plot_of(result["grid_id"])
    with Image.open(io.BytesIO(base64.b64decode(result["grid"]))) as grid:
        layout = grid_layout([(64, 64)] * 2, (2, 1, 1), ["CFG Scale: 4", "CFG Scale: 8"], [], [])
        assert grid.size == layout.size
    before = app.studio.gallery.count()
    with pytest.raises(Exception, match="the plot would make 2 × 40 × 1 = 80 cells; at most 64"):
        client.predict(plot={**plot, "y": {"type": "seed", "values": "1-40"}}, api_name="/xyz")
    assert app.studio.gallery.count() == before
    varied = client.predict(image_id=result["ids"][0], count=2, strength=0.2, api_name="/variations")
    assert varied["seeds"] == [5, 5] and len(set(varied["subseeds"])) == 2
    with pytest.raises(Exception, match="X/Y/Z plot grid; pick one of its cells"):
        client.predict(image_id=result["grid_id"], count=2, strength=0.2, api_name="/variations")


def test_other_users_take_turns_between_the_cells_of_a_plot(make_studio):
    studio = make_studio()
    plot = _plot(base=Txt2ImgRequest(prompt="x", steps=8, width=64, height=64, seed=1), x=("seed", "1-3"))
    group = studio.groups.run_plot(plot, "alice")
    while not group.jobs or group.jobs[0].step < 1:
        assert not group.wait(0.01), group.error
    bob = studio.jobs.submit(Txt2ImgRequest(prompt="y", **FAST), "bob")
    _finished(group)
    assert bob.wait(60) and bob.state is JobState.DONE and group.state is JobState.DONE
    assert group.jobs[0].finished <= bob.started <= bob.finished <= group.jobs[1].started
