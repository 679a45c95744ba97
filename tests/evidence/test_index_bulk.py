"""A large group indexed beside the chain work (evidence.index_bulk): the same rows as ``executemany``,
nothing committed before the chain is written, nothing left half-done by a failure or a kill."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence.index import EvidenceIndex
from evidence.index_bulk import chunk_params
from evidence.index_rows import row_tuple
from evidence.record_build import CHUNK
from evidence.records import GENESIS_HASH, ActionRecord, Actor, DecisionRecord, PiiFinding, Record
from evidence.recovery import recover_evidence_dir
from evidence.redact import SecretRedactor
from evidence.runfolder import RunFolder, RunInfo, new_run_id, utc_timestamp
from evidence.writer import BULK_GROUP, EvidenceWriter

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Actor(type="runner", id="warden")
POLICY = Actor(type="policy", id="guard-chain")
SHA = "ab" * 32


def _new_run(evidence_dir: Path, index: EvidenceIndex, mission: str = "bulk") -> RunFolder:
    run_id = new_run_id(mission)
    folder = RunFolder.create(evidence_dir, run_id)
    info = RunInfo(run_id=run_id, mission_id=mission, mission_version="1", mission_sha256=SHA,
                   started_at=utc_timestamp())
    folder.write_run_info(info)
    index.upsert_run_info(info, folder.root)
    return folder


def _items(n: int, start: int = 1) -> list[Any]:
    out: list[Any] = []
    for step in range(start, start + n):
        kind = ("click", "fill", "select")[step % 3]
        out.append((DecisionRecord, POLICY, (), {
            "guard": "chain", "decision": "allow", "rationale": f"{kind} is allowed", "step": step, "kind": kind,
            "subject": {"selector": f"#f{step}", "host": "app.localhost"}}))
        if step % 7 == 0:
            out.append((DecisionRecord, POLICY, (), {
                "guard": "boundaries.network", "decision": "deny", "rationale": "not allowed", "count": 2,
                "subject": {"host": "tracker.example", "port": 443}}))
        out.append((ActionRecord, RUNNER, (), {"phase": "intent", "step": step, "kind": kind,
                                               "target": {"selector": f"#f{step}"}, "call": f"{kind}()"}))
    return out[:n]


def _rows(db: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        cols = ", ".join(f"{c}, typeof({c})" for c in (
            "run_id", "seq", "record_id", "type", "time", "decision", "phase", "kind", "step", "mission_id",
            "entity_type", "approval_id", "guard", "subject_host", "hash", "body"))
        return conn.execute(f"SELECT {cols} FROM records ORDER BY run_id, seq").fetchall()  # noqa: S608
    finally:
        conn.close()


def _head(db: Path, run_id: str) -> tuple[str, int]:
    conn = sqlite3.connect(db)
    try:
        head, count = conn.execute("SELECT chain_head, record_count FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return str(head), int(count)
    finally:
        conn.close()


def test_a_large_group_is_indexed_as_record_by_record_appends_index_it(tmp_path: Path) -> None:
    """The same records, once in one group of 300 (the bulk path: chunks beside the build) and once
    appended one by one (``executemany`` of one row): the same rows, SQLite types included; the
    bodies are the lines of the file and the run's head moved to the group's last record."""
    items = _items(300)
    runs = []
    for mode in ("bulk", "single"):
        evidence_dir = tmp_path / mode
        index = EvidenceIndex(evidence_dir)
        folder = _new_run(evidence_dir, index)
        with EvidenceWriter(folder, folder.run_id, SecretRedactor(), index) as writer:
            if mode == "bulk":
                records = writer.append_many(items)
            else:
                records = [writer.append(c, actor=a, attachments=att, **f) for c, a, att, f in items]
        index.close()
        runs.append((evidence_dir / "warden.db", folder, records))
    (bulk_db, bulk_folder, bulk_records), (single_db, _, _) = runs
    bulk_rows, single_rows = _rows(bulk_db), _rows(single_db)
    assert len(bulk_rows) == len(single_rows) == 300
    for b, s in zip(bulk_rows, single_rows, strict=True):
        assert b[2:4] == s[2:4]  # seq
        assert b[6:8] + b[10:28] == s[6:8] + s[10:28]  # type, decision .. subject_host (times differ)
        assert b[1::2] == s[1::2]  # every column's SQLite type
    assert [r[28] for r in bulk_rows] == [r.hash for r in bulk_records]
    assert [r[4] for r in bulk_rows] == [r.record_id for r in bulk_records]
    assert [r[8] for r in bulk_rows] == [r.time for r in bulk_records]
    assert [r[30] for r in bulk_rows] == bulk_folder.records.read_text().splitlines()  # the lines, byte for byte
    assert _head(bulk_db, bulk_folder.run_id) == (bulk_records[-1].hash, 300)


def test_the_fast_chunk_path_is_the_one_taken_for_writer_records(tmp_path: Path) -> None:
    """Writer-made records travel in the fixed-width header (else the property test below would only
    ever compare ``executemany`` with itself)."""
    index = EvidenceIndex(tmp_path)
    folder = _new_run(tmp_path, index)
    with EvidenceWriter(folder, folder.run_id, SecretRedactor(), index) as writer:
        records = writer.append_many(_items(CHUNK))
    lines = folder.records.read_bytes().splitlines()
    assert chunk_params(folder.run_id, "bulk", records, lines) is not None
    index.close()


_PLAIN = st.one_of(st.none(), st.sampled_from(["allow", "deny", "intent", "click", "boundaries.network"]),
                   st.text(alphabet="abcXYZ019_.:/-", min_size=1, max_size=20))
_ODD = st.one_of(st.sampled_from(["a b", "trailing ", " lead", "", "x" * 200]), st.text(max_size=40),
                 st.text(alphabet="abcXYZ019_.:/-", min_size=90, max_size=130))


_FIELDS = ("record_id", "time", "hash", "step", "guard", "decision", "kind", "phase", "host", "line")


@st.composite
def _records(draw: Any, run_id: str) -> tuple[list[Record], list[str]]:
    """Plain records, but for at most one odd value (so every other chunk takes the fast path and the
    odd one decides alone whether its chunk can)."""
    n = draw(st.integers(1, 40))
    first = draw(st.integers(1, 5))
    odd_at = draw(st.integers(0, n))  # n: none
    odd_field = draw(st.sampled_from(_FIELDS))
    out: list[Record] = []
    lines: list[str] = []

    def value(field: str, i: int, plain: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> Any:
        return draw(odd if (i, field) == (odd_at, odd_field) else plain)

    for i in range(n):
        kind = draw(st.sampled_from(["decision", "action", "pii"]))
        rid = value("record_id", i, st.just("0190c0de-0000-7000-8000-"),
                    st.sampled_from(["", "id with space ", "ïd", "a\tb", "x" * 50]))
        common: dict[str, Any] = {
            "schema_": "warden.x/1", "record_id": rid if i == 0 else f"{i}{rid}",  # unique but the first
            "run_id": run_id, "seq": first + i,
            "time": value("time", i, st.just("2026-11-21T00:00:00.000Z"), st.sampled_from(["t ", "", "\x00"])),
            "actor": RUNNER, "prev_hash": GENESIS_HASH, "attachments": [],
            "hash": value("hash", i, st.just(SHA), st.sampled_from(["f" * 64 + " ", "é" * 64])),
        }
        step = value("step", i, st.one_of(st.none(), st.integers(0, 10**6)), st.one_of(
            st.integers(-(2**63), 2**63 - 1), st.booleans(), st.integers(2**63, 2**70)))
        text = {f: value(f, i, _PLAIN, _ODD) for f in ("guard", "decision", "kind", "phase", "host")}
        if kind == "decision":
            subject = {} if draw(st.booleans()) else {"host": text["host"]}
            out.append(DecisionRecord.model_construct(
                **common, type="decision_record", guard=text["guard"], decision=text["decision"], rationale="r",
                step=step, kind=text["kind"], subject=subject))
        elif kind == "action":
            out.append(ActionRecord.model_construct(
                **common, type="action_record", phase=text["phase"], step=step, kind=text["kind"], call="c()"))
        else:
            names = draw(st.lists(st.text(alphabet="ABCZ_", min_size=1, max_size=30), min_size=1, max_size=8))
            out.append(PiiFinding.model_construct(
                **common, type="pii_finding", step=step, where="page", key_id="k", policy="record",
                action="recorded", counts=dict.fromkeys(names, 1), values=[]))
        extra = value("line", i, st.text(alphabet="abc é", max_size=10), st.sampled_from(["\x00", "\u2028", "€"]))
        lines.append(f"line {first + i}: {extra}")  # raw text: a NUL stays a NUL
    return out, lines


def _both_ways(base: Any, run_id: str, records: list[Record], lines: list[str]) -> list[Any]:
    """What ``bulk`` (chunks of 16) and ``add_records`` (``executemany``) leave in a fresh index each."""
    outcomes = []
    for mode in ("bulk", "many"):
        path = base(mode)
        index = EvidenceIndex(path)
        index.upsert_run(run_id=run_id, mission_id="prop", mission_version="1", mission_sha256=SHA,
                         started_at="2026-11-21T00:00:00.000Z", status="running", folder=path)
        try:
            if mode == "bulk":
                bulk = index.bulk(run_id)
                assert bulk is not None
                try:
                    for at in range(0, len(records), 16):
                        bulk.add(records[at:at + 16], lines[at:at + 16])
                    bulk.commit(records[-1].hash, records[-1].seq)
                finally:
                    bulk.abort()
            else:
                index.add_records(list(zip(records, lines, strict=True)))
            outcomes.append(("ok", _rows(path / "warden.db"), _head(path / "warden.db", run_id)))
        except (OverflowError, sqlite3.Error) as e:  # e.g. a step beyond SQLite's integers: refused alike
            outcomes.append(("error", type(e).__name__, _rows(path / "warden.db")))
        finally:
            index.close()
    return outcomes


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_bulk_rows_equal_executemany_rows(tmp_path_factory: pytest.TempPathFactory, data: Any) -> None:
    """Property: whatever the records hold (odd, wide, empty, non-ASCII, control characters, trailing
    spaces, bools and huge ints as steps, many entity types), a group inserted through ``bulk`` —
    the fixed-width chunk when it can carry the rows, ``executemany`` when it cannot — leaves exactly
    the rows (values and SQLite types) that ``add_records`` (``executemany``) leaves, or fails alike."""
    run_id = "20261121T000000000Z-prop-abcdef"
    records, lines = data.draw(_records(run_id))
    outcomes = _both_ways(tmp_path_factory.mktemp, run_id, records, lines)
    assert outcomes[0] == outcomes[1]


_EDGES = [
    ("record_id", "0190c0de-trailing "), ("time", "2026-11-21T00:00:00.000Z "), ("hash", "f" * 63 + " "),
    ("record_id", ""), ("time", ""), ("record_id", "a\tb"), ("record_id", "ïd"), ("time", "\x00"),
    ("step", True), ("step", 2**63), ("step", -(2**63)), ("step", 2**63 - 1), ("kind", "k" * 33),
    ("kind", "k" * 32), ("phase", "a b"), ("line", "nul \x00 in a line"), ("line", "é \u2028"),
]


@pytest.mark.parametrize(("field", "odd"), _EDGES)
def test_each_edge_of_the_header_is_inserted_as_executemany_inserts_it(
    tmp_path_factory: pytest.TempPathFactory, field: str, odd: Any
) -> None:
    """One odd value in the middle of a chunk (each check of ``chunk_params`` has one here): the rows
    are the ones ``executemany`` leaves, whether or not the chunk could take the fast path."""
    run_id = "20261121T000000000Z-edge-abcdef"
    records: list[Record] = []
    lines: list[str] = []
    for i in range(5):
        values: dict[str, Any] = {"record_id": f"0190c0de-{i}", "time": "2026-11-21T00:00:00.000Z",
                                  "hash": SHA, "step": i, "kind": "click", "phase": "intent", "line": f"line {i}"}
        if i == 2:
            values[field] = odd
        records.append(ActionRecord.model_construct(
            schema_="warden.action_record/2", record_id=values["record_id"], run_id=run_id, seq=1 + i,
            type="action_record", time=values["time"], actor=RUNNER, prev_hash=GENESIS_HASH, hash=values["hash"],
            attachments=[], phase=values["phase"], step=values["step"], kind=values["kind"], call="c()"))
        lines.append(values["line"])
    outcomes = _both_ways(tmp_path_factory.mktemp, run_id, records, lines)
    assert outcomes[0] == outcomes[1]


def test_a_record_the_schema_refuses_mid_group_indexes_none_of_it(tmp_path: Path) -> None:
    """A ValidationError in the third chunk: the chunks already inserted are rolled back, the writer
    stays usable, the index's lock is free, and the next group is indexed whole."""
    index = EvidenceIndex(tmp_path)
    folder = _new_run(tmp_path, index)
    items = _items(3 * CHUNK)
    bad = (ActionRecord, RUNNER, (), {"phase": "sideways", "step": 1, "kind": "click", "call": "c()"})
    with EvidenceWriter(folder, folder.run_id, SecretRedactor(), index) as writer:
        with pytest.raises(ValueError, match="phase"):
            writer.append_many([*items[:2 * CHUNK + 5], bad, *items[2 * CHUNK + 5:]])
        assert writer.usable and writer.count == 0
        assert _rows(tmp_path / "warden.db") == []
        index.upsert_run(run_id=folder.run_id, mission_id="bulk", mission_version="2", mission_sha256=SHA,
                         started_at=utc_timestamp(), status="running", folder=folder.root)  # the lock is free
        records = writer.append_many(items[:BULK_GROUP])
    assert len(_rows(tmp_path / "warden.db")) == BULK_GROUP
    assert _head(tmp_path / "warden.db", folder.run_id) == (records[-1].hash, BULK_GROUP)
    index.close()


