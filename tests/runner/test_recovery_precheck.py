"""The CLI's crash recovery skips the approvals queue's ORM only when the reap provably has nothing
to do: no index file, no ``approvals`` table, or no pending row in it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from runner.approvals.rows import ApprovalRow
from runner.cli_options import _may_have_pending_approvals


def _table(path: Path, *statuses: str) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute("CREATE TABLE approvals (approval_id TEXT PRIMARY KEY, status VARCHAR(16))")
        conn.executemany("INSERT INTO approvals VALUES (?, ?)", [(f"a{i}", s) for i, s in enumerate(statuses)])
        conn.commit()
    finally:
        conn.close()


def test_the_check_reads_the_queue_s_own_table_and_column() -> None:
    assert ApprovalRow.__tablename__ == "approvals" and "status" in ApprovalRow.__table__.c


def test_nothing_to_reap_without_a_pending_row(tmp_path: Path) -> None:
    assert not _may_have_pending_approvals(tmp_path, None)  # no index at all
    sqlite3.connect(tmp_path / "warden.db").close()
    assert not _may_have_pending_approvals(tmp_path, None)  # an index without the queue's table
    (tmp_path / "warden.db").unlink()
    _table(tmp_path / "warden.db", "approved", "expired", "denied")
    assert not _may_have_pending_approvals(tmp_path, None)


def test_a_pending_row_another_store_or_any_doubt_reaps(tmp_path: Path) -> None:
    _table(tmp_path / "warden.db", "approved", "pending")
    assert _may_have_pending_approvals(tmp_path, None)
    assert _may_have_pending_approvals(tmp_path / "empty", "postgresql://db/warden")  # never guessed
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "warden.db").write_bytes(b"not a database" * 100)
    assert _may_have_pending_approvals(bad, None)
