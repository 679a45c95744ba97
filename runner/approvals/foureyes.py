"""Four-eyes on the queue: an approval counts only from another OS user, proven by SO_PEERCRED.

``QueueChannel`` with ``four_eyes`` listens on the request's approval socket (``peer.py``) while it
waits. ``FourEyes.handle`` judges one connection:

* the request must name this approval id and this exact action digest (compared in constant time);
* ``approved`` from the runner's own uid (the initiator) is refused, whatever name it claims;
  a claimed ``--approver`` that is not the authenticated account is refused; then the mission's
  ``approvals.approvers`` / four-eyes rule is applied to the authenticated name;
* a refusal is kept (table and answer) and the request stays pending for someone else;
* an accepted answer is written to the table by the runner itself (the same conditional write
  every answer uses, so exactly one answer wins) and returned with ``identity_method``
  ``so_peercred``, the approver's uid and name.

``FourEyes.from_table`` is the second line: an ``approved`` that appears in the table without having
come over the socket (the initiator, who can write the evidence database, set it directly) is
*not* accepted: the answer is ``denied`` and says why. Denying through the table stays possible:
it is the safe outcome.
"""

from __future__ import annotations

import hmac
import os
import socket
from typing import Any, Literal

from runner.approvals.base import ApprovalAnswer, ApprovalAsk, Eligibility
from runner.approvals.common import user_of_uid
from runner.approvals.peer import Peer, PeerListener
from runner.approvals.rows import ApprovalRow
from runner.approvals.sanitize import sanitize
from runner.approvals.store import ApprovalStore

METHOD: Literal["so_peercred"] = "so_peercred"


class FourEyes:
    """Judges the answers reaching one four-eyes request (see the module docstring)."""

    def __init__(self, store: ApprovalStore, ask: ApprovalAsk, eligible: Eligibility) -> None:
        self.store = store
        self.ask = ask
        self.eligible = eligible
        self.refusals: list[str] = []
        self.own_uid = os.getuid()

    def handle(self, conn: socket.socket, peer: Peer, req: dict[str, Any]) -> ApprovalAnswer | None:
        ask = self.ask
        digest = str(req.get("action_digest", ""))
        if req.get("approval_id") != ask.approval_id or not hmac.compare_digest(digest, ask.action_digest):
            PeerListener.reply(conn, False, "mismatch", f"this socket waits on approval {ask.approval_id} "
                               "for another action: nothing recorded")
            return None
        decision = req.get("decision")
        reason = sanitize(str(req.get("reason", "")), 1000).strip()
        if decision not in ("approved", "denied") or not reason:
            PeerListener.reply(conn, False, "usage", "a decision (approved|denied) and a reason are required")
            return None
        name = user_of_uid(peer.uid)
        claimed = sanitize(str(req.get("approver") or ""), 80).strip() or None
        if decision == "approved":
            why = self._refusal(peer.uid, name, claimed)
            if why is not None:
                refusal = f"{claimed or name} (OS user {name}, uid {peer.uid}, {METHOD}): {why}"
                self.refusals.append(refusal)
                self.store.add_refusal(ask.approval_id, refusal)
                PeerListener.reply(conn, False, "refused", f"{why}; the request stays pending for another approver")
                return None
        result = self.store.answer(ask.approval_id, decision, name, name, reason)
        if not result.won:
            PeerListener.reply(conn, False, "not_pending", f"approval {ask.approval_id} was {result.message}")
            return None
        PeerListener.reply(conn, True, "recorded", f"recorded: approval {ask.approval_id} {decision} by {name} "
                           f"(uid {peer.uid}, identity established by {METHOD}) at {result.row.answered_at}")
        return ApprovalAnswer(
            decision=decision, approver=name, os_user=name, reason=reason, channel="queue",
            answered_at=result.row.answered_at or "", refusals=tuple(self.refusals),
            identity_method=METHOD, approver_uid=peer.uid,
        )

    def _refusal(self, uid: int, name: str, claimed: str | None) -> str | None:
        if uid == self.own_uid:
            return (f"four_eyes: OS user {name!r} (uid {uid}, established by {METHOD}) started this run "
                    "and may not approve its own action, under any name")
        if claimed is not None and claimed != name:
            return (f"four_eyes: the approver is the authenticated OS user {name!r}, "
                    f"not the claimed name {claimed!r} (leave out --approver)")
        return self.eligible(name)

    def from_table(self, row: ApprovalRow) -> ApprovalAnswer | None:
        """An ``approved`` row that did not come over the socket: denied (None: not that case)."""
        if row.status != "approved":
            return None
        who = sanitize(row.answered_by or "?", 80)
        why = (f"four_eyes: the approvals table says approved by {who!r}, but that row did not come over the "
               f"approval socket ({METHOD}); a row written into the database proves no second person: not accepted")
        return ApprovalAnswer(
            decision="denied", approver=None, os_user=user_of_uid(self.own_uid), reason=why, channel="queue",
            answered_at=row.answered_at or "", refusals=(*self.refusals, f"{who}: {why}"),
        )
