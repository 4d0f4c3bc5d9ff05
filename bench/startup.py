"""How long until the page is served? Easel's start against a bare Gradio Blocks app, side by side.

Each round starts (a) `app.py --demo --port P` over a models folder holding a tiny checkpoint and (b) a bare
`gr.Blocks` app with one Markdown, one after the other (alternating which goes first), and times each from
the process start to the first HTTP 200 on `/`. Prints every round, the medians and their ratio (goal: ≤ 1.5).

    .venv/bin/python -m bench.startup [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BARE = """
import sys
import gradio as gr
with gr.Blocks() as page:
    gr.Markdown("bare")
page.launch(server_name="127.0.0.1", server_port=int(sys.argv[1]), quiet=True)
"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def served(port: int, process: subprocess.Popen[bytes], limit_s: float) -> bool:
    """True once `/` answers 200; False if the process ended first or the limit passed."""
    deadline = time.perf_counter() + limit_s
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as answer:
                if answer.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    return False


def time_to_page(command: list[str], port: int, limit_s: float = 180) -> float:
    """Seconds from starting `command` to HTTP 200 on `/` at `port`; the process is stopped after."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if not served(port, process, limit_s):
            _, errors = process.communicate(timeout=5) if process.poll() is not None else (b"", b"")
            raise SystemExit(
                f"{command[1]} did not serve its page:\n{errors.decode(errors='replace')[-2000:]}"
            )
        return time.perf_counter() - start
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def command(which: str, tmp: Path, port: int) -> list[str]:
    """The command line of (a) Easel in demo mode over `tmp`/models or (b) the bare Gradio app."""
    if which == "bare":
        return [sys.executable, "-c", BARE, str(port)]
    return [
        sys.executable, "app.py", "--demo", "--port", str(port), "--device", "cpu",
        "--models-dir", str(tmp / "models"), "--outputs-dir", str(tmp / "outputs"),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of (Easel, bare) starts [default: 5]")
    rounds = parser.parse_args().rounds
    from pipelines.tiny import save_tiny

    tmp = Path(tempfile.mkdtemp())
    save_tiny(tmp / "models" / "tiny-sd1.safetensors", arch="sd1", seed=0)
    times: dict[str, list[float]] = {"easel": [], "bare": []}
    for which in times:  # a first start of each, not counted: compiled files and disk caches
        port = free_port()
        time_to_page(command(which, tmp, port), port)
    for round_no in range(rounds):
        for which in ("easel", "bare") if round_no % 2 == 0 else ("bare", "easel"):
            port = free_port()
            times[which].append(time_to_page(command(which, tmp, port), port))
        print(
            f"round {round_no + 1}: Easel {times['easel'][-1]:5.2f} s   bare Gradio {times['bare'][-1]:5.2f} s"
        )
    easel, bare = statistics.median(times["easel"]), statistics.median(times["bare"])
    print(f"median: Easel {easel:.2f} s, bare Gradio Blocks {bare:.2f} s, ratio {easel / bare:.2f}")


if __name__ == "__main__":
    main()
