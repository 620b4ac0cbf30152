"""Modal dialogs: submit, notes folder, confirm, help. Keyboard first: Enter accepts, Escape cancels."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

MAX_COUNT = 100_000

DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{ width: 70; max-width: 95%; height: auto; border: thick $primary; background: $surface; padding: 1 2; }}
{name} Label.title {{ text-style: bold; margin-bottom: 1; }}
{name} Label.problem {{ color: $error; text-style: bold; height: auto; width: 1fr; }}
{name} Input {{ margin-bottom: 1; background: $boost; }}
{name} Horizontal {{ height: auto; align-horizontal: right; }}
{name} Button {{ margin-left: 1; }}
"""


def _no_blink(screen: ModalScreen) -> None:
    """A steady cursor: no redraw twice a second over SSH, and stable snapshots."""
    for field in screen.query(Input):
        field.cursor_blink = False


def _refusal_and_buttons() -> ComposeResult:
    """The bottom of a submit dialog: the line that says why nothing was sent, then Cancel/Submit."""
    yield Label("", classes="problem", id="error")
    with Horizontal():
        yield Button("Cancel", id="cancel", compact=True)
        yield Button("Submit", variant="primary", id="ok", compact=True)


@dataclass(frozen=True)
class SubmitRequest:
    handler: str
    payload: Any
    count: int


def parse_submit(handler: str, payload: str, count: str, known: list[str]) -> SubmitRequest:
    """The dialog's fields as a request, or ValueError with one line saying what to fix."""
    handler = handler.strip() or "echo"
    if handler not in known:
        raise ValueError(f"handler {handler!r} is not registered; choose one of: {', '.join(known)}")
    try:
        value = json.loads(payload.strip() or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"payload is not valid JSON ({exc.msg} at character {exc.pos})") from None
    try:
        n = int(count.strip() or "10")
    except ValueError:
        raise ValueError(f"count {count!r} is not a whole number") from None
    if not 1 <= n <= MAX_COUNT:
        raise ValueError(f"count {n} must be from 1 to {MAX_COUNT:,}")
    return SubmitRequest(handler, value, n)


class SubmitDialog(ModalScreen[SubmitRequest | None]):
    DEFAULT_CSS = DIALOG_CSS.format(name="SubmitDialog")
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="cancel")]

    def __init__(self, known: list[str]) -> None:
        super().__init__()
        self.known = known

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Submit jobs (Enter submits, Escape cancels)", classes="title")
            yield Label("handler: " + ", ".join(self.known))
            yield Input(value="echo", placeholder="handler", id="handler", compact=True)
            yield Label("payload (JSON)")
            yield Input(value="{}", placeholder="{}", id="payload", compact=True)
            yield Label("count")
            yield Input(value="10", placeholder="10", id="count", compact=True)
            yield from _refusal_and_buttons()

    def on_mount(self) -> None:
        _no_blink(self)
        self.query_one("#handler", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _submit(self) -> None:
        try:
            req = parse_submit(self.query_one("#handler", Input).value, self.query_one("#payload", Input).value,
                               self.query_one("#count", Input).value, self.known)
        except ValueError as exc:
            self.query_one("#error", Label).update(f"Not sent: {exc}")
            return
        self.dismiss(req)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class NotesDialog(ModalScreen[Path | None]):
    DEFAULT_CSS = DIALOG_CSS.format(name="NotesDialog")
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="cancel")]

    def __init__(self, default: str) -> None:
        super().__init__()
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Submit every .md note of a folder as notes.cards jobs", classes="title")
            yield Input(value=self.default, placeholder="folder", id="folder", compact=True)
            yield from _refusal_and_buttons()

    def on_mount(self) -> None:
        _no_blink(self)
        self.query_one(Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _submit(self) -> None:
        folder = Path(self.query_one(Input).value.strip() or ".").expanduser()
        if not folder.is_dir():
            self.query_one("#error", Label).update(f"Not sent: {str(folder)!r} is not a folder")
            return
        if not any(folder.rglob("*.md")):
            self.query_one("#error", Label).update(f"Not sent: no .md notes under {str(folder)!r}")
            return
        self.dismiss(folder)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmDialog(ModalScreen[str]):
    """A question with buttons; the first in ``choices`` is the default (focused, Enter)."""

    DEFAULT_CSS = DIALOG_CSS.format(name="ConfirmDialog") + """
    ConfirmDialog Label.title { width: 100%; }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="cancel"),
        Binding("left", "app.focus_previous", "Previous", show=False, id="previous-choice"),
        Binding("right", "app.focus_next", "Next", show=False, id="next-choice"),
    ]

    def __init__(self, question: str, choices: list[tuple[str, str]], cancel: str) -> None:
        super().__init__()
        self.question = question
        self.choices = choices
        self.cancel_value = cancel

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question, classes="title")
            with Horizontal():
                for value, label in self.choices:
                    yield Button(label, id=f"choice-{value}", compact=True)

    def on_mount(self) -> None:
        self.query(Button).first().focus()

    @on(Button.Pressed)
    def _chosen(self, event: Button.Pressed) -> None:
        self.dismiss((event.button.id or "").removeprefix("choice-"))

    def action_cancel(self) -> None:
        self.dismiss(self.cancel_value)


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = DIALOG_CSS.format(name="HelpScreen") + """
    HelpScreen Static { height: auto; }
    """
    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "Close", id="close-help")]

    def __init__(self, title: str, rows: list[tuple[str, str]]) -> None:
        super().__init__()
        self.title_text = title
        self.rows = rows

    def compose(self) -> ComposeResult:
        width = max((len(k) for k, _ in self.rows), default=4)
        text = "\n".join(f"{k:>{width}}  {d}" for k, d in self.rows)
        with Vertical():
            yield Label(f"Keys: {self.title_text} (Escape closes)", classes="title")
            yield Static(text)

    def action_close(self) -> None:
        self.dismiss(None)
