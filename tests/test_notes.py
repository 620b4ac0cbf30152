"""Tests of the ``notes.cards`` parser (engine/notes.py) and the sample vault; no Redis needed."""

from __future__ import annotations

import base64
import importlib.util
import json
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.notes import NoteError, cards_handler, note_payload, parse_note

ROOT = Path(__file__).resolve().parents[1]

VAULT = ROOT / "examples" / "vault"
BIG = VAULT / "big" / "encyclopedia.md"
KEYS = {"path", "title", "tags", "cards", "links", "words", "bytes"}

# What each deliberately bad note must say (a substring of the one-line message).
BAD_NOTES = {
    "bad/malformed-front-matter.md": "front matter: opened on line 1 but never closed with '---'",
    "bad/empty.md": "empty note: file is empty",
    "bad/only-front-matter.md": "empty note: no text after front matter",
    "bad/latin1.md": "not valid UTF-8: byte 0xe9 at offset 5",
}


def vault_notes() -> list[str]:
    return sorted(p.relative_to(VAULT).as_posix() for p in VAULT.rglob("*.md"))


def cards(text: str, kind: str | None = None) -> list[tuple[str, str]]:
    """(front, back) of the note's cards, optionally of one kind only."""
    return [(c["front"], c["back"]) for c in parse_note(text)["cards"] if kind is None or c["kind"] == kind]


def error_of(data: str | bytes) -> str:
    with pytest.raises(NoteError) as info:
        parse_note(data)
    return str(info.value)


def check_result(result: dict[str, Any], nlines: int | None = None) -> None:
    """Invariants every successful parse must keep."""
    assert set(result) == KEYS
    json.dumps(result)
    assert result["links"] == sorted(set(result["links"]))
    assert len(result["tags"]) == len(set(result["tags"]))
    assert isinstance(result["title"], str) and result["title"]
    for card in result["cards"]:
        assert card["kind"] in {"qa", "inline", "cloze"}
        assert card["front"] and card["back"]
        if nlines is not None:
            assert 1 <= card["line"] <= nlines
    lines = [c["line"] for c in result["cards"]]
    assert lines == sorted(lines)


# -- the sample vault ----------------------------------------------------------------


def test_vault_has_about_twenty_varied_notes() -> None:
    notes = vault_notes()
    good = [n for n in notes if not n.startswith(("bad/", "big/"))]
    assert len(good) >= 18
    assert set(BAD_NOTES) <= set(notes) and "big/encyclopedia.md" in notes
    assert not (VAULT / "README.md").exists()
    assert any(n.count("/") >= 2 for n in notes), "wants a nested subfolder"
    assert any(" " in n for n in notes) and any(not n.isascii() for n in notes)


@pytest.mark.parametrize("rel", vault_notes())
def test_vault_note(rel: str) -> None:
    data = (VAULT / rel).read_bytes()
    if rel in BAD_NOTES:
        message = error_of(data)
        assert BAD_NOTES[rel] in message
        assert "\n" not in message and len(message) < 200
        return
    result = parse_note(data, rel)
    check_result(result, nlines=data.count(b"\n") + 1)
    assert result["path"] == rel and result["bytes"] == len(data)
    assert result["cards"], f"{rel} should have cards"
    assert result["words"] > 0


def test_vault_covers_every_syntax() -> None:
    results = [parse_note((VAULT / n).read_bytes(), n) for n in vault_notes() if n not in BAD_NOTES]
    all_cards = [c for r in results for c in r["cards"]]
    assert {c["kind"] for c in all_cards} == {"qa", "inline", "cloze"}
    assert any("[...]" in c["front"] for c in all_cards)
    assert any(c["kind"] == "cloze" and "[...]" not in c["front"] for c in all_cards)  # hints
    assert sum(len(r["links"]) for r in results) > 20


