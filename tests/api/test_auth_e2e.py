"""Logins end to end: the page and the Gradio API need them, and every image records who made it."""

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from gradio_client import Client

from tests.helpers import served_app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def authed_app(tiny_models_dir, tmp_path_factory):
    with served_app(
        tiny_models_dir, tmp_path_factory.mktemp("outputs"), auth=["alice:wonderland", "bob:builder"]
    ) as app:
        yield app


def test_the_api_refuses_anonymous_and_wrong_passwords(authed_app):
    _, url = authed_app
    with pytest.raises(Exception):  # noqa: B017 - gradio_client raises various errors for a login page
        Client(url, verbose=False)
    with pytest.raises(Exception):  # noqa: B017
        Client(url, auth=("alice", "wrong"), verbose=False)
    response = httpx.post(url + "/gradio_api/call/txt2img", json={"data": ["x"]}, timeout=30)
    assert response.status_code in (401, 403)


def test_each_image_records_its_author(authed_app):
    app, url = authed_app
    for user, password in (("alice", "wonderland"), ("bob", "builder")):
        client = Client(url, auth=(user, password), verbose=False)
        try:
            result = client.predict(
                prompt=f"{user}'s logo", steps=2, width=64, height=64, seed=1, api_name="/txt2img"
            )
        finally:
            client.close()
        assert app.studio.gallery.get(result["ids"][0]).author == user


def test_the_login_form_accepts_only_known_users(authed_app):
    _, url = authed_app
    with httpx.Client(base_url=url, timeout=30) as http:
        assert http.post("/login", data={"username": "alice", "password": "nope"}).status_code >= 400
        ok = http.post("/login", data={"username": "alice", "password": "wonderland"})
        assert ok.status_code == 200 and http.cookies


@pytest.mark.parametrize("flags", [["--listen"], ["--share"]])
def test_exposed_start_without_auth_refuses_and_says_how(flags, tmp_path):
    result = subprocess.run(
        [sys.executable, "app.py", *flags, "--models-dir", str(tmp_path), "--outputs-dir", str(tmp_path / "o")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Refusing to start" in result.stderr and "--auth" in result.stderr
    assert not (tmp_path / "o").exists()  # refused before anything was set up
