"""Prompt styles: A1111's expansion rules, styles.csv and Fooocus JSON round trips, bad files rejected."""

from __future__ import annotations

import csv
import io
import json

import pytest

from core.styles import (
    MAX_STYLES_FILE_BYTES,
    Style,
    StylesFileError,
    apply_styles,
    extract_styles,
    merge_prompt,
    read_fooocus_styles,
    read_styles,
    read_styles_csv,
    strip_styles,
    write_styles_csv,
)

LOGO = Style(
    name="Logo", prompt="flat vector logo of {prompt}, white background", negative_prompt="photo, {prompt}"
)
CRISP = Style(name="Crisp", prompt="sharp, clean edges", negative_prompt="blurry")
NEG_ONLY = Style(name="Base", prompt="", negative_prompt="lowres, watermark")


# --- expansion ----------------------------------------------------------------------------------------


def test_placeholder_is_replaced_by_the_prompt() -> None:
    assert merge_prompt("flat vector logo of {prompt}, white background", "a fox") == (
        "flat vector logo of a fox, white background"
    )
    assert merge_prompt("{prompt} and {prompt}", "x") == "x and x"  # every placeholder, as A1111


def test_without_placeholder_the_style_is_appended() -> None:
    assert merge_prompt("sharp, clean edges", "a fox ") == "a fox, sharp, clean edges"


def test_empty_parts_leave_no_stray_commas() -> None:
    assert merge_prompt("sharp", "") == "sharp"
    assert merge_prompt("", "a fox") == "a fox"
    assert merge_prompt("", "") == ""
    assert merge_prompt("{prompt}, flat vector", "") == "flat vector"
    assert merge_prompt("logo of {prompt}, white", "") == "logo of, white"
    assert merge_prompt("{prompt}", "") == ""
    assert merge_prompt("  ", "  a fox  ") == "a fox"


def test_several_styles_apply_in_order_to_prompt_and_negative() -> None:
    prompt, negative = apply_styles("a fox", "text", [LOGO, CRISP, NEG_ONLY])
    assert prompt == "flat vector logo of a fox, white background, sharp, clean edges"
    assert negative == "photo, text, blurry, lowres, watermark"
    reversed_prompt, _ = apply_styles("a fox", "", [CRISP, LOGO])
    assert reversed_prompt == "flat vector logo of a fox, sharp, clean edges, white background"
    assert apply_styles("a fox", "text", []) == ("a fox", "text")


@pytest.mark.parametrize(
    ("prompt", "negative"),
    [("a fox", "text"), ("", ""), ("a fox, running", ""), ("", "blurry"), ("x {y}", "a, b")],
)
@pytest.mark.parametrize("styles", [[LOGO], [CRISP], [NEG_ONLY], [LOGO, CRISP, NEG_ONLY], [CRISP, LOGO]])
def test_strip_styles_inverts_apply_styles(prompt: str, negative: str, styles: list[Style]) -> None:
    expanded = apply_styles(prompt, negative, styles)
    typed = strip_styles(*expanded, styles)
    assert typed is not None
    assert apply_styles(*typed, styles) == expanded


def test_strip_styles_refuses_text_that_does_not_carry_the_styles() -> None:
    assert strip_styles("a fox, sharp", "", [CRISP]) is None
    assert strip_styles("a fox, sharp, clean edges", "", [CRISP]) is None  # its negative is missing
    assert strip_styles("a fox, sharp, clean edges", "text, blurry", [CRISP]) == ("a fox", "text")
    assert strip_styles("a fox", "", [LOGO]) is None


def test_extract_styles_finds_the_styles_a_prompt_carries() -> None:
    expanded = apply_styles("a fox", "text", [LOGO, CRISP, NEG_ONLY])
    assert extract_styles(*expanded, [NEG_ONLY, CRISP, LOGO]) == (["Logo", "Crisp", "Base"], "a fox", "text")
    assert extract_styles("a fox, sharp", "", [LOGO, CRISP, NEG_ONLY]) == ([], "a fox, sharp", "")
    # Crisp was not the last style applied, so it cannot come off on its own
    assert extract_styles(*expanded, [CRISP]) == ([], *expanded)


def test_style_names_are_checked() -> None:
    for bad in ["", " x", "a,b", "a\x00b", "line\nbreak", "x" * 101]:
        with pytest.raises(ValueError):
            Style(name=bad)
    with pytest.raises(ValueError, match="extra"):
        Style.model_validate({"name": "x", "colour": "red"})


# --- styles.csv ---------------------------------------------------------------------------------------

TRICKY = [
    Style(name="Quotes", prompt='a "quoted" word, {prompt}', negative_prompt=""),
    Style(name="Commas and lines", prompt="one, two\nthree", negative_prompt="a,\r\nb"),
    Style(name="Ünïcödé ✓", prompt="日本語 {prompt}", negative_prompt="naïve"),
    Style(name="Empty", prompt="", negative_prompt=""),
]


