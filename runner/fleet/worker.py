"""``warden worker``: a Procrastinate worker whose job slots each run one mission in a child process.

Concurrency N is N slots of Procrastinate's asyncio worker; each slot awaits its own child process
(``runner/fleet/child.py``), so a run waiting for an approval holds its slot only. The worker:

- records each attempt in ``fleet_attempts`` (run id, host, exit code, outcome);
- on SIGTERM or SIGINT fetches no new job and tells each running child to stop after its current
  step (a second signal interrupts them at once), then exits 130 once every run has closed;
- sweeps for jobs whose worker stopped heartbeating (killed, cut off): they are marked failed and
  their attempt ``lost`` — never re-run, since they may have acted — and a lost run whose folder
  is in this worker's evidence dir is closed as ``interrupted`` at once (``warden evidence recover``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from procrastinate import App, JobContext
from procrastinate.app import WorkerOptions
from procrastinate.jobs import Status
from procrastinate.worker import Worker
from pydantic import ValidationError

from evidence.runfolder import new_run_id
from runner.fleet.app import RETRY_WAIT_S, TASK_NAME, BeforeFirstAction, JobFailed, make_app
from runner.fleet.attempts import Attempts
from runner.fleet.child import PARENT_ENV, ChildResult, ChildSpec
from runner.fleet.db import engine_for, ensure_schema
from runner.fleet.payload import JobPayload

LOST = "lost: its worker stopped heartbeating mid-run (killed or cut off); not re-run (at most once for side effects)"


def log(message: str) -> None:
    stamp = time.strftime("%H:%M:%S", time.gmtime())
    print(f"{stamp} warden worker: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class WorkerConfig:
    db_url: str
    evidence_dir: Path
    concurrency: int = 1
    queues: tuple[str, ...] | None = None
    heartbeat_s: float = 10.0
    stalled_after_s: float = 30.0
    secret_env: tuple[str, ...] = ()
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")


class _Quiet(logging.Filter):
    """A job's outcome is said by this worker's own line (``log``): Procrastinate's would repeat the job's
    arguments (the mission's text) and a traceback for a mission that merely failed."""

    def filter(self, record: logging.LogRecord) -> bool:
        if str(getattr(record, "action", "")).startswith("job_"):
            return False
        if record.exc_info and isinstance(record.exc_info[1], BeforeFirstAction | JobFailed):
            record.exc_info = None
            record.exc_text = None
        return True


class Slots:
    """The worker's side of every job: start the child, wait, record the attempt, decide retry or not."""

    def __init__(self, cfg: WorkerConfig, attempts: Attempts) -> None:
        self.cfg = cfg
        self.attempts = attempts
        self.host = socket.gethostname()
        self.children: set[asyncio.subprocess.Process] = set()
        self.signals = 0
        self.procrastinate: Worker | None = None

    def worker_id(self) -> int | None:
        return None if self.procrastinate is None else self.procrastinate.worker_id

    def signal_children(self, sig: int) -> None:
        for proc in list(self.children):
            with suppress(ProcessLookupError):
                proc.send_signal(sig)

    async def run_job(self, context: JobContext, raw: dict[str, Any]) -> dict[str, Any]:
        job_id = int(context.job.id or 0)
        try:
            payload = JobPayload.model_validate(raw)
        except ValidationError as exc:  # not a job `warden submit` wrote: never run
            log(f"job {job_id}: refused, not a valid mission job ({exc.error_count()} problem(s))")
            raise JobFailed("not a valid mission job") from None
        attempt = context.job.attempts + 1
        run_id = payload.run_id if attempt == 1 else new_run_id(payload.mission_id)
        aid = await asyncio.to_thread(self.attempts.start, job_id, attempt, run_id, self.cfg.name, self.host)
        spec = ChildSpec(payload=payload, job_id=job_id, attempt=attempt, run_id=run_id,
                         evidence_dir=str(self.cfg.evidence_dir), db_url=self.cfg.db_url, worker=self.cfg.name,
                         secret_env=self.cfg.secret_env)
        results = self.cfg.evidence_dir / ".fleet" / "results"
        results.mkdir(parents=True, exist_ok=True)
        result_path = results / f"job-{job_id}-{attempt}.json"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "runner.fleet.child", str(result_path), stdin=asyncio.subprocess.PIPE,
            start_new_session=True, env={**os.environ, PARENT_ENV: str(os.getpid())},
        )
        self.children.add(proc)
        log(f"job {job_id} attempt {attempt}: run {run_id} (pid {proc.pid})")
        try:
            await asyncio.to_thread(self.attempts.set_pid, aid, proc.pid)
            assert proc.stdin is not None
            proc.stdin.write(spec.model_dump_json().encode())
            await proc.stdin.drain()
            proc.stdin.close()
            if self.signals:
                proc.send_signal(signal.SIGTERM)
            try:
                rc = await proc.wait()
            except asyncio.CancelledError:  # `warden jobs cancel` of a running job: stop after the step
                with suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                log(f"job {job_id}: cancel requested; run {run_id} stops after its current step")
                rc = await proc.wait()
                result = _read(result_path, rc)
                await asyncio.to_thread(self.attempts.finish, aid, "stopped", exit_code=result.exit_code,
                                        outcome=result.outcome, message="cancelled: " + result.message)
                log(f"job {job_id}: cancelled while running; run {run_id} {result.outcome}")
                raise
        finally:
            self.children.discard(proc)
        result = _read(result_path, rc)
        with suppress(OSError):
            result_path.unlink()
        status = {0: "done", 130: "stopped"}.get(result.exit_code, "failed")
        if result.retry_why is not None and attempt <= payload.retries:
            status = "retried"
        await asyncio.to_thread(self.attempts.finish, aid, status, exit_code=result.exit_code,
                                outcome=result.outcome, message=result.message, run_id=result.run_id or run_id)
        log(f"job {job_id} attempt {attempt}: {status}, exit {result.exit_code} ({result.outcome})")
        if status == "done":
            return {"run_id": result.run_id, "exit_code": 0, "outcome": result.outcome}
        if status == "retried":
            wait = int(RETRY_WAIT_S * 2 ** (attempt - 1))
            raise BeforeFirstAction(f"{result.retry_why}; retry {attempt} of {payload.retries} in {wait} s")
        raise JobFailed(f"exit {result.exit_code} ({result.outcome}): {result.message}")

    async def sweep(self, app: App) -> None:
        """Jobs of dead workers: failed, attempt lost, never re-run."""
        while True:
            await asyncio.sleep(max(0.5, self.cfg.stalled_after_s / 3))
            try:
                stalled = await app.job_manager.get_stalled_jobs(
                    seconds_since_heartbeat=self.cfg.stalled_after_s, task_name=TASK_NAME)
                mine = self.worker_id()
                for job in stalled:
                    if job.worker_id is None or job.worker_id != mine:  # never our own running jobs
                        await self._lost(app, job.id or 0)
            except Exception as exc:  # the sweep is best effort: the next one tries again
                log(f"sweep failed: {type(exc).__name__}")

    async def keepalive(self, app: App) -> None:
        """Heartbeat on while a stopping worker waits for its runs: Procrastinate stops its own heartbeat
        at shutdown, and a silent worker's running jobs would be taken for lost by the others."""
        while True:
            await asyncio.sleep(self.cfg.heartbeat_s)
            wid = self.worker_id()
            if wid is not None and self.signals:
                with suppress(Exception):
                    await app.job_manager.update_heartbeat(wid)

    async def _lost(self, app: App, job_id: int) -> None:
        await asyncio.to_thread(self.attempts.mark_lost, job_id, LOST)
        await app.job_manager.finish_job_by_id_async(job_id=job_id, status=Status.FAILED, delete_job=False)
        log(f"job {job_id}: {LOST}")
        await asyncio.to_thread(self._recover_local, job_id)

    def _recover_local(self, job_id: int) -> None:
        """A lost run whose folder is in our evidence dir (same machine or shared volume): close it now."""
        from evidence.recovery import recover_evidence_dir

        rows = self.attempts.for_jobs([job_id]).get(job_id, [])
        ids = {r.run_id for r in rows if r.status == "lost" and r.run_id
               and (self.cfg.evidence_dir / "runs" / r.run_id).is_dir()}
        if ids:
            with suppress(Exception):
                recover_evidence_dir(self.cfg.evidence_dir, self.cfg.db_url, signer=None, run_ids=ids)


