"""``warden evidence query``: filters across runs on a real SQLite index (the same checks run on
PostgreSQL in test_postgres.py through ``assert_query_semantics``)."""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from evidence.index import EvidenceIndex
from evidence.query import RecordQuery, count_query, parse_time, run_query
from evidence.records import (
    ActionRecord,
    Actor,
    ApprovalRecord,
    ApprovalRequest,
    DecisionRecord,
    FoundValue,
    PiiFinding,
    RunRecord,
)
from evidence.redact import SecretRedactor
from evidence.runfolder import RunFolder, RunInfo, RunStatus
from evidence.writer import EvidenceWriter
from kernel.errors import UsageError
from runner.cli import cli

RUNNER = Actor(type="runner", id="warden/0.1.0")
POLICY = Actor(type="policy", id="guard-chain")
SHA = "ab" * 32
DIGEST = "cd" * 32


class Clock:
    """A writer clock that advances one second per record from a fixed start."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@dataclass
class Mix:
    runs: dict[str, str]  # label -> run_id
    folders: dict[str, Path]


def _run(evidence_dir: Path, index: EvidenceIndex, run_id: str, mission: str, start: datetime) -> EvidenceWriter:
    folder = RunFolder.create(evidence_dir, run_id)
    info = RunInfo(run_id=run_id, mission_id=mission, mission_version="2", mission_sha256=SHA,
                   started_at=start.strftime("%Y-%m-%dT%H:%M:%S.000Z"), initiator={"user": "alice", "host": "ws1"})
    folder.write_run_info(info)
    index.upsert_run_info(info, folder.root)
    w = EvidenceWriter(folder, run_id, SecretRedactor(), index, clock=Clock(start))
    w.append(RunRecord, actor=Actor(type="human", id="alice"), phase="start",
             initiator={"user": "alice", "host": "ws1"}, started_by="warden run", mission_id=mission,
             mission_version="2", mission_sha256=SHA, started_at=info.started_at)
    return w


def _step(w: EvidenceWriter, n: int, kind: str, selector: str, *, ok: bool = True) -> None:
    w.append(DecisionRecord, actor=POLICY, guard="chain", decision="allow", rationale=f"{kind} allowed", step=n,
             kind=kind)
    intent = w.append(ActionRecord, actor=RUNNER, phase="intent", step=n, kind=kind, target={"selector": selector},
                      call=f"locator({selector!r}).{kind}()")
    w.append(ActionRecord, actor=RUNNER, phase="outcome", step=n, kind=kind, target={"selector": selector},
             call=f"locator({selector!r}).{kind}()", intent_id=intent.record_id, outcome="ok" if ok else "failed",
             duration_ms=12.5 if ok else 300, retries=0 if ok else 2, url_after="http://portal.localhost/x",
             error=None if ok else "timeout")


def _finish(w: EvidenceWriter, index: EvidenceIndex, status: RunStatus, code: int) -> None:
    info = w.folder.read_run_info()
    w.append(RunRecord, actor=RUNNER, phase="end", initiator=info.initiator, started_by="warden run",
             mission_id=info.mission_id, mission_version="2", mission_sha256=SHA, started_at=info.started_at,
             outcome=status, exit_code=code)
    final = info.finish(status=status, exit_code=code, chain_head=w.head, record_count=w.count)
    w.folder.write_run_info(final)
    index.upsert_run_info(final, w.folder.root)
    w.close()


def build_mix(evidence_dir: Path, index: EvidenceIndex, tag: str = "t") -> Mix:
    """Three runs: A (Nov, completed; network refusal, denied approval, PII), B (Oct, stopped; approved),
    C (Nov 20, never finished)."""
    a_id = f"20261105T100000000Z-{tag}-expense-aaaaaa"
    b_id = f"20261015T100000000Z-{tag}-payroll-bbbbbb"
    c_id = f"20261120T100000000Z-{tag}-expense-cccccc"

    a = _run(evidence_dir, index, a_id, "expense-report", datetime(2026, 11, 5, 10, tzinfo=UTC))
    _step(a, 1, "goto", "#home")
    _step(a, 2, "fill", "=SUM(A1:A9)")  # a formula-looking selector: CSV must neutralise it
    a.append(DecisionRecord, actor=POLICY, guard="network", decision="deny", rationale="host not allowed",
             rule="boundaries.allowed_domains", subject={"host": "evil.localhost", "port": 8080, "third_party": True,
                                                         "request": "xhr"}, count=3)
    a.append(ApprovalRequest, actor=RUNNER, approval_id="apr-1", step=3, kind="click", action_digest=DIGEST,
             zone="payments", rule="danger_zones.payments", reason="submits a payment", risk_score=7,
             page_url="http://portal.localhost/pay", channel="prompt", expires_at="2026-11-05T11:00:00.000Z")
    a.append(ApprovalRecord, actor=Actor(type="human", id="bob"), approval_id="apr-1", decision="denied",
             approver="bob", os_user="bob", reason="amount too high", channel="prompt", action_digest=DIGEST,
             rule="danger_zones.payments", answered_at="2026-11-05T10:00:09.000Z")
    a.append(PiiFinding, actor=RUNNER, step=2, where="input", location={"selector": "#email"}, key_id="k1",
             policy="record", action="recorded", counts={"EMAIL_ADDRESS": 1, "PHONE_NUMBER": 1},
             values=[FoundValue(entity_type="EMAIL_ADDRESS", score=0.85, value_hmac="ef" * 32,
                                preview="j***@e***.com", action="recorded"),
                     FoundValue(entity_type="PHONE_NUMBER", score=0.75, value_hmac="fe" * 32,
                                preview="+** *** ****", action="recorded")])
    _step(a, 4, "click", "#archive", ok=False)
    _finish(a, index, "failed", 4)

    b = _run(evidence_dir, index, b_id, "payroll", datetime(2026, 10, 15, 10, tzinfo=UTC))
    b.append(ApprovalRecord, actor=Actor(type="human", id="carol"), approval_id="apr-2", decision="approved",
             approver="carol", os_user="carol", reason="checked", channel="queue", action_digest=DIGEST,
             rule="danger_zones.payroll", answered_at="2026-10-15T10:00:02.000Z")
    b.append(DecisionRecord, actor=POLICY, guard="chain", decision="deny", rationale="action not allowed", step=1,
             kind="upload")
    _finish(b, index, "stopped", 3)

    c = _run(evidence_dir, index, c_id, "expense-report", datetime(2026, 11, 20, 10, tzinfo=UTC))
    _step(c, 1, "goto", "#home")
    c.close()
    return Mix({"A": a_id, "B": b_id, "C": c_id},
               {k: evidence_dir / "runs" / v for k, v in (("A", a_id), ("B", b_id), ("C", c_id))})


def q(index: EvidenceIndex, **kw: Any) -> list[dict[str, Any]]:
    return [r.data() for r in run_query(index, RecordQuery.build(**kw))]


def assert_query_semantics(index: EvidenceIndex, mix: Mix) -> None:
    """The filter semantics every backend must share (SQLite here, PostgreSQL in test_postgres.py)."""
    A, B, C = mix.runs["A"], mix.runs["B"], mix.runs["C"]
    mine = set(mix.runs.values())

    def ours(**kw: Any) -> list[dict[str, Any]]:
        return [r for r in q(index, **kw) if r["run_id"] in mine]

    # The SPEC's example: denied approvals since a date, as JSONL.
    denied = ours(types=["approval_record"], where=["decision=denied"], since="2026-11-01")
    assert [(r["run_id"], r["approver"], r["reason"]) for r in denied] == [(A, "bob", "amount too high")]
    assert ours(types=["approval_record"], where=["decision=denied"], since="2026-11-06") == []
    # --decision, --type repeated, ordering by time across runs
    denials = ours(types=["decision_record", "approval_record"], decision="deny")
    assert [(r["run_id"], r.get("guard")) for r in denials] == [(B, "chain"), (A, "network")]
    both = ours(types=["approval_record", "pii_finding"])
    assert [r["type"] for r in both] == ["approval_record", "approval_record", "pii_finding"]
    assert [r["time"] for r in both] == sorted(r["time"] for r in both)
    # dotted JSON paths, with numbers, booleans and strings compared by JSON type
    assert [r["run_id"] for r in ours(where=["subject.host=evil.localhost"])] == [A]
    assert len(ours(where=["subject.port=8080"])) == 1
    assert len(ours(where=["subject.port=8080.0"])) == 1
    assert ours(where=["subject.port=80"]) == []
    assert len(ours(where=["subject.third_party=true"])) == 1
    assert ours(where=["subject.third_party=false"]) == []
    assert len(ours(where=["count=3"])) == 1
    assert len(ours(where=["duration_ms=12.5"])) == 3  # the ok outcomes: A steps 1-2, C step 1
    assert len(ours(where=["retries=2", "outcome=failed"])) == 1
    assert {r["run_id"] for r in ours(where=["target.selector=#home"])} == {A, C}
    assert len(ours(where=["actor.id=bob"])) == 1
    assert len(ours(where=["actor.type=human", "type=approval_record"])) == 2
    assert len(ours(where=["initiator.host=ws1"])) == 3 + 2  # every start record, plus the two end records
    assert len(ours(types=["action_record"], where=["error=null"])) == 7  # all 8 but the failed outcome
    assert len(ours(where=["location.selector=#email", "values.0.score=0.85"])) == 1
    assert len(ours(where=["counts.EMAIL_ADDRESS=1"])) == 1 and ours(where=["counts.EMAIL_ADDRESS=2"]) == []
    # denormalised columns: mission, step, kind, phase, entity_type, approval_id
    assert {r["run_id"] for r in ours(mission_id="payroll")} == {B}
    assert len(ours(mission_id="expense-report", types=["run_record"])) == 3
    assert [r["phase"] for r in ours(run_id=A, where=["step=4"], types=["action_record"])] == ["intent", "outcome"]
    assert len(ours(where=["kind=fill", "phase=outcome"])) == 1
    assert [r["values"][0]["preview"] for r in ours(where=["entity_type=EMAIL_ADDRESS"])] == ["j***@e***.com"]
    assert len(ours(where=["entity_type=PHONE_NUMBER"])) == 1  # one finding record, two entity types
    assert ours(where=["entity_type=EMAIL"]) == [] and ours(where=["entity_type=EMAIL_ADDRES_"]) == []
    assert [r["type"] for r in ours(where=["approval_id=apr-1"])] == ["approval_request", "approval_record"]
    # the run's outcome
    assert {r["run_id"] for r in ours(outcome="stopped")} == {B}
    assert {r["run_id"] for r in ours(outcome="running")} == {C}
    assert ours(outcome="completed") == []
    # time range: a date --until includes its whole day; times are inclusive
    assert {r["run_id"] for r in ours(until="2026-10-15")} == {B}
    assert {r["run_id"] for r in ours(since="2026-11-20")} == {C}
    first_c = ours(run_id=C)[0]["time"]
    assert [r["time"] for r in ours(run_id=C, until=first_c)] == [first_c]
    assert [r["time"] for r in ours(run_id=C, since=first_c, until=first_c)] == [first_c]
    assert ours(since="2026-11-05T10:00:00+01:00", until="2026-11-05T09:00:00.999Z") == []
    # limit: oldest first
    assert [r["seq"] for r in ours(run_id=A, limit=3)] == [1, 2, 3]
    assert count_query(index, RecordQuery.build(types=["approval_record"], run_id=A)) == 1


def test_query_semantics_sqlite(evidence_dir: Path, index: EvidenceIndex) -> None:
    assert index.engine.dialect.name == "sqlite"
    assert_query_semantics(index, build_mix(evidence_dir, index))


def test_query_rejects_what_it_cannot_answer() -> None:
    with pytest.raises(UsageError, match="no record field 'decison'"):
        RecordQuery.build(where=["decison=denied"])
    with pytest.raises(UsageError, match="no record field 'guard'"):  # not a field of the selected type
        RecordQuery.build(types=["approval_record"], where=["guard=network"])
    with pytest.raises(UsageError, match="FIELD=VALUE"):
        RecordQuery.build(where=["decision"])
    with pytest.raises(UsageError, match="unknown record type"):
        RecordQuery.build(types=["approval"])
    with pytest.raises(UsageError, match="RFC 3339"):
        RecordQuery.build(since="last tuesday")
    with pytest.raises(UsageError, match="--outcome"):
        RecordQuery.build(outcome="ok")
    with pytest.raises(UsageError, match="integer"):
        RecordQuery.build(where=["step=two"])
    with pytest.raises(UsageError, match="names, digits"):
        RecordQuery.build(where=["subject.'x'=1"])


def test_parse_time() -> None:
    assert parse_time("2026-11-01") == "2026-11-01T00:00:00.000Z"
    assert parse_time("2026-11-01", end=True) == "2026-11-02T00:00:00.000Z"
    assert parse_time("2026-11-01T12:30:00+02:00") == "2026-11-01T10:30:00.000Z"
    assert parse_time("2026-11-01T10:30:00.123456Z", end=True) == "2026-11-01T10:30:00.124Z"
    assert parse_time("2026-11-01T10:30:00") == "2026-11-01T10:30:00.000Z"


def test_guard_and_subject_host_columns_answer_as_the_json_does(evidence_dir: Path, index: EvidenceIndex) -> None:
    """decision_record's guard and subject.host have their own columns; the answer is the JSON path's."""
    build_mix(evidence_dir, index)

    def q(**kw: Any) -> list[tuple[str, int]]:
        return [(r.run_id, r.seq) for r in run_query(index, RecordQuery.build(**kw))]

    by_host = q(types=["decision_record"], where=["subject.host=evil.localhost"])
    assert by_host and by_host == q(where=["subject.host=evil.localhost"])  # all types: the same records
    assert q(types=["decision_record"], where=["subject.port=8080"]) == by_host  # a number: the JSON path
    by_guard = q(types=["decision_record"], where=["guard=network"])
    assert by_guard == by_host and by_guard == q(where=["guard=network"])
    assert q(types=["decision_record"], where=["guard=networ"]) == []


def test_common_filters_use_an_index_without_sorting(evidence_dir: Path, index: EvidenceIndex) -> None:
    build_mix(evidence_dir, index)
    cases = {
        "ix_records_type_decision_time": RecordQuery.build(types=["approval_record"], decision="denied",
                                                           since="2026-11-01"),
        "ix_records_mission_time": RecordQuery.build(mission_id="payroll"),
        "ix_records_type_time": RecordQuery.build(types=["pii_finding"], where=["location.selector=x"], limit=5),
        "ix_records_approval_id": RecordQuery.build(where=["approval_id=apr-1"]),
        "ix_records_guard_time": RecordQuery.build(types=["decision_record"], where=["guard=boundaries.network"]),
        "ix_records_subject_host_time": RecordQuery.build(types=["decision_record"],
                                                          where=["subject.host=evil.localhost"]),
    }
    with index.engine.connect() as conn:
        for name, query in cases.items():
            sql = query.statement("sqlite").compile(index.engine, compile_kwargs={"literal_binds": True})
            plan = " | ".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
            assert name in plan, plan
            if name not in {"ix_records_approval_id"}:
                assert "TEMP B-TREE" not in plan, plan  # already in time order: a limit stops early


def test_cli_query_formats(evidence_dir: Path, index: EvidenceIndex) -> None:
    mix = build_mix(evidence_dir, index)
    runner = CliRunner()
    base = ["evidence", "query", "--evidence-dir", str(evidence_dir)]
    res = runner.invoke(cli, [*base, "--type", "approval_record", "--where", "decision=denied", "--since",
                              "2026-11-01", "--format", "jsonl"])
    assert res.exit_code == 0, res.output
    lines = mix.folders["A"].joinpath("records.jsonl").read_text().splitlines()
    assert res.stdout.splitlines() == [ln for ln in lines if '"type":"approval_record"' in ln]  # as written
    res = runner.invoke(cli, [*base, "--run", mix.runs["A"][:22], "--where", "kind=fill", "--format", "csv"])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert len(rows) == 3 and {r["seq"] for r in rows} == {"5", "6", "7"}
    assert all(r["record"].startswith("{") for r in rows)
    intent = next(r for r in rows if r["verdict"] == "intent")
    assert intent["summary"].startswith("locator('=SUM")
    json.loads(intent["record"])
    res = runner.invoke(cli, [*base, "--where", "target.selector==SUM(A1:A9)", "--format", "csv"])
    cells = [c for row in csv.reader(io.StringIO(res.stdout)) for c in row]
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)  # no spreadsheet formula survives
    res = runner.invoke(cli, [*base, "--type", "decision_record", "--decision", "deny"])
    assert res.exit_code == 0 and "2 record(s)" in res.output and "host not allowed" in res.output
    res = runner.invoke(cli, [*base, "--where", "decison=deny"])
    assert res.exit_code == 2 and "no record field" in res.output


def test_old_index_is_upgraded_in_place(tmp_path: Path) -> None:
    db = tmp_path / "warden.db"
    con = sqlite3.connect(db)
    con.executescript("""
        CREATE TABLE runs (run_id VARCHAR(200) PRIMARY KEY, mission_id VARCHAR(200), mission_version VARCHAR(100),
          mission_sha256 VARCHAR(64), started_at VARCHAR(32), ended_at VARCHAR(32), status VARCHAR(32),
          exit_code INTEGER, folder TEXT, chain_head VARCHAR(64), record_count INTEGER);
        CREATE TABLE records (run_id VARCHAR(200) REFERENCES runs(run_id), seq INTEGER, record_id VARCHAR(64) UNIQUE,
          type VARCHAR(64), time VARCHAR(32), decision VARCHAR(32), phase VARCHAR(32), kind VARCHAR(64),
          step INTEGER, hash VARCHAR(64), body TEXT, PRIMARY KEY (run_id, seq));
        INSERT INTO runs VALUES ('r1', 'm1', '1', 'x', '2026-11-01T00:00:00.000Z', NULL, 'completed', 0, '/x', 'h', 1);
        INSERT INTO records VALUES ('r1', 1, 'id1', 'pii_finding', '2026-11-01T00:00:01.000Z', NULL, NULL, NULL,
          NULL, 'h', '{"type":"pii_finding","entity_type":"IBAN_CODE"}');
    """)
    con.commit()
    con.close()
    index = EvidenceIndex(db)
    got = q(index, mission_id="m1", where=["entity_type=IBAN_CODE"])
    assert [r["entity_type"] for r in got] == ["IBAN_CODE"]
    index.close()


def _writer_process(evidence_dir: str, n: int, records: int) -> None:
    index = EvidenceIndex(evidence_dir)
    w = _run(Path(evidence_dir), index, f"20261101T00000000{n}Z-conc-{n:06d}", "conc",
             datetime(2026, 11, 1, tzinfo=UTC))
    for i in range(records):
        w.append(DecisionRecord, actor=POLICY, guard="chain", decision="allow", rationale=f"w{n} r{i}", step=i,
                 kind="click")
    _finish(w, index, "completed", 0)
    index.close()


def test_concurrent_writers_share_the_sqlite_index(evidence_dir: Path, index: EvidenceIndex) -> None:
    """Several runs at once, each its own process writing through the real writer: WAL + busy timeout."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer_process, args=(str(evidence_dir), n, 150)) for n in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    with index.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    for n in range(4):
        rows = q(index, mission_id="conc", run_id=f"20261101T00000000{n}Z-conc-{n:06d}")
        assert [r["seq"] for r in rows] == list(range(1, 153))
