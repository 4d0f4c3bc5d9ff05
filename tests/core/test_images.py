"""core.images: upload safety, masks, A1111 resize modes, compositing and outpaint canvases."""

from __future__ import annotations

import io
import math
import resource
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from core.images import (
    ALLOWED_FORMATS,
    MAX_BYTES,
    MAX_PIXELS,
    ImageInputError,
    decode_image,
    encode_png,
    flatten,
    resize_for_mode,
    sniff_format,
)
from core.masks import (
    composite,
    extend_canvas,
    extension_for_aspect,
    feather,
    fill_masked_area,
    invert_mask,
    mask_crop_box,
    mask_from_layers,
    mask_from_upload,
    require_nonempty,
)

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


# --- helpers ------------------------------------------------------------------------------------------


def random_image(width: int, height: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, channels), dtype=np.uint8)
    return Image.fromarray(pixels[..., 0] if channels == 1 else pixels)


def saved(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A hand-written PNG whose IHDR claims width×height RGB pixels, with a tiny IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    )


def rect_mask(size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    return mask


def values(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(np.int16)


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


# --- sniffing and decoding ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ALLOWED_FORMATS)
def test_sniff_format_names_the_allowed_formats(fmt):
    assert sniff_format(saved(random_image(8, 8), fmt)) == fmt


@pytest.mark.parametrize(
    "data",
    [b"", b"\x89PNG", b"RIFF\x00\x00\x00\x00WAVE", b"GIF89a", b"BM", b"II*\x00", b"<svg/>", b"hello"],
)
def test_sniff_format_returns_none_for_anything_else(data):
    assert sniff_format(data) is None


@pytest.mark.parametrize(("fmt", "mode"), [("PNG", "RGB"), ("PNG", "RGBA"), ("JPEG", "RGB"), ("WEBP", "RGB")])
def test_allowed_formats_decode_to_loaded_rgb_or_rgba(fmt, mode):
    original = random_image(24, 16, mode)
    image = decode_image(saved(original, fmt, **({"lossless": True} if fmt == "WEBP" else {})))
    assert (image.size, image.mode) == ((24, 16), mode)
    if fmt != "JPEG":
        assert np.array_equal(np.asarray(image), np.asarray(original))


def test_webp_with_alpha_keeps_it():
    original = random_image(10, 10, "RGBA")
    image = decode_image(saved(original, "WEBP", lossless=True))
    assert image.mode == "RGBA"
    assert np.array_equal(np.asarray(image.getchannel("A")), np.asarray(original.getchannel("A")))


@pytest.mark.parametrize(
    "data",
    [
        saved(random_image(8, 8), "GIF"),
        saved(random_image(8, 8), "BMP"),
        saved(random_image(8, 8), "TIFF"),
        saved(random_image(8, 8), "ICO"),
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
        b"just some text, not an image",
        b"\x00" * 64,
    ],
    ids=["gif", "bmp", "tiff", "ico", "svg", "text", "zeros"],
)
def test_other_formats_are_rejected_before_decoding(data):
    with pytest.raises(ImageInputError, match="only PNG, JPEG or WebP images are accepted"):
        decode_image(data)


def test_empty_bytes_are_rejected():
    with pytest.raises(ImageInputError, match="empty"):
        decode_image(b"")


def test_a_png_signature_in_front_of_another_format_is_not_decoded_as_that_format():
    # The decoder is chosen from the magic bytes: a GIF body behind a PNG signature is a broken PNG.
    with pytest.raises(ImageInputError, match="PNG file could not be read"):
        decode_image(b"\x89PNG\r\n\x1a\n" + saved(random_image(8, 8), "GIF"))


def test_over_max_bytes_is_rejected_with_both_sizes():
    data = saved(random_image(64, 64), "PNG")
    with pytest.raises(ImageInputError, match=r"the limit is .* MB"):
        decode_image(data, max_bytes=len(data) - 1)
    assert decode_image(data, max_bytes=len(data)).size == (64, 64)
    assert MAX_BYTES == 50 * 2**20


def test_a_header_claiming_100000_by_100000_is_rejected_quickly_without_allocating():
    bomb = png_header_only(100_000, 100_000)
    assert len(bomb) < 100
    rss_before = max_rss_mib()
    started = time.perf_counter()
    with pytest.raises(ImageInputError, match="too many pixels"):
        decode_image(bomb)
    assert time.perf_counter() - started < 1.0
    assert max_rss_mib() - rss_before < 100  # decoding it would need 30 GB


def test_a_header_over_our_cap_but_under_pillows_is_rejected_before_loading():
    side = 5000  # 25 Mpx: over MAX_PIXELS (16.8 Mpx), under Pillow's own warning threshold
    assert MAX_PIXELS < side * side < Image.MAX_IMAGE_PIXELS
    started = time.perf_counter()
    with pytest.raises(ImageInputError, match=r"5000×5000 = 25,000,000 pixels; the limit is 16,777,216"):
        decode_image(png_header_only(side, side))
    assert time.perf_counter() - started < 1.0


def test_pillows_bomb_warning_is_an_error_even_with_a_raised_cap():
    side = 10_000  # 100 Mpx: over Image.MAX_IMAGE_PIXELS (89 Mpx), which only warns
    assert Image.MAX_IMAGE_PIXELS < side * side < 2 * Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageInputError, match="too many pixels"):
        decode_image(png_header_only(side, side), max_pixels=side * side)


def test_pixel_cap_applies_to_real_images():
    data = saved(random_image(100, 50), "PNG")
    with pytest.raises(ImageInputError, match="100×50"):
        decode_image(data, max_pixels=100 * 50 - 1)
    assert decode_image(data, max_pixels=100 * 50).size == (100, 50)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_truncated_files_are_rejected(fmt):
    data = saved(random_image(64, 64), fmt)
    with pytest.raises(ImageInputError, match=f"{fmt} file could not be read"):
        decode_image(data[: len(data) // 2])


def test_a_png_with_a_bad_crc_is_rejected():
    data = bytearray(saved(random_image(16, 16), "PNG"))
    data[29] ^= 0xFF  # inside the IHDR CRC
    with pytest.raises(ImageInputError, match="could not be read"):
        decode_image(bytes(data))


def test_exif_rotated_jpeg_comes_out_upright():
    stored = Image.new("RGB", (40, 20), BLUE)
    stored.paste(RED, (0, 0, 20, 20))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    image = decode_image(saved(stored, "JPEG", exif=exif.tobytes(), quality=95))
    assert image.size == (20, 40)
    top, bottom = np.asarray(image)[5, 10], np.asarray(image)[35, 10]
    assert top[0] > 200 and top[2] < 50  # the stored left edge is now the top
    assert bottom[2] > 200 and bottom[0] < 50


def test_palette_png_becomes_rgb_and_with_transparency_rgba():
    palette = random_image(12, 12).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    plain = decode_image(saved(palette, "PNG"))
    assert plain.mode == "RGB"
    assert np.array_equal(np.asarray(plain), np.asarray(palette.convert("RGB")))

    palette.info["transparency"] = 0
    clear = decode_image(saved(palette, "PNG", transparency=0))
    assert clear.mode == "RGBA"
    alpha = np.asarray(clear.getchannel("A"))
    assert set(np.unique(alpha)) <= {0, 255}
    assert np.array_equal(alpha == 0, np.asarray(palette) == 0)


def test_greyscale_modes_are_converted():
    grey = random_image(8, 8, "L")
    image = decode_image(saved(grey, "PNG"))
    assert image.mode == "RGB"
    assert np.array_equal(np.asarray(image)[..., 1], np.asarray(grey))

    la = Image.merge("LA", (grey, Image.new("L", (8, 8), 77)))
    image = decode_image(saved(la, "PNG"))
    assert image.mode == "RGBA"
    assert np.asarray(image)[..., 3].tolist() == [[77] * 8] * 8
    assert np.array_equal(np.asarray(image)[..., 0], np.asarray(grey))

    bilevel = decode_image(saved(Image.new("1", (8, 8), 1), "PNG"))
    assert bilevel.mode == "RGB" and bilevel.getpixel((3, 3)) == (255, 255, 255)


def test_sixteen_bit_greyscale_is_scaled_not_clipped():
    deep = Image.fromarray(np.array([[0, 257 * 100, 65535]], dtype=np.uint16))
    image = decode_image(saved(deep, "PNG"))
    assert image.mode == "RGB"
    assert [image.getpixel((x, 0))[0] for x in range(3)] == [0, 100, 255]


def test_cmyk_jpeg_becomes_rgb():
    image = decode_image(saved(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG", quality=100))
    assert image.mode == "RGB"
    red, green, blue = image.getpixel((4, 4))
    assert red > 230 and green < 30 and blue < 30


def test_encode_png_round_trips():
    original = random_image(9, 7, "RGBA")
    data = encode_png(original)
    assert sniff_format(data) == "PNG"
    assert np.array_equal(np.asarray(decode_image(data)), np.asarray(original))


def test_flatten_blends_alpha_over_the_background():
    image = Image.new("RGBA", (2, 1), (255, 0, 0, 0))
    image.putpixel((1, 0), (255, 0, 0, 255))
    assert list(flatten(image).getdata()) == [(255, 255, 255), (255, 0, 0)]
    half = flatten(Image.new("RGBA", (1, 1), (0, 0, 0, 128)), background=(200, 100, 0))
    assert half.mode == "RGB"
    assert all(abs(a - b) <= 1 for a, b in zip(half.getpixel((0, 0)), (100, 50, 0), strict=True))


def test_flatten_copies_rgb_and_converts_other_modes():
    rgb = random_image(5, 5)
    flat = flatten(rgb)
    assert flat is not rgb and np.array_equal(np.asarray(flat), np.asarray(rgb))
    la = Image.merge("LA", (Image.new("L", (1, 1), 0), Image.new("L", (1, 1), 0)))
    assert flatten(la).getpixel((0, 0)) == (255, 255, 255)
    assert flatten(Image.new("L", (1, 1), 9)).getpixel((0, 0)) == (9, 9, 9)


# --- resizing -----------------------------------------------------------------------------------------

MODES = ("just resize", "crop and resize", "resize and fill")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("source", [(200, 100), (100, 200), (64, 64), (37, 91), (300, 7)])
@pytest.mark.parametrize("target", [(64, 64), (128, 40), (40, 128), (63, 65)])
def test_every_resize_mode_gives_exactly_the_target_size(mode, source, target):
    assert resize_for_mode(random_image(*source), *target, mode).size == target


@pytest.mark.parametrize("image_mode", ["RGB", "RGBA", "L"])
@pytest.mark.parametrize("mode", MODES)
def test_resize_keeps_the_image_mode(image_mode, mode):
    assert resize_for_mode(random_image(30, 20, image_mode), 16, 16, mode).mode == image_mode


def test_just_resize_stretches_with_lanczos():
    image = random_image(50, 30)
    expected = image.resize((64, 64), Image.Resampling.LANCZOS)
    assert np.array_equal(np.asarray(resize_for_mode(image, 64, 64, "just resize")), np.asarray(expected))


def test_crop_and_resize_of_a_wide_image_keeps_the_centre():
    image = Image.new("RGB", (200, 100), GREEN)
    image.paste(RED, (0, 0, 50, 100))
    image.paste(BLUE, (150, 0, 200, 100))
    square = values(resize_for_mode(image, 64, 64, "crop and resize"))
    assert np.abs(square - np.array(GREEN)).max() <= 16  # only Lanczos ringing at the cut
    assert np.abs(square[:, 4:-4] - np.array(GREEN)).max() == 0


def test_crop_and_resize_matches_scaling_then_cropping():
    image = random_image(90, 30)
    scaled = image.resize((192, 64), Image.Resampling.LANCZOS)
    expected = scaled.crop((64, 0, 128, 64))
    assert np.array_equal(np.asarray(resize_for_mode(image, 64, 64, "crop and resize")), np.asarray(expected))


def test_resize_and_fill_centres_the_image_and_stretches_its_edge_rows():
    # Vertical stripes: every column is one colour, so the top and bottom rows are the edge to stretch.
    stripes = np.repeat(np.random.default_rng(1).integers(0, 256, (1, 100, 3), dtype=np.uint8), 50, axis=0)
    image = Image.fromarray(stripes)
    result = values(resize_for_mode(image, 64, 64, "resize and fill"))
    inner = values(image.resize((64, 32), Image.Resampling.LANCZOS))
    assert np.array_equal(result[16:48], inner)
    assert np.array_equal(result[:16], np.broadcast_to(inner[0], (16, 64, 3)))
    assert np.array_equal(result[48:], np.broadcast_to(inner[-1], (16, 64, 3)))


def test_resize_and_fill_stretches_edge_columns_of_a_tall_image():
    stripes = np.repeat(np.random.default_rng(2).integers(0, 256, (100, 1, 3), dtype=np.uint8), 50, axis=1)
    result = values(resize_for_mode(Image.fromarray(stripes), 64, 64, "resize and fill"))
    inner = values(Image.fromarray(stripes).resize((32, 64), Image.Resampling.LANCZOS))
    assert np.array_equal(result[:, 16:48], inner)
    assert np.array_equal(result[:, :16], np.broadcast_to(inner[:, :1], (64, 16, 3)))
    assert np.array_equal(result[:, 48:], np.broadcast_to(inner[:, -1:], (64, 16, 3)))


@pytest.mark.parametrize("target", [(64, 64), (63, 63), (64, 63), (61, 64)])
def test_resize_and_fill_bands_repeat_one_row_close_to_the_edge(target):
    width, height = target
    image = random_image(120, 40, seed=3)
    result = values(resize_for_mode(image, width, height, "resize and fill"))
    src_h = 40 * width // 120
    top = height // 2 - src_h // 2
    bottom = height - top - src_h
    assert top > 0 and bottom > 0
    assert (result[:top] == result[0]).all()
    assert (result[top + src_h :] == result[-1]).all()  # no unfilled row, even with odd sizes
    # A1111 stretches the edge with a bicubic zero-height box: a blend weighted heavily on the edge row.
    assert np.abs(result[0] - result[top]).mean() < np.abs(result[top + 2] - result[top]).mean()


def test_resize_and_fill_at_the_same_aspect_is_a_plain_resize():
    image = random_image(100, 50)
    expected = image.resize((64, 32), Image.Resampling.LANCZOS)
    assert np.array_equal(np.asarray(resize_for_mode(image, 64, 32, "resize and fill")), np.asarray(expected))


def test_resize_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown resize mode"):
        resize_for_mode(random_image(8, 8), 8, 8, "stretch")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        resize_for_mode(random_image(8, 8), 0, 8, "just resize")


# --- masks --------------------------------------------------------------------------------------------


def assert_hard(mask: Image.Image, size: tuple[int, int]) -> None:
    assert mask.mode == "L" and mask.size == size
    assert set(np.unique(np.asarray(mask))) <= {0, 255}


def test_upload_l_mask_thresholds_at_128():
    upload = Image.fromarray(np.array([[0, 127, 128, 255]], dtype=np.uint8))
    mask = mask_from_upload(upload, (4, 1))
    assert_hard(mask, (4, 1))
    assert list(mask.getdata()) == [0, 0, 255, 255]


def test_upload_rgb_mask_uses_luminance():
    upload = Image.new("RGB", (4, 1))
    for x, colour in enumerate([(255, 255, 255), (255, 0, 0), (255, 255, 0), (0, 0, 0)]):
        upload.putpixel((x, 0), colour)
    mask = mask_from_upload(upload, (4, 1))
    assert list(mask.getdata()) == [255, 0, 255, 0]  # red is dark (76), yellow bright (226)


def test_upload_opaque_rgba_mask_uses_luminance():
    upload = Image.new("RGBA", (2, 1), (0, 0, 0, 255))
    upload.putpixel((1, 0), (255, 255, 255, 255))
    assert list(mask_from_upload(upload, (2, 1)).getdata()) == [0, 255]


def test_upload_rgba_mask_with_transparency_is_a_painted_layer():
    upload = Image.new("RGBA", (4, 1), (255, 255, 255, 0))  # white but fully transparent: keep
    upload.putpixel((1, 0), (0, 0, 0, 255))  # black paint: repaint
    upload.putpixel((2, 0), (0, 0, 0, 1))  # the faintest stroke still counts
    mask = mask_from_upload(upload, (4, 1))
    assert_hard(mask, (4, 1))
    assert list(mask.getdata()) == [0, 255, 255, 0]


def test_upload_mask_of_another_size_is_refused_with_both_sizes():
    with pytest.raises(ImageInputError, match=r"the mask is 32×16 but the image is 64×32"):
        mask_from_upload(Image.new("L", (32, 16)), (64, 32))


def test_mask_from_layers_is_the_union_of_painted_pixels():
    first = Image.new("RGBA", (6, 4), (0, 0, 0, 0))
    first.paste((255, 0, 0, 255), (0, 0, 2, 2))
    second = Image.new("RGBA", (6, 4), (0, 0, 0, 0))
    second.paste((0, 0, 0, 30), (4, 2, 6, 4))
    mask = mask_from_layers([first, None, second], (6, 4))
    assert_hard(mask, (6, 4))
    expected = np.zeros((4, 6), dtype=np.uint8)
    expected[0:2, 0:2] = expected[2:4, 4:6] = 255
    assert np.array_equal(np.asarray(mask), expected)


def test_mask_from_layers_without_paint_is_empty():
    assert mask_from_layers([], (5, 5)).getbbox() is None
    assert mask_from_layers([None, Image.new("RGBA", (5, 5))], (5, 5)).getbbox() is None


def test_mask_from_layers_refuses_a_layer_of_another_size():
    with pytest.raises(ImageInputError, match=r"layer 2 is 4×4 but the image is 5×5"):
        mask_from_layers([Image.new("RGBA", (5, 5)), Image.new("RGBA", (4, 4))], (5, 5))


def test_mask_from_layers_reads_an_opaque_layer_by_brightness():
    layer = Image.new("RGB", (3, 1))
    layer.putpixel((2, 0), (255, 255, 255))
    assert list(mask_from_layers([layer], (3, 1)).getdata()) == [0, 0, 255]


def test_invert_mask():
    mask = rect_mask((4, 4), (1, 1, 3, 3))
    inverted = invert_mask(mask)
    assert inverted.mode == "L"
    assert np.array_equal(np.asarray(inverted), 255 - np.asarray(mask))
    assert np.array_equal(np.asarray(invert_mask(inverted)), np.asarray(mask))


def test_require_nonempty():
    with pytest.raises(
        ImageInputError, match="the mask is empty: paint the area to change, or upload a mask"
    ):
        require_nonempty(Image.new("L", (8, 8), 0))
    single = Image.new("L", (8, 8), 0)
    single.putpixel((7, 7), 255)
    require_nonempty(single)


def test_feather_zero_is_the_hard_mask():
    mask = rect_mask((20, 20), (5, 5, 15, 15))
    assert np.array_equal(np.asarray(feather(mask, 0)), np.asarray(mask))


def test_feather_rejects_a_negative_blur():
    with pytest.raises(ValueError, match="0 or more"):
        feather(rect_mask((4, 4), (0, 0, 2, 2)), -1)


@pytest.mark.parametrize("blur", [1, 4, 12])
def test_feather_keeps_zero_outside_and_softens_inside(blur):
    hard = rect_mask((128, 128), (10, 10, 118, 118))
    soft = np.asarray(feather(hard, blur))
    outside = np.asarray(hard) == 0
    assert (soft[outside] == 0).all()
    assert (soft <= np.asarray(hard)).all()
    assert soft[64, 64] == 255  # deep inside stays fully repainted
    band = soft[64, 10 : 10 + blur]
    assert 0 < band.min() and band.max() < 255  # the soft band lies just inside the edge


def test_feather_of_a_mask_touching_the_border_stays_full_at_the_border():
    hard = rect_mask((32, 32), (0, 0, 16, 32))
    soft = np.asarray(feather(hard, 4))
    assert (soft[:, 0] == 255).all() and (soft[:, 16:] == 0).all()


# --- compositing --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_composite_keeps_outside_pixels_byte_identical_for_random_inputs(seed):
    rng = np.random.default_rng(seed)
    width, height = int(rng.integers(1, 80)), int(rng.integers(1, 80))
    mode = ("RGB", "RGBA", "L")[seed % 3]
    original = random_image(width, height, mode, seed=seed)
    generated = random_image(width, height, "RGB", seed=seed + 100)
    hard = Image.fromarray(np.where(rng.random((height, width)) < 0.3, 255, 0).astype(np.uint8))
    soft = feather(hard, int(rng.integers(0, 6)))
    out = composite(original, generated, soft)
    assert out.mode == mode and out.size == original.size
    keep = np.asarray(soft) == 0
    assert np.array_equal(np.asarray(out)[keep], np.asarray(original)[keep])
    full = np.asarray(soft) == 255
    assert np.array_equal(np.asarray(out)[full], np.asarray(generated.convert(mode))[full])


@pytest.mark.parametrize("seed", range(6))
def test_composite_blends_linearly_inside_the_band(seed):
    rng = np.random.default_rng(seed)
    original = random_image(40, 30, seed=seed)
    generated = random_image(40, 30, seed=seed + 50)
    soft = Image.fromarray(rng.integers(0, 256, (30, 40), dtype=np.uint8))
    out = values(composite(original, generated, soft))
    alpha = np.asarray(soft).astype(np.float64)[..., None] / 255
    expected = values(generated) * alpha + values(original) * (1 - alpha)
    assert np.abs(out - expected).max() <= 1


def test_composite_keeps_an_rgba_originals_alpha_exactly():
    original = random_image(16, 16, "RGBA", seed=4)
    generated = random_image(16, 16, "RGBA", seed=5)
    out = composite(original, generated, rect_mask((16, 16), (0, 0, 16, 8)))
    assert out.mode == "RGBA"
    assert np.array_equal(np.asarray(out)[..., 3], np.asarray(original)[..., 3])
    assert np.array_equal(np.asarray(out)[:8, :, :3], np.asarray(generated)[:8, :, :3])
    assert np.array_equal(np.asarray(out)[8:], np.asarray(original)[8:])


def test_composite_refuses_mismatched_sizes():
    with pytest.raises(ValueError, match="one size"):
        composite(random_image(8, 8), random_image(8, 9), Image.new("L", (8, 8)))
    with pytest.raises(ValueError, match="one size"):
        composite(random_image(8, 8), random_image(8, 8), Image.new("L", (9, 8)))


# --- crop box for "only masked" -----------------------------------------------------------------------


def test_crop_box_is_the_bounding_box_plus_padding():
    mask = rect_mask((100, 80), (30, 20, 50, 40))
    assert mask_crop_box(mask, 0) == (30, 20, 50, 40)
    assert mask_crop_box(mask, 8) == (22, 12, 58, 48)


def test_crop_box_padding_is_clamped_to_the_image():
    mask = rect_mask((100, 80), (2, 70, 10, 80))
    assert mask_crop_box(mask, 16) == (0, 54, 26, 80)


def test_crop_box_grows_around_the_centre_to_the_target_aspect():
    mask = rect_mask((200, 200), (90, 80, 110, 120))  # 20×40
    assert mask_crop_box(mask, 0, target_aspect=1.0) == (80, 80, 120, 120)
    assert mask_crop_box(mask, 0, target_aspect=2.0) == (60, 80, 140, 120)
    assert mask_crop_box(mask, 0, target_aspect=0.25) == (90, 60, 110, 140)


def test_crop_box_is_shifted_back_inside_the_image():
    mask = rect_mask((200, 100), (0, 10, 20, 50))  # 20×40 at the left edge
    assert mask_crop_box(mask, 0, target_aspect=1.0) == (0, 10, 40, 50)
    mask = rect_mask((200, 100), (180, 60, 200, 100))  # bottom-right corner
    assert mask_crop_box(mask, 0, target_aspect=1.5) == (140, 60, 200, 100)


def test_crop_box_is_clipped_where_the_image_is_too_small_for_the_aspect():
    mask = rect_mask((100, 50), (10, 10, 90, 40))  # 80×30 wanting 1:1 needs 80 rows; only 50 exist
    assert mask_crop_box(mask, 0, target_aspect=1.0) == (10, 0, 90, 50)


@pytest.mark.parametrize("seed", range(20))
def test_crop_box_always_contains_the_padded_mask_and_fits_the_image(seed):
    rng = np.random.default_rng(seed)
    width, height = int(rng.integers(16, 300)), int(rng.integers(16, 300))
    x0, y0 = int(rng.integers(0, width - 1)), int(rng.integers(0, height - 1))
    x1, y1 = int(rng.integers(x0 + 1, width + 1)), int(rng.integers(y0 + 1, height + 1))
    padding = int(rng.integers(0, 40))
    aspect = float(rng.choice([0.5, 2 / 3, 1.0, 1.5, 16 / 9]))
    left, top, right, bottom = mask_crop_box(rect_mask((width, height), (x0, y0, x1, y1)), padding, aspect)
    assert 0 <= left <= max(x0 - padding, 0) and min(x1 + padding, width) <= right <= width
    assert 0 <= top <= max(y0 - padding, 0) and min(y1 + padding, height) <= bottom <= height
    box_w, box_h = right - left, bottom - top
    if box_w < width and box_h < height:  # not clipped by the image: the aspect is met to the pixel
        assert abs(box_w - box_h * aspect) <= 1 or abs(box_h - box_w / aspect) <= 1


def test_crop_box_rejects_bad_arguments():
    mask = rect_mask((10, 10), (2, 2, 4, 4))
    with pytest.raises(ImageInputError, match="empty"):
        mask_crop_box(Image.new("L", (10, 10)), 4)
    with pytest.raises(ValueError, match="padding"):
        mask_crop_box(mask, -1)
    for aspect in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="aspect"):
            mask_crop_box(mask, 0, aspect)


# --- masked content "fill" ----------------------------------------------------------------------------


def test_fill_takes_the_surrounding_colours_and_keeps_the_rest():
    image = Image.new("RGB", (96, 64), RED)
    image.paste(BLUE, (48, 0, 96, 64))
    image.paste((255, 255, 255), (16, 24, 32, 40))  # a white blot inside the red half
    mask = rect_mask((96, 64), (12, 20, 36, 44))
    filled = fill_masked_area(image, mask)
    assert filled.mode == "RGB"
    inside = np.asarray(mask) == 255
    assert np.array_equal(np.asarray(filled)[~inside], np.asarray(image)[~inside])
    red, green, blue = values(filled)[inside].mean(axis=0)
    assert red > 200 and green < 30 and blue < 60  # smeared in from the red surroundings


def test_fill_keeps_an_rgba_images_alpha_and_a_soft_mask_is_treated_as_painted():
    image = random_image(32, 32, "RGBA", seed=8)
    mask = rect_mask((32, 32), (8, 8, 24, 24)).point(lambda v: v // 2)  # 127 inside: still masked
    filled = fill_masked_area(image, mask)
    assert filled.mode == "RGBA"
    assert np.array_equal(np.asarray(filled)[..., 3], np.asarray(image)[..., 3])
    assert not np.array_equal(np.asarray(filled)[8:24, 8:24, :3], np.asarray(image)[8:24, 8:24, :3])
    assert np.array_equal(np.asarray(filled)[:8], np.asarray(image)[:8])


def test_fill_of_a_fully_masked_image_is_mid_grey():
    filled = fill_masked_area(random_image(8, 8), Image.new("L", (8, 8), 255))
    assert set(filled.getdata()) == {(128, 128, 128)}


def test_fill_refuses_a_mask_of_another_size():
    with pytest.raises(ImageInputError, match="8×8 but the image is 9×8"):
        fill_masked_area(random_image(9, 8), Image.new("L", (8, 8)))


# --- outpainting --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fill", ["edge stretch", "noise"])
@pytest.mark.parametrize("amounts", [(8, 0, 0, 0), (0, 16, 0, 0), (0, 0, 24, 0), (0, 0, 0, 8), (3, 5, 7, 11)])
def test_extend_canvas_places_the_original_and_masks_exactly_the_new_area(fill, amounts):
    left, right, top, bottom = amounts
    image = random_image(20, 12, seed=6)
    canvas, mask = extend_canvas(image, left=left, right=right, top=top, bottom=bottom, fill=fill, seed=1)
    assert canvas.size == mask.size == (20 + left + right, 12 + top + bottom)
    assert canvas.mode == "RGB" and mask.mode == "L"
    pixels = np.asarray(canvas)
    assert np.array_equal(pixels[top : top + 12, left : left + 20], np.asarray(image))
    expected = np.full((12 + top + bottom, 20 + left + right), 255, dtype=np.uint8)
    expected[top : top + 12, left : left + 20] = 0
    assert np.array_equal(np.asarray(mask), expected)


def test_edge_stretch_repeats_the_edge_pixels_outward():
    image = random_image(10, 6, seed=7)
    source = np.asarray(image)
    canvas, _ = extend_canvas(image, left=4, right=3, top=2, bottom=5)
    pixels = np.asarray(canvas)
    assert np.array_equal(pixels[2:8, :4], np.repeat(source[:, :1], 4, axis=1))  # left band: first column
    assert np.array_equal(pixels[2:8, 14:], np.repeat(source[:, -1:], 3, axis=1))  # right band
    assert np.array_equal(pixels[:2, 4:14], np.repeat(source[:1], 2, axis=0))  # top band: first row
    assert np.array_equal(pixels[8:, 4:14], np.repeat(source[-1:], 5, axis=0))  # bottom band
    assert (pixels[:2, :4] == source[0, 0]).all() and (pixels[8:, 14:] == source[-1, -1]).all()  # corners


def test_noise_fill_is_seeded():
    image = random_image(8, 8)
    first, _ = extend_canvas(image, right=32, fill="noise", seed=5)
    again, _ = extend_canvas(image, right=32, fill="noise", seed=5)
    other, _ = extend_canvas(image, right=32, fill="noise", seed=6)
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert not np.array_equal(np.asarray(first), np.asarray(other))
    assert np.asarray(first)[:, 8:].std() > 50  # actually noisy


@pytest.mark.parametrize("mode", ["RGBA", "L"])
def test_extend_canvas_keeps_the_mode_and_new_rgba_pixels_are_opaque(mode):
    image = random_image(6, 6, mode)
    for fill in ("edge stretch", "noise"):
        canvas, _ = extend_canvas(image, top=4, fill=fill)
        assert canvas.mode == mode
        assert np.array_equal(np.asarray(canvas)[4:], np.asarray(image))
    if mode == "RGBA":
        noisy, _ = extend_canvas(image, top=4, fill="noise")
        assert (np.asarray(noisy)[:4, :, 3] == 255).all()


def test_extend_canvas_rejects_bad_amounts():
    image = random_image(8, 8)
    with pytest.raises(ValueError, match="nothing to extend"):
        extend_canvas(image)
    with pytest.raises(ValueError, match="left=-1"):
        extend_canvas(image, left=-1, right=8)
    with pytest.raises(ValueError, match="unknown outpaint fill"):
        extend_canvas(image, left=8, fill="mirror")  # type: ignore[arg-type]
    with pytest.raises(ImageInputError, match="extend by less"):
        extend_canvas(image, right=5000, bottom=5000)


def test_extension_for_aspect_examples():
    assert extension_for_aspect((512, 512), 1.0) == (0, 0, 0, 0)
    assert extension_for_aspect((512, 512), 2.0) == (256, 256, 0, 0)
    assert extension_for_aspect((512, 512), 0.5) == (0, 0, 256, 256)
    assert extension_for_aspect((512, 300), 1.0) == (0, 0, 106, 106)
    assert extension_for_aspect((768, 512), 16 / 9) == (72, 72, 0, 0)  # 912×512, the closest multiple of 8


@pytest.mark.parametrize("seed", range(25))
def test_extension_for_aspect_only_grows_to_multiples_of_8_close_to_the_aspect(seed):
    rng = np.random.default_rng(seed)
    width, height = int(rng.integers(16, 1500)), int(rng.integers(16, 1500))
    aspect = float(rng.uniform(0.3, 3.0))
    left, right, top, bottom = extension_for_aspect((width, height), aspect)
    assert min(left, right, top, bottom) >= 0
    assert right - left in (0, 1) and bottom - top in (0, 1)
    new_w, new_h = width + left + right, height + top + bottom
    assert new_w % 8 == 0 and new_h % 8 == 0
    # the aspect is matched within what one multiple of 8 allows on the grown axis
    assert abs(new_w - new_h * aspect) <= 4 + 8 * aspect or abs(new_h - new_w / aspect) <= 4 + 8 / aspect
    # and the canvas grew no more than needed: one axis is the original rounded up to a multiple of 8
    assert new_w == -(-width // 8) * 8 or new_h == -(-height // 8) * 8


def test_extension_for_aspect_feeds_extend_canvas():
    image = random_image(100, 60)
    left, right, top, bottom = extension_for_aspect(image.size, 1.0)
    canvas, mask = extend_canvas(image, left=left, right=right, top=top, bottom=bottom)
    assert canvas.width == canvas.height and canvas.width % 8 == 0
    require_nonempty(mask)


def test_extension_for_aspect_rejects_bad_input():
    for aspect in (0.0, -2.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="aspect"):
            extension_for_aspect((64, 64), aspect)
    with pytest.raises(ValueError, match="positive"):
        extension_for_aspect((0, 64), 1.0)