def test_vault_sample_details() -> None:
    basics = parse_note((VAULT / "redis/Redis basics.md").read_bytes(), "redis/Redis basics.md")
    assert basics["title"] == "Redis basics"
    assert basics["tags"] == ["redis", "databases", "cache", "in-memory"]
    assert "Redis persistence (RDB & AOF)" in basics["links"] and "Redis streams" in basics["links"]
    assert ("What TCP port does Redis listen on by default?", "6379") in [(c["front"], c["back"]) for c in basics["cards"]]

    windows = parse_note((VAULT / "misc/Windows note (BOM, CRLF).md").read_bytes())
    assert windows["title"] == "Notes saved on Windows"
    assert not any("\r" in c["front"] + c["back"] for c in windows["cards"])

    assert parse_note((VAULT / "daily/2024-03-15.md").read_bytes(), "daily/2024-03-15.md")["title"] == "2024-03-15"
    assert parse_note((VAULT / "lang/Rust — ownership.md").read_bytes())["title"] == "Rust \u2014 ownership"


# -- the big note ---------------------------------------------------------------------


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_big_note", ROOT / "examples" / "make_big_note.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_big_note_size_and_payload() -> None:
    data = BIG.read_bytes()
    assert 850_000 <= len(data) <= 950_000
    payload = note_payload(BIG, "big/encyclopedia.md")
    assert "text" in payload
    assert len(json.dumps(payload)) < 1_048_576


def test_big_note_is_what_the_generator_makes() -> None:
    assert load_generator().build().encode("utf-8") == BIG.read_bytes()


def test_big_note_parses_fast_with_many_cards() -> None:
    data = BIG.read_bytes()
    started = time.perf_counter()
    result = parse_note(data, "big/encyclopedia.md")
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0, f"took {elapsed:.2f}s"
    check_result(result)
    kinds = [c["kind"] for c in result["cards"]]
    assert len(kinds) > 5000
    assert min(kinds.count(k) for k in ("qa", "inline", "cloze")) > 1000
    assert not any("no" == c["back"] for c in result["cards"])  # the cloze inside code blocks


@pytest.mark.parametrize(
    "line",
    [
        "`" + " a ``" * 200_000,
        "{{c1::" * 150_000,
        "{{c1::x::y" * 90_000,
        "[[a" * 300_000,
        ":" * 900_000,
        " #a" * 300_000,
        "#" + " " * 900_000 + "x",
        "a::" + "b" * 900_000,
    ],
    ids=["ticks", "open-clozes", "open-hints", "open-links", "colons", "tags", "heading", "long-inline"],
)
def test_pathological_lines_stay_fast(line: str) -> None:
    started = time.perf_counter()
    try:
        parse_note(line)
    except NoteError:
        pass
    assert time.perf_counter() - started < 1.0


def test_cloze_output_is_bounded() -> None:
    hostile = "".join(f"{{{{c{i}::a}}}}" for i in range(1, 60_000))
    assert "cloze block too large" in error_of(hostile)


# -- front matter ----------------------------------------------------------------------


def test_front_matter_title_and_tags() -> None:
    note = """---
# a comment
title: "Redis: a \\"fast\\" store \\u2014 really"

tags: [redis, 'data stores', "#cache"]
aliases:
  - one
  - 'it''s two'   # trailing comment
---
# Heading that is not the title
Body #inline
"""
    result = parse_note(note)
    assert result["title"] == 'Redis: a "fast" store \u2014 really'
    assert result["tags"] == ["redis", "data", "stores", "cache", "inline"]


@pytest.mark.parametrize(
    ("value", "tags"),
    [
        ("tags: a, b", ["a", "b"]),
        ("tags: a b  c", ["a", "b", "c"]),
        ("tags: [a, b,]", ["a", "b"]),
        ("tags: []", []),
        ("tags:\n- a\n-  b\n", ["a", "b"]),
        ("tags:\n  - '#a'\n  - b # note\n", ["a", "b"]),
        ("tags: #a #b", []),  # YAML: after ': ' a '#' starts a comment
        ("tags:", []),
    ],
)
def test_front_matter_tag_forms(value: str, tags: list[str]) -> None:
    assert parse_note(f"---\n{value}\n---\ntext\n")["tags"] == tags


