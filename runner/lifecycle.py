"""A run's evidence from first record to last: opening, the start records, the closing ``run_record``.

The evidence opens before anything navigates (a dir that cannot be written is exit 5, nothing
executed) and closes once the browser's context has (alongside the browser's own shutdown,
``runner/run.py``), whatever happened: the end ``run_record``, the final ``run.json``
(signed when ``WARDEN_SIGNING_KEY`` is set), the index row and ``report.html`` say how the run
ended. ``OUTCOMES`` maps each exit code of the run to the status they record.
"""

from __future__ import annotations

import getpass
import os
import platform
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from evidence.index import EvidenceIndex
from evidence.records import Actor, Attachment, RunRecord
from evidence.redact import RedactorChain, protect
from evidence.runfolder import RunFolder, RunInfo, RunLock, RunStatus, new_run_id, utc_timestamp
from evidence.signing import Signer, signer_from_env
from evidence.versioning import MissionSubject, write_version_logs
from evidence.writer import EvidenceWriter
from kernel import __version__
from kernel.errors import EvidenceUnavailable, WardenError
from missions.loader import LoadedMission
from runner.exit_codes import ExitCode
from runner.launch import sandbox_state
from runner.progress import Reporter
from runner.recorder import RunRecorder

OUTCOMES: dict[int, RunStatus] = {
    ExitCode.OK.value: "completed",
    ExitCode.INVALID.value: "failed",
    ExitCode.GUARDRAIL.value: "stopped",
    ExitCode.STEP_FAILED.value: "failed",
    ExitCode.EVIDENCE_UNAVAILABLE.value: "evidence_error",
    ExitCode.INTERRUPTED.value: "interrupted",
}
_EVIDENCE_ERROR = ExitCode.EVIDENCE_UNAVAILABLE.value


def initiator() -> dict[str, str]:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry (containers): the uid still identifies the initiator
        user = "unknown"
    return {"user": user, "uid": str(os.getuid()), "host": socket.gethostname()}


