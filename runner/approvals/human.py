"""Human approvals: a ``require_approval`` verdict becomes a recorded human decision bound to one action.

For each action that needs approval (SPEC §4, notes (d)):

1. the action digest (``digest.py``) over the action, the page URL and the resolved target;
2. a screenshot with the target outlined (through the step loop's screenshot, so its masks apply);
3. an ``approval_request`` record (digest, zone, rule, risk score, screenshot, expiry) — durable
   before anyone is asked;
4. the channel (prompt / deny / queue) is asked, with the mission's eligibility rule
   (``approvals.approvers``; ``four_eyes``: not the initiator); each refused approver is a
   ``decision_record`` (deny, ``approvals.four_eyes`` / ``approvals.approvers``);
5. an ``approval_record`` (approver, OS user, approved/denied/expired, reason, time, channel) —
   durable before the action; then a ``decision_record`` (guard ``approval_gate``: allow / deny);
6. binding: the target is resolved again and the digest recomputed. If the page URL or the target
   changed, the approval is void (a ``decision_record``, rule ``approval.binding``) and it
   asks again — at most ``MAX_ASKS`` times, then it denies. An approval id authorises one
   execution: using it again is refused, and so is using it after its expiry. The approval_record
   carries ``binding``, an HMAC under the evidence key over the approval id, the action digest,
   the decision, the approver and how they were identified; it is recomputed with the digest of
   the action about to run.

Four-eyes (second line of defence, whatever the channel did): an approval counts only when the
approver's identity was established by the kernel (``identity_method == "so_peercred"``, the queue's
approval socket) and is not the initiator's uid. A typed name or a row in the approvals table is
no second person.

Anything but an approved, bound, unused approval raises ``ApprovalNotGranted``: the step loop
writes the exception record and the run stops with exit 3, with no executed outcome.
"""

from __future__ import annotations

import hmac
import os
import secrets as pysecrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from evidence.records import Actor, ApprovalRecord, ApprovalRequest, Attachment, DecisionRecord, Record
from evidence.redact import protect, redact_tree
from evidence.runfolder import utc_timestamp
from guards.danger_zones import DangerZones
from guards.observed import ElementInfo
from kernel.errors import EvidenceUnavailable
from missions.model import TARGET_FIELDS, Mission, Step
from runner.approvals.base import ApprovalAnswer, ApprovalAsk, ApprovalChannel, Channel, Eligibility
from runner.approvals.common import os_user, parse_utc, policy_eligibility, user_of_uid
from runner.approvals.digest import action_digest, approval_binding
from runner.approvals.seam import ApprovalContext, ApprovalNotGranted
from runner.approvals.targets import outline, target_dict, what_changed
from runner.browser.driver import Driver, DriverError
from runner.recorder import RunRecorder

if TYPE_CHECKING:
    from runner.network import ApprovalView

GUARD = "approval_gate"  # the guard name in decision records (the evidence contract keeps it)
MAX_ASKS = 3  # a page that keeps changing under the approver: asked at most this often, then denied
LATE_GRACE_S = 2.0  # an "approved" that arrives after the expiry (plus this) is expired, not approved


@dataclass(frozen=True)
class ApprovalOptions:
    """``warden run --approval MODE --approver NAME`` (None: prompt when /dev/tty opens, else deny)."""

    mode: Channel | None = None
    approver: str | None = None
    evidence_dir: Path | None = None
    db_url: str | None = None


@dataclass(frozen=True)
class Grant:
    """An approved answer: valid for exactly one execution of the action with this digest."""

    approval_id: str
    digest: str
    step: int
    element: ElementInfo | None = None  # the target as the approver saw it
    binding: str = ""  # approval_binding(...) as recorded
    expires: datetime | None = None
    binds: tuple[tuple[str, str | int | None], ...] = ()  # the binding's fields but the digest


def initiator_user() -> str:
    """Who started the run, from the process uid (never ``$USER``: the initiator could set it)."""
    return user_of_uid(os.getuid())


