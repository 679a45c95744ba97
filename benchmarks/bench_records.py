"""Records shaped like a run's, for bench_evidence.py: what a long run of a 200-step mission writes.

Per step: the step's ``decision_record`` (with its checks), the ``action_record`` intent and its
outcome (duration, url after); every 10th step a network refusal, every 25th a page scan's
``pii_finding`` (v2: counts and three values; every 100th with a US_SSN), every 500th an approval
asked and answered. Selectors, calls and pages come from the mission (200 steps over 20 pages), so
strings repeat as in a run; hashes, ids, durations and steps do not.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import rfc8785

from evidence.canonical import canonical_form
from evidence.record_lines import hashed_line, jsonl_line
from evidence.records import (
    GENESIS_HASH,
    ActionRecord,
    Actor,
    ApprovalRecord,
    ApprovalRequest,
    DecisionRecord,
    PiiFinding,
    Record,
    RunRecord,
)
from evidence.runfolder import RunFolder, RunInfo, utc_timestamp

SHA = "ab" * 32
RUNNER = Actor(type="runner", id="warden/bench")
POLICY = Actor(type="policy", id="guard-chain")
PII = Actor(type="policy", id="pii-guard")
HUMAN = Actor(type="human", id="bob")
KINDS = ("click", "fill", "select", "check", "click", "press", "click", "wait_for")
Item = tuple[type[Record], Actor, tuple[()], dict[str, Any]]


def _hex(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _step(step: int) -> list[Item]:
    m = (step - 1) % 200  # the mission's step
    page = f"https://portal.example.com/orders/page-{m // 10}"
    kind = KINDS[m % len(KINDS)]
    sel = f"#order-form [data-field='f{m}']"
    items: list[Item] = []
    if step % 10 == 0:
        items.append((DecisionRecord, POLICY, (), {
            "guard": "boundaries.network", "decision": "deny", "step": None,
            "rationale": "tracker.ads.example is not in allowed_domains or allowed_resource_domains",
            "rule": "boundaries.allowed_resource_domains", "count": 1 + step % 3,
            "subject": {"host": "evil.localhost" if step % 20 == 0 else "tracker.ads.example", "port": 443,
                        "request": "xhr", "third_party": True, "page_url": page}}))
    items.append((DecisionRecord, POLICY, (), {
        "guard": "chain", "decision": "allow", "rationale": f"'{kind}' is allowed", "rule": "", "step": step,
        "kind": kind, "subject": {"selector": sel, "page_url": page},
        "checks": [{"guard": "boundaries.actions", "decision": "allow", "reason": f"'{kind}' is allowed", "rule": ""},
                   {"guard": "danger_zones", "decision": "allow", "reason": "no danger zone", "rule": ""}]}))
    if step % 500 == 0:
        apid = "ap-" + _hex("ap", step)[:16]
        items.append((ApprovalRequest, POLICY, (), {
            "approval_id": apid, "step": step, "kind": kind, "action_digest": _hex("d", step), "zone": "payments",
            "rule": "danger_zones.payments", "reason": "submits a payment", "risk_score": 7, "page_url": page,
            "target": {"selector": sel}, "channel": "queue", "expires_at": "2026-11-05T11:00:00.000Z"}))
        items.append((ApprovalRecord, HUMAN, (), {
            "approval_id": apid, "decision": "denied" if step % 1000 == 0 else "approved", "approver": "bob",
            "os_user": "bob", "reason": "checked the amount", "channel": "queue", "action_digest": _hex("d", step),
            "rule": "danger_zones.payments", "answered_at": "2026-11-05T10:00:09.000Z"}))
    target = {"selector": sel}
    call = f"page.locator({sel!r}).{kind}()"
    items.append((ActionRecord, RUNNER, (), {"phase": "intent", "step": step, "kind": kind, "target": target,
                                             "call": call, "url_before": page}))
    items.append((ActionRecord, RUNNER, (), {
        "phase": "outcome", "step": step, "kind": kind, "target": target, "call": call, "url_before": page,
        "url_after": page, "intent_id": str(uuid.UUID(_hex("i", step)[:32])), "outcome": "ok",
        "duration_ms": round(20 + (step * 7919 % 3000) / 10, 1), "retries": 0}))
    if step % 25 == 0:
        values = [
            {"entity_type": "EMAIL_ADDRESS", "score": 1.0, "value_hmac": _hex("e", step), "preview": "j***@e***.com",
             "action": "recorded", "location": {"selector": f"#row-{m} .email", "element": "text"}},
            {"entity_type": "PHONE_NUMBER", "score": 0.75, "value_hmac": _hex("p", step), "preview": "+** *** ****",
             "action": "recorded", "occurrences": 2, "location": {"selector": f"#row-{m} .tel", "element": "text"}},
            {"entity_type": "US_SSN" if step % 100 == 0 else "EMAIL_ADDRESS", "score": 0.85,
             "value_hmac": _hex("s", step), "preview": "***-**-****", "action": "recorded",
             "location": {"selector": f"#row-{m} .id", "element": "input"}},
        ]
        counts: dict[str, int] = {}
        for v in values:
            counts[str(v["entity_type"])] = counts.get(str(v["entity_type"]), 0) + 1
        items.append((PiiFinding, PII, (), {"step": step, "where": "page", "location": {"page_url": page},
                                            "key_id": "0123456789abcdef", "policy": "record", "action": "recorded",
                                            "counts": dict(sorted(counts.items())), "values": values}))
    return items


def run_fields(n: int) -> Iterator[Item]:
    """``n`` records' (type, actor, attachments, fields), as a run hands them to the writer."""
    made, step = 0, 0
    while made < n:
        step += 1
        for item in _step(step):
            if made == n:
                return
            made += 1
            yield item


