"""A run's writes to a SQLite index through the standard library's ``sqlite3``, without SQLAlchemy.

Why: a run registers itself, looks up the previous run of its mission and indexes every record it
writes, all before (and while) it acts; importing SQLAlchemy and its ORM for that cost ~0.5 s of
CPU on the way to the first action. These are the same statements on the same tables
(``evidence.index_models``: ``SCHEMA`` is what SQLAlchemy's ``create_all`` makes, a test keeps them
equal), with the same connection settings (WAL, busy timeout, ``secure_delete``), each write one
``BEGIN IMMEDIATE`` transaction. An index in any other state than empty or up to date (written by an
older Warden, half created) is left to SQLAlchemy's ``create_all`` and ``upgrade_schema``
(``schema_state``), as before.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from evidence.index_bulk import BulkInsert
from evidence.index_rows import ROW_COLUMNS

SCHEMA: tuple[str, ...] = (
    "CREATE TABLE runs (\n\trun_id VARCHAR(200) NOT NULL, \n\tmission_id VARCHAR(200) NOT NULL, "
    "\n\tmission_version VARCHAR(100) NOT NULL, \n\tmission_sha256 VARCHAR(64) NOT NULL, "
    "\n\tstarted_at VARCHAR(32) NOT NULL, \n\tended_at VARCHAR(32), \n\tstatus VARCHAR(32) NOT NULL, "
    "\n\texit_code INTEGER, \n\tfolder TEXT NOT NULL, \n\tchain_head VARCHAR(64) NOT NULL, "
    "\n\trecord_count INTEGER NOT NULL, \n\tPRIMARY KEY (run_id)\n)",
    "CREATE INDEX ix_runs_mission_id ON runs (mission_id)",
    "CREATE INDEX ix_runs_started_at ON runs (started_at)",
    "CREATE TABLE records (\n\trun_id VARCHAR(200) NOT NULL, \n\tseq INTEGER NOT NULL, "
    "\n\trecord_id VARCHAR(64) NOT NULL, \n\ttype VARCHAR(64) NOT NULL, \n\ttime VARCHAR(32) NOT NULL, "
    "\n\tdecision VARCHAR(32), \n\tphase VARCHAR(32), \n\tkind VARCHAR(64), \n\tstep INTEGER, "
    "\n\tmission_id VARCHAR(200), \n\tentity_type TEXT, \n\tapproval_id VARCHAR(100), \n\tguard VARCHAR(100), "
    "\n\tsubject_host VARCHAR(255), \n\thash VARCHAR(64) NOT NULL, \n\tbody TEXT NOT NULL, "
    "\n\tPRIMARY KEY (run_id, seq), \n\tFOREIGN KEY(run_id) REFERENCES runs (run_id), \n\tUNIQUE (record_id)\n)",
    "CREATE INDEX ix_records_time ON records (time, run_id, seq)",
    "CREATE INDEX ix_records_type_time ON records (type, time, run_id, seq)",
    "CREATE INDEX ix_records_type_decision_time ON records (type, decision, time, run_id, seq) "
    "WHERE decision IS NOT NULL",
    "CREATE INDEX ix_records_mission_time ON records (mission_id, time, run_id, seq)",
    "CREATE INDEX ix_records_kind_time ON records (kind, time, run_id, seq) WHERE kind IS NOT NULL",
    "CREATE INDEX ix_records_entity_type ON records (entity_type) WHERE entity_type IS NOT NULL",
    "CREATE INDEX ix_records_approval_id ON records (approval_id) WHERE approval_id IS NOT NULL",
    "CREATE INDEX ix_records_guard_time ON records (type, guard, time, run_id, seq) WHERE guard IS NOT NULL",
    "CREATE INDEX ix_records_subject_host_time ON records (type, subject_host, time, run_id, seq) "
    "WHERE subject_host IS NOT NULL",
)
"""The index's tables and indexes as SQLAlchemy's ``create_all`` creates them on SQLite (tested)."""

PRAGMAS: tuple[str, ...] = (
    "PRAGMA busy_timeout = 15000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",  # WAL + NORMAL: durable enough; the folder is the truth
    "PRAGMA foreign_keys = ON",
    # Overwrite freed content with zeros: a row rewritten redacted (the approvals queue's scrub)
    # must not leave its earlier bytes in the file's free space.
    "PRAGMA secure_delete = ON",
)
"""Every connection's settings, SQLAlchemy's (``evidence.index``) and these alike."""

WRITER_PRAGMAS: tuple[str, ...] = (
    # A run's writer connection: up to 16 MiB of page cache (allocated as pages are used, so a short
    # run pays nothing). With the default 2 MiB a group of 1000 records spilled and re-read pages:
    # system CPU of a 1000-row insert + commit ~53 -> ~34 us/row (alternating). No effect on rows.
    "PRAGMA cache_size = -16384",
    # Checkpoint (copy the WAL into the database, fsync it) after 10000 WAL pages instead of 1000:
    # a group of 1000 records writes ~380 pages, so the default checkpointed every ~3 commits, inside
    # them. Durability is the WAL's either way (checkpoints move committed pages, they commit nothing);
    # the WAL grows to ~40 MiB at most and the last connection to close checkpoints it. Alternating
    # 100k-record replays of a run's inserts: ~2-3 us CPU, ~4 us wall less per record.
    "PRAGMA wal_autocheckpoint = 10000",
)
"""Settings of this module's connections only (performance, not behaviour)."""

