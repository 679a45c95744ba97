"""Data and rendering for ``warden evidence list`` and ``warden evidence show RUN``.

Data access (``load_timeline``, ``EvidenceIndex.list_runs``) is kept apart from rendering
(``runs_table``, ``timeline_table``, ``run_view``) so the CLI, the HTML report and ``--json``
output share one reading of the records. Rendered text goes into ``rich.text.Text`` (never markup)
and control/bidi characters are shown escaped: record values can carry page text, and page text
must not be able to style, move or hide anything in the auditor's terminal.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from evidence.runfolder import RunFolder, RunInfo

if TYPE_CHECKING:
    from evidence.index import RunRow  # SQLAlchemy's model: a type here, not an import at a run's close

SUMMARY_LIMIT = 160


@dataclass(frozen=True)
class TimelineEntry:
    time: str
    seq: int | None
    type: str
    step: int | None
    kind: str | None
    verdict: str | None  # decision, phase/outcome, or approval answer
    summary: str
    attachments: tuple[str, ...] = ()


def safe_text(value: Any, limit: int = SUMMARY_LIMIT) -> str:
    """Printable one-line text: control and bidi-override characters shown as escapes, length capped."""
    text = "" if value is None else str(value)
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat in {"Cc", "Cf", "Zl", "Zp"} or ch == "\x85":
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    text = "".join(out)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _target_text(target: Any) -> str:
    if isinstance(target, dict) and target:
        return " ".join(f"{k}={v}" for k, v in target.items())
    return ""


def summarize(d: dict[str, Any]) -> tuple[str | None, str]:
    """(verdict, one-line summary) for a record dict of any type."""
    t = d.get("type")
    if t == "run_record":
        if d.get("phase") == "end":
            return d.get("outcome"), f"run ended: {d.get('outcome')} (exit {d.get('exit_code')})"
        return "start", f"mission {d.get('mission_id')} v{d.get('mission_version')} started by {d.get('started_by')}"
    if t == "decision_record":
        count = d.get("count", 1)
        times = f" ×{count}" if isinstance(count, int) and count > 1 else ""
        return d.get("decision"), f"{d.get('guard')}: {d.get('rationale')}{times}"
    if t == "action_record":
        if d.get("phase") == "intent":
            return "intent", f"{d.get('call')} {_target_text(d.get('target'))}".strip()
        extra = f" — {d.get('error')}" if d.get("error") else ""
        url = f" → {d.get('url_after')}" if d.get("url_after") else ""
        return d.get("outcome") or "outcome", f"{d.get('call')}{url}{extra}"
    if t == "approval_request":
        return "asked", f"zone {d.get('zone')}: {d.get('reason')} (expires {d.get('expires_at')})"
    if t == "approval_record":
        who = d.get("approver") or d.get("os_user")
        return d.get("decision"), f"{who} via {d.get('channel')}: {d.get('reason')}"
    if t == "exception_record":
        return d.get("mitigation"), f"{d.get('category')}/{d.get('error_type')}: {d.get('message')}"
    if t == "pii_finding":
        return d.get("action"), finding_summary(d)
    if t == "version_log":
        changes = "; ".join(str(c) for c in d.get("changes") or [])
        versions = f"{d.get('old_version')} → {d.get('new_version')}"
        return None, f"{d.get('subject')} {d.get('subject_id')} {versions}: {changes}"
    return None, ""


def finding_count(d: dict[str, Any]) -> int:
    """Values a ``pii_finding`` record holds (v1: one)."""
    values = d.get("values")
    return len(values) if isinstance(values, list) else 1


def finding_summary(d: dict[str, Any]) -> str:
    """A ``pii_finding`` in one line: entity counts, where, masked previews (v2: one record per scan;
    v1: one per value)."""
    values = d.get("values")
    if not isinstance(values, list):  # warden.pii_finding/1
        return f"{d.get('entity_type')} in {d.get('where')} ({d.get('score')}): {d.get('preview')}"
    raw = d.get("counts")
    counts: dict[str, Any] = raw if isinstance(raw, dict) else {}
    what = ", ".join(f"{k} ×{v}" for k, v in counts.items())
    shown = [str(v.get("preview")) for v in values[:5] if isinstance(v, dict)]
    more = f" (+{len(values) - 5} more)" if len(values) > 5 else ""
    return f"{what} in {d.get('where')}: {', '.join(shown)}{more}"


def entry_from_record(d: dict[str, Any]) -> TimelineEntry:
    verdict, summary = summarize(d)
    step = d.get("step")
    seq = d.get("seq")
    atts = d.get("attachments") or []
    return TimelineEntry(
        time=str(d.get("time", "")),
        seq=seq if isinstance(seq, int) else None,
        type=str(d.get("type", "?")),
        step=step if isinstance(step, int) else None,
        kind=d.get("kind") if isinstance(d.get("kind"), str) else None,
        verdict=None if verdict is None else str(verdict),
        summary=summary,
        attachments=tuple(str(a.get("path")) for a in atts if isinstance(a, dict)),
    )


def load_timeline(folder: Path | str) -> list[TimelineEntry]:
    """Entries in file order, read from the folder (the source of truth); unreadable lines are marked.

    Showing is not verifying: run ``verify_run`` to know whether these records are intact.
    """
    rf = RunFolder(Path(folder).absolute())
    entries: list[TimelineEntry] = []
    with open(rf.records, "rb") as f:
        for n, raw in enumerate(f, start=1):
            try:
                data = json.loads(raw.decode("utf-8"))
                if not isinstance(data, dict):
                    raise ValueError("not an object")
            except ValueError:
                entries.append(TimelineEntry("", None, "?", None, None, None, f"line {n}: unreadable"))
                continue
            entries.append(entry_from_record(data))
    return entries


# -- rendering ------------------------------------------------------------------------------------

_VERDICT_STYLE = {
    "allow": "green", "approved": "green", "ok": "green", "completed": "green",
    "deny": "red", "denied": "red", "blocked": "red", "failed": "red", "expired": "red", "aborted": "red",
    "require_approval": "yellow", "asked": "yellow", "approval_required": "yellow", "stopped": "yellow",
    "interrupted": "yellow",
}


def _t(value: Any, style: str = "", limit: int = SUMMARY_LIMIT) -> Text:
    return Text(safe_text(value, limit), style=style)


def runs_table(runs: Sequence[RunRow], title: str = "Warden runs") -> Table:
    table = Table(title=title, show_lines=False)
    for col in ("run", "mission", "version", "started", "ended", "status", "exit", "records"):
        table.add_column(col, no_wrap=col in {"run", "started", "ended"})
    for r in runs:
        table.add_row(
            _t(r.run_id), _t(r.mission_id), _t(r.mission_version), _t(r.started_at), _t(r.ended_at or ""),
            _t(r.status, _VERDICT_STYLE.get(r.status, "")), _t("" if r.exit_code is None else r.exit_code),
            _t(r.record_count),
        )
    return table


def timeline_table(entries: Sequence[TimelineEntry], title: str = "Timeline") -> Table:
    table = Table(title=title)
    for col in ("time", "seq", "type", "step", "kind", "verdict", "summary", "attachments"):
        table.add_column(col, no_wrap=col in {"time", "seq"}, overflow="fold")
    for e in entries:
        table.add_row(
            _t(e.time), _t("" if e.seq is None else e.seq), _t(e.type), _t("" if e.step is None else e.step),
            _t(e.kind or ""), _t(e.verdict or "", _VERDICT_STYLE.get(e.verdict or "", "")), _t(e.summary),
            Text("\n".join(safe_text(a) for a in e.attachments)),
        )
    return table


def run_header(info: RunInfo) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    rows: list[tuple[str, Any]] = [
        ("run", info.run_id),
        ("mission", f"{info.mission_id} v{info.mission_version} (sha256 {info.mission_sha256[:12]}…)"),
        ("started", info.started_at),
        ("ended", info.ended_at or "—"),
        ("status", f"{info.status} (exit {info.exit_code})" if info.exit_code is not None else info.status),
        ("initiator", ", ".join(f"{k}={v}" for k, v in info.initiator.items())),
        ("variables", ", ".join(info.variables) or "—"),
        ("records", f"{info.record_count} (head {info.chain_head[:12]}…)"),
    ]
    for k, v in rows:
        grid.add_row(k, _t(v, _VERDICT_STYLE.get(str(v), "") if k == "status" else ""))
    return grid


def run_view(folder: Path | str) -> RenderableType:
    """Header from ``run.json`` (when readable) plus the timeline of ``records.jsonl``."""
    rf = RunFolder(Path(folder).absolute())
    parts: list[RenderableType] = []
    try:
        parts.append(run_header(rf.read_run_info()))
    except (OSError, ValueError):
        parts.append(Text(f"run {safe_text(rf.run_id)}: run.json unreadable", style="red"))
    parts.append(timeline_table(load_timeline(rf.root), title=f"Timeline of {safe_text(rf.run_id)}"))
    return Group(*parts)
