"""Per-browser memory of a tab's settings: what was used for the last Generate comes back after a reload.

Kept in the browser's localStorage by a few lines of JavaScript (no server round trip), so it is per
person and never shared. Values that are no longer offered (a removed model, say) are not restored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import gradio as gr


def _choice_values(component: gr.components.Component) -> list[Any] | None:
    choices = getattr(component, "choices", None)
    if not isinstance(component, gr.Dropdown) or choices is None:
        return None
    return [c[1] if isinstance(c, tuple | list) else c for c in choices]


def remember(
    page: gr.Blocks,
    key: str,
    fields: Mapping[gr.components.Component, str],
    trigger: gr.Button,
    skip: Iterable[str] = (),
) -> None:
    """Save `fields` in the browser when `trigger` is clicked; restore them when the page loads."""
    skipped = set(skip)
    kept = [(component, name) for component, name in fields.items() if name not in skipped]
    components = [component for component, _ in kept]
    names = json.dumps([name for _, name in kept])
    allowed = json.dumps({name: _choice_values(component) for component, name in kept})
    storage_key = json.dumps(f"easel.{key}.settings")

    save_js = f"""(...values) => {{
        const names = {names};
        try {{
            localStorage.setItem({storage_key}, JSON.stringify(Object.fromEntries(names.map((n, i) => [n, values[i]]))));
        }} catch (e) {{ console.warn("settings not saved", e); }}
    }}"""
    restore_js = f"""(...current) => {{
        const names = {names}, allowed = {allowed};
        let saved = {{}};
        try {{ saved = JSON.parse(localStorage.getItem({storage_key}) || "{{}}") || {{}}; }} catch (e) {{ saved = {{}}; }}
        return names.map((n, i) => {{
            if (!(n in saved) || saved[n] === null) return current[i];
            if (allowed[n] && !allowed[n].includes(saved[n])) return current[i];
            return saved[n];
        }});
    }}"""
    trigger.click(None, inputs=components, outputs=None, js=save_js, queue=False, api_visibility="private")
    page.load(
        None, inputs=components, outputs=components, js=restore_js, queue=False, api_visibility="private"
    )
