"""The run folder (SPEC §5): the source of truth for one run, and its ``run.json``.

``run.json`` is rewritten atomically (tmp + fsync + rename + fsync of the directory) so a crash
leaves either the old or the new version, never a torn one. It is not hash-protected itself: the
chain in ``records.jsonl`` is; ``run.json`` carries the chain head at the end so a verifier can
detect records removed or added after the run finished, and its ``status``, ``exit_code`` and
``outcome`` must be what the chain's closing run_record says (evidence.verify_outcome).

Every path a run folder holds is relative to it (attachments), and ``run.json`` names no location:
a folder copied anywhere verifies as it is.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from evidence.records import GENESIS_HASH
from kernel.errors import EvidenceUnavailable

DIR_MODE = 0o750
FILE_MODE = 0o640

RunStatus = Literal["running", "completed", "stopped", "failed", "evidence_error", "interrupted"]
FINISHED_STATUSES: frozenset[str] = frozenset({"completed", "stopped", "failed", "evidence_error", "interrupted"})

_RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def utc_timestamp(now: datetime | None = None) -> str:
    """RFC 3339 UTC with milliseconds and ``Z``: fixed width, so strings sort as times."""
    t = (now or datetime.now(UTC)).astimezone(UTC)
    if t.year >= 1000:  # isoformat (C) writes the same digits; strftime pads years below 1000 differently
        return t.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
    return f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond // 1000:03d}Z"


class SecondStamps:
    """``utc_timestamp()`` of now, with the text of the current second kept (only the milliseconds
    are formatted per call, truncated as ``isoformat`` truncates them): a writer stamps thousands of
    records a second."""

    def __init__(self) -> None:
        self._second: tuple[int, str] = (-1, "")

    def now(self) -> str:
        ms = time.time_ns() // 1_000_000
        second, text = self._second
        if ms // 1000 != second:
            second = ms // 1000
            text = utc_timestamp(datetime.fromtimestamp(second, UTC))[:-5]  # without ".mmmZ"
            self._second = (second, text)
        return f"{text}.{ms % 1000:03d}Z"


def new_run_id(mission_id: str, now: datetime | None = None) -> str:
    """``YYYYMMDDTHHMMSSmmmZ-<mission>-<6 hex>``: sorts by start time, names the mission, never collides."""
    t = (now or datetime.now(UTC)).astimezone(UTC)
    slug = re.sub(r"[^a-z0-9]+", "-", mission_id.lower()).strip("-")[:48] or "mission"
    return f"{t:%Y%m%dT%H%M%S}{t.microsecond // 1000:03d}Z-{slug}-{secrets.token_hex(3)}"


def check_run_id(run_id: str) -> str:
    """A run id becomes a directory name: refuse anything that could leave ``runs/``."""
    if not _RUN_ID_RE.match(run_id) or run_id in {".", ".."}:
        raise ValueError(f"invalid run id {run_id!r}")
    return run_id


class RunInfo(BaseModel):
    """The content of ``run.json``: the run's context and outcome (variable names, never values)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str
    mission_id: str
    mission_version: str
    mission_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    started_at: str
    ended_at: str | None = None
    status: RunStatus = "running"
    exit_code: int | None = None
    # The run's outcome, as its closing run_record says (set with ``finish``; None while running).
    outcome: RunStatus | None = None
    chain_head: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] = GENESIS_HASH
    record_count: Annotated[int, Field(ge=0)] = 0
    variables: list[str] = Field(default_factory=list)
    initiator: dict[str, str] = Field(default_factory=dict)
    warden_version: str = ""
    # Optional Ed25519 signature over run id, key id, chain head, count, status and exit code
    # (evidence.signing); absent when no key was set. ``signature_schema`` names the signed payload
    # (absent: ``warden.run_signature/1`` of older runs, which covered run id, head and count only).
    signed: bool = False
    signature: str | None = None
    signing_key_id: str | None = None
    signature_schema: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    def finish(
        self, *, status: RunStatus, exit_code: int | None, chain_head: str, record_count: int,
        ended_at: str | None = None,
    ) -> RunInfo:
        """A copy closed with its outcome (``status`` and ``outcome``) and the writer's final chain head."""
        return self.model_copy(
            update={
                "status": status,
                "outcome": status,
                "exit_code": exit_code,
                "chain_head": chain_head,
                "record_count": record_count,
                "ended_at": ended_at or utc_timestamp(),
            }
        )


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd`` (short writes continued).

    Every evidence byte (records, attachments, ``run.json``) goes through this function and
    ``fsync_fd``, so a test can inject a disk-full or I/O error at any write position.
    """
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def fsync_fd(fd: int) -> None:
    os.fsync(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename or a new directory entry durable (POSIX needs the directory fsynced too)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_new_file(target: Path, data: bytes) -> None:
    """Create ``target`` (never overwriting a file; its folders as needed) with ``data``, fsynced,
    its folder too; OSError on failure, with no partial file left behind."""
    created = False
    try:
        target.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
        created = True
        try:
            write_all(fd, data)
            fsync_fd(fd)
        finally:
            os.close(fd)
        fsync_dir(target.parent)
    except OSError:
        if created:
            with contextlib.suppress(OSError):
                os.unlink(target)
        raise


def atomic_write_bytes(path: Path, data: bytes, mode: int = FILE_MODE) -> None:
    """Replace ``path`` with ``data`` all-or-nothing: tmp + fsync + rename + fsync(dir)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        write_all(fd, data)
        fsync_fd(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


@dataclass(frozen=True)
class RunFolder:
    """Paths of one run folder; ``create`` makes it, ``open`` points at an existing one."""

    root: Path

    @property
    def run_id(self) -> str:
        return self.root.name

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def mission_yaml(self) -> Path:
        return self.root / "mission.yaml"

    @property
    def records(self) -> Path:
        return self.root / "records.jsonl"

    @property
    def screenshots(self) -> Path:
        return self.root / "screenshots"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    @property
    def lock_path(self) -> Path:
        """Held (flock, exclusive) by the process running the run for its whole life."""
        return self.root / ".lock"

    @classmethod
    def create(cls, evidence_dir: Path | str, run_id: str) -> RunFolder:
        """Create ``DIR/runs/<run_id>/screenshots`` (0o750); ``EvidenceUnavailable`` if it cannot be written.

        Probes writability with a real file so a read-only mount or a full disk is found before any
        action runs (exit 5), not at the first record.
        """
        check_run_id(run_id)
        root = Path(evidence_dir).absolute() / "runs" / run_id
        try:
            root.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            root.mkdir(mode=DIR_MODE)
            (root / "screenshots").mkdir(mode=DIR_MODE)
            probe = root / ".write-probe"
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
            try:
                os.write(fd, b"ok")
                os.fsync(fd)
            finally:
                os.close(fd)
            os.unlink(probe)
            fsync_dir(root)
            fsync_dir(root.parent)
        except OSError as e:
            raise EvidenceUnavailable(f"evidence folder {root} cannot be written: {e.strerror or e}") from e
        return cls(root)

    @classmethod
    def open(cls, path: Path | str) -> RunFolder:
        """An existing run folder (for verify/show); nothing is created."""
        root = Path(path).absolute()
        if not root.is_dir():
            raise FileNotFoundError(f"run folder {root} does not exist")
        return cls(root)

    def write_run_info(self, info: RunInfo) -> None:
        """Atomically (re)write ``run.json``; ``EvidenceUnavailable`` on any I/O error."""
        if info.run_id != self.run_id:
            raise ValueError(f"run.json for {info.run_id!r} written into folder {self.run_id!r}")
        data = (info.model_dump_json(indent=2) + "\n").encode()
        try:
            atomic_write_bytes(self.run_json, data)
        except OSError as e:
            raise EvidenceUnavailable(f"cannot write {self.run_json}: {e.strerror or e}") from e

    def read_run_info(self) -> RunInfo:
        return RunInfo.model_validate_json(self.run_json.read_bytes())

    def write_file(self, relpath: str, data: bytes) -> None:
        """Atomically write a run-level file (``mission.yaml``, ``report.html``); caller redacts first."""
        target = self.root / safe_relpath(relpath)
        try:
            target.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            atomic_write_bytes(target, data)
        except OSError as e:
            raise EvidenceUnavailable(f"cannot write {target}: {e.strerror or e}") from e


def safe_relpath(relpath: str) -> str:
    """A POSIX path that stays inside the run folder, or ``ValueError``."""
    parts = relpath.split("/")
    if not relpath or relpath.startswith("/") or "\\" in relpath or any(p in {"", ".", ".."} for p in parts):
        raise ValueError(f"attachment path must be relative and inside the run folder: {relpath!r}")
    return relpath


class RunLock:
    """An exclusive ``flock`` on ``runs/<id>/.lock``: held by a live run, free once its process is gone.

    The kernel drops a flock when its holder dies (SIGKILL included), so a run whose lock can be
    taken is not running any more: that is how crash recovery tells a dead run from a live one.
    """

    def __init__(self, fd: int, path: Path) -> None:
        self._fd: int | None = fd
        self.path = path

    @classmethod
    def try_acquire(cls, folder: RunFolder) -> RunLock | None:
        """The lock, or None when another live process holds it. ``OSError`` if it cannot be opened."""
        fd = os.open(folder.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except OSError:
            os.close(fd)
            raise
        return cls(fd, folder.lock_path)

    @classmethod
    def acquire(cls, folder: RunFolder) -> RunLock:
        """The lock for a new run; ``EvidenceUnavailable`` if it cannot be created or is held."""
        try:
            lock = cls.try_acquire(folder)
        except OSError as e:
            raise EvidenceUnavailable(f"cannot create {folder.lock_path}: {e.strerror or e}") from e
        if lock is None:
            raise EvidenceUnavailable(f"run folder {folder.root} is in use by another process")
        return lock

    @staticmethod
    def is_held(folder: RunFolder) -> bool | None:
        """Whether a live process holds the run's lock, without creating or changing any file.

        None when there is no lock file (or it cannot be opened). A shared, non-blocking probe that
        is released at once: read-only commands use it to say "interrupted?" and write nothing.
        """
        try:
            fd = os.open(folder.lock_path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return None
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Unlock and close; idempotent. The file stays (removing it would race with a new locker)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            with contextlib.suppress(OSError):
                os.close(fd)
