"""An index written before the sparse columns' indexes were partial is brought up to date in place."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, Table, text

from evidence.index import EvidenceIndex, RecordRow
from evidence.query import RecordQuery, run_query
from tests.evidence.test_postgres import pg_url  # noqa: F401 - the fixture
from tests.evidence.test_query import build_mix

PARTIAL = {"ix_records_type_decision_time", "ix_records_kind_time", "ix_records_entity_type",
           "ix_records_approval_id", "ix_records_guard_time", "ix_records_subject_host_time"}


def _definitions(engine: Engine) -> dict[str, str]:
    sql = ("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records'"
           if engine.dialect.name == "sqlite" else
           "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'records' AND schemaname = current_schema()")
    with engine.connect() as conn:
        return {name: str(ddl or "") for name, ddl in conn.execute(text(sql))}


def _make_full(engine: Engine) -> None:
    """The indexes as an older Warden created them: the same names and columns, no WHERE."""
    with engine.begin() as conn:
        table: Table = RecordRow.__table__  # type: ignore[assignment]
        for ix in table.indexes:
            if ix.name in PARTIAL:
                conn.execute(text(f'DROP INDEX "{ix.name}"'))
                cols = ", ".join(c.name for c in ix.columns)
                conn.execute(text(f'CREATE INDEX "{ix.name}" ON records ({cols})'))


def _check_upgrade(url: str, evidence_dir: Path) -> None:
    index = EvidenceIndex(url)
    build_mix(evidence_dir, index)
    queries = [RecordQuery.build(types=["approval_record"], decision="denied"),
               RecordQuery.build(where=["kind=fill"]),
               RecordQuery.build(types=["pii_finding"], where=["entity_type=US_SSN"]),
               RecordQuery.build(types=["decision_record"], where=["guard=network"])]
    answers = [[(r.run_id, r.seq) for r in run_query(index, q)] for q in queries]
    assert any(answers)
    _make_full(index.engine)
    assert not any(" WHERE " in d.upper() for n, d in _definitions(index.engine).items() if n in PARTIAL)
    index.close()

    upgraded = EvidenceIndex(url)
    defs = _definitions(upgraded.engine)
    assert defs.keys() >= PARTIAL
    assert all(" WHERE " in defs[n].upper() and "IS NOT NULL" in defs[n].upper() for n in PARTIAL), defs
    assert [[(r.run_id, r.seq) for r in run_query(upgraded, q)] for q in queries] == answers
    upgraded.close()
    again = EvidenceIndex(url)  # already partial: left as it is
    assert _definitions(again.engine) == defs
    again.close()


def test_full_sparse_indexes_become_partial_sqlite(tmp_path: Path) -> None:
    _check_upgrade(str(tmp_path / "ev" / "warden.db"), tmp_path / "ev")


def test_full_sparse_indexes_become_partial_postgres(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    _check_upgrade(pg_url, tmp_path / "ev")
