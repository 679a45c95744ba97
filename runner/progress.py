"""What the person (or script) watching a run sees: rich progress, one JSON event per line, or quiet.

Every string shown goes through the run's redactor first: the terminal is written by Warden too,
so it obeys the same rule as the evidence (no PII, no secrets in clear).

Warden's own identifiers are never masked (a run id whose random suffix is all digits is not a
phone number): the fields that *are* Warden ids or paths by name (``WARDEN_FIELDS``: ``run_id``,
``approval_id``, ``evidence``, ``report``...) are shown verbatim, and their values are remembered as
never-redact values, so the same id or path quoted inside any other text (``verify``, a message)
is kept verbatim too while everything around it is redacted (``evidence.redact.redact_around``).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from evidence.redact import MIN_PROTECTED_LEN, redact_around

if TYPE_CHECKING:
    from rich.console import Console

Redact = Callable[[str], str]

WARDEN_FIELDS = frozenset({"run_id", "approval_id", "record_id", "evidence", "report", "folder"})
"""Event fields that hold Warden's own ids and paths: shown verbatim, never redacted."""


class _Shield:
    """Warden's ids and paths seen in events (``WARDEN_FIELDS``): kept verbatim wherever they recur."""

    def __init__(self) -> None:
        self.values: set[str] = set()

    def learn(self, name: str, value: Any) -> bool:
        """Remember ``value`` if ``name`` is a Warden field; True when it is (show it verbatim)."""
        if name not in WARDEN_FIELDS or not isinstance(value, str):
            return False
        for v in (value, *_run_dir_parents(value)):
            if len(v) >= MIN_PROTECTED_LEN:
                self.values.add(v)
        return True

    def redact(self, redact: Redact, text: str) -> str:
        return redact_around(text, redact, self.values) if self.values else redact(text)


def _run_dir_parents(path: str) -> list[str]:
    """A run folder ``DIR/runs/<run id>`` also names the evidence dir ``DIR`` (``--evidence-dir DIR``)."""
    p = PurePath(path)
    return [str(p.parent.parent)] if p.parent.name == "runs" and str(p.parent.parent) not in ("", ".", "/") else []


def _identity(text: str) -> str:
    return text


class Reporter(Protocol):
    redact: Redact

    def event(self, name: str, **fields: Any) -> None: ...


class QuietReporter:
    """--quiet: nothing on stdout; the exit code and the evidence speak."""

    def __init__(self) -> None:
        self.redact: Redact = _identity

    def event(self, name: str, **fields: Any) -> None:
        return None


class JsonReporter:
    """--json: one JSON object per event on stdout, each with ``event`` and ``t`` (epoch seconds)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.redact: Redact = _identity
        self._shield = _Shield()

    def event(self, name: str, **fields: Any) -> None:
        own = {k for k, v in fields.items() if self._shield.learn(k, v)}
        clean = {
            k: self._shield.redact(self.redact, v) if isinstance(v, str) and k not in own else v
            for k, v in fields.items()
        }
        line = json.dumps({"event": name, "t": round(time.time(), 6), **clean}, ensure_ascii=False)
        self.stream.write(line + "\n")
        self.stream.flush()


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


_OUTCOME_STYLE = {"ok": "green", "failed": "red", "blocked": "red", "retry": "yellow"}


class RichReporter:
    """The default: a line per step (n/N, action, target, outcome, duration) and a closing summary.

    Its console (and rich) is built on first use, or by ``warm_up`` (the run calls it in the thread
    that builds the PII engine while Chromium launches): rich is not imported before the launch."""

    def __init__(self, console: Console | None = None) -> None:
        self._console = console
        self.redact: Redact = _identity
        self.total = 0
        self._shield = _Shield()

    @property
    def console(self) -> Console:
        if self._console is None:
            self.warm_up()
        assert self._console is not None
        return self._console

    def warm_up(self) -> None:
        """Import rich and build the console now (idempotent)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)

    def _p(self, text: str) -> str:
        return _escape(self._shield.redact(self.redact, text))

    def _own(self, text: str) -> str:
        """A Warden id or path (``WARDEN_FIELDS``): verbatim, only markup-escaped."""
        return _escape(text)

    def event(self, name: str, **f: Any) -> None:
        c = self.console
        own = {k for k, v in f.items() if self._shield.learn(k, v)}

        def p(key: str) -> str:
            value = str(f.get(key, ""))
            return self._own(value) if key in own else self._p(value)

        if name == "run_started":
            self.total = int(f.get("steps", 0))
            c.print(
                f"[bold]warden[/] run [cyan]{p('run_id')}[/] — mission "
                f"[bold]{self._p(f['mission'])}[/] v{self._p(str(f['version']))}, {self.total} steps"
            )
        elif name == "step_finished":
            style = _OUTCOME_STYLE.get(str(f["outcome"]), "white")
            retries = f" after {f['retries']} retries" if f.get("retries") else ""
            target = self._p(str(f.get("target", "")))
            target = target if len(target) <= 50 else target[:49] + "…"
            c.print(
                f"  [dim]{f['step']:>3}/{self.total}[/] {f['kind']:<11} {target:<50} "
                f"[{style}]{f['outcome']}[/] [dim]{f['duration_ms']:.0f} ms{retries}[/]"
            )
        elif name == "retry":
            c.print(f"  [yellow]    retry {f['attempt']} of step {f['step']}: {self._p(str(f['error']))}[/]")
        elif name == "decision" and f.get("decision") != "allow":
            c.print(f"  [red]    {f['decision']}[/] by {self._p(str(f['guard']))}: {self._p(str(f['reason']))}")
        elif name == "demo_finished":
            c.print(self._p(str(f["verdict"])), soft_wrap=True)
            c.print(f"check it yourself: [bold]{self._p(str(f['verify']))}[/]", soft_wrap=True)
        elif name == "warning":
            c.print(f"  [yellow]warning:[/] {self._p(str(f['message']))}")
        elif name == "run_finished":
            ok = f["exit_code"] == 0
            style = "green" if ok else "red"
            outcome, detail = self._p(str(f["outcome"])), self._p(str(f.get("message", "")))
            # soft_wrap: never break these lines (a wrapped path cannot be copied from a CI log)
            c.print(f"[{style}]{outcome}[/] (exit {f['exit_code']}): {detail}", soft_wrap=True)
            c.print(f"evidence: [bold]{p('evidence')}[/]", soft_wrap=True)
