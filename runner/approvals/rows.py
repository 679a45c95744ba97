"""The approval queue's table (``approvals`` in the evidence database) and what a row says.

``ApprovalRow`` is the SQLAlchemy model (its own metadata, ``ApprovalsBase``, on the index's
engine); ``policy_refusal`` is the rule an answer must pass; ``describe_outcome`` tells the loser of
a race how the request ended. ``store.ApprovalStore`` reads and writes the rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, Float, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class ApprovalsBase(DeclarativeBase):
    pass


class ApprovalRow(ApprovalsBase):
    __tablename__ = "approvals"

    approval_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(200), index=True)
    mission_id: Mapped[str] = mapped_column(String(200))
    step: Mapped[int] = mapped_column(Integer)
    total_steps: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(Text)  # JSON object, page-derived: sanitise before showing
    page_url: Mapped[str] = mapped_column(Text)
    zone: Mapped[str] = mapped_column(String(200))
    rule: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    risk_score: Mapped[int | None] = mapped_column(Integer)
    screenshot: Mapped[str | None] = mapped_column(Text)
    action_digest: Mapped[str] = mapped_column(String(64))
    initiator: Mapped[str] = mapped_column(String(200))
    approvers: Mapped[str | None] = mapped_column(Text)  # JSON list, or NULL: anyone may approve
    four_eyes: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), index=True)
    requested_at: Mapped[str] = mapped_column(String(32))
    expires_at: Mapped[str] = mapped_column(String(32))
    expires_ts: Mapped[float] = mapped_column(Float)  # epoch seconds: what every comparison uses
    owner_pid: Mapped[int] = mapped_column(Integer)
    owner_host: Mapped[str] = mapped_column(String(255))
    owner_start: Mapped[str | None] = mapped_column(String(32))  # /proc start time: guards pid reuse
    answered_by: Mapped[str | None] = mapped_column(String(200))
    answered_os_user: Mapped[str | None] = mapped_column(String(200))
    answered_at: Mapped[str | None] = mapped_column(String(32))
    answer_reason: Mapped[str | None] = mapped_column(Text)
    refusals: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of "who: why"

    def target_dict(self) -> dict[str, Any]:
        loaded = json.loads(self.target)
        return loaded if isinstance(loaded, dict) else {}

    def refusal_list(self) -> list[str]:
        loaded = json.loads(self.refusals or "[]")
        return [str(x) for x in loaded] if isinstance(loaded, list) else []

    def approver_list(self) -> list[str] | None:
        if self.approvers is None:
            return None
        loaded = json.loads(self.approvers)
        return [str(x) for x in loaded] if isinstance(loaded, list) else []


@dataclass(frozen=True)
class AnswerResult:
    won: bool
    row: ApprovalRow

    @property
    def message(self) -> str:
        r = self.row
        if self.won:
            return f"{r.status} by {r.answered_by} at {r.answered_at}"
        return describe_outcome(r)


def describe_outcome(row: ApprovalRow) -> str:
    """How a request that is no longer pending ended, for the loser of a race."""
    if row.status == "pending":
        return "still pending"
    if row.status == "expired":
        return f"already expired at {row.answered_at or row.expires_at}: {row.answer_reason or 'no answer'}"
    who = row.answered_by or "the runner"
    return f"already answered by {who} at {row.answered_at}: {row.status}"


def policy_refusal(row: ApprovalRow, approver: str, os_user: str) -> str | None:
    """Why ``approver`` (typing as OS user ``os_user``) may not approve ``row``; None if they may.

    Under ``four_eyes`` the OS account counts too: the initiator's account cannot approve by
    claiming another name.
    """
    allowed = row.approver_list()
    if allowed is not None and approver not in allowed:
        return f"{approver!r} is not in approvals.approvers ({', '.join(allowed)})"
    if row.four_eyes and row.initiator in (approver, os_user):
        who = approver if approver == row.initiator else f"OS user {os_user!r}"
        return f"four_eyes: {who} started this run and may not approve its own action"
    return None
