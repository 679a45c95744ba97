"""A whole run: load → preflight → sandbox → evidence → steps → close, with SPEC §3's exit codes.

Nothing runs before the mission is valid and every preflight guard allows it (exit 2 otherwise,
nothing written: ``runner/preflight.py``). Chromium launches, and its context and blank page open,
while the PII engine builds (``runner/launch.py``: every request refused until the run's request
gate is bound); the evidence opens before anything navigates (in the build thread, once the
browser has launched, while its context opens; never for a launch that failed) and closes after
the browser's context, whatever happened (``runner/lifecycle.py``; in a helper thread while the
browser itself shuts down): the end ``run_record`` and ``run.json`` say how the run ended, Ctrl-C and SIGTERM
included (exit 130, ``runner/interrupts.py``). Each step runs in ``runner/steps.py``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from kernel.collector import collector_paused
from kernel.errors import (
    EvidenceUnavailable,
    GuardrailStop,
    Interrupted,
    SandboxUnavailable,
    StepFailed,
    WardenError,
)
from missions.loader import LoadedMission, load_mission
from runner.assembly import PreparedRun, RunServices, assemble, complete, domain_policy
from runner.browser.driver import Driver
from runner.browser.driver_start import discard_early_driver
from runner.interrupts import sigterm_as_interrupt
from runner.launch import open_sandbox, sandbox_config, start_while_building
from runner.preflight import preflight, refuse_denied_risk
from runner.progress import Reporter

if TYPE_CHECKING:
    from runner.browser.playwright_driver import LaunchedBrowser
    from runner.launch import Opened
    from runner.lifecycle import RunEvidence
    from runner.network import NetworkGate

    Early = Opened

# The evidence stack, the step loop and the approval desk (SQLAlchemy, pydantic records, ...) are
# imported by ``_prepare``, in the build thread while Chromium launches, not before the launch.

__all__ = ["RunOptions", "RunResult", "preflight", "run_mission"]

T = TypeVar("T")


@dataclass(frozen=True)
class RunOptions:
    mission_path: Path
    evidence_dir: Path
    cli_vars: Mapping[str, str] = field(default_factory=dict)
    db_url: str | None = None
    headed: bool = False
    started_by: str = "warden run"
    environ: Mapping[str, str] | None = None
    approval: Literal["prompt", "deny", "queue"] | None = None  # None: prompt when /dev/tty opens, else deny
    approver: str | None = None  # --approver NAME, recorded beside the OS user
    run_id: str | None = None  # chosen by `warden submit` (the fleet prints it before the run exists)
    # The CLI's crash recovery of the evidence dir (best effort, never raises): done in the build
    # thread while Chromium launches, so finished before this run's folder exists.
    recover: Callable[[], None] | None = None
    # The fleet's graceful stop: asked before each step; a reason stops the run there (exit 130). When
    # set, SIGTERM is left to the caller (it finishes the current step) instead of interrupting at once.
    stop_requested: Callable[[], str | None] | None = None


@dataclass(frozen=True)
class RunResult:
    exit_code: int
    outcome: str
    message: str
    run_id: str | None = None
    folder: Path | None = None


@dataclass
class _Evidence:
    """The run's evidence, opened by the build thread once the browser has launched (beside the
    early open of its context): the open run, and what writing its start records raised (raised
    again where the run's loop begins, as if written there)."""

    run: RunEvidence | None = None
    start_error: BaseException | None = None
    redact: Callable[[str], str] | None = None
    services: RunServices | None = None  # built next (``complete``), or what building them raised
    services_error: BaseException | None = None


def run_mission(opts: RunOptions, reporter: Reporter) -> RunResult:
    environ = os.environ if opts.environ is None else opts.environ
    try:
        with _first_startup_without_gc():
            loaded, executable, prepared, launched, early, evidence = _start(opts, environ, reporter)
    finally:
        discard_early_driver()  # taken over by the launch, else (no launch: e.g. a mission refused) stopped
    from runner.lifecycle import try_quietly

    try:
        return _run_launched(opts, reporter, loaded, environ, executable, prepared, launched, early, evidence)
    finally:
        if isinstance(early, tuple):
            try_quietly(early[0].close)  # idempotent: the run closed it already unless it failed first
        try_quietly(launched.close)  # a no-op once the driver has taken the browser (it closes it itself)


def _start(
    opts: RunOptions, environ: Mapping[str, str], reporter: Reporter
) -> tuple[LoadedMission, Path, PreparedRun, LaunchedBrowser, Early, _Evidence]:
    """Load and check the mission, then launch Chromium (and open its context, unless downloads are
    quarantined: their staging folder is in the run's folder) while the run's parts are prepared;
    once the browser has launched, the build thread opens the run's evidence (``_open_evidence``)."""
    loaded = load_mission(opts.mission_path, cli_vars=dict(opts.cli_vars), environ=environ)
    preflight(loaded)
    refuse_denied_risk(loaded)

    # Sandbox prerequisites are checked before evidence opens: a run that cannot be contained never starts.
    from runner.browser.chromium import check_no_proxy, find_chromium

    check_no_proxy(environ)
    executable = find_chromium(environ)

    # The PII engine (Presidio import + offline analyzer: the slow part of startup) is built in a
    # worker thread while Chromium launches in this one. A PII engine error still wins (exit 2/5);
    # the browser is closed on every error path.
    evidence = _Evidence()
    try:
        prepared, launched, early = start_while_building(
            lambda: _prepare(opts, loaded, environ, reporter),
            sandbox_config(executable, domain_policy(loaded), headed=opts.headed),
            early=loaded.mission.boundaries.downloads != "quarantine",
            after_launch=lambda prepared: _open_evidence(opts, loaded, environ, prepared, evidence),
        )
    except BaseException as exc:
        if evidence.run is not None:  # opened, then the context's open failed or Ctrl-C came: closed here
            _close_unstarted(evidence, exc, reporter)
        raise
    return loaded, executable, prepared, launched, early, evidence


def _open_evidence(
    opts: RunOptions, loaded: LoadedMission, environ: Mapping[str, str], prepared: PreparedRun, into: _Evidence
) -> None:
    """The build thread's work once the browser has launched (beside the early open of its context,
    before anything navigates): the run's folder, index and writer (an error: exit 5, as before any
    record), then the mission as run and the start ``run_record``, then the run's services (an
    error of those is raised again where the run's loop begins, where it is recorded)."""
    from runner.approvals.human import ApprovalOptions
    from runner.lifecycle import RunEvidence

    redact = prepared.redactor.redact
    into.redact = redact
    into.run = RunEvidence.open(
        loaded, prepared.redactor, evidence_dir=opts.evidence_dir, db_url=opts.db_url, environ=environ,
        started_by=opts.started_by, run_id=opts.run_id,
    )
    try:
        into.run.write_start(redact)
    except BaseException as exc:  # re-raised in the run's loop
        into.start_error = exc
        return
    try:
        approval_options = ApprovalOptions(
            mode=opts.approval, approver=opts.approver, evidence_dir=opts.evidence_dir, db_url=opts.db_url
        )
        into.services = complete(loaded, prepared, into.run.recorder, approval_options)
    except BaseException as exc:  # re-raised in the run's loop, after its run_started event
        into.services_error = exc


def _close_unstarted(evidence: _Evidence, exc: BaseException, reporter: Reporter) -> None:
    """The evidence of a run whose browser launched but whose start then failed (the context's open
    raised, or Ctrl-C): the failure recorded and the run closed, as the run's loop would have."""
    from runner.lifecycle import try_quietly

    run = evidence.run
    if run is None:
        return
    if evidence.redact is not None:
        reporter.redact = evidence.redact
    if isinstance(exc, WardenError):
        failure: WardenError = exc
    elif isinstance(exc, KeyboardInterrupt):
        failure = Interrupted("interrupted by the user (Ctrl-C)")
    else:
        failure = SandboxUnavailable(f"the browser's context could not be opened ({type(exc).__name__})")
    if not isinstance(failure, EvidenceUnavailable | GuardrailStop | StepFailed):
        run.record_abort(failure)
    counts = {**dict(run.recorder.counts), "steps_executed": 0, "retries": 0}
    try_quietly(lambda: run.close(failure.exit_code, str(failure), counts, reporter))


_startup_lock = threading.Lock()
_startup_done = False


@contextlib.contextmanager
def _first_startup_without_gc() -> Iterator[None]:
    """The cyclic collector off while the process's first run imports and builds its long-lived
    state (Presidio, spaCy, SQLAlchemy, Playwright: ~280k tracked objects), then that state frozen
    out of its reach (``gc.freeze``) and the collector back on.

    Why: it would otherwise walk that growing heap ~380 times on the way to the first action (349
    young, 31 middle, 2 full collections: ~0.1 s of CPU, on the build's critical path). What is
    frozen is live state plus ~2,500 objects of import-time cyclic garbage, never collected. Once
    per process: a later run (tests, a long-lived caller) is collected as usual.
    """
    global _startup_done
    with _startup_lock:
        first, _startup_done = not _startup_done, True
    with collector_paused(first, freeze_after=True):
        yield


def _prepare(opts: RunOptions, loaded: LoadedMission, environ: Mapping[str, str], reporter: Reporter) -> PreparedRun:
    """The build thread's work while Chromium launches: the crash recovery, the imports of what
    runs after the launch (the reporter's too: ``warm_up``), then the run's parts (+ the PII
    scanner, once per run)."""
    if opts.recover is not None:
        opts.recover()
    import runner.approvals.human
    import runner.lifecycle
    import runner.steps  # noqa: F401 - the rest of the run, imported off the launch's path

    warm_up: Callable[[], None] | None = getattr(reporter, "warm_up", None)
    if warm_up is not None:
        warm_up()

    return assemble(loaded, environ, evidence_dir=opts.evidence_dir)


def _alongside(work: Callable[[], T], here: Callable[[], None] | None) -> T:
    """``work()`` in a helper thread while ``here()`` (best effort) runs in this one; ``work``'s result.

    Why: the run's evidence closes (end record, run.json, index, report.html: Python work) while the
    browser and the Playwright driver shut down (waiting on their processes; sync Playwright is bound
    to this thread). The context is closed before: the counts ``work`` records are final. The helper
    is not a daemon: an interrupted wait here still lets the evidence close."""
    from runner.lifecycle import try_quietly

    if here is None:
        return work()
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["out"] = work()
        except BaseException as exc:  # re-raised here
            box["error"] = exc

    helper = threading.Thread(target=run, name="warden-evidence-close")
    helper.start()
    try_quietly(here)
    helper.join()
    if "error" in box:
        raise box["error"]
    out: T = box["out"]
    return out


def _run_launched(
    opts: RunOptions,
    reporter: Reporter,
    loaded: LoadedMission,
    environ: Mapping[str, str],
    executable: Path,
    prepared: PreparedRun,
    launched: LaunchedBrowser,
    early: Early,
    evidence: _Evidence,
) -> RunResult:
    from runner.lifecycle import try_quietly
    from runner.network import QUARANTINE_DIR, NetworkGate
    from runner.steps import RunState, StepExecutor

    mission = loaded.mission
    redactor = prepared.redactor
    reporter.redact = redactor.redact
    run = evidence.run  # opened by the build thread once the browser launched (_open_evidence)
    if run is None:  # fail closed (start_while_building raised whatever kept it from opening)
        raise EvidenceUnavailable("the run's evidence was not opened")
    start_error = evidence.start_error
    exit_code, message = 0, "every step executed"
    state = RunState(mission, time.monotonic(), dict(loaded.cli_vars), loaded.secret_values)
    driver: Driver | None = None
    gate: NetworkGate | None = None
    staging: Path | None = None
    escaped = True  # an exception other than a WardenError leaves this function: close everything here
    try:
        with sigterm_as_interrupt() if opts.stop_requested is None else nullcontext():
            try:
                if start_error is not None:
                    raise start_error
                reporter.event(
                    "run_started",
                    run_id=run.run_id,
                    mission=mission.mission,
                    version=str(mission.version),
                    steps=len(mission.steps),
                    evidence=str(run.folder.root),
                )
                services = evidence.services
                if services is None:  # what building them raised (_open_evidence)
                    raise evidence.services_error or SandboxUnavailable("the run's services were not built")
                gate = services.request_gate if isinstance(services.request_gate, NetworkGate) else None
                if mission.boundaries.downloads == "quarantine":  # staged here, kept as quarantine/ attachments
                    staging = run.folder.root / QUARANTINE_DIR / ".incoming"
                driver = open_sandbox(
                    executable, services, headed=opts.headed, downloads_dir=staging, launched=launched, early=early
                )
                executor = StepExecutor(
                    driver, services.chain, run.recorder, reporter, run.attach_screenshot,
                    approvals=services.approvals, hooks=services.pii,
                )
                for n, step in enumerate(mission.steps, start=1):
                    if opts.stop_requested is not None and (why := opts.stop_requested()) is not None:
                        raise Interrupted(why)
                    if gate is not None:  # refusals while this step runs carry its number
                        gate.step = n
                        gate.page_url = driver.page_url()
                    try:
                        executor.run(n, step, state)
                    finally:
                        if gate is not None:
                            gate.flush()
            except KeyboardInterrupt:
                raise Interrupted("interrupted by the user (Ctrl-C)") from None
        escaped = False
    except WardenError as exc:
        exit_code, message = exc.exit_code, str(exc)
        if not isinstance(exc, EvidenceUnavailable | GuardrailStop | StepFailed):
            run.record_abort(exc)
        escaped = False
    finally:
        if driver is None and isinstance(early, tuple):
            driver = early[0]  # opened while the PII engine built; closed before the evidence, as any driver
        close_context: Callable[[], None] | None = getattr(driver, "close_context", None)
        if driver is not None:  # the context now (no request after it); the browser's teardown below
            try_quietly(driver.close if escaped or close_context is None else close_context)
        if prepared.pii is not None:
            try_quietly(prepared.pii.close)
        if gate is not None:
            try_quietly(gate.flush)  # refusals after the last step, until the browser closed
        if staging is not None:
            folder = staging
            try_quietly(lambda: shutil.rmtree(folder, ignore_errors=True))
    counts = {**dict(run.recorder.counts), "steps_executed": state.executed, "retries": state.retries_total}
    if gate is not None:
        counts.update(gate.counts())
    final = (exit_code, message)
    exit_code, outcome, message = _alongside(
        lambda: run.close(*final, counts, reporter), driver.close if driver is not None else None
    )
    reporter.event(
        "run_finished",
        run_id=run.run_id,
        outcome=outcome,
        exit_code=exit_code,
        message=redactor.redact(message),
        evidence=str(run.folder.root),
    )
    return RunResult(exit_code, outcome, redactor.redact(message), run.run_id, run.folder.root)
