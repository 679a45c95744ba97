"""One session's run, opened and closed as ``runner/run.py`` does it for a YAML mission.

Same order, same parts: the mission is valid and passes preflight (exit 2 otherwise, nothing
written) → Chromium launches while the PII engine builds → the evidence opens → the start records →
the step chain, request gate and approval desk (``runner.assembly.complete``) → the sandboxed
driver → a ``StepExecutor``. Only the steps differ: they come one by one from the agent.
Closing writes the end ``run_record`` and ``run.json`` whatever happened. Every call here must
come from the one thread that opened it (sync Playwright is bound to its thread).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from evidence.records import Attachment
from kernel.errors import WardenError
from missions.loader import LoadedMission, load_mission
from runner.approvals.human import ApprovalOptions
from runner.assembly import PreparedRun, RunServices, assemble, complete, domain_policy
from runner.browser.driver import Driver
from runner.launch import build_while_launching, open_sandbox, sandbox_config
from runner.lifecycle import RunEvidence, try_quietly
from runner.network import QUARANTINE_DIR, NetworkGate
from runner.preflight import preflight, refuse_denied_risk
from runner.progress import Reporter
from runner.steps import RunState, StepExecutor


@dataclass(frozen=True)
class SessionOptions:
    """What ``warden mcp`` (or ``open_session``) is given: the mission and where its evidence goes."""

    mission_path: Path
    evidence_dir: Path = Path("warden-evidence")
    cli_vars: Mapping[str, str] = field(default_factory=dict)
    db_url: str | None = None
    approval: Literal["queue", "deny"] = "deny"  # a person answers from another terminal, or nobody does
    approver: str | None = None
    environ: Mapping[str, str] | None = None
    started_by: str = "warden session"
    headed: bool = False

    def env(self) -> Mapping[str, str]:
        return os.environ if self.environ is None else self.environ


def load_for_session(opts: SessionOptions) -> LoadedMission:
    """The mission, checked as ``warden run`` checks it, except that ``steps`` may be empty. Exit 2 otherwise."""
    loaded = load_mission(opts.mission_path, cli_vars=dict(opts.cli_vars), environ=opts.env(), require_steps=False)
    preflight(loaded)
    refuse_denied_risk(loaded)
    return loaded


@dataclass
class LiveRun:
    """The open run of one session: its evidence, services, driver and step executor."""

    loaded: LoadedMission
    prepared: PreparedRun
    run: RunEvidence
    services: RunServices
    driver: Driver
    executor: StepExecutor
    state: RunState
    reporter: Reporter
    staging: Path | None = None
    last_png: bytes | None = None  # the last screenshot taken (masked as the evidence copy)
    closed: bool = False

    @property
    def gate(self) -> NetworkGate:
        return self.services.request_gate

    @property
    def redact(self) -> Callable[[str], str]:
        return self.prepared.redactor.redact

    def close(self, exit_code: int, message: str) -> tuple[int, str, str]:
        """Close browser, PII engine and evidence; ``(exit_code, outcome, message)`` as the run ended."""
        if self.closed:
            return exit_code, "closed", message
        self.closed = True
        try_quietly(self.driver.close)
        try_quietly(self.prepared.pii.close if self.prepared.pii is not None else lambda: None)
        try_quietly(self.gate.flush)  # refusals until the browser closed
        if self.staging is not None:
            folder = self.staging
            try_quietly(lambda: shutil.rmtree(folder, ignore_errors=True))
        counts = {**dict(self.run.recorder.counts), "steps_executed": self.state.executed,
                  "retries": self.state.retries_total, **self.gate.counts()}
        code, outcome, message = self.run.close(exit_code, message, counts, self.reporter)
        self.reporter.event("run_finished", run_id=self.run.run_id, outcome=outcome, exit_code=code,
                            message=self.redact(message), evidence=str(self.run.folder.root))
        return code, outcome, self.redact(message)


def open_live(opts: SessionOptions, loaded: LoadedMission, reporter: Reporter) -> LiveRun:
    """Launch, open the evidence, assemble: a run ready for its first step (``WardenError`` otherwise)."""
    from runner.browser.chromium import check_no_proxy, find_chromium

    environ = opts.env()
    check_no_proxy(environ)
    executable = find_chromium(environ)
    prepared, launched = build_while_launching(
        lambda: assemble(loaded, environ, evidence_dir=opts.evidence_dir),
        sandbox_config(executable, domain_policy(loaded), headed=opts.headed),
    )
    try:
        reporter.redact = prepared.redactor.redact
        run = RunEvidence.open(loaded, prepared.redactor, evidence_dir=opts.evidence_dir, db_url=opts.db_url,
                               environ=environ, started_by=opts.started_by)
        state = RunState(loaded.mission, time.monotonic(), dict(loaded.cli_vars), loaded.secret_values)
        holder: list[LiveRun] = []

        def attach(png: bytes, step: int, when: str) -> Attachment:
            if holder:
                holder[0].last_png = png
            return run.attach_screenshot(png, step, when)

        try:
            run.write_start(prepared.redactor.redact)
            reporter.event("run_started", run_id=run.run_id, mission=loaded.mission.mission,
                           version=str(loaded.mission.version), steps=0, evidence=str(run.folder.root))
            approval = ApprovalOptions(mode=opts.approval, approver=opts.approver,
                                       evidence_dir=opts.evidence_dir, db_url=opts.db_url)
            services = complete(loaded, prepared, run.recorder, approval)
            staging = None
            if loaded.mission.boundaries.downloads == "quarantine":
                staging = run.folder.root / QUARANTINE_DIR / ".incoming"
            driver = open_sandbox(executable, services, headed=opts.headed, downloads_dir=staging, launched=launched)
        except WardenError as exc:
            run.record_abort(exc)
            try_quietly(prepared.pii.close if prepared.pii is not None else lambda: None)
            run.close(exc.exit_code, str(exc), dict(run.recorder.counts), reporter)
            raise
        executor = StepExecutor(driver, services.chain, run.recorder, reporter, attach,
                                approvals=services.approvals, hooks=services.pii)
        live = LiveRun(loaded, prepared, run, services, driver, executor, state, reporter, staging)
        holder.append(live)
        return live
    except BaseException:
        if prepared.pii is not None:
            try_quietly(prepared.pii.close)
        raise
    finally:
        try_quietly(launched.close)  # a no-op once the driver took the browser
