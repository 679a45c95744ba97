"""The PII guards of the step chain and the request chain: pure policy over what is typed and sent.

* ``PiiInputGuard`` — step chain: each value about to be typed (``fill``, ``press``, ``select``) is
  scanned *before* it reaches the page; ``pii.on_input``: record → allow, approve →
  ``require_approval`` (the approval desk decides), block → deny;
* ``PiiRequestGuard`` — request chain: path, query, body, header values (custom headers, the
  cookies the browser adds, the referer) and host labels of every routed request (form posts,
  fetch/XHR, beacons, EventSource, each WebSocket message), raw and decoded, *before* it leaves;
  ``pii.on_request``: record → allow,
  approve or block → the request is refused and the run stops (exit 3). A request cannot wait for
  a human inside the browser's route, so ``approve`` is a refusal there, stated as such.

They write nothing: each finding travels back on the decision as an ``Observation`` (entity,
score, where, the policy's action), and the values typed as ``Decision.learn``; the runner
(``runner/pii_runtime.py``) records them as ``pii_finding`` records and feeds its redactor.
Allowed entities (``pii.allow``) are reported with ``action: allowed`` and not gated.

Fail closed: a scan that raises or times out denies (input: not typed; request: refused, and the
run stops), with ``Decision.failure`` saying why — never the value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from guards.base import ActionRequest, Decision, FindingAction, GuardContext, Observation
from guards.observed import RequestContext, RequestInfo
from guards.pii.errors import PiiScanError
from guards.pii.request_texts import header_texts, host_texts
from guards.secrets import SecretSet, input_values
from guards.urlmatch import UnparseableURL, canonical_host, page_without_query

if TYPE_CHECKING:
    from guards.pii.finding import Finding
    from guards.pii.scanner import PiiScanner

Policy = Literal["record", "approve", "block"]

_ACTION: dict[str, FindingAction] = {"record": "recorded", "approve": "approval_required", "block": "blocked"}


def _host(url: str) -> str:
    try:
        return canonical_host(url)
    except (UnparseableURL, ValueError):
        return ""


def _masked_host(host: str) -> str:
    """``123-45-6789.evil.example`` → ``«pii».evil.example``: labels holding a digit are masked."""
    return ".".join("«pii»" if any(c.isdigit() for c in label) else label for label in host.split("."))


def typed_values(kind: str, args: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(argument name, value) of what an action types into the page."""
    return [(f, v) for f, v in input_values(kind, args) if v]


_KEY_NAME = re.compile(r"(?:[A-Z][A-Za-z0-9]*\+)*(?:[A-Z][A-Za-z0-9]*|.)")  # Enter, Control+A, F5, a


def registrable(kind: str, field_name: str, value: str) -> bool:
    """Whether a typed value becomes a known value (redacted wherever it recurs): free text typed with
    ``fill`` or ``press``; not a key name (``Enter``), not a ``select`` option (a listed choice)."""
    if kind == "select":
        return False
    return not (kind == "press" and _KEY_NAME.fullmatch(value))


def _context_words(args: Mapping[str, Any]) -> list[str]:
    """Words naming the field (label, placeholder, name, selector) — Presidio's context for an input."""
    words: list[str] = []
    for k in ("label", "placeholder", "name", "selector", "test_id", "text"):
        v = args.get(k)
        if isinstance(v, str):
            words.extend(w for w in re.findall(r"[A-Za-z]{3,}", v)[:6])
    return words


@dataclass(frozen=True)
class PolicyVerdict:
    verdict: Literal["allow", "deny", "require_approval"]
    reason: str


def judge(findings: Sequence[Finding], policy: Policy, where: str) -> PolicyVerdict:
    """What ``pii.on_*`` says about these findings (allowed entities never gate)."""
    gated = sorted({f.entity_type for f in findings if not f.allowed})
    allowed = sorted({f.entity_type for f in findings if f.allowed})
    tail = f" (allowed, recorded: {', '.join(allowed)})" if allowed else ""
    if not gated:
        return PolicyVerdict("allow", f"no gated PII {where}{tail}" if findings else f"no PII {where}")
    names = ", ".join(gated)
    if policy == "record":
        return PolicyVerdict("allow", f"PII {where} ({names}) recorded (pii.on_* = record){tail}")
    if policy == "approve":
        return PolicyVerdict("require_approval", f"PII {where} ({names}) needs approval{tail}")
    return PolicyVerdict("deny", f"PII {where} ({names}) blocked by policy{tail}")


