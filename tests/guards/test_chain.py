"""The one loop that walks guards: fail closed, first deny wins, and the one difference between steps and requests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from guards.base import ActionRequest, Decision, GuardContext, Observation, RequestChain, StepChain, walk
from guards.observed import RequestContext, RequestInfo
from guards.pii.finding import Finding
from missions.model import Mission

MISSION = Mission.model_validate({
    "mission": "chain", "version": 1, "boundaries": {"allowed_domains": ["a.example"], "allowed_actions": ["goto"]},
    "steps": [{"goto": "https://a.example/"}],
})
ACTION = ActionRequest(step_no=3, kind="goto", step=MISSION.steps[0], args={"url": "https://a.example/"})
CTX = GuardContext(mission=MISSION, phase="run")
REQUEST = RequestInfo("https://a.example/x", "POST", "subresource", "fetch", False, "https://a.example/")
RCTX = RequestContext(step=4, page_url="https://a.example/")


@dataclass
class Fixed:
    """A guard that answers what it is told to (or raises, or returns garbage) and counts its calls."""

    name: str
    answer: Any
    calls: int = 0

    def _answer(self) -> Any:
        self.calls += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def check(self, action: ActionRequest, ctx: GuardContext) -> Decision:
        return self._answer()  # type: ignore[no-any-return]

    def check_request(self, request: RequestInfo, ctx: RequestContext) -> Decision:
        return self._answer()  # type: ignore[no-any-return]


def allow(name: str = "a") -> Fixed:
    return Fixed(name, Decision.allow(name, "fine"))


def test_empty_chains_are_construction_errors() -> None:
    with pytest.raises(ValueError, match="at least one guard"):
        StepChain([])
    with pytest.raises(ValueError, match="at least one guard"):
        RequestChain([])


@pytest.mark.parametrize("bad", [RuntimeError("boom"), None, "allow", {"verdict": "allow"}])
@pytest.mark.parametrize("chain_kind", ["step", "request"])
def test_a_guard_that_raises_or_returns_no_decision_denies(bad: Any, chain_kind: str) -> None:
    later = allow("later")
    guards = [allow("first"), Fixed("broken", bad), later]
    result = (
        StepChain(guards).check(ACTION, CTX) if chain_kind == "step" else RequestChain(guards).check(REQUEST, RCTX)
    )
    assert result.verdict == "deny"
    assert result.deciding.guard == "broken" and result.deciding.rule == "guard.error"
    assert later.calls == 0  # the walk stopped at the refusal


def test_first_deny_wins_and_later_guards_are_not_asked() -> None:
    later = allow("later")
    result = StepChain([allow(), Fixed("no", Decision.deny("no", "refused", "r.x")), later]).check(ACTION, CTX)
    assert (result.verdict, result.deciding.guard, result.deciding.rule) == ("deny", "no", "r.x")
    assert later.calls == 0


def test_all_allow_is_allow_and_every_guard_was_asked() -> None:
    guards = [allow("a"), allow("b"), allow("c")]
    result = StepChain(guards).check(ACTION, CTX)
    assert result.verdict == "allow" and [g.calls for g in guards] == [1, 1, 1]
    assert [d.guard for d in result.decisions] == ["a", "b", "c"]


def test_require_approval_waits_for_a_step_but_refuses_a_request() -> None:
    """The single difference between the two chains: a request cannot be held for a human."""
    ask = Decision.require_approval("zone", "needs a human", "danger_zones.x")
    after = allow("after")
    step = StepChain([Fixed("zone", ask), after]).check(ACTION, CTX)
    assert step.verdict == "require_approval" and step.deciding.guard == "zone" and after.calls == 1
    after.calls = 0
    request = RequestChain([Fixed("zone", ask), after]).check(REQUEST, RCTX)
    assert request.verdict == "deny" and request.deciding.guard == "zone" and after.calls == 0
    assert walk([Fixed("zone", ask)], lambda g: g.check(ACTION, CTX), waits=True).verdict == "require_approval"


def test_findings_go_to_the_observer_with_the_step_number_and_never_through_the_guard() -> None:
    finding = Finding("EMAIL_ADDRESS", 1.0, 0, 5, "a@b.c", "h" * 64, "a***", "input")
    seen = Observation(finding, "input", "record", "recorded")
    found = Decision("pii.input", "allow", "PII recorded", "pii.on_input", findings=(seen,), learn=("typed",))
    observed: list[tuple[Decision, int | None]] = []
    result = StepChain([allow(), Fixed("pii.input", found)], observe=lambda d, s: observed.append((d, s))).check(
        ACTION, CTX
    )
    assert result.verdict == "allow" and result.findings == (seen,)
    assert observed == [(found, 3)]  # only the decision that found something; the step's number
    observed.clear()
    RequestChain([Fixed("pii.request", found)], observe=lambda d, s: observed.append((d, s))).check(REQUEST, RCTX)
    assert observed == [(found, 4)]


def test_an_observer_that_cannot_record_stops_the_walk_loudly() -> None:
    """Evidence that cannot be written is not a deny to swallow: it propagates (the run stops, exit 5)."""
    finding = Finding("EMAIL_ADDRESS", 1.0, 0, 5, "a@b.c", "h" * 64, "a***", "input")
    found = Decision("pii.input", "allow", "", findings=(Observation(finding, "input", "record", "recorded"),))

    def broken(decision: Decision, step: int | None) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        StepChain([Fixed("pii.input", found)], observe=broken).check(ACTION, CTX)


def test_stops_run_only_for_a_deny_that_asks_for_it() -> None:
    assert Decision.deny("secrets.request", "leak", "r", stop=True).stops_run
    assert not Decision.deny("boundaries", "outside", "r").stops_run
    assert not Decision.allow("x", "ok", "r", stop=True).stops_run
