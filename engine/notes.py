"""Pure logic of the ``notes.cards`` job: one Obsidian-style note in, flashcards out.

No Redis and no I/O here (except :func:`note_payload`, used by producers), so the
worker can call it as a plain function and tests can feed it strings.  Notes are
user input: every pattern below is linear-time, so one pathological line cannot
stall a worker, and anything unusable raises :class:`NoteError` with a one-line
reason instead of an arbitrary exception.

Supported syntax, in short (``examples/README.md`` has the long version):

* front matter between ``---`` lines, in a small YAML subset (``key: value``,
  quoted strings, ``[a, b]`` lists, ``- item`` lists, ``#`` comments);
* ``Q:`` / ``A:`` pairs, ``front::back`` inline cards, ``{{c1::text::hint}}``
  clozes, ``[[Target#Heading|alias]]`` wiki links and inline ``#tags``;
* fenced code blocks (``` and ~~~) and inline code spans are ignored.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = ["NoteError", "cards_handler", "note_payload", "parse_note"]

_BOM = "\ufeff"
_MASK = "\x00"  # stands in for inline code, so no syntax is ever found inside it
# Each distinct cloze number repeats its whole block as the card front; cap the
# product so a hostile note cannot make the worker build gigabytes of strings.
_MAX_CLOZE_OUTPUT = 16_000_000

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_FENCE = re.compile(r"[ \t]*(`{3,}|~{3,})(.*)")
_TICKS = re.compile(r"`+")
_HEADING = re.compile(r"[ \t]{0,3}(#{1,6})(?:[ \t]|$)")
_QUESTION = re.compile(r"[ \t]*Q:")
_ANSWER = re.compile(r"[ \t]*A:")
_LIST_ITEM = re.compile(r"[ \t]*(?:[-*+]|([0-9]{1,9})[.)])[ \t]+")
_INLINE_SEP = re.compile(r"(?<!:)::(?!:)")
# Cloze text and hint are runs that contain neither "::" nor "}}": the three
# alternatives start with different characters, so matching never backtracks badly.
_CLOZE_PART = r"(?:[^:}]|:(?!:)|\}(?!\}))*"
_CLOZE = re.compile(r"\{\{c([0-9]{1,9})::(" + _CLOZE_PART + r")(?:::(" + _CLOZE_PART + r"))?\}\}")
_WIKI = re.compile(r"\[\[([^\[\]]*)\]\]")
_TAG = re.compile(r"(?<!\S)#([\w/-]+)")
_TAG_SPLIT = re.compile(r"[,\s]+")

# Front matter (YAML subset).
_KEY_END = re.compile(r":(?=\s|$)")
_KEY = re.compile(r"\w[\w .-]*")
_LIST_DASH = re.compile(r"-(?=\s|$)")
_COMMENT = re.compile(r"(?:^|\s)#")
_DOUBLE_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_SINGLE_QUOTED = re.compile(r"'((?:[^']|'')*)'")
_FLOW_PLAIN = re.compile(r"[^,\[\]{}]*")
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", '"': '"', "\\": "\\", "/": "/", " ": " "}

FrontValue = str | list[str]


class NoteError(ValueError):
    """A note or payload that cannot become cards; ``str()`` is always one line.

    ``line`` is the 1-based line in the file when the problem has one.
    """

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(" ".join(message.splitlines()))
        self.line = line


# -- public API ----------------------------------------------------------------


def parse_note(data: str | bytes, path: str = "") -> dict[str, Any]:
    """Parse one note into a JSON-ready dict of title, tags, cards and links.

    ``path`` is only used for the fallback title (the file stem) and echoed back.
    Card and error line numbers count from the first line of the file.
    """
    text, size = _decode(data)
    if not text.strip():
        raise NoteError("empty note: file is empty" if not text else "empty note: only whitespace")
    lines = _LINE_BREAK.split(text)
    front, body_start = _split_front_matter(lines)
    body = lines[body_start:]
    if not any(line.strip() for line in body):
        raise NoteError("empty note: no text after front matter")
    scanned = _scan_body(body, first_no=body_start + 1)
    return {
        "path": path,
        "title": _title(front, scanned, path),
        "tags": _tags(front, scanned),
        "cards": _collect_cards(scanned),
        "links": _links(scanned),
        "words": sum(len(line.split()) for line in body),
        "bytes": size,
    }


def cards_handler(payload: dict[str, Any]) -> dict[str, Any]:
    """The ``notes.cards`` job: ``{"path", "text"}`` or ``{"path", "data_b64"}`` -> parse_note's dict."""
    if not isinstance(payload, dict):
        raise NoteError(f"payload: expected an object, got {type(payload).__name__}")
    path = payload.get("path", "")
    if not isinstance(path, str):
        raise NoteError(f"payload: 'path' must be a string, got {type(path).__name__}")
    text, data_b64 = payload.get("text"), payload.get("data_b64")
    if text is not None and data_b64 is not None:
        raise NoteError("payload: give only one of 'text' or 'data_b64'")
    if text is not None:
        if not isinstance(text, str):
            raise NoteError(f"payload: 'text' must be a string, got {type(text).__name__}")
        return parse_note(text, path)
    if data_b64 is not None:
        return parse_note(_b64decode(data_b64), path)
    raise NoteError("payload: needs 'text' or 'data_b64'")