def _start_record(run_id: str, start: datetime, phase: str) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "schema": RunRecord.schema_id(), "type": "run_record", "phase": phase,
        "initiator": {"user": "bench", "host": "bench"}, "started_by": "warden run", "mission_id": "bench",
        "mission_version": "1", "mission_sha256": SHA, "started_at": utc_timestamp(start)}
    if phase == "end":
        rec.update(outcome="completed", exit_code=0, ended_at=utc_timestamp(start))
    return rec


def _dicts(run_id: str, n: int, start: datetime) -> Iterator[dict[str, Any]]:
    yield {**_start_record(run_id, start, "start"), "actor": RUNNER.model_dump()}
    for cls, actor, _, fields in run_fields(n - 2):
        yield {**fields, "schema": cls.schema_id(), "type": cls.TYPE, "actor": actor.model_dump()}
    yield {**_start_record(run_id, start, "end"), "actor": RUNNER.model_dump()}


def chained(run_id: str, n: int, start: datetime, spacing_ms: int = 1) -> Iterator[tuple[dict[str, Any], str]]:
    """``n`` chained records of one run as (record dict with hash, line), in the writer's line format."""
    head = GENESIS_HASH
    for seq, rec in enumerate(_dicts(run_id, n, start), start=1):
        rec.update(record_id=f"{run_id[-6:]}-{seq:012d}", run_id=run_id, seq=seq, attachments=[],
                   time=utc_timestamp(start + timedelta(milliseconds=seq * spacing_ms)), prev_hash=head)
        canonical, fast = canonical_form(rec)
        head = hashlib.sha256(canonical.encode()).hexdigest()
        if seq <= 300:
            assert canonical.encode() == rfc8785.dumps(rec), "fast canonical encoder disagrees with RFC 8785"
        line = hashed_line(canonical, head) if fast else jsonl_line({**rec, "hash": head})
        rec["hash"] = head
        yield rec, line


def run_records(run_id: str, n: int, start: datetime, spacing_ms: int = 1) -> Iterator[tuple[Any, str]]:
    """(record-like object, line) for the index: attribute access as on a Record, no validation cost."""
    for rec, line in chained(run_id, n, start, spacing_ms):
        yield SimpleNamespace(**rec), line


def generate_run(evidence_dir: Path, run_id: str, n: int, start: datetime) -> RunFolder:
    """A finished run folder of ``n`` chained records, written in one pass (no per-record fsync)."""
    folder = RunFolder.create(evidence_dir, run_id)
    head = GENESIS_HASH
    with open(folder.records, "w", encoding="utf-8", buffering=1 << 20) as f:
        for rec, line in chained(run_id, n, start):
            f.write(line + "\n")
            head = rec["hash"]
    info = RunInfo(run_id=run_id, mission_id="bench", mission_version="1", mission_sha256=SHA,
                   started_at=utc_timestamp(start))
    folder.write_run_info(info.finish(status="completed", exit_code=0, chain_head=head, record_count=n))
    return folder


if __name__ == "__main__":  # a sample, to look at
    for _, line in chained("20261121T000000000Z-bench-sample", 12, datetime(2026, 11, 1)):
        print(json.dumps(json.loads(line), indent=None)[:200])
