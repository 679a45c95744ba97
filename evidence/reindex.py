"""``warden evidence reindex``: rebuild the SQL index from the run folders (the source of truth).

Each run is re-indexed in its own transaction (its records replaced, its run row upserted), so
runs writing at the same time are not blocked for long (SQLite WAL + busy timeout) and a failure
leaves the other runs indexed. A run whose writer still holds ``records.jsonl`` (a live run) is
skipped: its writer indexes it.

The index's chain head is evidence too: ``verify`` compares it with the folder to catch a tail cut
behind the index's back. So reindexing must not launder tampering: a run whose indexed chain head
or record hashes are no longer in its folder is refused (reported as a conflict) unless
``force=True``, and ``verify`` should be run on it first.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from evidence.index import EvidenceIndex, RecordRow, RunRow, _record_row
from evidence.records import GENESIS_HASH, Record, RunRecord, parse_record
from evidence.runfolder import RunFolder, RunInfo, RunStatus

_BATCH = 5000
_STATUSES: dict[str, RunStatus] = {
    "completed": "completed", "stopped": "stopped", "failed": "failed", "evidence_error": "evidence_error",
    "interrupted": "interrupted",
}


@dataclass
class ReindexReport:
    runs: int = 0
    records: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (folder, why)
    conflicts: list[tuple[str, str]] = field(default_factory=list)  # (run_id, why): index disagrees with folder
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (run_id, why): e.g. still being written
    notes: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)  # runs in the index whose folder is gone

    @property
    def ok(self) -> bool:
        return not self.failed and not self.conflicts


class FolderUnreadable(Exception):
    pass


@dataclass
class _Parsed:
    info: RunInfo
    records: list[tuple[Record, str]]
    notes: list[str]


@contextlib.contextmanager
def _not_being_written(path: Path) -> Iterator[bool]:
    """True when no writer holds ``records.jsonl`` (a shared lock is granted); the lock is held meanwhile."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise FolderUnreadable(f"records.jsonl cannot be opened ({e.strerror or e})") from e
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def parse_folder(folder: RunFolder) -> _Parsed:
    """Records (validated, with their exact line) and the run's info; ``FolderUnreadable`` on any bad line.

    A torn final line of a run that never finished (killed mid-write) is left out with a note,
    exactly as ``verify`` treats it. ``run.json`` unreadable: the info is rebuilt from the records.
    """
    notes: list[str] = []
    try:
        raw = folder.records.read_bytes()
    except OSError as e:
        raise FolderUnreadable(f"records.jsonl cannot be read ({e.strerror or e})") from e
    info: RunInfo | None = None
    try:
        info = folder.read_run_info()
    except FileNotFoundError:
        notes.append("run.json missing: run row rebuilt from the records")
    except (OSError, ValueError):
        notes.append("run.json unreadable: run row rebuilt from the records")
    chunks = raw.split(b"\n")
    torn = chunks.pop()
    if torn:
        if info is not None and info.finished:
            raise FolderUnreadable(f"records.jsonl line {len(chunks) + 1}: incomplete line in a finished run")
        notes.append(f"records.jsonl line {len(chunks) + 1}: incomplete final write ignored (run killed)")
    records: list[tuple[Record, str]] = []
    for n, chunk in enumerate(chunks, start=1):
        try:
            line = chunk.decode("utf-8")
            record = parse_record(json.loads(line))
        except (UnicodeDecodeError, ValueError, ValidationError) as e:
            kind = "not a valid record" if isinstance(e, ValidationError) else "not valid JSON"
            raise FolderUnreadable(f"records.jsonl line {n}: {kind}") from e
        if record.run_id != folder.run_id:
            raise FolderUnreadable(f"records.jsonl line {n}: run_id {record.run_id!r} is not this folder's")
        if record.seq != n:
            raise FolderUnreadable(f"records.jsonl line {n}: seq {record.seq} out of place")
        records.append((record, line))
    if info is None:
        info = _info_from_records(folder.run_id, records)
    elif info.run_id != folder.run_id:
        raise FolderUnreadable(f"run.json names run {info.run_id!r}, not the folder's")
    return _Parsed(info, records, notes)


