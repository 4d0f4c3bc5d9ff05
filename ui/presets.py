"""Presets, styles and the aspect-ratio picker of a generating tab (txt2img, img2img, inpaint).

Under the prompts: a Preset dropdown with Apply (`{prefix}_preset`, `{prefix}_preset_apply`), the Styles
multiselect (`{prefix}_styles`, the request's `styles`) and a live "Final prompt and settings"
(`{prefix}_final_prompt`: the prompt the styles compose and the sampler, steps, CFG and size that will be sent,
naming those a preset set). Apply says what it changed (a toast and a line under the preset) and marks the
controls it set ("set by preset …" in their help line, until they are changed by hand). By the size sliders: the Aspect ratio radio
(`{prefix}_aspect`) that sets width × height for the selected model's family. Under the settings: a
"Presets & styles" accordion to save the current settings as a preset, rename or delete your own presets,
import an A1111 styles.csv or Fooocus style JSON, export styles.csv, and see preset files that could not be read.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from pydantic import ValidationError

from core.aspect import CUSTOM, RATIOS, AspectError, ratio_of, size_for
from core.preset_report import applied_message, changes, preset_values, set_by, settings_line
from core.presets import Preset, PresetError, apply_preset
from core.styles import StylesFileError, apply_styles
from studio import Studio
from ui.common import refusals, user_of
from ui.controls import Component, Controls, PresetTools

# Request fields a preset can set, in the order its widgets are updated.
PRESET_FIELDS = (
    "model",
    "prompt",
    "negative_prompt",
    "sampler",
    "schedule_type",
    "steps",
    "cfg_scale",
    "width",
    "height",
    "batch_size",
    "batch_count",
    "styles",
)


def preset_choices(studio: Studio) -> list[str]:
    return [preset.name for preset in studio.presets_book.presets()]


def style_choices(studio: Studio) -> list[str]:
    return [style.name for style in studio.presets_book.styles()]


def family_of(studio: Studio, model: str | None) -> str | None:
    """The family ("sd1", "sd2", "sdxl") of the model a request naming `model` runs on (None: unknown)."""
    name = model or studio.catalog.default_model()
    info = next((m for m in studio.catalog.models() if m.name == name), None)
    return info.family if info is not None else None


def final_prompt(studio: Studio, values: dict[str, Any], applied: dict[str, Any] | None = None) -> Any:
    """The "Final prompt and settings" box: the prompt and negative prompt with the chosen styles applied (as
    the Studio will apply them), and the settings that will be sent, naming those the applied preset set
    (`applied`: {"name", "values"} kept by Apply). Hidden while no style and no preset is in play."""
    names = list(values.get("styles") or [])
    preset = (applied or {}).get("name")
    if not names and not preset:
        return gr.Textbox(value="", visible=False)
    known = {style.name: style for style in studio.presets_book.styles()}
    missing = [name for name in names if name not in known]
    if missing:
        return gr.Textbox(value=f"Unknown style: {', '.join(missing)}", visible=True)
    prompt, negative = apply_styles(
        str(values.get("prompt") or ""), str(values.get("negative_prompt") or ""), [known[n] for n in names]
    )
    lines = [prompt, *([f"Negative prompt: {negative}"] if negative else [])]
    lines.append(settings_line(values, preset, (applied or {}).get("values")))
    return gr.Textbox(value="\n".join(lines), visible=True)


def build_prompt_tools(studio: Studio, controls: Controls, prefix: str) -> PresetTools:
    """Preset picker, Styles and the Final prompt preview, under the prompt boxes."""
    with gr.Row():
        preset = gr.Dropdown(
            choices=preset_choices(studio),
            value=None,
            label="Preset",
            info="Styles, sampler, steps, CFG and an aspect ratio in one click",
            elem_id=f"{prefix}_preset",
            scale=6,
        )
        apply = gr.Button(
            "Apply", elem_id=f"{prefix}_preset_apply", scale=1, min_width=60, size="sm",
            elem_classes=["easel-side-button"],
        )  # fmt: skip
    description = gr.Markdown("", elem_id=f"{prefix}_preset_description")
    styles = gr.Dropdown(
        choices=style_choices(studio),
        value=[],
        multiselect=True,
        label="Styles",
        info="Applied in order: {prompt} in a style is replaced by your prompt, otherwise the style is appended",
        elem_id=f"{prefix}_styles",
    )
    final = gr.Textbox(
        label="Final prompt and settings (what will be sent)",
        lines=3,
        interactive=False,
        visible=False,
        elem_id=f"{prefix}_final_prompt",
    )
    controls.fields[styles] = "styles"  # the box follows the prompts and settings once they exist (connect)
    # other tabs (or teammates) may have added presets and styles since the page was built
    preset.focus(
        lambda: gr.Dropdown(choices=preset_choices(studio)),
        outputs=preset,
        api_visibility="private",
        queue=False,
    )
    styles.focus(
        lambda: gr.Dropdown(choices=style_choices(studio)),
        outputs=styles,
        api_visibility="private",
        queue=False,
    )
    return PresetTools(
        studio=studio,
        prefix=prefix,
        preset=preset,
        apply=apply,
        description=description,
        styles=styles,
        final=final,
    )


def build_aspect(tools: PresetTools) -> gr.Radio:
    """The Aspect ratio radio; place it above the width and height sliders."""
    tools.aspect = gr.Radio(
        [*RATIOS, CUSTOM],
        value=None,
        label="Aspect ratio",
        info="Sets width × height for the selected model: about 512² px for SD 1.x, 768² for SD 2.x, 1024² for SDXL",
        elem_id=f"{tools.prefix}_aspect",
    )
    return tools.aspect


def _size(studio: Studio, ratio: str | None, model: str | None) -> tuple[Any, Any]:
    if not ratio or ratio == CUSTOM:
        return gr.skip(), gr.skip()
    try:
        return size_for(ratio, family_of(studio, model))
    except AspectError as exc:
        raise gr.Error(str(exc)) from None


def connect(controls: Controls) -> None:
    """Wire Apply, the aspect picker and the "Presets & styles" panel (call after the settings exist)."""
    tools = controls.presets
    assert tools is not None and tools.aspect is not None
    assert controls.width is not None and controls.height is not None
    by_name = {name: component for component, name in controls.fields.items()}
    targets = {name: by_name[name] for name in PRESET_FIELDS if name in by_name}
    applied = gr.State({})  # {"name", "values"}: the preset last applied and the values it set
    # 1. applying a preset sets the widgets (size from its aspect ratio for the selected model's family),
    # says what changed and marks what it set; the final prompt and settings follow every widget
    _wire_apply(tools, targets, applied)
    _wire_marks(tools, targets)
    _wire_final(tools, targets, applied)
    # 2. the aspect picker sets the size; moving a size slider shows which ratio (or custom) it now is
    _wire_aspect(tools.studio, controls, tools.aspect)
    # 3. the panel: save / rename / delete presets, import / export styles, broken files
    panel = _build_panel(tools.studio, tools.prefix)
    _wire_presets_panel(tools, targets, panel)
    _wire_styles_panel(tools, panel)


@dataclass
class _Panel:
    """The "Presets & styles" panel's widgets."""

    name: gr.Textbox
    about: gr.Textbox
    save: gr.Button
    rename: gr.Button
    delete: gr.Button
    upload: gr.File
    export: gr.Button
    exported: gr.File
    problems: gr.Markdown


