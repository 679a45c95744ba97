"""What the person (or script) watching a run sees: rich progress, one JSON event per line, or quiet.

Every string shown goes through the run's redactor first: the terminal is written by Warden too,
so it obeys the same rule as the evidence (no PII, no secrets in clear).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol, TextIO

from rich.console import Console
from rich.markup import escape

Redact = Callable[[str], str]


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

    def event(self, name: str, **fields: Any) -> None:
        clean = {k: self.redact(v) if isinstance(v, str) else v for k, v in fields.items()}
        line = json.dumps({"event": name, "t": round(time.time(), 6), **clean}, ensure_ascii=False)
        self.stream.write(line + "\n")
        self.stream.flush()


_OUTCOME_STYLE = {"ok": "green", "failed": "red", "blocked": "red", "retry": "yellow"}


class RichReporter:
    """The default: a line per step (n/N, action, target, outcome, duration) and a closing summary."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False, width=None if sys.stdout.isatty() else 120)
        self.redact: Redact = _identity
        self.total = 0

    def _p(self, text: str) -> str:
        return escape(self.redact(text))

    def event(self, name: str, **f: Any) -> None:
        c = self.console
        if name == "run_started":
            self.total = int(f.get("steps", 0))
            c.print(
                f"[bold]warden[/] run [cyan]{self._p(f['run_id'])}[/] — mission "
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
            c.print(f"evidence: [bold]{self._p(str(f['evidence']))}[/]", soft_wrap=True)
