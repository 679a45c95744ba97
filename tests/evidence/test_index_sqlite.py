"""The SQLite index written through the standard library is the one SQLAlchemy writes: same schema,
same rows, same errors; an index in any other state is left to SQLAlchemy's upgrade."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text

from evidence.index import EvidenceIndex, RunFacts, _sqlite_pragmas
from evidence.index_models import Base
from evidence.index_sqlite import SCHEMA, expected_objects, schema_state
from evidence.records import Actor, DecisionRecord, ExceptionRecord
from evidence.redact import SecretRedactor
from evidence.runfolder import RunFolder, new_run_id
from evidence.writer import EvidenceWriter
from kernel.errors import EvidenceUnavailable

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Actor(type="runner", id="warden/test")


def _master(path: Path) -> set[tuple[str, str, str, str | None]]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE tbl_name IN ('runs', 'records')")
        return {(str(a), str(b), str(c), None if d is None else str(d)) for a, b, c, d in rows}
    finally:
        conn.close()


def _by_sqlalchemy(path: Path) -> EvidenceIndex:
    engine = create_engine(f"sqlite:///{path}")
    event.listen(engine, "connect", _sqlite_pragmas)
    return EvidenceIndex(f"sqlite:///{path}", engine=engine)


def test_schema_is_what_sqlalchemy_creates(tmp_path: Path) -> None:
    orm = _by_sqlalchemy(tmp_path / "orm.db")
    orm.close()
    fast = EvidenceIndex(tmp_path / "fast.db")
    fast.close()
    assert _master(tmp_path / "orm.db") == _master(tmp_path / "fast.db") == set(expected_objects())
    assert len(SCHEMA) == 13 and any(" WHERE " in ddl for ddl in SCHEMA)


def test_an_index_sqlalchemy_created_is_current_and_an_older_one_is_not(tmp_path: Path) -> None:
    _by_sqlalchemy(tmp_path / "orm.db").close()
    conn = sqlite3.connect(tmp_path / "orm.db")
    try:
        assert schema_state(conn) == "current"
        conn.execute("DROP INDEX ix_records_kind_time")
        conn.execute("CREATE INDEX ix_records_kind_time ON records (kind, time, run_id, seq)")  # an older, full index
        conn.commit()
        assert schema_state(conn) == "other"
    finally:
        conn.close()
    empty = sqlite3.connect(tmp_path / "empty.db")
    try:
        assert schema_state(empty) == "empty"
    finally:
        empty.close()
    EvidenceIndex(tmp_path / "orm.db").close()  # upgraded by SQLAlchemy, as before: partial again
    defs = {name: sql for _, name, _, sql in _master(tmp_path / "orm.db")}
    assert "WHERE kind IS NOT NULL" in str(defs["ix_records_kind_time"])


def _exc(w: EvidenceWriter) -> None:
    w.append(ExceptionRecord, actor=RUNNER, category="test", error_type="E", message="m", mitigation="recorded")


def _write_run(index: EvidenceIndex, evidence_dir: Path, run_id: str) -> None:
    folder = RunFolder.create(evidence_dir, run_id)
    index.upsert_run(run_id=run_id, mission_id="m-1", mission_version="1.0", mission_sha256="a" * 64,
                     started_at="2026-12-07T00:00:00.000Z", status="running", folder=folder.root)
    with EvidenceWriter(folder, run_id, SecretRedactor(), index) as w:
        _exc(w)
        w.append_many([
            (DecisionRecord, RUNNER, (), {"guard": "domains", "decision": "deny", "rationale": "off the list",
                                          "rule": "domains.allow", "subject": {"host": "evil.example"}}),
            (DecisionRecord, RUNNER, (), {"guard": "chain", "decision": "allow", "rationale": "ok", "rule": "r",
                                          "step": 1, "kind": "goto"}),
        ])
    index.upsert_run(run_id=run_id, mission_id="m-1", mission_version="1.0", mission_sha256="a" * 64,
                     started_at="2026-12-07T00:00:00.000Z", status="completed", exit_code=0, folder=folder.root,
                     ended_at="2026-12-07T00:00:01.000Z", chain_head=w.head, record_count=w.count)


def _rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {
            "runs": conn.execute("SELECT * FROM runs ORDER BY run_id").fetchall(),
            "records": [row[:-1] for row in conn.execute("SELECT * FROM records ORDER BY run_id, seq")],
        }
    finally:
        conn.close()


def test_the_same_writes_leave_the_same_rows(tmp_path: Path) -> None:
    run_id = new_run_id("m-1")
    orm = _by_sqlalchemy(tmp_path / "orm.db")
    fast = EvidenceIndex(tmp_path / "fast.db")
    assert fast._fast is not None and orm._fast is None
    try:
        _write_run(orm, tmp_path / "ev-orm", run_id)
        _write_run(fast, tmp_path / "ev-fast", run_id)
        for index in (orm, fast):
            previous = index.last_run_of_mission("m-1")
            assert isinstance(previous, RunFacts) and previous.run_id == run_id and previous.status == "completed"
            assert index.last_run_of_mission("m-1", exclude_run_id=run_id) is None
            assert [r.run_id for r in index.runs_with_status("completed")] == [run_id]
            assert index.runs_with_status("running") == []
    finally:
        orm.close()
        fast.close()
    a, b = _rows(tmp_path / "orm.db"), _rows(tmp_path / "fast.db")
    # Every column but the folder, the ids, times and hashes (two runs: their times differ).
    assert [r[:8] + r[10:] for r in a["runs"]] == [r[:8] + r[10:] for r in b["runs"]]
    same = (0, 1, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13)
    assert [[r[i] for i in same] for r in a["records"]] == [[r[i] for i in same] for r in b["records"]]
    assert len(b["records"]) == 3 and b["records"][1][12] == "domains" and b["records"][1][13] == "evil.example"
    assert b["records"][2][5:10] == ("allow", None, "goto", 1, "m-1")


def test_an_unregistered_run_is_refused_and_nothing_is_inserted(tmp_path: Path) -> None:
    index = EvidenceIndex(tmp_path)
    folder = RunFolder.create(tmp_path, new_run_id("m-1"))
    try:
        with EvidenceWriter(folder, folder.run_id, SecretRedactor(), index) as w, pytest.raises(
            EvidenceUnavailable, match="not registered"
        ):
            _exc(w)
    finally:
        index.close()
    assert _rows(tmp_path / "warden.db")["records"] == []


def test_readers_see_what_the_fast_path_wrote(tmp_path: Path) -> None:
    index = EvidenceIndex(tmp_path)
    run_id = new_run_id("m-1")
    try:
        _write_run(index, tmp_path, run_id)
        row = index.get_run(run_id)  # SQLAlchemy, on its own connection
        assert row is not None and row.record_count == 3 and row.status == "completed"
        assert [r.seq for r in index.records(run_id)] == [1, 2, 3]
        with index.engine.connect() as conn:
            assert conn.execute(text("PRAGMA secure_delete")).scalar() == 1
    finally:
        index.close()


def test_a_run_s_index_writes_import_no_sqlalchemy(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from evidence.index import EvidenceIndex
        index = EvidenceIndex(Path(sys.argv[1]))
        index.upsert_run(run_id="r", mission_id="m", mission_version="1", mission_sha256="a" * 64,
                         started_at="2026", status="running", folder=sys.argv[1])
        index.set_head("r", "b" * 64, 0)
        assert index.last_run_of_mission("m", exclude_run_id="r") is None
        assert [r.run_id for r in index.runs_with_status("running")] == ["r"]
        index.close()
        print(sorted(m for m in sys.modules if m.split(".")[0] == "sqlalchemy"))
        """
    )
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    assert Base.metadata.tables.keys() == {"runs", "records"}