def _mark_key(field: str) -> str:
    """The setting (as core.preset_report names it) a request field belongs to."""
    return "size" if field in ("width", "height") else field


def _marked(info: str | None, preset: str | None) -> str:
    """A control's help line, saying that a preset set it."""
    if not preset:
        return info or ""
    return f"Set by preset {preset!r} · {info}" if info else f"Set by preset {preset!r}"


def _wire_apply(tools: PresetTools, targets: dict[str, Component], applied: gr.State) -> None:
    studio, aspect = tools.studio, tools.aspect
    assert aspect is not None
    infos = {component: getattr(component, "info", None) for component in [*targets.values(), aspect]}

    def on_apply(data: dict[Any, Any]) -> dict[Any, Any]:
        name = data[tools.preset]
        if not name:
            raise gr.Error("Pick a preset first.")
        try:
            preset = studio.presets_book.get(name)
        except PresetError as exc:
            raise gr.Error(str(exc)) from None
        current = {field: data[component] for field, component in targets.items()}
        usable = {m.name for m in studio.catalog.models() if not m.refusal}
        if preset.model and preset.model not in usable:
            gr.Warning(f"The preset's model {preset.model!r} is not here; keeping {current.get('model')!r}.")
            preset = preset.model_copy(update={"model": None})
        family = family_of(studio, preset.model or current.get("model"))
        try:
            values = apply_preset(preset, current, family=family)
        except AspectError as exc:
            raise gr.Error(str(exc)) from None
        said = changes(current, values)
        gr.Info(applied_message(preset.name, said))
        record = {"name": preset.name, "values": preset_values(preset, values)}
        updates = _widget_updates(studio, targets, infos, preset, values)
        updates[aspect] = gr.Radio(
            value=preset.aspect
            if preset.aspect in RATIOS
            else ratio_of(values["width"], values["height"]) or CUSTOM,
            info=_marked(infos[aspect], preset.name if "size" in set_by(preset) else None),
        )
        done = ", ".join(said) if said else "the settings already had its values"
        updates[tools.description] = f"{preset.description}\n\n**Applied:** {done}.".strip()
        updates[tools.final] = final_prompt(studio, values, record)
        updates[applied] = record
        return updates

    inputs = {tools.preset, *targets.values()}
    outputs = [*targets.values(), aspect, tools.description, tools.final, applied]
    # queued, so that its toast (what changed) is shown
    for event in (tools.apply.click, tools.preset.input):
        event(on_apply, inputs=inputs, outputs=outputs, api_visibility="private", show_progress="hidden")


