"""Speed on the device: raw diffusers against Easel, per case, in one process with interleaved rounds.

Cases (the real architectures' sizes with random weights, `pipelines.tiny --full-size`; Euler a, CFG 7, fixed
seeds): SD 1.5 512² 20 steps at batch 1 and 4, SDXL 1024² 30 steps at batch 1. For each:

- A: raw diffusers, eager — the same components loaded by the same loader, the same prompt, CPU generators,
  no save. Split into text encoding / denoising loop / VAE decode, the loop timed from its step callbacks
  (CUDA-synchronised on a GPU).
- B: Easel's default path through the Studio (queue → backend → pipeline manager → gallery save), submit to
  saved.
- C: Easel's fast mode — reported as unavailable until one exists.

Printed as JSON: loop it/s of A, seconds per image of A and B, B/A on whole-job time, the split, peak allocated
and reserved GPU memory of each, and whether a seed gives the same bytes twice in each mode. ≥ 5 timed rounds
after a warm-up by default, A and B alternating.

    python -m bench.gpu [--rounds 5] [--cases sd15-b1,sd15-b4,sdxl-b1]
    python -m bench.gpu --device cpu --tiny --rounds 1 --steps 2     # dry run on any machine
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROMPT = "a ceramic coffee mug on a marble counter, product photo, soft light"
NEGATIVE = "blurry, text, watermark"


@dataclass(frozen=True)
class Case:
    name: str
    arch: str
    size: int
    steps: int
    batch: int


CASES = {
    "sd15-b1": Case("sd15-b1", "sd1", 512, 20, 1),
    "sd15-b4": Case("sd15-b4", "sd1", 512, 20, 4),
    "sdxl-b1": Case("sdxl-b1", "sdxl", 1024, 30, 1),
}


class Clock:
    """Wall time that waits for the device's queued work first (CUDA), so a time is the work's, not its launch."""

    def __init__(self, device: str) -> None:
        import torch

        self.cuda = device.startswith("cuda")
        self._sync = torch.cuda.synchronize if self.cuda else (lambda: None)

    def now(self) -> float:
        self._sync()
        return time.perf_counter()


def raw_diffusers(pipe: Any, case: Case, seed: int, clock: Clock) -> tuple[dict[str, float], bytes]:
    """A: the plain diffusers call, split into text encoding, loop and VAE; the pictures' bytes."""
    import torch

    from pipelines.schedulers import make_scheduler
    from pipelines.txt2img import initial_latents

    pipe.scheduler = make_scheduler("Euler a", "Automatic", pipe.scheduler.config)
    generators = [torch.Generator("cpu").manual_seed(seed + i) for i in range(case.batch)]
    latents = initial_latents(pipe, generators, case.size, case.size).to(pipe.device, pipe.unet.dtype)
    steps: list[float] = []
    start = clock.now()
    with torch.inference_mode():
        encoded = pipe.encode_prompt(
            prompt=PROMPT,
            device=pipe.device,
            num_images_per_prompt=case.batch,
            do_classifier_free_guidance=True,
            negative_prompt=NEGATIVE,
        )
        if case.arch == "sdxl":
            embeds = dict(
                zip(
                    (
                        "prompt_embeds",
                        "negative_prompt_embeds",
                        "pooled_prompt_embeds",
                        "negative_pooled_prompt_embeds",
                    ),
                    encoded,
                    strict=True,
                )
            )
        else:
            embeds = {"prompt_embeds": encoded[0], "negative_prompt_embeds": encoded[1]}
        encoded_at = clock.now()

        def on_step(p: Any, step: int, timestep: Any, tensors: dict) -> dict:
            steps.append(clock.now())
            return {}

        out = pipe(
            **embeds,
            num_inference_steps=case.steps,
            guidance_scale=7.0,
            width=case.size,
            height=case.size,
            latents=latents,
            generator=generators,
            output_type="latent",
            callback_on_step_end=on_step,
        ).images
        looped_at = clock.now()
        scaled = out / pipe.vae.config.scaling_factor
        decoded = pipe.vae.decode(scaled.to(pipe.vae.dtype)).sample
        images = pipe.image_processor.postprocess(decoded, output_type="pil")
        done = clock.now()
    loop_its = (len(steps) - 1) / (steps[-1] - steps[0]) if len(steps) > 1 else float("nan")
    split = {
        "text_s": encoded_at - start,
        "loop_s": looped_at - encoded_at,
        "vae_s": done - looped_at,
        "total_s": done - start,
        "loop_it_s": loop_its,
    }
    return split, b"".join(image.tobytes() for image in images)


