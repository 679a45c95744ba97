"""Evidence benchmarks (issue 6, item 7): append with the chain, verify, query — one command.

    .venv/bin/python benchmarks/bench_evidence.py [--records 100000] [--verify-records 1000000]
        [--query-records 1000000] [--db URL] [--skip append,verify,query]

1. append: ``--records`` records through the real ``EvidenceWriter`` (redact, validate, hash-chain,
   write one line, fsync, index in SQLite: the durable path every run uses), target ≤ 5 s for 100k.
   Also, labelled as such, a group-commit path that does the same per-record work (redaction,
   validation, canonical hash, JSONL) but fsyncs and indexes once per 1000 records: what batching
   would buy. The writer fsyncs each record that gates an action (intents, step decisions, approvals,
   run/exception records) at once and the others (outcomes, PII findings, network decisions) with the
   next fsync (group commit, see evidence/writer.py), so 2 in 3 of the records generated here are fsynced.
2. verify: a ``--verify-records`` run folder generated directly (chain computed with
   ``evidence.canonical``, checked equal to the reference ``rfc8785`` on a sample), then
   ``verify_run`` on it (µs/record and peak RSS), target ≤ 10 s for 1M.
3. query: ``--query-records`` records across 100 runs indexed (SQLite by default, ``--db`` for
   PostgreSQL), then the filtered queries of ``warden evidence query`` (rows fetched), target ≤ 100 ms.

Prints every figure and PASS/FAIL against its target; exit 0 always (figures, not a gate).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import rfc8785

from evidence.canonical import canonical_bytes, record_hash
from evidence.index import EvidenceIndex, RecordRow
from evidence.query import RecordQuery, run_query
from evidence.records import GENESIS_HASH, ActionRecord, Actor, DecisionRecord
from evidence.redact import SecretRedactor, redact_tree
from evidence.runfolder import RunFolder, RunInfo, utc_timestamp
from evidence.writer import EvidenceWriter, jsonl_line

RUNNER = Actor(type="runner", id="warden/bench")
POLICY = Actor(type="policy", id="guard-chain")
SHA = "ab" * 32
RESULTS: list[tuple[str, str, str]] = []


def report(name: str, seconds: float, target: float | None, extra: str = "") -> None:
    verdict = "" if target is None else ("PASS" if seconds <= target else "FAIL")
    shown = f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"
    tgt = "" if target is None else f" (target ≤ {target * 1000:.0f} ms)" if target < 1 else f" (target ≤ {target:g} s)"
    line = f"{name:<58} {shown:>11}{tgt} {verdict} {extra}".rstrip()
    print(line, flush=True)
    RESULTS.append((name, shown, verdict))


# -- 1. append ----------------------------------------------------------------------------------------


def _new_run(evidence_dir: Path, index: EvidenceIndex | None, tag: str) -> tuple[RunFolder, RunInfo]:
    run_id = f"20261121T000000000Z-bench-{tag}"
    folder = RunFolder.create(evidence_dir, run_id)
    info = RunInfo(run_id=run_id, mission_id="bench", mission_version="1", mission_sha256=SHA,
                   started_at=utc_timestamp())
    folder.write_run_info(info)
    if index is not None:
        index.upsert_run_info(info, folder.root)
    return folder, info


def _fields(i: int) -> tuple[type[Any], Actor, dict[str, Any]]:
    step = i // 3 + 1
    if i % 3 == 0:
        return DecisionRecord, POLICY, {"guard": "chain", "decision": "allow", "rationale": "'click' is allowed",
                                        "step": step, "kind": "click"}
    return ActionRecord, RUNNER, {"phase": "intent" if i % 3 == 1 else "outcome", "step": step, "kind": "click",
                                  "target": {"selector": f"#button-{step}"}, "call": f"locator('#b{step}').click()",
                                  "url_before": "https://portal.example.com/a"}


def bench_append(n: int, base: Path, durable_n: int) -> None:
    print(f"\n== append {n:,} records with the hash chain ==")
    durable_n = min(n, durable_n)
    evidence_dir = base / "append"
    index = EvidenceIndex(evidence_dir)
    folder, _ = _new_run(evidence_dir, index, "durable")
    writer = EvidenceWriter(folder, folder.run_id, SecretRedactor(), index)
    t0 = time.perf_counter()
    for i in range(durable_n):
        cls, actor, fields = _fields(i)
        writer.append(cls, actor=actor, **fields)
    durable = time.perf_counter() - t0
    writer.close()
    report(f"durable writer (group commit + SQLite index per record) {durable_n:,}", durable, None,
           f"= {durable / durable_n * 1e6:.0f} µs/record")
    if durable_n < n:
        report(f"  durable writer, {n:,} extrapolated from {durable_n:,}", durable / durable_n * n,
               5.0 if n >= 100_000 else None, "(run with --durable-records N to measure it all)")

    # without the index: the file alone (fsync per record)
    folder2, _ = _new_run(evidence_dir, None, "noindex")
    writer = EvidenceWriter(folder2, folder2.run_id, SecretRedactor(), None)
    t0 = time.perf_counter()
    for i in range(durable_n):
        cls, actor, fields = _fields(i)
        writer.append(cls, actor=actor, **fields)
    file_only = time.perf_counter() - t0
    writer.close()
    report(f"durable writer, no index (group commit) {durable_n:,}", file_only, None,
           f"= {file_only / durable_n * 1e6:.0f} µs/record")

    # fsync alone, for scale
    probe = base / "fsync-probe"
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    t0 = time.perf_counter()
    for _ in range(2000):
        os.write(fd, b"x" * 300 + b"\n")
        os.fsync(fd)
    per_fsync = (time.perf_counter() - t0) / 2000
    os.close(fd)
    print(f"   (this disk: one 300-byte append + fsync = {per_fsync * 1e6:.0f} µs → "
          f"{per_fsync * 100_000:.1f} s for 100k fsyncs alone)")

    # group commit: same per-record work, one fsync and one index transaction per 1000 records
    folder3, _ = _new_run(evidence_dir, index, "group")
    redactor = SecretRedactor()
    t0 = time.perf_counter()
    head, batch_lines, batch_rows = GENESIS_HASH, [], []
    fd = os.open(folder3.records, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    for i in range(n):
        cls, actor, fields = _fields(i)
        clean = redact_tree(fields, redactor)
        draft = {**clean, "schema": cls.schema_id(), "record_id": f"{i:032x}", "run_id": folder3.run_id,
                 "seq": i + 1, "type": cls.TYPE, "time": utc_timestamp(), "actor": actor.model_dump(mode="json"),
                 "prev_hash": head, "hash": GENESIS_HASH, "attachments": []}
        model = cls.model_validate(draft)
        body = model.model_dump(mode="json", by_alias=True)
        body["hash"] = head = record_hash(body)
        line = jsonl_line(body)
        batch_lines.append(line)
        batch_rows.append((model.model_copy(update={"hash": head}), line))
        if len(batch_lines) == 1000 or i == n - 1:
            os.write(fd, ("\n".join(batch_lines) + "\n").encode())
            os.fsync(fd)
            index.add_records(batch_rows)
            batch_lines, batch_rows = [], []
    os.close(fd)
    group = time.perf_counter() - t0
    report(f"group commit (bench-only path: fsync+index per 1000) {n:,}", group, 5.0 if n >= 100_000 else None,
           f"= {group / n * 1e6:.0f} µs/record")
    index.close()


# -- 2. verify ----------------------------------------------------------------------------------------


def _generated_records(run_id: str, n: int, start: datetime) -> Iterator[dict[str, Any]]:
    base = {"run_id": run_id, "actor": {"type": "runner", "id": "warden/bench"}, "attachments": []}
    yield {**base, "schema": "warden.run_record/1", "type": "run_record", "phase": "start",
           "initiator": {"user": "bench", "host": "bench"}, "started_by": "bench", "mission_id": "bench",
           "mission_version": "1", "mission_sha256": SHA, "started_at": utc_timestamp(start)}
    for i in range(n - 2):
        step = i // 3 + 1
        if i % 3 == 0:
            if i % 150 == 0:
                yield {**base, "schema": "warden.decision_record/1", "type": "decision_record", "guard": "network",
                       "decision": "deny", "rationale": "host not allowed", "subject": {"host": "evil.localhost"}}
            else:
                yield {**base, "schema": "warden.decision_record/1", "type": "decision_record", "guard": "chain",
                       "decision": "allow", "rationale": "'click' is allowed", "step": step, "kind": "click"}
        elif i % 1500 == 1:
            yield {**base, "schema": "warden.approval_record/1", "type": "approval_record",
                   "approval_id": f"apr-{i}", "decision": "denied" if i % 3000 == 1 else "approved",
                   "approver": "bob", "os_user": "bob", "reason": "checked", "channel": "queue",
                   "action_digest": SHA, "rule": "danger_zones.pay", "answered_at": utc_timestamp(start)}
        else:
            yield {**base, "schema": "warden.action_record/1", "type": "action_record",
                   "phase": "intent" if i % 3 == 1 else "outcome", "step": step, "kind": "click",
                   "target": {"selector": f"#b{step}"}, "call": f"locator('#b{step}').click()"}
    yield {**base, "schema": "warden.run_record/1", "type": "run_record", "phase": "end",
           "initiator": {"user": "bench", "host": "bench"}, "started_by": "bench", "mission_id": "bench",
           "mission_version": "1", "mission_sha256": SHA, "started_at": utc_timestamp(start), "outcome": "completed",
           "exit_code": 0}


def generate_run(evidence_dir: Path, run_id: str, n: int, start: datetime,
                 sink: Callable[[dict[str, Any], str], None] | None = None) -> RunFolder:
    """A finished run folder of ``n`` chained records, written in one pass (no per-record fsync)."""
    folder = RunFolder.create(evidence_dir, run_id)
    head = GENESIS_HASH
    with open(folder.records, "w", encoding="utf-8", buffering=1 << 20) as f:
        for seq, rec in enumerate(_generated_records(run_id, n, start), start=1):
            t = start + timedelta(milliseconds=seq)
            rec.update(record_id=f"{run_id[-6:]}-{seq:012d}", seq=seq, time=utc_timestamp(t), prev_hash=head)
            canon = canonical_bytes(rec)
            if seq <= 200:
                assert canon == rfc8785.dumps(rec), "fast canonical encoder disagrees with RFC 8785"
            rec["hash"] = head = hashlib.sha256(canon).hexdigest()
            line = json.dumps(rec, ensure_ascii=False, separators=(",", ":"))
            f.write(line + "\n")
            if sink is not None:
                sink(rec, line)
    info = RunInfo(run_id=run_id, mission_id="bench", mission_version="1", mission_sha256=SHA,
                   started_at=utc_timestamp(start))
    folder.write_run_info(info.finish(status="completed", exit_code=0, chain_head=head, record_count=n))
    return folder


def bench_verify(n: int, base: Path) -> None:
    from evidence.verify import verify_run

    print(f"\n== verify {n:,} records ==")
    t0 = time.perf_counter()
    folder = generate_run(base / "verify", "20261121T000000000Z-bench-verify", n, datetime(2026, 11, 1, tzinfo=UTC))
    print(f"   (generated {n:,} chained records, {folder.records.stat().st_size / 1e6:.0f} MB, "
          f"in {time.perf_counter() - t0:.1f} s)")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    result = verify_run(folder.root)
    took = time.perf_counter() - t0
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert result.ok, result.problems[:5]
    report(f"verify_run {n:,} records (intact)", took, 10.0 if n >= 1_000_000 else None,
           f"= {took / n * 1e6:.1f} µs/record")
    print(f"   (peak RSS of this process: {rss_before:.0f} MB before verify, {rss_after:.0f} MB after)")


# -- 3. query -----------------------------------------------------------------------------------------


def bench_query(n: int, base: Path, db: str | None) -> None:
    print(f"\n== filtered queries over {n:,} indexed records ==")
    index = EvidenceIndex(db or base / "query")
    if db:
        from evidence.index import Base

        Base.metadata.drop_all(index.engine)
        index.close()
        index = EvidenceIndex(db)
    runs = 100
    per_run = n // runs
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []

    def flush() -> None:
        if not rows:
            return
        with index.engine.begin() as conn:
            conn.execute(RecordRow.__table__.insert(), rows)
        rows.clear()

    for r in range(runs):
        run_id = f"202611{1 + r % 28:02d}T000000000Z-bench-q{r:04d}"
        mission = f"mission-{r % 10}"
        start = datetime(2026, 10, 1, tzinfo=UTC) + timedelta(days=r * 0.6)
        index.upsert_run(run_id=run_id, mission_id=mission, mission_version="1", mission_sha256=SHA,
                         started_at=utc_timestamp(start), status="completed" if r % 7 else "stopped",
                         folder=base / "query" / run_id)
        for seq, rec in enumerate(_generated_records(run_id, per_run, start), start=1):
            rec.update(record_id=f"{r:04d}-{seq:012d}", seq=seq, run_id=run_id,
                       time=utc_timestamp(start + timedelta(milliseconds=seq * 40)), prev_hash=SHA, hash=SHA)
            rows.append({
                "run_id": run_id, "seq": seq, "record_id": rec["record_id"], "type": rec["type"], "time": rec["time"],
                "decision": rec.get("decision"), "phase": rec.get("phase"), "kind": rec.get("kind"),
                "step": rec.get("step"), "mission_id": mission, "entity_type": None,
                "approval_id": rec.get("approval_id"), "hash": SHA,
                "body": json.dumps(rec, separators=(",", ":")),
            })
            if len(rows) >= 20_000:
                flush()
    flush()
    if index.engine.dialect.name == "sqlite":
        with index.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    else:
        with index.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE records")
    print(f"   (indexed {runs * per_run:,} records in {runs} runs on {index.engine.dialect.name} "
          f"in {time.perf_counter() - t0:.1f} s)")
    cases: list[tuple[str, dict[str, Any], float | None]] = [
        ("SPEC example: approval_record, decision=denied, since", {"types": ["approval_record"],
         "where": ["decision=denied"], "since": "2026-11-01"}, 0.1),
        ("decision_record deny in one mission, limit 100", {"types": ["decision_record"], "decision": "deny",
                                                            "mission_id": "mission-3", "limit": 100}, 0.1),
        ("one run, step 40 (run_id + step)", {"run_id": "20261105T000000000Z-bench-q0004", "where": ["step=40"]},
         0.1),
        ("time window, one type, limit 1000", {"types": ["action_record"], "since": "2026-10-20",
                                               "until": "2026-10-21", "limit": 1000}, 0.1),
        ("runs with outcome=stopped, denied approvals", {"types": ["approval_record"], "decision": "denied",
                                                         "outcome": "stopped"}, 0.1),
        ("JSON path subject.host=evil.localhost (no column: scans)", {"types": ["decision_record"],
         "where": ["subject.host=evil.localhost"], "limit": 100}, None),
        ("JSON path approver=bob over all types, limit 50", {"where": ["approver=bob"], "limit": 50}, None),
    ]
    for name, kw, target in cases:
        query = RecordQuery.build(**kw)
        times, count = [], 0
        for _ in range(5):
            t0 = time.perf_counter()
            count = len(list(run_query(index, query)))
            times.append(time.perf_counter() - t0)
        report(f"{name}", statistics.median(times), target, f"({count} rows, median of 5)")
    index.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=100_000, help="records to append (default 100000)")
    ap.add_argument("--durable-records", type=int, default=3000,
                    help="records through the durable writer (fsync per gating record; default 3000, extrapolated)")
    ap.add_argument("--verify-records", type=int, default=1_000_000, help="records to verify (default 1000000)")
    ap.add_argument("--query-records", type=int, default=1_000_000, help="records to index and query")
    ap.add_argument("--db", default=None, help="SQLAlchemy URL for the query benchmark (default: SQLite in tmp)")
    ap.add_argument("--skip", default="", help="comma-separated: append,verify,query")
    ap.add_argument("--dir", default=None, help="work directory (default: a temporary one, removed after)")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    with tempfile.TemporaryDirectory(prefix="warden-bench-", dir=args.dir) as tmp:
        base = Path(tmp)
        print(f"work dir {base} (filesystem of {os.statvfs(base).f_bsize}-byte blocks)")
        if "append" not in skip:
            bench_append(args.records, base, args.durable_records)
        if "verify" not in skip:
            bench_verify(args.verify_records, base)
        if "query" not in skip:
            bench_query(args.query_records, base, args.db)
    print("\n== summary ==")
    for name, shown, verdict in RESULTS:
        print(f"{verdict or '-':<5} {shown:>11}  {name}")


if __name__ == "__main__":
    main()
