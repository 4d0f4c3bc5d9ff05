"""Retouch operations without model weights: enhance, background removal (colour key, and a tiny ONNX
segmentation model through the real loading path), SVG tracing and the logo PNG zip."""

from __future__ import annotations

import io
import math
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from pipelines.retouch import MissingWeights, RetouchError
from pipelines.retouch.background import list_segmenters, remove_background, subject_mask
from pipelines.retouch.enhance import ENHANCE_FIELDS, auto_enhance_settings, enhance
from pipelines.retouch.vectorize import logo_pngs_zip, to_svg, with_view_box
from tests.retouch_images import dull_cast, iou, logo, neutral, noisy_flat, product, soft_edges

LUMA = np.array([0.299, 0.587, 0.114])


def arr(image: Image.Image) -> np.ndarray:
    return np.asarray(image, np.float64)


def channel_spread(image: Image.Image) -> float:
    means = arr(image.convert("RGB")).reshape(-1, 3).mean(axis=0)
    return float(means.max() - means.min())


def value_range(image: Image.Image) -> float:
    lo, hi = np.percentile(arr(image.convert("RGB")), [1, 99])
    return float(hi - lo)


def luma_std(image: Image.Image) -> float:
    return float((arr(image.convert("RGB")) @ LUMA).std())


def mean_chroma(image: Image.Image) -> float:
    px = arr(image.convert("RGB"))
    return float((px.max(axis=2) - px.min(axis=2)).mean())


def high_frequency(image: Image.Image) -> float:
    grey = np.asarray(image.convert("L"), np.float32)
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