def _read(path: Path, rc: int) -> ChildResult:
    try:
        return ChildResult.model_validate_json(path.read_text())
    except (OSError, ValueError):
        how = f"signal {-rc}" if rc < 0 else f"exit {rc}"
        return ChildResult(exit_code=rc if rc > 0 else 1, outcome="crashed",
                           message=f"the run's process ended ({how}) before reporting its result")


async def serve(cfg: WorkerConfig) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("procrastinate").addFilter(_Quiet())
    for handler in logging.getLogger().handlers:
        handler.addFilter(_Quiet())
    engine = engine_for(cfg.db_url)
    await asyncio.to_thread(ensure_schema, engine)
    app = make_app(cfg.db_url)
    slots = Slots(cfg, Attempts(engine))
    async with app.open_async():
        options: WorkerOptions = {
            "concurrency": cfg.concurrency, "name": cfg.name, "install_signal_handlers": False,
            "update_heartbeat_interval": cfg.heartbeat_s, "stalled_worker_timeout": cfg.stalled_after_s,
            "additional_context": {"slots": slots},
        }
        if cfg.queues:
            options["queues"] = list(cfg.queues)
        pw = Worker(app=app, **options)
        slots.procrastinate = pw
        worker = asyncio.create_task(pw.run())  # type: ignore[no-untyped-call]
        sweeper = asyncio.create_task(slots.sweep(app))
        alive = asyncio.create_task(slots.keepalive(app))
        loop = asyncio.get_running_loop()

        def on_signal(sig: signal.Signals) -> None:
            slots.signals += 1
            slots.signal_children(signal.SIGTERM)  # before the line below: once it is read, they know
            if slots.signals == 1:
                worker.cancel()
                log(f"{sig.name}: no new job; each running run stops after its current step")
            else:
                log(f"{sig.name} again: interrupting the running runs now")

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)
        log(f"{cfg.name} ready: {cfg.concurrency} slot(s), queues {', '.join(cfg.queues or ('all',))}, "
            f"evidence in {cfg.evidence_dir}")
        try:
            await worker
        except asyncio.CancelledError:
            pass
        finally:
            for task in (sweeper, alive):
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
    engine.dispose()
    log("stopped")
    return 130 if slots.signals else 0