# A child process appends one group of 400 and is stopped (SIGKILL, the kernel's doing) at a chosen
# point: the hook only reports where it is and waits to be killed; the writer, the index and SQLite
# are the real ones.
_CHILD = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, {root!r})
    sys.path.insert(0, {tests!r})
    from evidence.index import EvidenceIndex
    from evidence.index_bulk import BulkInsert
    from evidence.redact import SecretRedactor
    from evidence.runfolder import RunFolder
    from evidence.writer import EvidenceWriter
    import test_index_bulk as t

    where = sys.argv[1]
    def stop_here(*_a, **_k):
        print("at " + where, flush=True)
        time.sleep(600)
    if where == "before-commit":  # the group's lines written and fsynced, its rows inserted, not committed
        BulkInsert.commit = stop_here
    else:  # "before-write": two chunks inserted (uncommitted), nothing of the group in the file yet
        EvidenceWriter._write_lines = stop_here
    evidence_dir = {evidence_dir!r}
    index = EvidenceIndex(evidence_dir)
    folder = RunFolder(__import__("pathlib").Path({folder!r}))
    writer = EvidenceWriter(folder, folder.root.name, SecretRedactor(), index, resume=True)
    writer.append_many(t._items(400, start=100))
""")


@pytest.mark.parametrize("where", ["before-commit", "before-write"])
def test_a_kill_inside_a_large_group_leaves_the_index_behind_the_chain_and_recovery_levels_them(
    tmp_path: Path, where: str
) -> None:
    from evidence.records import RunRecord

    index = EvidenceIndex(tmp_path)
    folder = _new_run(tmp_path, index)
    with EvidenceWriter(folder, folder.run_id, SecretRedactor(), index) as writer:
        writer.append(RunRecord, actor=RUNNER, phase="start", initiator={"user": "t"}, started_by="test",
                      mission_id="bulk", mission_version="1", mission_sha256=SHA, started_at=utc_timestamp())
        writer.append_many(_items(BULK_GROUP))
        before = (writer.head, writer.count)
    index.close()
    code = _CHILD.format(root=str(ROOT), tests=str(Path(__file__).parent), evidence_dir=str(tmp_path),
                         folder=str(folder.root))
    child = subprocess.Popen([sys.executable, "-c", code, where], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == f"at {where}"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    db = tmp_path / "warden.db"
    in_file = folder.records.read_bytes().splitlines()
    # The index never got ahead of the chain: its head and rows are the ones before the group.
    assert _head(db, folder.run_id) == before
    assert len(_rows(db)) == before[1]
    assert len(in_file) == before[1] + (400 if where == "before-commit" else 0)
    results = recover_evidence_dir(tmp_path)
    assert [r.action for r in results] == ["closed"]
    after = folder.records.read_bytes().splitlines()
    assert len(after) == len(in_file) + 2  # the crash_recovery exception and the closing run_record
    rows = _rows(db)
    assert [r[30] for r in rows] == [x.decode() for x in after]  # index level with the chain, line for line
    assert _head(db, folder.run_id) == (json.loads(after[-1])["hash"], len(after))


def test_row_tuple_is_the_record_row(tmp_path: Path) -> None:
    """``row_tuple`` (the insert's parameters) and ``_record_row`` (the dict form) agree."""
    from evidence.index_rows import ROW_COLUMNS, _record_row

    index = EvidenceIndex(tmp_path)
    folder = _new_run(tmp_path, index)
    with EvidenceWriter(folder, folder.run_id, SecretRedactor(), index) as writer:
        records = writer.append_many(_items(30))
    for record in records:
        row = _record_row(record, "x")
        assert row_tuple(record, "x", row["mission_id"]) == tuple(row[c] for c in ROW_COLUMNS)
    index.close()


def test_an_actor_shared_by_a_group_is_redacted_in_every_record_and_equal_actors_alike(tmp_path: Path) -> None:
    """Each distinct actor of a group is redacted once (``record_build.redact_group``): every record of
    that actor carries the redacted actor, two equal actor objects give equal records, and an actor
    redaction leaves alone stays the validated model itself; nothing in the file or the index holds
    the secret."""
    secret = "hunter2-S3cr3t!"
    index = EvidenceIndex(tmp_path)
    folder = _new_run(tmp_path, index)
    leaky, twin = Actor(type="human", id=f"user-{secret}"), Actor(type="human", id=f"user-{secret}")
    items = [(c, (leaky, twin, RUNNER)[n % 3], att, f) for n, (c, _, att, f) in enumerate(_items(BULK_GROUP * 2))]
    with EvidenceWriter(folder, folder.run_id, SecretRedactor({"PW": secret}), index) as writer:
        records = writer.append_many(items)
    assert [r.actor.id for r in records[:3]] == ["user-«secret:PW»", "user-«secret:PW»", "warden"]
    assert all(r.actor.id == "user-«secret:PW»" for n, r in enumerate(records) if n % 3 != 2)
    assert all(r.actor is RUNNER for n, r in enumerate(records) if n % 3 == 2)
    assert secret not in folder.records.read_text()
    assert not any(secret in str(v) for row in _rows(tmp_path / "warden.db") for v in row)
    index.close()
