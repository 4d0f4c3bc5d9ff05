"""Does a wrong login say whether the user exists? Median wrong-login times, known user vs unknown.

Serves the app with 8 hashed logins (default pbkdf2 cost) and sends 24 wrong passwords for known users and
24 for unknown names, each from its own 127.0.x.y address (so the login back-off never kicks in), over
Gradio's `POST /login` and over HTTP Basic auth on `/sdapi/v1`. Prints the medians and their ratio
(goal: close to 1).

    .venv/bin/python -m bench.logins
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROUNDS = 24


def wrong_login_ms(url: str, route: str, name: str, address: str) -> float:
    import httpx

    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(base_url=url, transport=transport, timeout=60) as http:
        http.get("/login_check")
        start = time.perf_counter()
        if route == "/login":
            answer = http.post("/login", data={"username": name, "password": "wrong"})
        else:
            answer = http.get("/sdapi/v1/options", auth=(name, "wrong"))
        took = (time.perf_counter() - start) * 1000
    if answer.status_code not in (400, 401):
        raise SystemExit(f"{route}: expected a refusal, got {answer.status_code}")
    return took


def main() -> None:
    from core.users import hash_password
    from pipelines.tiny import save_tiny
    from tests.helpers import served_app

    tmp = Path(tempfile.mkdtemp())
    save_tiny(tmp / "models" / "tiny-sd1.safetensors", arch="sd1", seed=0)
    users = [f"user{i}" for i in range(8)]
    (tmp / "team.txt").write_text("".join(f"{u}:{hash_password('right')}\n" for u in users))
    with served_app(tmp / "models", tmp / "out", auth_file=[tmp / "team.txt"], api=True) as (_, url):
        for net, route in enumerate(("/login", "basic")):
            known = [wrong_login_ms(url, route, users[i % 8], f"127.{net}.1.{i + 10}") for i in range(ROUNDS)]
            unknown = [
                wrong_login_ms(url, route, f"ghost{i}", f"127.{net}.2.{i + 10}") for i in range(ROUNDS)
            ]
            a, b = statistics.median(known), statistics.median(unknown)
            print(f"{route:6}  known user {a:6.1f} ms   unknown user {b:6.1f} ms   ratio {a / b:.2f}")


if __name__ == "__main__":
    main()