def test_title_falls_back_to_heading_then_stem() -> None:
    assert parse_note("intro\n## Sub\n# Main title ##\n# Second\n")["title"] == "Main title"
    assert parse_note("# C#\n")["title"] == "C#"
    assert parse_note("---\ntitle: ''\n---\n# From heading\n")["title"] == "From heading"
    assert parse_note("no heading here", "notes/My Note.md")["title"] == "My Note"
    assert parse_note("```\n# not a heading\n```\ntext", "a/b.md")["title"] == "b"
    assert parse_note("text")["title"] == "untitled"


def test_inline_tags_skip_headings_and_code() -> None:
    note = "# Title #nope\n## Sub #nope2\n#yes and #also/nested, `#code` #1984 a#b\n```\n#fenced\n```\n#last"
    assert parse_note(note)["tags"] == ["yes", "also/nested", "last"]


def test_front_matter_broken_line_message() -> None:
    message = error_of("---\ntitle: ok\n::bad\n---\ntext\n")
    assert message == "front matter: line 3: expected 'key: value', got '::bad'"


@pytest.mark.parametrize(
    ("front", "expected"),
    [
        ("title: a\nnot a pair", "front matter: line 3: expected 'key: value', got 'not a pair'"),
        ("url:http://x", "front matter: line 2: expected 'key: value'"),
        ("title: a\ntitle: b", "front matter: line 3: duplicate key 'title'"),
        ("- item", "front matter: line 2: list item '- item' has no 'key:' above it"),
        ("title: a\n  nested: b", "front matter: line 3: unexpected indentation"),
        ("tags: [a, b", "front matter: line 2: list is missing its closing ']'"),
        ("tags: [a,, b]", "front matter: line 2: empty item in list"),
        ("tags: [a, [b]]", "lists inside lists are not supported"),
        ("tags: [a] b", "unexpected text 'b' after the value"),
        ("title: \"unterminated", "front matter: line 2: unterminated quoted string"),
        ("title: 'x' y", "unexpected text 'y' after the value"),
        ("title: \"\\q\"", "unknown escape"),
        ("text: |\n  block", "block scalars ('|' and '>') are not supported"),
        ("map: {a: 1}", "'{...}' mappings are not supported"),
        ("tags:\n\t- a", "front matter: line 3: tabs are not allowed for indentation"),
        ("title:\n  - a\n  - b", "'title' must be a single value"),
    ],
)
def test_front_matter_errors(front: str, expected: str) -> None:
    message = error_of(f"---\n{front}\n---\nbody text\n")
    assert expected in message
    assert "\n" not in message


def test_unclosed_front_matter() -> None:
    assert error_of("---\ntitle: x\n\n# Body\n") == "front matter: opened on line 1 but never closed with '---'"
    assert error_of("---") == "front matter: opened on line 1 but never closed with '---'"


def test_horizontal_rule_later_is_not_front_matter() -> None:
    assert parse_note("text\n---\nmore\n")["words"] == 3


# -- Q/A --------------------------------------------------------------------------------------


def test_qa_pairs() -> None:
    note = "Q: What is 2+2?\nA: 4\n\nQ: Capital of Italy?\n\nsome text between\n\nA: Rome\n"
    assert cards(note, "qa") == [("What is 2+2?", "4"), ("Capital of Italy?", "Rome")]


def test_qa_multiline_question_and_answer() -> None:
    note = "Q: Name the\nthree primary colours.\nA: Red,\nyellow,\nblue.\n\nNot part of the answer.\n"
    assert cards(note) == [("Name the\nthree primary colours.", "Red,\nyellow,\nblue.")]


def test_qa_line_is_the_question_line() -> None:
    assert [c["line"] for c in parse_note("---\nt: x\n---\n\nQ: q?\nA: a\n")["cards"]] == [5]


def test_question_without_answer_is_ignored() -> None:
    assert cards("Q: no answer here") == []
    assert cards("Q: first\n\nQ: second\nA: two\n") == [("second", "two")]
    assert cards("Q: dropped at a heading\n## Next\nA: orphan\n") == []
    assert cards("A: answer without a question\n") == []
    assert cards("Q:\nA: empty question\n") == []
    assert cards("Q: empty answer\nA:\n") == []