def note_payload(path_on_disk: str | os.PathLike[str], rel_path: str) -> dict[str, str]:
    """Build the job payload for a file: ``text`` when it is UTF-8, else the raw bytes as ``data_b64``.

    Bytes that are not UTF-8 are still sent, so the worker reports *why* the note
    is bad (with the offset) instead of the producer silently dropping it.
    """
    data = Path(path_on_disk).read_bytes()
    try:
        return {"path": rel_path, "text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"path": rel_path, "data_b64": base64.b64encode(data).decode("ascii")}


# -- decoding ----------------------------------------------------------------------


def _decode(data: str | bytes) -> tuple[str, int]:
    """Return (text without a leading BOM, size in UTF-8 bytes); reject anything not UTF-8."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError(f"not valid UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start}") from None
        size = len(raw)
    elif isinstance(data, str):
        text = data
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError as exc:
            code = ord(text[exc.start])
            raise NoteError(f"not valid text: lone surrogate U+{code:04X} at offset {exc.start}") from None
    else:
        raise NoteError(f"note: expected text or bytes, got {type(data).__name__}")
    return text.removeprefix(_BOM), size


def _b64decode(data: Any) -> bytes:
    """Strict base64: a corrupted payload must fail loudly, not parse as garbage."""
    if not isinstance(data, str):
        raise NoteError(f"payload: 'data_b64' must be a string, got {type(data).__name__}")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NoteError(f"payload: 'data_b64' is not valid base64 ({exc})") from None


def _show(text: str, limit: int = 40) -> str:
    """Quote a snippet for an error message: short, and on one line thanks to repr()."""
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return repr(text)


# -- front matter ------------------------------------------------------------------


def _split_front_matter(lines: list[str]) -> tuple[dict[str, FrontValue], int]:
    """Parse a leading ``---`` block; return its values and the index of the first body line."""
    if lines[0].rstrip() != "---":
        return {}, 0
    for end in range(1, len(lines)):
        if lines[end].rstrip() == "---":
            return _parse_yaml(lines[1:end], first_no=2), end + 1
    raise NoteError("front matter: opened on line 1 but never closed with '---'", line=1)


def _parse_yaml(lines: list[str], first_no: int) -> dict[str, FrontValue]:
    """Parse the YAML subset notes use; anything else is an error, never a silent guess."""
    values: dict[str, FrontValue] = {}
    open_key: str | None = None  # a key with no inline value, which '- item' lines extend
    for no, line in enumerate(lines, first_no):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        where = f"front matter: line {no}"
        indent = line[: len(line) - len(line.lstrip())]
        if "\t" in indent:
            raise NoteError(f"{where}: tabs are not allowed for indentation", no)
        if _LIST_DASH.match(stripped):
            if open_key is None:
                raise NoteError(f"{where}: list item {_show(stripped)} has no 'key:' above it", no)
            item = _parse_scalar(stripped[1:].strip(), where, no)
            if item:
                _as_list(values, open_key).append(item)
            continue
        if indent:
            raise NoteError(f"{where}: unexpected indentation in {_show(stripped)} (nested values are not supported)", no)
        key, rest = _split_key(stripped, where, no)
        if key in values:
            raise NoteError(f"{where}: duplicate key {key!r}", no)
        if not rest or rest.startswith("#"):
            values[key], open_key = [], key
        else:
            values[key], open_key = _parse_value(rest, where, no), None
    return values


def _as_list(values: dict[str, FrontValue], key: str) -> list[str]:
    value = values[key]
    assert isinstance(value, list)  # open keys always start as []
    return value


def _split_key(line: str, where: str, no: int) -> tuple[str, str]:
    """Split ``key: value``; the colon must be followed by a space or end the line, as in YAML."""
    match = _KEY_END.search(line)
    key = line[: match.start()].rstrip() if match else ""
    if not match or not _KEY.fullmatch(key):
        raise NoteError(f"{where}: expected 'key: value', got {_show(line)}", no)
    return key, line[match.end() :].strip()


def _parse_value(text: str, where: str, no: int) -> FrontValue:
    """A top-level value: an inline list or a scalar; block scalars and mappings are refused."""
    if text[0] == "[":
        return _parse_flow_list(text, where, no)
    if text[0] in "|>":
        raise NoteError(f"{where}: block scalars ('|' and '>') are not supported", no)
    return _parse_scalar(text, where, no)


def _parse_scalar(text: str, where: str, no: int) -> str:
    """A quoted or plain string, with any trailing ``# comment`` removed."""
    if not text:
        return ""
    if text[0] in "\"'":
        value, end = _parse_quoted(text, 0, where, no)
        _expect_end(text[end:], where, no)
        return value
    if text[0] == "[":
        raise NoteError(f"{where}: lists inside lists are not supported", no)
    if text[0] == "{":
        raise NoteError(f"{where}: '{{...}}' mappings are not supported", no)
    comment = _COMMENT.search(text)
    return (text[: comment.start()] if comment else text).strip()


def _parse_quoted(text: str, start: int, where: str, no: int) -> tuple[str, int]:
    """Parse a quoted string at ``start``; return its value and the index just after it."""
    if text[start] == '"':
        match = _DOUBLE_QUOTED.match(text, start)
        if match:
            return _unescape(match.group(1), where, no), match.end()
    else:
        match = _SINGLE_QUOTED.match(text, start)
        if match:
            return match.group(1).replace("''", "'"), match.end()
    raise NoteError(f"{where}: unterminated quoted string {_show(text[start:])}", no)


def _unescape(body: str, where: str, no: int) -> str:
    """Resolve the escapes of a double-quoted YAML string (the common ones only)."""

    def one(match: re.Match[str]) -> str:
        esc = match.group(1)
        if esc[0] == "u" and len(esc) == 5:
            code = int(esc[1:], 16)
            if 0xD800 <= code <= 0xDFFF:
                raise NoteError(f"{where}: escape '\\{esc}' is a lone surrogate", no)
            return chr(code)
        if esc in _ESCAPES:
            return _ESCAPES[esc]
        raise NoteError(f"{where}: unknown escape {_show(match.group())} in quoted string", no)

    return _ESCAPE.sub(one, body)


def _parse_flow_list(text: str, where: str, no: int) -> list[str]:
    """Parse ``[a, "b, c", 'd']``: flat lists of strings, trailing comma allowed."""
    items: list[str] = []
    pos, end = 1, len(text)
    while True:
        pos = _skip_blanks(text, pos)
        if pos >= end:
            raise NoteError(f"{where}: list is missing its closing ']'", no)
        if text[pos] == "]":
            break
        if text[pos] in "\"'":
            item, pos = _parse_quoted(text, pos, where, no)
        elif text[pos] in "[{":
            raise NoteError(f"{where}: lists inside lists are not supported", no)
        else:
            plain = _FLOW_PLAIN.match(text, pos)
            assert plain is not None  # the pattern matches the empty string
            item, pos = plain.group().strip(), plain.end()
            if not item:
                raise NoteError(f"{where}: empty item in list", no)
        items.append(item)
        pos = _skip_blanks(text, pos)
        if pos < end and text[pos] == ",":
            pos += 1
        elif pos < end and text[pos] == "]":
            break
        elif pos >= end:
            raise NoteError(f"{where}: list is missing its closing ']'", no)
        else:
            raise NoteError(f"{where}: expected ',' or ']' in list, got {_show(text[pos:])}", no)
    _expect_end(text[pos + 1 :], where, no)
    return items


def _skip_blanks(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def _expect_end(tail: str, where: str, no: int) -> None:
    """After a quoted string or a list only a comment may follow."""
    rest = tail.strip()
    if rest and not rest.startswith("#"):
        raise NoteError(f"{where}: unexpected text {_show(rest)} after the value", no)


# -- body scanning -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Line:
    """A body line outside fenced code; ``masked`` hides inline code behind NULs, same length."""

    no: int
    text: str
    masked: str
    heading: int  # ATX heading level, 0 for ordinary lines


def _scan_body(lines: list[str], first_no: int) -> list[_Line | None]:
    """Drop fenced code blocks; each fence line becomes ``None``, which ends a paragraph."""
    out: list[_Line | None] = []
    fence: str | None = None
    for no, raw in enumerate(lines, first_no):
        if fence is not None:
            if _closes_fence(raw, fence):
                fence = None
                out.append(None)
            continue
        opener = _FENCE.match(raw)
        if opener and not (opener.group(1)[0] == "`" and "`" in opener.group(2)):
            fence = opener.group(1)
            out.append(None)
            continue
        masked = _mask_code_spans(raw)
        heading = _HEADING.match(masked)
        out.append(_Line(no, raw, masked, len(heading.group(1)) if heading else 0))
    return out


def _closes_fence(line: str, fence: str) -> bool:
    """A closing fence: only the opening character, at least as many times as it opened."""
    stripped = line.strip()
    return len(stripped) >= len(fence) and not stripped.strip(fence[0])


def _mask_code_spans(line: str) -> str:
    """Replace inline code spans (CommonMark: a backtick run up to the next run of equal length) by NULs.

    Done in linear time: for each run we precompute the next run of the same length.
    """
    if "`" not in line:
        return line
    runs = [(m.start(), m.end()) for m in _TICKS.finditer(line)]
    next_same: list[int | None] = [None] * len(runs)
    last_of_length: dict[int, int] = {}
    for i in range(len(runs) - 1, -1, -1):
        length = runs[i][1] - runs[i][0]
        next_same[i] = last_of_length.get(length)
        last_of_length[length] = i
    parts: list[str] = []
    pos = i = 0
    while i < len(runs):
        j = next_same[i]
        if j is None:
            i += 1
            continue
        start, end = runs[i][0], runs[j][1]
        parts += [line[pos:start], _MASK * (end - start)]
        pos, i = end, j + 1
    parts.append(line[pos:])
    return "".join(parts)


# -- title, tags, links ----------------------------------------------------------------


def _title(front: dict[str, FrontValue], lines: list[_Line | None], path: str) -> str:
    """Front matter ``title``, else the first ``# Heading``, else the file stem."""
    value = front.get("title", "")
    if isinstance(value, list):
        if value:
            raise NoteError("front matter: 'title' must be a single value, not a list")
        value = ""
    if value.strip():
        return value.strip()
    for line in lines:
        if line is not None and line.heading == 1:
            heading = _heading_text(line.text)
            if heading:
                return heading
    return PurePosixPath(path.replace("\\", "/")).stem or "untitled"


def _heading_text(line: str) -> str:
    """``# Title ##`` -> ``Title`` (the optional closing hashes need a space before them)."""
    text = line.strip().lstrip("#").strip()
    unclosed = text.rstrip("#")
    if not unclosed or unclosed[-1] in " \t":
        text = unclosed.rstrip()
    return text


def _tags(front: dict[str, FrontValue], lines: list[_Line | None]) -> list[str]:
    """Front matter tags, then inline ``#tags``; unique, in order of first appearance."""
    value = front.get("tags", [])
    items = [value] if isinstance(value, str) else value
    tags = [tag.lstrip("#") for item in items for tag in _TAG_SPLIT.split(item)]
    for line in lines:
        if line is None or line.heading or "#" not in line.masked:
            continue
        # Obsidian: a tag needs one non-digit character, so "#1984" is not a tag.
        tags += [m.group(1) for m in _TAG.finditer(line.masked) if not m.group(1).isdigit()]
    return list(dict.fromkeys(tag for tag in tags if tag))


def _links(lines: list[_Line | None]) -> list[str]:
    """Sorted unique targets of ``[[Target]]``, ``[[Target|alias]]`` and ``[[Target#Heading]]``."""
    targets: set[str] = set()
    for line in lines:
        if line is None or "[[" not in line.masked:
            continue
        for match in _WIKI.finditer(line.masked):
            inner = line.text[match.start(1) : match.end(1)]
            # In tables the alias pipe is written "\|": drop the backslash too.
            target = inner.split("|", 1)[0].split("#", 1)[0].rstrip("\\").strip()
            if target:
                targets.add(target)
    return sorted(targets)


# -- cards ---------------------------------------------------------------------------


def _card(kind: str, front: str, back: str, line: int) -> dict[str, Any]:
    return {"kind": kind, "front": front, "back": back, "line": line}


@dataclass(frozen=True, slots=True)
class _Cloze:
    start: int
    end: int
    num: int
    text: str
    hint: str | None


def _collect_cards(lines: list[_Line | None]) -> list[dict[str, Any]]:
    """All cards of the note, ordered by the line they start on."""
    collector = _CardCollector()
    for line in lines:
        collector.feed(line)
    return collector.finish()


class _CardCollector:
    """One pass over the body.

    Q/A pairs use a small state machine: a ``Q:`` waits for the next ``A:``
    (dropped at the next ``Q:`` or heading); continuation lines extend the
    question or answer until a blank line.  A line with ``front::back`` is an
    inline card on its own.  Every other line joins a block -- a paragraph, or
    one list item -- that gives one cloze card per cloze number, so clozes in
    prose wrapped over several lines keep their context.
    """

    def __init__(self) -> None:
        self.cards: list[dict[str, Any]] = []
        self._question: tuple[int, list[str]] | None = None
        self._answer: list[str] = []
        self._mode: str | None = None  # "q" or "a" while continuation lines are absorbed
        self._block: list[tuple[_Line, list[_Cloze]]] = []

    def feed(self, line: _Line | None) -> None:
        if line is None or not line.text.strip():
            self._end_paragraph()
        elif line.heading:
            self._end_paragraph()
            self._question = None
        elif question := _QUESTION.match(line.masked):
            self._end_paragraph()
            self._question = (line.no, [line.text[question.end() :].strip()])
            self._mode = "q"
        elif answer := _ANSWER.match(line.masked):
            self._end_paragraph()
            if self._question is not None:
                self._answer = [line.text[answer.end() :].strip()]
                self._mode = "a"
        elif self._mode == "q" and self._question is not None:
            self._question[1].append(line.text.strip())
        elif self._mode == "a":
            self._answer.append(line.text.strip())
        else:
            self._add_text_line(line)

    def _add_text_line(self, line: _Line) -> None:
        """An inline card stands alone; other lines join the current block (a list item starts one)."""
        clozes = _find_clozes(line)
        if not clozes and (card := _inline_card(line)):
            self._flush_block()
            self.cards.append(card)
            return
        if self._starts_list_item(line):
            self._flush_block()
        self._block.append((line, clozes))

    def _starts_list_item(self, line: _Line) -> bool:
        """As in CommonMark, "9. Thermidor" inside a paragraph continues it; only "1." or a bullet interrupts."""
        item = _LIST_ITEM.match(line.masked)
        if not item:
            return False
        if item.group(1) is None or int(item.group(1)) == 1 or not self._block:
            return True
        return bool(_LIST_ITEM.match(self._block[0][0].masked))

    def finish(self) -> list[dict[str, Any]]:
        self._end_paragraph()
        return sorted(self.cards, key=lambda card: card["line"])

    def _end_paragraph(self) -> None:
        if self._mode == "a":
            self._emit_qa()
        self._mode = None
        self._flush_block()

    def _emit_qa(self) -> None:
        assert self._question is not None
        line, question = self._question
        front = "\n".join(part for part in question if part)
        back = "\n".join(part for part in self._answer if part)
        if front and back:
            self.cards.append(_card("qa", front, back, line))
        self._question, self._answer = None, []

    def _flush_block(self) -> None:
        block, self._block = self._block, []
        if block:
            self.cards += _cloze_cards(block)


def _find_clozes(line: _Line) -> list[_Cloze]:
    """Clozes on one line, found on the masked text so inline code never counts."""
    if "{{" not in line.masked:
        return []
    clozes = []
    for m in _CLOZE.finditer(line.masked):
        hint = line.text[m.start(3) : m.end(3)].strip() if m.group(3) is not None else None
        text = line.text[m.start(2) : m.end(2)].strip()
        clozes.append(_Cloze(m.start(), m.end(), int(m.group(1)), text, hint))
    return clozes


def _cloze_cards(found: list[tuple[_Line, list[_Cloze]]]) -> list[dict[str, Any]]:
    """One card per cloze number: that number hidden, the others shown as plain text."""
    numbers = sorted({c.num for _, clozes in found for c in clozes if c.text})
    if not numbers:
        return []
    size = sum(len(line.text) for line, _ in found)
    if len(numbers) * size > _MAX_CLOZE_OUTPUT:
        first = found[0][0].no
        raise NoteError(f"line {first}: cloze block too large ({len(numbers)} cloze numbers in {size:,} characters)", first)
    cards = []
    for num in numbers:
        front = _strip_list_marker("\n".join(_render_clozes(line.text, clozes, num).strip() for line, clozes in found))
        hidden = [(line.no, c.text) for line, clozes in found for c in clozes if c.num == num and c.text]
        cards.append(_card("cloze", front.strip(), ", ".join(text for _, text in hidden), hidden[0][0]))
    return cards


def _render_clozes(text: str, clozes: list[_Cloze], hide: int) -> str:
    """The line with cloze ``hide`` as ``[...]`` (or ``[hint]``) and every other cloze as its text."""
    parts: list[str] = []
    pos = 0
    for cloze in clozes:
        parts.append(text[pos : cloze.start])
        if not cloze.text:
            parts.append(text[cloze.start : cloze.end])  # "{{c1::}}" hides nothing: keep it literal
        elif cloze.num == hide:
            parts.append(f"[{cloze.hint}]" if cloze.hint else "[...]")
        else:
            parts.append(cloze.text)
        pos = cloze.end
    parts.append(text[pos:])
    return "".join(parts)


def _inline_card(line: _Line) -> dict[str, Any] | None:
    """``front::back`` on one line: exactly two colons, outside code, text on both sides."""
    sep = _INLINE_SEP.search(line.masked)
    if not sep:
        return None
    front = _strip_list_marker(line.text[: sep.start()]).strip()
    back = line.text[sep.end() :].strip()
    return _card("inline", front, back, line.no) if front and back else None


def _strip_list_marker(text: str) -> str:
    """``- front`` or ``2. front`` -> ``front``: the bullet is layout, not part of the card."""
    marker = _LIST_ITEM.match(text)
    return text[marker.end() :] if marker else text
