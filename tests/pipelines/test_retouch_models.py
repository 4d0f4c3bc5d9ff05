"""Retouch operations backed by model files: upscalers and face restorers with tiny random-weight models of real
architectures (built with spandrel's own classes), loaded through the same path as users' files; weights-only
loading of .pth files; spandrel importable without torchvision."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from pipelines.retouch import MissingWeights, RetouchError
from pipelines.retouch.faces import list_face_restorers, restore_faces
from pipelines.retouch.spandrel_compat import import_spandrel
from pipelines.retouch.upscale import UpscalerCache, list_upscalers, run_tiled, upscale
from pipelines.retouch.weights import load_image_model, load_state_dict

ROOT = Path(__file__).resolve().parents[2]


class CanaryPayload:
    """Unpickling this creates the canary file: the proof that a pickle was (not) loaded."""

    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self):
        return (open, (str(self.canary), "w"))


def tiny_esrgan(scale: int, seed: int = 0) -> dict[str, torch.Tensor]:
    spandrel = import_spandrel()
    assert spandrel.ModelLoader  # imported through the compat layer
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(seed)
    model = ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=scale)
    return {k: v.contiguous() for k, v in model.state_dict().items()}


def tiny_restoreformer(seed: int = 0) -> dict[str, torch.Tensor]:
    import_spandrel()
    from spandrel.architectures.RestoreFormer import RestoreFormer

    torch.manual_seed(seed)
    model = RestoreFormer(
        n_embed=16,
        embed_dim=8,
        ch=32,
        ch_mult=(1, 1, 1),
        num_res_blocks=1,
        z_channels=8,
        head_size=2,
        enable_mid=False,
    )
    return {k: v.contiguous() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("retouch-models")
    x2 = tiny_esrgan(2)
    (root / "upscalers").mkdir()
    save_file(x2, str(root / "upscalers" / "tiny-x2.safetensors"))
    (root / "ESRGAN").mkdir()  # A1111's folder, a .pth read weights-only: the same weights as tiny-x2
    torch.save(x2, root / "ESRGAN" / "tiny-x2-pth.pth")
    (root / "RealESRGAN").mkdir()
    save_file(tiny_esrgan(4, seed=1), str(root / "RealESRGAN" / "Tiny-x4.safetensors"))
    (root / "upscalers" / "readme.txt").write_text("not a model")
    face = tiny_restoreformer()
    (root / "face_restore").mkdir()
    save_file(face, str(root / "face_restore" / "tiny-restoreformer.safetensors"))
    (root / "GFPGAN").mkdir()  # A1111's folder also holds facexlib's helpers: not restorers
    save_file({"w": torch.zeros(1)}, str(root / "GFPGAN" / "detection_Resnet50_Final.safetensors"))
    return root


def picture(width: int = 40, height: int = 28, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 / width, yy * 255 / height, (xx + yy) * 127 / (width + height)], axis=2)
    return Image.fromarray(np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8))


def rgba_picture(width: int = 40, height: int = 28) -> Image.Image:
    image = picture(width, height).convert("RGBA")
    alpha = np.zeros((height, width), np.uint8)
    alpha[4:-4, 6:-6] = 255
    image.putalpha(Image.fromarray(alpha, "L"))
    return image


# --- upscale: builtin -------------------------------------------------------------------------------------------


def test_list_upscalers(models_dir: Path, tmp_path: Path) -> None:
    assert list_upscalers(tmp_path) == ["Lanczos", "Nearest"]
    assert list_upscalers(models_dir) == ["Lanczos", "Nearest", "tiny-x2", "tiny-x2-pth", "Tiny-x4"]


@pytest.mark.parametrize("upscaler", ["Lanczos", "Nearest"])
def test_builtin_sizes(upscaler: str, tmp_path: Path) -> None:
    image = picture(40, 28)
    assert upscale(image, upscaler=upscaler, models_dir=tmp_path).size == (80, 56)
    assert upscale(image, upscaler=upscaler, scale=4, models_dir=tmp_path).size == (160, 112)
    assert upscale(image, upscaler=upscaler, scale=1.5, models_dir=tmp_path).size == (60, 42)
    assert upscale(image, upscaler=upscaler, scale=4, target=(101, 33), models_dir=tmp_path).size == (101, 33)


def test_nearest_repeats_pixels_and_lanczos_matches_pil(tmp_path: Path) -> None:
    image = picture(20, 10)
    nearest = np.asarray(upscale(image, upscaler="Nearest", models_dir=tmp_path))
    assert np.array_equal(nearest, np.asarray(image).repeat(2, axis=0).repeat(2, axis=1))
    lanczos = upscale(image, models_dir=tmp_path)
    assert lanczos.tobytes() == image.resize((40, 20), Image.Resampling.LANCZOS).tobytes()


@pytest.mark.parametrize("upscaler", ["Lanczos", "tiny-x2"])
def test_alpha_is_upscaled_separately_with_lanczos(models_dir: Path, upscaler: str) -> None:
    image = rgba_picture()
    out = upscale(image, upscaler=upscaler, scale=2, models_dir=models_dir)
    assert out.mode == "RGBA" and out.size == (80, 56)
    expected = image.getchannel("A").resize((80, 56), Image.Resampling.LANCZOS)
    assert out.getchannel("A").tobytes() == expected.tobytes()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scale": 0}, "scale"),
        ({"scale": -2}, "scale"),
        ({"scale": float("nan")}, "scale"),
        ({"scale": 17}, "scale"),
        ({"target": (0, 10)}, "target"),
        ({"target": (10.5, 10)}, "target"),
        ({"target": (10,)}, "target"),
        ({"target": (9000, 9000)}, "limit"),
        ({"upscaler": "4x-Missing"}, "unknown upscaler.*Lanczos, Nearest"),
        ({"tile_size": 8}, "tile_size"),
    ],
)
def test_bad_upscale_requests(models_dir: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(RetouchError, match=match):
        upscale(picture(), models_dir=models_dir, **kwargs)


# --- upscale: models --------------------------------------------------------------------------------------------


def test_model_upscaler_sizes_and_determinism(models_dir: Path) -> None:
    image = picture(40, 28)
    x2 = upscale(image, upscaler="tiny-x2", scale=2, models_dir=models_dir)
    assert x2.mode == "RGB" and x2.size == (80, 56)
    assert upscale(image, upscaler="tiny-x2", scale=2, models_dir=models_dir).tobytes() == x2.tobytes()
    # not just a resize: the model's output differs from Lanczos
    lanczos = np.asarray(upscale(image, scale=2, models_dir=models_dir), np.float32)
    assert np.abs(np.asarray(x2, np.float32) - lanczos).mean() > 1.0
    # ×4 with a ×2 model (two passes), a target size, ×4 with a ×4 model
    assert upscale(image, upscaler="tiny-x2", scale=4, models_dir=models_dir).size == (160, 112)
    assert upscale(image, upscaler="tiny-x2", target=(99, 50), models_dir=models_dir).size == (99, 50)
    assert upscale(image, upscaler="Tiny-x4", scale=4, models_dir=models_dir).size == (160, 112)
    assert upscale(image, upscaler="Tiny-x4", scale=2, models_dir=models_dir).size == (80, 56)


def test_pth_loads_weights_only_and_matches_the_safetensors(models_dir: Path) -> None:
    image = picture()
    from_pth = upscale(image, upscaler="tiny-x2-pth", models_dir=models_dir)
    from_safetensors = upscale(image, upscaler="tiny-x2", models_dir=models_dir)
    assert from_pth.tobytes() == from_safetensors.tobytes()


@pytest.mark.parametrize("suffix", [".pth", ".pt"])
def test_pickle_payload_is_refused_and_never_runs(tmp_path: Path, suffix: str) -> None:
    canary = tmp_path / "canary"
    folder = tmp_path / "models" / "upscalers"
    folder.mkdir(parents=True)
    state = {"model.0.weight": torch.zeros(1), "payload": CanaryPayload(canary)}
    torch.save(state, folder / f"evil{suffix}")  # a real torch zip file carrying a pickled callable
    # The payload works: unpickling a copy of it does create a file.
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(CanaryPayload(proof)))
    assert proof.exists()

    assert "evil" in list_upscalers(tmp_path / "models")
    with pytest.raises(RetouchError, match=rf"refused to load evil\{suffix}.*weights-only"):
        upscale(picture(), upscaler="evil", models_dir=tmp_path / "models")
    with pytest.raises(RetouchError, match="refused"):
        load_state_dict(folder / f"evil{suffix}")
    assert not canary.exists()


def test_unusable_model_files_are_clear_errors(tmp_path: Path) -> None:
    folder = tmp_path / "upscalers"
    folder.mkdir()
    save_file({"some.weight": torch.zeros(3, 3)}, str(folder / "mystery.safetensors"))
    (folder / "broken.safetensors").write_bytes(b"\x00" * 40)
    torch.save([1, 2, 3], folder / "alist.pth")
    with pytest.raises(RetouchError, match="unknown model architecture"):
        upscale(picture(), upscaler="mystery", models_dir=tmp_path)
    with pytest.raises(RetouchError, match="not a valid .safetensors"):
        upscale(picture(), upscaler="broken", models_dir=tmp_path)
    with pytest.raises(RetouchError, match="not a state dict"):
        upscale(picture(), upscaler="alist", models_dir=tmp_path)


def test_a_face_model_is_not_an_upscaler(tmp_path: Path) -> None:
    (tmp_path / "upscalers").mkdir()
    save_file(tiny_restoreformer(), str(tmp_path / "upscalers" / "face.safetensors"))
    with pytest.raises(RetouchError, match="face restoration model.*face_restore"):
        upscale(picture(), upscaler="face", models_dir=tmp_path)


def test_tiles_blend_without_seams(models_dir: Path) -> None:
    model = load_image_model(models_dir / "upscalers" / "tiny-x2.safetensors")
    pixels = np.asarray(picture(70, 50))
    whole = run_tiled(model, pixels, tile_size=256)
    tiled = run_tiled(model, pixels, tile_size=24)  # 4×3 tiles overlapping by 6 px
    assert whole.shape == tiled.shape == (100, 140, 3)
    assert np.abs(whole - tiled).mean() < 0.5
    # the upscale path with small tiles gives the right size too
    image = Image.fromarray(pixels[:30, :40])
    assert upscale(image, upscaler="tiny-x2", scale=1.5, tile_size=24, models_dir=models_dir).size == (60, 45)


def test_tile_progress_counts_every_pass_and_a_raise_cancels(models_dir: Path) -> None:
    image = picture(40, 30)
    calls: list[tuple[int, int]] = []
    out = upscale(
        image,
        upscaler="tiny-x2",
        scale=4,
        tile_size=24,
        models_dir=models_dir,
        on_tile=lambda d, t: calls.append((d, t)),
    )
    assert out.size == (160, 120)
    total = calls[-1][1]
    assert calls == [(i, total) for i in range(1, total + 1)]  # both passes, one count
    assert total == 2 * 2 + 5 * 3  # 40×30 in 24 px tiles at a stride of 18, then 80×60

    class Cancelled(Exception):
        pass

    def cancel(done: int, total: int) -> None:
        if done == 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        upscale(image, upscaler="tiny-x2", scale=2, tile_size=24, models_dir=models_dir, on_tile=cancel)


def test_upscaler_cache_keeps_the_last_model(models_dir: Path) -> None:
    cache = UpscalerCache()
    image = picture()
    first = upscale(image, upscaler="tiny-x2", models_dir=models_dir, cache=cache)
    path = models_dir / "upscalers" / "tiny-x2.safetensors"
    model = cache.get(path)
    assert len(cache) == 1 and cache.get(path) is model
    assert upscale(image, upscaler="tiny-x2", models_dir=models_dir, cache=cache).tobytes() == first.tobytes()
    assert cache.get(path) is model  # not reloaded
    upscale(image, upscaler="Tiny-x4", models_dir=models_dir, cache=cache)
    assert len(cache) == 1 and cache.get(path) is not model  # evicted by the other model, then reloaded
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(ValueError):
        UpscalerCache(max_models=0)


# --- faces ------------------------------------------------------------------------------------------------------


def test_missing_face_weights_say_what_to_download_and_where(tmp_path: Path) -> None:
    assert list_face_restorers(tmp_path) == []
    with pytest.raises(MissingWeights) as error:
        restore_faces(picture(), models_dir=tmp_path)
    message = str(error.value)
    assert "GFPGANv1.4.safetensors (or .pth) into models/face_restore/" in message
    assert str(tmp_path) not in message  # where the server keeps its files is not the user's business
    with pytest.raises(MissingWeights, match=r"CodeFormer\.safetensors \(or \.pth\) into .*face_restore"):
        restore_faces(picture(), model="CodeFormer", models_dir=tmp_path)


def test_list_face_restorers_skips_detection_helpers(models_dir: Path) -> None:
    assert list_face_restorers(models_dir) == ["tiny-restoreformer"]


def test_restore_faces_with_a_tiny_restoreformer(models_dir: Path) -> None:
    image = picture(96, 64, seed=3).convert("RGBA")
    alpha = Image.fromarray(np.tile(np.linspace(0, 255, 96).astype(np.uint8), (64, 1)), "L")
    image.putalpha(alpha)
    out = restore_faces(image, models_dir=models_dir)  # the only restorer, by default
    assert out.mode == "RGBA" and out.size == image.size
    assert out.getchannel("A").tobytes() == alpha.tobytes()  # alpha kept as it was
    before, after = np.asarray(image.convert("RGB"), np.int16), np.asarray(out.convert("RGB"), np.int16)
    # the centred 64×64 square changed; the strips beside it did not
    assert np.array_equal(before[:, :16], after[:, :16]) and np.array_equal(before[:, 80:], after[:, 80:])
    assert np.abs(before[8:56, 24:72] - after[8:56, 24:72]).mean() > 1.0
    # visibility blends linearly between the original and the full restoration (which a second run, by name,
    # reproduces: the restoration is deterministic)
    assert restore_faces(image, visibility=0.0, models_dir=models_dir).tobytes() == image.tobytes()
    half = restore_faces(image, model="tiny-restoreformer", visibility=0.5, models_dir=models_dir)
    assert np.abs(np.asarray(half.convert("RGB"), np.int16) - (before + after) / 2).max() <= 1.0


def test_bad_visibility_is_an_error(models_dir: Path) -> None:
    for bad in (-0.1, 1.1, float("nan"), True, "1"):
        with pytest.raises(RetouchError, match="visibility"):
            restore_faces(picture(), visibility=bad, models_dir=models_dir)


@pytest.mark.skipif(
    not (os.environ.get("EASEL_SLOW_TESTS") == "1" or torch.cuda.is_available()),
    reason="a full-size GFPGAN (87 M parameters, fixed sizes) takes ~20 s at 512 px on CPU; EASEL_SLOW_TESTS=1 runs it",
)
def test_restore_faces_with_a_full_size_gfpgan(tmp_path: Path) -> None:
    """GFPGAN's sizes are fixed in spandrel (no tiny variant loads), so this one is slow: random weights, the
    real file path, the [-1, 1] normalisation and the fixed-noise (deterministic) call."""
    import_spandrel()
    from spandrel.architectures.GFPGAN import GFPGAN

    torch.manual_seed(0)
    gfpgan = GFPGAN(
        out_size=512,
        num_style_feat=512,
        channel_multiplier=2,
        decoder_load_path=None,
        fix_decoder=False,
        num_mlp=8,
        input_is_latent=True,
        different_w=True,
        narrow=1,
        sft_half=True,
    )
    (tmp_path / "GFPGAN").mkdir()
    torch.save(
        {"params_ema": gfpgan.state_dict()}, tmp_path / "GFPGAN" / "GFPGANv1.4.pth"
    )  # the release layout
    device = "cuda" if torch.cuda.is_available() else "cpu"
    image = picture(80, 64, seed=5)
    out = restore_faces(image, models_dir=tmp_path, device=device)
    assert out.size == image.size and out.mode == "RGB"
    before, after = np.asarray(image, np.int16), np.asarray(out, np.int16)
    assert np.array_equal(before[:, :8], after[:, :8]) and np.array_equal(before[:, 72:], after[:, 72:])
    assert np.abs(before[8:56, 16:64] - after[8:56, 16:64]).mean() > 1.0
    assert restore_faces(image, models_dir=tmp_path, device=device).tobytes() == out.tobytes()


def test_an_upscaler_is_not_a_face_restorer(tmp_path: Path) -> None:
    (tmp_path / "face_restore").mkdir()
    save_file(tiny_esrgan(2), str(tmp_path / "face_restore" / "esrgan.safetensors"))
    with pytest.raises(RetouchError, match="not a face restoration model"):
        restore_faces(picture(), models_dir=tmp_path)


# --- spandrel without torchvision ---------------------------------------------------------------------------------

_PROBE = r"""
import json, sys
import pipelines.retouch.upscale, pipelines.retouch.faces, pipelines.retouch.weights
report = {"spandrel_at_import": "spandrel" in sys.modules}
try:
    import torchvision.transforms.functional  # noqa: F401
    report["torchvision"] = True