def test_qa_across_a_code_block() -> None:
    note = "Q: What does this print?\n```python\nprint(6 * 7)\n```\nA: 42\n"
    assert cards(note) == [("What does this print?", "42")]


# -- inline cards ---------------------------------------------------------------------------


def test_inline_cards() -> None:
    note = "Capital of France::Paris\n- Capital of Spain :: Madrid\n2. `len` of `[1, 2]`::2\n"
    assert cards(note, "inline") == [("Capital of France", "Paris"), ("Capital of Spain", "Madrid"), ("`len` of `[1, 2]`", "2")]


@pytest.mark.parametrize(
    "line",
    ["::no front", "no back::", "no back::   ", "a:::b", "`std::vector` is a template", "slice `a[::2]`", "# Heading::no"],
)
def test_not_inline_cards(line: str) -> None:
    assert cards(line + "\n") == []


def test_inline_card_keeps_code_and_later_colons() -> None:
    assert cards("What does `a::b` mean in C++?::scope resolution::really\n") == [
        ("What does `a::b` mean in C++?", "scope resolution::really")
    ]


# -- clozes ------------------------------------------------------------------------------------


def test_cloze_single_and_hint() -> None:
    assert cards("The capital of France is {{c1::Paris}}.\n") == [("The capital of France is [...].", "Paris")]
    assert cards("Water boils at {{c1::100 °C::temperature}}.\n") == [("Water boils at [temperature].", "100 °C")]


def test_multiple_clozes_one_card_per_number() -> None:
    result = parse_note("{{c1::Ottawa}} is the capital of {{c2::Canada::country}}; {{c1::Canberra}} of Australia.\n")
    assert [(c["kind"], c["front"], c["back"]) for c in result["cards"]] == [
        ("cloze", "[...] is the capital of Canada; [...] of Australia.", "Ottawa, Canberra"),
        ("cloze", "Ottawa is the capital of [country]; Canberra of Australia.", "Canada"),
    ]


def test_cloze_block_spans_wrapped_lines() -> None:
    note = "intro\n\nThe {{c1::mitochondrion}} is\nthe powerhouse of the {{c2::cell}}.\n\n{{c1::Other}} paragraph.\n"
    result = parse_note(note)
    assert [(c["front"], c["back"], c["line"]) for c in result["cards"]] == [
        ("The [...] is\nthe powerhouse of the cell.", "mitochondrion", 3),
        ("The mitochondrion is\nthe powerhouse of the [...].", "cell", 4),
        ("[...] paragraph.", "Other", 6),
    ]


def test_list_items_are_separate_cloze_blocks() -> None:
    note = "- {{c1::Red}} is a colour\n- {{c1::Blue}} too\n"
    assert cards(note) == [("[...] is a colour", "Red"), ("[...] too", "Blue")]


def test_inline_card_line_is_not_cloze_context() -> None:
    note = "Capital of Peru::Lima\nThe {{c1::Amazon}} is long.\n"
    assert cards(note) == [("Capital of Peru", "Lima"), ("The [...] is long.", "Amazon")]


def test_cloze_edge_cases() -> None:
    assert cards("`{{c1::in code}}` stays\n") == []
    assert cards("empty {{c1::}} is literal, {{c2::this}} is not\n") == [("empty {{c1::}} is literal, [...] is not", "this")]
    assert cards("unclosed {{c1::oops\n") == [("unclosed {{c1", "oops")]  # no cloze, so an inline card
    assert cards("{{c1::a `}}` b}}\n") == [("[...]", "a `}}` b")]
    assert cards("{{c10::ten}} {{c2::two}}\n") == [("ten [...]", "two"), ("[...] two", "ten")]


# -- wiki links --------------------------------------------------------------------------------


def test_wiki_link_variants() -> None:
    note = (
        "[[Target]] [[Other|alias]] [[Third#Heading]] [[Fourth#Heading|alias]] [[Target]]\n"
        "| [[Table\\|alias]] | ![[image.png]] | [[#Own heading]] | [[ ]] | [[Spaced name ]]\n"
        "`[[In code]]`\n```\n[[In fence]]\n```\n"
    )
    assert parse_note(note)["links"] == ["Fourth", "Other", "Spaced name", "Table", "Target", "Third", "image.png"]


