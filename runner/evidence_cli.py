"""``warden evidence list|show|verify``: read-only views of the evidence dir (never opened for writing)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from evidence.index import EvidenceIndex
from evidence.timeline import run_view, runs_table
from evidence.verify import VerifyReport, verify_run
from kernel.errors import UsageError

# Piped output (files, CI logs) gets a wide page instead of rich's 80-column default.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def _index(evidence_dir: Path, db_url: str | None) -> EvidenceIndex | None:
    if db_url is None and not (evidence_dir / "warden.db").exists():
        return None
    return EvidenceIndex(db_url or evidence_dir)


def resolve_run(ref: str, evidence_dir: Path, index: EvidenceIndex | None) -> Path:
    """A run id (a unique prefix is enough) from the index or the folders, or the path of a run folder."""
    as_path = Path(ref)
    if (as_path / "records.jsonl").exists():
        return as_path.absolute()
    if index is not None:
        return Path(index.find_run(ref).folder)
    runs = evidence_dir / "runs"
    found = sorted(p for p in runs.glob(f"{ref}*") if p.is_dir()) if runs.is_dir() and ref else []
    if len(found) == 1:
        return found[0].absolute()
    if not found:
        raise UsageError(f"no run matches {ref!r} in {evidence_dir}")
    raise UsageError(f"run id {ref!r} is ambiguous: " + ", ".join(p.name for p in found[:5]))


def list_runs(evidence_dir: Path, db_url: str | None) -> None:
    index = _index(evidence_dir, db_url)
    if index is None:
        out.print(f"no runs in {escape(str(evidence_dir))}")
        return
    out.print(runs_table(index.list_runs()))


def show_run(ref: str, evidence_dir: Path, db_url: str | None) -> None:
    folder = resolve_run(ref, evidence_dir, _index(evidence_dir, db_url))
    out.print(run_view(folder))


def _public_key(path: Path | None) -> Any:
    if path is None:
        return None
    from evidence.signing import load_public_key

    return load_public_key(path)


def verify(ref: str, evidence_dir: Path, db_url: str | None, public_key: Path | None = None) -> int:
    index = _index(evidence_dir, db_url)
    folder = resolve_run(ref, evidence_dir, index)
    return _print_report(verify_run(folder, index, _public_key(public_key)))


def verify_all(evidence_dir: Path, db_url: str | None, public_key: Path | None = None) -> int:
    """Every run of the store: the index's rows and the folders under ``runs/``; 1 if any fails."""
    index = _index(evidence_dir, db_url)
    key = _public_key(public_key)
    folders: dict[str, Path] = {}
    runs_dir = evidence_dir / "runs"
    if runs_dir.is_dir():
        folders = {p.name: p.absolute() for p in runs_dir.iterdir() if p.is_dir()}
    failed = missing = 0
    if index is not None:
        for row in index.list_runs():
            if row.run_id not in folders and not Path(row.folder).is_dir():
                out.print(f"[red]problem:[/] index lists run {escape(row.run_id)} but its folder "
                          f"{escape(row.folder)} is gone — run deleted")
                out.print(f"[red]ALTERED[/] {escape(row.run_id)}: 1 problem(s)")
                missing += 1
            else:
                folders.setdefault(row.run_id, Path(row.folder))
    for run_id in sorted(folders):
        failed += _print_report(verify_run(folders[run_id], index, key))
    total, failed = len(folders) + missing, failed + missing
    if failed:
        out.print(f"[red]{failed} of {total} run(s) failed verification[/]")
        return 1
    out.print(f"[green]all {total} run(s) intact[/]")
    return 0


def _print_report(report: VerifyReport) -> int:
    for note in report.notes:
        out.print(f"[dim]note:[/] {escape(note)}")
    if report.ok:
        out.print(
            f"[green]intact[/] {escape(report.run_id)}: {report.record_count} records, "
            f"{report.attachments_checked} attachments, chain head {report.head[:16]}… "
            f"(run {escape(report.status)})"
        )
        return 0
    for problem in report.problems:
        out.print(f"[red]problem:[/] {escape(problem)}")
    out.print(f"[red]ALTERED[/] {escape(report.run_id)}: {len(report.problems)} problem(s)")
    return 1


# -- query / reindex / export / report (evidence/query.py, reindex.py, export.py, report.py) ---------