def versions() -> dict[str, str]:
    out = {"warden": __version__, "python": platform.python_version()}
    out["chromium_sandbox"] = sandbox_state()  # "off: running as root" is also said on the terminal
    for pkg in ("playwright", "presidio-analyzer", "pydantic", "sqlalchemy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


@dataclass
class RunEvidence:
    """One run's open evidence: folder (locked for the run's life), index, writer, recorder."""

    loaded: LoadedMission
    info: RunInfo
    folder: RunFolder
    lock: RunLock
    index: EvidenceIndex
    writer: EvidenceWriter
    signer: Signer | None
    recorder: RunRecorder
    runner_actor: Actor
    human: Actor
    subject: MissionSubject
    start_fields: dict[str, Any]

    @property
    def run_id(self) -> str:
        return self.info.run_id

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        loaded: LoadedMission,
        redactor: RedactorChain,
        *,
        evidence_dir: Path,
        db_url: str | None,
        environ: Mapping[str, str],
        started_by: str,
        run_id: str | None = None,
    ) -> RunEvidence:
        """Create the run folder, take its lock, index it, open the writer; exit 5 when it cannot be."""
        mission = loaded.mission
        started_at = utc_timestamp()
        run_id = run_id or new_run_id(mission.mission)
        who = initiator()
        info = RunInfo(
            run_id=run_id,
            mission_id=mission.mission,
            mission_version=str(mission.version),
            mission_sha256=loaded.sha256,
            started_at=started_at,
            variables=sorted(loaded.cli_vars),
            initiator=who,
            warden_version=__version__,
        )
        try:
            signer = signer_from_env(environ)  # a set but unusable WARDEN_SIGNING_KEY fails before anything runs
            folder = RunFolder.create(evidence_dir, run_id)
            lock = RunLock.acquire(folder)  # held for the run's life: crash recovery leaves live runs alone
            protect(redactor, run_id, str(folder.root), *([signer.key_id] if signer else []))  # never masked
            try:
                index = EvidenceIndex(db_url or evidence_dir, redactor=redactor)
                index.upsert_run_info(info, folder.root)
                folder.write_run_info(info)
                writer = EvidenceWriter(folder, run_id, redactor, index)
            except BaseException:
                lock.release()
                raise
        except OSError as exc:
            raise EvidenceUnavailable(f"evidence dir {evidence_dir} cannot be written: {exc.strerror}") from exc
        except EvidenceUnavailable:
            raise
        except Exception as exc:  # e.g. the index database cannot be opened: fail closed before any action
            raise EvidenceUnavailable(f"evidence index cannot be opened ({type(exc).__name__})") from exc

        runner_actor = Actor(type="runner", id=f"warden/{__version__}")
        subject = MissionSubject(mission.mission, str(mission.version), mission.changelog, mission.policy_document())
        start_fields: dict[str, Any] = dict(
            initiator=who,
            started_by=started_by,
            mission_id=mission.mission,
            mission_version=str(mission.version),
            mission_sha256=loaded.sha256,
            policy_sha256=subject.policy_sha256,
            versions=versions(),
            variables=sorted(loaded.cli_vars),
            started_at=started_at,
            signing_key_id=None if signer is None else signer.key_id,  # the key the run's end signs with
        )
        return cls(
            loaded=loaded,
            info=info,
            folder=folder,
            lock=lock,
            index=index,
            writer=writer,
            signer=signer,
            recorder=RunRecorder(writer, runner_actor),
            runner_actor=runner_actor,
            human=Actor(type="human", id=who["user"]),
            subject=subject,
            start_fields=start_fields,
        )

    # ------------------------------------------------------------------ while running
    def write_start(self, redact: Callable[[str], str]) -> None:
        """The mission as run (redacted), the start ``run_record``, and a ``version_log`` per change."""
        copy = self.writer.attach_bytes(redact(self.loaded.raw_text).encode(), "mission.yaml", "application/yaml")
        self.writer.append(RunRecord, actor=self.human, attachments=[copy], phase="start", **self.start_fields)
        write_version_logs(
            self.writer, self.runner_actor, self.index, mission=self.subject, mission_sha256=self.loaded.sha256,
            warden_version=__version__, sandbox=self.start_fields["versions"].get("chromium_sandbox"),
        )

    def attach_screenshot(self, png: bytes, step: int, when: str) -> Attachment:
        writer = self.writer
        return writer.attach_bytes(png, f"screenshots/{writer.next_seq:04d}-step{step:02d}-{when}.png", "image/png")

    def record_abort(self, failure: WardenError) -> None:
        """The ``exception_record`` of an error that ended the run without a record of its own (best effort)."""
        try_quietly(
            lambda: self.recorder.exception(
                category=_category(failure),
                error_type=type(failure).__name__,
                message=str(failure),
                mitigation="aborted",
            )
        )

    # ------------------------------------------------------------------ closing
    def close(self, exit_code: int, message: str, counts: Mapping[str, Any], reporter: Reporter) -> tuple[
        int, RunStatus, str
    ]:
        """The end ``run_record``, the final ``run.json``, the index row, ``report.html``; the lock goes last.

        Returns ``(exit_code, outcome, message)``: exit 5 when the end of the run cannot be written.
        """
        outcome = OUTCOMES.get(exit_code, "failed")
        if exit_code != _EVIDENCE_ERROR:
            try:
                self.writer.append(
                    RunRecord,
                    actor=self.runner_actor,
                    phase="end",
                    ended_at=utc_timestamp(),
                    outcome=outcome,
                    exit_code=exit_code,
                    counts=dict(counts),
                    **self.start_fields,
                )
            except EvidenceUnavailable as exc:
                exit_code, outcome, message = _EVIDENCE_ERROR, OUTCOMES[_EVIDENCE_ERROR], str(exc)
        final = self.info.finish(
            status=outcome,
            exit_code=exit_code,
            chain_head=self.writer.head,
            record_count=self.writer.count,
        )
        if self.signer is not None:
            final = self.signer.sign_info(final)
        try:
            self.folder.write_run_info(final)
        except EvidenceUnavailable as exc:  # the folder cannot say how the run ended: evidence incomplete
            exit_code, outcome, message = _EVIDENCE_ERROR, OUTCOMES[_EVIDENCE_ERROR], str(exc)
            final = final.model_copy(update={"status": outcome, "exit_code": exit_code})
        try_quietly(lambda: self.index.upsert_run_info(final, self.folder.root))
        try_quietly(self.writer.close)
        _write_report(self.folder, self.index, reporter)  # after run.json is final; never changes the exit code
        try_quietly(self.index.close)
        self.lock.release()
        return exit_code, outcome, message


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


def try_quietly(fn: Callable[[], object]) -> None:
    """Best effort while closing: the first failure already decided the exit code."""
    try:
        fn()
    except Exception:  # noqa: S110 - closing must go on; the exit code is already decided
        pass
