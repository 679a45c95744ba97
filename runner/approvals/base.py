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
# How the approver's identity was established (recorded in the approval_record):
#   so_peercred  the kernel's peer credentials of the approval socket (SO_PEERCRED): a uid nobody
#                but that OS account (or root) can present — the only method four_eyes accepts;
#   tty_owner    the owner of the controlling terminal, with a typed name as a claim;
#   queue_row    what `warden approvals` wrote into the approvals table (self-reported by its process);
#   none         nobody answered (deny channel, expiry, withdrawal, errors).
IdentityMethod = Literal["so_peercred", "tty_owner", "queue_row", "none"]


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
    identity_method: IdentityMethod = "none"
    approver_uid: int | None = None  # the uid the kernel vouched for (so_peercred only)


# Returns None when the approver may approve, else the reason they may not.
Eligibility = Callable[[str], str | None]


class ApprovalChannel(Protocol):
    name: Channel

    def ask(self, ask: ApprovalAsk, eligible: Eligibility) -> ApprovalAnswer: ...
