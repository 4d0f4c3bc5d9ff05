"""A1111 sampler names → diffusers scheduler classes and config overrides."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import diffusers
from diffusers import DiffusionPipeline
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from core.samplers import SAMPLERS, resolve_schedule

# sampler → (diffusers class name, config overrides)
SAMPLER_TABLE: Mapping[str, tuple[str, Mapping[str, Any]]] = {
    "DPM++ 2M": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "DPM++ SDE": ("DPMSolverSDEScheduler", {}),
    "DPM++ 2M SDE": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "solver_order": 2}),
    "DPM++ 3M SDE": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "solver_order": 3}),
    "Euler a": ("EulerAncestralDiscreteScheduler", {}),
    "Euler": ("EulerDiscreteScheduler", {}),
    "LMS": ("LMSDiscreteScheduler", {}),
    "Heun": ("HeunDiscreteScheduler", {}),
    "DPM2": ("KDPM2DiscreteScheduler", {}),
    "DPM2 a": ("KDPM2AncestralDiscreteScheduler", {}),
    "DDIM": ("DDIMScheduler", {}),
    "PLMS": ("PNDMScheduler", {"skip_prk_steps": True}),
    "UniPC": ("UniPCMultistepScheduler", {}),
    "DEIS": ("DEISMultistepScheduler", {}),
    "LCM": ("LCMScheduler", {}),
}

# schedule type → config overrides. Each sigma switch is set explicitly so that a base config that
# had one turned on (e.g. a model shipped with Karras) does not leak into another schedule.
_SIGMA_FLAGS = ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas")
SCHEDULE_TABLE: Mapping[str, Mapping[str, Any]] = {
    "Uniform": {},
    "Karras": {"use_karras_sigmas": True},
    "Exponential": {"use_exponential_sigmas": True},
    "SGM Uniform": {"timestep_spacing": "trailing"},
}


def make_scheduler(
    sampler: str, schedule_type: str, base_config: Mapping[str, Any], *, seed: int | None = None
) -> SchedulerMixin:
    """A fresh scheduler for one run, built from the model's own scheduler config.

    The model's config supplies the training betas and prediction type; the sampler and schedule
    choose the algorithm. `seed` seeds samplers with their own noise source (DPM++ SDE).
    """
    if sampler not in SAMPLER_TABLE:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of: {', '.join(SAMPLERS)}")
    schedule = resolve_schedule(sampler, schedule_type)
    class_name, overrides = SAMPLER_TABLE[sampler]
    cls = getattr(diffusers, class_name)
    config = {k: v for k, v in base_config.items() if not k.startswith("_")}
    for flag in _SIGMA_FLAGS:
        config[flag] = False
    if schedule != "SGM Uniform" and config.get("timestep_spacing") == "trailing":
        config["timestep_spacing"] = "leading"
    config.update(overrides)
    config.update(SCHEDULE_TABLE[schedule])
    if class_name == "DPMSolverSDEScheduler" and seed is not None:
        config["noise_sampler_seed"] = seed
    accepted = inspect.signature(cls.__init__).parameters
    return cls.from_config({k: v for k, v in config.items() if k in accepted})


def with_scheduler(pipe: DiffusionPipeline, scheduler: SchedulerMixin) -> DiffusionPipeline:
    """A pipeline object for one run: the same components as `pipe` (no copy, no cast), its own scheduler.

    Cheaper and safer than `from_pipe`, which casts the shared weights to the dtype it is given.
    """
    cls = type(pipe)
    accepted = inspect.signature(cls.__init__).parameters
    kwargs = {k: v for k, v in pipe.components.items() if k in accepted}
    kwargs.update({k: v for k, v in pipe.config.items() if k in accepted and k not in kwargs})
    kwargs["scheduler"] = scheduler
    run_pipe = cls(**kwargs)
    run_pipe.set_progress_bar_config(disable=True)
    return run_pipe
