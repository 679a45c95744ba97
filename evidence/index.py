"""The SQL index of every run (SPEC §5): queries across runs; rebuildable from the run folders.

Default is SQLite at ``DIR/warden.db`` in WAL mode with a busy timeout, so several concurrent runs
can each append records while ``warden evidence`` reads. Any SQLAlchemy URL works (PostgreSQL).
The run row's ``chain_head`` moves in the same transaction as the records indexed with it (the
writer indexes each append, or each group of ``append_many``, right after writing it), so a tail
cut from ``records.jsonl`` behind the index's back is visible to ``verify``.

Nothing sensitive in a column. ``records.body`` is the writer's line (every string already through
the run's redactor); the other record columns are copied from that redacted record and kept only
when they are identifier tokens (types, decisions, phases, kinds, entity types, approval ids:
``_token``), so free text never reaches an indexed column. ``runs`` holds Warden's own ids, hashes,
times, paths and counts, the mission id (a slug by schema) and the mission version, the one free
text of a run row: it goes through ``redactor`` when the index is given one (the run's redactor).

A SQLite index (the default) is written through the standard library (``evidence.index_sqlite``,
no SQLAlchemy on a run's way to its first action); reads, other databases and an index to upgrade
use SQLAlchemy, imported when first needed (models: ``evidence.index_models``, importable from here).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evidence.index_bulk import BulkInsert
from evidence.index_rows import _TOKEN, _record_row, insert_rows, row_tuple
from evidence.index_sqlite import PRAGMAS, RunFacts, SqliteIndexWriter, connect, sqlite_file, url_for
from evidence.records import Record
from evidence.redact import Redactor
from evidence.runfolder import RunInfo
from kernel.errors import UsageError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from evidence.index_models import Base, RecordRow, RunRow

__all__ = ["Base", "EvidenceIndex", "RecordRow", "RunFacts", "RunRow", "_record_row"]

_MODELS = frozenset({"Base", "RecordRow", "RunRow"})


def __getattr__(name: str) -> Any:
    """``Base``, ``RunRow`` and ``RecordRow``, from ``evidence.index_models`` (SQLAlchemy) when asked for."""
    if name in _MODELS:
        from evidence import index_models

        return getattr(index_models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    try:
        for pragma in PRAGMAS:
            cur.execute(pragma)
    finally:
        cur.close()


class EvidenceIndex:
    """Index over runs and records. Pass a SQLAlchemy URL, a ``.db`` file, or an evidence dir."""

    def __init__(
        self, url_or_path: str | Path, *, engine: Engine | None = None, redactor: Redactor | None = None
    ) -> None:
        self.url = url_for(url_or_path)
        self.redactor = redactor  # for the run row's free text (mission_version); records come redacted
        self._engine = engine
        self._fast: SqliteIndexWriter | None = None
        self._missions: dict[str, str] = {}  # run_id -> mission_id, for the records' denormalised column
        path = sqlite_file(self.url) if engine is None else None
        if path is not None:
            Path(path).parent.mkdir(mode=0o750, parents=True, exist_ok=True)
            self._fast = SqliteIndexWriter(connect(path))
            try:
                if self._fast.create_schema():
                    return
            except BaseException:
                self._fast.close()
                raise
        try:
            self._create_schema()
        except BaseException:
            self.close()
            raise

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (created, and SQLAlchemy imported, on first use)."""
        if self._engine is None:
            from sqlalchemy import create_engine, event

            engine = create_engine(self.url)
            if engine.dialect.name == "sqlite":
                event.listen(engine, "connect", _sqlite_pragmas)
            self._engine = engine
        return self._engine

    def _create_schema(self) -> None:
        from sqlalchemy.exc import OperationalError

        from evidence.index_models import Base

        # Two runs starting at once may race on CREATE TABLE; the loser just retries the check.
        for attempt in range(3):
            try:
                Base.metadata.create_all(self.engine)
                self._upgrade_schema()
                return
            except OperationalError:
                if attempt == 2:
                    raise

    def _upgrade_schema(self) -> None:
        from evidence.index_models import RecordRow
        from evidence.index_upgrade import upgrade_schema

        upgrade_schema(self.engine, RecordRow.__table__)  # type: ignore[arg-type]

    def close(self) -> None:
        if self._fast is not None:
            self._fast.close()
        if self._engine is not None:
            self._engine.dispose()

    # -- writes --------------------------------------------------------------------------------

    def upsert_run(
        self,
        *,
        run_id: str,
        mission_id: str,
        mission_version: str,
        mission_sha256: str,
        started_at: str,
        status: str,
        folder: Path | str,
        ended_at: str | None = None,
        exit_code: int | None = None,
        chain_head: str | None = None,
        record_count: int | None = None,
    ) -> None:
        """Insert or update a run row; ``chain_head``/``record_count`` only change when given."""
        values: dict[str, Any] = {
            "mission_id": mission_id,
            "mission_version": self._free_text(mission_version),
            "mission_sha256": mission_sha256,
            "started_at": started_at,
            "ended_at": ended_at,
            "status": status,
            "exit_code": exit_code,
            "folder": str(Path(folder).absolute()),
        }
        if chain_head is not None:
            values["chain_head"] = chain_head
        if record_count is not None:
            values["record_count"] = record_count
        self._missions[run_id] = mission_id
        if self._fast is not None:
            self._fast.upsert_run(run_id, values)
            return
        from sqlalchemy import update
        from sqlalchemy.orm import Session

        from evidence.index_models import RunRow

        with Session(self.engine) as s, s.begin():
            done = s.execute(update(RunRow).where(RunRow.run_id == run_id).values(**values))
            if getattr(done, "rowcount", 0) == 0:
                values.setdefault("chain_head", "0" * 64)
                values.setdefault("record_count", 0)
                s.add(RunRow(run_id=run_id, **values))

    def _free_text(self, text: str) -> str:
        return text if self.redactor is None or _TOKEN.fullmatch(text) else self.redactor.redact(text)

    def upsert_run_info(self, info: RunInfo, folder: Path | str) -> None:
        """``upsert_run`` from a ``RunInfo`` (run.json content)."""
        self.upsert_run(
            run_id=info.run_id, mission_id=info.mission_id, mission_version=info.mission_version,
            mission_sha256=info.mission_sha256, started_at=info.started_at, ended_at=info.ended_at,
            status=info.status, exit_code=info.exit_code, folder=folder,
            chain_head=info.chain_head, record_count=info.record_count,
        )

    def add_record(self, record: Record, body: str | None = None) -> None:
        """Index one record and move the run's chain head to it, in one transaction.

        ``body`` is the exact JSON line written to the folder (the writer passes it so the index
        holds the same bytes); without it the record is re-serialised.
        """
        self.add_records([(record, body)])

    def add_records(self, items: Iterable[tuple[Record, str | None]]) -> None:
        """Batch form of ``add_record`` (one commit); the head moves to the last record given."""
        pairs = list(items)
        if not pairs:
            return
        last = pairs[-1][0]
        if self._fast is not None:
            mission_id = self._mission_of(last.run_id)
            rows = [row_tuple(rec, body, mission_id if rec.run_id == last.run_id else self._mission_of(rec.run_id))
                    for rec, body in pairs]
            self._fast.add_records(last.run_id, last.hash, last.seq, rows)
            return
        from evidence.index_models import INSERT_RECORD, MOVE_HEAD

        dicts = [_record_row(rec, body) for rec, body in pairs]
        for row in dicts:
            row["mission_id"] = self._mission_of(row["run_id"])
        # Prebuilt Core statements on one connection: this runs once per record of every run
        # (the writer indexes each record as it is written), so no per-call statement building.
        with self.engine.begin() as conn:
            done = conn.execute(MOVE_HEAD, {"rid": last.run_id, "head": last.hash, "cnt": last.seq})
            if getattr(done, "rowcount", 0) != 1:
                raise LookupError(f"run {last.run_id!r} is not registered in the index (upsert_run first)")
            if not insert_rows(conn, dicts):
                conn.execute(INSERT_RECORD, dicts)

    def bulk(self, run_id: str) -> BulkInsert | None:
        """A large group's rows of ``run_id``, inserted beside the caller in one transaction that
        commits with the run's new head (``evidence.index_bulk``); None when this index has no such
        path (a database other than a plain SQLite file): then ``add_records``."""
        if self._fast is None:
            return None
        return self._fast.bulk(run_id, self._mission_of(run_id))

    def _mission_of(self, run_id: str) -> str | None:
        if run_id not in self._missions:
            if self._fast is not None:
                found = self._fast.mission_of(run_id)
            else:
                from sqlalchemy import select
                from sqlalchemy.orm import Session

                from evidence.index_models import RunRow

                with Session(self.engine) as s:
                    found = s.scalar(select(RunRow.mission_id).where(RunRow.run_id == run_id))
            if found is None:
                return None
            self._missions[run_id] = found
        return self._missions[run_id]

    def set_head(self, run_id: str, chain_head: str, record_count: int) -> None:
        if self._fast is not None:
            self._fast.set_head(run_id, chain_head, record_count)
            return
        from sqlalchemy import update
        from sqlalchemy.orm import Session

        from evidence.index_models import RunRow

        with Session(self.engine) as s, s.begin():
            s.execute(
                update(RunRow).where(RunRow.run_id == run_id).values(chain_head=chain_head, record_count=record_count)
            )

    # -- reads ---------------------------------------------------------------------------------

    def list_runs(self, limit: int | None = None) -> list[RunRow]:
        """Runs, newest first."""
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        from evidence.index_models import RunRow

        stmt = select(RunRow).order_by(RunRow.started_at.desc(), RunRow.run_id.desc())
        if limit is not None:
            stmt = stmt.limit(limit)
        with Session(self.engine, expire_on_commit=False) as s:
            return list(s.scalars(stmt))

    def get_run(self, run_id: str) -> RunRow | None:
        from sqlalchemy.orm import Session

        from evidence.index_models import RunRow

        with Session(self.engine, expire_on_commit=False) as s:
            return s.get(RunRow, run_id)

    def find_run(self, prefix: str) -> RunRow:
        """The run whose id is ``prefix`` or uniquely starts with it; ``UsageError`` otherwise."""
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        from evidence.index_models import RunRow

        if not prefix:
            raise UsageError("empty run id")
        exact = self.get_run(prefix)
        if exact is not None:
            return exact
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = select(RunRow).where(RunRow.run_id.like(escaped + "%", escape="\\")).order_by(RunRow.run_id).limit(6)
        with Session(self.engine, expire_on_commit=False) as s:
            found = list(s.scalars(stmt))
        if not found:
            raise UsageError(f"no run matches {prefix!r}")
        if len(found) > 1:
            names = ", ".join(r.run_id for r in found[:5]) + (", ..." if len(found) > 5 else "")
            raise UsageError(f"run id {prefix!r} is ambiguous: {names}")
        return found[0]

    def records(self, run_id: str) -> list[RecordRow]:
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        from evidence.index_models import RecordRow

        stmt = select(RecordRow).where(RecordRow.run_id == run_id).order_by(RecordRow.seq)
        with Session(self.engine, expire_on_commit=False) as s:
            return list(s.scalars(stmt))

    def head(self, run_id: str) -> str | None:
        """The chain head the index last saw for the run (None: run unknown)."""
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        from evidence.index_models import RunRow

        with Session(self.engine) as s:
            return s.scalar(select(RunRow.chain_head).where(RunRow.run_id == run_id))

    def query_records(
        self,
        *,
        types: Sequence[str] = (),
        run_id: str | None = None,
        since: str | None = None,
        until: str | None = None,
        where: dict[str, str] | None = None,
        limit: int | None = None,
    ) -> list[RecordRow]:
        """Records across runs filtered on indexed columns (``where`` keys: decision/phase/kind/step)."""
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        from evidence.index_models import FILTERABLE, RecordRow

        stmt = select(RecordRow)
        if types:
            stmt = stmt.where(RecordRow.type.in_(list(types)))
        if run_id is not None:
            stmt = stmt.where(RecordRow.run_id == run_id)
        if since is not None:
            stmt = stmt.where(RecordRow.time >= since)
        if until is not None:
            stmt = stmt.where(RecordRow.time < until)
        for key, value in (where or {}).items():
            if key not in FILTERABLE:
                raise UsageError(f"cannot filter on {key!r}: use one of {', '.join(sorted(FILTERABLE))}")
            col = FILTERABLE[key]
            stmt = stmt.where(col == (int(value) if key == "step" else value))
        stmt = stmt.order_by(RecordRow.time, RecordRow.run_id, RecordRow.seq)
        if limit is not None:
            stmt = stmt.limit(limit)
        with Session(self.engine, expire_on_commit=False) as s:
            return list(s.scalars(stmt))

    # -- integrity (evidence.versioning / evidence.recovery) ------------------------------------

    def last_run_of_mission(self, mission_id: str, exclude_run_id: str | None = None) -> RunFacts | None:
        """The most recently started run of ``mission_id`` (other than ``exclude_run_id``)."""
        if self._fast is not None:
            return self._fast.last_run_of_mission(mission_id, exclude_run_id)
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        from evidence.index_models import RunRow

        stmt = select(RunRow).where(RunRow.mission_id == mission_id)
        if exclude_run_id is not None:
            stmt = stmt.where(RunRow.run_id != exclude_run_id)
        stmt = stmt.order_by(RunRow.started_at.desc(), RunRow.run_id.desc()).limit(1)
        with Session(self.engine, expire_on_commit=False) as s:
            row = s.scalars(stmt).first()
        return None if row is None else RunFacts.of(row)

    def runs_with_status(self, status: str) -> list[RunFacts]:
        """Runs whose row says ``status`` (recovery looks for ``running`` rows of dead processes)."""
        if self._fast is not None:
            return self._fast.runs_with_status(status)
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        from evidence.index_models import RunRow

        stmt = select(RunRow).where(RunRow.status == status).order_by(RunRow.started_at)
        with Session(self.engine, expire_on_commit=False) as s:
            return [RunFacts.of(row) for row in s.scalars(stmt)]