RUN_COLUMNS = ("run_id", "mission_id", "mission_version", "mission_sha256", "started_at", "ended_at", "status",
               "exit_code", "folder", "chain_head", "record_count")
_TABLES = ("runs", "records")
_INSERT_RECORDS = f"INSERT INTO records ({', '.join(ROW_COLUMNS)}) VALUES ({', '.join('?' * len(ROW_COLUMNS))})"  # noqa: S608
_MOVE_HEAD = "UPDATE runs SET chain_head = ?, record_count = ? WHERE run_id = ?"
_SELECT_RUN = f"SELECT {', '.join(RUN_COLUMNS)} FROM runs"  # noqa: S608


@dataclass(frozen=True)
class RunFacts:
    """A ``runs`` row as plain values (what ``RunRow`` holds, without the ORM)."""

    run_id: str
    mission_id: str
    mission_version: str
    mission_sha256: str
    started_at: str
    ended_at: str | None
    status: str
    exit_code: int | None
    folder: str
    chain_head: str
    record_count: int

    @classmethod
    def of(cls, row: Any) -> RunFacts:
        """From a ``RunRow`` (or anything with its attributes)."""
        return cls(*(getattr(row, name) for name in RUN_COLUMNS))


def url_for(url_or_path: str | Path) -> str:
    """The SQLAlchemy URL of a URL, a ``.db`` file or an evidence dir (its ``warden.db``)."""
    raw = str(url_or_path)
    if raw.startswith(("postgresql://", "postgres://")):
        # psycopg 3 is the driver Warden ships with (SQLAlchemy's bare scheme means psycopg2).
        return "postgresql+psycopg://" + raw.split("://", 1)[1]
    if "://" in raw:
        return raw
    path = Path(raw)
    if path.is_dir() or not path.suffix:
        path = path / "warden.db"
    return f"sqlite:///{path.absolute()}"


def sqlite_file(url: str) -> str | None:
    """The database file of a plain ``sqlite:///PATH`` URL (no query, not in memory), else None."""
    if not url.startswith("sqlite:///") or "?" in url:
        return None
    path = url.removeprefix("sqlite:///")
    return None if path in ("", ":memory:") else path


def connect(path: str) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), shared by the index's threads."""
    conn = sqlite3.connect(path, timeout=15, isolation_level=None, check_same_thread=False)
    try:
        for pragma in PRAGMAS + WRITER_PRAGMAS:
            conn.execute(pragma)
    except BaseException:
        conn.close()
        raise
    return conn


@lru_cache(maxsize=1)
def expected_objects() -> frozenset[tuple[str, str, str, str | None]]:
    """``sqlite_master`` rows of the two tables as ``SCHEMA`` leaves them (autoindexes included)."""
    mem = sqlite3.connect(":memory:")
    try:
        for ddl in SCHEMA:
            mem.execute(ddl)
        return _objects(mem)
    finally:
        mem.close()


