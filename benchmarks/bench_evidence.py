"""Evidence benchmarks (issue 13): append with the chain, verify, query — one command.

    .venv/bin/python benchmarks/bench_evidence.py [--records 100000] [--durable-records 3000]
        [--verify-records 1000000] [--query-records 1000000] [--db URL] [--skip append,verify,query] [--json]

Every record goes through the REAL redactor, built as ``warden run`` builds it (``runner.assembly``:
secrets, then Presidio with all default entities plus the run's known values) for
``benchmarks/bench_mission.yaml``. The records are shaped like a run's (bench_records.py): per
step a step decision, an intent, an outcome with its duration, and now and then a network refusal
or a ``pii_finding`` (one per scan, v2), over a 200-step mission's selectors, calls and pages.

1. append (goal: 100k durable ≤ 5 s): ``EvidenceWriter.append_many`` in groups of 1000 — redact
   the group's strings in one batch, validate, hash-chain, one write, ONE fsync, one index
   transaction: the group commit. Also, labelled as such, the path a run takes today
   (``append`` per record: every intent and step decision fsynced before it returns, the others
   with the next fsync; ``--durable-records``, extrapolated to ``--records``), and one fsync of
   this disk, for scale.
2. verify (goal: 1M ≤ 10 s): a ``--verify-records`` run folder written in the writer's line
   format (hash first, canonical JSON; checked against the reference ``rfc8785`` on a sample),
   then ``verify_run`` on it.
3. query (goal ≤ 100 ms): ``--query-records`` records across 100 runs indexed (SQLite by default,
   ``--db`` for PostgreSQL), then ``warden evidence query``'s filters, type + field among them.

Prints every figure with its goal (append and verify goals scaled to the size run: 5 s per 100k,
10 s per 1M) and PASS/FAIL; ``--json`` prints one object
``{"rows": [{"figure", "value", "unit", "goal"}]}`` instead (benchmarks/run_all.py). Exit 0 always.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_records import SHA, generate_run, run_fields, run_records

from evidence.index import EvidenceIndex, RecordRow
from evidence.query import RecordQuery, run_query
from evidence.redact import Redactor
from evidence.runfolder import RunFolder, RunInfo, utc_timestamp
from evidence.writer import EvidenceWriter

HERE = Path(__file__).resolve().parent
ROWS: list[dict[str, Any]] = []
SUMMARY: list[tuple[str, str, str]] = []  # (verdict, shown, figure)
QUIET = False


def say(text: str = "") -> None:
    if not QUIET:
        print(text, flush=True)


def report(name: str, seconds: float, goal: float | None, extra: str = "") -> None:
    verdict = "" if goal is None else ("PASS" if seconds <= goal else "FAIL")
    shown = f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"
    tgt = "" if goal is None else f" (goal ≤ {goal * 1000:.0f} ms)" if goal < 1 else f" (goal ≤ {goal:g} s)"
    say(f"{name:<62} {shown:>11}{tgt} {verdict} {extra}".rstrip())
    SUMMARY.append((verdict or "-", shown + tgt, name))
    unit = "ms" if seconds < 1 else "s"
    ROWS.append({"figure": name, "value": round(seconds * 1000, 1) if unit == "ms" else round(seconds, 2),
                 "unit": unit, "goal": None if goal is None else (f"≤ {goal * 1000:.0f} ms" if goal < 1 else
                                                                   f"≤ {goal:g} s")})


def real_redactor(evidence_dir: Path) -> Redactor:
    """The redactor ``warden run`` builds for the benchmark mission (all default PII entities)."""
    from missions.loader import load_mission
    from runner.assembly import assemble

    env = {"WARDEN_EVIDENCE_KEY": secrets.token_hex(32)}
    loaded = load_mission(HERE / "bench_mission.yaml", cli_vars={"base_url": "http://bench.localhost:8000"},
                          environ=env)
    return assemble(loaded, env, evidence_dir).redactor


# -- 1. append ----------------------------------------------------------------------------------------


def _new_run(evidence_dir: Path, index: EvidenceIndex | None, tag: str) -> RunFolder:
    run_id = f"20261121T000000000Z-bench-{tag}"
    folder = RunFolder.create(evidence_dir, run_id)
    info = RunInfo(run_id=run_id, mission_id="bench", mission_version="1", mission_sha256=SHA,
                   started_at=utc_timestamp())
    folder.write_run_info(info)
    if index is not None:
        index.upsert_run_info(info, folder.root)
    return folder


def bench_append(n: int, base: Path, durable_n: int, group: int) -> None:
    say(f"\n== append {n:,} records with the hash chain, real redactor ==")
    evidence_dir = base / "append"
    t0 = time.perf_counter()
    redactor = real_redactor(evidence_dir)
    say(f"   (redactor built as a run builds it in {time.perf_counter() - t0:.1f} s: secrets + Presidio, "
        "all default entities, known values)")
    index = EvidenceIndex(evidence_dir)

    folder = _new_run(evidence_dir, index, "group")
    writer = EvidenceWriter(folder, folder.run_id, redactor, index)
    items = list(run_fields(n))
    t0, c0 = time.perf_counter(), time.process_time()
    for at in range(0, n, group):
        writer.append_many(items[at:at + group])
    writer.close()
    took, cpu = time.perf_counter() - t0, time.process_time() - c0
    report(f"append {n:,}, group commit ({group}/group: 1 fsync + 1 index txn)", took,
           5.0 * n / 100_000,  # the goal, 5 s per 100k, scaled to the size run
           f"= {took / n * 1e6:.0f} µs/record (CPU {cpu:.2f} s)")

    durable_n = min(n, durable_n)
    folder = _new_run(evidence_dir, index, "per-record")
    writer = EvidenceWriter(folder, folder.run_id, redactor, index)
    t0 = time.perf_counter()
    for cls, actor, attachments, fields in items[:durable_n]:
        writer.append(cls, actor=actor, attachments=attachments, **fields)
    writer.close()
    took = time.perf_counter() - t0
    report(f"  per record as a run writes them (fsync per intent/step decision) {durable_n:,}", took, None,
           f"= {took / durable_n * 1e6:.0f} µs/record → {took / durable_n * n:.1f} s for {n:,}")
    index.close()

    probe = base / "fsync-probe"
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    t0 = time.perf_counter()
    for _ in range(500):
        os.write(fd, b"x" * 300 + b"\n")
        os.fsync(fd)
    per_fsync = (time.perf_counter() - t0) / 500
    os.close(fd)
    say(f"   (this disk: one 300-byte append + fsync = {per_fsync * 1e6:.0f} µs → "
        f"{per_fsync * 100_000:.1f} s for 100k fsyncs alone)")


# -- 2. verify ----------------------------------------------------------------------------------------


def bench_verify(n: int, base: Path) -> None:
    from evidence.verify import verify_run

    say(f"\n== verify {n:,} records ==")
    t0 = time.perf_counter()
    folder = generate_run(base / "verify", "20261121T000000000Z-bench-verify", n, datetime(2026, 11, 1, tzinfo=UTC))
    say(f"   (generated {n:,} chained records in the writer's format, "
        f"{folder.records.stat().st_size / 1e6:.0f} MB, in {time.perf_counter() - t0:.1f} s)")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0, c0 = time.perf_counter(), time.process_time()
    result = verify_run(folder.root)
    took, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert result.ok, result.problems[:5]
    report(f"verify {n:,} records (intact)", took, 10.0 * n / 1_000_000,  # 10 s per 1M, scaled
           f"= {took / n * 1e6:.1f} µs/record (CPU {cpu:.2f} s)")
    say(f"   (peak RSS of this process: {rss_before:.0f} MB before verify, {rss_after:.0f} MB after)")


# -- 3. query -----------------------------------------------------------------------------------------


def bench_query(n: int, base: Path, db: str | None) -> None:
    from evidence.index import _record_row

    say(f"\n== filtered queries over {n:,} indexed records ==")
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
        if rows:
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
        for record, line in run_records(run_id, per_run, start, spacing_ms=40):
            row = _record_row(record, line)
            row["mission_id"] = mission
            rows.append(row)
            if len(rows) >= 20_000:
                flush()
    flush()
    with index.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE" if index.engine.dialect.name == "sqlite" else "ANALYZE records")
    say(f"   (indexed {runs * per_run:,} records in {runs} runs on {index.engine.dialect.name} "
        f"in {time.perf_counter() - t0:.1f} s)")
    cases: list[tuple[str, dict[str, Any], float | None]] = [
        ("SPEC example: approval_record, decision=denied, since", {"types": ["approval_record"],
         "where": ["decision=denied"], "since": "2026-11-01"}, 0.1),
        *_type_and_field("pii_finding", "entity_type=US_SSN"),
        *_type_and_field("decision_record", "guard=boundaries.network"),
        *_type_and_field("decision_record", "subject.host=evil.localhost"),
        *_type_and_field("action_record", "target.selector=#order-form [data-field='f7']"),
        *_type_and_field("approval_record", "approver=bob"),
        ("decision_record deny in one mission, limit 100", {"types": ["decision_record"], "decision": "deny",
                                                            "mission_id": "mission-3", "limit": 100}, 0.1),
        ("one run, step 40 (run_id + step)", {"run_id": "20261105T000000000Z-bench-q0004", "where": ["step=40"]},
         0.1),
        ("time window, one type, limit 1000", {"types": ["action_record"], "since": "2026-10-20",
                                               "until": "2026-10-21", "limit": 1000}, 0.1),
        ("runs with outcome=stopped, denied approvals", {"types": ["approval_record"], "decision": "denied",
                                                         "outcome": "stopped"}, 0.1),
        ("JSON path only, all types: actor.id=bob, limit 50", {"where": ["actor.id=bob"], "limit": 50}, None),
    ]
    for name, kw, goal in cases:
        query = RecordQuery.build(**kw)
        times, count = [], 0
        for _ in range(5):
            t0 = time.perf_counter()
            count = len(list(run_query(index, query)))
            times.append(time.perf_counter() - t0)
        report(name, statistics.median(times), goal, f"({count} rows, median of 5)")
    index.close()


def _type_and_field(rtype: str, where: str) -> list[tuple[str, dict[str, Any], float | None]]:
    """A type + field query: its first page (what `warden evidence query --limit 100` shows, the
    goal) and its whole answer streamed (rows materialised, for scale)."""
    kw: dict[str, Any] = {"types": [rtype], "where": [where]}
    return [(f"type + field: {rtype} {where}, first 100", {**kw, "limit": 100}, 0.1),
            ("  the same, every matching row", kw, None)]


def main() -> None:
    global QUIET
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=100_000, help="records to append (default 100000)")
    ap.add_argument("--group", type=int, default=1000, help="records per group commit (default 1000)")
    ap.add_argument("--durable-records", type=int, default=3000,
                    help="records appended one by one as a run does (default 3000, extrapolated)")
    ap.add_argument("--verify-records", type=int, default=1_000_000, help="records to verify (default 1000000)")
    ap.add_argument("--query-records", type=int, default=1_000_000, help="records to index and query")
    ap.add_argument("--db", default=None, help="SQLAlchemy URL for the query benchmark (default: SQLite in tmp)")
    ap.add_argument("--skip", default="", help="comma-separated: append,verify,query")
    ap.add_argument("--dir", default=None, help="work directory (default: a temporary one, removed after)")
    ap.add_argument("--json", action="store_true", help='print only {"rows": [{figure, value, unit, goal}]}')
    args = ap.parse_args()
    QUIET = args.json
    skip = set(filter(None, args.skip.split(",")))
    with tempfile.TemporaryDirectory(prefix="warden-bench-", dir=args.dir) as tmp:
        base = Path(tmp)
        say(f"work dir {base} (filesystem of {os.statvfs(base).f_bsize}-byte blocks)")
        if "append" not in skip:
            bench_append(args.records, base, args.durable_records, args.group)
        if "verify" not in skip:
            bench_verify(args.verify_records, base)
        if "query" not in skip:
            bench_query(args.query_records, base, args.db)
    if args.json:
        print(json.dumps({"rows": ROWS}, ensure_ascii=False))
        return
    say("\n== summary ==")
    for verdict, shown, name in SUMMARY:
        say(f"{verdict:<5} {shown:<28} {name}")


if __name__ == "__main__":
    main()
