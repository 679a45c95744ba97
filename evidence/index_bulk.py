"""A large group's record rows inserted into a SQLite index beside the writer's chain work.

Why: indexing a record is ~15-20 us of SQLite B-tree work (eleven B-trees per row). ``sqlite3``
releases the GIL only while it steps a statement, and ``executemany`` steps once per row and takes
the GIL back between rows: run in a thread beside Python work, it would wait a switch interval
(5 ms) for the GIL after every row. Here a chunk of rows is ONE ``INSERT ... SELECT`` that SQLite
slices out of two blobs (a fixed-width header per row, and the rows' lines), so the whole chunk is
inserted in one step, without the GIL, in a worker thread, while the writer builds the next chunk.

One group is one transaction (``BEGIN IMMEDIATE`` with the first chunk; the run's chain head moves
and it commits in ``commit``, which the writer calls only after the group's lines are written and,
when the group gates, fsynced). Until then nothing of the group is visible to any other connection,
and a process killed in between leaves none of it in the index (SQLite rolls an uncommitted
transaction back): the index is never ahead of the chain, and recovery indexes what the chain holds
beyond it, as after a crash between writing a group and indexing it.

The rows are exactly ``index_rows._record_row``'s (a property test compares the table's contents
with ``executemany`` of those rows); a chunk holding anything the header cannot carry byte for byte
(a column wider than its slot, a non-ASCII or control character in a column, an empty id, a step
beyond 64 bits, a NUL in a line) is inserted with ``executemany`` instead, in the same transaction.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from evidence.index_rows import row_tuple
from evidence.records import Record

_SLOTS: tuple[tuple[str, int], ...] = (  # ROW_COLUMNS[2:15] in that order, mission_id (one per chunk) aside
    ("record_id", 36), ("type", 24), ("time", 24), ("decision", 16), ("phase", 8), ("kind", 32), ("step", 20),
    ("mission_id", 0), ("entity_type", 128), ("approval_id", 32), ("guard", 64), ("subject_host", 100), ("hash", 64),
)
"""Each header column and its width (bytes, space-padded); the body's offset and length come first."""
_NUMBERS = 20  # "%10d%10d": the body's offset in the lines blob (1-based) and its length
WIDTH = _NUMBERS + sum(w for _, w in _SLOTS)
_MAX_INT = 2**63 - 1
_FORMAT = "%10d%10d" + "".join(f"%-{w}s" if w else "%.0s" for _, w in _SLOTS)


def _slot(name: str) -> str:
    start = _NUMBERS + 1
    for other, width in _SLOTS:
        if other == name:
            text = f"NULLIF(rtrim(CAST(substr(?3, n.i * {WIDTH} + {start}, {width}) AS TEXT)), '')"
            return f"CAST({text} AS INTEGER)" if name == "step" else text
        start += width
    raise KeyError(name)


def _number(at: int) -> str:
    return f"CAST(CAST(substr(?3, n.i * {WIDTH} + {at}, 10) AS TEXT) AS INTEGER)"


