"""A team sharing one device: throughput and waits with batching across users on and off.

N simulated users (default 8), each with a login of their own, submit M jobs each (default 3) of the same
settings with their own seeds and prompts through the A1111 API, one after another as a client does (post,
wait for the pictures, post the next). The same workload runs against the app served with `--max-batch 1`
(every job alone) and with `--max-batch B` (default 4), alternating for R rounds in one process so both see
the same machine noise. Prints images per minute and the p50/p95 time from post to pictures for each, and the
throughput ratio; JSON with --json.

    .venv/bin/python -m bench.team [--users 8] [--jobs 3] [--batch 4] [--rounds 2] [--size 128] [--steps 8]
                                  [--device auto] [--json]

On a CPU the gain is small (its cores are busy at batch 1 already); on a GPU batch 1 leaves most of it idle.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def one_user(
    url: str, user: str, jobs: int, body: dict[str, Any], waits: list[float], errors: list[str]
) -> None:
    import httpx

    with httpx.Client(base_url=url, auth=(user, "team-pass"), timeout=600) as http:
        for index in range(jobs):
            start = time.perf_counter()
            answer = http.post(
                "/sdapi/v1/txt2img",
                json={
                    **body,
                    "prompt": f"{body['prompt']}, {user} take {index}",
                    "seed": 1000 * index + len(user),
                },
            )
            if answer.status_code != 200:
                errors.append(f"{user}: {answer.status_code} {answer.text[:200]}")
                return
            waits.append(time.perf_counter() - start)


def run_team(url: str, users: list[str], jobs: int, body: dict[str, Any]) -> dict[str, float]:
    waits: list[float] = []
    errors: list[str] = []
    threads = [threading.Thread(target=one_user, args=(url, u, jobs, body, waits, errors)) for u in users]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    if errors:
        raise SystemExit("; ".join(errors))
    ordered = sorted(waits)
    return {
        "images_per_minute": len(waits) * body["batch_size"] * 60 / wall,
        "p50_s": statistics.median(ordered),
        "p95_s": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
        "wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4, help="--max-batch of the batching run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from core.users import hash_password
    from pipelines.tiny import save_tiny
    from tests.helpers import served_app

    tmp = Path(tempfile.mkdtemp())
    save_tiny(tmp / "models" / "tiny-sd1.safetensors", arch="sd1", seed=0)
    users = [f"user{i}" for i in range(args.users)]
    (tmp / "team.txt").write_text("".join(f"{u}:{hash_password('team-pass')}\n" for u in users))
    body = {
        "prompt": "a ceramic mug, product photo",
        "steps": args.steps,
        "width": args.size,
        "height": args.size,
        "sampler_name": "Euler a",
        "cfg_scale": 7,
        "batch_size": 1,
    }
    results: dict[int, list[dict[str, float]]] = {1: [], args.batch: []}
    for round_ in range(args.rounds):
        for max_batch in (1, args.batch) if round_ % 2 == 0 else (args.batch, 1):
            with served_app(
                tmp / "models",
                tmp / f"out-{round_}-{max_batch}",
                auth_file=[tmp / "team.txt"],
                api=True,
                preview_every=0,
                device=args.device,
                max_batch=max_batch,
                max_queued_per_user=max(4, args.jobs),
            ) as (_, url):
                run_team(
                    url, users[:1], 1, body
                )  # warm-up: the model loaded, the first step's allocations made
                results[max_batch].append(run_team(url, users, args.jobs, body))
    summary = {
        f"max_batch_{b}": {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        for b, runs in results.items()
    }
    ratio = (
        summary[f"max_batch_{args.batch}"]["images_per_minute"] / summary["max_batch_1"]["images_per_minute"]
    )
    summary["throughput_ratio"] = {"value": ratio}
    if args.json:
        print(json.dumps({"settings": vars(args), **summary}, indent=1))
        return
    print(
        f"{args.users} users × {args.jobs} jobs, {args.size}² {args.steps} steps, {args.rounds} rounds (medians)"
    )
    for name, row in summary.items():
        if name.startswith("max_batch"):
            print(
                f"{name:12}  {row['images_per_minute']:7.1f} images/min   p50 {row['p50_s']:6.2f} s   "
                f"p95 {row['p95_s']:6.2f} s"
            )
    print(f"throughput --max-batch {args.batch} / --max-batch 1: {ratio:.2f}×")


if __name__ == "__main__":
    main()
