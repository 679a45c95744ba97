"""``warden evidence list|show|verify``: read-only views of the evidence dir (never opened for writing)."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from evidence.index import EvidenceIndex
from evidence.timeline import run_view, runs_table
from evidence.verify import verify_run
from runner.errors import UsageError

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


def verify(ref: str, evidence_dir: Path, db_url: str | None) -> int:
    index = _index(evidence_dir, db_url)
    folder = resolve_run(ref, evidence_dir, index)
    report = verify_run(folder, index)
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
