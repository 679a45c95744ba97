"""``warden submit``, ``warden worker``, ``warden jobs list|show|cancel`` (SPEC §3, docs/fleet.md).

Thin like ``runner/cli.py``: parse, call, print. Procrastinate is imported only when a command runs.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from kernel.errors import UsageError
from runner.approvals.sanitize import sanitize
from runner.cli_options import evidence_dir_option

out = Console(highlight=False, markup=False, emoji=False, width=None if sys.stdout.isatty() else 240)
err = Console(stderr=True, highlight=False, markup=False, emoji=False)

_db = click.option("--db", "db_url", required=True, envvar="WARDEN_DB",
                   help="PostgreSQL URL shared by the fleet: queue, approvals and index (env WARDEN_DB).")


def _vars(pairs: tuple[str, ...]) -> dict[str, str]:
    from runner.cli import _parse_vars

    return _parse_vars(pairs)


@click.command()
@click.argument("mission", type=click.Path(path_type=Path))
@click.option("--var", "variables", multiple=True, metavar="KEY=VALUE",
              help="Set ${vars.KEY} (sealed with WARDEN_FLEET_KEY in the queue).")
@_db
@click.option("--queue", default=None, help="Queue name (default: missions).")
@click.option("--priority", type=int, default=0, show_default=True, help="Higher runs first.")
@click.option("--retries", type=click.IntRange(0, 5), default=2, show_default=True,
              help="Automatic retries, only for failures before the first action.")
@click.option("--json", "as_json", is_flag=True, help="Print {job_id, run_id, queue} as JSON.")
def submit(mission: Path, variables: tuple[str, ...], db_url: str, queue: str | None, priority: int,
           retries: int, as_json: bool) -> None:
    """Validate MISSION.yaml as `warden run` would, then queue it; print the job id and its run id."""
    from runner.fleet.db import reachable
    from runner.fleet.submit import submit as do_submit

    with reachable(db_url):
        done = do_submit(mission, _vars(variables), db_url=db_url, environ=os.environ, queue=queue,
                         priority=priority, retries=retries)
    if as_json:
        click.echo(json.dumps({"job_id": done.job_id, "run_id": done.run_id, "queue": done.queue}))
    else:
        out.print(f"job {done.job_id} queued on {done.queue}: run {done.run_id}")


@click.command()
@_db
@evidence_dir_option  # closes the runs a killed worker left here before taking new jobs
@click.option("--concurrency", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Job slots: each runs one mission in its own process.")
@click.option("--queue", "queues", multiple=True, help="Queue to take jobs from (repeatable; default: all).")
@click.option("--heartbeat", type=click.FloatRange(0.2, 600), default=10.0, show_default=True,
              help="Seconds between heartbeats.")
@click.option("--stalled-after", type=click.FloatRange(1, 3600), default=30.0, show_default=True,
              help="A worker silent this long is dead: its running jobs are marked lost (never re-run).")
@click.option("--secret-env", "secret_env", multiple=True, metavar="NAME",
              help="An environment variable missions may read as a secret (repeatable; default: none).")
def worker(db_url: str, evidence_dir: Path, concurrency: int, queues: tuple[str, ...], heartbeat: float,
           stalled_after: float, secret_env: tuple[str, ...]) -> None:
    """Run queued missions, each a guarded run with its evidence under --evidence-dir, indexed in --db."""
    import asyncio

    from runner.fleet.db import sqlalchemy_url
    from runner.fleet.worker import WorkerConfig, serve

    if stalled_after <= heartbeat * 2:
        raise UsageError("--stalled-after must be more than twice --heartbeat")
    evidence_dir.mkdir(parents=True, exist_ok=True)
    cfg = WorkerConfig(db_url=sqlalchemy_url(db_url), evidence_dir=evidence_dir.absolute(),
                       concurrency=concurrency, queues=queues or None, heartbeat_s=heartbeat,
                       stalled_after_s=stalled_after, secret_env=tuple(secret_env))
    from runner.fleet.db import reachable

    with reachable(db_url):
        code = asyncio.run(serve(cfg))
    sys.exit(code)


@click.group()
def jobs() -> None:
    """Mission jobs in the fleet's queue: queued, running, done, failed, with run ids and hosts."""


def _engine(db_url: str):  # type: ignore[no-untyped-def]
    from runner.fleet.db import engine_for

    return engine_for(db_url)


@jobs.command("list")
@_db
@click.option("--state", default=None,
              type=click.Choice(["queued", "running", "lost", "stopping", "done", "failed", "cancelled", "stopped"]))
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per job.")
def jobs_list(db_url: str, state: str | None, limit: int, as_json: bool) -> None:
    """Newest first: state, mission, run id, attempts, exit code, worker host."""
    from runner.fleet.db import reachable
    from runner.fleet.jobs import list_jobs

    with reachable(db_url):
        views = list_jobs(_engine(db_url), state=state, limit=limit)
    if as_json:
        for v in views:
            click.echo(json.dumps(v.as_dict()))
        return
    if not views:
        out.print("no mission jobs")
        return
    table = Table(show_edge=False, box=None, pad_edge=False)
    for col in ("job", "state", "mission", "run", "tries", "exit", "host", "submitted"):
        table.add_column(col)
    for v in views:
        last = v.last
        table.add_row(str(v.job_id), v.state, sanitize(v.mission_id, 40), v.run_id, str(len(v.attempts)),
                      "" if last is None or last.exit_code is None else str(last.exit_code),
                      "" if last is None else sanitize(last.host, 40), v.submitted_at)
    out.print(table)


@jobs.command("show")
@click.argument("job_id", type=int)
@_db
@click.option("--json", "as_json", is_flag=True)
def jobs_show(job_id: int, db_url: str, as_json: bool) -> None:
    """One job and every attempt: run id, worker, exit code, outcome, why it was retried or lost."""
    from runner.fleet.db import reachable
    from runner.fleet.jobs import show_job

    with reachable(db_url):
        v = show_job(_engine(db_url), job_id)
    if as_json:
        click.echo(json.dumps(v.as_dict()))
        return
    out.print(f"job {v.job_id}: {v.state} (queue {v.queue}, priority {v.priority})")
    out.print(f"mission {sanitize(v.mission_id, 80)} sha256 {v.mission_sha256}; vars: {', '.join(v.var_names) or '-'}")
    out.print(f"submitted by {sanitize(v.submitted_by, 80)} at {v.submitted_at}; first run id {v.first_run_id}; "
              f"retries before the first action: up to {v.retries}")
    for a in v.attempts:
        code = "" if a.exit_code is None else f" exit {a.exit_code}"
        out.print(f"  attempt {a.attempt}: {a.status}{code} {a.outcome or ''} — run {a.run_id} on {a.worker} "
                  f"({a.started_at} → {a.ended_at or '…'})")
        if a.message:
            out.print(f"    {sanitize(a.message, 500)}")


@jobs.command("cancel")
@click.argument("job_id", type=int)
@_db
def jobs_cancel(job_id: int, db_url: str) -> None:
    """Queued: never runs. Running: its run stops after the current step. Exit 1 if already finished."""
    from runner.fleet.db import reachable
    from runner.fleet.jobs import cancel_job

    with reachable(db_url):
        ok, message = cancel_job(db_url, _engine(db_url), job_id)
    (out if ok else err).print(message)
    sys.exit(0 if ok else 1)
