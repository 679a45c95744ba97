"""``warden evidence export RUN --format jsonl|ocsf``: a run's records for another system (a SIEM).

``jsonl`` is ``records.jsonl`` as written (byte for byte: its hashes still verify).
``ocsf`` maps each record to one event of the Open Cybersecurity Schema Framework, version
``OCSF_VERSION`` (pinned; named in every event's ``metadata.version``). Every event validates
against that version's schema (tests/evidence/ocsf_schema.py checks each exported event against the
schema source vendored in tests/data/ocsf/). The mapping, documented in docs/ocsf.md:

==========================  ===================================================================
record                      OCSF 1.3.0 event
==========================  ===================================================================
action_record               API Activity (6003): the browser call; ``api.operation`` = action kind
decision_record (a step)    API Activity (6003): the call being decided, the verdict in
                            ``actor.authorizations`` (decision + policy = guard, rule, rationale)
decision_record (a request) Network Activity (4001) Refuse / Traffic, profiles Security Control
                            (``action_id``, ``disposition_id``, ``firewall_rule``) and Host (``actor``)
approval_request            API Activity (6003): the call waiting, ``require_approval``
approval_record             API Activity (6003): ``actor.user`` = the approver, the answer in
                            ``actor.authorizations``
run_record                  Application Lifecycle (6002) Start / Stop, profile Host
pii_finding, exception_record, version_log, other types
                            Base Event (0), activity Other (99) named by the record type
==========================  ===================================================================

Why these classes. The schema source Warden validates against (OCSF 1.3.0's base event,
Application Activity and Network Activity categories) has no class for "a policy decided about
an action": Authorize Session (3003) is about a login session's privileges and Web Resource Access
Activity (6004) is deprecated. API Activity carries authorization outcomes where OCSF puts them
for cloud audit logs (CloudTrail's "access denied"): ``actor.authorizations[]`` (``decision`` and the
``policy`` that decided). The Security Control profile (``action_id``, ``disposition_id``) is not
applicable to API Activity in 1.3.0, only to the Network category, so it is used for refused
requests alone, where it fits exactly (a firewall-like control refused a connection). A SIEM finds
every refusal across classes with ``actor.authorizations[].decision = "deny"``, and refused
requests also with ``action_id = 2``. PII findings, exceptions and version changes have no 1.3.0
class here (the finding classes are outside the vendored schema), so they are Base Events: their
summary in ``message``, severity and status normalised, the record kept in ``unmapped``.

Every record field is also kept under ``unmapped`` (with ``seq``, ``hash`` and ``prev_hash``, so an
event can be tied back to its record and its place in the chain). Structured URLs never carry a
query or fragment (they may carry PII): an OCSF ``url`` has ``scheme``, ``hostname``, ``port`` and
``path`` only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, Literal, TextIO

from evidence.ocsf_objects import endpoint, endpoint_of_url, epoch_ms, split_url, url_object
from evidence.timeline import summarize
from kernel import __version__

OCSF_VERSION = "1.3.0"
PRODUCT = {"name": "Warden", "vendor_name": "Warden", "version": __version__}
ExportFormat = Literal["jsonl", "ocsf"]

# (category_uid, category_name, class_uid, class_name)
API_ACTIVITY = (6, "Application Activity", 6003, "API Activity")
APP_LIFECYCLE = (6, "Application Activity", 6002, "Application Lifecycle")
NETWORK_ACTIVITY = (4, "Network Activity", 4001, "Network Activity")
BASE_EVENT = (0, "Uncategorized", 0, "Base Event")

# API Activity's activity_id from the browser action's kind: reads, updates, everything else Other.
_READ_KINDS = frozenset({"goto", "extract", "screenshot", "wait_for", "assert_text", "hover"})
_UPDATE_KINDS = frozenset({"fill", "select", "check", "uncheck", "click", "press", "type", "upload"})
_API_ACTIVITY_NAMES = {2: "Read", 3: "Update", 99: "Other"}
_SEVERITY = {0: "Unknown", 1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}
_STATUS = {0: "Unknown", 1: "Success", 2: "Failure"}  # 99 Other: ``status`` is Warden's own word
# Security Control profile (Network Activity): action_id (1 Allowed, 2 Denied) and disposition_id.
_CONTROL = {"allow": (1, "Allowed", 1, "Allowed"), "deny": (2, "Denied", 2, "Blocked")}
# Base Event activity names (activity_id 99 "Other": the name is the source's own).
_BASE_ACTIVITY = {"pii_finding": "PII Finding", "exception_record": "Exception", "version_log": "Version Log"}
# Guards whose decisions about a request (subject: host / request_kind) are network refusals.
_NETWORK_GUARDS = ("network", "boundaries.")
# The record envelope fields every event maps (metadata, time); the rest go to ``unmapped``.
_ENVELOPE = frozenset({"record_id", "run_id", "type", "time", "schema"})
def _api_activity_id(kind: Any) -> int:
    if kind in _READ_KINDS:
        return 2
    if kind in _UPDATE_KINDS:
        return 3
    return 99


def _policy(name: Any, rule: Any, why: Any) -> dict[str, Any]:
    policy: dict[str, Any] = {"name": str(name or "?"), "uid": str(rule or name or "?")}
    if why:
        policy["desc"] = str(why)
    return policy


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class OcsfMapper:
    """Maps the records of one run, in order (approval answers look up their request's step and kind)."""

    def __init__(self) -> None:
        self.initiator: dict[str, str] = {}
        self.requests: dict[str, dict[str, Any]] = {}
        self.last_url: str | None = None

    def map(self, d: dict[str, Any]) -> dict[str, Any]:
        t = d.get("type")
        if t == "run_record" and d.get("phase") == "start":
            self.initiator = {str(k): str(v) for k, v in _dict(d.get("initiator")).items()}
        if t == "approval_request":
            self.requests[str(d.get("approval_id"))] = d
        if t == "action_record":
            event = self._action(d)
            if isinstance(d.get("url_after"), str):
                self.last_url = d["url_after"]
            return event
        if t == "decision_record":
            return self._network(d) if self._is_request(d) else self._decision(d)
        if t == "approval_request":
            return self._approval_request(d)
        if t == "approval_record":
            return self._approval(d)
        if t == "run_record":
            return self._run(d)
        return self._base(d)

    # -- shared ------------------------------------------------------------------------------------

    def _event(
        self, d: dict[str, Any], cls: tuple[int, str, int, str], activity_id: int, activity_name: str, *,
        severity_id: int = 1, status_id: int | None = None, status: str | None = None,
        profiles: Iterable[str] = (), maps_actor: bool = True,
    ) -> dict[str, Any]:
        """The attributes every class has (base event: classification, occurrence, metadata, status)."""
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
            "severity": _SEVERITY[severity_id],
            "time": epoch_ms(str(d["time"])),
            "timezone_offset": 0,  # record times are UTC
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
                "log_provider": "Warden evidence",
                "profiles": sorted(set(profiles)),
            },
        }
        if status_id is not None:
            event["status_id"] = status_id
            event["status"] = status if status_id == 99 and status else _STATUS.get(status_id, "Other")
        skip = _ENVELOPE | ({"actor"} if maps_actor else set())
        event["unmapped"] = {k: v for k, v in d.items() if k not in skip}
        return event

    def _user(self) -> dict[str, Any] | None:
        """The human who started the run: the user context everything in it runs in."""
        name = self.initiator.get("user")
        if not name:
            return None
        user: dict[str, Any] = {"name": name, "type_id": 1, "type": "User"}
        if self.initiator.get("uid"):
            user["uid"] = self.initiator["uid"]
        return user

    def _actor(self, actor: Any) -> dict[str, Any]:
        actor = _dict(actor)
        kind, ident = str(actor.get("type", "")), str(actor.get("id", ""))
        if kind == "human":
            return {"user": {"name": ident, "type_id": 1, "type": "User"}}
        out: dict[str, Any] = {"app_name": ident if kind == "runner" else f"{kind}:{ident}"}
        if (user := self._user()) is not None:  # the runner and its guards act for the initiator
            out["user"] = user
        return out

    def _src(self) -> dict[str, Any]:
        """Where the activity came from: the Warden host (the sandboxed browser runs there)."""
        return endpoint(self.initiator.get("host")) or {"hostname": "localhost"}

    def _device(self) -> dict[str, Any]:
        """The Host profile's device: the Warden host (its kind is not recorded)."""
        return {**self._src(), "type_id": 0, "type": "Unknown"}

    def _page(self, url: Any) -> str | None:
        """The page a decision is about: the one named in the record, else the last one reached."""
        return url if split_url(url) is not None else self.last_url

    def _api(self, e: dict[str, Any], d: dict[str, Any], operation: str, service: str, request_uid: Any,
             page: Any, authorizations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """API Activity's required actor, api and src_endpoint; the page as dst_endpoint and http_request."""
        e["actor"] = self._actor(d.get("actor"))
        if authorizations:
            e["actor"]["authorizations"] = authorizations
        e["api"] = {"operation": operation, "service": {"name": service}, "request": {"uid": str(request_uid)}}
        e["src_endpoint"] = self._src()
        if (dst := endpoint_of_url(page)) is not None:
            e["dst_endpoint"] = dst
        if (url := url_object(page)) is not None:
            e["http_request"] = {"url": url}
        return e

    # -- classes -----------------------------------------------------------------------------------

    def _action(self, d: dict[str, Any]) -> dict[str, Any]:
        aid = _api_activity_id(d.get("kind"))
        outcome = d.get("outcome")
        if d.get("phase") == "intent":  # written before the call: its outcome is not known yet
            status_id, status = 99, "Intent"
        else:
            status_id, status = (1 if outcome == "ok" else 2), None
        e = self._event(d, API_ACTIVITY, aid, _API_ACTIVITY_NAMES[aid], status_id=status_id, status=status,
                        severity_id=3 if status_id == 2 else 1)
        if outcome:
            e["status_code"] = str(outcome)
        if d.get("error"):
            e["status_detail"] = str(d["error"])
        if isinstance(d.get("duration_ms"), int | float):
            e["duration"] = int(d["duration_ms"])
        return self._api(e, d, str(d.get("kind")), "Playwright", d.get("intent_id") or d.get("record_id"),
                         d.get("url_after") or d.get("url_before"))

    @staticmethod
    def _is_request(d: dict[str, Any]) -> bool:
        """A decision about a browser request (the request gate's refusals, quarantined downloads)."""
        subject = _dict(d.get("subject"))
        if "request_kind" in subject:
            return True
        return str(d.get("guard", "")).startswith(_NETWORK_GUARDS) and bool(subject.get("host") or subject.get("url"))

    def _decision(self, d: dict[str, Any]) -> dict[str, Any]:
        """A guard's verdict on a step: the API Activity it decides, the verdict in actor.authorizations."""
        verdict = str(d.get("decision"))
        subject = _dict(d.get("subject"))
        kind = d.get("kind") or subject.get("kind")
        aid = _api_activity_id(kind)
        status_id = {"allow": 1, "deny": 2}.get(verdict, 99)
        e = self._event(d, API_ACTIVITY, aid, _API_ACTIVITY_NAMES[aid], status_id=status_id,
                        status="Approval Required", severity_id={"deny": 3, "allow": 1}.get(verdict, 2))
        e["status_detail"] = str(d.get("rationale") or "")
        if isinstance(d.get("count"), int) and d["count"] > 1:
            e["count"] = d["count"]
        # The verdict first, then each guard's check that led to it.
        authorizations = [{"decision": verdict, "policy": _policy(d.get("guard"), d.get("rule"), d.get("rationale"))}]
        for check in d.get("checks") or []:
            if isinstance(check, dict):
                authorizations.append({"decision": str(check.get("decision")),
                                       "policy": _policy(check.get("guard"), check.get("rule"), check.get("reason"))})
        target_url = _dict(subject.get("target")).get("url")  # a goto is about where it goes
        page = target_url if kind == "goto" and split_url(target_url) else self._page(subject.get("page_url"))
        return self._api(e, d, str(kind or d.get("guard")), "Warden guard chain", d.get("record_id"), page,
                         authorizations)

    def _network(self, d: dict[str, Any]) -> dict[str, Any]:
        """A refused (or quarantined) browser request: Network Activity with the Security Control profile."""
        verdict = str(d.get("decision"))
        subject = _dict(d.get("subject"))
        refused = verdict != "allow"
        aid, name = (5, "Refuse") if refused else (6, "Traffic")
        e = self._event(d, NETWORK_ACTIVITY, aid, name, severity_id=3 if refused else 1,
                        status_id=2 if refused else 1, profiles=("security_control", "host"))
        e["status_detail"] = str(d.get("rationale") or "")
        action_id, action, disposition_id, disposition = _CONTROL["deny" if refused else "allow"]
        e.update(action_id=action_id, action=action, disposition_id=disposition_id, disposition=disposition)
        rule = str(d.get("rule") or d.get("guard") or "?")
        e["firewall_rule"] = {"name": rule, "uid": rule, "category": str(d.get("guard")),
                              "desc": str(d.get("rationale") or "")}
        e["actor"] = self._actor(d.get("actor"))  # the Host profile's actor: the gate, for the initiator
        e["actor"]["authorizations"] = [{"decision": verdict,
                                         "policy": _policy(d.get("guard"), d.get("rule"), d.get("rationale"))}]
        e["device"] = self._device()
        e["src_endpoint"] = self._src()
        split = split_url(subject.get("url"))
        host = subject.get("host") or (split[1] if split else None)
        port = subject.get("port") if isinstance(subject.get("port"), int) else (split[2] if split else None)
        e["dst_endpoint"] = endpoint(host, port) or {"name": "unknown"}
        if (url := url_object(subject.get("url"))) is not None:
            e["url"] = url
        e["connection_info"] = {"direction_id": 2, "direction": "Outbound"}
        if isinstance(d.get("count"), int) and d["count"] > 1:
            e["count"] = d["count"]
        return e

    def _approval_request(self, d: dict[str, Any]) -> dict[str, Any]:
        """The runner asks a human: the API Activity waiting for that authorization."""
        aid = _api_activity_id(d.get("kind"))
        e = self._event(d, API_ACTIVITY, aid, _API_ACTIVITY_NAMES[aid], status_id=99, status="Approval Requested",
                        severity_id=2)
        e["status_detail"] = str(d.get("reason") or "")
        policy = _policy("approval", d.get("rule"), d.get("reason"))
        authorizations = [{"decision": "require_approval", "policy": policy}]
        return self._api(e, d, str(d.get("kind")), f"Warden approvals ({d.get('channel')})", d.get("approval_id"),
                         self._page(d.get("page_url")), authorizations)

    def _approval(self, d: dict[str, Any]) -> dict[str, Any]:
        """A human's (or a deny channel's) answer: the approver as actor.user, the answer as its authorization."""
        verdict = str(d.get("decision"))
        request = self.requests.get(str(d.get("approval_id")), {})
        kind = request.get("kind")
        aid = _api_activity_id(kind)
        status_id = 1 if verdict == "approved" else 2
        e = self._event(d, API_ACTIVITY, aid, _API_ACTIVITY_NAMES[aid], status_id=status_id,
                        severity_id=1 if status_id == 1 else 3)
        e["status_code"] = verdict
        e["status_detail"] = str(d.get("reason") or "")
        authorizations = [{"decision": verdict, "policy": _policy("approval", d.get("rule"), d.get("reason"))}]
        e = self._api(e, d, str(kind or "approval"), f"Warden approvals ({d.get('channel')})", d.get("approval_id"),
                      self._page(request.get("page_url")), authorizations)
        if d.get("approver"):
            user: dict[str, Any] = {"name": str(d["approver"]), "type_id": 1, "type": "User"}
            if d.get("os_user"):
                user["account"] = {"name": str(d["os_user"])}
            e["actor"]["user"] = user
        if request:
            e["unmapped"]["request"] = {k: request.get(k) for k in ("step", "kind", "zone", "target", "page_url")}
        return e

    def _run(self, d: dict[str, Any]) -> dict[str, Any]:
        start = d.get("phase") == "start"
        outcome = d.get("outcome")
        status_id = 1 if start or outcome == "completed" else 2
        e = self._event(d, APP_LIFECYCLE, 3 if start else 4, "Start" if start else "Stop", status_id=status_id,
                        severity_id=1 if status_id != 2 else 3, profiles=("host",))
        if not start:
            e["status_code"] = str(outcome)
            if d.get("exit_code") is not None:
                e["status_detail"] = f"exit code {d['exit_code']}"
            try:
                e["start_time"], e["end_time"] = epoch_ms(str(d["started_at"])), epoch_ms(str(d["ended_at"]))
                e["duration"] = e["end_time"] - e["start_time"]
            except (KeyError, ValueError):
                pass
        versions = _dict(d.get("versions"))
        e["app"] = {"name": "Warden", "vendor_name": "Warden", "version": str(versions.get("warden", __version__)),
                    "feature": {"name": f"mission {d.get('mission_id')} v{d.get('mission_version')}"}}
        e["actor"] = self._actor(d.get("actor"))  # the Host profile's actor and device
        e["device"] = self._device()
        return e

    def _base(self, d: dict[str, Any]) -> dict[str, Any]:
        """No 1.3.0 class here (findings, exceptions, version changes): a Base Event, activity Other."""
        t = str(d.get("type"))
        verdict, _ = summarize(d)
        status_id: int | None = None
        status: str | None = None
        severity = 1
        if t == "exception_record":
            status_id, severity = 2, 3
        elif t == "pii_finding":
            status_id, status = 99, str(d.get("action") or "recorded").replace("_", " ").title()
            severity = {"blocked": 3, "approval_required": 2}.get(str(d.get("action")), 2)
        elif verdict in {"blocked", "aborted", "expired", "deny", "denied"}:
            severity = 3
        e = self._event(d, BASE_EVENT, 99, _BASE_ACTIVITY.get(t, "Other"), severity_id=severity,
                        status_id=status_id, status=status, maps_actor=False)
        if t == "exception_record":
            e["status_code"] = str(d.get("error_type"))
            e["status_detail"] = str(d.get("message"))
        return e


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
