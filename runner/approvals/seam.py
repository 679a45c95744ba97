"""What the step loop knows of approvals: the ``Approvals`` protocol, its context, and how it says no.

The step loop (``runner/steps.py``) asks an ``Approvals`` for each ``require_approval`` verdict
and for the targets the danger zones need; ``HumanApprovals`` (``runner/approvals/human.py``)
asks a person through a channel and records the answer. ``NoApprovals`` is what runs where no
channel exists: it resolves nothing and refuses every approval, so nothing gated ever executes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from evidence.records import Attachment
from guards.base import ActionRequest, ChainResult
from guards.observed import ElementInfo
from missions.model import Step
from runner.browser.driver import Driver


class ApprovalNotGranted(Exception):
    """The action was not approved (denied, expired, void too often, reused): exit 3."""

    def __init__(self, message: str, rule: str = "approval") -> None:
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True)
class ApprovalContext:
    """What ``Approvals.approve`` gets for one ``require_approval`` verdict."""

    driver: Driver
    action: ActionRequest  # .element: the target resolved before the chain ran
    result: ChainResult
    page_url: str
    timeout_s: float  # for re-resolving the target
    total_steps: int
    shoot: Callable[[str, Sequence[str]], list[Attachment]]  # (when, CSS selectors to outline) -> screenshot


class Approvals(Protocol):
    """Resolves the targets the danger zones judge, and turns a ``require_approval`` into a yes or a stop."""

    def needs_target(self, kind: str, step: Step) -> bool:
        """Must the element this step will hit be resolved before the guard chain runs?"""
        ...

    def resolve(self, driver: Driver, kind: str, args: Mapping[str, Any], timeout_s: float) -> ElementInfo | None:
        """The element the action will hit (``Driver.resolve``), or None when none is needed."""
        ...

    def approve(self, ctx: ApprovalContext) -> None:
        """Return when approved and bound to this exact action; raise ``ApprovalNotGranted`` otherwise."""
        ...


class NoApprovals:
    """Refuses every approval and resolves no target: used where no approval channel exists."""

    def needs_target(self, kind: str, step: Step) -> bool:
        return False

    def resolve(self, driver: Driver, kind: str, args: Mapping[str, Any], timeout_s: float) -> ElementInfo | None:
        return None

    def approve(self, ctx: ApprovalContext) -> None:
        raise ApprovalNotGranted("no approval channel is configured: every approval request is denied")
