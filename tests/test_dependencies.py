"""Pinned dependencies stay at or above the versions that fixed known advisories (DESIGN.md §5 item 18)."""

import re
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]

# package → (minimum safe version, why)
MINIMUM_SAFE = {
    "gradio": ("6.16", "file-route traversal and SSRF fixes (CVE-2023-51449, CVE-2024-47167 and later ones)"),
    "torch": ("2.10", "torch.load weights_only bypass and other advisories"),
    "pillow": ("12.3", "image decoder advisories"),
    "transformers": ("5.0", "deserialisation advisories in 4.x"),
    "diffusers": ("0.35", "single-file loading without remote code"),
}


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;#]+)", line.strip())
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def test_every_runtime_requirement_is_pinned_exactly():
    lines = [ln.strip() for ln in (ROOT / "requirements.txt").read_text().splitlines()]
    reqs = [ln for ln in lines if ln and not ln.startswith("#")]
    assert reqs and all("==" in ln for ln in reqs), reqs


@pytest.mark.parametrize("package", sorted(MINIMUM_SAFE))
def test_pinned_and_installed_versions_meet_the_minimum(package):
    minimum, why = MINIMUM_SAFE[package]
    pinned = _pins()[package]
    installed = version(package).split("+")[0]
    assert Version(pinned) >= Version(minimum), f"{package} pin {pinned} < {minimum}: {why}"
    assert Version(installed) >= Version(minimum), f"{package} installed {installed} < {minimum}: {why}"
    assert Version(installed) == Version(pinned.split("+")[0]), (
        f"{package}: installed {installed}, pinned {pinned}"
    )
