"""Crash recovery: close the evidence of runs whose process died (SIGKILL, power loss, OOM).

A live run holds an exclusive ``flock`` on ``runs/<id>/.lock`` for its whole life; the kernel
drops it when the process dies. Recovery looks at every run the index still calls ``running``
and touches only those whose lock it can take. For each:

1. a torn last line of ``records.jsonl`` (a write cut by the crash, never acknowledged) is cut off;
2. records that reached the file but not the index (crash between the two) are indexed;
3. an ``exception_record`` (category ``crash_recovery``) says what was found — the last record,
   a step whose ``intent`` has no ``outcome`` (that action may or may not have happened), bytes
   cut — and adopts a screenshot saved for the next seq whose record was never written;
4. a closing ``run_record`` (phase end, outcome ``interrupted``) ends the chain;
5. ``run.json`` and the index row say ``interrupted`` with the new chain head.

Recovery never repairs tampering: if the index's chain head is not in the file (a tail cut
behind its back), or the last record does not verify, the run is left as it is for ``verify`` to
report. A recovered run is signed when the signing key is at hand (``signer``) and is the one its
opening ``run_record`` names; otherwise it stays unsigned, and verify reports a run that was to be
signed but is not.

Recovery writes: it runs only as an explicit step (``warden evidence recover``) or as part of
commands that write anyway (``warden run``, ``warden approvals``), never under a read-only command.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evidence.canonical import sha256_file
from evidence.index import EvidenceIndex
from evidence.records import GENESIS_HASH, Actor, Attachment, ExceptionRecord, Record, RunRecord, parse_record
from evidence.redact import SecretRedactor
from evidence.runfolder import RunFolder, RunInfo, RunLock, utc_timestamp
from evidence.signing import Signer
from evidence.writer import EvidenceWriter
from kernel import __version__
from kernel.errors import EvidenceUnavailable

_START_FIELDS = (
    "initiator", "started_by", "mission_id", "mission_version", "mission_sha256", "policy_sha256",
    "versions", "variables", "started_at", "signing_key_id",
)


@dataclass
class Recovered:
    run_id: str
    action: str  # "closed" | "index-synced" | "skipped"
    detail: str = ""
    problems: list[str] = field(default_factory=list)


def _records(folder: RunFolder) -> list[tuple[Record, str]]:
    """Complete, parseable lines of ``records.jsonl`` (a torn tail is left to the writer)."""
    try:
        raw = folder.records.read_bytes()
    except FileNotFoundError:
        return []
    out: list[tuple[Record, str]] = []
    for chunk in raw.split(b"\n")[:-1]:
        text = chunk.decode("utf-8")
        out.append((parse_record(json.loads(text)), text))
    return out


def recover_run(
    index: EvidenceIndex, run_id: str, folder_path: Path | str, signer: Signer | None = None
) -> Recovered:
    """Close one run if its process is gone; ``skipped`` if it is alive or cannot be recovered safely."""
    folder = RunFolder(Path(folder_path))
    if not folder.root.is_dir():
        return Recovered(run_id, "skipped", "run folder missing", ["run folder missing"])
    lock = RunLock.try_acquire(folder)
    if lock is None:
        return Recovered(run_id, "skipped", "run is live (its lock is held)")
    try:
        return _recover_locked(index, run_id, folder, signer)
    finally:
        lock.release()


def _recover_locked(index: EvidenceIndex, run_id: str, folder: RunFolder, signer: Signer | None) -> Recovered:
    try:
        info = folder.read_run_info()
    except (OSError, ValueError):
        row = index.get_run(run_id)
        has_records = folder.records.exists() and folder.records.stat().st_size > 0
        if row is None or has_records:
            return Recovered(run_id, "skipped", "run.json unreadable", ["run.json unreadable"])
        # Died (or failed to write) before its first run.json: nothing was recorded, nothing ran.
        info = RunInfo(run_id=run_id, mission_id=row.mission_id, mission_version=row.mission_version,
                       mission_sha256=row.mission_sha256, started_at=row.started_at)
    if info.finished:
        # The process closed the folder but died before updating the index row.
        index.upsert_run_info(info, folder.root)
        return Recovered(run_id, "index-synced", f"run.json says {info.status}")
    try:
        lines = _records(folder)
    except (ValueError, UnicodeDecodeError):
        return Recovered(run_id, "skipped", "records.jsonl does not parse", ["records.jsonl does not parse"])
    row = index.get_run(run_id)
    hashes = [rec.hash for rec, _ in lines]
    if row is not None and row.chain_head != GENESIS_HASH and row.chain_head not in hashes:
        problem = "index chain head is not in records.jsonl (tail cut?): left for verify"
        return Recovered(run_id, "skipped", problem, [problem])
    indexed = row.record_count if row is not None else 0
    if len(lines) > indexed:
        index.add_records([(rec, text) for rec, text in lines[indexed:]])

    start = lines[0][0] if lines else None
    if not isinstance(start, RunRecord) or start.phase != "start":
        # Died before its first record: nothing to chain onto. Mark it, write no records.
        final = _interrupted(info, GENESIS_HASH if not lines else lines[-1][0].hash, len(lines))
        folder.write_run_info(final)
        index.upsert_run_info(final, folder.root)
        return Recovered(run_id, "closed", "no opening run_record: marked interrupted, no records appended")

    runner = Actor(type="runner", id=f"warden/{__version__}")
    writer = EvidenceWriter.resume(folder, run_id, SecretRedactor(), index)
    try:
        last = lines[-1][0]
        message = _describe(lines, writer.torn_bytes)
        adopted = _orphans(folder, writer.next_seq, lines)
        writer.append(
            ExceptionRecord, actor=runner, attachments=adopted, category="crash_recovery",
            error_type="ProcessDied", message=message, mitigation="recorded",
            step=getattr(last, "step", None) if isinstance(getattr(last, "step", None), int) else None,
        )
        start_fields: dict[str, Any] = {k: getattr(start, k) for k in _START_FIELDS}
        ended_at = utc_timestamp()
        writer.append(
            RunRecord, actor=runner, phase="end", ended_at=ended_at, outcome="interrupted", exit_code=None,
            counts={"records_before_crash": len(lines)}, **start_fields,
        )
        final = _interrupted(info, writer.head, writer.count, ended_at)
        if signer is not None and start.signing_key_id in (None, signer.key_id):
            final = signer.sign_info(final)
        folder.write_run_info(final)
        index.upsert_run_info(final, folder.root)
    finally:
        writer.close()
    return Recovered(run_id, "closed", message)


def _interrupted(info: RunInfo, head: str, count: int, ended_at: str | None = None) -> RunInfo:
    return info.model_copy(
        update={"status": "interrupted", "outcome": "interrupted", "exit_code": None, "chain_head": head,
                "record_count": count,
                "ended_at": ended_at or utc_timestamp()}
    )


def _describe(lines: list[tuple[Record, str]], torn: int) -> str:
    last = lines[-1][0]
    parts = [f"the run's process ended without closing its evidence; last record seq {last.seq} ({last.type})"]
    outcomes = {getattr(r, "intent_id", None) for r, _ in lines if getattr(r, "phase", None) == "outcome"}
    open_intents = [r for r, _ in lines if getattr(r, "phase", None) == "intent" and r.record_id not in outcomes]
    for r in open_intents:
        parts.append(
            f"step {getattr(r, 'step', '?')} ({getattr(r, 'kind', '?')}) has an intent (seq {r.seq}) and no outcome: "
            "the action may or may not have happened"
        )
    if torn:
        parts.append(f"{torn} bytes of an incomplete last line were cut off")
    return "; ".join(parts)


def _orphans(folder: RunFolder, next_seq: int, lines: list[tuple[Record, str]]) -> list[Attachment]:
    """Screenshots named for ``next_seq`` that no record links: saved just before the crash."""
    linked = {a.path for r, _ in lines for a in r.attachments}
    out: list[Attachment] = []
    if not folder.screenshots.is_dir():
        return out
    for path in sorted(folder.screenshots.iterdir()):
        m = re.match(r"^(\d+)-", path.name)
        rel = path.relative_to(folder.root).as_posix()
        if path.is_file() and m and int(m.group(1)) == next_seq and rel not in linked:
            media = "image/png" if path.suffix == ".png" else "application/octet-stream"
            out.append(Attachment(path=rel, sha256=sha256_file(path), media_type=media))
    return out


def recover_evidence_dir(
    evidence_dir: Path | str, db_url: str | None = None, signer: Signer | None = None,
    run_ids: set[str] | None = None,
) -> list[Recovered]:
    """Recover every dead ``running`` run of the store (or those of ``run_ids``). Nothing is created
    where no index exists."""
    evidence_dir = Path(evidence_dir)
    if db_url is None and not (evidence_dir / "warden.db").exists():
        return []
    index = EvidenceIndex(db_url or evidence_dir)
    try:
        results = []
        for row in index.runs_with_status("running"):
            if run_ids is not None and row.run_id not in run_ids:
                continue
            folder = evidence_dir / "runs" / row.run_id  # the store's own folder, not the row's old path
            try:
                results.append(recover_run(index, row.run_id, folder if folder.is_dir() else row.folder, signer))
            except (OSError, EvidenceUnavailable) as e:
                results.append(Recovered(row.run_id, "skipped", f"recovery failed: {e}", [str(e)]))
        return results
    finally:
        index.close()
