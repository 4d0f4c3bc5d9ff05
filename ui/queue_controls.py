"""The "Cancel my queued jobs" button: drops every job of the person that has not started yet."""

from __future__ import annotations

import gradio as gr

from studio import Studio
from ui.common import user_of


def build(prefix: str) -> gr.Button:
    return gr.Button(
        "Cancel my queued jobs",
        elem_id=f"{prefix}_cancel_queued",
        scale=1,
        size="sm",
        elem_classes=["easel-cancel-queued"],
    )


def wire(studio: Studio, button: gr.Button) -> None:
    """On click: cancel the person's waiting jobs and job groups (their running job goes on) and say how many."""

    def on_click(request: gr.Request) -> None:
        cancelled = studio.jobs.cancel_queued(user_of(request))
        gr.Info(f"Cancelled {cancelled} waiting job(s)." if cancelled else "You have no jobs waiting.")

    button.click(on_click, inputs=None, outputs=None, api_visibility="private", concurrency_limit=None)
