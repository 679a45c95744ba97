"""Least privilege: the mission may use only the action kinds, domains, steps and time it declared.

These are the first members of the guard chain. They run twice: before the run (``preflight``,
so a mission that would be refused never starts) and again just before each action (``run``),
because what was checked before the run can change (variables extracted from a page).
"""

from __future__ import annotations

from guards.base import ActionRequest, Decision, GuardContext
from guards.urlmatch import DomainPolicy


class ActionKindAllowed:
    name = "least_privilege.actions"

    def check(self, action: ActionRequest, ctx: GuardContext) -> Decision:
        allowed = ctx.mission.boundaries.allowed_actions
        if action.kind in allowed:
            return Decision.allow(self.name, f"'{action.kind}' is in allowed_actions", "boundaries.allowed_actions")
        return Decision.deny(
            self.name,
            f"'{action.kind}' is not in boundaries.allowed_actions ({', '.join(allowed)})",
            "boundaries.allowed_actions",
        )


class StepLimit:
    name = "least_privilege.max_steps"

    def check(self, action: ActionRequest, ctx: GuardContext) -> Decision:
        limit = ctx.mission.boundaries.max_steps
        if ctx.phase == "preflight" or ctx.steps_executed < limit:
            return Decision.allow(self.name, f"{ctx.steps_executed} of {limit} steps used", "boundaries.max_steps")
        return Decision.deny(
            self.name, f"step limit reached: {ctx.steps_executed} of {limit} executed", "boundaries.max_steps"
        )


class RunDeadline:
    name = "least_privilege.timeout"

    def check(self, action: ActionRequest, ctx: GuardContext) -> Decision:
        budget = ctx.mission.boundaries.timeout
        if ctx.elapsed_s < budget:
            return Decision.allow(self.name, f"{ctx.elapsed_s:.1f}s of {budget:g}s used", "boundaries.timeout")
        return Decision.deny(
            self.name, f"run timeout reached: {ctx.elapsed_s:.1f}s of {budget:g}s", "boundaries.timeout"
        )


class NavigationAllowlist:
    """A ``goto`` must lead to an allowed domain. In-browser enforcement covers everything else."""

    name = "boundaries.navigation"

    def __init__(self, policy: DomainPolicy) -> None:
        self.policy = policy

    def check(self, action: ActionRequest, ctx: GuardContext) -> Decision:
        if action.kind != "goto":
            return Decision.allow(self.name, "not a navigation", "boundaries.allowed_domains")
        if action.url is None:
            # Preflight with a URL built from a variable known only at run time: decided then.
            return Decision.allow(self.name, "destination known at run time; checked then", "deferred")
        verdict = self.policy.check_navigation(action.url, first_page=False)
        host = verdict.host or "?"
        if verdict.allowed:
            return Decision.allow(self.name, verdict.reason, verdict.rule, host=host, request_kind="navigation")
        return Decision.deny(self.name, verdict.reason, verdict.rule, host=host, request_kind="navigation")


def least_privilege_guards(
    policy: DomainPolicy,
) -> list[ActionKindAllowed | StepLimit | RunDeadline | NavigationAllowlist]:
    return [ActionKindAllowed(), StepLimit(), RunDeadline(), NavigationAllowlist(policy)]