def _widget_updates(
    studio: Studio,
    targets: dict[str, Component],
    infos: dict[Component, str | None],
    preset: Preset,
    values: dict[str, Any],
) -> dict[Any, Any]:
    """Each widget's new value, and its help line saying so when the preset set it."""
    marks = set_by(preset)
    updates: dict[Any, Any] = {}
    for field, component in targets.items():
        if field in ("prompt", "negative_prompt"):
            updates[component] = values[field]
            continue
        info = _marked(infos[component], preset.name if _mark_key(field) in marks else None)
        if field == "styles":  # styles imported since the page was built are offered too
            updates[component] = gr.Dropdown(
                choices=style_choices(studio), value=list(values.get("styles") or []), info=info
            )
        else:
            updates[component] = type(component)(value=values[field], info=info)
    return updates


def _wire_marks(tools: PresetTools, targets: dict[str, Component]) -> None:
    """A control changed by hand is no longer "set by preset": its own help line comes back."""
    assert tools.aspect is not None
    controls = [c for f, c in targets.items() if f not in ("prompt", "negative_prompt")] + [tools.aspect]

    def restore(component: Component) -> Any:
        kind, info = type(component), getattr(component, "info", None) or ""
        return lambda: kind(info=info)

    for component in controls:
        component.input(
            restore(component),
            outputs=component,
            api_visibility="private",
            queue=False,
            show_progress="hidden",
        )


def _wire_final(tools: PresetTools, targets: dict[str, Component], applied: gr.State) -> None:
    """The final prompt and settings follow the prompts, the styles and every setting."""

    def on_change(data: dict[Any, Any]) -> Any:
        values = {field: data[component] for field, component in targets.items()}
        return final_prompt(tools.studio, values, data[applied])

    for component in targets.values():
        component.change(
            on_change,
            inputs={*targets.values(), applied},
            outputs=tools.final,
            api_visibility="private",
            queue=False,
            show_progress="hidden",
        )


def _wire_aspect(studio: Studio, controls: Controls, aspect: gr.Radio) -> None:
    aspect.input(
        lambda ratio, model: _size(studio, ratio, model),
        inputs=[aspect, controls.model],
        outputs=[controls.width, controls.height],
        api_visibility="private",
        queue=False,
    )
    controls.model.change(
        lambda ratio, model: _size(studio, ratio, model),
        inputs=[aspect, controls.model],
        outputs=[controls.width, controls.height],
        api_visibility="private",
        queue=False,
    )
    for slider in (controls.width, controls.height):
        slider.input(
            lambda w, h: ratio_of(int(w), int(h)) or CUSTOM,
            inputs=[controls.width, controls.height],
            outputs=aspect,
            api_visibility="private",
            queue=False,
        )