def test_csv_round_trip_with_quotes_commas_and_newlines() -> None:
    data = write_styles_csv(TRICKY)
    assert data.startswith(b"\xef\xbb\xbfname,prompt,negative_prompt\r\n")  # BOM, as A1111 writes it
    assert read_styles_csv(data) == TRICKY
    assert read_styles_csv(data.removeprefix(b"\xef\xbb\xbf")) == TRICKY  # without BOM too
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows[2] == ["Commas and lines", "one, two\nthree", "a,\r\nb"]  # what any CSV reader sees


def test_a1111_file_with_comments_blank_rows_and_the_old_text_column() -> None:
    data = (
        b"name,text,negative_prompt\n"
        b"# comment row,ignored,ignored\n"
        b"\n"
        b'Cinematic,"cinematic still of {prompt}, film grain",cartoon\n'
        b"#Another,x,y\n"
        b"Short,just appended\n"
    )
    styles = read_styles_csv(data)
    assert styles == [
        Style(name="Cinematic", prompt="cinematic still of {prompt}, film grain", negative_prompt="cartoon"),
        Style(name="Short", prompt="just appended", negative_prompt=""),
    ]


def test_a_later_row_of_the_same_name_wins_as_in_a1111() -> None:
    styles = read_styles_csv(b"name,prompt,negative_prompt\nA,one,\nB,two,\nA,three,\n")
    assert [(s.name, s.prompt) for s in styles] == [("A", "three"), ("B", "two")]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"prompt,negative_prompt\nx,y\n", "row 1: the header"),
        (b"name,prompt,negative_prompt\nA,one,two,three\n", "row 2: 4 values"),
        (b"name,prompt,negative_prompt\nA,ok,\n,no name,\n", "row 3: name"),
        (b"name,prompt,negative_prompt\nA,ok,\nB\x00,x,\n", "row 3: name: .*control character"),
        (b'name,prompt,negative_prompt\nA,"b\nc",d\nx,"unterminated\n', "row 3: unexpected end of data"),
        (b"name,prompt,negative_prompt\n\xff\xfe,x,y\n", "not UTF-8"),
        (b'name,prompt,negative_prompt\n"a, b",x,y\n', "row 2: name: .*comma"),
    ],
)
def test_malformed_rows_are_rejected_with_their_row_number(data: bytes, message: str) -> None:
    with pytest.raises(StylesFileError, match=message):
        read_styles_csv(data)


def test_oversized_files_are_refused_before_parsing() -> None:
    data = b"name,prompt,negative_prompt\n" + b"a,b,c\n" * (MAX_STYLES_FILE_BYTES // 6 + 1)
    with pytest.raises(StylesFileError, match="MB"):
        read_styles_csv(data)
    with pytest.raises(StylesFileError, match="MB"):
        read_fooocus_styles(b"[" + b" " * MAX_STYLES_FILE_BYTES + b"]")


def test_a_prompt_over_the_request_limit_is_refused() -> None:
    data = write_styles_csv([Style(name="ok")]) + b"Long," + b"x" * 8001 + b",\r\n"
    with pytest.raises(StylesFileError, match="row 3: prompt"):
        read_styles_csv(data)


# --- Fooocus JSON -------------------------------------------------------------------------------------


def test_fooocus_style_json() -> None:
    data = json.dumps(
        [
            {"name": "Fooocus Enhance", "negative_prompt": "(worst quality, low quality)"},
            {
                "name": "sai-3d-model",
                "prompt": "professional 3d model {prompt}. octane render",
                "negative_prompt": "ugly",
            },
        ]
    ).encode("utf-8-sig")
    styles = read_fooocus_styles(data)
    assert styles == [
        Style(name="Fooocus Enhance", prompt="", negative_prompt="(worst quality, low quality)"),
        Style(
            name="sai-3d-model",
            prompt="professional 3d model {prompt}. octane render",
            negative_prompt="ugly",
        ),
    ]
    assert read_styles(data) == styles  # sniffed as JSON
    assert read_styles(write_styles_csv(styles)) == styles  # sniffed as CSV


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"name": "x"}', "JSON list"),
        (b'[{"name": "x"}, "y"]', "entry 2: must be an object"),
        (b'[{"name": "x", "eval": "__import__(\'os\')"}]', "entry 1: unknown key"),
        (b'[{"name": "x", "prompt": 3}]', "entry 1: prompt must be a string"),
        (b'[{"prompt": "x"}]', "entry 1: name"),
    ],
)
def test_bad_fooocus_files_are_rejected_clearly(data: bytes, message: str) -> None:
    with pytest.raises(StylesFileError, match=message):
        read_fooocus_styles(data)


def test_unknown_format() -> None:
    with pytest.raises(StylesFileError, match="unknown styles format"):
        read_styles(b"", "yaml")
