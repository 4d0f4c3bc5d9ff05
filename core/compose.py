"""Composing a style's prompt template with what the user typed, so that the result reads as one prompt.

A template such as ``flat vector logo of {prompt}, minimalist, crisp edges`` has a *head* (the words just before
``{prompt}``: what is made, "flat vector logo", and the word joining it to the subject, "of") and *fragments*
(the comma-separated parts around it). What the user typed is a *subject* ("a fox head") or a *scene* ("on a
white marble kitchen counter"). The rules, in order:

1. A subject is joined as the template says: "flat vector logo of a fox head".
2. Words of the head that the text already has are not repeated. When the text names what the head makes
   (its last word, "logo"; "photo", "photograph" and "shot" count as one), the text is the head: the head's
   other words go in front of it and its joining word goes ("minimal logo for a coffee brand" →
   "flat vector minimal logo for a coffee brand"; a leading "a", "an" or "the" is dropped there).
3. Text that starts with a place word ("on", "in", "against", …) is a scene: the joining word goes
   ("professional studio product photo on a white marble kitchen counter"). With ``scene=True`` (Replace
   background) the text is always the scene; one that does not start with a place word follows the head as a
   fragment of its own ("…product photo, a marble kitchen counter").
4. A scene replaces the template's own background: fragments that name a background, backdrop, surface or
   setting ("isolated on a seamless pure white background") are left out, in the prompt and in the negative
   prompt. A prompt that itself mentions a background or backdrop, or puts its subject on something ("a mug
   on a marble counter", "… against a brick wall") counts as a scene for this rule.
5. A template fragment the text already holds (whole words, any case) is not repeated; in the negative prompt
   a fragment that is already there is left out.
6. With no text, the joining word goes: "flat vector logo, minimalist, crisp edges".

A template with more than one ``{prompt}`` is applied literally (every placeholder replaced). Nothing here is
evaluated; these are plain string functions. `uncompose` gives back the text a template was composed with.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

PLACEHOLDER = "{prompt}"

# Words that join a template's head to the subject: "logo OF a fox".
JOINERS = frozenset({"of", "for", "with", "featuring", "showing", "depicting", "about"})
# Words that start a place: text starting with one is a scene.
PLACE_WORDS = frozenset(
    {
        "on", "onto", "upon", "in", "inside", "within", "at", "against", "atop", "under", "underneath",
        "beneath", "over", "above", "beside", "near", "among", "amid", "amidst", "along", "across",
        "behind", "around", "outside", "surrounded",
    }
)  # fmt: skip
# Words that make a fragment a background (left out when the text brings its own scene).
BACKGROUND_WORDS = frozenset({"background", "backgrounds", "backdrop", "backdrops", "surface", "setting"})
# What a subject may be put on or against, making the text a scene.
_SURFACES = (
    "surface", "table", "counter", "countertop", "desk", "shelf", "floor", "ground", "sand", "beach", "wall",
    "background", "backdrop", "setting", "tray", "plate", "board", "cloth", "fabric", "rock", "stone",
)  # fmt: skip
_ON_SOMETHING = re.compile(
    rf"\b(?:on|onto|upon|atop|against)\b[^,]*?\b(?:{'|'.join(_SURFACES)})s?\b", re.IGNORECASE
)
ARTICLES = ("a", "an", "the")
# Nouns that name the same kind of picture.
_SAME_KIND = (frozenset({"photo", "photos", "photograph", "photographs", "photography", "shot", "packshot"}),)
_WORD = re.compile(r"[\w'+-]+")


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def _kind(noun: str) -> frozenset[str]:
    """The words that name what `noun` names (itself, its plural, its synonyms)."""
    noun = noun.lower()
    for group in _SAME_KIND:
        if noun in group:
            return group
    return frozenset({noun, noun + "s", noun + "es"})


def _contains(text: str, phrase: str) -> bool:
    """`phrase` occurs in `text` as whole words, in any case."""
    phrase = phrase.strip().lower()
    if not _WORD.search(phrase):
        return False
    return re.search(rf"(?<![\w]){re.escape(phrase)}(?![\w])", text.lower()) is not None


def is_background(fragment: str) -> bool:
    """A fragment that describes the background ("isolated on a seamless pure white background")."""
    return any(word in BACKGROUND_WORDS for word in _words(fragment))


def starts_with_place(text: str) -> bool:
    words = _words(text)
    return bool(words) and words[0] in PLACE_WORDS


def replaces_background(prompt: str, *, scene: bool = False) -> bool:
    """Whether the text brings its own background, so that templates' backgrounds are left out (rule 4)."""
    if not prompt.strip():
        return False
    names_one = any(word in ("background", "backgrounds", "backdrop", "backdrops") for word in _words(prompt))
    return scene or starts_with_place(prompt) or names_one or _ON_SOMETHING.search(prompt) is not None


