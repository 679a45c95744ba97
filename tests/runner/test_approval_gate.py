"""Human approvals in-process: a fake driver, a scripted channel, the real evidence writer.

Covers what the browser tests cannot reach directly: an approval id is single use and expires, the
digest binds kind/args/page/target (and hides secrets), the approval's binding is a MAC under the
key, and HumanApprovals' own checks of a channel's answer (four-eyes: only a kernel-vouched other uid).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from evidence.records import Actor
from evidence.redact import RedactorChain
from evidence.runfolder import RunFolder, new_run_id
from evidence.writer import EvidenceWriter
from guards.base import ActionRequest, ChainResult, Decision
from guards.observed import ElementInfo
from missions.model import Mission
from runner.approvals.base import ApprovalAnswer, ApprovalAsk, Channel, Eligibility, IdentityMethod
from runner.approvals.common import now_utc
from runner.approvals.digest import action_digest, approval_binding, digest_payload
from runner.approvals.human import Grant, HumanApprovals
from runner.approvals.seam import ApprovalContext, ApprovalNotGranted, NoApprovals
from runner.recorder import RunRecorder

URL = "https://portal.example.com/basket"
BUTTON = ElementInfo(found=True, tag="button", role="button", accessible_name="Submit order", text="Submit order",
                     selector_hint="html > body:nth-of-type(1) > button:nth-of-type(1)", box=(1, 2, 3, 4))


@dataclass
class FakeDriver:
    element: ElementInfo = BUTTON
    url: str = URL

    def page_url(self) -> str:
        return self.url

    def resolve(self, kind: str, args: Mapping[str, Any], timeout_s: float, *, selectors: Any = ()) -> ElementInfo:
        return self.element


@dataclass
class Script:
    answers: list[ApprovalAnswer]
    asked: list[ApprovalAsk] = field(default_factory=list)
    name: Channel = "prompt"

    def ask(self, ask: ApprovalAsk, eligible: Eligibility) -> ApprovalAnswer:
        self.asked.append(ask)
        return self.answers.pop(0)


def approved(approver: str = "carol", reason: str = "ok", at: str | None = None) -> ApprovalAnswer:
    return ApprovalAnswer("approved", approver, "tester", reason, "prompt", at or now_utc())


def mission(**approvals: Any) -> Mission:
    return Mission.model_validate({
        "mission": "m", "version": 1, "approvals": approvals,
        "boundaries": {"allowed_domains": ["portal.example.com"], "allowed_actions": ["click"]},
        "steps": [{"click": {"role": "button", "name": "Submit order"}}],
    })


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[RunRecorder]:
    run_id = new_run_id("m")
    folder = RunFolder.create(tmp_path / "ev", run_id)
    writer = EvidenceWriter(folder, run_id, RedactorChain([]))
    yield RunRecorder(writer, Actor(type="runner", id="test"))
    writer.close()


def lines(rec: RunRecorder) -> list[dict[str, Any]]:
    text = (rec.writer.folder.root / "records.jsonl").read_text()
    return [json.loads(x) for x in text.splitlines() if x.strip()]


def context(m: Mission, driver: FakeDriver, element: ElementInfo | None = BUTTON) -> ApprovalContext:
    step = m.steps[0]
    action = ActionRequest(step_no=1, kind="click", step=step, args={"role": "button", "name": "Submit order"},
                           element=element)
    result = ChainResult("require_approval", (Decision.require_approval(
        "danger_zones", "danger zone", "danger_zone.default.order", zone="default:order", zone_reason="irreversible"),))
    return ApprovalContext(driver=driver, action=action, result=result, page_url=driver.url, timeout_s=1.0,
                           total_steps=1, shoot=lambda when, outline: [])


def approvals(rec: RunRecorder, m: Mission, answers: list[ApprovalAnswer], initiator: str = "alice") -> HumanApprovals:
    return HumanApprovals(rec, Script(answers), m, initiator=initiator, secrets={"PW": "hunter2-secret"})


def test_an_approval_id_cannot_be_used_twice(recorder: RunRecorder) -> None:
    m = mission()
    g = approvals(recorder, m, [approved()])
    ctx = context(m, FakeDriver())
    g.approve(ctx)  # asked, approved, bound, consumed
    (req,) = [r for r in lines(recorder) if r["type"] == "approval_request"]
    reuse = Grant(req["approval_id"], req["action_digest"], 1, BUTTON)
    with pytest.raises(ApprovalNotGranted, match="already used"):
        g.authorize(reuse, ctx)
    assert any(r["type"] == "decision_record" and r["rule"] == "approval.single_use" for r in lines(recorder))


def test_records_are_written_in_order_before_returning(recorder: RunRecorder) -> None:
    m = mission()
    approvals(recorder, m, [approved()]).approve(context(m, FakeDriver()))
    types = [r["type"] for r in lines(recorder)]
    assert types == ["approval_request", "approval_record", "decision_record"]
    req, ans, dec = lines(recorder)
    assert req["zone"] == "default:order" and req["rule"] == "danger_zone.default.order"
    assert ans["approval_id"] == req["approval_id"] and ans["action_digest"] == req["action_digest"]
    assert dec["decision"] == "allow" and dec["guard"] == "approval_gate"


@pytest.mark.parametrize(("answer", "why"), [
    (approved(reason="   "), "needs a reason"),
    (approved(approver=""), "without an approver"),
    (approved(at="2000-01-01T00:00:00.000Z".replace("2000", "2999")), "after the expiry"),
    (ApprovalAnswer("denied", "bob", "tester", "no", "prompt", now_utc()), "denied"),
    (ApprovalAnswer("expired", None, "tester", "approval timed out", "prompt", now_utc()), "expired"),
])
def test_anything_but_a_proper_approval_is_refused(recorder: RunRecorder, answer: ApprovalAnswer, why: str) -> None:
    m = mission()
    with pytest.raises(ApprovalNotGranted, match=why if why in ("denied", "expired") else "."):
        approvals(recorder, m, [answer]).approve(context(m, FakeDriver()))
    (ans,) = [r for r in lines(recorder) if r["type"] == "approval_record"]
    assert ans["decision"] in ("denied", "expired") and why.split()[-1] in (ans["reason"] + ans["decision"])


def test_human_approvals_recheck_eligibility_of_an_approved_answer(recorder: RunRecorder) -> None:
    m = mission(approvers=["bob"], four_eyes=True)
    with pytest.raises(ApprovalNotGranted):
        approvals(recorder, m, [approved("carol")]).approve(context(m, FakeDriver()))
    (ans,) = [r for r in lines(recorder) if r["type"] == "approval_record"]
    assert ans["decision"] == "denied" and "approvals.approvers" in ans["reason"]


def test_a_channel_that_raises_denies(recorder: RunRecorder) -> None:
    class Broken:
        name: Channel = "queue"

        def ask(self, ask: ApprovalAsk, eligible: Eligibility) -> ApprovalAnswer:
            raise RuntimeError("boom")

    m = mission()
    g = HumanApprovals(recorder, Broken(), m, initiator="alice", secrets={})
    with pytest.raises(ApprovalNotGranted):
        g.approve(context(m, FakeDriver()))
    (ans,) = [r for r in lines(recorder) if r["type"] == "approval_record"]
    assert ans["decision"] == "denied" and "RuntimeError" in ans["reason"]


def test_a_changed_url_voids_the_approval_and_asks_again(recorder: RunRecorder) -> None:
    m = mission()
    driver = FakeDriver()
    script = Script([approved(), approved()])

    class Moving(Script):
        def ask(self, ask: ApprovalAsk, eligible: Eligibility) -> ApprovalAnswer:
            if not self.asked:
                driver.url = URL + "?changed=1"
            return super().ask(ask, eligible)

    g = HumanApprovals(recorder, Moving(script.answers), m, initiator="alice", secrets={})
    g.approve(context(m, driver))
    recs = lines(recorder)
    assert [r["type"] for r in recs].count("approval_request") == 2
    assert any(r["type"] == "decision_record" and r["rule"] == "approval.binding" for r in recs)


def test_no_approvals_denies_everything() -> None:
    m = mission()
    with pytest.raises(ApprovalNotGranted):
        NoApprovals().approve(context(m, FakeDriver()))


# ----------------------------------------------------------------------------- the digest

def test_digest_binds_kind_args_page_and_target_but_not_position() -> None:
    base = action_digest("click", {"selector": "#b"}, URL, BUTTON, {})
    moved = replace(BUTTON, box=None)
    assert base == action_digest("click", {"selector": "#b", "timeout": 5}, URL + "#frag", moved, {})
    assert base != action_digest("press", {"selector": "#b"}, URL, BUTTON, {})
    assert base != action_digest("click", {"selector": "#c"}, URL, BUTTON, {})
    assert base != action_digest("click", {"selector": "#b"}, URL + "/2", BUTTON, {})
    assert base != action_digest("click", {"selector": "#b"}, URL, replace(BUTTON, text="Submit order now"), {})
    assert base != action_digest("click", {"selector": "#b"}, URL, replace(BUTTON, form_action="https://x/y"), {})


def test_digest_names_secrets_instead_of_holding_them() -> None:
    payload = digest_payload("fill", {"label": "Password", "value": "pre-hunter2-secret"}, URL, None,
                             {"PW": "hunter2-secret"})
    assert payload["args"]["value"] == "pre-«secret:PW»"
    assert "hunter2" not in json.dumps(payload)


# ----------------------------------------------------------------------------- four-eyes, binding, expiry


def _peer(uid: int | None, method: IdentityMethod = "so_peercred") -> ApprovalAnswer:
    return ApprovalAnswer("approved", "bob", "bob", "second pair", "queue", now_utc(),
                          identity_method=method, approver_uid=uid)


@pytest.mark.parametrize(("answer", "why"), [
    (_peer(None, "tty_owner"), "identity by tty_owner proves no second person"),
    (_peer(None, "queue_row"), "identity by queue_row proves no second person"),
    (_peer(os.getuid()), "uid is the initiator's"),
    (_peer(None), "uid is the initiator's"),
])
def test_four_eyes_gate_accepts_only_a_kernel_vouched_other_uid(
    recorder: RunRecorder, answer: ApprovalAnswer, why: str
) -> None:
    # the second line: whatever a channel says, the gate itself refuses an unproven second person
    m = mission(four_eyes=True)
    with pytest.raises(ApprovalNotGranted):
        approvals(recorder, m, [answer]).approve(context(m, FakeDriver()))
    (ans,) = [r for r in lines(recorder) if r["type"] == "approval_record"]
    assert ans["decision"] == "denied" and why in ans["reason"]


def test_four_eyes_approval_by_another_uid_is_recorded_with_a_verifiable_binding(recorder: RunRecorder) -> None:
    m = mission(four_eyes=True)
    key = b"k" * 32
    g = HumanApprovals(recorder, Script([_peer(os.getuid() + 4242)]), m, initiator="alice", secrets={},
                       digest_key=key)
    g.approve(context(m, FakeDriver()))
    (ans,) = [r for r in lines(recorder) if r["type"] == "approval_record"]
    assert ans["decision"] == "approved" and ans["identity_method"] == "so_peercred"
    assert ans["approver_uid"] == os.getuid() + 4242 and ans["initiator"] == "alice"
    expected = approval_binding(
        key, action_digest=ans["action_digest"], approval_id=ans["approval_id"], decision="approved",
        approver="bob", identity_method="so_peercred", approver_uid=os.getuid() + 4242, initiator="alice",
        expires_at=ans["expires_at"],
    )
    assert ans["binding"] == expected != ans["action_digest"]
    other_key = approval_binding(b"x" * 32, action_digest=ans["action_digest"], approval_id=ans["approval_id"])
    assert other_key != expected


def test_a_grant_whose_binding_was_not_made_with_the_key_is_refused(recorder: RunRecorder) -> None:
    m = mission()
    g = approvals(recorder, m, [])
    ctx = context(m, FakeDriver())
    digest = action_digest("click", ctx.action.args, URL, BUTTON, {}, key=g.digest_key)
    forged = Grant("ap-forged", digest, 1, BUTTON, binding="0" * 64)  # the right digest, no valid MAC
    with pytest.raises(ApprovalNotGranted):
        g.authorize(forged, ctx)
    assert "ap-forged" not in g.used


def test_an_approval_used_after_its_expiry_is_refused(recorder: RunRecorder) -> None:
    m = mission()
    g = approvals(recorder, m, [])
    ctx = context(m, FakeDriver())
    stale = Grant("ap-stale", "ab" * 32, 1, BUTTON, expires=datetime.now(UTC) - timedelta(minutes=5))
    with pytest.raises(ApprovalNotGranted, match="expired before use"):
        g.authorize(stale, ctx)
    assert any(r["type"] == "decision_record" and r["rule"] == "approval.expired" for r in lines(recorder))
