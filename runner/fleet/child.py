"""One job slot's run, in its own process: ``python -m runner.fleet.child RESULT.json < spec.json``.

A process per running job, because a guarded run owns process-wide things: Playwright's sync API
(one per thread, its own event loop), the signal handlers, Chromium's process tree. A slot waiting
for an approval therefore blocks nothing else, and a crash takes one run down, not the worker.

- Dies with its worker (``PR_SET_PDEATHSIG``: SIGKILL): a worker killed mid-run leaves this run's
  folder ``running``; ``warden evidence recover`` closes it as ``interrupted`` (the prefix verifies).
- SIGTERM (or SIGINT) once: the current step finishes, the run stops before the next one and records
  why (exit 130); a second signal interrupts at once, as Ctrl-C does in ``warden run``.
- The result (exit code, outcome, run id, whether anything acted) goes to RESULT.json for the worker.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import shutil
import signal
import sys
from pathlib import Path
from types import FrameType

from pydantic import BaseModel, ConfigDict

from kernel.errors import SandboxUnavailable, UsageError, WardenError
from runner.fleet.payload import JobPayload, unseal
from runner.fleet.retryable import first_action_state

PARENT_ENV = "WARDEN_FLEET_PARENT"
_PR_SET_PDEATHSIG = 1


class ChildSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    payload: JobPayload
    job_id: int
    attempt: int
    run_id: str
    evidence_dir: str
    db_url: str
    worker: str
    secret_env: tuple[str, ...] = ()  # environment variables this worker lends to missions' secrets


class ChildResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    exit_code: int
    outcome: str  # the run's outcome, or not_started when no run folder was opened
    message: str  # redacted by the run (or Warden's own error text before the run)
    run_id: str | None = None
    folder: str | None = None
    retry_why: str | None = None  # set when nothing acted and the failure may pass (browser, site down)


class GracefulStop:
    """First signal: stop before the next step. Second: interrupt now (KeyboardInterrupt)."""

    def __init__(self) -> None:
        self.why: str | None = None

    def handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.why is not None:
            raise KeyboardInterrupt
        self.why = f"stopped by {name} to the worker: the current step finished, no further step was started"

    def reason(self) -> str | None:
        return self.why


def die_with_parent(parent: int | None) -> None:
    """The kernel kills this process when its worker dies (Linux); a worker already gone: exit now."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def check_lent_secrets(mission_path: Path, cli_vars: dict[str, str], lent: tuple[str, ...]) -> None:
    """Whoever can write the queue chooses the mission: a mission may read only the environment
    variables this worker lends (``warden worker --secret-env NAME``), else any queued mission could
    bind the worker's own credentials to a domain of its choosing."""
    from missions.loader import load_mission

    loaded = load_mission(mission_path, cli_vars=cli_vars, environ=os.environ, require_secrets=False)
    refused = sorted(f"secrets.{name} reads ${spec.env}" for name, spec in loaded.mission.secrets.items()
                     if spec.env not in lent)
    if refused:
        raise UsageError(f"this worker does not lend {', '.join(refused)} (warden worker --secret-env NAME): not run")


def run_spec(spec: ChildSpec, stop: GracefulStop) -> ChildResult:
    from runner.progress import QuietReporter
    from runner.run import RunOptions, run_mission

    p = spec.payload
    folder = Path(spec.evidence_dir) / ".fleet" / "missions" / spec.run_id  # staging: the run keeps its own copy
    try:
        cli_vars = unseal(p, os.environ)
        folder.mkdir(parents=True, exist_ok=True)
        mission_path = folder / Path(p.mission_file).name
        if hashlib.sha256(p.mission_text.encode()).hexdigest() != p.mission_sha256:
            raise UsageError("the job's mission text does not match its sha256: not run")
        mission_path.write_text(p.mission_text)
        check_lent_secrets(mission_path, cli_vars, spec.secret_env)
        opts = RunOptions(
            mission_path=mission_path, evidence_dir=Path(spec.evidence_dir), cli_vars=cli_vars, db_url=spec.db_url,
            started_by=f"warden worker {spec.worker} (job {spec.job_id}, attempt {spec.attempt})",
            approval="queue", run_id=spec.run_id, stop_requested=stop.reason,
        )
        result = run_mission(opts, QuietReporter())
    except WardenError as exc:  # refused before a run folder opened: nothing was executed
        why = f"the browser did not start: {exc}" if isinstance(exc, SandboxUnavailable) else None
        return ChildResult(exit_code=exc.exit_code, outcome="not_started", message=str(exc)[:500], retry_why=why)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    retry_why = None
    if result.exit_code != 0 and result.folder is not None:
        retry_why = first_action_state(result.folder).retry_why
    return ChildResult(exit_code=result.exit_code, outcome=result.outcome, message=result.message,
                       run_id=result.run_id, folder=None if result.folder is None else str(result.folder),
                       retry_why=retry_why)


def main(argv: list[str]) -> int:
    parent = os.environ.get(PARENT_ENV)
    die_with_parent(int(parent) if parent and parent.isdigit() else None)
    stop = GracefulStop()
    from runner.approvals.queue import stop_waiting_when

    stop_waiting_when(stop.reason)  # a step waiting for an approval has not acted: it stops now, denied
    signal.signal(signal.SIGTERM, stop.handle)
    signal.signal(signal.SIGINT, stop.handle)
    result_path = Path(argv[0])
    spec = ChildSpec.model_validate_json(sys.stdin.read())
    result = run_spec(spec, stop)
    tmp = result_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result.model_dump()))
    tmp.replace(result_path)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
