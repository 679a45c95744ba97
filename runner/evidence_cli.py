"""``warden evidence list|show|verify|query|export``: read-only views of the evidence dir.

Read-only means it: these commands never run crash recovery, never create, rewrite or touch a
file — the run folders, their ``.lock`` files and ``warden.db`` keep their bytes and mtimes (the
SQLite index is opened read-only, ``immutable`` when no writer's WAL is present). A run still
marked running whose process is gone is shown as ``interrupted?`` with a hint to run ``warden
evidence recover``, the explicit step that closes it (``warden run`` and ``warden approvals`` do
it too). ``verify`` judges the folder it is given: a path is that folder, a RUN id is
``DIR/runs/<id>`` — never the path the index recorded.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from evidence.index import EvidenceIndex
from evidence.runfolder import FINISHED_STATUSES, RunFolder, RunLock
from evidence.timeline import run_view, runs_table
from evidence.verify import VerifyReport, verify_run
from kernel.errors import UsageError
from runner.evidence_locate import find_run, index_at_hand, open_index, resolve_run

# Piped output (files, CI logs) gets a wide page instead of rich's 80-column default.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _dead_but_running(folder: Path) -> bool:
    """Marked running (run.json) and no live process holds its lock: killed, not yet recovered."""
    try:
        status = RunFolder(folder).read_run_info().status
    except (OSError, ValueError):
        return False
    return status not in FINISHED_STATUSES and RunLock.is_held(RunFolder(folder)) is False


def _recover_hint(run_ids: list[str]) -> None:
    if run_ids:
        names = ", ".join(escape(r) for r in run_ids[:5]) + (", ..." if len(run_ids) > 5 else "")
        err.print(
            f"[yellow]interrupted?[/] {len(run_ids)} run(s) marked running whose process is gone ({names}): "
            "`warden evidence recover` closes them (this command changed nothing)"
        )


def list_runs(evidence_dir: Path, db_url: str | None) -> None:
    index = open_index(evidence_dir, db_url)
    if index is None:
        out.print(f"no runs in {escape(str(evidence_dir))}")
        return
    try:
        rows = index.list_runs()
    finally:
        index.close()
    dead: list[str] = []
    for row in rows:  # detached rows: changing what is shown writes nothing
        if row.status == "running" and RunLock.is_held(RunFolder(evidence_dir / "runs" / row.run_id)) is False:
            row.status = "interrupted?"
            dead.append(row.run_id)
    out.print(runs_table(rows))
    _recover_hint(dead)


def show_run(ref: str, evidence_dir: Path, db_url: str | None) -> None:
    folder = find_run(ref, evidence_dir, db_url)
    out.print(run_view(folder))
    if _dead_but_running(folder):
        _recover_hint([folder.name])


def _public_key(path: Path | None) -> Any:
    if path is None:
        return None
    from evidence.signing import load_public_key

    return load_public_key(path)


def _index_for(folder: Path, evidence_dir: Path, db_url: str | None) -> EvidenceIndex | None:
    """The index at hand for a folder: the one given (``--db`` / ``--evidence-dir``), else the one of
    the evidence dir the folder sits in (``X/runs/<id>`` with ``X/warden.db``)."""
    index = open_index(evidence_dir, db_url)
    if index is None and folder.parent.name == "runs" and (folder.parent.parent / "warden.db").exists():
        index = open_index(folder.parent.parent, None)
    return index


def verify(ref: str, evidence_dir: Path, db_url: str | None, public_key: Path | None = None) -> int:
    key = _public_key(public_key)
    folder = find_run(ref, evidence_dir, db_url)
    index = _index_for(folder, evidence_dir, db_url)
    try:
        code = _print_report(verify_run(folder, index, key))
    finally:
        if index is not None:
            index.close()
    if _dead_but_running(folder):
        _recover_hint([folder.name])
    return code


def verify_all(evidence_dir: Path, db_url: str | None, public_key: Path | None = None) -> int:
    """Every run of the store: the folders under ``runs/`` and the index's rows; 1 if any fails.

    A run the index lists must have its folder in ``DIR/runs``: the path the index recorded is not
    looked at (a folder elsewhere is not this store's evidence). With a shared ``--db`` index, runs
    it recorded as written into another evidence dir are left to that dir (said in a note).
    """
    index = open_index(evidence_dir, db_url)
    key = _public_key(public_key)
    folders: dict[str, Path] = {}
    runs_dir = evidence_dir / "runs"
    if runs_dir.is_dir():
        folders = {p.name: p.absolute() for p in runs_dir.iterdir() if p.is_dir()}
    failed = missing = 0
    dead: list[str] = []
    elsewhere = 0
    try:
        if index is not None:
            for row in index.list_runs():
                if db_url is not None and Path(row.folder).parent != runs_dir.absolute() and row.run_id not in folders:
                    elsewhere += 1  # a shared --db index: that run was written into another evidence dir
                    continue
                if row.run_id not in folders:
                    out.print(f"[red]problem:[/] index lists run {escape(row.run_id)} but its folder "
                              f"{escape(str(runs_dir / row.run_id))} is gone — run deleted")
                    out.print(f"[red]ALTERED[/] {escape(row.run_id)}: 1 problem(s)")
                    missing += 1
        for run_id in sorted(folders):
            failed += _print_report(verify_run(folders[run_id], index, key))
            if _dead_but_running(folders[run_id]):
                dead.append(run_id)
    finally:
        if index is not None:
            index.close()
    _recover_hint(dead)
    if elsewhere:
        out.print(f"[dim]note:[/] the index lists {elsewhere} more run(s) written into other evidence dirs: "
                  "not verified here")
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
        checked = ", index agrees" if report.index_checked else ""
        out.print(
            f"[green]intact[/] {escape(report.run_id)}: {report.record_count} records, "
            f"{report.attachments_checked} attachments, chain head {report.head[:16]}… "
            f"(run {escape(report.status)}{checked})"
        )
        return 0
    for problem in report.problems:
        out.print(f"[red]problem:[/] {escape(problem)}")
    out.print(f"[red]ALTERED[/] {escape(report.run_id)}: {len(report.problems)} problem(s)")
    return 1


# -- recover / attest: the explicit writing steps ---------------------------------------------------


def recover(ref: str | None, evidence_dir: Path, db_url: str | None) -> int:
    """Close the runs whose process died (one, or every one) and expire the queued approvals whose
    runner is gone (never approving them): exit 1 when a run could not be recovered."""
    import os

    from evidence.recovery import recover_evidence_dir
    from evidence.signing import signer_from_env
    from runner.approvals.store import reap_existing

    if db_url is None and not (evidence_dir / "warden.db").exists():
        out.print(f"no index in {escape(str(evidence_dir))}: nothing to recover")
        return 0
    for approval_id in reap_existing(evidence_dir, db_url):  # abandoned queued approvals: expired, never approved
        err.print(f"[yellow]expired[/] approval {escape(approval_id)}: its runner is gone")
    run_ids: set[str] | None = None
    if ref is not None:
        index = EvidenceIndex(db_url or evidence_dir)
        try:
            run_ids = {index.find_run(ref).run_id}
        finally:
            index.close()
    signer = signer_from_env(os.environ)  # recovered runs are signed when their key is at hand
    results = recover_evidence_dir(evidence_dir, db_url, signer=signer, run_ids=run_ids)
    code = 0
    for r in results:
        if r.action == "closed":
            err.print(f"[yellow]recovered[/] run {escape(r.run_id)}: its process died; marked interrupted")
        elif r.action == "index-synced":
            err.print(f"[yellow]index synced[/] run {escape(r.run_id)}: {escape(r.detail)}")
        elif r.problems:
            code = 1
            err.print(f"[red]not recovered[/] run {escape(r.run_id)}: {escape('; '.join(r.problems))}")
        else:
            out.print(f"skipped {escape(r.run_id)}: {escape(r.detail)}")
    if not results:
        out.print("nothing to recover" + (f": run {escape(ref)} is not marked running" if ref else ""))
    return code


def attest(ref: str, evidence_dir: Path, db_url: str | None, output: Path | None) -> Path:
    """Write the run's in-toto/DSSE attestation, signed with ``WARDEN_SIGNING_KEY``; print its path."""
    import os

    from evidence.attest import attest_run
    from evidence.signing import ENV_KEY, signer_from_env

    signer = signer_from_env(os.environ)
    if signer is None:
        raise UsageError(f"{ENV_KEY} is not set: an attestation is signed with the run's signing key")
    with index_at_hand(evidence_dir, db_url) as index:
        path = attest_run(resolve_run(ref, evidence_dir, index), signer, output, index)
    out.print(str(path))
    return path


# -- query / reindex / export / report (evidence/query.py, reindex.py, export.py, report.py) ---------


def _required_index(evidence_dir: Path, db_url: str | None) -> EvidenceIndex:
    index = open_index(evidence_dir, db_url)
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

    folder = find_run(ref, evidence_dir, db_url)
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

    with index_at_hand(evidence_dir, db_url, read_only=False) as index:
        path = write_report(resolve_run(ref, evidence_dir, index), index)
    out.print(f"report: {escape(str(path))}")
    return path