# -- code blocks --------------------------------------------------------------------------------


def test_code_blocks_are_ignored() -> None:
    note = """Before::card
```python
Q: not a question
A: no
a::b
{{c1::no}}
```
~~~
x::y
```
still in the tilde block::no
~~~
````
``` does not close a four-backtick fence
x::y
````
After::card
"""
    assert cards(note) == [("Before", "card"), ("After", "card")]


def test_unclosed_fence_hides_the_rest() -> None:
    assert cards("a::b\n```\nc::d\n") == [("a", "b")]


def test_backticks_with_info_containing_backtick_are_not_a_fence() -> None:
    assert cards("```inline``` a::b\n") == [("```inline``` a", "b")]


# -- decoding, BOM, empty notes ------------------------------------------------------------------


def test_bom_and_crlf() -> None:
    note = "---\r\ntitle: T\r\n---\r\nQ: q\r\nA: a\r\n"
    for data in ("\ufeff" + note, b"\xef\xbb\xbf" + note.encode()):
        result = parse_note(data)
        assert result["title"] == "T" and cards_of(result) == [("q", "a")]
        assert result["bytes"] == len(note) + 3


def cards_of(result: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["front"], c["back"]) for c in result["cards"]]


def test_invalid_utf8_reports_offset() -> None:
    assert error_of(b"abc\xff") == "not valid UTF-8: byte 0xff at offset 3"
    assert error_of("Caf\u00e9\n".encode("latin-1")) == "not valid UTF-8: byte 0xe9 at offset 3"
    assert error_of(b"ok \xe2\x82") == "not valid UTF-8: byte 0xe2 at offset 3"


def test_lone_surrogate_is_rejected() -> None:
    assert error_of("a\ud800b") == "not valid text: lone surrogate U+D800 at offset 1"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("", "empty note: file is empty"),
        (b"", "empty note: file is empty"),
        ("\ufeff", "empty note: file is empty"),
        (" \n\t\r\n", "empty note: only whitespace"),
        ("---\n---\n", "empty note: no text after front matter"),
        ("---\ntitle: x\n---\n  \n\n", "empty note: no text after front matter"),
    ],
)
def test_empty_notes(data: str | bytes, expected: str) -> None:
    assert error_of(data) == expected


def test_words_and_bytes() -> None:
    result = parse_note("---\ntitle: not counted\n---\nthree words here\né\n", "x.md")
    assert result["words"] == 4
    assert result["bytes"] == len("---\ntitle: not counted\n---\nthree words here\né\n".encode())


def test_error_message_is_always_one_line() -> None:
    assert str(NoteError("first\nsecond\r\nthird\u2028fourth")) == "first second third fourth"
    assert "\n" not in error_of("---\ntitle: \"a\n---\nx")


# -- hypothesis: nothing but NoteError ---------------------------------------------------------------

FRAGMENTS = [
    "---\n", "---", "\n", "\r\n", "\r", " ", "\t", "\ufeff", "title: ", "tags: ", "tags:\n", "- ", "  - ", "[", "]",
    ",", '"', "'", "\\", "\\u", "#", "# ", "## ", "Q:", "A:", "Q: q\n", "A: a\n", "::", ":", "{{c", "{{c1::", "{{c2::",
    "}}", "{{", "[[", "]]", "|", "\\|", "`", "``", "```\n", "~~~\n", "````", "1. ", "* ", "x", "é", "日本", "\x00",
]
soup = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=4), max_size=40).map("".join)


def parse_or_note_error(data: str | bytes) -> dict[str, Any] | None:
    try:
        result = parse_note(data, "prop/test.md")
    except NoteError as exc:
        assert str(exc) and "\n" not in str(exc)
        return None
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    check_result(result, nlines=text.count("\n") + text.count("\r") + 1)
    return result


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_raises_only_note_error(text: str) -> None:
    parse_or_note_error(text)