def _objects(conn: sqlite3.Connection) -> frozenset[tuple[str, str, str, str | None]]:
    marks = ", ".join("?" * len(_TABLES))
    rows = conn.execute(f"SELECT type, name, tbl_name, sql FROM sqlite_master WHERE tbl_name IN ({marks})", _TABLES)  # noqa: S608
    return frozenset((str(t), str(n), str(tb), None if s is None else str(s)) for t, n, tb, s in rows)


def schema_state(conn: sqlite3.Connection) -> Literal["current", "empty", "other"]:
    """``current``: the tables and indexes are exactly ``SCHEMA``'s; ``empty``: none of them exists;
    ``other``: anything else (an older Warden's index, a half-created one), for SQLAlchemy to bring up to date."""
    found = _objects(conn)
    if found == expected_objects():
        return "current"
    return "empty" if not found else "other"


class SqliteIndexWriter:
    """The writes (and the one lookup) a run makes to a SQLite index, on one connection and a lock."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None  # the bulk inserts' thread, started on first use

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: committed when the block ends, rolled back on any error."""
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def create_schema(self) -> bool:
        """Create the tables and indexes if none exists yet (checked again inside the transaction:
        another run may have just created them); False when what is there is for SQLAlchemy to upgrade."""
        with self._write() as conn:
            state = schema_state(conn)
            if state == "empty":
                for ddl in SCHEMA:
                    conn.execute(ddl)
                return True
            return state == "current"

    def upsert_run(self, run_id: str, values: Mapping[str, Any]) -> None:
        """Update the run's row with ``values``, or insert it (chain head and count from zero)."""
        names = list(values)
        with self._write() as conn:
            sets = ", ".join(f"{name} = ?" for name in names)
            done = conn.execute(f"UPDATE runs SET {sets} WHERE run_id = ?", [*values.values(), run_id])  # noqa: S608
            if done.rowcount == 0:
                row = {"chain_head": "0" * 64, "record_count": 0, **values, "run_id": run_id}
                cols = list(row)
                conn.execute(f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",  # noqa: S608
                             list(row.values()))

    def add_records(self, run_id: str, head: str, count: int, rows: Sequence[Sequence[Any]]) -> None:
        """Move the run's chain head and insert its record rows (``ROW_COLUMNS`` order), in one transaction."""
        with self._write() as conn:
            done = conn.execute(_MOVE_HEAD, (head, count, run_id))
            if done.rowcount != 1:
                raise LookupError(f"run {run_id!r} is not registered in the index (upsert_run first)")
            conn.executemany(_INSERT_RECORDS, rows)

    def bulk(self, run_id: str, mission_id: str | None) -> BulkInsert:
        """One large group's rows, inserted beside the caller (``evidence.index_bulk``)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warden-index")
        return BulkInsert(self._conn, self._lock, self._pool, run_id, mission_id)

    def set_head(self, run_id: str, chain_head: str, record_count: int) -> None:
        with self._write() as conn:
            conn.execute(_MOVE_HEAD, (chain_head, record_count, run_id))

    def mission_of(self, run_id: str) -> str | None:
        with self._lock:
            found = self._conn.execute("SELECT mission_id FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if found is None else str(found[0])

    def last_run_of_mission(self, mission_id: str, exclude_run_id: str | None) -> RunFacts | None:
        sql = _SELECT_RUN + " WHERE mission_id = ?"
        args: list[Any] = [mission_id]
        if exclude_run_id is not None:
            sql += " AND run_id != ?"
            args.append(exclude_run_id)
        sql += " ORDER BY started_at DESC, run_id DESC LIMIT 1"
        with self._lock:
            found = self._conn.execute(sql, args).fetchone()
        return None if found is None else RunFacts(*found)

    def runs_with_status(self, status: str) -> list[RunFacts]:
        with self._lock:
            found = self._conn.execute(_SELECT_RUN + " WHERE status = ? ORDER BY started_at", (status,)).fetchall()
        return [RunFacts(*row) for row in found]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        with self._lock:
            self._conn.close()
