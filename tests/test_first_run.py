"""The first minutes with Easel: help before anything is installed, a busy port said in one line, a demo that
starts small, and a restart that serves the page before torch is imported."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from core.settings import DEMO_START_VALUES, Settings
from tests.helpers import free_port, served_app

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def app_help() -> str:
    result = subprocess.run(
        [sys.executable, "app.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120, env=ENV
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def fresh_checkout(tmp_path: Path) -> Path:
    """scripts/start and the requirements files in a folder with no .venv (as after `git clone`)."""
    (tmp_path / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts" / "start", tmp_path / "scripts" / "start")
    for name in ("requirements.txt", "requirements-nodeps.txt"):
        shutil.copy2(ROOT / name, tmp_path / name)
    return tmp_path


def run_start(checkout: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # only the shell's basic tools on PATH: no python3 or pip that an install could use
    env = {"PATH": "/usr/bin:/bin", "HOME": str(checkout)}
    return subprocess.run(
        ["bash", str(checkout / "scripts" / "start"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_start_prints_the_help_of_app_py_at_once_without_installing(fresh_checkout, flag):
    began = time.monotonic()
    result = run_start(fresh_checkout, "--demo", flag)
    took = time.monotonic() - began
    assert result.returncode == 0, result.stderr
    assert result.stdout == app_help(), (
        "scripts/start keeps a copy of `python app.py --help` for the first run: paste the new help text "
        "between `cat <<'HELP'` and `HELP` in scripts/start"
    )
    assert took < 5
    assert not (fresh_checkout / ".venv").exists()
    assert "Installing" not in result.stdout + result.stderr


def test_the_help_is_laid_out_the_same_on_any_terminal():
    narrow = subprocess.run(
        [sys.executable, "app.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**ENV, "COLUMNS": "50"},
    )  # fmt: skip
    assert narrow.stdout == app_help()
    # no path of this checkout in it: the copy in scripts/start fits every checkout
    assert str(ROOT) not in narrow.stdout


def busy_socket(port: int = 0) -> socket.socket:
    """A socket listening on 127.0.0.1 (`port`, or a free one), as another server would."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


def test_a_busy_port_is_said_in_one_line_with_the_next_free_one_before_anything_slow(tmp_path):
    with busy_socket() as first:
        port = first.getsockname()[1]
        try:
            second = busy_socket(port + 1)  # the next one is taken as well: the hint skips it
        except OSError:
            second = None
        began = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "app.py", "--port", str(port), "--demo",
             "--models-dir", str(tmp_path / "models"), "--outputs-dir", str(tmp_path / "outputs")],
            cwd=ROOT, capture_output=True, text=True, timeout=120, env=ENV,
        )  # fmt: skip
        took = time.monotonic() - began
        if second is not None:
            second.close()
    said = [line for line in result.stderr.splitlines() if not line.startswith("import time:")]
    assert result.returncode == 2
    assert len(said) == 1, said
    match = re.fullmatch(rf"port {port} is busy: try --port (\d+)", said[0])
    assert match, said
    hint = int(match.group(1))
    assert hint > port and (second is None or hint > port + 1)
    with busy_socket(hint):  # the suggested port was free
        pass
    assert "Traceback" not in result.stderr and "GRADIO_SERVER_PORT" not in result.stderr
    # said before the slow imports and the model scan
    assert not {"gradio", "torch", "diffusers"} & imported(result.stderr.splitlines(keepends=True))
    assert not (tmp_path / "outputs").exists()
    assert took < 60


def test_start_says_a_port_is_busy_before_installing(fresh_checkout):
    with busy_socket() as taken:
        port = taken.getsockname()[1]
        result = run_start(fresh_checkout, "--port", str(port))
    assert result.returncode == 2
    assert re.fullmatch(rf"port {port} is busy: try --port \d+\n", result.stderr), result.stderr
    assert not (fresh_checkout / ".venv").exists()


def test_demo_starts_small_and_fast_and_the_request_models_keep_their_defaults(tiny_models_dir, tmp_path):
    from core.requests import GenerationRequest, Txt2ImgRequest

    assert Settings(demo=True).start_values() == DEMO_START_VALUES and Settings().start_values() == {}
    Txt2ImgRequest(prompt="a mug", **DEMO_START_VALUES)  # values the request model accepts
    defaults = {name: GenerationRequest.model_fields[name].default for name in DEMO_START_VALUES}
    assert all(defaults[name] > value for name, value in DEMO_START_VALUES.items())  # smaller than usual
    for demo, expected in ((True, DEMO_START_VALUES), (False, defaults)):
        with served_app(tiny_models_dir, tmp_path / f"out-{demo}", demo=demo) as (_, url):
            config = httpx.get(f"{url}/config", timeout=60).json()
        values = {c["props"].get("elem_id"): c["props"].get("value") for c in config["components"]}
        for tab in ("txt2img", "img2img", "inpaint"):
            assert {name: values[f"{tab}_{name}"] for name in expected} == expected, tab
    assert GenerationRequest.model_fields["steps"].default == defaults["steps"]


@pytest.mark.timeout(900)  # two starts and two first jobs, on a busy machine
def test_a_restart_serves_the_page_before_torch_is_imported_and_jobs_then_run(tiny_models_dir, tmp_path):
    outputs = tmp_path / "outputs"
    first = start_and_generate(tiny_models_dir, outputs)
    assert "torch" in imported(first)
    assert (outputs / ".easel-models.json").is_file()
    again = start_and_generate(tiny_models_dir, outputs)  # the model list of the first start was kept
    served = next(i for i, line in enumerate(again) if "Easel is running on" in line)
    assert "torch" not in imported(again[:served]), "the page waited for torch:\n" + "".join(
        line for line in again[:served] if not line.startswith("import time:")
    )
    assert "torch" in imported(again[served:])  # the backend was built after the page, in the same process


def start_and_generate(models_dir: Path, outputs: Path) -> list[str]:
    """Start app.py --demo, wait for the page, generate one picture over the Gradio API, stop: its stderr lines
    (with `-X importtime`'s line for each module, when its import finished)."""
    from gradio_client import Client

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-X", "importtime", "app.py", "--demo", "--port", str(port), "--device", "cpu",
         "--models-dir", str(models_dir), "--outputs-dir", str(outputs), "--default-model", "tiny-sd1"],
        cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lines.extend, args=(server.stderr,), daemon=True)
    reader.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_page(url, server)
        client = Client(url, verbose=False)
        done = client.predict(
            prompt="kept", steps=2, width=64, height=64, seed=1, batch_size=1, api_name="/txt2img"
        )
        assert len(done["ids"]) == 1  # the first job waited for the backend and ran
        client.close()
    finally:
        server.terminate()
        server.wait(60)
        reader.join(10)
    return lines


def imported(lines: list[str]) -> set[str]:
    return {line.rsplit("|", 1)[1].strip() for line in lines if line.startswith("import time:")}


def wait_for_page(url: str, server: subprocess.Popen[str], timeout: float = 400) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server stopped"
        try:
            answer = httpx.get(url + "/", timeout=5)
            if answer.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError("the page was not served")
