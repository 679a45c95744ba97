"""A whole run: load → preflight → evidence → sandbox → steps → close, with SPEC §3's exit codes.

Nothing runs before the mission is valid and every preflight guard allows it (exit 2 otherwise,
nothing written). Evidence opens before the browser starts and closes last, whatever happened:
the end ``run_record`` and ``run.json`` say how the run ended, Ctrl-C included (exit 130).
"""

from __future__ import annotations

import getpass
import os
import platform
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal

from evidence.index import EvidenceIndex
from evidence.records import Actor, Attachment, RunRecord
from evidence.runfolder import RunFolder, RunInfo, RunLock, RunStatus, new_run_id, utc_timestamp
from evidence.signing import signer_from_env
from evidence.versioning import MissionSubject, write_version_logs
from evidence.writer import EvidenceWriter
from guards.base import ActionRequest, GuardContext
from guards.urlmatch import DomainPolicy, resolvable_patterns
from kernel import __version__
from kernel.errors import (
    EvidenceUnavailable,
    GuardrailStop,
    Interrupted,
    MissionInvalid,
    Problem,
    StepFailed,
    WardenError,
)
from missions.interpolate import InterpolationError, interpolate
from missions.loader import LoadedMission, load_mission
from runner.approvals.gate import ApprovalOptions
from runner.assembly import PreparedRun, RunServices, assemble, build_preflight_chain, complete, domain_policy
from runner.browser.driver import SandboxConfig
from runner.network import QUARANTINE_DIR, NetworkGate
from runner.progress import Reporter
from runner.recorder import RunRecorder
from runner.steps import RunState, StepExecutor

if TYPE_CHECKING:
    from runner.browser.playwright_driver import LaunchedBrowser, PlaywrightDriver

OUTCOMES: dict[int, RunStatus] = {
    0: "completed",
    2: "failed",
    3: "stopped",
    4: "failed",
    5: "evidence_error",
    130: "interrupted",
}


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


@dataclass(frozen=True)
class RunResult:
    exit_code: int
    outcome: str
    message: str
    run_id: str | None = None
    folder: Path | None = None


def preflight(loaded: LoadedMission) -> None:
    """Walk the guard chain over every step before anything runs; a deny is a mission problem (exit 2)."""
    chain = build_preflight_chain(loaded)
    mission = loaded.mission
    problems: list[Problem] = []
    for i, step in enumerate(mission.steps):
        url: str | None = None
        if step.kind == "goto" and step.goto is not None:
            try:
                url = interpolate(step.goto.url, loaded.cli_vars, loaded.secret_values).value
            except InterpolationError:
                url = None  # built from a variable extracted at run time: checked then
        action = ActionRequest(step_no=i + 1, kind=step.kind, step=step, args={}, url=url)
        result = chain.check(action, GuardContext(mission, "preflight"))
        if result.verdict == "deny":
            path = f"steps.{i}.{step.kind}"
            problems.append(
                Problem(
                    str(loaded.path),
                    loaded.line_of(path),
                    path,
                    f"step {i + 1} refused before the run: {result.deciding.reason}",
                )
            )
    from guards.pii.engine import policy_problems  # static: does not import Presidio (`warden check` too)

    pii = mission.pii
    for path, message in policy_problems(pii.entities, pii.allow, pii.nlp_model):
        problems.append(Problem(str(loaded.path), loaded.line_of(path), path, message))
    if problems:
        raise MissionInvalid(problems)


def _refuse_denied_risk(loaded: LoadedMission) -> None:
    """A mission whose risk decision is ``deny`` (guards/risk.py, docs/risk.md) never runs: exit 2."""
    from guards.risk import assess

    risk = assess(loaded.mission)
    if risk.decision == "deny":
        raise MissionInvalid(
            [Problem(str(loaded.path), None, "", f"risk decision is deny (score {risk.score}): {why}")
             for why in risk.reasons]
        )


def _initiator() -> dict[str, str]:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry (containers): the uid still identifies the initiator
        user = "unknown"
    return {"user": user, "uid": str(os.getuid()), "host": socket.gethostname()}


