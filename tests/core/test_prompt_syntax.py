"""A1111 prompt syntax: attention weights, escapes, BREAK, unbalanced brackets, and <lora:...> tags."""

from __future__ import annotations

import pytest

from core.prompt_syntax import LoraTag, extract_loras, is_break, parse_prompt_attention


def close(actual: list[tuple[str, float]], expected: list[tuple[str, float]]) -> bool:
    return len(actual) == len(expected) and all(
        a[0] == e[0] and a[1] == pytest.approx(e[1], rel=1e-12) for a, e in zip(actual, expected, strict=True)
    )


# A1111's own doctest cases (modules/prompt_parser.py), exactly.
A1111_DOCTESTS = [
    ("normal text", [("normal text", 1.0)]),
    ("an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)]),
    ("(unbalanced", [("unbalanced", 1.1)]),
    ("\\(literal\\]", [("(literal]", 1.0)]),
    ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
    (
        "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
        [
            ("a ", 1.0),
            ("house", 1.5730000000000004),
            (" ", 1.1),
            ("on", 1.0),
            (" a ", 1.1),
            ("hill", 0.55),
            (", sun, ", 1.1),
            ("sky", 1.4641000000000006),
            (".", 1.1),
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), A1111_DOCTESTS)
def test_a1111_doctest_cases_exactly(text: str, expected: list[tuple[str, float]]) -> None:
    assert parse_prompt_attention(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(word)", [("word", 1.1)]),
        ("((word))", [("word", 1.1 * 1.1)]),
        ("(((word)))", [("word", 1.1**3)]),
        ("[word]", [("word", 1 / 1.1)]),
        ("[[word]]", [("word", 1 / 1.1 / 1.1)]),
        ("(word:1.3)", [("word", 1.3)]),
        ("(word: 1.3 )", [("word", 1.3)]),
        ("(word:.5)", [("word", 0.5)]),
        ("(word:+2)", [("word", 2.0)]),
        ("(word:-1)", [("word", -1.0)]),
        ("(word:0)", [("word", 0.0)]),
        ("((a:1.5) b)", [("a", 1.5 * 1.1), (" b", 1.1)]),
        ("[(a)]", [("a", 1.1 / 1.1)]),
        ("(a [b] c)", [("a ", 1.1), ("b", 1.0), (" c", 1.1)]),
        ("x (a, b:0.8) y", [("x ", 1.0), ("a, b", 0.8), (" y", 1.0)]),
    ],
)
def test_weights_and_nesting(text: str, expected: list[tuple[str, float]]) -> None:
    assert close(parse_prompt_attention(text), expected)


def test_escapes_are_literal_characters() -> None:
    assert parse_prompt_attention(r"\(a\) \[b\] c\\d") == [("(a) [b] c\\d", 1.0)]
    # escaped brackets inside a weighted group stay text of that group
    assert close(parse_prompt_attention(r"(f\(x\):1.2)"), [("f(x)", 1.2)])
    # a lone backslash before an ordinary character is dropped, as in A1111
    assert parse_prompt_attention(r"a\b") == [("ab", 1.0)]


def test_unbalanced_brackets() -> None:
    # unclosed opens apply to the rest of the prompt
    assert close(parse_prompt_attention("a (b c"), [("a ", 1.0), ("b c", 1.1)])
    assert close(
        parse_prompt_attention("a [b ((c) d"),
        [("a ", 1.0), ("b ", 1 / 1.1), ("c", 1.1 * 1.1 / 1.1), (" d", 1.1 / 1.1)],
    )
    # stray closes are literal text
    assert parse_prompt_attention("a) b] c") == [("a) b] c", 1.0)]
    assert parse_prompt_attention("a:1.5) b") == [("a:1.5) b", 1.0)]
    # a (text:weight) whose group closes with a plain ) after a colon that is not a weight
    assert close(parse_prompt_attention("(a:b)"), [("a:b", 1.1)])
    # a sign alone is not a weight: the colon and sign are text of a (...) group
    assert close(parse_prompt_attention("(a:+)"), [("a:+", 1.1)])


def test_adjacent_equal_weights_merge() -> None:
    assert parse_prompt_attention("(a)(b)") == [("ab", 1.1)]
    assert parse_prompt_attention("a(b:1)c") == [("abc", 1.0)]
    assert parse_prompt_attention("") == [("", 1.0)]
    assert parse_prompt_attention("()") == [("", 1.0)]


def test_break_markers() -> None:
    assert parse_prompt_attention("a BREAK b") == [("a", 1.0), ("BREAK", -1.0), ("b", 1.0)]
    parsed = parse_prompt_attention("a, red BREAK (blue:1.2) sky")
    assert parsed == [("a, red", 1.0), ("BREAK", -1.0), ("", 1.0), ("blue", 1.2), (" sky", 1.0)]
    assert [is_break(p) for p in parsed] == [False, True, False, False, False]
    # BREAK is a word of its own and in capitals
    assert parse_prompt_attention("BREAKFAST break a_BREAK") == [("BREAKFAST break a_BREAK", 1.0)]
    # two BREAKs in a row keep an empty piece between them (an empty chunk)
    assert parse_prompt_attention("a BREAK BREAK b") == [
        ("a", 1.0),
        ("BREAK", -1.0),
        ("", 1.0),
        ("BREAK", -1.0),
        ("b", 1.0),
    ]
    # inside brackets BREAK stays a marker (A1111 would multiply it into a literal word)
    assert close(parse_prompt_attention("(a BREAK b)"), [("a", 1.1), ("BREAK", -1.0), ("b", 1.1)])
    # an escaped bracket does not hide the word
    assert parse_prompt_attention(r"\(BREAK") == [("(", 1.0), ("BREAK", -1.0), ("", 1.0)]


@pytest.mark.parametrize("text", ["(a:1.2.3)", "(a:.)", "(a:..5)", "(a:.5.)"])
def test_bad_weights_raise(text: str) -> None:
    with pytest.raises(ValueError, match="bad attention weight"):
        parse_prompt_attention(text)


def test_extract_loras() -> None:
    text, tags = extract_loras("a cat <lora:film-grain:0.8>, <lora:ink_v2> sketch")
    assert text == "a cat ,  sketch"  # only the tags go, as in A1111
    assert tags == [LoraTag("film-grain", 0.8), LoraTag("ink_v2", 1.0)]
    assert extract_loras("no tags (here:1.2)") == ("no tags (here:1.2)", [])
    assert extract_loras("<lora:a: -0.5 >") == ("", [LoraTag("a", -0.5)])
    # other extra-network kinds are not LoRAs and stay as text
    assert extract_loras("x <hypernet:h:1>") == ("x <hypernet:h:1>", [])


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("<lora:x:abc>", "bad weight 'abc'"),
        ("<lora:x:>", "bad weight ''"),
        ("<lora:x:nan>", "between -10 and 10"),
        ("<lora:x:inf>", "between -10 and 10"),
        ("<lora:x:11>", "between -10 and 10"),
        ("<lora:x:0.5:0.5>", "not supported"),
        ("<lora:>", "without a name"),
        ("<lora::1>", "without a name"),
        ("<lora:../evil>", "bad LoRA name"),
        ("<lora:sub/dir>", "bad LoRA name"),
        ("<lora:c\\x>", "bad LoRA name"),
        ("<lora:a\x00b>", "bad LoRA name"),
        ("<lora: a>", "spaces"),
        ("<lora:a:1> <lora:a:0.5>", "more than once"),
    ],
)
def test_extract_loras_rejects_bad_tags(prompt: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        extract_loras(prompt)
