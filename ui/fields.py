"""Widgets for request fields, built from the request model so that limits, defaults and help text have one
source: the pydantic `Field` (its `ge`/`gt`/`le`/`lt`/`multiple_of`, `default` and `description`).

`slider(Txt2ImgRequest, "steps", label="Sampling steps", elem_id=...)` is a slider from 1 to 150 starting at 20.
Keyword arguments are passed on to the Gradio component; `minimum`, `maximum`, `step`, `value` and `info` given
there win over the model's (a UI may offer less than the model accepts, never more).
"""

from __future__ import annotations

from typing import Any

import annotated_types as at
import gradio as gr
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

# `info=FROM_MODEL` (the default) shows the field's description; `info=None` shows none.
FROM_MODEL: Any = object()


def field_info(model: type[BaseModel], name: str) -> FieldInfo:
    """The model's field `name` (KeyError naming the model when it has none)."""
    try:
        return model.model_fields[name]
    except KeyError:
        raise KeyError(f"{model.__name__} has no field {name!r}") from None


def limits(model: type[BaseModel], name: str) -> dict[str, float]:
    """`minimum`, `maximum` and `step` of the field, where its constraints give them. An exclusive bound
    (`gt`/`lt`) gives no limit: the caller says where its control starts."""
    found: dict[str, float] = {}
    for item in field_info(model, name).metadata:
        if isinstance(item, at.Ge):
            found["minimum"] = item.ge  # type: ignore[assignment]
        elif isinstance(item, at.Le):
            found["maximum"] = item.le  # type: ignore[assignment]
        elif isinstance(item, at.MultipleOf):
            found["step"] = item.multiple_of  # type: ignore[assignment]
    return found


def default(model: type[BaseModel], name: str) -> Any:
    """The field's default (None for a required field)."""
    value = field_info(model, name).get_default(call_default_factory=True)
    return None if value is PydanticUndefined else value


def _common(model: type[BaseModel], name: str, info: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    described = field_info(model, name).description if info is FROM_MODEL else info
    return {"value": default(model, name), "info": described, **kwargs}


def slider(model: type[BaseModel], name: str, *, info: Any = FROM_MODEL, **kwargs: Any) -> gr.Slider:
    """A slider over the field's range, at its default; whole steps for an int field unless `step` is given."""
    bounds = limits(model, name)
    annotation = field_info(model, name).annotation
    step = bounds.pop("step", 1 if annotation is int else None)
    if step is not None:
        kwargs.setdefault("step", step)
    return gr.Slider(**{**bounds, **_common(model, name, info, kwargs)})


def number(model: type[BaseModel], name: str, *, info: Any = FROM_MODEL, **kwargs: Any) -> gr.Number:
    """A number box at the field's default (limits only where given: the model checks them at submit)."""
    return gr.Number(**_common(model, name, info, kwargs))


def checkbox(model: type[BaseModel], name: str, *, info: Any = FROM_MODEL, **kwargs: Any) -> gr.Checkbox:
    """A checkbox at the field's default."""
    return gr.Checkbox(**_common(model, name, info, kwargs))


def dropdown(
    model: type[BaseModel], name: str, choices: Any, *, info: Any = FROM_MODEL, **kwargs: Any
) -> gr.Dropdown:
    """A dropdown of `choices` at the field's default."""
    return gr.Dropdown(choices, **_common(model, name, info, kwargs))