class HumanApprovals:
    """``Approvals`` answered by a person through a channel (prompt, deny, queue), recorded and bound."""

    def __init__(
        self,
        recorder: RunRecorder,
        channel: ApprovalChannel,
        mission: Mission,
        *,
        initiator: str,
        secrets: Mapping[str, str],
        risk_score: int | None = None,
        max_asks: int = MAX_ASKS,
        digest_key: bytes | None = None,
        zone_view: ApprovalView | None = None,  # what the request backstop (StateChangeGuard) reads
    ) -> None:
        self.recorder = recorder
        self.zone_view = zone_view
        self.channel = channel
        self.mission = mission
        self.zones = DangerZones.from_mission(mission)
        self.initiator = initiator
        self.secrets = dict(secrets)
        self.risk_score = risk_score
        self.max_asks = max_asks
        self.eligible: Eligibility = policy_eligibility(
            mission.approvals.approvers, mission.approvals.four_eyes, initiator
        )
        self.used: set[str] = set()
        self.runner = recorder.runner
        self.policy = Actor(type="policy", id=GUARD)
        # The action digest is an HMAC under the evidence key (digest.py); built without one
        # (tests), it is keyed with a random key of its own: still bound, never an unkeyed hash.
        self.digest_key = digest_key or pysecrets.token_bytes(32)
        # What the channel is asked (and the queue stores) went through the run's redactor; the run's
        # own ids (run id, run folder, approval ids) are never masked in it (evidence/redact.py).
        self.redactor = recorder.writer.redactor
        protect(self.redactor, recorder.writer.run_id, str(recorder.writer.folder.root))
        bind = getattr(channel, "bind_redactor", None)
        if callable(bind):
            bind(self.redactor)

    # -- resolution (before the guard chain) -----------------------------------------------------
    def needs_target(self, kind: str, step: Step) -> bool:
        has_target = any(getattr(step.args, f, None) is not None for f in TARGET_FIELDS) or kind == "press"
        return self.zones.needs_element(kind, approve=step.needs_approval, has_target=has_target)

    def resolve(self, driver: Driver, kind: str, args: Mapping[str, Any], timeout_s: float) -> ElementInfo | None:
        element = driver.resolve(kind, args, timeout_s, selectors=self.zones.selectors())
        if self.zone_view is not None:  # its form's submit is gated: the backstop guards that form action
            self.zone_view.gate(self.zones.gated_form_action(element))
        return element

    # -- approval --------------------------------------------------------------------------------
    def approve(self, ctx: ApprovalContext) -> None:
        action = ctx.action
        deciding = ctx.result.deciding
        zone = str(deciding.details.get("zone") or deciding.guard)
        reason = str(deciding.details.get("zone_reason") or deciding.reason)
        rule = deciding.rule or deciding.guard
        element, page_url = action.element, ctx.page_url
        for attempt in range(1, self.max_asks + 1):
            digest = action_digest(action.kind, action.args, page_url, element, self.secrets, key=self.digest_key)
            if self.zone_view is not None:  # its form action is a gated control's, approved or not
                self.zone_view.asked(action.kind, action.args, element)
            grant = self._ask(ctx, element, page_url, digest, zone, reason, rule, attempt)
            try:
                self.authorize(grant, ctx)
            except _Void as void:
                self._decision(
                    ctx, "deny", f"approval {grant.approval_id} is void: {void} (asking again)", "approval.binding",
                    approval_id=grant.approval_id, action_digest=grant.digest, new_digest=void.digest,
                )
                element, page_url = void.element, void.page_url
                continue
            self._decision(
                ctx, "allow", f"approved and bound to this action (approval {grant.approval_id})", rule,
                approval_id=grant.approval_id, action_digest=grant.digest, zone=zone,
            )
            if self.zone_view is not None:  # the requests of this step the approval covers
                self.zone_view.granted(action.step_no, grant.approval_id, action.kind, action.args, element, page_url)
            return
        self._decision(ctx, "deny", f"the page kept changing: {self.max_asks} approvals were void", "approval.binding")
        raise ApprovalNotGranted(
            f"the page or target changed after each of {self.max_asks} approvals: the action is not taken",
            "approval.binding",
        )

    def authorize(self, grant: Grant, ctx: ApprovalContext) -> None:
        """Just before executing: the approval is unused and still describes the page and target.

        Raises ``ApprovalNotGranted`` for a reused id or a target that disappeared, ``_Void`` (an
        ``ApprovalNotGranted``) when the action changed. Marks the id used on success.
        """
        if grant.approval_id in self.used:
            self._decision(
                ctx, "deny", f"approval {grant.approval_id} was already used: an approval covers one action",
                "approval.single_use", approval_id=grant.approval_id,
            )
            raise ApprovalNotGranted(f"approval {grant.approval_id} was already used", "approval.single_use")
        if grant.expires is not None and datetime.now(UTC) > grant.expires + timedelta(seconds=LATE_GRACE_S):
            self._decision(ctx, "deny", f"approval {grant.approval_id} expired before the action ran",
                           "approval.expired", approval_id=grant.approval_id)
            raise ApprovalNotGranted(f"approval {grant.approval_id} expired before use", "approval.expired")
        action = ctx.action
        element: ElementInfo | None = None
        try:
            page_url = ctx.driver.page_url()
            if action.element is not None or self.needs_target(action.kind, action.step):
                element = self.resolve(ctx.driver, action.kind, action.args, ctx.timeout_s)
        except DriverError as exc:
            raise ApprovalNotGranted(
                f"the target could not be found again after the approval ({exc}): the action is not taken",
                "approval.binding",
            ) from exc
        now = action_digest(action.kind, action.args, page_url, element, self.secrets, key=self.digest_key)
        if not hmac.compare_digest(self._bind(now, dict(grant.binds)), grant.binding):
            raise _Void(what_changed(grant.element, element, page_url), now, element, page_url)
        self.used.add(grant.approval_id)

    # -- one question ----------------------------------------------------------------------------
    def _ask(
        self,
        ctx: ApprovalContext,
        element: ElementInfo | None,
        page_url: str,
        digest: str,
        zone: str,
        reason: str,
        rule: str,
        attempt: int,
    ) -> Grant:
        action = ctx.action
        approval_id = f"ap-{pysecrets.token_hex(8)}"
        protect(self.redactor, approval_id)
        shots = ctx.shoot("approval", outline(action.kind, element))
        root = self.recorder.writer.folder.root
        screenshot = str(root / shots[0].path) if shots else None
        timeout_s = float(self.mission.approvals.timeout)
        expires = datetime.now(UTC) + timedelta(seconds=timeout_s)
        expires_at = utc_timestamp(expires)
        target = target_dict(action.args, element)
        if attempt > 1:
            reason = f"{reason} (asked again: the page changed after approval {attempt - 1})"
        self._write(
            ApprovalRequest,
            self.runner,
            shots,
            approval_id=approval_id,
            step=action.step_no,
            kind=action.kind,
            action_digest=digest,
            zone=zone,
            rule=rule,
            reason=reason,
            risk_score=self.risk_score,
            page_url=page_url,
            target=target,
            channel=self.channel.name,
            expires_at=expires_at,
        )
        ask = ApprovalAsk(
            approval_id=approval_id,
            run_id=self.recorder.writer.run_id,
            mission_id=self.mission.mission,
            step=action.step_no,
            total_steps=ctx.total_steps,
            kind=action.kind,
            target=redact_tree(target, self.redactor),  # as recorded: page text may hold PII
            page_url=self.redactor.redact(page_url),
            zone=self.redactor.redact(zone),
            rule=rule,
            reason=self.redactor.redact(reason),
            risk_score=self.risk_score,
            screenshot=screenshot,
            action_digest=digest,
            expires_at=expires_at,
            timeout_s=timeout_s,
            initiator=self.initiator,
        )
        try:
            answer = self.channel.ask(ask, self.eligible)
        except Exception as exc:  # a channel must not raise; if it does, that is no approval
            answer = ApprovalAnswer(
                decision="denied", approver=None, os_user=os_user(), channel=self.channel.name,
                reason=f"the approval channel failed ({type(exc).__name__})", answered_at=utc_timestamp(),
            )
        for refusal in answer.refusals:
            self._decision(
                ctx, "deny", f"approver refused: {refusal}",
                "approvals.four_eyes" if "four_eyes" in refusal else "approvals.approvers",
                approval_id=approval_id,
            )
        decision, why = self._effective(answer, expires)
        binds: dict[str, str | int | None] = {
            "approval_id": approval_id, "decision": decision, "approver": answer.approver,
            "identity_method": answer.identity_method, "approver_uid": answer.approver_uid,
            "initiator": self.initiator, "expires_at": expires_at,
        }
        binding = self._bind(digest, binds)
        self._write(
            ApprovalRecord,
            _answer_actor(answer, decision),
            approval_id=approval_id,
            decision=decision,
            approver=answer.approver,
            os_user=answer.os_user,
            reason=why,
            channel=answer.channel,
            action_digest=digest,
            rule=rule,
            answered_at=answer.answered_at,
            initiator=self.initiator,
            identity_method=answer.identity_method,
            approver_uid=answer.approver_uid,
            expires_at=expires_at,
            binding=binding,
        )
        if decision != "approved":
            self._decision(ctx, "deny", f"approval {approval_id} {decision}: {why}", rule, approval_id=approval_id)
            raise ApprovalNotGranted(f"approval {decision} ({why})", rule)
        return Grant(approval_id, digest, action.step_no, element, binding, expires, tuple(binds.items()))

    def _bind(self, digest: str, binds: Mapping[str, str | int | None]) -> str:
        return approval_binding(self.digest_key, action_digest=digest, **binds)

    def _effective(self, answer: ApprovalAnswer, expires: datetime) -> tuple[str, str]:
        """The channel's answer, checked once more here: policy, expiry, a reason."""
        if answer.decision != "approved":
            return answer.decision, answer.reason or answer.decision
        if not answer.approver:
            return "denied", "an approval without an approver's name is not an approval"
        refusal = self.eligible(answer.approver)
        if refusal is not None:
            return "denied", f"refused by the mission's approval policy: {refusal}"
        if self.mission.approvals.four_eyes and answer.identity_method != "so_peercred":
            return "denied", (f"four_eyes: identity by {answer.identity_method} proves no second person; "
                              "only an approval over the approval socket (SO_PEERCRED) counts")
        if self.mission.approvals.four_eyes and answer.approver_uid in (None, os.getuid()):
            return "denied", "four_eyes: the approver's uid is the initiator's (or unknown)"
        if not answer.reason.strip():
            return "denied", "an approval needs a reason"
        try:
            late = parse_utc(answer.answered_at) > expires + timedelta(seconds=LATE_GRACE_S)
        except ValueError:
            late = True
        if late:
            return "expired", f"answered after the expiry ({answer.answered_at}): ignored"
        return "approved", answer.reason

    def _write(self, cls: type[Record], actor: Actor, attachments: Sequence[Attachment] = (), **f: Any) -> None:
        """Persist one record or stop the run (exit 5): an approval that cannot be recorded is no approval."""
        try:
            self.recorder.record(cls, actor, attachments, **f)
        except ValidationError as exc:
            raise EvidenceUnavailable(
                f"{cls.TYPE} could not be written ({exc.error_count()} invalid field(s)): the action is not taken"
            ) from exc

    def _decision(self, ctx: ApprovalContext, verdict: str, rationale: str, rule: str, **subject: Any) -> None:
        self._write(
            DecisionRecord,
            self.policy,
            guard=GUARD,
            decision=verdict,
            rationale=rationale,
            rule=rule,
            step=ctx.action.step_no,
            kind=ctx.action.kind,
            subject={k: v for k, v in subject.items() if v is not None},
        )


class _Void(ApprovalNotGranted):
    def __init__(self, message: str, digest: str, element: ElementInfo | None, page_url: str) -> None:
        super().__init__(message, "approval.binding")
        self.digest = digest
        self.element = element
        self.page_url = page_url


def _answer_actor(answer: ApprovalAnswer, decision: str) -> Actor:
    if answer.approver:
        return Actor(type="human", id=answer.approver)
    if answer.channel == "deny":
        return Actor(type="policy", id="approval_channel.deny")
    return Actor(type="runner", id=f"approval_channel.{answer.channel}")
