"""No client input makes a `/sdapi/v1` route answer 5xx: every route (enumerated from the app's router) gets
bodies that are not JSON, not objects, nested deep, with every known field of the wrong type, huge numbers and
NaN. A client's mistake is a 4xx that names the field; a 5xx is a bug."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from api import schemas
from api.listings import InterrogateBody
from api.sdapi import PREFIX, build_router
from core.a1111_options import DEFAULTS, OPTION_KEYS
from tests.helpers import served_app

SMALL = {"prompt": "fuzz", "steps": 1, "width": 64, "height": 64}
BODY_MODELS = {
    "/txt2img": schemas.Txt2ImgBody,
    "/img2img": schemas.Img2ImgBody,
    "/png-info": schemas.PngInfoBody,
    "/extra-single-image": schemas.ExtraSingleImageBody,
    "/interrogate": InterrogateBody,
}
GENERIC_FIELDS = ("prompt", "image", "steps", "model", "name")


def _deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"y": 1}
    for _ in range(levels):
        value = {"x": value}
    return value


def wrong_values(default: object) -> list[object]:
    """Values of the wrong type for a field whose default is `default` (None: any type may fit, so objects)."""
    if isinstance(default, bool):
        return [{"x": 1}, "certainly not"]
    if isinstance(default, int | float):
        return ["many", {"x": 1}, [1, 2]]
    if isinstance(default, str):
        return [12345, {"x": 1}, ["a"]]
    if isinstance(default, list):
        return ["x", {"x": 1}]
    return [{"x": {"y": 1}}, [[1]]]


@pytest.fixture(scope="module")
def served(tiny_models_dir, tmp_path_factory) -> Iterator[tuple[Any, httpx.Client]]:
    with served_app(tiny_models_dir, tmp_path_factory.mktemp("outputs"), queue_size=8) as (app, url):
        app.page.app.include_router(build_router(app.studio, None, settings=app.settings))
        with httpx.Client(base_url=url, timeout=120) as client:
            yield app, client


def _walk(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """(full path, route) of every API route, through included routers (FastAPI keeps them wrapped)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _walk(included.routes, prefix + route.include_context.prefix)
        elif isinstance(route, APIRoute):
            yield prefix + route.path, route


def sdapi_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every `/sdapi/v1` route the app serves, plus /internal/ping."""
    found = set()
    for path, route in _walk(app.page.app.routes):
        if path.startswith(PREFIX) or path == "/internal/ping":
            found.update((method, path) for method in route.methods if method != "HEAD")
    return sorted(found)


def field_cases(path: str) -> list[tuple[str, dict[str, Any]]]:
    """(field, body) for each known field of the route and wrong value (the rest of the body valid where that is
    cheap); the field is what a 422 must name."""
    short = path.removeprefix(PREFIX)
    cases: list[tuple[str, dict[str, Any]]] = []
    if short == "/options":
        for key in sorted(OPTION_KEYS):
            cases += [(key, {key: value}) for value in wrong_values(DEFAULTS[key])]
        return cases
    model = BODY_MODELS.get(short)
    fields = {name: info.default for name, info in model.model_fields.items()} if model else {}
    fields.update({name: None for name in GENERIC_FIELDS if name not in fields})
    base = SMALL if short in ("/txt2img", "/img2img") else {}
    for name, default in sorted(fields.items()):
        cases += [(name, {**base, name: value}) for value in wrong_values(default)]
    if short == "/txt2img":  # every option as a per-job override, of the wrong type
        for key in sorted(OPTION_KEYS - {"sd_model_checkpoint"}):
            value = wrong_values(DEFAULTS[key])[0]
            cases.append((f"override_settings.{key}", {**SMALL, "override_settings": {key: value}}))
        cases.append(("override_settings", {**SMALL, "override_settings": "not an object"}))
    return cases


def raw_cases(path: str) -> list[bytes]:
    """Bodies that are not what any route takes: not JSON, not an object, nested deep, huge numbers, NaN."""
    numbers = ("steps", "width", "height", "cfg_scale", "seed", "n_iter", "batch_size", "denoising_strength",
               "jpeg_quality", "CLIP_stop_at_last_layers", "eta_noise_seed_delta", "upscaling_resize")  # fmt: skip
    huge = {name: 10**40 for name in numbers}
    return [
        b"this is not json",
        b"\xff\xfe\x00garbage",
        b"[]",
        b'"a string"',
        b"null",
        b"12",
        json.dumps({**SMALL, "x": _deep(40)}).encode(),
        json.dumps(_deep(500)).encode(),
        b"[" * 100_000,
        json.dumps({**SMALL, **huge}).encode(),
        json.dumps({**SMALL, **{name: -1e308 for name in numbers}}).encode(),
        ("{" + ", ".join(f'"{name}": NaN' for name in numbers) + "}").encode(),
        ("{" + ", ".join(f'"{name}": Infinity' for name in numbers) + "}").encode(),
        json.dumps({**SMALL, "override_settings": {"sd_vae": "../../etc/passwd"}}).encode(),
        json.dumps({**SMALL, "styles": [{"x": 1}], "init_images": [12], "image": 5}).encode(),
    ]


def test_every_route_is_found(served):
    app, _ = served
    paths = {path for _, path in sdapi_routes(app)}
    for expected in (
        "/txt2img",
        "/img2img",
        "/options",
        "/cmd-flags",
        "/embeddings",
        "/sd-vae",
        "/interrogate",
    ):
        assert PREFIX + expected in paths
    assert "/internal/ping" in paths and len(paths) >= 30


def test_no_malformed_body_gets_a_5xx(served):
    app, client = served
    failures = []
    sent = 0
    for method, path in sdapi_routes(app):
        for body in raw_cases(path):
            response = client.request(
                method, path, content=body, headers={"content-type": "application/json"}
            )
            sent += 1
            if response.status_code >= 500:
                failures.append(
                    f"{method} {path} {body[:60]!r}: {response.status_code} {response.text[:200]}"
                )
        if method == "GET":
            response = client.get(path, params={"skip_current_image": "maybe", "x": "[" * 50})
            sent += 1
            if response.status_code >= 500:
                failures.append(f"GET {path} with odd query: {response.status_code} {response.text[:200]}")
    assert not failures, "\n".join(failures)
    assert sent > 500


def test_no_wrong_field_type_gets_a_5xx_and_422s_name_the_field(served):
    app, client = served
    statuses: Counter[int] = Counter()
    failures = []
    for method, path in sdapi_routes(app):
        if method != "POST":
            continue
        for name, body in field_cases(path):
            response = client.post(path, json=body)
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                failures.append(
                    f"POST {path} {json.dumps(body)[:120]}: {response.status_code} {response.text[:200]}"
                )
            elif response.status_code == 422 and path in (PREFIX + "/options", PREFIX + "/txt2img"):
                detail = str(response.json().get("detail", ""))
                if name not in detail:
                    failures.append(
                        f"POST {path} {json.dumps(body)[:120]}: 422 without naming {name}: {detail}"
                    )
    assert not failures, "\n".join(failures[:40])
    assert statuses[422] > 800, statuses  # the cases reached the validation (not a 404 or 401 wall)
