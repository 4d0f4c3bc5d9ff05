import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from app import check_exposure
from core.settings import Settings, build_parser, settings_from_args

ROOT = Path(__file__).resolve().parents[1]


def test_safe_defaults():
    settings = Settings()
    assert settings.host == "127.0.0.1" and settings.port == 7860
    assert settings.demo is False and settings.xformers is False


def test_flags_and_environment(monkeypatch):
    monkeypatch.setenv("EASEL_PORT", "9000")
    monkeypatch.setenv("EASEL_MAX_GPU_MODELS", "2")
    settings = settings_from_args(["--models-dir", "/tmp/m", "--demo", "--model", "a/b", "--model", "c/d"])
    assert settings.port == 9000 and settings.max_gpu_models == 2
    assert settings.models_dir == Path("/tmp/m") and settings.demo
    assert settings.model == ["a/b", "c/d"]
    assert settings_from_args(["--port", "8001"]).port == 8001  # a flag beats the environment


def test_bad_values_are_errors():
    with pytest.raises(ValidationError):
        settings_from_args(["--port", "70000"])
    with pytest.raises(SystemExit):
        settings_from_args(["--device", "tpu"])


def test_every_setting_is_a_documented_flag():
    help_text = build_parser().format_help()
    for name in Settings.model_fields:
        assert "--" + name.replace("_", "-") in help_text
        assert f"EASEL_{name.upper()}" in help_text


def test_app_help_runs_without_loading_anything():
    result = subprocess.run(
        [sys.executable, "app.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0
    for flag in (
        "--host",
        "--port",
        "--models-dir",
        "--outputs-dir",
        "--model",
        "--demo",
        "--device",
        "--dtype",
    ):
        assert flag in result.stdout
    for flag in ("--max-gpu-models", "--max-ram-models", "--xformers"):
        assert flag in result.stdout


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "example.com", "::"])
def test_serving_beyond_this_computer_is_refused(host):
    with pytest.raises(SystemExit, match="Refusing to listen"):
        check_exposure(Settings(host=host))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_is_allowed(host):
    check_exposure(Settings(host=host))


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        ("http://127.0.0.1:7860", "127.0.0.1:7860", True),
        ("http://localhost", "localhost:80", True),
        ("https://box.example", "box.example", True),
        ("http://127.0.0.1:7861", "127.0.0.1:7860", False),
        ("http://evil.example", "127.0.0.1:7860", False),
        ("null", "127.0.0.1:7860", False),
        ("file://", "127.0.0.1:7860", False),
    ],
)
def test_same_origin_rule(origin, host, same):
    from api.origin import same_origin

    assert same_origin(origin, host) is same