# ?1 run_id, ?2 the chunk's first seq, ?3 the headers, ?4 the lines, ?5 rows in the chunk, ?6 mission_id.
INSERT_CHUNK = (  # only constant names and slot offsets: the values travel as parameters
    "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?5) "  # noqa: S608
    "INSERT INTO records (run_id, seq, record_id, type, time, decision, phase, kind, step, mission_id, "
    "entity_type, approval_id, guard, subject_host, hash, body) "
    f"SELECT ?1, ?2 + n.i, {_slot('record_id')}, {_slot('type')}, {_slot('time')}, {_slot('decision')}, "
    f"{_slot('phase')}, {_slot('kind')}, {_slot('step')}, ?6, {_slot('entity_type')}, {_slot('approval_id')}, "
    f"{_slot('guard')}, {_slot('subject_host')}, {_slot('hash')}, "
    f"CAST(substr(?4, {_number(1)}, {_number(11)}) AS TEXT) FROM n"
)
_INSERT_ROWS = (
    "INSERT INTO records (run_id, seq, record_id, type, time, decision, phase, kind, step, mission_id, "
    "entity_type, approval_id, guard, subject_host, hash, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_MOVE_HEAD = "UPDATE runs SET chain_head = ?, record_count = ? WHERE run_id = ?"


def chunk_params(
    run_id: str, mission_id: str | None, records: Sequence[Record], lines: Sequence[bytes]
) -> tuple[Any, ...] | None:
    """``INSERT_CHUNK``'s parameters for these rows (one run, consecutive seqs, each record's line as
    UTF-8), or None when a row cannot travel in the fixed-width header (see the module docstring)."""
    heads: list[str] = []
    offset = 1
    first = records[0].seq if records else 0
    for n, (record, line) in enumerate(zip(records, lines, strict=True)):
        row = row_tuple(record, "", mission_id)
        rid, typ, tim, step, digest = row[2], row[3], row[4], row[8], row[14]
        if row[1] != first + n or row[0] != run_id:
            return None
        if type(rid) is not str or type(typ) is not str or type(tim) is not str or type(digest) is not str:
            return None
        # The token columns are ASCII letters, digits and ``_.:/-`` (entity_type: such tokens between
        # single spaces) by ``index_rows``' filter; these four are checked: not empty (NULLIF would
        # null it), no trailing space (rtrim would cut it); ASCII without NUL below, for the header.
        if not (rid and typ and tim and digest):
            return None
        if rid[-1] == " " or typ[-1] == " " or tim[-1] == " " or digest[-1] == " ":
            return None
        if step is not None and (type(step) is not int or not -_MAX_INT - 1 <= step <= _MAX_INT):
            return None  # a bool (bound as 1) or beyond SQLite's integers: left to ``executemany``
        # A token column is None or a non-empty token: ``or ""`` blanks exactly the Nones.
        head = _FORMAT % (offset, len(line), rid, typ, tim, row[5] or "", row[6] or "", row[7] or "",
                          "" if step is None else step, "", row[10] or "", row[11] or "", row[12] or "",
                          row[13] or "", digest)
        if len(head) != WIDTH:
            return None  # a column wider than its slot
        heads.append(head)
        offset += len(line)
    header = "".join(heads)
    body = b"".join(lines)
    if not header.isascii() or "\x00" in header or b"\x00" in body:
        return None  # a column's width would not be its length in bytes; a NUL may end a text
    return (run_id, first, header.encode("ascii"), body, len(records), mission_id)


class BulkInsert:
    """One group's rows in one transaction, inserted chunk by chunk in ``pool``'s (single) thread.

    ``add`` prepares a chunk in the caller's thread and queues its insert; ``commit`` queues the
    head move and the commit and waits for all of it (raising the first failure: then nothing of
    the group is committed); ``abort`` rolls back. ``lock`` is the connection's: held from the first
    chunk to the commit or rollback, by the worker thread."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.Lock, pool: ThreadPoolExecutor,
                 run_id: str, mission_id: str | None) -> None:
        self._conn, self._lock, self._pool = conn, lock, pool
        self._run_id, self._mission_id = run_id, mission_id
        self._begun = False
        self._error: BaseException | None = None
        self._done = False
        self._last: Future[None] | None = None

    def _submit(self, job: Callable[[], None]) -> Future[None]:
        self._last = self._pool.submit(job)
        return self._last

    def add(self, records: Sequence[Record], lines: Sequence[str]) -> None:
        if not records:
            return
        encoded = [line.encode("utf-8") for line in lines]
        params = chunk_params(self._run_id, self._mission_id, records, encoded)
        if params is None:
            # ``executemany`` here, once the chunks before it are in: in the worker it would wait for
            # the GIL after every row.
            rows = [row_tuple(record, line, self._mission_id) for record, line in zip(records, lines, strict=True)]
            if self._last is not None:
                self._last.result()
            self._run(lambda c: c.executemany(_INSERT_ROWS, rows))
        else:
            # Handed over, not just queued: wait (GIL released) until the worker holds the chunk and
            # is about to step it. Merely queued, the worker would wait a switch interval (5 ms) for
            # the GIL before it could start, behind this thread's Python work.
            started = threading.Event()

            def insert() -> None:
                started.set()
                self._run(lambda c: c.execute(INSERT_CHUNK, params))

            future = self._submit(insert)
            while not started.wait(0.05):
                if future.done():  # it never started (the pool is shut down): its error at commit
                    break

    def _run(self, step: Callable[[sqlite3.Connection], object]) -> None:
        if self._error is not None:
            return
        try:
            if not self._begun:
                self._lock.acquire()
                self._begun = True
                self._conn.execute("BEGIN IMMEDIATE")
            step(self._conn)
        except BaseException as e:
            self._error = e

    def commit(self, head: str, count: int) -> None:
        """Move the run's chain head to ``head`` / ``count`` and commit; raises what failed (rolled back)."""
        def finish() -> None:
            self._run(lambda c: _move_head(c, self._run_id, head, count))
            if self._error is None:
                try:
                    self._conn.execute("COMMIT")
                except BaseException as e:
                    self._error = e
            self._end()
        self._submit(finish).result()
        self._done = True
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        """Roll the group back (nothing of it is committed); a no-op after ``commit``."""
        if self._done:
            return
        self._done = True
        self._submit(self._end).result()

    def _end(self) -> None:
        if not self._begun:
            return
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        finally:
            self._begun = False
            self._lock.release()


def _move_head(conn: sqlite3.Connection, run_id: str, head: str, count: int) -> None:
    done = conn.execute(_MOVE_HEAD, (head, count, run_id))
    if done.rowcount != 1:
        raise LookupError(f"run {run_id!r} is not registered in the index (upsert_run first)")
