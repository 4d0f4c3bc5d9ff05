"""Easel's errors: a few bases that say what kind of trouble it is, and the errors of each service beside them.

The front ends map the bases, never the single classes: over the API (api/errors.py) a `RequestRefused` is a
422, `NotAllowed` a 403, `NotFound` a 404, `QueueFull` a 503 (`TooManyQueued` a 429) and `JobFailed` a 500; in
the page (ui/common.py) each is a message that says why. Every error Easel raises on purpose derives from one
of these bases. The bases also derive from the built-in exception their errors always were (`ValueError`,
`PermissionError`, `KeyError`, `RuntimeError`), so code that catches those keeps catching them.

The errors of pipelines/, gallery/ and api/ live in their own modules and derive from these bases.
"""

from __future__ import annotations

__all__ = [
    "AdminOnly",
    "AspectError",
    "AuthConfigError",
    "ConfigError",
    "EaselError",
    "ImageInputError",
    "JobCancelled",
    "JobFailed",
    "LoadFailed",
    "NotAllowed",
    "NotFound",
    "NotYourJob",
    "OptionsError",
    "PlotError",
    "PresetError",
    "QueueFull",
    "RecipeError",
    "RequestRefused",
    "StyleProblem",
    "StylesFileError",
    "TooManyQueued",
    "UnknownLora",
    "UnknownModel",
    "UnknownPreset",
    "UnknownStyle",
    "UnknownTool",
]


# --- the bases ------------------------------------------------------------------------------------------


class EaselError(Exception):
    """Any error Easel raises on purpose; its message is written for the person who has to act on it."""


class RequestRefused(EaselError, ValueError):
    """The request cannot be done as it is; the message says what to change (HTTP 422, a message in the page)."""


class NotAllowed(EaselError, PermissionError):
    """The user may not do this to something that is not theirs; the message says why (HTTP 403)."""


class NotFound(EaselError, KeyError):
    """The thing asked for is not there (HTTP 404)."""


class QueueFull(EaselError, RuntimeError):
    """The queue holds as many jobs as it may (HTTP 503)."""


class JobFailed(EaselError):
    """A job could not run; the message is shown to the user as it is (HTTP 500)."""


class JobCancelled(EaselError):
    """Raised inside a backend when the job's iterator was closed."""


class ConfigError(EaselError, ValueError):
    """A file the operator keeps (auth file, styles file) is malformed; the message names the line."""


class LoadFailed(EaselError, RuntimeError):
    """A model or weights file could not be loaded; the message says what went wrong and what to do."""


# --- refused requests -----------------------------------------------------------------------------------


class UnknownModel(RequestRefused):
    """The request names a model the backend does not offer."""


class UnknownTool(RequestRefused):
    """A retouch request names an upscaler, face restorer or segmentation model that is not here."""


class UnknownLora(RequestRefused):
    """The prompt names a LoRA that is not in models/Lora (or cannot be used), or writes a tag wrongly."""


class StyleProblem(RequestRefused):
    """The request's styles cannot be applied (the prompt they make is too long, for instance)."""


class UnknownStyle(StyleProblem):
    """The request names a style that is not in styles.csv."""


class UnknownPreset(StyleProblem):
    """The request names a preset that is not in presets/."""


class ImageInputError(RequestRefused):
    """An uploaded image or mask the user has to fix; the message says what is wrong and what to do."""


class PresetError(RequestRefused):
    """A preset action that cannot be done (bad name, shipped preset, name taken, ...); says why."""


class PlotError(RequestRefused):
    """A plot definition that cannot run: bad axis values, too many cells, a cell the request rejects."""


class RecipeError(RequestRefused):
    """A recipe that cannot be read; the message says what is wrong."""


class AspectError(RequestRefused):
    """A ratio that cannot be read or cannot be drawn at a model's size."""


class OptionsError(RequestRefused):
    """Options a client sent that cannot be kept: unknown keys or bad values (the message names them)."""


# --- not allowed, busy, files ---------------------------------------------------------------------------


class NotYourJob(NotAllowed):
    """Someone tried to act on another user's job."""


class AdminOnly(NotAllowed):
    """A user who is not an admin tried to change a server-wide option."""


class TooManyQueued(QueueFull):
    """This user already has as many jobs waiting as one user may; others can still queue theirs (HTTP 429)."""


class AuthConfigError(ConfigError):
    """An auth entry or file is malformed; the message names the line."""


class StylesFileError(ConfigError):
    """A styles file that cannot be read; the message names the row (or entry) and what is wrong."""
