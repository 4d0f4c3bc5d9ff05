"""A generating tab's session history: every picture made in this browser session, newest first.

Generate, Variations and Make grid replace the tab's Results with their latest run; the history keeps them
all, so candidates being compared stay in reach. Picking a picture there works like picking a result (its
info, its seed for "Reuse", the send-to and compare buttons).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from core.infotext import parse_infotext

LIMIT = 500  # pictures kept per tab (the oldest go first); a session rarely makes this many


@dataclass
class HistoryParts:
    gallery: gr.Gallery
    items: gr.State  # [[path, caption, infotext], …], newest first
    pending: gr.State  # a finished run's pictures, in the same form, until `keep` moves them into `items`


def build(prefix: str) -> HistoryParts:
    """The history gallery (`{prefix}_history`, shown from the first finished run on) and its state."""
    gallery = gr.Gallery(
        label="This session (newest first)", columns=6, height=200, object_fit="contain", format="png",
        elem_id=f"{prefix}_history", elem_classes=["easel-history"], buttons=["download", "fullscreen"],
        interactive=False, allow_preview=False, visible=False,
    )  # fmt: skip
    return HistoryParts(gallery=gallery, items=gr.State([]), pending=gr.State([]))


def entries(paths: list[str], captions: list[str], infotexts: list[str]) -> list[list[str]]:
    """A run's pictures as history entries (what a run puts in `pending`)."""
    return [[p, c, t] for p, c, t in zip(paths, captions, infotexts, strict=True)]


def added(
    items: list[list[str]] | None, run: list[list[str]] | None
) -> tuple[list[list[str]], list[tuple[str, str]]]:
    """The history with a run's pictures put in front (in the run's order), and the gallery's new value."""
    kept = (list(run or []) + list(items or []))[:LIMIT]
    return kept, [(path, caption) for path, caption, _ in kept]


def keep(event: Any, parts: HistoryParts) -> None:
    """After `event` (a run that put its pictures in `pending`) succeeds: move them to the history's front.

    A follow-up step reads the history as it is when the run ends (not as it was when it was clicked), so
    runs that overlap (Generate, then Variations while it runs) all stay in it.
    """

    def on_done(items: list[list[str]], run: list[list[str]]) -> tuple[Any, Any, Any]:
        if not run:
            return gr.skip(), gr.skip(), gr.skip()
        kept, shown = added(items, run)
        return kept, gr.Gallery(value=shown, visible=True), []

    event.success(
        on_done, inputs=[parts.items, parts.pending], outputs=[parts.items, parts.gallery, parts.pending],
        api_visibility="private", queue=False, show_progress="hidden",
    )  # fmt: skip


def seed_of(infotext: str) -> int | None:
    """The seed an infotext names (None when it names none)."""
    try:
        return int(parse_infotext(infotext or "").params.get("Seed", ""))
    except ValueError:
        return None


def picked(items: list[list[str]], index: Any) -> tuple[Any, Any, Any]:
    """Info text, path and seed of the history picture at `index` (skips when there is none)."""
    if not isinstance(index, int) or not 0 <= index < len(items or []):
        return gr.skip(), gr.skip(), gr.skip()
    path, _, infotext = items[index]
    seed = seed_of(infotext)
    return infotext, path, gr.skip() if seed is None else seed


def wire(parts: HistoryParts, info: gr.Textbox, selected: gr.State, last_seed: gr.State) -> None:
    """Picking a history picture: its info in the info box, it becomes the picked picture, its seed reusable."""

    def on_select(items: list[list[str]], evt: gr.SelectData) -> tuple[Any, Any, Any]:
        return picked(items, evt.index)

    parts.gallery.select(
        on_select,
        inputs=parts.items,
        outputs=[info, selected, last_seed],
        api_visibility="private",
        queue=False,
    )