@settings(max_examples=300, deadline=None)
@given(st.binary())
def test_arbitrary_bytes_raise_only_note_error(data: bytes) -> None:
    parse_or_note_error(data)


@settings(max_examples=600, deadline=None)
@given(soup)
def test_syntax_soup_raises_only_note_error(text: str) -> None:
    parse_or_note_error(text)
    parse_or_note_error(text.encode("utf-8"))


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1).filter(lambda s: s.strip() and not s.startswith("---")))
def test_str_and_bytes_agree(text: str) -> None:
    try:
        expected = parse_note(text)
    except NoteError:
        return
    assert parse_note(text.encode("utf-8")) == expected


# -- payload helpers --------------------------------------------------------------------------------


def test_note_payload_text_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "Crème brûlée.md"
    path.write_text("# Crème\n\nQ: q\nA: a\n", encoding="utf-8")
    payload = note_payload(path, "cooking/Crème brûlée.md")
    assert payload == {"path": "cooking/Crème brûlée.md", "text": "# Crème\n\nQ: q\nA: a\n"}
    wire = json.loads(json.dumps(payload))
    assert cards_handler(wire) == parse_note(path.read_bytes(), "cooking/Crème brûlée.md")


def test_note_payload_binary_round_trip() -> None:
    path = VAULT / "bad" / "latin1.md"
    payload = note_payload(path, "bad/latin1.md")
    assert set(payload) == {"path", "data_b64"}
    assert base64.b64decode(payload["data_b64"]) == path.read_bytes()
    with pytest.raises(NoteError, match=r"^not valid UTF-8: byte 0xe9 at offset 5$"):
        cards_handler(json.loads(json.dumps(payload)))


def test_data_b64_of_valid_utf8_parses() -> None:
    data = "\ufeffa::b\n".encode()
    result = cards_handler({"path": "x.md", "data_b64": base64.b64encode(data).decode()})
    assert cards_of(result) == [("a", "b")] and result["bytes"] == len(data)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200) | soup.map(lambda s: s.encode("utf-8")))
def test_note_payload_keeps_the_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "note.md"
        path.write_bytes(data)
        payload = note_payload(path, "note.md")
    sent = payload["text"].encode("utf-8") if "text" in payload else base64.b64decode(payload["data_b64"])
    assert sent == data
    try:
        direct: dict[str, Any] | str = parse_note(data, "note.md")
    except NoteError as exc:
        direct = str(exc)
    try:
        via_handler: dict[str, Any] | str = cards_handler(json.loads(json.dumps(payload)))
    except NoteError as exc:
        via_handler = str(exc)
    assert via_handler == direct


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"path": "x.md"}, "payload: needs 'text' or 'data_b64'"),
        ({}, "payload: needs 'text' or 'data_b64'"),
        ({"path": "x.md", "text": None}, "payload: needs 'text' or 'data_b64'"),
        ({"path": "x.md", "text": 3}, "payload: 'text' must be a string, got int"),
        ({"path": 3, "text": "x"}, "payload: 'path' must be a string, got int"),
        ({"path": "x.md", "text": "a", "data_b64": "YQ=="}, "payload: give only one of 'text' or 'data_b64'"),
        ({"path": "x.md", "data_b64": "not base64!"}, "payload: 'data_b64' is not valid base64"),
        ({"path": "x.md", "data_b64": "é"}, "payload: 'data_b64' is not valid base64"),
        ({"path": "x.md", "data_b64": ["YQ=="]}, "payload: 'data_b64' must be a string, got list"),
        (["x.md", "text"], "payload: expected an object, got list"),
    ],
)
def test_cards_handler_payload_errors(payload: Any, expected: str) -> None:
    with pytest.raises(NoteError) as info:
        cards_handler(payload)
    assert str(info.value).startswith(expected)


def test_cards_handler_text() -> None:
    result = cards_handler({"path": "deck/geo.md", "text": "# Geo\nCapital of Chile::Santiago\n"})
    assert result["path"] == "deck/geo.md" and result["title"] == "Geo"
    assert cards_of(result) == [("Capital of Chile", "Santiago")]
    assert cards_handler({"text": "a::b"})["path"] == ""
