"""Realistic runs for the OCSF export tests: every record type, in the shapes the runner writes them.

``realistic_run`` writes, through the real evidence writer, what ``runner.recorder``,
``runner.network.NetworkGate``, ``runner.approvals.gate`` and the PII guards write (the same
fields, the same subjects): refused requests (the domain guard, the resolver, a PII request
guard, a counted repeat, a refused and a quarantined download), approvals (approved by a human,
denied by the deny channel), PII findings, exceptions, failed and successful actions, a version
log. ``DEMO_RUN`` is a real ``warden demo --approval deny`` run (46 records) kept as written.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from evidence.records import (
    ActionRecord,
    Actor,
    ApprovalRecord,
    ApprovalRequest,
    DecisionRecord,
    ExceptionRecord,
    FoundValue,
    GuardCheck,
    PiiFinding,
    VersionLog,
)
from tests.evidence.conftest import MISSION_SHA, RunHandle, StartRun

DEMO_RUN = Path(__file__).resolve().parents[1] / "data" / "ocsf" / "runs" / "demo-approval-denied.records.jsonl"

RUNNER = Actor(type="runner", id="warden/0.1.0")
CHAIN = Actor(type="policy", id="guard-chain")
PAGE = "https://portal.example.com/expenses/new"
DIGEST = hashlib.sha256(b"submit payment").hexdigest()


def _checks(verdict: Literal["allow", "require_approval"] = "allow") -> list[GuardCheck]:
    return [
        GuardCheck(guard="least_privilege.actions", decision="allow", reason="'click' is in allowed_actions",
                   rule="boundaries.allowed_actions"),
        GuardCheck(guard="least_privilege.max_steps", decision="allow", reason="2 of 30 steps used",
                   rule="boundaries.max_steps"),
        GuardCheck(guard="danger_zones", decision=verdict,
                   reason="built-in danger zone 'pay'" if verdict != "allow" else "no danger zone matched",
                   rule="danger_zone.default.pay" if verdict != "allow" else ""),
    ]


def _step(h: RunHandle, n: int, kind: str, target: dict[str, str], *, url_before: str, url_after: str | None,
          verdict: str = "allow", outcome: str = "ok", error: str | None = None) -> None:
    w = h.writer
    w.append(DecisionRecord, actor=CHAIN, guard="chain", decision=verdict, rationale=f"step {n}: {verdict}",
             rule="boundaries.allowed_actions", step=n, kind=kind, subject={"target": target, "page_url": url_before},
             checks=_checks("allow" if verdict == "allow" else "require_approval"))
    intent = w.append(ActionRecord, actor=RUNNER, phase="intent", step=n, kind=kind, target=target,
                      call=f"{kind}({target})", url_before=url_before)
    seq = w.next_seq
    shot = w.attach_bytes(b"\x89PNG fake " + bytes([n]) * 32, f"screenshots/{seq:04d}-step{n:02d}-after.png",
                          "image/png")
    w.append(ActionRecord, actor=RUNNER, phase="outcome", step=n, kind=kind, target=target, call=f"{kind}({target})",
             url_before=url_before, url_after=url_after, intent_id=intent.record_id, outcome=outcome,
             duration_ms=131.7, retries=1 if error else 0, error=error, attachments=[shot])


def _refusal(h: RunHandle, guard: str, host: str | None, kind: str, rule: str, why: str, *, step: int | None,
             count: int = 1, **extra: object) -> None:
    subject: dict[str, object] = {"host": host, "request_kind": kind, "resource_type": extra.pop("resource_type", None),
                                  "method": extra.pop("method", "GET"), "page_url": PAGE, **extra}
    h.writer.append(DecisionRecord, actor=CHAIN, guard=guard, decision="deny", rationale=why, rule=rule, step=step,
                    subject=subject, count=count)


def realistic_run(start_run: StartRun) -> RunHandle:
    """A finished run (stopped at a denied approval, exit 3) with every record type."""
    h = start_run(mission_id="expense-report")
    w = h.writer
    w.append(VersionLog, actor=RUNNER, subject="mission", subject_id="expense-report", old_sha256=None,
             new_sha256=MISSION_SHA, new_version="3", changes=["first run of this mission in this evidence store"],
             why="First version")
    _step(h, 1, "goto", {"url": "https://portal.example.com/login?next=%2Fexpenses"}, url_before="about:blank",
          url_after="https://portal.example.com/login?next=%2Fexpenses")
    # The request gate (runner/network.py): a third-party script, a refused resolver lookup (an IP
    # literal), a PII request guard's refusal of a form post, the counted repeats of the first.
    _refusal(h, "boundaries.network", "tracker.ads.example", "subresource", "boundaries.allowed_resource_domains",
             "tracker.ads.example is not in allowed_domains or allowed_resource_domains", step=1,
             resource_type="script")
    _refusal(h, "boundaries.resolver", "10.0.0.5", "navigation", "boundaries.allowed_domains",
             "navigation to 10.0.0.5 refused at name resolution: host is not in the resolver allowlist", step=1)
    _step(h, 2, "fill", {"label": "Email"}, url_before=PAGE, url_after=PAGE)
    w.append(PiiFinding, actor=Actor(type="policy", id="pii-guard"), step=2, where="input",
             location={"selector": "#email"}, key_id="k1", policy="record", action="recorded",
             counts={"EMAIL_ADDRESS": 1}, values=[FoundValue(entity_type="EMAIL_ADDRESS", score=0.85,
                                                             value_hmac="ef" * 32, preview="j***@e***.com",
                                                             action="recorded")])
    w.append(PiiFinding, actor=Actor(type="policy", id="pii-guard"), step=2, where="request",
             location={"host": "collect.example.net", "page_url": PAGE}, key_id="k1", policy="block",
             action="blocked", counts={"IBAN_CODE": 1},
             values=[FoundValue(entity_type="IBAN_CODE", score=0.9, value_hmac="ab" * 32, preview="DE** **** ****",
                                action="blocked", location={"source": "body"})])
    _refusal(h, "pii.request", "collect.example.net", "subresource", "pii.requests",
             "the request carries IBAN_CODE (blocked by policy)", step=2, resource_type="fetch", method="POST")
    # A request guard that names the URL: the export keeps scheme, host, port and path, never the query.
    _refusal(h, "boundaries.network", "evil.example", "navigation", "boundaries.allowed_domains",
             "evil.example is not in allowed_domains", step=2, url="https://evil.example:8443/c?email=jane%40x.org#f")
    _refusal(h, "boundaries.network", "tracker.ads.example", "subresource", "boundaries.allowed_resource_domains",
             "3 more refusal(s) of tracker.ads.example (subresource)", step=2, count=3, repeated=True)
    # Downloads: one refused (no host known), one kept in quarantine (an allow, with its attachment).
    _refusal(h, "boundaries.downloads", None, "download", "boundaries.downloads",
             "download from ? refused: downloads are denied", step=2, resource_type="download")
    seq = w.next_seq
    kept = w.attach_bytes(b"%PDF-1.7 fake", f"quarantine/{seq:04d}-receipt.pdf", "application/octet-stream")
    w.append(DecisionRecord, actor=CHAIN, attachments=[kept], guard="boundaries.downloads", decision="allow",
             rationale="download from files.example.com kept in quarantine (13 bytes; never opened by Warden)",
             rule="boundaries.downloads", step=2,
             subject={"host": "files.example.com", "request_kind": "download", "suggested_filename": "receipt.pdf",
                      "bytes": 13, "page_url": PAGE})
    w.append(ExceptionRecord, actor=RUNNER, step=2, category="transient", error_type="TimeoutError",
             message="locator.fill: Timeout 5000ms exceeded", mitigation="retried", attempt=1)
    # Step 3: a danger zone, approved by a human at the prompt.
    _approval(h, 3, "ap-1111", approved=True)
    _step(h, 3, "click", {"role": "button", "name": "Save draft"}, url_before=PAGE, url_after=PAGE + "?saved=1")
    # Step 4: the target is not there (danger_zones' own decision, no kind), the step fails.
    w.append(DecisionRecord, actor=CHAIN, guard="danger_zones", decision="deny",
             rationale="target not found: the action cannot be checked; nothing was done",
             rule="danger_zone.unresolved", step=4, subject={"target": {"text": "Archive"}, "kind": "click"})
    w.append(ExceptionRecord, actor=RUNNER, step=4, category="step_failed", error_type="DriverError",
             message="target not resolved, nothing was done: no element", mitigation="aborted")
    # Step 5: the payment, denied by the deny channel: the approval gate's deny, a guardrail stop.
    _approval(h, 5, "ap-2222", approved=False)
    w.append(ExceptionRecord, actor=RUNNER, step=5, category="guardrail", error_type="GuardrailStop",
             message="approval not granted: approval denied (no approver: --approval deny (non-interactive))",
             mitigation="blocked")
    h.finish("stopped", 3)
    return h


def _approval(h: RunHandle, step: int, approval_id: str, *, approved: bool) -> None:
    w = h.writer
    w.append(DecisionRecord, actor=CHAIN, guard="chain", decision="require_approval",
             rationale="danger zone — default:pay", rule="danger_zone.default.pay", step=step, kind="click",
             subject={"target": {"role": "button", "name": "Submit payment"}, "page_url": PAGE},
             checks=_checks("require_approval"))
    w.append(ApprovalRequest, actor=RUNNER, approval_id=approval_id, step=step, kind="click", action_digest=DIGEST,
             zone="default:pay", rule="danger_zone.default.pay", reason="built-in danger zone 'pay'", risk_score=24,
             page_url=PAGE, target={"role": "button", "name": "Submit payment"},
             channel="prompt" if approved else "deny", expires_at="2030-01-01T00:00:00.000Z")
    if approved:
        w.append(ApprovalRecord, actor=Actor(type="human", id="bob"), approval_id=approval_id, decision="approved",
                 approver="bob", os_user="bob", reason="checked the amount", channel="prompt", action_digest=DIGEST,
                 rule="danger_zone.default.pay", answered_at="2026-11-05T10:00:09.000Z")
        return
    w.append(ApprovalRecord, actor=Actor(type="policy", id="approval_channel.deny"), approval_id=approval_id,
             decision="denied", approver=None, os_user="alice", reason="no approver: --approval deny (non-interactive)",
             channel="deny", action_digest=DIGEST, rule="danger_zone.default.pay",
             answered_at="2026-11-05T10:00:10.000Z")
    w.append(DecisionRecord, actor=Actor(type="policy", id="approval_gate"), guard="approval_gate", decision="deny",
             rationale=f"approval {approval_id} denied: no approver", rule="danger_zone.default.pay", step=step,
             kind="click", subject={"approval_id": approval_id})
