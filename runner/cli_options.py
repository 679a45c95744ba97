"""Options shared by every ``warden`` command group: where the evidence lives, and crash recovery.

A command that writes the evidence dir anyway (``warden run``, ``warden demo``, ``warden approvals``,
``evidence reindex|report``) first closes the runs whose process died (``evidence.recovery``; signed
when ``WARDEN_SIGNING_KEY`` is at hand) and expires queued approvals whose runner is gone — never
approving them. Read-only commands are marked ``no_recovery`` (``evidence list|show|verify|query|
export``): they change no file; ``warden evidence recover`` is the explicit step. ``warden run``
(``deferred_recovery``) hands its recovery to the run, which does it while Chromium launches and
before its own run folder exists (``recovery_for``, ``RunOptions.recover``).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import click

from kernel.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console

F = TypeVar("F", bound=Callable[..., Any])


class _StderrConsole:
    """The commands' stderr console, built on first use: rich is imported only when something is
    said there (an error, a recovered run), not on `warden run`'s way to the browser's launch."""

    def __init__(self) -> None:
        self._console: Console | None = None
        self._lock = threading.Lock()

    def _get(self) -> Console:
        with self._lock:
            if self._console is None:
                from rich.console import Console

                self._console = Console(stderr=True, highlight=False, soft_wrap=True)  # one problem, one line
            return self._console

    def print(self, *objects: Any, **kwargs: Any) -> None:
        self._get().print(*objects, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)


err = _StderrConsole()


def escape(text: str) -> str:
    """rich's markup escape (rich imported on first use)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def evidence_dir_option(fn: F) -> F:
    """``--evidence-dir``; the command first closes runs whose process died (evidence.recovery).

    Commands marked ``no_recovery`` (the read-only ``evidence`` commands) skip that step.
    """
    if not getattr(fn, "_no_recovery", False):
        fn = _recovering(fn)
    return click.option(
        "--evidence-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=lambda: os.environ.get("WARDEN_EVIDENCE_DIR", "warden-evidence"),
        show_default="./warden-evidence",
        help="Evidence folder (env WARDEN_EVIDENCE_DIR).",
    )(fn)


def no_recovery(fn: F) -> F:
    """Mark a read-only command: it runs no crash recovery and writes nothing (apply below ``evidence_dir_option``)."""
    fn._no_recovery = True  # type: ignore[attr-defined]
    return fn


def deferred_recovery(fn: F) -> F:
    """Mark a command that runs the recovery itself (``recovery_for``), off its critical path
    (apply below ``evidence_dir_option``)."""
    return no_recovery(fn)


def recovery_for(evidence_dir: Path, db_url: str | None, *, quiet: bool) -> Callable[[], None]:
    """The crash recovery ``evidence_dir_option`` would have done first, to be called later (best effort)."""
    return functools.partial(_recover, evidence_dir, db_url, quiet=quiet)


def _recovering(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        evidence_dir = kwargs.get("evidence_dir")
        if isinstance(evidence_dir, Path):
            _recover(evidence_dir, kwargs.get("db_url"), quiet=bool(kwargs.get("quiet")) or bool(kwargs.get("as_json")))
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _recover(evidence_dir: Path, db_url: str | None, *, quiet: bool) -> None:
    """Best effort: a store that cannot be recovered (read-only copy, ...) is said, never fatal."""
    from evidence.recovery import recover_evidence_dir
    from evidence.signing import signer_from_env

    try:  # queued approvals whose runner died or whose expiry passed: expired, never approved
        if _may_have_pending_approvals(evidence_dir, db_url):
            from runner.approvals.store import reap_existing  # the queue's ORM (SQLAlchemy): only when needed

            reap_existing(evidence_dir, db_url)
    except Exception:  # noqa: S110 - best effort, like the recovery below
        pass

    try:
        signer = signer_from_env(os.environ)  # a recovered run is signed when its key is at hand
    except Exception:
        signer = None  # an unusable key: the run that needs it says so (exit 5); recovery leaves it unsigned
    try:
        results = recover_evidence_dir(evidence_dir, db_url, signer=signer)
    except Exception as exc:
        if not quiet:
            err.print(
                f"[yellow]warning:[/] crash recovery of {escape(str(evidence_dir))} failed ({type(exc).__name__})"
            )
        return
    for r in results:
        if quiet or (r.action == "skipped" and not r.problems):
            continue
        if r.action == "closed":
            err.print(f"[yellow]recovered[/] run {escape(r.run_id)}: its process died; marked interrupted")
        elif r.problems:
            err.print(f"[yellow]warning:[/] run {escape(r.run_id)} not recovered: {escape('; '.join(r.problems))}")


def _may_have_pending_approvals(evidence_dir: Path, db_url: str | None) -> bool:
    """False only when the default SQLite index provably holds no pending approval (no file, no
    ``approvals`` table, or no row of it ``pending``): the reap, which touches only pending rows,
    would change nothing. Any other store, or any doubt (an error reading it), is True."""
    if db_url is not None:
        return True
    path = evidence_dir / "warden.db"
    if not path.is_file():
        return False
    import sqlite3

    try:
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=15)
        try:
            table = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'approvals'")
            if table.fetchone() is None:
                return False
            return conn.execute("SELECT 1 FROM approvals WHERE status = 'pending' LIMIT 1").fetchone() is not None
        finally:
            conn.close()
    except sqlite3.Error:
        return True


def db_option(fn: F) -> F:
    return click.option("--db", "db_url", default=None, help="SQLAlchemy URL of the index (default DIR/warden.db).")(fn)


def parse_vars(pairs: tuple[str, ...]) -> dict[str, str]:
    """``--var KEY=VALUE`` pairs (KEY a name), as a mapping."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise UsageError(f"--var expects KEY=VALUE with KEY a name, got {pair.split('=')[0]!r}")
        out[key] = value
    return out


def approval_mode(value: str | None) -> Literal["prompt", "deny", "queue"] | None:
    """``--approval``: None lets the run choose (prompt when /dev/tty can be opened, else deny)."""
    if value is None:
        return None
    if value not in ("prompt", "deny", "queue"):
        raise UsageError(f"--approval must be prompt, deny or queue, not {value!r}")
    return cast(Literal["prompt", "deny", "queue"], value)


def reporter(quiet: bool, as_json: bool) -> Any:
    """The run's progress reporter: JSON lines, nothing, or the rich terminal view."""
    from runner.progress import JsonReporter, QuietReporter, RichReporter

    if as_json:
        return JsonReporter()
    if quiet:
        return QuietReporter()
    return RichReporter()