def action_for(f: Finding, policy: Policy) -> FindingAction:
    return "allowed" if f.allowed else _ACTION[policy]


class PiiInputGuard:
    """Step chain: the PII scan of each value about to be typed, before it reaches the page."""

    name = "pii.input"

    def __init__(self, scanner: PiiScanner, policy: Policy, secrets: SecretSet) -> None:
        self.scanner = scanner
        self.policy: Policy = policy
        self.secrets = secrets

    def check(self, action: ActionRequest, ctx: GuardContext) -> Decision:
        values = typed_values(action.kind, action.args)
        if not values:
            return Decision.allow(self.name, "nothing typed", "pii.on_input")
        findings: list[Finding] = []
        context = _context_words(action.args)
        learn = tuple(v for f, v in values if registrable(action.kind, f, v))
        for _field, value in values:
            try:
                findings.extend(self.scanner.scan_text(self.secrets.strip(value), "input", context=context))
            except PiiScanError as exc:
                reason = f"{exc}: the value is not typed (fail closed)"
                return Decision(self.name, "deny", reason, "pii.scan_error", failure=reason, learn=learn)
        target = {k: action.args[k] for k in ("selector", "label", "placeholder", "role", "name", "test_id", "text")
                  if isinstance(action.args.get(k), str)}
        where = {"target": target, "kind": action.kind, "page_url": page_without_query(ctx.page_url)}
        seen = tuple(Observation(f, "input", self.policy, action_for(f, self.policy), where, (action.step_no,))
                     for f in findings)
        g = judge(findings, self.policy, "in the typed value")
        return Decision(self.name, g.verdict, g.reason, "pii.on_input", findings=seen, learn=learn)


class PiiRequestGuard:
    """Request chain: the PII scan of each outgoing request's path, query and body, before it leaves."""

    name = "pii.request"

    def __init__(self, scanner: PiiScanner, policy: Policy) -> None:
        self.scanner = scanner
        self.policy: Policy = policy

    def check_request(self, request: RequestInfo, ctx: RequestContext) -> Decision:
        host = _host(request.url)
        ctype = next((v for k, v in request.headers.items() if k.lower() == "content-type"), None)
        try:
            findings = self._scan(request, ctype)
        except PiiScanError as exc:
            reason = f"{exc}: the request to {host or '?'} is refused and the run stops (fail closed)"
            return Decision(self.name, "deny", reason, "pii.scan_error", {"host": host, "stop": True}, failure=reason)
        if not findings:
            return Decision.allow(self.name, "no PII in the request", "pii.on_request")
        if any(f.source == "host" for f in findings):
            host = _masked_host(host)  # the value itself was a label: never name it
        g = judge(findings, self.policy, f"in a request to {host or '?'}")
        refused = g.verdict != "allow"
        seen = tuple(
            Observation(
                f, "request", self.policy, "allowed" if f.allowed else ("blocked" if refused else "recorded"),
                {"host": host or None, "method": request.method, "request_kind": request.kind,
                 "resource_type": request.resource_type, "source": f.source,
                 "page_url": page_without_query(ctx.page_url)},
                (ctx.step, host, f.source),
            )
            for f in findings
        )
        if not refused:
            return Decision(self.name, "allow", g.reason, "pii.on_request", {"host": host}, findings=seen)
        how = "approval is not available for requests: refused" if self.policy == "approve" else "refused"
        return Decision(self.name, "deny", f"{g.reason}; {how}; the run stops", "pii.on_request",
                        {"host": host, "stop": True}, findings=seen)

    def _scan(self, request: RequestInfo, ctype: str | None) -> list[Finding]:
        """Path, query and body (the scanner), then header values and host labels, one finding per value."""
        found = list(self.scanner.scan_request(request.url, request.body, ctype))
        try:
            extra = [*header_texts(request.headers), *host_texts(request.url)]
        except Exception as exc:  # decoding must not fail open
            raise PiiScanError(f"request headers could not be decoded for the PII scan: {type(exc).__name__}") from exc
        seen = {(f.entity_type, f.value_hmac) for f in found}
        for source, text, _fine in sorted(extra, key=lambda t: -t[2]):  # a single value names the place
            for f in self.scanner.scan_text(text, "request"):
                if (f.entity_type, f.value_hmac) not in seen:
                    seen.add((f.entity_type, f.value_hmac))
                    found.append(replace(f, source=source))
        return found