def through_easel(studio: Any, model: str, case: Case, seed: int) -> tuple[dict[str, float], bytes]:
    """B: a job through the Studio, submit → saved; the saved pictures' bytes."""
    from PIL import Image

    from core.requests import Txt2ImgRequest

    request = Txt2ImgRequest(
        model=model,
        prompt=PROMPT,
        negative_prompt=NEGATIVE,
        sampler="Euler a",
        steps=case.steps,
        cfg_scale=7,
        width=case.size,
        height=case.size,
        seed=seed,
        batch_size=case.batch,
    )
    start = time.perf_counter()
    job = studio.jobs.submit(request, "bench")
    job.wait()
    done = time.perf_counter()
    if job.state.value != "done":
        raise SystemExit(f"Easel job failed: {job.error}")
    pictures = b"".join(
        Image.open(studio.gallery.file_path(image.id)).convert("RGB").tobytes() for image in job.images
    )
    return {"total_s": done - start}, pictures


def peak_memory(fn: Callable[[], Any], cuda: bool) -> tuple[Any, dict[str, float]]:
    import torch

    if not cuda:
        return fn(), {}
    torch.cuda.reset_peak_memory_stats()
    result = fn()
    gib = 2**30
    return result, {
        "peak_allocated_gib": torch.cuda.max_memory_allocated() / gib,
        "peak_reserved_gib": torch.cuda.max_memory_reserved() / gib,
    }


def run_case(case: Case, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    from app import build_studio
    from core.settings import Settings
    from pipelines.device_thread import DeviceThread
    from pipelines.loader import load_pipeline
    from pipelines.tiny import save_tiny

    if args.tiny:
        case = Case(case.name, case.arch, args.size or 64, args.steps or case.steps, case.batch)
    elif args.steps or args.size:
        case = Case(case.name, case.arch, args.size or case.size, args.steps or case.steps, case.batch)
    models = root / f"models-{case.arch}"
    model = f"bench-{case.arch}"
    if not (models / f"{model}.safetensors").exists():
        save_tiny(models / f"{model}.safetensors", arch=case.arch, seed=0, full_size=not args.tiny)
    studio = build_studio(
        Settings(
            models_dir=models, outputs_dir=root / f"outputs-{case.name}", device=args.device, max_batch=1
        )
    )
    studio.start()
    studio.backend.wait() if hasattr(studio.backend, "wait") else None  # a deferred backend: built now
    backend = getattr(studio.backend, "ready", lambda: studio.backend)() or studio.backend
    device = backend.manager.device
    clock = Clock(device.device)
    thread = DeviceThread("bench-raw")  # A runs on a long-lived thread too, as Easel's jobs do
    pipe = thread.submit(
        lambda: load_pipeline(backend.registry.get(model), device=device.device, dtype=device.dtype)
    ).result()
    pipe.set_progress_bar_config(disable=True)

    def a(seed: int) -> tuple[dict[str, float], bytes]:
        return thread.submit(lambda: raw_diffusers(pipe, case, seed, clock)).result()

    def b(seed: int) -> tuple[dict[str, float], bytes]:
        return through_easel(studio, model, case, seed)

    a(1), b(1)  # warm-up: loads, allocator, kernels
    rows: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    memory: dict[str, dict[str, float]] = {}
    for round_ in range(args.rounds):
        order = (("A", a), ("B", b)) if round_ % 2 == 0 else (("B", b), ("A", a))
        for name, fn in order:
            (timing, _), mem = peak_memory(lambda fn=fn: fn(7), clock.cuda)
            rows[name].append(timing)
            memory[name] = mem or memory.get(name, {})
    same = {name: fn(11)[1] == fn(11)[1] for name, fn in (("A", a), ("B", b))}
    median = {
        name: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for name, runs in rows.items()
    }
    studio.close()
    thread.close()
    return {
        "case": vars(case),
        "device": device.name,
        "A_raw_diffusers": {**median["A"], "s_per_image": median["A"]["total_s"] / case.batch, **memory["A"]},
        "B_easel": {**median["B"], "s_per_image": median["B"]["total_s"] / case.batch, **memory["B"]},
        "C_easel_fast": "not available: Easel has no fast mode yet",
        "B_over_A_whole_job": median["B"]["total_s"] / median["A"]["total_s"],
        "same_seed_same_bytes": same,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tiny", action="store_true", help="tiny models (a dry run of the script)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--steps", type=int, default=0, help="override every case's steps")
    parser.add_argument("--size", type=int, default=0, help="override every case's size")
    args = parser.parse_args()
    unknown = [name for name in args.cases.split(",") if name not in CASES]
    if unknown:
        raise SystemExit(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    with tempfile.TemporaryDirectory() as tmp:
        results = [run_case(CASES[name], args, Path(tmp)) for name in args.cases.split(",")]
    print(json.dumps({"settings": vars(args), "results": results}, indent=1))


if __name__ == "__main__":
    main()