def _fragments(text: str) -> list[str]:
    return [part.strip() for part in text.split(",")]


def _drop_article(text: str) -> str:
    first, _, rest = text.partition(" ")
    return rest.lstrip() if first.lower() in ARTICLES and rest.strip() else text


def _core(head: str, text: str, *, scene: bool) -> str:
    """The head joined to the text (rules 1–3 and 6)."""
    words = head.split()
    joiner = words[-1] if words and words[-1].lower() in JOINERS else ""
    head_words = words[:-1] if joiner else words
    if not text:
        return " ".join(head_words)
    have = set(_words(text))
    kept = [w for w in head_words[:-1] if w.lower() not in have]
    if head_words and _kind(head_words[-1]) & have:  # the text names what is made: it is the head
        return " ".join([*kept, _drop_article(text) if kept else text])
    head_text = " ".join([*kept, *head_words[-1:]])
    if starts_with_place(text) and head_text:
        return f"{head_text} {text}"
    if scene and head_text:
        return f"{head_text}, {text}"
    return " ".join(part for part in (head_text, joiner, text) if part)


def _join(pieces: Iterable[tuple[str, bool]], text: str, *, drop_background: bool, negative: bool) -> str:
    """The pieces that are left (rules 4 and 5), joined with ", ". A piece is (text, whether it is the
    user's part); the user's part is kept as it is, a template fragment only when it adds something."""
    out: list[str] = []
    seen: set[str] = set()
    for piece, users in pieces:
        key = piece.strip().lower()
        if not key:
            continue
        if users:
            seen.update(f.lower() for f in _fragments(piece))
        elif (
            key in seen
            or (drop_background and is_background(piece))
            or (not negative and _contains(text, piece))
        ):
            continue
        seen.add(key)
        out.append(piece.strip())
    return ", ".join(out)


def compose(template: str, text: str, *, scene: bool = False, drop_background: bool | None = None) -> str:
    """`template` applied to the user's `text` by the rules above (``scene``: the text is a scene).
    `drop_background` (default: whether `text` brings a background) is given when several templates are
    applied in turn, so that all of them follow the text the user typed."""
    text = text.strip()
    if drop_background is None:
        drop_background = replaces_background(text, scene=scene)
    if template.count(PLACEHOLDER) > 1:  # applied literally, as AUTOMATIC1111 does
        if text:
            return template.replace(PLACEHOLDER, text)
        return ", ".join(p for p in (p.strip(" ,") for p in template.split(PLACEHOLDER)) if p)
    if PLACEHOLDER not in template:
        parts = [(text, True), *((f, False) for f in _fragments(template))]
        return _join(parts, text, drop_background=drop_background, negative=False)
    left, _, right = template.partition(PLACEHOLDER)
    *before, head = left.split(",")
    attached, *after = right.split(",")
    core = _core(head.strip(), text, scene=scene)
    if attached.strip():
        core = f"{core}{attached.rstrip()}" if core else attached.strip()
    parts = [
        *((f.strip(), False) for f in before),
        (core, True),
        *((f.strip(), False) for f in after),
    ]
    return _join(parts, text, drop_background=drop_background, negative=False)


def compose_negative(template: str, negative: str, *, drop_background: bool = False) -> str:
    """A negative template applied to the negative prompt: `{prompt}` replaced (or the template appended),
    fragments already there left out, and background fragments too when the prompt brings its own scene."""
    negative = negative.strip()
    if PLACEHOLDER in template:
        left, _, right = template.partition(PLACEHOLDER)
        pieces = [
            *((f, False) for f in _fragments(left)),
            (negative, True),
            *((f, False) for f in _fragments(right)),
        ]
    else:
        pieces = [(negative, True), *((f, False) for f in _fragments(template))]
    return _join(pieces, negative, drop_background=drop_background, negative=True)


