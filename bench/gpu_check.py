"""GPU check: the paths that only a GPU exercises (fp16 weights, CUDA kernels), and what the iteration and
retouch tools cost at full size.

Part 1, tiny models in fp16 on the GPU, through the Studio (queue → backend → manager → gallery): each check
prints ``ok`` or ``FAIL`` with what it saw — a seed gives the same pixels twice; variation strength 0 / 1 give
the base / variation seed's pixels; weighted and long prompts (SD 1.x and SDXL, pooled embeddings); a LoRA
changes the picture and leaves the cached model clean; hires fix (latent and Lanczos) sizes; an ESRGAN
upscale on the GPU agrees with the CPU; SD upscale; replace background keeps the subject byte-identical; an
X/Y/Z plot.

Part 2 (``--full``), an SD 1.5-size model with random weights (the real architecture and sizes, so the
timings are the real ones; the pictures are noise), 512², 20 steps: the median time of a plain job and of the
same job with a weighted long prompt, a LoRA, previews every step, a batch of 4 (per image), hires fix ×2
and SD upscale ×2; each as a ratio to the plain job, measured interleaved in one run, with the peak GPU
memory of each. Then a full-size ESRGAN ×4 (23 RRDB blocks) on a 512² picture.

    python -m bench.gpu_check [--full] [--rounds 3]
    python -m bench.gpu_check --device cpu --full --size 64 --steps 2 --rounds 1   # dry run of the script

Exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench.threads import off_main

os.environ.setdefault("HF_HUB_OFFLINE", "1")

LONG_PROMPT = (
    "a (flat vector:1.3) logo of a red fox, ((minimal)), [gradient], clean geometric shapes, bold outline, "
    "centered composition, white background, brand identity, high contrast, crisp edges, professional "
    "design, simple palette of orange and charcoal, negative space, golden ratio, award winning, dribbble, "
    "behance BREAK studio lighting, soft shadow, sharp focus, 8k, highly detailed, product mockup on paper"
)


class Checks:
    def __init__(self) -> None:
        self.failed: list[str] = []

    def run(self, name: str, fn: Callable[[], str]) -> None:
        try:
            detail = fn()
        except Exception as exc:  # noqa: BLE001 - a check reports, the run goes on
            self.failed.append(name)
            print(f"FAIL  {name}: {type(exc).__name__}: {exc}")
            traceback.print_exc(limit=6, file=sys.stdout)
            return
        print(f"ok    {name}: {detail}")


def pixels(studio, job):  # noqa: ANN001
    import numpy as np
    from PIL import Image

    from studio import JobState

    if job.state is not JobState.DONE:
        raise AssertionError(f"job ended {job.state.value}: {job.error}")
    out = []
    for saved in job.images:
        with Image.open(studio.gallery.file_path(saved.id)) as picture:
            out.append(np.asarray(picture.convert("RGBA")))
    return out


def submit(studio, request, timeout: float = 600):  # noqa: ANN001
    job = studio.jobs.submit(request, "bench")
    if not job.wait(timeout):
        raise AssertionError("job did not finish in time")
    return job


def part1(root: Path, checks: Checks, device_name: str) -> None:  # noqa: PLR0915 - one list of checks
    import numpy as np
    import torch
    from PIL import Image, ImageDraw
    from safetensors.torch import save_file

    from app import build_studio
    from core.images import encode_png
    from core.requests import Img2ImgRequest, InpaintRequest, Txt2ImgRequest
    from core.retouch import RetouchRequest
    from core.settings import Settings
    from core.xyz import Axis, PlotRequest
    from pipelines.retouch.spandrel_compat import import_spandrel
    from pipelines.retouch.upscale import upscale
    from pipelines.tiny import build_tiny_components, save_tiny, save_tiny_lora

    models = root / "models"
    save_tiny(models / "tiny-sd1.safetensors", arch="sd1")
    save_tiny(models / "tiny-sd1-inpainting.safetensors", arch="sd1", inpaint=True)
    save_tiny(models / "tiny-sdxl.safetensors", arch="sdxl")
    save_tiny_lora(models / "Lora" / "fox.safetensors", build_tiny_components("sd1"), text_encoder=True)
    save_tiny_lora(models / "Lora" / "foxxl.safetensors", build_tiny_components("sdxl"), text_encoder=True)
    import_spandrel()
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(0)
    esrgan = ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=2)
    (models / "upscalers").mkdir(parents=True)
    save_file(
        {k: v.contiguous() for k, v in esrgan.state_dict().items()},
        str(models / "upscalers" / "tiny-esrgan-x2.safetensors"),
    )

    studio = build_studio(
        Settings(
            models_dir=models,
            outputs_dir=root / "outputs",
            device=device_name,
            preview_every=2,
            default_model="tiny-sd1",
        )
    )
    studio.start()
    device = studio.backend.manager.device
    print(f"device: {device.name}, dtype {device.dtype}")
    fast = {"steps": 8, "width": 128, "height": 128, "sampler": "Euler a"}

    def image(model: str = "tiny-sd1", **fields):  # noqa: ANN003
        return pixels(studio, submit(studio, Txt2ImgRequest(model=model, **{**fast, **fields})))[0]

    def same_seed() -> str:
        a, b = image(seed=11, prompt="a fox"), image(seed=11, prompt="a fox")
        assert a.std() > 0, "a flat picture (NaN in fp16?)"
        assert np.array_equal(a, b), f"max diff {np.abs(a.astype(int) - b).max()}"
        return "same seed → identical pixels"

    def variation() -> str:
        # a non-ancestral sampler: an ancestral one draws each step's noise from the base seed (as A1111)
        base, var = image(seed=5, sampler="Euler"), image(seed=77, sampler="Euler")
        zero = image(seed=5, subseed=77, subseed_strength=0.0, sampler="Euler")
        one = image(seed=5, subseed=77, subseed_strength=1.0, sampler="Euler")
        half = image(seed=5, subseed=77, subseed_strength=0.5, sampler="Euler")
        assert np.array_equal(zero, base), "strength 0 differs from the base seed"
        assert np.array_equal(one, var), "strength 1 differs from the variation seed"
        assert not np.array_equal(half, base) and not np.array_equal(half, var)
        return "strength 0 = base seed, 1 = variation seed, 0.5 differs from both"

    def source_variation(task: str, model: str) -> Callable[[], str]:
        def check() -> str:
            mask = Image.new("L", (128, 96), 0)
            ImageDraw.Draw(mask).rectangle((0, 0, 40, 96), fill=255)
            fields = {
                "model": model, "prompt": "a fox", "init_image": encode_png(product()), "width": 128,
                "height": 96, "steps": 8, "sampler": "Euler", "denoising_strength": 0.75,
            }  # fmt: skip
            cls = Img2ImgRequest
            if task == "inpaint":
                cls, fields["mask"] = InpaintRequest, encode_png(mask)

            def run(**extra: object):  # noqa: ANN202
                return pixels(studio, submit(studio, cls(**{**fields, **extra})))[0]

            base, var = run(seed=5), run(seed=77)
            assert np.array_equal(run(seed=5, subseed=77, subseed_strength=0.0), base), "strength 0 ≠ base"
            assert np.array_equal(run(seed=5, subseed=77, subseed_strength=1.0), var), (
                "strength 1 ≠ variation"
            )
            half = run(seed=5, subseed=77, subseed_strength=0.5)
            assert not np.array_equal(half, base) and not np.array_equal(half, var)
            if task == "inpaint":
                keep = np.asarray(mask) == 0
                assert np.array_equal(half[..., :3][keep], np.asarray(product())[keep]), (
                    "pixels outside changed"
                )
            return "strength 0 = base seed, 1 = variation seed, 0.5 differs" + (
                "; outside the mask unchanged" if task == "inpaint" else ""
            )

        return check

    def weighting(model: str) -> Callable[[], str]:
        def check() -> str:
            plain = image(model, seed=3, prompt="a fox logo")
            weighted = image(model, seed=3, prompt="a (fox:1.4) logo")
            long = image(model, seed=3, prompt=LONG_PROMPT, negative_prompt="(blurry:1.2), text")
            assert weighted.std() > 0 and long.std() > 0, "a flat picture"
            assert not np.array_equal(plain, weighted), "the weight changed nothing"
            return "weighted and long (BREAK, >77 tokens) prompts run in fp16 and change the picture"

        return check

    def lora(model: str, name: str) -> Callable[[], str]:
        def check() -> str:
            before = image(model, seed=9, prompt="a fox")
            with_lora = image(model, seed=9, prompt=f"a fox <lora:{name}:0.8>")
            after = image(model, seed=9, prompt="a fox")
            assert not np.array_equal(before, with_lora), "the LoRA changed nothing"
            assert np.array_equal(before, after), "the model is not clean after the LoRA job"
            return "LoRA changes the picture; the same job before and after it gives identical pixels"

        return check

    def hires(model: str) -> Callable[[], str]:
        def check() -> str:
            sizes = []
            for upscaler in ("Latent", "Lanczos", "tiny-esrgan-x2"):
                out = image(
                    model, seed=4, enable_hr=True, hr_scale=2, hr_upscaler=upscaler, denoising_strength=0.5
                )
                assert out.std() > 0, f"{upscaler}: a flat picture"
                sizes.append(f"{upscaler} {out.shape[1]}x{out.shape[0]}")
                assert out.shape[:2] == (256, 256), sizes[-1]
            hires = {
                "enable_hr": True,
                "hr_upscaler": "Lanczos",
                "denoising_strength": 0.5,
                "sampler": "Euler",
            }
            other = image(model, seed=78, **hires)
            assert np.array_equal(image(model, seed=4, subseed=78, subseed_strength=1.0, **hires), other)
            return ", ".join(sizes) + "; variation strength 1 = the variation seed's hires picture"

        return check

    def esrgan_agrees() -> str:
        picture = Image.radial_gradient("L").convert("RGB").resize((96, 64))
        on_gpu = upscale(picture, upscaler="tiny-esrgan-x2", scale=2, models_dir=models, device=device_name)
        on_cpu = upscale(picture, upscaler="tiny-esrgan-x2", scale=2, models_dir=models, device="cpu")
        diff = np.abs(np.asarray(on_gpu, dtype=int) - np.asarray(on_cpu, dtype=int))
        assert on_gpu.size == (192, 128) and diff.max() <= 8, f"max diff {diff.max()}"
        return f"192x128; GPU vs CPU mean diff {diff.mean():.3f}, max {diff.max()} (of 255)"

    def product() -> Image.Image:
        picture = Image.new("RGB", (128, 96), (236, 236, 236))
        ImageDraw.Draw(picture).ellipse((44, 20, 84, 76), fill=(190, 30, 40))
        return picture

    def retouch(ops: list[dict]):  # noqa: ANN202
        job = submit(studio, RetouchRequest(image=encode_png(product()), ops=ops, seed=2))
        return pixels(studio, job)[0]

    def sd_upscale() -> str:
        out = retouch([{"op": "sd_upscale", "scale": 2, "tile_size": 128, "overlap": 32, "steps": 8}])
        assert out.shape[:2] == (192, 256), out.shape
        return f"{out.shape[1]}x{out.shape[0]} from 128x96 in overlapping 128 px tiles"

    def replace_background() -> str:
        from pipelines.retouch.background import subject_mask

        source = product()
        out = retouch(
            [
                {
                    "op": "replace_background",
                    "prompt": "a marble table",
                    "preset": "Product — studio white (1:1)",
                    "styles": ["Cinematic"],
                    "steps": 8,
                }
            ]
        )
        mask = np.asarray(subject_mask(source, method="key", models_dir=models)) > 127
        kept = np.array_equal(out[..., :3][mask], np.asarray(source)[mask])
        assert kept, "subject pixels changed"
        return f"with a preset and a style: {int(mask.sum())} subject pixels byte-identical"

    def xyz() -> str:
        plot = PlotRequest(
            base=Txt2ImgRequest(model="tiny-sd1", prompt="a fox", **fast),
            x=Axis(type="seed", values="1, 2"),
            y=Axis(type="steps", values="4, 8"),
        )
        group = studio.groups.run_plot(plot, "bench")
        assert group.wait(600), "plot did not finish"
        assert group.grid is not None and len(group.cell_images) == 4, group.error
        return f"4 cells + grid {group.grid.width}x{group.grid.height}"

    try:
        checks.run("same seed, same pixels (sd1 fp16)", same_seed)
        checks.run("variation seed", variation)
        checks.run("variation seed in img2img", source_variation("img2img", "tiny-sd1"))
        checks.run(
            "variation seed in inpaint (9-channel)", source_variation("inpaint", "tiny-sd1-inpainting")
        )
        checks.run("variation seed in inpaint (4-channel)", source_variation("inpaint", "tiny-sd1"))
        checks.run("prompt weighting sd1", weighting("tiny-sd1"))
        checks.run("prompt weighting sdxl", weighting("tiny-sdxl"))
        checks.run("LoRA sd1 (UNet + text encoder)", lora("tiny-sd1", "fox"))
        checks.run("LoRA sdxl (UNet + both text encoders)", lora("tiny-sdxl", "foxxl"))
        checks.run("hires fix sd1", hires("tiny-sd1"))
        checks.run("hires fix sdxl", hires("tiny-sdxl"))
        checks.run("ESRGAN upscale on the GPU", lambda: off_main(esrgan_agrees))  # type: ignore[arg-type,return-value]
        checks.run("SD upscale", sd_upscale)
        checks.run("replace background", replace_background)
        checks.run("X/Y/Z 2x2", xyz)
    finally:
        studio.close()


def part2(root: Path, rounds: int, device_name: str, size: int, steps: int) -> None:
    import torch
    from PIL import Image
    from safetensors.torch import save_file

    from app import build_studio
    from core.images import encode_png
    from core.requests import Txt2ImgRequest
    from core.retouch import RetouchRequest
    from core.settings import Settings
    from pipelines.retouch.spandrel_compat import import_spandrel
    from pipelines.retouch.upscale import upscale
    from pipelines.tiny import build_tiny_components, save_tiny, save_tiny_lora

    models = root / "models-full"
    start = time.perf_counter()
    off_main(lambda: save_tiny(models / "full-sd1", arch="sd1", full_size=True))
    off_main(
        lambda: save_tiny_lora(
            models / "Lora" / "big.safetensors",
            build_tiny_components("sd1", full_size=True),
            rank=32,
            text_encoder=True,
        )
    )
    print(f"\nfull-size SD 1.5 model and a rank-32 LoRA written in {time.perf_counter() - start:.0f} s")

    studio = build_studio(
        Settings(models_dir=models, outputs_dir=root / "outputs-full", device=device_name, preview_every=0)
    )
    cuda = device_name == "cuda"
    studio.start()
    base = {
        "model": "full-sd1",
        "steps": steps,
        "width": size,
        "height": size,
        "sampler": "Euler a",
        "seed": 1,
    }
    prompt = "a flat vector logo of a red fox, white background"
    source = encode_png(Image.radial_gradient("L").convert("RGB").resize((size, size)))
    variants: dict[str, tuple[object, int, int]] = {  # name: (request, preview_every, images)
        "plain": (Txt2ImgRequest(prompt=prompt, **base), 0, 1),
        "weighted long prompt": (Txt2ImgRequest(prompt=LONG_PROMPT, **base), 0, 1),
        "LoRA rank 32": (Txt2ImgRequest(prompt=prompt + " <lora:big:0.8>", **base), 0, 1),
        "previews every step": (Txt2ImgRequest(prompt=prompt, **base), 1, 1),
        "batch of 4, per image": (Txt2ImgRequest(prompt=prompt, batch_size=4, **base), 0, 4),
        "hires x2 (latent, 10 steps)": (
            Txt2ImgRequest(
                prompt=prompt,
                enable_hr=True,
                hr_scale=2,
                hr_second_pass_steps=10,
                denoising_strength=0.5,
                **base,
            ),
            0,
            1,
        ),
        f"SD upscale x2 ({size} tiles)": (
            RetouchRequest(
                image=source,
                ops=[
                    {
                        "op": "sd_upscale",
                        "model": "full-sd1",
                        "scale": 2,
                        "steps": steps,
                        "denoising_strength": 0.5,
                        "tile_size": size,
                        "overlap": size // 8,
                    }
                ],
                seed=1,
            ),
            0,
            1,
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    peaks: dict[str, float] = {}
    try:
        for request, every, _ in variants.values():  # warm-up: load, caches, cuDNN choices
            studio.backend.preview_every = every
            pixels(studio, submit(studio, request))
        for _ in range(rounds):
            for name, (request, every, count) in variants.items():
                studio.backend.preview_every = every
                if cuda:
                    torch.cuda.reset_peak_memory_stats()
                began = time.perf_counter()
                pixels(studio, submit(studio, request))
                times[name].append((time.perf_counter() - began) / count)
                peaks[name] = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    finally:
        studio.close()
    plain = statistics.median(times["plain"])
    print(f"{f'job ({size}², {steps} steps, Euler a)':36} {'median s':>9} {'× plain':>8} {'peak GiB':>9}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:36} {median:9.3f} {median / plain:8.2f} {peaks[name]:9.2f}")

    import_spandrel()
    from spandrel.architectures.ESRGAN import ESRGAN

    upscalers = models / "upscalers"
    upscalers.mkdir(parents=True)
    model = ESRGAN(in_nc=3, out_nc=3, num_filters=64, num_blocks=23, scale=4)
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()}, str(upscalers / "esrgan-x4.safetensors")
    )
    picture = Image.open(io.BytesIO(source)).convert("RGB")

    def timed_upscale() -> float:
        began = time.perf_counter()
        out = upscale(picture, upscaler="esrgan-x4", scale=4, models_dir=models, device=device_name)
        assert out.size == (4 * size, 4 * size), out.size
        return time.perf_counter() - began

    off_main(timed_upscale)  # load and warm up
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    runs = [off_main(timed_upscale) for _ in range(rounds)]
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    print(
        f"ESRGAN x4 (23 RRDB blocks) {size}² → {4 * size}²: median {statistics.median(runs):.3f} s, "  # type: ignore[type-var]
        f"peak {peak:.2f} GiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full", action="store_true", help="also time a full-size SD 1.5 model")
    parser.add_argument("--skip-checks", action="store_true", help="only part 2")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cuda", help="cpu: a dry run of the script itself")
    parser.add_argument("--size", type=int, default=512, help="part 2 picture size")
    parser.add_argument("--steps", type=int, default=20, help="part 2 steps")
    args = parser.parse_args()
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA GPU: this check is for GPU machines (the test suite covers the CPU)")
    checks = Checks()
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_checks:
            checks.run("part 1 as a whole", lambda: part1(Path(tmp), checks, args.device) or "done")
        if args.full:
            part2(Path(tmp), args.rounds, args.device, args.size, args.steps)
    if checks.failed:
        sys.exit(f"{len(checks.failed)} check(s) failed: {', '.join(checks.failed)}")


if __name__ == "__main__":
    main()
