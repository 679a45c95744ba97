"""What ``verify`` compares with a run folder, read from the index: the run row's chain head,
record count, status and exit code, and each indexed record's (seq, hash).

A SQLite index (the default) is read through the standard library, as a run writes it
(evidence.index_sqlite): the report a run writes when it closes verifies the run against its
index, and SQLAlchemy's import and ORM rows for every record are CPU beside the browser's
shutdown, for two columns. Other databases are read through ``EvidenceIndex`` (SQLAlchemy).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

from evidence.index_sqlite import connect, sqlite_file

if TYPE_CHECKING:
    from evidence.index import EvidenceIndex


@dataclass(frozen=True)
class IndexedChain:
    """The index's view of one run's chain (the run row's columns of the same names)."""

    chain_head: str
    record_count: int
    status: str
    exit_code: int | None
    hashes: tuple[tuple[int, str], ...]  # (seq, hash) of every indexed record, by seq


def indexed_chain(index: EvidenceIndex, run_id: str) -> IndexedChain | None:
    """The index's view of ``run_id``'s chain; None when the run is not in the index."""
    path = sqlite_file(index.url)
    if path is None:
        return _through_sqlalchemy(index, run_id)
    conn = connect(path)
    try:
        return _through_sqlite(conn, run_id)
    finally:
        conn.close()


def _through_sqlite(conn: sqlite3.Connection, run_id: str) -> IndexedChain | None:
    conn.execute("BEGIN")  # one snapshot for the row and its records (WAL: a writer goes on meanwhile)
    try:
        row = conn.execute(
            "SELECT chain_head, record_count, status, exit_code FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        if row is None:
            return None
        hashes = conn.execute("SELECT seq, hash FROM records WHERE run_id = ? ORDER BY seq", (run_id,)).fetchall()
    finally:
        conn.execute("COMMIT")
    head, count, status, exit_code = row
    return IndexedChain(head, count, status, exit_code, tuple((int(s), str(h)) for s, h in hashes))


def _through_sqlalchemy(index: EvidenceIndex, run_id: str) -> IndexedChain | None:
    row = index.get_run(run_id)
    if row is None:
        return None
    hashes = tuple((rec.seq, rec.hash) for rec in index.records(run_id))
    return IndexedChain(row.chain_head, row.record_count, row.status, row.exit_code, hashes)