def compose_all(
    prompt: str, negative: str, templates: Sequence[tuple[str, str]], *, scene: bool = False
) -> tuple[str, str]:
    """(prompt, negative) with each (prompt template, negative template) applied in order; whether the
    templates' backgrounds stay is decided once, by the text the user typed."""
    drop = replaces_background(prompt, scene=scene)
    for template, negative_template in templates:
        prompt = compose(template, prompt, scene=scene, drop_background=drop)
        negative = compose_negative(negative_template, negative, drop_background=drop)
    return prompt, negative


# --- the way back -------------------------------------------------------------------------------------------


def _starts(composed: str, template: str) -> list[int]:
    """Where the user's text may start in `composed`: after words that all come from the template's left part."""
    left = template.partition(PLACEHOLDER)[0] if PLACEHOLDER in template else ""
    allowed = set(_words(left)) | set(ARTICLES)
    starts = [0]
    for match in re.finditer(r"[ ,]+", composed):
        end = match.end()
        if not set(_words(composed[:end])) <= allowed:
            break
        starts.append(end)
    return starts


def _ends(composed: str, template: str) -> list[int]:
    """Where the user's text may end in `composed`: at its end or before a ", " (and the template's text
    attached right after the placeholder)."""
    attached = template.partition(PLACEHOLDER)[2].split(",")[0].rstrip() if PLACEHOLDER in template else ""
    ends = [len(composed), *(m.start() for m in re.finditer(", ", composed))]
    if attached.strip():
        ends += [end - len(attached) for end in ends if composed[:end].endswith(attached)]
    return ends


def _holds_the_template(template: str, text: str) -> bool:
    """Whether `text` already holds every fragment of the template (two or more): composing it adds nothing
    of the template's own, so it is a composed text itself rather than what was typed."""
    left, _, right = template.partition(PLACEHOLDER)
    fragments = [f for f in (*_fragments(left)[:-1], *_fragments(right)[1:]) if _WORD.search(f)]
    if PLACEHOLDER not in template:
        fragments = [f for f in _fragments(template) if _WORD.search(f)]
    return len(fragments) >= 2 and all(_contains(text, f) for f in fragments)


def uncompose(
    template: str, composed: str, *, scene: bool = False, drop_background: bool | None = None
) -> str | None:
    """The text that `compose(template, text, ...)` turned into `composed`, or None if no text can have.
    Several texts may compose alike ("a red fox" and "flat vector logo of a red fox" with a flat vector logo
    template): the shortest is returned, one without an article added before one with. A text that holds
    the whole template already is not taken for what was typed."""
    if compose(template, "", scene=scene, drop_background=drop_background) == composed:
        return ""
    found: set[str] = set()
    for start in _starts(composed, template):
        for end in _ends(composed, template):
            if end > start:
                found.add(composed[start:end].strip(" ,"))
    candidates = sorted((t for t in found if t), key=lambda t: (len(t), t))
    candidates += [f"{a} {t}" for t in candidates for a in ("a", "an", "the", "A", "An", "The")]
    for text in candidates:
        if _holds_the_template(template, text):
            continue
        if compose(template, text, scene=scene, drop_background=drop_background) == composed:
            return text
    return None


def uncompose_negative(template: str, composed: str, *, drop_background: bool = False) -> str | None:
    """The negative prompt that `compose_negative` turned into `composed`, or None."""
    if compose_negative(template, "", drop_background=drop_background) == composed:
        return ""
    ends = [len(composed), *(m.start() for m in re.finditer(", ", composed))]
    starts = [0]  # the user's part leads, unless the template puts fragments before it
    if PLACEHOLDER in template and template.partition(PLACEHOLDER)[0].strip(" ,"):
        starts += [m.end() for m in re.finditer(", ", composed)]
    found = sorted(
        {composed[s:e].strip(" ,") for s in starts for e in ends if e > s}, key=lambda t: (len(t), t)
    )
    for text in found:
        if not text or _holds_the_template(template, text):
            continue
        if compose_negative(template, text, drop_background=drop_background) == composed:
            return text
    return None
