"""The guard protocol, its Decision, and the chain the step loop walks.

A guard is a small object with a ``name`` and ``check(action, ctx) -> Decision``. It never raises
to deny and never returns None for "no opinion": ``allow`` is an opinion. The chain walks guards in
order (like structlog's processors) and stops at the first deny. A guard that raises is a deny
(fail closed): the chain cannot decide, so the action does not run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from guards.observed import ElementInfo, RequestContext, RequestInfo
    from missions.model import Mission, Step

Verdict = Literal["allow", "deny", "require_approval"]
Phase = Literal["preflight", "run"]


@dataclass(frozen=True)
class Decision:
    guard: str
    verdict: Verdict
    reason: str
    rule: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def allow(cls, guard: str, reason: str, rule: str = "", **details: Any) -> Decision:
        return cls(guard, "allow", reason, rule, details)

    @classmethod
    def deny(cls, guard: str, reason: str, rule: str = "", **details: Any) -> Decision:
        return cls(guard, "deny", reason, rule, details)

    @classmethod
    def require_approval(cls, guard: str, reason: str, rule: str = "", **details: Any) -> Decision:
        return cls(guard, "require_approval", reason, rule, details)


@dataclass(frozen=True)
class ActionRequest:
    """What is about to happen. ``args`` are interpolated: they may hold secrets, never log them raw."""

    step_no: int  # 1-based position in the mission
    kind: str
    step: Step
    args: Mapping[str, Any]
    url: str | None = None  # goto: the interpolated destination
    element: ElementInfo | None = None  # the target, resolved just before acting (None: not resolved)


@dataclass(frozen=True)
class GuardContext:
    mission: Mission
    phase: Phase
    page_url: str | None = None
    steps_executed: int = 0
    elapsed_s: float = 0.0


class Guard(Protocol):
    name: str

    def check(self, action: ActionRequest, ctx: GuardContext) -> Decision: ...


@dataclass(frozen=True)
class ChainResult:
    verdict: Verdict
    decisions: tuple[Decision, ...]

    @property
    def deciding(self) -> Decision:
        """The decision that set the verdict (first deny, else first approval request, else last allow)."""
        for d in self.decisions:
            if d.verdict == self.verdict:
                return d
        return self.decisions[-1]


class GuardChain:
    def __init__(self, guards: Sequence[Guard]) -> None:
        self.guards: tuple[Guard, ...] = tuple(guards)

    def check(self, action: ActionRequest, ctx: GuardContext) -> ChainResult:
        decisions: list[Decision] = []
        for guard in self.guards:
            try:
                decision = guard.check(action, ctx)
            except Exception as exc:  # fail closed: a guard that cannot decide denies
                decision = Decision.deny(
                    getattr(guard, "name", type(guard).__name__),
                    f"guard failed ({type(exc).__name__}); the action is blocked (fail closed)",
                    "guard.error",
                )
            if not isinstance(decision, Decision):
                decision = Decision.deny(guard.name, "guard returned no decision (fail closed)", "guard.error")
            decisions.append(decision)
            if decision.verdict == "deny":
                return ChainResult("deny", tuple(decisions))
        if not decisions:
            return ChainResult("allow", (Decision.allow("chain", "no guard objected"),))
        verdict: Verdict = (
            "require_approval" if any(d.verdict == "require_approval" for d in decisions) else "allow"
        )
        return ChainResult(verdict, tuple(decisions))


class RequestGuard(Protocol):
    """A guard over one outgoing request (the network gate walks these, like ``Guard`` for steps)."""

    name: str

    def check_request(self, request: RequestInfo, ctx: RequestContext) -> Decision: ...