def _build_panel(studio: Studio, prefix: str) -> _Panel:
    with gr.Accordion("Presets & styles", open=False, elem_id=f"{prefix}_presets_panel"):
        with gr.Row():
            name = gr.Textbox(label="Preset name", max_lines=1, elem_id=f"{prefix}_preset_name", scale=2)
            about = gr.Textbox(label="Description", max_lines=1, elem_id=f"{prefix}_preset_about", scale=3)
        with gr.Row(equal_height=True):
            # short labels, so that none wraps and the three stay the same height
            save = gr.Button("Save as preset", elem_id=f"{prefix}_preset_save", size="sm", min_width=100)
            rename = gr.Button("Rename preset", elem_id=f"{prefix}_preset_rename", size="sm", min_width=100)
            delete = gr.Button(
                "Delete preset", variant="stop", elem_id=f"{prefix}_preset_delete", size="sm", min_width=100
            )
        gr.Markdown(
            "Save stores the current settings under the preset name; Rename and Delete act on the preset picked "
            "in the Preset list. Your presets and styles are shared with the team (in `presets/user/`), and only you "
            "or an admin can change them; shipped presets cannot be changed. Styles can be imported from an "
            "AUTOMATIC1111 `styles.csv` or a Fooocus style `.json`; changing a shipped style, or a teammate's, "
            "is for admins (give your version a new name)."
        )
        upload = gr.File(
            label="Import styles (styles.csv or Fooocus .json)",
            file_types=[".csv", ".json"],
            type="binary",
            height=150,
            elem_id=f"{prefix}_styles_import",
        )
        export = gr.Button("Export styles.csv", elem_id=f"{prefix}_styles_export", size="sm")
        exported = gr.File(
            label="styles.csv", visible=False, interactive=False, height=60, elem_id=f"{prefix}_styles_file"
        )
        problems = gr.Markdown(problems_text(studio), elem_id=f"{prefix}_preset_problems")
    return _Panel(
        name=name, about=about, save=save, rename=rename, delete=delete, upload=upload, export=export,
        exported=exported, problems=problems,
    )  # fmt: skip


def _refreshed(studio: Studio, selected: str | None = None) -> tuple[Any, Any, Any]:
    """New choices for the Preset and Styles lists, and the problems text."""
    return (
        gr.Dropdown(choices=preset_choices(studio), value=selected),
        gr.Dropdown(choices=style_choices(studio)),
        problems_text(studio),
    )


def _wire_presets_panel(tools: PresetTools, targets: dict[str, Component], panel: _Panel) -> None:
    """Save, Rename and Delete."""
    studio, aspect, name, about = tools.studio, tools.aspect, panel.name, panel.about

    def refreshed(selected: str | None = None) -> tuple[Any, Any, Any]:
        return _refreshed(studio, selected)

    def on_save(data: dict[Any, Any], request: gr.Request) -> tuple[Any, ...]:
        preset = preset_from_widgets(
            data[name], data[about], {f: data[c] for f, c in targets.items()}, data[aspect]
        )
        try:
            with refusals():
                studio.presets.save_preset(preset, user=user_of(request))
        except PresetError as exc:
            raise gr.Error(str(exc)) from None
        gr.Info(f"Preset {preset.name!r} saved.")
        return refreshed(preset.name)

    # Rename, delete and import are asked for first, in a step with no outputs: a refusal (not yours, a
    # shipped preset, a bad file) is an error toast that leaves the lists as they were.
    def may_change(verb: str):
        def check(selected: str | None, request: gr.Request) -> None:
            if not selected:
                raise gr.Error(f"Pick the preset to {verb} in the Preset list first.")
            try:
                with refusals():
                    studio.presets.check_preset(selected, user_of(request), verb)
            except PresetError as exc:
                raise gr.Error(str(exc)) from None

        return check

    def on_rename(old: str, new: str, request: gr.Request) -> tuple[Any, ...]:
        try:
            with refusals():
                renamed = studio.presets.rename_preset(old, (new or "").strip(), user=user_of(request))
        except PresetError as exc:
            raise gr.Error(str(exc)) from None
        return refreshed(renamed.name)

    def on_delete(selected: str, request: gr.Request) -> tuple[Any, ...]:
        try:
            with refusals():
                studio.presets.delete_preset(selected, user=user_of(request))
        except PresetError as exc:
            raise gr.Error(str(exc)) from None
        gr.Info(f"Preset {selected!r} deleted.")
        return refreshed(None)

    panel_outputs = [tools.preset, tools.styles, panel.problems]
    private = {"api_visibility": "private", "queue": False}
    panel.save.click(
        on_save, inputs={name, about, aspect, *targets.values()}, outputs=panel_outputs, **private
    )
    asked = {"api_visibility": "private"}  # queued: an error answer of an unqueued event shows no toast
    panel.rename.click(may_change("rename"), inputs=tools.preset, outputs=None, **asked).success(
        on_rename, inputs=[tools.preset, name], outputs=panel_outputs, **private
    )
    panel.delete.click(may_change("delete"), inputs=tools.preset, outputs=None, **asked).success(
        on_delete, inputs=[tools.preset], outputs=panel_outputs, **private
    )


