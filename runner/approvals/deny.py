"""``--approval deny``: the channel without a human (the default when no terminal can be opened, e.g. CI).

Every request is denied at once and the gate records it; the run stops with exit 3.
"""

from __future__ import annotations

from runner.approvals.base import ApprovalAnswer, ApprovalAsk, Channel, Eligibility
from runner.approvals.common import now_utc, os_user

DENY_REASON = "no approver: --approval deny (non-interactive)"


class DenyChannel:
    name: Channel = "deny"

    def ask(self, ask: ApprovalAsk, eligible: Eligibility) -> ApprovalAnswer:
        return ApprovalAnswer(
            decision="denied",
            approver=None,
            os_user=os_user(),
            reason=DENY_REASON,
            channel=self.name,
            answered_at=now_utc(),
        )
