"""Presets that compose: every shipped preset applied to typed subjects and to Replace background scenes reads
as one prompt (no doubled head words, no "of on", the scene replacing the preset's own background), and the
composed text can be taken apart again."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.compose import (
    PLACE_WORDS,
    compose,
    compose_negative,
    is_background,
    uncompose,
)
from core.presets import PresetBook, apply_preset, compose_scene
from core.retouch_ops import ReplaceBackgroundOp
from core.styles import Style, apply_styles, strip_styles

SHIPPED = Path(__file__).resolve().parents[2] / "presets"
BOOK = PresetBook(SHIPPED, None)
PRESETS = BOOK.presets()
PRODUCT_PRESETS = [p for p in PRESETS if p.name.startswith("Product")]
SUBJECTS = [
    "a fox head",
    "minimal logo for a coffee brand",
    "a matte black ceramic coffee mug",
    "the letters A and V",
    "a product shot of a mug with a cream label",
    "Photo of a red bicycle",
    "a cat in a hat",
]
SCENES = [
    "on a white marble kitchen counter, morning light",
    "in a cozy cafe with plants",
    "a sunny beach at noon",
    "against a dark slate wall",
]
_BAD_JOIN = re.compile(
    rf"\b(of|for|with|featuring|showing)\s+({'|'.join(sorted(PLACE_WORDS))})\b", re.IGNORECASE
)


def _styles(preset_name: str) -> list[Style]:
    return BOOK.styles_named(BOOK.get(preset_name).styles)


def _fragments(text: str) -> list[str]:
    return [f.strip() for f in text.split(",")]


def _assert_reads_as_one_prompt(prompt: str, typed: str) -> None:
    assert prompt == prompt.strip() and not prompt.startswith(",") and not prompt.endswith(",")
    fragments = [f.lower() for f in _fragments(prompt)]
    assert all(fragments), f"an empty fragment in {prompt!r}"
    assert len(fragments) == len(set(fragments)), f"a fragment is repeated in {prompt!r}"
    assert not _BAD_JOIN.search(prompt.replace(typed, "")), f"a joining word before a place in {prompt!r}"
    typed_words = typed.lower().split()
    if typed_words and typed_words[0] in ("a", "an", "the"):
        typed_words = typed_words[1:]  # a leading article may go when the subject becomes the head
    assert " ".join(typed_words) in prompt.lower(), f"{typed!r} is not kept in {prompt!r}"


# --- the two prompts the issue saw ---------------------------------------------------------------------


def test_a_subject_that_names_what_the_preset_makes_leads_with_no_doubled_words() -> None:
    prompt, _ = apply_styles("minimal logo for a coffee brand", "", _styles("Logo — flat vector (1:1)"))
    assert _fragments(prompt)[0] == "flat vector minimal logo for a coffee brand"
    assert "logo of" not in prompt and prompt.lower().count("logo") == 1
    # a subject that does not name it is joined as the template says
    fox, _ = apply_styles("a fox head", "", _styles("Logo — flat vector (1:1)"))
    assert fox.startswith("flat vector logo of a fox head, minimalist, ")


def test_a_product_preset_treats_replace_backgrounds_text_as_the_scene() -> None:
    preset = BOOK.get("Product — studio white (1:1)")
    scene = "on a white marble kitchen counter, morning light"
    prompt, negative = compose_scene(preset, BOOK.styles_named(preset.styles), scene, "dust")
    assert prompt.startswith(f"professional studio product photo {scene}, softbox lighting")
    assert "isolated on a seamless pure white background" not in prompt and "of on" not in prompt
    assert [f for f in _fragments(prompt) if is_background(f)] == []
    assert negative.startswith("dust, ") and "colored background" not in negative and "props" in negative
    # the operation composes it the same way, with the preset's settings
    op = ReplaceBackgroundOp(prompt=scene, negative_prompt="dust", preset=preset.name)
    styled = op.styled(preset, BOOK.styles_named(op.style_names(preset)))
    assert (styled.prompt, styled.negative_prompt) == (prompt, negative)
    assert (styled.steps, styled.cfg_scale) == (preset.steps, preset.cfg_scale)


def test_without_a_scene_the_presets_own_background_stays() -> None:
    preset = BOOK.get("Product — studio white (1:1)")
    prompt, negative = compose_scene(preset, BOOK.styles_named(preset.styles), "")
    assert prompt.startswith(
        "professional studio product photo, isolated on a seamless pure white background"
    )
    assert "colored background" in negative


# --- every shipped preset ------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
@pytest.mark.parametrize("subject", SUBJECTS)
def test_every_shipped_preset_composes_a_typed_subject(preset, subject) -> None:
    styles = BOOK.styles_named(preset.styles)
    fields = apply_preset(preset, {"prompt": subject, "negative_prompt": "blurry"}, family="sd1")
    prompt, negative = apply_styles(str(fields["prompt"]), str(fields["negative_prompt"]), styles)
    _assert_reads_as_one_prompt(prompt, subject)
    negatives = [f.lower() for f in _fragments(negative)]
    assert negatives[0] == "blurry" and len(negatives) == len(set(negatives))
    # the head of a template is not said twice: "logo" only as often as the subject and the rest say it
    for style in styles:
        head = style.prompt.partition("{prompt}")[0].split(",")[-1].split()
        if len(head) >= 2 and head[-1] == "of":
            noun = head[-2]
            before_first_comma = _fragments(prompt)[0].lower()
            assert before_first_comma.count(noun) <= max(1, subject.lower().count(noun))


@pytest.mark.parametrize("preset", PRODUCT_PRESETS, ids=lambda p: p.name)
@pytest.mark.parametrize("scene", SCENES)
def test_every_product_preset_composes_a_scene_without_its_own_background(preset, scene) -> None:
    prompt, negative = compose_scene(preset, BOOK.styles_named(preset.styles), scene, "")
    _assert_reads_as_one_prompt(prompt, scene)
    assert scene in prompt
    assert [f for f in _fragments(prompt) if is_background(f)] == [
        f for f in _fragments(scene) if is_background(f)
    ]
    assert not any(is_background(f) for f in _fragments(negative))
    # the scene comes right after what is made, before the lighting and the rest
    first_style = BOOK.styles_named(preset.styles)[0]
    head = first_style.prompt.partition("{prompt}")[0].split()[:-1]
    assert prompt.startswith(" ".join(head))
    assert prompt.index(scene) <= len(" ".join(head)) + 2


def test_the_shipped_templates_join_their_subject_with_a_word() -> None:
    """A template whose head ends in a comma ("monogram logo, {prompt}") reads as a list, not a phrase."""
    for style in BOOK.styles():
        left = style.prompt.partition("{prompt}")[0]
        if "{prompt}" in style.prompt and left.strip():
            assert not left.rstrip().endswith(","), style.name
            assert left.split()[-1] == "of", style.name


# --- the rules one by one ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "text", "expected"),
    [
        ("flat vector logo of {prompt}, crisp", "a fox", "flat vector logo of a fox, crisp"),
        ("flat vector logo of {prompt}, crisp", "a minimal logo", "flat vector minimal logo, crisp"),
        ("flat vector logo of {prompt}, crisp", "flat logo of a fox", "vector flat logo of a fox, crisp"),
        ("flat vector logo of {prompt}, crisp", "flat vector logo", "flat vector logo, crisp"),
        ("glossy 3d logo of {prompt}", "3D logos for a bakery", "glossy 3D logos for a bakery"),
        ("photograph of {prompt}, sharp", "a photo of a bike", "a photo of a bike, sharp"),
        ("photo of {prompt}, on a white background", "on a beach", "photo on a beach"),
        (
            "photo of {prompt}, white background",
            "a fox, crisp white background",
            "photo of a fox, crisp white background",
        ),
        (
            "logo of {prompt}, crisp edges, centered",
            "a centered fox, crisp edges",
            "logo of a centered fox, crisp edges",
        ),
        ("logo of {prompt}, white", "", "logo, white"),
        ("{prompt}, flat vector", "", "flat vector"),
        ("sharp, clean edges", "a fox, sharp", "a fox, sharp, clean edges"),
        ("{prompt} and {prompt}", "x", "x and x"),
    ],
)
def test_compose_rules(template: str, text: str, expected: str) -> None:
    assert compose(template, text) == expected


def test_a_forced_scene_without_a_place_word_follows_the_head_as_its_own_fragment() -> None:
    template = "product photo of {prompt}, on a seamless white backdrop, soft light"
    assert compose(template, "a marble counter", scene=True) == "product photo, a marble counter, soft light"
    assert (
        compose(template, "on a marble counter", scene=True)
        == "product photo on a marble counter, soft light"
    )
    assert compose(template, "", scene=True) == "product photo, on a seamless white backdrop, soft light"


def test_negative_fragments_already_there_are_not_repeated() -> None:
    assert compose_negative("lowres, blurry, watermark", "blurry, text") == "blurry, text, lowres, watermark"
    assert compose_negative("photo, {prompt}", "text") == "photo, text"
    assert compose_negative("busy background, text", "", drop_background=True) == "text"
    # a broader fragment is kept: "text" is not "misspelled text"
    assert compose_negative("text", "misspelled text") == "misspelled text, text"


# --- the way back --------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
@pytest.mark.parametrize(
    "subject", ["minimal logo for a coffee brand", "a matte black mug", "on a marble counter"]
)
def test_a_composed_prompt_is_taken_apart_into_what_was_typed(preset, subject) -> None:
    styles = BOOK.styles_named(preset.styles)
    expanded = apply_styles(subject, "text", styles)
    typed = strip_styles(*expanded, styles)
    assert typed == (subject, "text")


def test_text_that_does_not_carry_the_template_is_not_taken_apart() -> None:
    assert uncompose("flat vector logo of {prompt}, crisp", "a fox, crisp") is None
    assert uncompose("flat vector logo of {prompt}, crisp", "flat vector logo of a fox, blurry") is None
    assert uncompose("flat vector logo of {prompt}, crisp", "flat vector logo, crisp") == ""


def test_a_composed_prompt_edited_by_hand_is_not_taken_apart() -> None:
    """Composing a text that holds the whole template gives it back unchanged; such a text is not taken for
    what was typed, so a prompt edited after composing keeps its text and loses its styles (same picture)."""
    styles = BOOK.styles_named(["Flat vector logo", "Cinematic", "Base quality"])
    prompt, negative = apply_styles("minimal logo for a coffee brand", "text", styles)
    assert strip_styles(prompt, negative, styles) == ("minimal logo for a coffee brand", "text")
    assert strip_styles(f"{prompt}, edited", negative, styles) is None
    assert strip_styles(prompt, f"{negative}, edited", styles) is None


@pytest.mark.parametrize(
    ("subject", "brings_a_scene"),
    [
        ("a mug on a marble counter", True),
        ("a bottle against a brick wall", True),
        ("a fox, plain green background", True),
        ("in a cozy cafe", True),
        ("a mug with a glossy surface", False),
        ("a fox on a skateboard", False),
        ("a cat in a hat", False),
    ],
)
def test_a_typed_scene_replaces_the_presets_background_in_txt2img_too(
    subject: str, brings_a_scene: bool
) -> None:
    prompt, negative = apply_styles(subject, "", _styles("Product — studio white (1:1)"))
    assert ("isolated on a seamless pure white background" not in prompt) is brings_a_scene
    assert ("colored background" not in negative) is brings_a_scene
    assert subject in prompt
