"""How much does the Studio add on top of a bare diffusers call? And how cheap is a warm model switch?

Runs the same tiny-model generation (default 256×256, 8 steps) (a) directly with diffusers and (b)
through studio.jobs.submit (queue → backend → manager → gallery save), interleaved in one process so both
see the same machine noise, and prints the ratio of medians b/a (goal ≤ 1.03). Then times a cold model
load against a warm switch back to a cached model.

    .venv/bin/python -m bench.overhead [--size 256] [--steps 8] [--rounds 7] [--device auto]

All torch work, in both paths, runs off the main thread, on the one long-lived device thread that runs the
Studio's jobs: PyTorch's CPU build uses GNU OpenMP, which keeps one worker pool per calling thread and, once
two pools exist with more threads than cores, stops spin-waiting, making whichever path runs second
about a third slower on 2 cores. The app never runs torch on its main thread, so neither does this.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.threads import off_main

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    import torch

    from app import build_studio
    from core.requests import Txt2ImgRequest
    from core.settings import Settings
    from pipelines.loader import load_pipeline
    from pipelines.schedulers import make_scheduler
    from pipelines.tiny import save_tiny

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models = root / "models"
        off_main(lambda: save_tiny(models / "bench-a.safetensors", arch="sd1", seed=0))
        off_main(lambda: save_tiny(models / "bench-b.safetensors", arch="sd1", seed=1))
        settings = Settings(
            models_dir=models,
            outputs_dir=root / "outputs",
            device=args.device,
            preview_every=0,
            max_gpu_models=1,
            max_ram_models=1,
        )
        studio = build_studio(settings)
        studio.start()
        manager = studio.backend.manager
        registry = studio.backend.registry
        device = manager.device
        request = Txt2ImgRequest(
            model="bench-a",
            prompt="a red fox logo",
            steps=args.steps,
            width=args.size,
            height=args.size,
            seed=1,
            sampler="Euler",
        )

        # (a) the same model, loaded the same way, called directly
        direct_pipe = off_main(
            lambda: load_pipeline(registry.get("bench-a"), device=device.device, dtype=device.dtype)
        )
        direct_pipe.set_progress_bar_config(disable=True)

        def direct() -> None:
            direct_pipe.scheduler = make_scheduler("Euler", "Automatic", direct_pipe.scheduler.config)
            generator = torch.Generator("cpu").manual_seed(1)
            direct_pipe(
                prompt=request.prompt,
                num_inference_steps=args.steps,
                width=args.size,
                height=args.size,
                guidance_scale=request.cfg_scale,
                generator=generator,
            ).images[0].save(root / "direct.png")

        def through_studio() -> None:
            job = studio.jobs.submit(request, "bench")
            job.wait()
            assert job.state.value == "done", job.error

        def timed(fn) -> float:
            start = time.perf_counter()
            fn()
            return time.perf_counter() - start

        # on the Studio's own device thread, in turn with its jobs: one OpenMP pool for both paths
        device_thread = studio.backend.device_thread

        def direct_off_main() -> None:
            device_thread.submit(direct).result()

        direct_off_main()
        through_studio()  # warm-up: first load, caches
        a_times, b_times = [], []
        for _ in range(args.rounds):
            a_times.append(timed(direct_off_main))
            b_times.append(timed(through_studio))
        a, b = statistics.median(a_times), statistics.median(b_times)
        print(f"device: {device.name}, {args.size}x{args.size}, {args.steps} steps, {args.rounds} rounds")
        print(f"direct diffusers   median {a * 1000:8.1f} ms")
        print(f"through Studio     median {b * 1000:8.1f} ms")
        print(f"overhead ratio b/a        {b / a:8.3f}   (goal <= 1.03)")

        # cold load vs warm switch (bench-a is resident; bench-b is loaded cold, then a comes back warm)
        cold = timed(lambda: _lease_once(manager, registry.get("bench-b")))
        loads_before = manager.load_count
        warm = timed(lambda: _lease_once(manager, registry.get("bench-a")))
        assert manager.load_count == loads_before, "a warm switch must not reload"
        print(f"cold model load           {cold * 1000:8.1f} ms")
        print(f"warm switch (cached)      {warm * 1000:8.1f} ms   = {warm / cold:.3f} of a cold load")
        studio.close()


def _lease_once(manager, entry) -> None:
    def lease() -> None:
        with manager.lease(entry):
            pass

    off_main(lease)


if __name__ == "__main__":
    main()