except Exception:
    report["torchvision"] = False
from pipelines.retouch.spandrel_compat import import_spandrel
spandrel = import_spandrel()
report["version"] = spandrel.__version__
report["torchvision_left_behind"] = [m for m in sys.modules if m.startswith("torchvision")]
import torch
from spandrel.architectures.RestoreFormer import tv_normalize
x = torch.full((1, 3, 2, 2), 0.75)
report["normalize"] = tv_normalize(x, [0.5] * 3, [0.5] * 3)[0, :, 0, 0].tolist()
report["input_untouched"] = float(x[0, 0, 0, 0])
from spandrel.architectures.LaMa.__arch import LaMa
try:
    LaMa.rotate(x, 90)
except RuntimeError as exc:
    report["lama"] = str(exc)
print(json.dumps(report))
"""


def test_spandrel_imports_without_torchvision_and_leaves_no_trace() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["spandrel_at_import"] is False  # nothing loads spandrel when our modules are imported
    assert report["version"] == "0.4.2"
    assert report["normalize"] == [0.5, 0.5, 0.5] and report["input_untouched"] == 0.75
    if not report["torchvision"]:
        assert report["torchvision_left_behind"] == []  # the stand-in is gone once spandrel is imported
        assert "needs torchvision" in report["lama"]
