"""``warden evidence export RUN --format jsonl|ocsf``: a run's records for another system (a SIEM).

``jsonl`` is ``records.jsonl`` as written (byte for byte: its hashes still verify).
``ocsf`` maps each record to one event of the Open Cybersecurity Schema Framework, version
``OCSF_VERSION`` (pinned; named in every event's ``metadata.version``). The mapping, documented in
docs/evidence.md ("Export"):

=======================  ====================================================================
record                   OCSF event
=======================  ====================================================================
action_record            API Activity (6003): the browser call; ``api.operation`` = action kind
decision_record (step)   API Activity (6003) + Security Control profile: the guard chain's
                         authorization of that call (``action_id`` Allowed/Denied, ``policy``)
decision_record (network) Network Activity (4001) Refuse/Traffic + Security Control profile
approval_record          API Activity (6003) + Security Control profile: a human's authorization
                         (``actor.user`` = approver, ``disposition`` Approved/Blocked)
run_record               Application Lifecycle (6002) Start/Stop of the run
other types              Base Event (0), summary in ``message``
=======================  ====================================================================

OCSF 1.3.0 has no generic "authorization decision" class: Authorize Session (3003) is about
privileges given to a login session, and Web Resource Access Activity (6004), its access-grant
class, is deprecated in favour of the Security Control profile on the activity itself. So a
decision is the activity event it authorizes, carrying the control's verdict. Every field OCSF has
no attribute for is kept under ``unmapped`` (with ``seq``, ``hash`` and ``prev_hash``, so an event can
be tied back to its record and its place in the chain).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, Literal, TextIO
from urllib.parse import urlsplit

from evidence.timeline import summarize
from kernel import __version__

OCSF_VERSION = "1.3.0"
PRODUCT = {"name": "Warden", "vendor_name": "Warden", "version": __version__}
ExportFormat = Literal["jsonl", "ocsf"]

API_ACTIVITY = (6, "Application Activity", 6003, "API Activity")
APP_LIFECYCLE = (6, "Application Activity", 6002, "Application Lifecycle")
NETWORK_ACTIVITY = (4, "Network Activity", 4001, "Network Activity")
BASE_EVENT = (0, "Uncategorized", 0, "Base Event")

# API Activity's activity_id from the browser action's kind: reads, updates, everything else Other.
_READ_KINDS = frozenset({"goto", "extract", "screenshot", "wait_for", "assert_text", "hover"})
_UPDATE_KINDS = frozenset({"fill", "select", "check", "uncheck", "click", "press", "type", "upload"})
_API_ACTIVITY_NAMES = {2: "Read", 3: "Update", 99: "Other"}
_SEVERITY = {1: "Informational", 2: "Low", 3: "Medium", 4: "High"}
_STATUS = {0: "Unknown", 1: "Success", 2: "Failure", 99: "Other"}
# Security Control profile: action_id (1 Allowed, 2 Denied) and disposition_id per verdict.
_CONTROL = {
    "allow": (1, "Allowed", 1, "Allowed"),
    "deny": (2, "Denied", 2, "Blocked"),
    "require_approval": (0, "Unknown", 99, "Approval Required"),
    "approved": (1, "Allowed", 8, "Approved"),
    "denied": (2, "Denied", 2, "Blocked"),
    "expired": (2, "Denied", 99, "Expired"),
}
# Record fields that have an OCSF home; the rest go to ``unmapped``.
_MAPPED = frozenset({"record_id", "run_id", "type", "time", "actor", "schema"})


def epoch_ms(rfc3339: str) -> int:
    return int(datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp() * 1000)


def _actor(actor: dict[str, Any], initiator: dict[str, str]) -> dict[str, Any]:
    kind, ident = str(actor.get("type", "")), str(actor.get("id", ""))
    if kind == "human":
        return {"user": {"name": ident, "type_id": 1, "type": "User"}}
    if kind == "runner":
        user = initiator.get("user")
        out: dict[str, Any] = {"app_name": ident}
        if user:  # the runner acts on behalf of the human who started it
            out["invoked_by"] = user
        return out
    return {"app_name": f"{kind}:{ident}"}  # policy guards, page-originated events


def _endpoint_of_url(url: Any) -> dict[str, Any] | None:
    if not isinstance(url, str) or not url:
        return None
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    ep: dict[str, Any] = {"hostname": parts.hostname}
    try:
        if parts.port is not None:
            ep["port"] = parts.port
    except ValueError:
        pass
    return ep


def _http_request(url: Any) -> dict[str, Any] | None:
    if not isinstance(url, str) or not url:
        return None
    parts = urlsplit(url)
    return {"url": {"url_string": url, "scheme": parts.scheme, "hostname": parts.hostname or "", "path": parts.path}}


def _api_activity_id(kind: Any) -> int:
    if kind in _READ_KINDS:
        return 2
    if kind in _UPDATE_KINDS:
        return 3
    return 99


class OcsfMapper:
    """Maps the records of one run, in order (approval answers look up their request's step and kind)."""

    def __init__(self) -> None:
        self.initiator: dict[str, str] = {}
        self.requests: dict[str, dict[str, Any]] = {}
        self.last_url: str | None = None

    def map(self, d: dict[str, Any]) -> dict[str, Any]:
        t = d.get("type")
        if t == "run_record" and d.get("phase") == "start":
            self.initiator = {str(k): str(v) for k, v in (d.get("initiator") or {}).items()}
        if t == "approval_request":
            self.requests[str(d.get("approval_id"))] = d
        if t == "action_record" and isinstance(d.get("url_after"), str):
            self.last_url = d["url_after"]
        if t == "action_record":
            return self._action(d)
        if t == "decision_record":
            return self._decision(d)
        if t == "approval_record":
            return self._approval(d)
        if t == "run_record":
            return self._run(d)
        return self._base(d)

    # -- shared ------------------------------------------------------------------------------------

    def _event(
        self, d: dict[str, Any], cls: tuple[int, str, int, str], activity_id: int, activity_name: str, *,
        severity_id: int = 1, status_id: int = 0, status: str | None = None, profiles: Iterable[str] = (),
        mapped: Iterable[str] = (),
    ) -> dict[str, Any]:
        category_uid, category_name, class_uid, class_name = cls
        event: dict[str, Any] = {
            "category_uid": category_uid,
            "category_name": category_name,
            "class_uid": class_uid,
            "class_name": class_name,
            "activity_id": activity_id,
            "activity_name": activity_name,
            "type_uid": class_uid * 100 + activity_id,
            "type_name": f"{class_name}: {activity_name}",
            "severity_id": severity_id,
            "severity": _SEVERITY.get(severity_id, "Other"),
            "status_id": status_id,
            "status": status or _STATUS.get(status_id, "Other"),
            "time": epoch_ms(str(d["time"])),
            "message": summarize(d)[1],
            "metadata": {
                "version": OCSF_VERSION,
                "product": dict(PRODUCT),
                "uid": d.get("record_id"),
                "original_time": d.get("time"),
                "correlation_uid": d.get("run_id"),
                "sequence": d.get("seq"),
                "event_code": d.get("type"),
                "log_name": "records.jsonl",
                "profiles": sorted(set(profiles)),
            },
            "actor": _actor(d.get("actor") or {}, self.initiator),
            "src_endpoint": self._src(),
        }
        skip = _MAPPED | set(mapped)
        event["unmapped"] = {k: v for k, v in d.items() if k not in skip}
        return event

    def _src(self) -> dict[str, Any]:
        """Where the activity came from: the Warden host (the sandboxed browser runs there)."""
        return {"hostname": self.initiator.get("host") or "localhost"}

    @staticmethod
    def _control(event: dict[str, Any], verdict: str, *, policy_name: str, rule: str, why: str) -> None:
        action_id, action, disposition_id, disposition = _CONTROL.get(verdict, (0, "Unknown", 99, verdict))
        event.update(
            action_id=action_id, action=action, disposition_id=disposition_id, disposition=disposition,
            is_alert=action_id == 2,
            policy={"name": policy_name, "uid": rule or policy_name, "desc": why},
        )
        event["metadata"]["profiles"] = sorted({*event["metadata"]["profiles"], "security_control"})

    # -- classes -----------------------------------------------------------------------------------

    def _action(self, d: dict[str, Any]) -> dict[str, Any]:
        aid = _api_activity_id(d.get("kind"))
        outcome = d.get("outcome")
        status: str | None
        if d.get("phase") == "intent":
            status_id, status = 99, "Intent"
        else:
            status_id = 1 if outcome == "ok" else 2
            status = None if outcome == "ok" else str(outcome or "failed").title()
        e = self._event(d, API_ACTIVITY, aid, _API_ACTIVITY_NAMES[aid], status_id=status_id, status=status,
                        severity_id=3 if status_id == 2 else 1)
        e["api"] = {"operation": str(d.get("kind")), "service": {"name": "Playwright"},
                    "request": {"uid": d.get("intent_id") or d.get("record_id")}}
        url = d.get("url_after") or d.get("url_before")
        if (dst := _endpoint_of_url(url)) is not None:
            e["dst_endpoint"] = dst
        if (req := _http_request(url)) is not None:
            e["http_request"] = req
        if isinstance(d.get("duration_ms"), int | float):
            e["duration"] = int(d["duration_ms"])
        if d.get("error"):
            e["status_detail"] = str(d["error"])
        return e

    def _decision(self, d: dict[str, Any]) -> dict[str, Any]:
        verdict = str(d.get("decision"))
        raw_subject = d.get("subject")
        subject: dict[str, Any] = raw_subject if isinstance(raw_subject, dict) else {}
        network = d.get("kind") is None and d.get("step") is None and (
            "host" in subject or "url" in subject or str(d.get("guard", "")).startswith("network")
        )
        severity = 3 if verdict == "deny" else 1
        if network:
            aid, name = (5, "Refuse") if verdict == "deny" else (6, "Traffic")
            e = self._event(d, NETWORK_ACTIVITY, aid, name, severity_id=severity,
                            status_id=2 if verdict == "deny" else 1)
            dst: dict[str, Any] = {}
            if isinstance(subject.get("host"), str):
                dst["hostname"] = subject["host"]
            if isinstance(subject.get("port"), int):
                dst["port"] = subject["port"]
            if not dst and (from_url := _endpoint_of_url(subject.get("url"))) is not None:
                dst = from_url
            e["dst_endpoint"] = dst or {"hostname": "unknown"}
            if (req := _http_request(subject.get("url"))) is not None:
                e["http_request"] = req
        else:
            aid = _api_activity_id(d.get("kind"))
            status_id = {"allow": 1, "deny": 2}.get(verdict, 99)
            e = self._event(d, API_ACTIVITY, aid, _API_ACTIVITY_NAMES[aid], severity_id=severity,
                            status_id=status_id, status=None if status_id != 99 else "Approval Required")
            e["api"] = {"operation": str(d.get("kind") or d.get("guard")), "service": {"name": "Warden guard chain"}}
            if (page := _endpoint_of_url(self.last_url)) is not None:
                e["dst_endpoint"] = page
        if isinstance(d.get("count"), int) and d["count"] > 1:
            e["count"] = d["count"]
        self._control(e, verdict, policy_name=str(d.get("guard")), rule=str(d.get("rule") or ""),
                      why=str(d.get("rationale") or ""))
        return e

    def _approval(self, d: dict[str, Any]) -> dict[str, Any]:
        verdict = str(d.get("decision"))
        request = self.requests.get(str(d.get("approval_id")), {})
        kind = request.get("kind")
        aid = _api_activity_id(kind)
        status_id = 1 if verdict == "approved" else 2
        e = self._event(d, API_ACTIVITY, aid, _API_ACTIVITY_NAMES[aid], status_id=status_id,
                        status=None if verdict != "expired" else "Expired", severity_id=1 if status_id == 1 else 3)
        who = d.get("approver") or d.get("os_user")
        e["actor"] = {"user": {"name": str(who), "uid": str(d.get("os_user")), "type_id": 1, "type": "User"}}
        e["api"] = {"operation": str(kind or "approval"), "service": {"name": f"Warden approvals ({d.get('channel')})"},
                    "request": {"uid": d.get("approval_id")}}
        if (dst := _endpoint_of_url(request.get("page_url") or self.last_url)) is not None:
            e["dst_endpoint"] = dst
        if request:
            e["unmapped"]["request"] = {k: request.get(k) for k in ("step", "kind", "zone", "target", "page_url")}
        self._control(e, verdict, policy_name="approval", rule=str(d.get("rule") or ""), why=str(d.get("reason") or ""))
        return e

    def _run(self, d: dict[str, Any]) -> dict[str, Any]:
        start = d.get("phase") == "start"
        outcome = d.get("outcome")
        status_id = 0 if start else (1 if outcome == "completed" else 2)
        e = self._event(d, APP_LIFECYCLE, 3 if start else 4, "Start" if start else "Stop", status_id=status_id,
                        status=None if start else str(outcome), severity_id=1 if status_id != 2 else 3)
        raw_versions = d.get("versions")
        versions: dict[str, Any] = raw_versions if isinstance(raw_versions, dict) else {}
        e["app"] = {"name": "Warden", "vendor_name": "Warden", "version": str(versions.get("warden", __version__)),
                    "feature": {"name": f"mission {d.get('mission_id')} v{d.get('mission_version')}"}}
        return e

    def _base(self, d: dict[str, Any]) -> dict[str, Any]:
        verdict, _ = summarize(d)
        bad = verdict in {"blocked", "aborted", "expired", "deny", "denied"} or d.get("type") == "exception_record"
        return self._event(d, BASE_EVENT, 99, "Other", severity_id=3 if bad else 1, status_id=0)


def ocsf_events(records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """One OCSF event per record, in order."""
    mapper = OcsfMapper()
    for d in records:
        yield mapper.map(d)


def export_run(lines: Iterable[str], fmt: ExportFormat, out: TextIO) -> int:
    """Write a run's records (the lines of ``records.jsonl``) as ``fmt``; returns events written."""
    n = 0
    if fmt == "jsonl":
        for line in lines:
            out.write(line.rstrip("\n") + "\n")
            n += 1
        return n
    parsed = (json.loads(line) for line in lines if line.strip())
    for event in ocsf_events(parsed):
        out.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n")
        n += 1
    return n
