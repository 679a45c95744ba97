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
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    bindparam,
    create_engine,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from evidence.index_rows import _TOKEN, _record_row, insert_rows
from evidence.index_upgrade import upgrade_schema
from evidence.records import Record
from evidence.redact import Redactor
from evidence.runfolder import RunInfo
from kernel.errors import UsageError

__all__ = ["Base", "EvidenceIndex", "RecordRow", "RunRow", "_record_row"]


class Base(DeclarativeBase):
    pass


class RunRow(Base):
    __tablename__ = "runs"

    run_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    mission_id: Mapped[str] = mapped_column(String(200), index=True)
    mission_version: Mapped[str] = mapped_column(String(100))
    mission_sha256: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[str] = mapped_column(String(32), index=True)
    ended_at: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    exit_code: Mapped[int | None] = mapped_column(Integer)
    folder: Mapped[str] = mapped_column(Text)  # absolute path of the run folder
    chain_head: Mapped[str] = mapped_column(String(64))
    record_count: Mapped[int] = mapped_column(Integer, default=0)


def _partial(column: str) -> dict[str, Any]:
    """An index over the rows where ``column`` is set (SQLite and PostgreSQL alike)."""
    where = text(f"{column} IS NOT NULL")
    return {"sqlite_where": where, "postgresql_where": where}


class RecordRow(Base):
    __tablename__ = "records"
    # Indexes for the common audit filters (evidence/query.py): every query is ordered by time, so
    # each filter column leads an index that continues with the sort key ``time, run_id, seq``: a filtered,
    # limited query is an index range scan that stops at the limit, with no sort.
    # A column most records leave NULL (decision: not on actions; entity_type, approval_id, guard,
    # subject_host: a few types) has a partial index: a record without it costs no insert there, and
    # ``col = value`` implies ``col IS NOT NULL``, so SQLite and PostgreSQL still use it.
    __table_args__ = (
        Index("ix_records_time", "time", "run_id", "seq"),
        Index("ix_records_type_time", "type", "time", "run_id", "seq"),
        Index("ix_records_type_decision_time", "type", "decision", "time", "run_id", "seq", **_partial("decision")),
        Index("ix_records_mission_time", "mission_id", "time", "run_id", "seq"),
        Index("ix_records_kind_time", "kind", "time", "run_id", "seq", **_partial("kind")),
        Index("ix_records_entity_type", "entity_type", **_partial("entity_type")),
        Index("ix_records_approval_id", "approval_id", **_partial("approval_id")),
        Index("ix_records_guard_time", "type", "guard", "time", "run_id", "seq", **_partial("guard")),
        Index("ix_records_subject_host_time", "type", "subject_host", "time", "run_id", "seq",
              **_partial("subject_host")),
    )

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[str] = mapped_column(String(64), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    time: Mapped[str] = mapped_column(String(32))
    decision: Mapped[str | None] = mapped_column(String(32))
    phase: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str | None] = mapped_column(String(64))
    step: Mapped[int | None] = mapped_column(Integer)
    mission_id: Mapped[str | None] = mapped_column(String(200))  # the run's, denormalised for --mission
    entity_type: Mapped[str | None] = mapped_column(Text)  # pii_finding: its entity types, space-separated
    approval_id: Mapped[str | None] = mapped_column(String(100))  # approval_request / approval_record
    guard: Mapped[str | None] = mapped_column(String(100))  # decision_record
    subject_host: Mapped[str | None] = mapped_column(String(255))  # decision_record: subject.host
    hash: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)  # the record's JSON, exactly as in records.jsonl

    def data(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.body)
        return loaded


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    try:
        cur.execute("PRAGMA busy_timeout = 15000")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable enough; the folder is the truth
        cur.execute("PRAGMA foreign_keys = ON")
        # Overwrite freed content with zeros: a row rewritten redacted (the approvals queue's
        # scrub) must not leave its earlier bytes in the file's free space.
        cur.execute("PRAGMA secure_delete = ON")
    finally:
        cur.close()


def _url_for(url_or_path: str | Path) -> str:
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