def with_alpha(image: Image.Image) -> Image.Image:
    alpha = np.tile(np.linspace(0, 255, image.width, dtype=np.float32), (image.height, 1))
    alpha[: image.height // 4] = 0
    out = image.convert("RGBA")
    out.putalpha(Image.fromarray(np.rint(alpha).astype(np.uint8), "L"))
    return out


# --- enhance ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [dull_cast, lambda: with_alpha(dull_cast())])
def test_all_strengths_zero_is_pixel_identical(make) -> None:
    image = make()
    out = enhance(image)
    assert out.mode == image.mode and out.size == image.size
    assert out.tobytes() == image.tobytes()
    assert out is not image


def test_levels_stretch_a_low_contrast_range() -> None:
    image = dull_cast()
    half, full = enhance(image, levels=0.5), enhance(image, levels=1.0)
    assert value_range(image) < value_range(half) < value_range(full)
    lo, hi = np.percentile(arr(full), [0.5, 99.5])
    assert lo <= 3 and hi >= 252


def test_white_balance_pulls_the_channel_means_together() -> None:
    image = dull_cast()
    before = channel_spread(image)
    half, full = (
        channel_spread(enhance(image, white_balance=0.5)),
        channel_spread(enhance(image, white_balance=1.0)),
    )
    assert before > 30
    assert full < half < before
    assert full < 0.15 * before


def test_contrast_raises_the_luminance_spread() -> None:
    image = dull_cast()
    assert luma_std(image) < luma_std(enhance(image, contrast=0.4)) < luma_std(enhance(image, contrast=1.0))
    # around the mean: the mean luminance stays put
    assert abs((arr(enhance(image, contrast=0.4)) @ LUMA).mean() - (arr(image) @ LUMA).mean()) < 1.0


def test_saturation_raises_chroma_and_keeps_greys_grey() -> None:
    image = dull_cast()
    assert (
        mean_chroma(image)
        < mean_chroma(enhance(image, saturation=0.5))
        < mean_chroma(enhance(image, saturation=1))
    )
    grey = Image.new("RGB", (16, 16), (90, 90, 90))
    assert enhance(grey, saturation=1.0).tobytes() == grey.tobytes()


def test_sharpen_raises_high_frequency_energy() -> None:
    image = soft_edges()
    assert (
        high_frequency(image)
        < high_frequency(enhance(image, sharpen=0.5))
        < high_frequency(enhance(image, sharpen=1.0))
    )


def test_denoise_lowers_the_noise_on_a_flat_patch() -> None:
    image = noisy_flat()
    before = arr(image).std(axis=(0, 1)).mean()
    light, strong = enhance(image, denoise=0.3), enhance(image, denoise=1.0)
    assert arr(strong).std(axis=(0, 1)).mean() < arr(light).std(axis=(0, 1)).mean() < before
    assert arr(strong).std(axis=(0, 1)).mean() < 0.5 * before
    # the flat colour itself survives
    assert np.abs(arr(strong).mean(axis=(0, 1)) - [120, 130, 140]).max() < 3


def test_every_slider_leaves_alpha_untouched() -> None:
    image = with_alpha(dull_cast())
    out = enhance(image, **dict.fromkeys(ENHANCE_FIELDS, 0.7))
    assert out.mode == "RGBA"
    assert out.getchannel("A").tobytes() == image.getchannel("A").tobytes()
    assert out.convert("RGB").tobytes() != image.convert("RGB").tobytes()


def test_auto_fixes_a_dull_cast_image() -> None:
    image = dull_cast()
    settings = auto_enhance_settings(image)
    assert set(settings) == set(ENHANCE_FIELDS)
    assert all(0.0 <= v <= 1.0 for v in settings.values())
    assert settings["levels"] > 0.3 and settings["white_balance"] > 0.3
    out = enhance(image, **settings)
    assert value_range(out) > 1.5 * value_range(image)
    assert channel_spread(out) < 0.5 * channel_spread(image)


@pytest.mark.parametrize("make", [neutral, lambda: logo()[0]])
def test_auto_leaves_a_well_exposed_neutral_image_alone(make) -> None:
    settings = auto_enhance_settings(make())
    assert settings["levels"] <= 0.05 and settings["white_balance"] <= 0.05
    assert settings["contrast"] <= 0.05 and settings["saturation"] <= 0.05 and settings["denoise"] == 0.0


def test_auto_on_noise_denoises_and_does_not_sharpen() -> None:
    settings = auto_enhance_settings(noisy_flat())
    assert settings["denoise"] > 0.2 and settings["sharpen"] == 0.0


@pytest.mark.parametrize("field", ENHANCE_FIELDS)
@pytest.mark.parametrize("value", [-0.01, 1.01, math.nan, math.inf, True, "0.5", None])
def test_out_of_range_strength_is_an_error(field: str, value: object) -> None:
    with pytest.raises(RetouchError, match=field):
        enhance(dull_cast(16, 16), **{field: value})


# --- background removal: colour key ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["key", "auto"])
@pytest.mark.parametrize("picture", ["product", "logo", "product touching the border", "big product"])
def test_key_cut_out_matches_the_ground_truth(tmp_path: Path, method: str, picture: str) -> None:
    image, truth = {
        "product": lambda: product(0),
        "logo": lambda: logo(),
        "product touching the border": lambda: product(4, cy=0.85),
        "big product": lambda: product(1, 640, 480),
    }[picture]()
    out = remove_background(image, method=method, models_dir=tmp_path)  # tmp_path has no models: auto → key
    assert out.mode == "RGBA" and out.size == image.size
    assert out.convert("RGB").tobytes() == image.tobytes()  # colours untouched, only alpha added
    alpha = np.asarray(out.getchannel("A"))
    assert iou(alpha > 127, truth) >= 0.95
    # a soft edge: some partial alpha, but only along the boundary
    partial = (alpha > 0) & (alpha < 255)
    assert partial.any()
    boundary = cv2.morphologyEx(truth.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((5, 5), np.uint8)) > 0
    assert partial[~boundary].mean() < 0.002


def test_logo_ring_hole_is_transparent(tmp_path: Path) -> None:
    image, _ = logo()
    alpha = np.asarray(subject_mask(image, method="key", models_dir=tmp_path))
    h, w = alpha.shape
    assert alpha[h // 2, round(w * 0.31)] == 0  # the centre of the ring
    assert alpha[h // 2, round(w * 0.31 + h * 0.21)] == 255  # on the ring


def test_alpha_matting_keeps_the_cut_out(tmp_path: Path) -> None:
    image, truth = product(0)
    out = remove_background(image, method="key", models_dir=tmp_path, alpha_matting=True)
    assert iou(np.asarray(out.getchannel("A")) > 127, truth) >= 0.95


def test_existing_transparency_stays_transparent(tmp_path: Path) -> None:
    image, truth = product(0)
    rgba = image.convert("RGBA")
    alpha = np.full(truth.shape, 255, np.uint8)
    alpha[:, : truth.shape[1] // 2] = 0  # left half already cut away
    rgba.putalpha(Image.fromarray(alpha, "L"))
    out = np.asarray(remove_background(rgba, method="key", models_dir=tmp_path).getchannel("A"))
    assert (out[:, : truth.shape[1] // 2] == 0).all()
    right = truth.copy()
    right[:, : truth.shape[1] // 2] = False
    assert iou(out > 127, right) >= 0.95


def test_a_blank_image_has_no_subject(tmp_path: Path) -> None:
    mask = subject_mask(Image.new("RGB", (64, 48), (240, 240, 240)), method="key", models_dir=tmp_path)
    assert mask.mode == "L" and mask.size == (64, 48) and mask.getextrema() == (0, 0)


def test_bad_method_and_missing_models(tmp_path: Path) -> None:
    image, _ = logo(64, 48)
    with pytest.raises(RetouchError, match="method"):
        subject_mask(image, method="magic", models_dir=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(MissingWeights, match=r"u2net\.onnx.*rembg"):
        subject_mask(image, method="model", models_dir=tmp_path)
    with pytest.raises(MissingWeights, match=r"isnet\.onnx"):
        remove_background(
            image, model="isnet", models_dir=tmp_path
        )  # a named model is never replaced by the key


# --- background removal: an ONNX segmentation model through the real path ---------------------------------------


def write_tiny_segmenter(path: Path, side: int = 64) -> Path:
    """A u2net-shaped ONNX model: NCHW float input at a static size, several (1, 1, H, W) outputs like u2net's
    d0..d6. Its "saliency" is darkness: a 1×1 convolution summing the negated normalised channels."""
    import onnx
    from onnx import TensorProto, helper

    weight = helper.make_tensor("w", TensorProto.FLOAT, [1, 3, 1, 1], [-1.0, -1.0, -1.0])
    bias = helper.make_tensor("b", TensorProto.FLOAT, [1], [0.0])
    nodes = [
        helper.make_node("Conv", ["input.1", "w", "b"], ["d0"]),
        helper.make_node("Sigmoid", ["d0"], ["d1"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_u2net",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, side, side])],
        [
            helper.make_tensor_value_info("d0", TensorProto.FLOAT, [1, 1, side, side]),
            helper.make_tensor_value_info("d1", TensorProto.FLOAT, [1, 1, side, side]),
        ],
        initializer=[weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def test_onnx_segmenter_is_listed_and_used(tmp_path: Path) -> None:
    write_tiny_segmenter(tmp_path / "rembg" / "u2net.onnx")
    (tmp_path / "rembg" / "notes.txt").write_text("not a model")
    assert list_segmenters(tmp_path) == ["u2net"]
    image, truth = product(0)
    out = remove_background(image, models_dir=tmp_path)  # auto → the model
    assert out.mode == "RGBA" and out.size == image.size
    assert out.convert("RGB").tobytes() == image.tobytes()
    again = remove_background(image, method="model", model="u2net", models_dir=tmp_path)
    assert again.tobytes() == out.tobytes()  # deterministic
    alpha = np.asarray(out.getchannel("A"))
    # rembg's min-max scaling: the darkest region is fully opaque, the background fully transparent
    assert alpha.max() == 255 and np.percentile(alpha[~truth], 50) < 40
    # the dark bottle comes out where it is (orientation and resizing right), coarse as a 64 px model is
    assert iou(alpha > 127, truth) >= 0.85
    # not the colour key: the key's answer differs
    key = np.asarray(remove_background(image, method="key", models_dir=tmp_path).getchannel("A"))
    assert not np.array_equal(key, alpha)


def test_a_broken_onnx_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "rembg").mkdir()
    (tmp_path / "rembg" / "u2net.onnx").write_bytes(b"not an onnx model")
    with pytest.raises(RetouchError, match=r"cannot load segmentation model u2net\.onnx"):
        subject_mask(logo(64, 48)[0], models_dir=tmp_path)


# --- vectorise and logo export ----------------------------------------------------------------------------------


def render_svg(svg: str, size: tuple[int, int]) -> Image.Image:
    import resvg_py

    png = resvg_py.svg_to_bytes(svg_string=svg, width=size[0], height=size[1])
    return Image.open(io.BytesIO(bytes(png))).convert("RGBA")


def over_white(image: Image.Image) -> np.ndarray:
    canvas = Image.new("RGBA", image.size, (255, 255, 255, 255))
    return arr(Image.alpha_composite(canvas, image.convert("RGBA")).convert("RGB"))


def test_svg_parses_and_renders_close_to_the_logo() -> None:
    image, _ = logo()
    svg = to_svg(image)
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert (int(float(root.get("width"))), int(float(root.get("height")))) == image.size
    assert len(root.findall(".//{http://www.w3.org/2000/svg}path")) >= 3
    rendered = over_white(render_svg(svg, image.size))
    # Bound: flat colours trace almost exactly; only anti-aliased curve edges differ.
    assert np.abs(rendered - arr(image)).mean() < 2.0  # measured: 0.69


def test_svg_of_a_cut_out_logo_leaves_the_background_transparent(tmp_path: Path) -> None:
    image, truth = logo()
    cut = remove_background(image, method="key", models_dir=tmp_path)
    rendered = render_svg(to_svg(cut), image.size)
    alpha = np.asarray(rendered.getchannel("A"))
    assert iou(alpha > 127, truth) >= 0.9


def test_binary_svg_traces_the_dark_shapes() -> None:
    image, _ = logo()
    svg = to_svg(image, colors="binary", detail=0.8)
    ET.fromstring(svg)
    rendered = np.asarray(
        Image.fromarray(over_white(render_svg(svg, image.size)).astype(np.uint8)).convert("L")
    )
    dark = np.asarray(image.convert("L")) < 128
    assert iou(rendered < 128, dark) >= 0.9


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"colors": "grey"}, "colors"), ({"detail": 1.5}, "detail"), ({"detail": math.nan}, "detail")],
)
def test_bad_svg_options(kwargs: dict, match: str) -> None:
    with pytest.raises(RetouchError, match=match):
        to_svg(logo(32, 24)[0], **kwargs)


def test_logo_zip_holds_square_transparent_pngs_with_favicon_sizes_and_a_margin(tmp_path: Path) -> None:
    image, truth = logo()
    cut = remove_background(image, method="key", models_dir=tmp_path)
    data = logo_pngs_zip(cut)  # the default: favicon sizes too, 8 % margin
    ys, xs = np.nonzero(truth)
    aspect = (xs.max() - xs.min() + 1) / (ys.max() - ys.min() + 1)
    sizes = (16, 32, 48, 64, 128, 256, 512, 1024)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == [f"logo-{s}.png" for s in sizes]
        for size in sizes:
            png = Image.open(io.BytesIO(archive.read(f"logo-{size}.png")))
            assert png.format == "PNG" and png.mode == "RGBA" and png.size == (size, size)
            left, top, right, bottom = png.getchannel("A").getbbox()
            margin = round(size * 0.08)
            assert right - left >= size - 2 * margin - 2  # the longer side fills the square less the margins
            assert min(left, top, size - right, size - bottom) >= margin - 1  # nothing in the margin
            assert abs((left + right) / 2 - size / 2) <= 1.5 and abs((top + bottom) / 2 - size / 2) <= 1.5
            if size >= 64:  # the shape itself: too few pixels below that to measure an aspect
                assert abs((right - left) / (bottom - top) - aspect) < 0.05 + 4 / size


@pytest.mark.parametrize("padding", [0, 25])
def test_logo_padding_is_the_clear_margin_around_the_logo(padding: float) -> None:
    image = Image.new("RGB", (40, 40), (10, 20, 30))  # opaque: the whole picture is the logo
    with zipfile.ZipFile(io.BytesIO(logo_pngs_zip(image, sizes=(100,), padding=padding))) as archive:
        png = Image.open(io.BytesIO(archive.read("logo-100.png")))
    assert png.getchannel("A").getbbox() == (padding, padding, 100 - padding, 100 - padding)


@pytest.mark.parametrize("padding", [-1, 41, math.nan])
def test_bad_logo_padding(padding: float) -> None:
    with pytest.raises(RetouchError, match="padding"):
        logo_pngs_zip(Image.new("RGB", (8, 8)), sizes=(16,), padding=padding)


def test_svg_has_a_view_box_of_the_picture_size() -> None:
    image, _ = logo()
    root = ET.fromstring(to_svg(image))
    assert root.get("viewBox") == f"0 0 {image.width} {image.height}"
    assert with_view_box('<svg a="1" viewBox="0 0 2 2"></svg>', 5, 5) == '<svg a="1" viewBox="0 0 2 2"></svg>'
    assert with_view_box("<svg/>", 3, 4) == '<svg viewBox="0 0 3 4"/>'


def test_logo_zip_of_an_opaque_image_and_bad_sizes() -> None:
    image = Image.new("RGB", (40, 20), (10, 20, 30))
    with zipfile.ZipFile(io.BytesIO(logo_pngs_zip(image, sizes=(32,), padding=0))) as archive:
        png = Image.open(io.BytesIO(archive.read("logo-32.png")))
    alpha = np.asarray(png.getchannel("A"))
    assert alpha[:8].max() == 0 and alpha[8:24].min() == 255 and alpha[24:].max() == 0  # letterboxed, centred
    for sizes in [(), (0,), (64, 64), (5000,), (64.0,)]:
        with pytest.raises(RetouchError):
            logo_pngs_zip(image, sizes=sizes)
    with pytest.raises(RetouchError, match="transparent"):
        logo_pngs_zip(Image.new("RGBA", (8, 8)))
