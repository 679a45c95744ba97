"""The contract between ``HumanApprovals`` (which asks and records) and a channel (which gets an answer).

``HumanApprovals`` builds an ``ApprovalAsk`` bound to one action (``action_digest``), persists the
``approval_request`` record, then calls ``channel.ask``. A channel returns an ``ApprovalAnswer``
and never raises to deny: EOF, Ctrl-C, timeouts and errors are ``denied`` or ``expired`` answers.
``eligible`` lets the channel refuse an approver the mission's policy does not accept (not in
``approvals.approvers``, or the initiator under ``four_eyes``); the channel then keeps waiting for
another answer until the expiry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Channel = Literal["prompt", "deny", "queue"]
AnswerDecision = Literal["approved", "denied", "expired"]


@dataclass(frozen=True)
class ApprovalAsk:
    approval_id: str
    run_id: str
    mission_id: str
    step: int
    total_steps: int
    kind: str
    target: Mapping[str, Any]  # text, role, selector of the resolved element (page-derived: sanitise before showing)
    page_url: str
    zone: str
    rule: str
    reason: str
    risk_score: int | None
    screenshot: str | None  # path of the screenshot with the target outlined (PII masked)
    action_digest: str
    expires_at: str  # RFC 3339 UTC
    timeout_s: float
    initiator: str


@dataclass(frozen=True)
class ApprovalAnswer:
    decision: AnswerDecision
    approver: str | None
    os_user: str
    reason: str
    channel: Channel
    answered_at: str
    refusals: tuple[str, ...] = field(default_factory=tuple)  # approvers refused before this answer, and why


# Returns None when the approver may approve, else the reason they may not.
Eligibility = Callable[[str], str | None]


class ApprovalChannel(Protocol):
    name: Channel

    def ask(self, ask: ApprovalAsk, eligible: Eligibility) -> ApprovalAnswer: ...
