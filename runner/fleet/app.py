"""The Procrastinate app: one task, ``warden:run_mission``, and its retry rule.

Retries are Procrastinate's own (the job's ``attempts``, ``scheduled_at``), but only for
``BeforeFirstAction`` — a failure the evidence shows happened before anything acted (the browser did
not start, the site was unreachable) — at most the job's ``retries`` times (``warden submit
--retries``, default 2, at most 5), after ``RETRY_WAIT_S`` × 2^(attempt-1) seconds. Any other
failure, a worker lost mid-run, or a stop, is final: a mission job runs at most once for side effects.
"""

from __future__ import annotations

from typing import Any

from procrastinate import App, Blueprint, JobContext, PsycopgConnector, RetryDecision
from procrastinate.jobs import Job
from procrastinate.retry import BaseRetryStrategy

from runner.fleet.db import libpq_url

TASK = "run_mission"
NAMESPACE = "warden"
TASK_NAME = f"{NAMESPACE}:{TASK}"
DEFAULT_QUEUE = "missions"
RETRY_WAIT_S = 2.0


class BeforeFirstAction(Exception):
    """The attempt failed before anything acted: Procrastinate may run the job again."""


class JobFailed(Exception):
    """The attempt ran (or refused) and ended non-zero: final, never retried."""


class FirstActionRetry(BaseRetryStrategy):
    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if not isinstance(exception, BeforeFirstAction):
            return None
        payload = job.task_kwargs.get("payload")
        value = payload.get("retries", 0) if isinstance(payload, dict) else 0
        retries = value if isinstance(value, int) else 0
        if job.attempts >= retries:
            return None
        return RetryDecision(retry_in={"seconds": int(RETRY_WAIT_S * 2**job.attempts)})


bp = Blueprint()


@bp.task(name=TASK, pass_context=True, retry=FirstActionRetry())
async def run_mission_job(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    from runner.fleet.worker import Slots

    slots = context.additional_context["slots"]
    assert isinstance(slots, Slots)
    return await slots.run_job(context, payload)


def make_app(db_url: str) -> App:
    app = App(connector=PsycopgConnector(conninfo=libpq_url(db_url)))
    app.add_tasks_from(bp, namespace=NAMESPACE)
    return app