def _versions() -> dict[str, str]:
    out = {"warden": __version__, "python": platform.python_version()}
    for pkg in ("playwright", "presidio-analyzer", "pydantic", "sqlalchemy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_mission(opts: RunOptions, reporter: Reporter) -> RunResult:
    environ = os.environ if opts.environ is None else opts.environ
    loaded = load_mission(opts.mission_path, cli_vars=dict(opts.cli_vars), environ=environ)
    preflight(loaded)
    _refuse_denied_risk(loaded)

    # Sandbox prerequisites are checked before evidence opens: a run that cannot be contained never starts.
    from runner.browser.chromium import check_no_proxy, find_chromium

    check_no_proxy(environ)
    executable = find_chromium(environ)

    # The PII engine (Presidio import + offline analyzer: the slow part of startup) is built in a
    # worker thread while Chromium launches in this one (sync Playwright is bound to its thread).
    # Launching is not an action: no context and no page exist until the evidence is open
    # (``_open_driver``). A PII engine error still wins (exit 2/5, as before); the browser is closed
    # on every error path.
    services, launched = _build_while_launching(
        lambda: assemble(loaded, environ, evidence_dir=opts.evidence_dir),  # + the PII scanner, once per run
        _sandbox_config(executable, domain_policy(loaded), opts),
    )
    try:
        return _run_launched(opts, reporter, loaded, environ, executable, services, launched)
    finally:
        _try(launched.close)  # a no-op once the driver has taken the browser (it closes it itself)


def _build_while_launching(
    build: Callable[[], PreparedRun], launch_config: SandboxConfig
) -> tuple[PreparedRun, LaunchedBrowser]:
    """``build()`` in a worker thread while the browser launches in this one; the build's error first."""
    from runner.browser.playwright_driver import launch_browser

    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["services"] = build()
        except BaseException as exc:  # re-raised in the calling thread
            box["error"] = exc

    worker = threading.Thread(target=work, name="warden-pii-build", daemon=True)
    worker.start()
    launched: LaunchedBrowser | None = None
    try:
        try:
            launched = launch_browser(launch_config)
        except Exception:  # (Ctrl-C goes straight out: the daemon worker is abandoned)
            worker.join()
            if "error" in box:  # the PII engine's error is reported, as when it was built first
                raise box["error"] from None
            raise
        worker.join()
        if "error" in box:
            raise box["error"]
    except BaseException:
        if launched is not None:
            launched.close()
        raise
    return box["services"], launched


def _run_launched(
    opts: RunOptions,
    reporter: Reporter,
    loaded: LoadedMission,
    environ: Mapping[str, str],
    executable: Path,
    services: PreparedRun,
    launched: LaunchedBrowser,
) -> RunResult:
    mission = loaded.mission
    redactor = services.redactor
    reporter.redact = redactor.redact
    started_at = utc_timestamp()
    run_id = new_run_id(mission.mission)
    initiator = _initiator()
    info = RunInfo(
        run_id=run_id,
        mission_id=mission.mission,
        mission_version=str(mission.version),
        mission_sha256=loaded.sha256,
        started_at=started_at,
        variables=sorted(loaded.cli_vars),
        initiator=initiator,
        warden_version=__version__,
    )
    try:
        signer = signer_from_env(environ)  # a set but unusable WARDEN_SIGNING_KEY fails before anything runs
        folder = RunFolder.create(opts.evidence_dir, run_id)
        run_lock = RunLock.acquire(folder)  # held for the run's life: crash recovery leaves live runs alone
        try:
            index = EvidenceIndex(opts.db_url or opts.evidence_dir)
            index.upsert_run_info(info, folder.root)
            folder.write_run_info(info)
            writer = EvidenceWriter(folder, run_id, redactor, index)
        except BaseException:
            run_lock.release()
            raise
    except OSError as exc:
        raise EvidenceUnavailable(f"evidence dir {opts.evidence_dir} cannot be written: {exc.strerror}") from exc
    except EvidenceUnavailable:
        raise
    except Exception as exc:  # e.g. the index database cannot be opened: fail closed before any action
        raise EvidenceUnavailable(f"evidence index cannot be opened ({type(exc).__name__})") from exc

    runner_actor = Actor(type="runner", id=f"warden/{__version__}")
    recorder = RunRecorder(writer, runner_actor)
    human = Actor(type="human", id=initiator["user"])
    subject = MissionSubject(mission.mission, str(mission.version), mission.changelog, mission.policy_document())
    start_fields: dict[str, Any] = dict(
        initiator=initiator,
        started_by=opts.started_by,
        mission_id=mission.mission,
        mission_version=str(mission.version),
        mission_sha256=loaded.sha256,
        policy_sha256=subject.policy_sha256,
        versions=_versions(),
        variables=sorted(loaded.cli_vars),
        started_at=started_at,
        signing_key_id=None if signer is None else signer.key_id,  # the key the end will sign with
    )
    exit_code, message = 0, "every step executed"
    state = RunState(mission, time.monotonic(), dict(loaded.cli_vars), loaded.secret_values)
    driver = None
    gate: NetworkGate | None = None
    staging: Path | None = None

    def attach_screenshot(png: bytes, step: int, when: str) -> Attachment:
        return writer.attach_bytes(png, f"screenshots/{writer.next_seq:04d}-step{step:02d}-{when}.png", "image/png")

    try:
        with _sigterm_as_interrupt():
            try:
                copy = writer.attach_bytes(
                    redactor.redact(loaded.raw_text).encode(), "mission.yaml", "application/yaml"
                )
                writer.append(RunRecord, actor=human, attachments=[copy], phase="start", **start_fields)
                write_version_logs(
                    writer, runner_actor, index, mission=subject, mission_sha256=loaded.sha256,
                    warden_version=__version__,
                )
                reporter.event(
                    "run_started",
                    run_id=run_id,
                    mission=mission.mission,
                    version=str(mission.version),
                    steps=len(mission.steps),
                    evidence=str(folder.root),
                )
                ready = complete(loaded, services, recorder, ApprovalOptions(
                    mode=opts.approval, approver=opts.approver, evidence_dir=opts.evidence_dir, db_url=opts.db_url
                ))
                gate = ready.request_gate
                if mission.boundaries.downloads == "quarantine":  # staged here, kept as quarantine/ attachments
                    staging = folder.root / QUARANTINE_DIR / ".incoming"
                driver = _open_driver(executable, ready, opts, downloads_dir=staging, launched=launched)
                executor = StepExecutor(
                    driver, ready.chain, recorder, reporter, attach_screenshot, approvals=ready.approvals,
                    hooks=ready.pii,
                )
                for n, step in enumerate(mission.steps, start=1):
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
    except WardenError as exc:
        exit_code, message = exc.exit_code, str(exc)
        if not isinstance(exc, EvidenceUnavailable | GuardrailStop | StepFailed):
            failure = exc
            _try(
                lambda: recorder.exception(
                    category=_category(failure),
                    error_type=type(failure).__name__,
                    message=str(failure),
                    mitigation="aborted",
                )
            )
    finally:
        if driver is not None:
            _try(driver.close)
        if services.pii is not None:
            _try(services.pii.close)
        if gate is not None:
            _try(gate.flush)  # refusals after the last step, until the browser closed
        if staging is not None:
            _try(lambda: shutil.rmtree(staging, ignore_errors=True))
    outcome = OUTCOMES.get(exit_code, "failed")
    counts = {**dict(recorder.counts), "steps_executed": state.executed, "retries": state.retries_total}
    if gate is not None:
        counts.update(gate.counts())
    if exit_code != 5:
        try:
            writer.append(
                RunRecord,
                actor=runner_actor,
                phase="end",
                ended_at=utc_timestamp(),
                outcome=outcome,
                exit_code=exit_code,
                counts=counts,
                **start_fields,
            )
        except EvidenceUnavailable as exc:
            exit_code, outcome, message = 5, OUTCOMES[5], str(exc)
    final = info.finish(
        status=outcome,
        exit_code=exit_code,
        chain_head=writer.head,
        record_count=writer.count,
    )
    if signer is not None:
        final = signer.sign_info(final)
    try:
        folder.write_run_info(final)
    except EvidenceUnavailable as exc:  # the folder cannot say how the run ended: evidence incomplete
        exit_code, outcome, message = 5, OUTCOMES[5], str(exc)
        final = final.model_copy(update={"status": outcome, "exit_code": exit_code})
    _try(lambda: index.upsert_run_info(final, folder.root))
    _try(writer.close)
    _write_report(folder, index, reporter)  # after run.json is final; never changes the exit code
    _try(index.close)
    run_lock.release()
    reporter.event(
        "run_finished",
        run_id=run_id,
        outcome=outcome,
        exit_code=exit_code,
        message=redactor.redact(message),
        evidence=str(folder.root),
    )
    return RunResult(exit_code, outcome, redactor.redact(message), run_id, folder.root)


def _sandbox_config(executable: Path, policy: DomainPolicy, opts: RunOptions) -> SandboxConfig:
    """The launch fields of the sandbox (``_open_driver`` adds the gate, events and downloads)."""
    return SandboxConfig(
        executable=executable,
        resolvable_hosts=resolvable_patterns(policy),
        headless=not opts.headed,
        chromium_sandbox=os.geteuid() != 0,
    )


def _open_driver(
    executable: Path,
    services: RunServices,
    opts: RunOptions,
    downloads_dir: Path | None = None,
    launched: LaunchedBrowser | None = None,
) -> PlaywrightDriver:
    from runner.browser.playwright_driver import open_driver

    gate = services.request_gate
    config = replace(
        _sandbox_config(executable, services.policy, opts),
        request_gate=gate,
        downloads_dir=downloads_dir,
        on_event=gate.on_event,
    )
    return open_driver(config, launched=launched)


def _category(exc: WardenError) -> str:
    return {"Interrupted": "interrupted", "SandboxUnavailable": "sandbox"}.get(type(exc).__name__, "error")


def _write_report(folder: RunFolder, index: EvidenceIndex, reporter: Reporter) -> None:
    """``report.html`` (evidence/report.py), best effort: a failure is a warning, not a different exit code."""
    try:
        from evidence.report import write_report

        path = write_report(folder.root, index)
    except Exception as exc:
        reporter.event("warning", message=f"report.html not written ({type(exc).__name__}: {exc})")
        return
    reporter.event("report_written", report=str(path))


def _try(fn: Callable[[], object]) -> None:
    """Best effort while closing: the first failure already decided the exit code."""
    try:
        fn()
    except Exception:  # noqa: S110 - closing must go on; the exit code is already decided
        pass
