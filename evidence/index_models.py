"""The index's tables as SQLAlchemy models (``evidence.index`` re-exports them): ``runs`` and ``records``.

Kept apart from ``evidence.index`` so that a run, which writes its SQLite index through the standard
library (``evidence.index_sqlite``), never imports SQLAlchemy on its way to its first action; the
readers (query, verify, reindex, PostgreSQL) use these models as before.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, bindparam, insert, text, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["FILTERABLE", "INSERT_RECORD", "MOVE_HEAD", "Base", "RecordRow", "RunRow"]


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


MOVE_HEAD = (
    update(RunRow)
    .where(RunRow.run_id == bindparam("rid"))
    .values(chain_head=bindparam("head"), record_count=bindparam("cnt"))
)
INSERT_RECORD = insert(RecordRow)

FILTERABLE: dict[str, Any] = {
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
