"""``warden jobs list | show | cancel``: Procrastinate's job rows joined with the fleet's attempts.

The state shown is the truth from the database, never a guess: ``queued`` (todo; after a retry it
says so), ``running`` (doing, its worker heartbeating), ``lost`` (doing, but its worker stopped
heartbeating: a sweeping worker will mark it failed, never re-run), ``done`` (exit 0), ``failed``,
``cancelled`` (before it started) and ``stopped`` (cancelled while running: the run stopped after
its current step). Read-only except ``cancel``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, text

from kernel.errors import UsageError
from runner.fleet.app import TASK_NAME, make_app
from runner.fleet.attempts import AttemptRow, Attempts
from runner.fleet.db import has_schema

STATES = {"todo": "queued", "doing": "running", "succeeded": "done", "failed": "failed",
          "cancelled": "cancelled", "aborting": "running", "aborted": "stopped"}

_SELECT = """
SELECT j.id, j.status::text AS status, j.queue_name, j.priority, j.attempts, j.abort_requested,
       j.args->'payload'->>'mission_id' AS mission_id, j.args->'payload'->>'run_id' AS run_id,
       j.args->'payload'->>'submitted_by' AS submitted_by, j.args->'payload'->>'submitted_host' AS submitted_host,
       j.args->'payload'->>'submitted_at' AS submitted_at, j.args->'payload'->>'mission_sha256' AS mission_sha256,
       j.args->'payload'->'var_names' AS var_names, j.args->'payload'->>'retries' AS retries,
       j.scheduled_at, (w.id IS NULL OR w.last_heartbeat < now() - make_interval(secs => :stalled)) AS worker_gone
  FROM procrastinate_jobs j LEFT JOIN procrastinate_workers w ON w.id = j.worker_id
 WHERE j.task_name = :task
"""


@dataclass(frozen=True)
class JobView:
    job_id: int
    state: str
    queue: str
    priority: int
    mission_id: str
    first_run_id: str
    submitted_by: str
    submitted_at: str
    mission_sha256: str
    var_names: tuple[str, ...]
    retries: int
    attempts: tuple[AttemptRow, ...] = field(default_factory=tuple)

    @property
    def last(self) -> AttemptRow | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def run_id(self) -> str:
        last = self.last
        return last.run_id if last is not None and last.run_id else self.first_run_id

    def as_dict(self) -> dict[str, Any]:
        last = self.last
        return {
            "job_id": self.job_id, "state": self.state, "queue": self.queue, "priority": self.priority,
            "mission": self.mission_id, "run_id": self.run_id, "submitted_by": self.submitted_by,
            "submitted_at": self.submitted_at, "exit_code": None if last is None else last.exit_code,
            "host": None if last is None else last.host,
            "attempts": [{"attempt": a.attempt, "run_id": a.run_id, "status": a.status, "host": a.host,
                          "worker": a.worker, "exit_code": a.exit_code, "outcome": a.outcome,
                          "started_at": a.started_at, "ended_at": a.ended_at, "message": a.message}
                         for a in self.attempts],
        }


def _state(row: Any) -> str:
    state = STATES.get(str(row.status), str(row.status))
    if row.status == "doing" and row.worker_gone:
        return "lost"
    if row.status == "doing" and row.abort_requested:
        return "stopping"
    if row.status == "todo" and row.attempts:
        return f"queued (retry {row.attempts})"
    return state


def list_jobs(engine: Engine, *, job_id: int | None = None, state: str | None = None, limit: int = 50,
              stalled_after_s: float = 30.0) -> list[JobView]:
    if not has_schema(engine):
        return []
    sql = _SELECT + (" AND j.id = :id" if job_id is not None else "") + " ORDER BY j.id DESC LIMIT :limit"
    params: dict[str, Any] = {"task": TASK_NAME, "stalled": stalled_after_s, "limit": limit}
    if job_id is not None:
        params["id"] = job_id
    with engine.connect() as conn:
        rows = list(conn.execute(text(sql), params))
    attempts = Attempts(engine).for_jobs(int(r.id) for r in rows)
    views = [JobView(
        job_id=int(r.id), state=_state(r), queue=str(r.queue_name), priority=int(r.priority),
        mission_id=str(r.mission_id or ""), first_run_id=str(r.run_id or ""), submitted_by=
        f"{r.submitted_by}@{r.submitted_host}", submitted_at=str(r.submitted_at or ""),
        mission_sha256=str(r.mission_sha256 or ""),
        var_names=tuple(r.var_names if isinstance(r.var_names, list) else json.loads(r.var_names or "[]")),
        retries=int(r.retries or 0), attempts=tuple(attempts.get(int(r.id), [])),
    ) for r in rows]
    if state is not None:
        views = [v for v in views if v.state.split(" ")[0] == state]
    return views


def show_job(engine: Engine, job_id: int) -> JobView:
    found = list_jobs(engine, job_id=job_id, limit=1)
    if not found:
        raise UsageError(f"no mission job {job_id}")
    return found[0]


def cancel_job(db_url: str, engine: Engine, job_id: int) -> tuple[bool, str]:
    """Queued: cancelled, never runs. Running: its run stops after the current step. (done?, what happened)"""
    before = show_job(engine, job_id)
    app = make_app(db_url)
    with app.open():
        ok = app.job_manager.cancel_job_by_id(job_id, abort=True)
    if not ok:
        return False, f"job {job_id} is {before.state}: nothing to cancel"
    if before.state.startswith("queued"):
        return True, f"job {job_id} cancelled: it will not run"
    return True, f"job {job_id}: stop requested; its run {before.run_id} stops after the current step"
