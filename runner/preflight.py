"""Before anything runs: every step through the guard chain, then the risk decision (SPEC §2, §4).

Both are mission problems: a step the chain refuses, a PII policy that cannot apply, or a risk
decision of ``deny`` raise ``MissionInvalid`` (exit 2), with nothing executed and nothing written.
``warden check`` and ``warden run`` call the same two functions, so they agree.
"""

from __future__ import annotations

from guards.base import ActionRequest, GuardContext
from kernel.errors import MissionInvalid, Problem
from missions.interpolate import InterpolationError, interpolate
from missions.loader import LoadedMission
from runner.assembly import build_preflight_chain


def preflight(loaded: LoadedMission) -> None:
    """Walk the guard chain over every step before anything runs; a deny is a mission problem (exit 2)."""
    chain = build_preflight_chain(loaded)
    mission = loaded.mission
    problems: list[Problem] = []
    for i, step in enumerate(mission.steps):
        url: str | None = None
        if step.kind == "goto" and step.goto is not None:
            try:
                url = interpolate(step.goto.url, loaded.cli_vars, loaded.secret_values).value
            except InterpolationError:
                url = None  # built from a variable extracted at run time: checked then
        action = ActionRequest(step_no=i + 1, kind=step.kind, step=step, args={}, url=url)
        result = chain.check(action, GuardContext(mission, "preflight"))
        if result.verdict == "deny":
            path = f"steps.{i}.{step.kind}"
            problems.append(
                Problem(
                    str(loaded.path),
                    loaded.line_of(path),
                    path,
                    f"step {i + 1} refused before the run: {result.deciding.reason}",
                )
            )
    from guards.pii.engine import policy_problems  # static: does not import Presidio (`warden check` too)

    pii = mission.pii
    for path, message in policy_problems(pii.entities, pii.allow, pii.nlp_model):
        problems.append(Problem(str(loaded.path), loaded.line_of(path), path, message))
    if problems:
        raise MissionInvalid(problems)


def refuse_denied_risk(loaded: LoadedMission) -> None:
    """A mission whose risk decision is ``deny`` (guards/risk.py, docs/risk.md) never runs: exit 2."""
    from guards.risk import assess

    risk = assess(loaded.mission)
    if risk.decision == "deny":
        raise MissionInvalid(
            [Problem(str(loaded.path), None, "", f"risk decision is deny (score {risk.score}): {why}")
             for why in risk.reasons]
        )
