"""Timeline data and rendering for `evidence list` / `evidence show`."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from evidence.index import EvidenceIndex
from evidence.records import Actor, ExceptionRecord
from evidence.timeline import load_timeline, run_view, runs_table, safe_text


def _render(renderable: Any) -> str:
    console = Console(width=240, record=True, force_terminal=False, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_runs_table_lists_runs(make_run: Any, index: EvidenceIndex) -> None:
    h = make_run(steps=1)
    out = _render(runs_table(index.list_runs()))
    assert h.run_id in out
    assert "completed" in out
    assert "expense-report" in out


def test_timeline_entries_and_view(make_run: Any) -> None:
    h = make_run(steps=2)
    entries = load_timeline(h.folder.root)
    assert [e.seq for e in entries] == list(range(1, 9))
    assert entries[0].type == "run_record"
    assert entries[0].verdict == "start"
    assert entries[1].verdict == "allow"
    assert entries[1].step == 1
    assert entries[1].kind == "click"
    assert entries[3].verdict == "ok"
    assert entries[3].attachments == ("screenshots/0004-step01-after.png",)
    assert entries[-1].verdict == "completed"
    out = _render(run_view(h.folder.root))
    assert "screenshots/0004-step01-after.png" in out
    assert "alice" in out


def test_page_text_cannot_drive_the_terminal(start_run: Any) -> None:
    h = start_run()
    evil = "\x1b[2J\x1b]0;pwned\x07[bold red]fake[/] \u202eevil\r\nline"
    h.writer.append(ExceptionRecord, actor=Actor(type="page", id="p"), category="x", error_type="y",
                    message=evil, mitigation="recorded")
    out = _render(run_view(h.folder.root))
    assert "\x1b" not in out
    assert "\u202e" not in out
    assert "\x07" not in out
    assert "[bold red]fake[/]" in out  # shown literally, not interpreted as markup
    assert safe_text("a\x1bb\u2028c") == "a\\x1bb\\u2028c"
