"""Attacks on the served app over raw HTTP: DNS rebinding (a foreign Host), odd Origins, deeply nested JSON,
guessing passwords (back-off on the login form and on HTTP Basic auth), finding user names by timing, and
sessions (cookie lifetime, logout that a cross-site page cannot trigger, the route list hidden from strangers).

Each client may speak from its own loopback address (127.0.0.x), as different attackers or users would.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator

import httpx
import pytest

from core.users import hash_password
from tests.helpers import served_app

SMALL = {"steps": 1, "width": 64, "height": 64}
ITERATIONS = 50_000  # a real pbkdf2 hash, cheaper than the default so that the test stays quick
TIMED_USERS = ("carol", "dave", "erin", "frank")  # whose wrong passwords are timed


def client(url: str, address: str = "127.0.0.1", **kwargs: object) -> httpx.Client:
    """An HTTP client whose connections come from `address` (any 127.x.y.z reaches the local server)."""
    return httpx.Client(
        base_url=url, transport=httpx.HTTPTransport(local_address=address), timeout=60, **kwargs
    )


# --- a default install without logins: DNS rebinding, odd Origins, deep JSON ----------------------------------


@pytest.fixture(scope="module")
def open_app(tiny_models_dir, tmp_path_factory) -> Iterator[tuple[object, str, int]]:
    outputs = tmp_path_factory.mktemp("outputs")
    with served_app(
        tiny_models_dir, outputs, api=True, preview_every=0, allowed_hosts=["studio.example.com", "*.team.example"]
    ) as (app, url):  # fmt: skip
        yield app, url, app.settings.port


def test_a_foreign_host_name_is_refused_before_any_handler(open_app):
    app, url, port = open_app
    with client(url) as http:
        made = http.post("/sdapi/v1/txt2img", json={"prompt": "mine", "seed": 3, **SMALL})
        assert made.status_code == 200
        image = app.studio.gallery.recent(limit=1)[0]
        file_route = f"/gradio_api/file={app.studio.gallery.file_path(image.id)}"
        assert http.get(file_route).status_code == 200
        count = app.studio.gallery.count()
        rebind = {
            "Host": f"rebind.attacker.example:{port}",
            "Origin": f"http://rebind.attacker.example:{port}",
        }
        for method, path in (
            ("POST", "/sdapi/v1/txt2img"),
            ("GET", "/config"),
            ("GET", file_route),
            ("GET", "/"),
        ):
            body = {"prompt": "stolen", **SMALL} if method == "POST" else None
            response = http.request(method, path, headers=rebind, json=body)
            assert response.status_code == 400, (path, response.status_code)
            assert "stolen" not in response.text and "parameters" not in response.text
        assert app.studio.gallery.count() == count  # nothing was generated
        for host in ("localhost", f"localhost:{port}", f"[::1]:{port}", f"127.0.0.1:{port}", f"studio.example.com:{port}",
                     f"pc.team.example:{port}", "STUDIO.example.com."):  # fmt: skip
            assert http.get("/config", headers={"Host": host}).status_code == 200, host
        for host in (f"team.example:{port}", f"studio.example.com.evil.example:{port}", "", "a b", "[::1"):
            assert http.get("/config", headers={"Host": host}).status_code == 400, host


def test_an_odd_origin_is_refused_with_403_never_a_500(open_app):
    _, url, port = open_app
    with client(url) as http:
        for origin in (f"http://127.0.0.1:{port}.evil.example", "http://[::1", "http://127.0.0.1:99999", "null",
                       f"http://evil.example:{port}"):  # fmt: skip
            response = http.post(
                "/sdapi/v1/txt2img", json={"prompt": "x", **SMALL}, headers={"Origin": origin}
            )
            assert response.status_code == 403, (origin, response.status_code)


def test_deeply_nested_json_is_a_422_naming_the_problem(open_app):
    _, url, _ = open_app
    with client(url) as http:
        for depth in (200_000, 100):
            body = '{"prompt": "x", "deep": ' + "[" * depth + "]" * depth + "}"
            response = http.post(
                "/sdapi/v1/txt2img", content=body, headers={"Content-Type": "application/json"}
            )
            assert response.status_code == 422, (depth, response.status_code)
            assert "nested" in response.json()["detail"]


# --- logins -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def team_app(tiny_models_dir, tmp_path_factory) -> Iterator[tuple[object, str]]:
    auth_file = tmp_path_factory.mktemp("auth") / "team.txt"
    lines = [f"alice:{hash_password('wonderland', iterations=ITERATIONS)}",
             f"bob:{hash_password('builder', iterations=ITERATIONS)}",
             f"root:{hash_password('toor', iterations=ITERATIONS)}:admin"]  # fmt: skip
    lines += [f"{name}:{hash_password('secret', iterations=ITERATIONS)}" for name in TIMED_USERS]
    auth_file.write_text("\n".join(lines) + "\n")
    with served_app(
        tiny_models_dir, tmp_path_factory.mktemp("outputs"), auth_file=[auth_file], api=True, session_hours=2.0
    ) as (app, url):  # fmt: skip
        yield app, url


def test_guessing_on_the_login_form_backs_off_but_others_still_log_in(team_app):
    _, url = team_app
    with client(url, "127.0.0.11") as attacker:
        answers = [
            attacker.post("/login", data={"username": "alice", "password": f"guess{i}"}).status_code
            for i in range(12)
        ]
        assert answers[:10] == [400] * 10 and answers[10:] == [429, 429]
        locked = attacker.post("/login", data={"username": "alice", "password": "wonderland"})
        assert locked.status_code == 429 and int(locked.headers["Retry-After"]) >= 1  # no password is checked
        assert "try again" in locked.json()["detail"]
    with client(url, "127.0.0.12") as bob:  # another user, another address
        assert bob.post("/login", data={"username": "bob", "password": "builder"}).status_code == 200
    with client(url, "127.0.0.13") as alice:  # alice herself is locked for a while: guesses were aimed at her
        assert alice.post("/login", data={"username": "alice", "password": "wonderland"}).status_code == 429


def test_guessing_over_basic_auth_backs_off_too(team_app):
    _, url = team_app
    with client(url, "127.0.0.21") as attacker:
        answers = [
            attacker.get("/sdapi/v1/options", auth=("root", f"guess{i}")).status_code for i in range(11)
        ]
        assert answers[:10] == [401] * 10 and answers[10] == 429
        locked = attacker.get("/sdapi/v1/options", auth=("root", "toor"))
        assert locked.status_code == 429 and int(locked.headers["Retry-After"]) >= 1
        # spraying other names from the same address: the address is locked as well
        assert attacker.get("/sdapi/v1/options", auth=("bob", "builder")).status_code == 429
    with client(url, "127.0.0.22") as bob:
        assert bob.get("/sdapi/v1/options", auth=("bob", "builder")).status_code == 200


def test_a_wrong_name_takes_as_long_as_a_wrong_password(team_app):
    """Timing must not tell which user names exist. Each attempt comes from its own address and each known
    name gets fewer than 10 wrong passwords, so the back-off never answers in their place."""
    _, url = team_app
    known, unknown = [], []
    for i in range(8 * len(TIMED_USERS)):
        for name, samples, octet in (
            (TIMED_USERS[i % len(TIMED_USERS)], known, 1),
            (f"nobody{i}", unknown, 2),
        ):
            with client(url, f"127.0.{octet}.{i + 10}") as http:
                http.get("/login_check")  # connect first: time only the login itself
                started = time.perf_counter()
                status = http.post("/login", data={"username": name, "password": f"wrong{i}"}).status_code
                samples.append(time.perf_counter() - started)
                assert status == 400
    known_ms, unknown_ms = statistics.median(known) * 1000, statistics.median(unknown) * 1000
    assert 0.5 < known_ms / unknown_ms < 2, f"known user {known_ms:.1f} ms, unknown {unknown_ms:.1f} ms"


def test_sessions_expire_and_logout_needs_a_post(team_app):
    app, url = team_app
    with client(url, "127.0.0.31") as bob:
        login = bob.post("/login", data={"username": "bob", "password": "builder"})
        assert login.status_code == 200
        cookies = login.headers.get_list("set-cookie")
        assert cookies and all("Max-Age=7200" in c for c in cookies if c.startswith("access-token"))
        assert bob.get("/config").status_code == 200
        # an image tag on another site cannot log anyone out
        assert bob.get("/logout").status_code == 405
        assert bob.get("/config").status_code == 200
        # the page's own way out
        out = bob.post("/logout")
        assert out.status_code == 303
        bob.cookies.clear()
        for name, value in login.cookies.items():  # even a copy of the old cookie is worthless now
            bob.cookies.set(name, value)
        assert bob.get("/config").status_code == 401
    # a session older than --session-hours is forgotten by the server
    with client(url, "127.0.0.32") as carol:  # (root and alice are locked by the guessing tests)
        assert carol.post("/login", data={"username": "carol", "password": "secret"}).status_code == 200
        assert carol.get("/config").status_code == 200
        app.sessions.clock = lambda: time.time() + 2 * 3600 + 1
        try:
            assert carol.get("/config").status_code == 401
        finally:
            app.sessions.clock = time.time


def test_the_route_list_is_not_served_to_strangers(team_app):
    _, url = team_app
    with client(url, "127.0.0.41") as http:
        for path in ("/openapi.json", "/docs", "/redoc"):
            assert http.get(path).status_code in (401, 403, 404), path
        assert http.get("/gradio_api/openapi.json").status_code in (401, 403, 404)