def _wire_styles_panel(tools: PresetTools, panel: _Panel) -> None:
    """Import styles (asked first, like Rename and Delete) and export styles.csv."""
    studio, upload = tools.studio, panel.upload

    def refreshed(selected: str | None = None) -> tuple[Any, Any, Any]:
        return _refreshed(studio, selected)

    def may_import(data: bytes | None, request: gr.Request) -> None:
        if data:
            try:
                with refusals():
                    studio.presets.styles_to_import(data, "auto", user=user_of(request))
            except (StylesFileError, PresetError) as exc:
                raise gr.Error(f"Styles not imported: {exc}") from None

    def on_import(data: bytes | None, request: gr.Request) -> tuple[Any, ...]:
        if not data:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        try:
            with refusals():
                imported = studio.presets.import_styles(data, "auto", user=user_of(request))
        except (StylesFileError, PresetError) as exc:
            raise gr.Error(f"Styles not imported: {exc}") from None
        gr.Info(
            f"{len(imported)} new or changed style(s) imported." if imported else "No new or changed styles."
        )
        _, styles, problems_update = refreshed()
        return gr.skip(), styles, problems_update, None

    def on_export() -> Any:
        folder = Path(tempfile.mkdtemp(prefix="easel-styles-"))
        path = folder / "styles.csv"
        path.write_bytes(studio.presets_book.export_styles())
        return gr.File(value=str(path), visible=True)

    panel_outputs = [tools.preset, tools.styles, panel.problems]
    private = {"api_visibility": "private", "queue": False}
    asked = {"api_visibility": "private"}  # queued: an error answer of an unqueued event shows no toast
    upload.upload(may_import, inputs=upload, outputs=None, **asked).success(
        on_import, inputs=upload, outputs=[*panel_outputs, upload], **private
    )
    panel.export.click(on_export, outputs=panel.exported, **private)


def preset_from_widgets(name: str, description: str, values: dict[str, Any], aspect: str | None) -> Preset:
    """A preset of the current settings (not the prompt or model): styles, sampler, steps, CFG, batch, and
    the aspect ratio when one is picked (so that it suits any model), else the fixed width × height."""
    fields: dict[str, Any] = {
        "name": (name or "").strip(),
        "description": (description or "").strip(),
        "styles": list(values.get("styles") or []),
        "sampler": values.get("sampler"),
        "schedule_type": values.get("schedule_type"),
    }
    for key, kind in (("steps", int), ("cfg_scale", float), ("batch_size", int), ("batch_count", int)):
        if values.get(key) is not None:
            fields[key] = kind(values[key])
    if aspect in RATIOS:
        fields["aspect"] = aspect
    elif values.get("width") and values.get("height"):
        fields["width"], fields["height"] = int(values["width"]), int(values["height"])
    if not fields["name"]:
        raise gr.Error("Type a name for the preset first.")
    try:
        return Preset(**fields)
    except ValidationError as exc:
        message = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise gr.Error(f"Preset not saved: {message}") from None


def problems_text(studio: Studio) -> str:
    problems = studio.presets_book.problems()
    if not problems:
        return ""
    lines = "\n".join(f"- `{p.file}`: {p.reason}" for p in problems)
    return f"**{len(problems)} preset or styles file(s) could not be read and were skipped:**\n{lines}"
