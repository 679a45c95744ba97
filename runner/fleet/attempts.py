"""``fleet_attempts``: one row per attempt of a mission job — which run, which worker host, how it ended.

Procrastinate's ``procrastinate_jobs`` says where a job is in the queue; this table says what each
attempt did (the run id, the exit code, the outcome, why it was retried or lost), so ``warden jobs``
can show the truth from any machine. Messages are the run's redacted ones, capped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, Integer, String, Text, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from evidence.runfolder import utc_timestamp

MESSAGE_CAP = 500


class FleetBase(DeclarativeBase):
    pass


class AttemptRow(FleetBase):
    __tablename__ = "fleet_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(Integer, index=True)
    attempt: Mapped[int] = mapped_column(Integer)  # 1 for the first run of the job
    run_id: Mapped[str | None] = mapped_column(String(200))
    worker: Mapped[str] = mapped_column(String(300))  # host:pid of the `warden worker`
    host: Mapped[str] = mapped_column(String(255))
    child_pid: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # running | done | failed | retried | stopped | lost
    started_at: Mapped[str] = mapped_column(String(32))
    ended_at: Mapped[str | None] = mapped_column(String(32))
    exit_code: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str | None] = mapped_column(String(32))  # the run's outcome (completed, stopped, ...)
    message: Mapped[str | None] = mapped_column(Text)


@dataclass(frozen=True)
class Attempts:
    engine: Engine

    def start(self, job_id: int, attempt: int, run_id: str, worker: str, host: str) -> int:
        row = AttemptRow(job_id=job_id, attempt=attempt, run_id=run_id, worker=worker, host=host,
                         status="running", started_at=utc_timestamp())
        with Session(self.engine, expire_on_commit=False) as s, s.begin():
            s.add(row)
        return row.id

    def set_pid(self, attempt_id: int, pid: int) -> None:
        with Session(self.engine) as s, s.begin():
            s.execute(update(AttemptRow).where(AttemptRow.id == attempt_id).values(child_pid=pid))

    def finish(self, attempt_id: int, status: str, *, exit_code: int | None, outcome: str | None,
               message: str, run_id: str | None = None) -> None:
        values: dict[str, object] = {"status": status, "ended_at": utc_timestamp(), "exit_code": exit_code,
                                     "outcome": outcome, "message": message[:MESSAGE_CAP]}
        if run_id is not None:
            values["run_id"] = run_id
        with Session(self.engine) as s, s.begin():
            s.execute(update(AttemptRow).where(AttemptRow.id == attempt_id, AttemptRow.status == "running")
                      .values(**values))

    def mark_lost(self, job_id: int, why: str) -> int:
        """Attempts of ``job_id`` still ``running`` whose worker is gone: ``lost`` (never re-run)."""
        with Session(self.engine) as s, s.begin():
            done = s.execute(update(AttemptRow)
                             .where(AttemptRow.job_id == job_id, AttemptRow.status == "running")
                             .values(status="lost", ended_at=utc_timestamp(), message=why[:MESSAGE_CAP]))
            return int(getattr(done, "rowcount", 0))

    def for_jobs(self, job_ids: Iterable[int]) -> dict[int, list[AttemptRow]]:
        ids = list(job_ids)
        out: dict[int, list[AttemptRow]] = {i: [] for i in ids}
        if not ids:
            return out
        stmt = select(AttemptRow).where(AttemptRow.job_id.in_(ids)).order_by(AttemptRow.job_id, AttemptRow.id)
        with Session(self.engine, expire_on_commit=False) as s:
            for row in s.scalars(stmt):
                out[row.job_id].append(row)
        return out