def _info_from_records(run_id: str, records: list[tuple[Record, str]]) -> RunInfo:
    if not records or not isinstance(records[0][0], RunRecord):
        raise FolderUnreadable("run.json unreadable and records.jsonl does not open with a run_record")
    start = records[0][0]
    last = records[-1][0]
    closed = isinstance(last, RunRecord) and last.phase == "end"
    info = RunInfo(
        run_id=run_id, mission_id=start.mission_id, mission_version=start.mission_version,
        mission_sha256=start.mission_sha256, started_at=start.started_at, initiator=dict(start.initiator),
        variables=list(start.variables),
    )
    status: RunStatus = "interrupted"
    exit_code = -1
    ended_at: str | None = None
    if closed and isinstance(last, RunRecord):
        status = _STATUSES.get(str(last.outcome), "interrupted")
        exit_code = last.exit_code if last.exit_code is not None else -1
        ended_at = last.ended_at
    return info.finish(
        status=status, exit_code=exit_code, chain_head=last.hash, record_count=len(records), ended_at=ended_at
    )


def _conflict(index: EvidenceIndex, run_id: str, records: list[tuple[Record, str]]) -> str | None:
    """Why the index's view of the run disagrees with the folder (tampering or a cut tail), if it does."""
    with Session(index.engine) as s:
        head = s.scalar(select(RunRow.chain_head).where(RunRow.run_id == run_id))
        indexed = {
            seq: h for seq, h in s.execute(select(RecordRow.seq, RecordRow.hash).where(RecordRow.run_id == run_id))
        }
    if head is None:
        return None
    by_seq = {r.seq: r.hash for r, _ in records}
    hashes = set(by_seq.values())
    if head != GENESIS_HASH and head not in hashes:
        return (f"the index's chain head {head[:12]}… is not in records.jsonl — records were cut or rewritten "
                "behind the index's back")
    changed = sorted(seq for seq, h in indexed.items() if seq in by_seq and by_seq[seq] != h)
    if changed:
        return f"{len(changed)} record(s) differ from the index (first seq {changed[0]}) — rewritten in the folder"
    missing = sorted(seq for seq in indexed if seq not in by_seq)
    if missing:
        return f"{len(missing)} indexed record(s) missing from records.jsonl (first seq {missing[0]})"
    return None


def reindex_run(index: EvidenceIndex, folder: RunFolder, parsed: _Parsed) -> int:
    """Replace the run's rows with the folder's content, in one transaction; returns records indexed."""
    info = parsed.info
    index.upsert_run_info(info, folder.root)
    rows = [_record_row(rec, line) for rec, line in parsed.records]
    for row in rows:
        row["mission_id"] = info.mission_id
    last = parsed.records[-1][0] if parsed.records else None
    with Session(index.engine) as s, s.begin():
        s.execute(delete(RecordRow).where(RecordRow.run_id == info.run_id))
        for i in range(0, len(rows), _BATCH):
            s.execute(insert(RecordRow), rows[i : i + _BATCH])
        s.execute(
            update(RunRow).where(RunRow.run_id == info.run_id).values(
                chain_head=last.hash if last is not None else GENESIS_HASH, record_count=len(rows),
            )
        )
    return len(rows)


def reindex(
    evidence_dir: Path | str, index: EvidenceIndex, *, clear: bool = False, force: bool = False
) -> ReindexReport:
    """Index every ``DIR/runs/*`` folder.

    ``clear`` first empties the runs and records tables (of the whole index: a shared PostgreSQL
    index loses other evidence dirs' runs too). ``force`` overwrites runs in conflict.
    """
    report = ReindexReport()
    runs_dir = Path(evidence_dir).absolute() / "runs"
    folders = sorted(p for p in runs_dir.iterdir() if p.is_dir()) if runs_dir.is_dir() else []
    if clear:
        with Session(index.engine) as s, s.begin():
            s.execute(delete(RecordRow))
            s.execute(delete(RunRow))
        report.notes.append("index cleared: chain heads recorded at write time were replaced by the folders'")
    seen: set[str] = set()
    for path in folders:
        folder = RunFolder(path)
        seen.add(folder.run_id)
        if not folder.records.exists():
            report.failed.append((str(path), "no records.jsonl"))
            continue
        try:
            with _not_being_written(folder.records) as free:
                if not free:
                    report.skipped.append((folder.run_id, "being written (its writer holds the lock)"))
                    continue
                parsed = parse_folder(folder)
                if not force and (why := _conflict(index, folder.run_id, parsed.records)):
                    report.conflicts.append((folder.run_id, why))
                    continue
                report.records += reindex_run(index, folder, parsed)
        except FolderUnreadable as e:
            report.failed.append((str(path), str(e)))
            continue
        report.runs += 1
        report.notes.extend(f"{folder.run_id}: {n}" for n in parsed.notes)
    with Session(index.engine) as s:
        indexed = [(r, f) for r, f in s.execute(select(RunRow.run_id, RunRow.folder))]
    # Only this evidence dir's runs: a shared (PostgreSQL) index may hold other dirs' runs too.
    report.orphans = sorted(r for r, f in indexed if r not in seen and Path(f).parent == runs_dir)
    return report
