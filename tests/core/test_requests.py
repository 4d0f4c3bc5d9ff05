import math

import pytest
from pydantic import ValidationError

from core.requests import MAX_PROMPT_CHARS, Txt2ImgRequest, validation_message
from core.samplers import SAMPLER_SCHEDULES, SAMPLERS, resolve_schedule


def test_defaults_are_valid():
    req = Txt2ImgRequest(prompt="a fox")
    assert (req.width, req.height, req.steps, req.seed) == (512, 512, 20, -1)
    assert req.image_count == 1


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("width", 513, "multiple of 8"),
        ("height", 60, "greater than or equal to 64"),
        ("width", 4096, "less than or equal"),
        ("steps", 0, "greater than or equal to 1"),
        ("steps", 1_000_000, "less than or equal to 150"),
        ("cfg_scale", math.nan, "finite"),
        ("cfg_scale", math.inf, "finite"),
        ("cfg_scale", 31, "less than or equal to 30"),
        ("seed", -2, "greater than or equal to -1"),
        ("seed", 2**32, "less than or equal"),
        ("batch_size", 1000, "less than or equal"),
        ("sampler", "Euler Turbo", "unknown sampler"),
        ("schedule_type", "Cosine", "unknown schedule type"),
        ("prompt", "x" * (MAX_PROMPT_CHARS + 1), "at most"),
        ("prompt", "nul\x00byte", "NUL"),
    ],
)
def test_bad_values_are_rejected_with_a_readable_message(field, value, needle):
    with pytest.raises(ValidationError) as err:
        Txt2ImgRequest(**{field: value})
    message = validation_message(err.value)
    assert field in message
    assert needle in message


def test_unknown_fields_are_rejected():
    with pytest.raises(ValidationError, match="extra"):
        Txt2ImgRequest(prompt="x", sd_model="foo")


def test_width_message_suggests_neighbours():
    with pytest.raises(ValidationError) as err:
        Txt2ImgRequest(width=513)
    assert "512 or 520" in validation_message(err.value)


def test_too_many_images_in_one_job():
    with pytest.raises(ValidationError, match="per job"):
        Txt2ImgRequest(batch_size=8, batch_count=16)


def test_legacy_combined_sampler_name_is_split():
    req = Txt2ImgRequest(sampler="DPM++ 2M Karras")
    assert (req.sampler, req.schedule_type) == ("DPM++ 2M", "Karras")
    with pytest.raises(ValidationError, match="names schedule"):
        Txt2ImgRequest(sampler="DPM++ 2M Karras", schedule_type="Exponential")


def test_unsupported_schedule_for_sampler_is_an_error_not_a_silent_change():
    with pytest.raises(ValidationError, match="does not support the 'Karras' schedule"):
        Txt2ImgRequest(sampler="DDIM", schedule_type="Karras")


def test_every_sampler_has_a_schedule_table_entry_and_an_automatic_default():
    assert len(SAMPLERS) >= 12
    assert set(SAMPLERS) == set(SAMPLER_SCHEDULES)
    for sampler in SAMPLERS:
        assert resolve_schedule(sampler, "Automatic") in SAMPLER_SCHEDULES[sampler][1]


def test_seed_plus_image_index_must_stay_in_range():
    Txt2ImgRequest(seed=2**32 - 2, batch_size=2)
    with pytest.raises(ValidationError, match="seed may be at most"):
        Txt2ImgRequest(seed=2**32 - 1, batch_size=2)
