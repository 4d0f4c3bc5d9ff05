"""What a generation request comes to, worked out once: the prompt its text encoder gets (without the
<lora:…> tags), the tags, the concrete noise schedule and the seed of every image.

The Studio's resolver builds it at submit (studio/resolve.py) and the job carries it to the backend, which
only executes it; a backend called without one (a script, a test) builds it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.prompt_syntax import LoraTag, extract_loras
from core.requests import GenerationRequest
from core.samplers import resolve_schedule
from core.seeds import image_seeds


@dataclass(frozen=True)
class ResolvedGeneration:
    """A generation request made concrete. `seeds` has one seed per image of the job (seed + i)."""

    prompt: str  # what the text encoder gets: the request's prompt without its <lora:…> tags
    loras: tuple[LoraTag, ...]
    schedule: str  # never "Automatic": the schedule the sampler really uses
    seeds: tuple[int, ...]

    @classmethod
    def of(cls, request: GenerationRequest) -> ResolvedGeneration:
        """The request made concrete. ValueError on a bad <lora:…> tag or a seed still left random (-1)."""
        if request.seed == -1:
            raise ValueError("the request's seed is still random (-1): give it a concrete seed first")
        prompt, tags = extract_loras(request.prompt)
        return cls(
            prompt=prompt,
            loras=tuple(tags),
            schedule=resolve_schedule(request.sampler, request.schedule_type),
            seeds=tuple(image_seeds(request.seed, request.image_count)),
        )

    def batch_seeds(self, batch: int, batch_size: int) -> list[int]:
        """The seeds of batch number `batch` (0-based) of `batch_size` images."""
        return list(self.seeds[batch * batch_size : (batch + 1) * batch_size])
