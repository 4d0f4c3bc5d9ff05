"""What does a LoRA add to a job, the first time and when the same LoRA is used again?

Builds a model with random weights (tiny, or with ``--full-size`` the real SD 1.5 sizes) and a random rank-32
LoRA for its UNet and text encoder, then times, interleaved round by round so all see the same machine noise:

- plain: a job without LoRAs on a model that never had one;
- cold: the first job with ``<lora:big:0.8>`` (the file is loaded, then kept on the model, disabled after);
- warm: the same job again (the adapter is already loaded: only switched on and off);
- plain after: a job without LoRAs on the model that keeps the adapter, disabled;
- load+unload: the job as it ran before adapters were kept (load the file, run, unload every LoRA layer).

Prints the median seconds per job and each as a ratio to plain. The kept adapter is taken out (not timed)
before each load+unload job, so that job starts on a clean model and the next round's cold job is cold again. Every job runs off the main thread, as the app's jobs do
(see bench/overhead.py).

    .venv/bin/python -m bench.lora --device cpu --size 256 --steps 4 --rounds 3
    .venv/bin/python -m bench.lora --device cpu --full-size --size 256 --steps 4 --rounds 3
    python -m bench.lora --full-size                                   # GPU: 512², 20 steps, fp16
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

KINDS = ("plain", "cold", "warm", "plain after", "load+unload")


def main() -> None:  # noqa: PLR0915 - one script, top to bottom
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--full-size", action="store_true", help="SD 1.5 sizes (random weights)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rank", type=int, default=32)
    args = parser.parse_args()

    import numpy as np
    import torch
    from diffusers import StableDiffusionPipeline
    from transformers.utils import logging as transformers_logging

    from core.prompt_syntax import LoraTag
    from core.requests import Txt2ImgRequest
    from pipelines.device import choose_device
    from pipelines.lora import LoraAdapters, LoraLibrary, applied_loras
    from pipelines.tiny import build_tiny_components, save_tiny_lora
    from pipelines.txt2img import run_txt2img

    transformers_logging.disable_progress_bar()  # one "Loading weights" bar per text-encoder LoRA load
    device = choose_device(args.device)
    cuda = device.device.startswith("cuda")
    root = Path(tempfile.mkdtemp(prefix="easel-bench-lora-"))
    start = time.perf_counter()
    components = off_main(lambda: build_tiny_components("sd1", full_size=args.full_size))
    assert isinstance(components, dict)
    off_main(
        lambda: save_tiny_lora(
            root / "Lora" / "big.safetensors", components, rank=args.rank, text_encoder=True
        )
    )
    pipe = StableDiffusionPipeline(
        **components, safety_checker=None, feature_extractor=None, requires_safety_checker=False
    )
    off_main(lambda: pipe.to(device.device, device.dtype))
    pipe.set_progress_bar_config(disable=True)
    library = LoraLibrary(root)
    adapters = LoraAdapters(pipe)
    print(
        f"device {device.name} ({device.dtype}), {'full-size SD 1.5' if args.full_size else 'tiny SD1'} model, "
        f"rank-{args.rank} LoRA (UNet + text encoder), {args.size}², {args.steps} steps; "
        f"set up in {time.perf_counter() - start:.1f} s"
    )

    request = Txt2ImgRequest(
        prompt="a red fox logo", steps=args.steps, width=args.size, height=args.size, seed=1
    )
    lora = [LoraTag("big", 0.8)]

    def job(tags: list[LoraTag], kept: LoraAdapters | None) -> tuple[float, np.ndarray]:
        def run() -> np.ndarray:
            with applied_loras(pipe, tags, library, kept):
                picture = run_txt2img(pipe, request, [request.seed], lambda *_: True)[0]
            if cuda:
                torch.cuda.synchronize()
            return np.asarray(picture)

        began = time.perf_counter()
        pixels = off_main(run)
        assert isinstance(pixels, np.ndarray)
        return time.perf_counter() - began, pixels

    job([], adapters)  # warm-up: kernels, allocator
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    reference: dict[str, np.ndarray] = {}
    for _ in range(args.rounds):
        for kind in KINDS:
            if kind == "load+unload":
                loads = adapters.loads
                off_main(
                    adapters.clear
                )  # not timed: the next cold job is cold again, and this one starts clean
                seconds, pixels = job(lora, None)
            else:
                seconds, pixels = job(lora if kind in ("cold", "warm") else [], adapters)
            times[kind].append(seconds)
            group = "lora" if kind in ("cold", "warm", "load+unload") else "plain"
            same = reference.setdefault(group, pixels)
            if not np.array_equal(same, pixels):
                print(f"warning: {kind} gave other pixels than the first {group} job")
    print(f"{loads} kept-adapter LoRA loads in {args.rounds} rounds (one per cold job, none per warm one)")
    plain = statistics.median(times["plain"])
    print(f"\n{'job':<14}{'median s':>10}{'× plain':>9}")
    for kind in KINDS:
        median = statistics.median(times[kind])
        print(f"{kind:<14}{median:>10.3f}{median / plain:>9.3f}")


if __name__ == "__main__":
    main()
