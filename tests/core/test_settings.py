import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from app import check_exposure
from core.settings import Settings, build_parser, settings_from_args
from core.users import AuthConfigError, User, UserBook, hash_password

ROOT = Path(__file__).resolve().parents[2]


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


@pytest.mark.parametrize(
    "flags",
    [["--listen"], ["--share"], ["--host", "0.0.0.0"], ["--host", "192.168.1.5"], ["--host", "example.com"]],
)
def test_serving_beyond_this_computer_without_logins_is_refused_with_advice(flags):
    settings = settings_from_args(flags)
    assert settings.exposed()
    with pytest.raises(SystemExit) as exit_info:
        check_exposure(settings, UserBook())
    message = str(exit_info.value)
    assert "Refusing to start" in message and "--auth user:password" in message and "--auth-file" in message


def test_serving_beyond_this_computer_with_logins_or_explicit_opt_out_is_allowed():
    check_exposure(settings_from_args(["--listen"]), UserBook([User("alice", "pw")]))
    check_exposure(settings_from_args(["--share", "--unsafe-no-auth"]), UserBook())


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_needs_no_login(host):
    settings = Settings(host=host)
    assert not settings.exposed()
    check_exposure(settings, UserBook())


def test_logins_from_flags_environment_and_files(monkeypatch, tmp_path):
    monkeypatch.setenv("EASEL_AUTH", "carol:c1, dave:d1")
    from_env = settings_from_args([])
    assert from_env.auth == ["carol:c1", "dave:d1"]
    auth_file = tmp_path / "users.txt"
    auth_file.write_text("# team\nerin:e1\n\nroot:" + hash_password("s3cret") + ":admin\n")
    settings = settings_from_args(["--auth", "alice:pw", "--auth-file", str(auth_file)])
    users = UserBook.from_sources(settings.auth, settings.auth_file)
    assert users.names() == ["alice", "erin", "root"]
    assert users.authenticate("alice", "pw") and not users.authenticate("alice", "PW")
    assert users.authenticate("root", "s3cret") and users.is_admin("root") and not users.is_admin("alice")
    assert not users.authenticate("mallory", "pw")


@pytest.mark.parametrize("entry", ["alice", ":pw", "alice:", "root:pbkdf2_sha256$1$zz"])
def test_malformed_logins_are_clear_errors(entry):
    with pytest.raises(AuthConfigError):
        UserBook.from_sources([entry])


def test_bad_auth_file_stops_the_app_with_the_line_number(tmp_path):
    from app import load_users

    auth_file = tmp_path / "users.txt"
    auth_file.write_text("alice:pw\nbroken\n")
    with pytest.raises(SystemExit, match=r"users.txt:2"):
        load_users(settings_from_args(["--auth-file", str(auth_file)]))


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


def test_start_up_lines_say_where_to_connect_and_when_sharing_failed(caplog):
    import logging

    from app import announce

    caplog.set_level(logging.INFO, logger="easel")
    announce(settings_from_args(["--listen", "--share", "--api"]), "http://127.0.0.1:7860/", None)
    text = caplog.text
    assert "http://127.0.0.1:7860/" in text and "On your network: http://" in text
    assert "share link could not be created" in text and "/sdapi/v1" in text