class EvidenceIndex:
    """Index over runs and records. Pass a SQLAlchemy URL, a ``.db`` file, or an evidence dir."""

    def __init__(
        self, url_or_path: str | Path, *, engine: Engine | None = None, redactor: Redactor | None = None
    ) -> None:
        self.url = _url_for(url_or_path)
        self.redactor = redactor  # for the run row's free text (mission_version); records come redacted
        if engine is None:
            if self.url.startswith("sqlite:///"):
                Path(self.url.removeprefix("sqlite:///")).parent.mkdir(mode=0o750, parents=True, exist_ok=True)
            engine = create_engine(self.url)
            if engine.dialect.name == "sqlite":
                event.listen(engine, "connect", _sqlite_pragmas)
        self.engine = engine
        self._missions: dict[str, str] = {}  # run_id -> mission_id, for the records' denormalised column
        self._create_schema()

    def _create_schema(self) -> None:
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
        upgrade_schema(self.engine, RecordRow.__table__)  # type: ignore[arg-type]

    def close(self) -> None:
        self.engine.dispose()

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
        rows = [_record_row(rec, body) for rec, body in items]
        if not rows:
            return
        last = rows[-1]
        mission_id = self._mission_of(str(last["run_id"]))
        for row in rows:
            row["mission_id"] = mission_id if row["run_id"] == last["run_id"] else self._mission_of(row["run_id"])
        # Prebuilt Core statements on one connection: this runs once per record of every run
        # (the writer indexes each record as it is written), so no per-call statement building.
        with self.engine.begin() as conn:
            done = conn.execute(_MOVE_HEAD, {"rid": last["run_id"], "head": last["hash"], "cnt": last["seq"]})
            if getattr(done, "rowcount", 0) != 1:
                raise LookupError(f"run {last['run_id']!r} is not registered in the index (upsert_run first)")
            if not insert_rows(conn, rows):
                conn.execute(_INSERT_RECORD, rows)

    def _mission_of(self, run_id: str) -> str | None:
        if run_id not in self._missions:
            with Session(self.engine) as s:
                found = s.scalar(select(RunRow.mission_id).where(RunRow.run_id == run_id))
            if found is None:
                return None
            self._missions[run_id] = found
        return self._missions[run_id]

    def set_head(self, run_id: str, chain_head: str, record_count: int) -> None:
        with Session(self.engine) as s, s.begin():
            s.execute(
                update(RunRow).where(RunRow.run_id == run_id).values(chain_head=chain_head, record_count=record_count)
            )

    # -- reads ---------------------------------------------------------------------------------

    def list_runs(self, limit: int | None = None) -> list[RunRow]:
        """Runs, newest first."""
        stmt = select(RunRow).order_by(RunRow.started_at.desc(), RunRow.run_id.desc())
        if limit is not None:
            stmt = stmt.limit(limit)
        with Session(self.engine, expire_on_commit=False) as s:
            return list(s.scalars(stmt))

    def get_run(self, run_id: str) -> RunRow | None:
        with Session(self.engine, expire_on_commit=False) as s:
            return s.get(RunRow, run_id)

    def find_run(self, prefix: str) -> RunRow:
        """The run whose id is ``prefix`` or uniquely starts with it; ``UsageError`` otherwise."""
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
        stmt = select(RecordRow).where(RecordRow.run_id == run_id).order_by(RecordRow.seq)
        with Session(self.engine, expire_on_commit=False) as s:
            return list(s.scalars(stmt))

    def head(self, run_id: str) -> str | None:
        """The chain head the index last saw for the run (None: run unknown)."""
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
            if key not in _FILTERABLE:
                raise UsageError(f"cannot filter on {key!r}: use one of {', '.join(sorted(_FILTERABLE))}")
            col = _FILTERABLE[key]
            stmt = stmt.where(col == (int(value) if key == "step" else value))
        stmt = stmt.order_by(RecordRow.time, RecordRow.run_id, RecordRow.seq)
        if limit is not None:
            stmt = stmt.limit(limit)
        with Session(self.engine, expire_on_commit=False) as s:
            return list(s.scalars(stmt))

    # -- integrity (evidence.versioning / evidence.recovery) ------------------------------------

    def last_run_of_mission(self, mission_id: str, exclude_run_id: str | None = None) -> RunRow | None:
        """The most recently started run of ``mission_id`` (other than ``exclude_run_id``)."""
        stmt = select(RunRow).where(RunRow.mission_id == mission_id)
        if exclude_run_id is not None:
            stmt = stmt.where(RunRow.run_id != exclude_run_id)
        stmt = stmt.order_by(RunRow.started_at.desc(), RunRow.run_id.desc()).limit(1)
        with Session(self.engine, expire_on_commit=False) as s:
            return s.scalars(stmt).first()

    def runs_with_status(self, status: str) -> list[RunRow]:
        """Runs whose row says ``status`` (recovery looks for ``running`` rows of dead processes)."""
        stmt = select(RunRow).where(RunRow.status == status).order_by(RunRow.started_at)
        with Session(self.engine, expire_on_commit=False) as s:
            return list(s.scalars(stmt))


_MOVE_HEAD = (
    update(RunRow)
    .where(RunRow.run_id == bindparam("rid"))
    .values(chain_head=bindparam("head"), record_count=bindparam("cnt"))
)
_INSERT_RECORD = insert(RecordRow)

_FILTERABLE: dict[str, Any] = {
    "decision": RecordRow.decision,
    "phase": RecordRow.phase,
    "kind": RecordRow.kind,
    "step": RecordRow.step,
    "type": RecordRow.type,
    "mission_id": RecordRow.mission_id,
    "entity_type": RecordRow.entity_type,
    "approval_id": RecordRow.approval_id,
    "guard": RecordRow.guard,
}