def _required_index(evidence_dir: Path, db_url: str | None) -> EvidenceIndex:
    index = _index(evidence_dir, db_url)
    if index is None:
        raise UsageError(f"no index in {evidence_dir} (warden.db): run `warden evidence reindex` to build it")
    return index


def query(
    evidence_dir: Path,
    db_url: str | None,
    *,
    types: tuple[str, ...],
    run_ref: str | None,
    mission: str | None,
    since: str | None,
    until: str | None,
    outcome: str | None,
    decision: str | None,
    where: tuple[str, ...],
    limit: int | None,
    fmt: str,
) -> int:
    """Print matching records; returns how many."""
    from rich.table import Table

    from evidence.query import RecordQuery, run_query, table_rows, write_csv, write_jsonl

    q = RecordQuery.build(
        types=types, mission_id=mission, since=since, until=until, outcome=outcome, decision=decision,
        where=where, limit=limit,
    )
    index = _required_index(evidence_dir, db_url)
    try:
        if run_ref is not None:
            q = dataclasses.replace(q, run_id=index.find_run(run_ref).run_id)
        rows = run_query(index, q)
        if fmt == "jsonl":
            return write_jsonl(rows, sys.stdout)
        if fmt == "csv":
            return write_csv(rows, sys.stdout)
        table = Table(title=None)
        for col in ("time", "run", "seq", "type", "step", "kind", "verdict", "summary"):
            table.add_column(col, no_wrap=col in {"time", "seq"}, overflow="fold")
        n = 0
        for cells in table_rows(rows):
            table.add_row(*(Text(c) for c in cells))
            n += 1
        out.print(table)
        out.print(f"{n} record(s)")
        return n
    finally:
        index.close()


def reindex(evidence_dir: Path, db_url: str | None, *, clear: bool, force: bool) -> int:
    """Rebuild the index from the run folders; exit 1 when a folder failed or conflicts with the index."""
    from evidence.reindex import reindex as rebuild

    index = EvidenceIndex(db_url or evidence_dir)
    try:
        report = rebuild(evidence_dir, index, clear=clear, force=force)
    finally:
        index.close()
    for note in report.notes:
        out.print(f"[dim]note:[/] {escape(note)}")
    for run_id, why in report.skipped:
        out.print(f"[yellow]skipped[/] {escape(run_id)}: {escape(why)}")
    for folder, why in report.failed:
        out.print(f"[red]failed[/] {escape(folder)}: {escape(why)}")
    for run_id, why in report.conflicts:
        out.print(f"[red]conflict[/] {escape(run_id)}: {escape(why)} — not reindexed; run "
                  f"`warden evidence verify {escape(run_id)}` (or reindex --force to overwrite the index)")
    for run_id in report.orphans:
        out.print(f"[yellow]orphan[/] {escape(run_id)}: in the index but its folder is gone")
    out.print(
        f"indexed {report.runs} run(s), {report.records} record(s); {len(report.failed)} folder(s) failed, "
        f"{len(report.conflicts)} conflict(s), {len(report.skipped)} skipped"
    )
    return 0 if report.ok else 1


def export(ref: str, evidence_dir: Path, db_url: str | None, fmt: str, output: Path | None) -> int:
    from evidence.export import export_run

    index = _index(evidence_dir, db_url)
    folder = resolve_run(ref, evidence_dir, index)
    if index is not None:
        index.close()
    raw = (folder / "records.jsonl").read_bytes()
    lines = raw.split(b"\n")
    torn = lines.pop()  # an unfinished last write (run killed) is not a record
    if torn:
        print(f"warning: ignoring an incomplete last line ({len(torn)} bytes)", file=sys.stderr)
    text = [line.decode("utf-8") for line in lines if line.strip()]
    if output is None:
        return export_run(text, fmt, sys.stdout)  # type: ignore[arg-type]
    with open(output, "w", encoding="utf-8") as f:
        n = export_run(text, fmt, f)  # type: ignore[arg-type]
    print(f"{n} {fmt} event(s) written to {output}", file=sys.stderr)
    return n


def report(ref: str, evidence_dir: Path, db_url: str | None) -> Path:
    from evidence.report import write_report

    index = _index(evidence_dir, db_url)
    try:
        folder = resolve_run(ref, evidence_dir, index)
        path = write_report(folder, index)
    finally:
        if index is not None:
            index.close()
    out.print(f"report: {escape(str(path))}")
    return path
