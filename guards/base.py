"""The guard protocols, their Decision, and the one loop that walks a chain of guards.

A guard is a small object with a ``name`` and ``check(action, ctx) -> Decision`` (a step guard) or
``check_request(request, ctx) -> Decision`` (a request guard). It never raises to deny, never
writes evidence and never returns None for "no opinion": ``allow`` is an opinion. What a guard
found (PII in a typed value or a request body) travels back on the decision as ``findings``; the
runner turns decisions and findings into records.

``walk`` is the one loop (like structlog's processors): it asks each guard in order, stops at the
first refusal, and treats a guard that raises or returns something else as a deny (fail closed).
Steps and requests differ in one point only, stated in ``StepChain`` / ``RequestChain``: a step
may wait for a human (``require_approval`` goes on to the next guard and the chain asks for the
approval), a request cannot (the browser's route cannot be held), so ``require_approval`` refuses
it. An empty chain is a construction error, never allow-all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

if TYPE_CHECKING:
    from guards.observed import ElementInfo, RequestContext, RequestInfo
    from guards.pii.finding import Finding
    from missions.model import Mission, Step

Verdict = Literal["allow", "deny", "require_approval"]
Phase = Literal["preflight", "run"]
FindingAction = Literal["recorded", "approval_required", "blocked", "allowed"]


@dataclass(frozen=True)
class Observation:
    """One PII finding a guard made, with what the policy did about it: the runner records it.

    ``finding.value`` lives in memory only (the record holds its keyed HMAC and a masked preview).
    ``dedupe`` names the occasion, so a value seen again on the same occasion is recorded once.
    """

    finding: Finding
    where: Literal["page", "input", "request"]
    policy: Literal["record", "approve", "block"]
    action: FindingAction
    location: Mapping[str, Any] = field(default_factory=dict)
    dedupe: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Decision:
    guard: str
    verdict: Verdict
    reason: str
    rule: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)
    findings: tuple[Observation, ...] = ()  # what the guard found (the runner records it)
    failure: str = ""  # the guard could not decide (a scan error): the runner records an exception
    learn: tuple[str, ...] = field(default=(), repr=False)  # typed text the run's redactor must know

    @property
    def stops_run(self) -> bool:
        """A refusal that also ends the run (a PII or secret leak attempt, a scan that failed)."""
        return self.verdict == "deny" and bool(self.details.get("stop"))

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
    def findings(self) -> tuple[Observation, ...]:
        return tuple(o for d in self.decisions for o in d.findings)

    @property
    def deciding(self) -> Decision:
        """The decision that set the verdict (first deny, else first approval request, else last allow)."""
        for d in self.decisions:
            if d.verdict == self.verdict:
                return d
        return self.decisions[-1]


G = TypeVar("G")
Observer = Callable[[Decision, "int | None"], None]  # (decision, step): the runner records what was found


def walk(guards: Sequence[G], ask: Callable[[G], Decision], *, waits: bool) -> ChainResult:
    """Ask each guard in order; the first deny ends the walk. ``waits``: whether a
    ``require_approval`` can be honoured (a step) or must refuse (a request). Fail closed: a
    guard that raises or returns no ``Decision`` denies."""
    decisions: list[Decision] = []
    for guard in guards:
        name = str(getattr(guard, "name", type(guard).__name__))
        try:
            decision = ask(guard)
        except Exception as exc:  # fail closed: a guard that cannot decide denies
            decision = Decision.deny(name, f"guard failed ({type(exc).__name__}); blocked (fail closed)", "guard.error")
        if not isinstance(decision, Decision):
            decision = Decision.deny(name, "guard returned no decision (fail closed)", "guard.error")
        decisions.append(decision)
        if decision.verdict == "deny" or (decision.verdict == "require_approval" and not waits):
            return ChainResult("deny", tuple(decisions))
    verdict: Verdict = "require_approval" if any(d.verdict == "require_approval" for d in decisions) else "allow"
    return ChainResult(verdict, tuple(decisions))


class _Chain(Generic[G]):
    def __init__(self, guards: Sequence[G], observe: Observer | None = None) -> None:
        if not guards:
            raise ValueError(f"{type(self).__name__} needs at least one guard (an empty chain would allow all)")
        self.guards: tuple[G, ...] = tuple(guards)
        self._observe = observe

    def _seen(self, result: ChainResult, step: int | None) -> ChainResult:
        """Hand each decision that found something to the observer (the runner records it); its errors
        propagate (evidence that cannot be written stops the run)."""
        if self._observe is not None:
            for d in result.decisions:
                if d.findings or d.failure or d.learn:
                    self._observe(d, step)
        return result


class StepChain(_Chain["Guard"]):
    """The chain every action walks; ``require_approval`` goes on (the approval is asked after)."""

    def check(self, action: ActionRequest, ctx: GuardContext) -> ChainResult:
        return self._seen(walk(self.guards, lambda g: g.check(action, ctx), waits=True), action.step_no)


class RequestChain(_Chain["RequestGuard"]):
    """The chain every routed request walks; ``require_approval`` refuses (a request cannot wait)."""

    def check(self, request: RequestInfo, ctx: RequestContext) -> ChainResult:
        return self._seen(walk(self.guards, lambda g: g.check_request(request, ctx), waits=False), ctx.step)



class RequestGuard(Protocol):
    """A guard over one outgoing request (the network gate walks these, like ``Guard`` for steps)."""

    name: str

    def check_request(self, request: RequestInfo, ctx: RequestContext) -> Decision: ...
