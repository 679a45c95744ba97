"""Assembling a run's guards from its mission: one function per concern, in chain order.

``run.py`` calls these in order: the redactor first (the writer needs it), then — once the
evidence writer and its recorder exist — the step guards, the request gate and the approval gate.
Adding a guard means adding it here; the step loop and the run do not change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from evidence.redact import RedactorChain, SecretRedactor
from guards.base import Guard, GuardChain
from guards.least_privilege import least_privilege_guards
from guards.urlmatch import DomainPolicy
from runner.mission.loader import LoadedMission

if TYPE_CHECKING:
    from runner.browser.driver import RequestGate
    from runner.recorder import RunRecorder
    from runner.steps import ApprovalGate


@dataclass
class RunServices:
    """What the step loop needs beyond the driver: filled in by the ``build_*`` functions below."""

    policy: DomainPolicy
    redactor: RedactorChain
    chain: GuardChain = field(default_factory=lambda: GuardChain([]))
    request_gate: RequestGate | None = None
    approvals: ApprovalGate | None = None


def domain_policy(loaded: LoadedMission) -> DomainPolicy:
    b = loaded.mission.boundaries
    return DomainPolicy(b.allowed_domains, b.allowed_resource_domains, allow_http=b.allow_http)


def build_redactor(loaded: LoadedMission, environ: Mapping[str, str]) -> RedactorChain:
    """The writer's one choke point: secrets first (exact values), then anything detected as PII."""
    return RedactorChain([SecretRedactor(loaded.secret_values)])


def build_step_guards(loaded: LoadedMission, services: RunServices) -> list[Guard]:
    """The chain every step walks, in order: least privilege first."""
    guards: list[Guard] = list(least_privilege_guards(services.policy))
    return guards


def build_preflight_chain(loaded: LoadedMission) -> GuardChain:
    """The chain walked over every step before the run (nothing is running yet: no page, no recorder)."""
    return GuardChain(least_privilege_guards(domain_policy(loaded)))


def build_request_gate(loaded: LoadedMission, services: RunServices, recorder: RunRecorder) -> RequestGate | None:
    """The in-browser gate every routed request passes (None: the resolver allowlist alone)."""
    return None


def build_approval_gate(loaded: LoadedMission, services: RunServices, recorder: RunRecorder) -> ApprovalGate | None:
    """Who answers approval requests (None: every request is denied and recorded)."""
    return None


def assemble(loaded: LoadedMission, environ: Mapping[str, str]) -> RunServices:
    """The parts that must exist before the evidence writer (policy, redactor)."""
    return RunServices(policy=domain_policy(loaded), redactor=build_redactor(loaded, environ))


def complete(loaded: LoadedMission, services: RunServices, recorder: RunRecorder) -> RunServices:
    """The parts that write records: built once the writer and recorder exist."""
    services.chain = GuardChain(build_step_guards(loaded, services))
    services.request_gate = build_request_gate(loaded, services, recorder)
    services.approvals = build_approval_gate(loaded, services, recorder)
    return services
