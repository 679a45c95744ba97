"""The SQL index: run lookup by prefix, records, heads, filters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evidence.index import EvidenceIndex
from evidence.records import Actor, DecisionRecord
from kernel.errors import UsageError


def test_runs_and_records_are_indexed(make_run: Any, index: EvidenceIndex) -> None:
    h = make_run(steps=3)
    run = index.find_run(h.run_id)
    assert run.status == "completed"
    assert run.exit_code == 0
    assert run.chain_head == h.info.chain_head
    assert run.record_count == 11
    assert Path(run.folder) == h.folder.root
    rows = index.records(h.run_id)
    assert [r.seq for r in rows] == list(range(1, 12))
    lines = h.folder.records.read_text().splitlines()
    assert [r.body for r in rows] == lines  # the index holds the exact bytes of the folder
    assert rows[2].type == "action_record"
    assert rows[2].phase == "intent"
    assert rows[2].step == 1
    assert rows[2].kind == "click"
    assert index.head(h.run_id) == h.info.chain_head
    assert index.head("nope") is None


def test_find_run_by_unique_prefix(start_run: Any, index: EvidenceIndex) -> None:
    a = start_run(run_id="20261121T100000000Z-alpha-aaaaaa")
    start_run(run_id="20261121T100000000Z-alpha-bbbbbb")
    start_run(run_id="20261121T110000000Z-beta-cccccc")
    with pytest.raises(UsageError, match="ambiguous"):
        index.find_run("20261121T10")
    assert index.find_run("20261121T11").run_id == "20261121T110000000Z-beta-cccccc"
    assert index.find_run("20261121T100000000Z-alpha-a").run_id == a.run_id
    with pytest.raises(UsageError, match="no run matches"):
        index.find_run("2027")
    with pytest.raises(UsageError, match="no run matches"):
        index.find_run("%")  # LIKE wildcards are literal
    assert next(r.run_id for r in index.list_runs()) == "20261121T110000000Z-beta-cccccc"


def test_query_records_filters(start_run: Any, index: EvidenceIndex) -> None:
    h = start_run()
    pol = Actor(type="policy", id="chain")
    h.writer.append(DecisionRecord, actor=pol, guard="domain", decision="deny", rationale="off list", step=1)
    h.writer.append(DecisionRecord, actor=pol, guard="chain", decision="allow", rationale="ok", step=2)
    denied = index.query_records(types=["decision_record"], where={"decision": "deny"})
    assert [r.data()["guard"] for r in denied] == ["domain"]
    assert len(index.query_records(where={"step": "2"})) == 1
    assert index.query_records(since="2999-01-01T00:00:00.000Z") == []
    with pytest.raises(UsageError, match="cannot filter"):
        index.query_records(where={"body": "x"})


def test_record_for_unregistered_run_fails(tmp_path: Path, make_run: Any) -> None:
    h = make_run(steps=1)
    other = EvidenceIndex(tmp_path / "other.db")
    rec = next(iter(other.records(h.run_id)), None)
    assert rec is None
    from evidence.records import parse_record

    first = parse_record(__import__("json").loads(h.folder.records.read_text().splitlines()[0]))
    with pytest.raises(LookupError, match="not registered"):
        other.add_record(first)
    other.close()


def test_index_accepts_url_file_or_dir(tmp_path: Path) -> None:
    by_dir = EvidenceIndex(tmp_path)
    assert by_dir.url == f"sqlite:///{tmp_path / 'warden.db'}"
    by_url = EvidenceIndex(f"sqlite:///{tmp_path / 'x.db'}")
    assert (tmp_path / "x.db").exists()
    with by_url.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() == 15000
    by_dir.close()
    by_url.close()


# ----------------------------------------------------------------------------- nothing sensitive in a column

class _Mask:
    def redact(self, text: str) -> str:
        return text.replace("canary.alice.7f3k@example.com", "«pii:EMAIL_ADDRESS»")


def _all_values(db: Path) -> str:
    import sqlite3

    with sqlite3.connect(db) as c:
        tables = [t for (t,) in c.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return " ".join(str(v) for t in tables for row in c.execute(f'SELECT * FROM "{t}"') for v in row)  # noqa: S608


def test_index_columns_hold_only_tokens_or_redacted_text(start_run: Any, evidence_dir: Path) -> None:
    h = start_run(redactor=_Mask())
    pol = Actor(type="policy", id="chain")
    mail = "canary.alice.7f3k@example.com"
    h.writer.append(DecisionRecord, actor=pol, guard="g", decision="deny", rationale=f"for {mail}", step=1,
                    kind=f"click {mail}")
    rows = EvidenceIndex(evidence_dir).records(h.run_id)
    assert rows[-1].kind is None  # free text never lands in a denormalised column (the body holds it redacted)
    assert rows[-1].data()["kind"] == "click «pii:EMAIL_ADDRESS»"
    assert rows[-1].decision == "deny" and rows[-1].type == "decision_record"
    # The run row's one free text goes through the index's redactor.
    idx = EvidenceIndex(evidence_dir, redactor=_Mask())
    idx.upsert_run(run_id=h.run_id, mission_id="expense-report", mission_version=f"for {mail}",
                   mission_sha256="0" * 64, started_at="2026-01-01T00:00:00.000Z", status="running",
                   folder=h.folder.root)
    run = idx.get_run(h.run_id)
    assert run is not None and run.mission_version == "for «pii:EMAIL_ADDRESS»"
    assert "canary.alice" not in _all_values(evidence_dir / "warden.db")
    idx.close()
