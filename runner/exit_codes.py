"""Warden's exit codes: one meaning per code, whatever the command (SPEC §3 mirrors this module).

``MEANINGS`` says what each code means; ``COMMAND_CODES`` which codes each command exits with by
design. Any command also exits 1 on an internal error (a bug, said as such; ``WARDEN_DEBUG=1``
shows the traceback). ``tests/runner/test_exit_codes.py`` checks SPEC §3's two tables against
these mappings, ``kernel.errors`` against ``ExitCode``, and each code of ``check``, ``run`` and
``evidence verify`` against what the command really does.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    NEGATIVE = 1  # the command ran and its answer is no (evidence not intact, approval not pending), or a bug
    INVALID = 2  # the input must change (mission, command line): nothing executed
    GUARDRAIL = 3  # a guardrail stopped or refused the work
    STEP_FAILED = 4
    EVIDENCE_UNAVAILABLE = 5
    INTERRUPTED = 130


MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "success: the run completed every step, the mission is valid and may run, the evidence is "
    "intact, the answer was recorded",
    ExitCode.NEGATIVE: "the command ran and its answer is no: the evidence is not intact (altered, removed, "
    "reordered or added; a folder the index cannot take; a dead run that cannot be closed), or the approval is "
    "no longer pending; also any command's internal error (a bug, said as such)",
    ExitCode.INVALID: "invalid mission or usage, nothing executed: YAML or schema problems, a step refused before "
    "the run (action not allowed, goto outside the allowlist), a risk decision of deny, bad command-line use "
    "(unknown run id, bad --var)",
    ExitCode.GUARDRAIL: "stopped or refused by a guardrail: approval denied or expired, PII or secret block, "
    "allowlist refusal of a step, action not allowed, step limit, run timeout, a sandbox layer that cannot be "
    "installed (the run refuses to start), an approver the mission's policy refuses",
    ExitCode.STEP_FAILED: "a step failed (element not found, timeout, assertion) after its retries",
    ExitCode.EVIDENCE_UNAVAILABLE: "evidence could not be written: the run stopped before the next action "
    "(fail closed)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C, or SIGTERM during a run); a run's evidence is closed cleanly",
}

_OK, _NO, _INVALID, _STOP, _FAILED, _EVIDENCE, _INT = ExitCode

COMMAND_CODES: dict[str, tuple[ExitCode, ...]] = {
    "run": (_OK, _INVALID, _STOP, _FAILED, _EVIDENCE, _INT),
    "demo": (_OK, _NO, _INVALID, _STOP, _FAILED, _EVIDENCE, _INT),  # 1: the demo's evidence did not verify
    "check": (_OK, _INVALID, _INT),
    "approvals list/show": (_OK, _INVALID, _INT),
    "approvals approve": (_OK, _NO, _INVALID, _STOP, _INT),
    "approvals deny": (_OK, _NO, _INVALID, _INT),
    "evidence verify": (_OK, _NO, _INVALID, _INT),
    "evidence reindex/recover": (_OK, _NO, _INVALID, _INT),  # 1: a folder failed, or a run could not be closed
    "evidence list/show/query/export/report/attest/keygen": (_OK, _INVALID, _INT),
    "mcp": (_OK, _INVALID, _STOP, _EVIDENCE, _INT),  # a refused or failed call is an error result, not an exit
    "submit": (_OK, _INVALID, _INT),  # 2: the mission is refused (never queued), or the --db is unusable
    "worker": (_OK, _INVALID, _INT),  # 130: stopped by SIGTERM/SIGINT once its runs closed
    "jobs list/show": (_OK, _INVALID, _INT),
    "jobs cancel": (_OK, _NO, _INVALID, _INT),  # 1: the job had already finished
}
