"""What ``verify`` reports, and the small shapes its passes share (evidence.verify)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evidence.records import GENESIS_HASH, Record, RunRecord


@dataclass
class VerifyReport:
    run_id: str
    folder: Path
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # facts worth saying that are not tampering
    record_count: int = 0
    head: str = GENESIS_HASH
    status: str = "unknown"  # run.json status; "interrupted" for a run that never closed
    exit_code: int | None = None  # as the closing run_record (else run.json) says
    attachments_checked: int = 0
    index_checked: bool = False  # the index held the run and was compared with the folder

    def problem(self, text: str) -> None:
        self.ok = False
        self.problems.append(text)


@dataclass
class Line:
    """One line of ``records.jsonl``: its number, parsed JSON, typed record (None if invalid), text."""

    line_no: int
    data: dict[str, Any]
    record: Record | None
    text: str = ""


@dataclass(frozen=True)
class ChainFacts:
    """What the outcome, signature and index checks need to know of a verified chain."""

    start: RunRecord | None  # the opening run_record (phase start), when the chain opens with one
    closing: RunRecord | None  # the last record, when it is a closing run_record (phase end)
    has_lines: bool


def facts_of(lines: list[Line]) -> ChainFacts:
    """``ChainFacts`` from the lines a pass kept (every line, or the run_records plus the last)."""
    first = lines[0].record if lines else None
    last = lines[-1].record if lines else None
    start = first if isinstance(first, RunRecord) and first.phase == "start" else None
    if start is None:  # the chain does not open with it (a problem already): the first one found
        start = next((ln.record for ln in lines if isinstance(ln.record, RunRecord) and ln.record.phase == "start"),
                     None)
    closing = last if isinstance(last, RunRecord) and last.phase == "end" else None
    return ChainFacts(start=start, closing=closing, has_lines=bool(lines))


def where(line_no: int, seq: Any) -> str:
    return f"record {line_no} (seq {seq})" if isinstance(seq, int) else f"record {line_no}"


def int_seq(d: dict[str, Any]) -> int | None:
    seq = d.get("seq")
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None
