"""Errors Warden raises, and the exit code each one means.

Hierarchy (exit code of ``warden run`` in brackets)::

    WardenError                     base; never shown as a traceback
    ├── UserError              [2]  bad input: nothing was executed
    │   ├── MissionInvalid     [2]  schema / YAML problems, each with file:line and key path
    │   └── UsageError         [2]  bad command-line use (unknown run id, bad --var, ...)
    ├── GuardrailStop          [3]  a guard refused an action, or a limit was hit
    ├── StepFailed             [4]  a step failed after its retries (element missing, timeout, assertion)
    ├── EvidenceUnavailable    [5]  evidence could not be written: the run stops before the next action
    ├── SandboxUnavailable     [3]  a sandbox layer could not be installed (proxy set, no Chromium...):
    │                               the run refuses to start (fail closed), nothing executed
    └── Interrupted          [130]  Ctrl-C / SIGTERM; evidence closed cleanly

Guards never raise to deny: they return a ``Decision``. The step loop turns a deny into
``GuardrailStop``. Messages must never contain PII or secret values: they go through the
evidence writer's redactor before being written or printed.
"""

from __future__ import annotations

from dataclasses import dataclass


class WardenError(Exception):
    """Base of every error Warden reports to a user."""

    exit_code: int = 1


class UserError(WardenError):
    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One problem in a mission file, located as precisely as the YAML allows."""

    file: str
    line: int | None
    path: str  # dotted key path, e.g. "steps.3.click.selector"; "" for the whole document
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        key = f" [{self.path}]" if self.path else ""
        return f"{where}:{key} {self.message}"


class MissionInvalid(UserError):
    """The mission cannot run; ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) in mission")


class UsageError(UserError):
    pass


class GuardrailStop(WardenError):
    exit_code = 3

    def __init__(self, message: str, *, guard: str = "", rule: str = "") -> None:
        super().__init__(message)
        self.guard = guard
        self.rule = rule


class StepFailed(WardenError):
    exit_code = 4


class EvidenceUnavailable(WardenError):
    exit_code = 5


class SandboxUnavailable(WardenError):
    exit_code = 3


class Interrupted(WardenError):
    exit_code = 130
