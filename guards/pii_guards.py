"""The PII guard at its three scan points, the secret bindings, and screenshot masks (SPEC §4 PII).

One ``PiiRuntime`` per run holds the scanner (built once, offline), the evidence key, the
known-value redactor and what the run learnt (where PII was seen, which fields hold it). It plugs in:

* ``PiiInputGuard`` — step chain: each value about to be typed (``fill``, ``press``, ``select``) is
  scanned *before* it reaches the page; ``pii.on_input``: record → allow, approve →
  ``require_approval`` (the approval gate decides), block → deny;
* ``PiiRequestGuard`` — network gate: path, query and body of every routed request (form posts,
  fetch/XHR, beacons), raw and decoded, *before* it leaves; ``pii.on_request``: record → allow,
  approve or block → the request is aborted and the run stops (exit 3). A request cannot wait for
  a human inside the browser's route, so ``approve`` is a refusal there, recorded as such;
* ``StepHooks`` (``before_screenshot`` / ``screenshot_masks`` / ``pending_stop``) — the step loop:
  after each action (before its screenshot) the page's visible text and field values are scanned
  incrementally; ``pii.on_page``: record → go on, approve or block → the run stops after this step
  (the page already shows it; there is no action left to gate).

Every finding is a ``pii_finding`` record (entity, score, where + selector/host, keyed HMAC,
key id, masked preview, policy, action) — never the value. Allowed entities (``pii.allow``) are
recorded with ``action: allowed`` and not gated. Every value detected, and every non-numeric value
typed, is fed to the run's ``KnownValueRedactor``, so it is redacted wherever it shows up later
(a name typed without an NER model included).

Fail closed: a scan that raises or times out blocks the action (input: deny; request: refused and
the run stops; page: the run stops, and no screenshot is taken since its masks are unknown), with
an ``exception_record`` that says why — never the value.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from evidence.records import Actor, ExceptionRecord, PiiFinding
from guards.base import ActionRequest, Decision, GuardContext
from guards.observed import RequestInfo, TextBlock
from guards.pii.errors import PiiError, PiiScanError
from guards.secrets import INPUT_KINDS, SecretSet
from guards.urlmatch import UnparseableURL, canonical_host
from runner.browser.driver import DriverError

if TYPE_CHECKING:
    from guards.pii.keyed import EvidenceKey
    from guards.pii.redactor import KnownValueRedactor
    from guards.pii.scanner import Finding, PiiScanner
    from missions.model import PiiPolicy
    from runner.recorder import RunRecorder

Policy = Literal["record", "approve", "block"]
Where = Literal["page", "input", "request"]

TYPED_LABEL = "TYPED_VALUE"  # «pii:TYPED_VALUE»: a value the mission typed, redacted wherever it recurs
PASSWORD_MASK = "input[type=password i]"  # noqa: S105 - a CSS selector: password fields are always masked
_PLAIN_NUMBER = re.compile(r"[+-]?\d{1,7}(?:[.,]\d{1,4})?")  # amounts, quantities: evidence keeps them
_ACTION: dict[str, Literal["recorded", "approval_required", "blocked"]] = {
    "record": "recorded", "approve": "approval_required", "block": "blocked",
}
_ACTOR = Actor(type="policy", id="pii-guard")


def page_key(url: str) -> str:
    """The page identity for the incremental scan: the URL without its fragment."""
    return url.split("#", 1)[0]


def _page(url: str | None) -> str | None:
    """A page URL for records: scheme, host, port and path (the query may carry PII)."""
    if not url:
        return None
    try:
        p = urlsplit(url)
        port = f":{p.port}" if p.port else ""
    except ValueError:
        return None
    return f"{p.scheme}://{p.hostname or ''}{port}{p.path}" if p.netloc else f"{p.scheme}:"


def _host(url: str) -> str:
    try:
        return canonical_host(url)
    except (UnparseableURL, ValueError):
        return ""


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def typed_values(kind: str, args: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(argument name, value) of what an action types into the page."""
    return [(f, str(args[f])) for f in INPUT_KINDS.get(kind, ()) if args.get(f) is not None and str(args[f])]


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
class _Gate:
    verdict: Literal["allow", "deny", "require_approval"]
    reason: str


class PiiRuntime:
    """Per-run PII and secret state shared by the guards, the step loop's hooks and the redactor."""

    def __init__(
        self,
        policy: PiiPolicy,
        scanner: PiiScanner,
        key: EvidenceKey,
        known: KnownValueRedactor,
        secrets: SecretSet,
    ) -> None:
        self.policy = policy
        self.scanner = scanner
        self.key = key
        self.known = known
        self.secrets = secrets
        self.redaction_scanner: PiiScanner | None = None  # evidence redaction (a wider entity set)
        self.recorder: RunRecorder | None = None
        self._gate_stop: Callable[[Decision], None] | None = None
        self._gate_pending: Callable[[], Decision | None] | None = None
        self._stop: Decision | None = None
        self._lock = threading.RLock()
        self._recorded: set[tuple[Any, ...]] = set()
        self._sensitive_blocks: set[bytes] = set()  # digests of page blocks that had findings / known values
        self._page_masks: dict[str, set[str]] = {}
        self._masks_unknown = False
        self.findings_recorded = 0

    # ------------------------------------------------------------------ wiring
    def bind(self, recorder: RunRecorder) -> None:
        self.recorder = recorder

    def bind_gate(self, request_stop: Callable[[Decision], None], pending: Callable[[], Decision | None]) -> None:
        """The network gate's ``request_stop`` and a reader of its ``stop_requested``."""
        self._gate_stop = request_stop
        self._gate_pending = pending

    def close(self) -> None:
        self.scanner.close()

    # ------------------------------------------------------------------ known values
    def register_typed(self, value: str) -> None:
        """A value the mission types: redacted wherever it recurs (unless a plain number or a secret)."""
        v = value.strip()
        if not v or _PLAIN_NUMBER.fullmatch(v) or any(s == v for s in self.secrets.values()):
            return
        if self.secrets.in_text(v):
            return  # holds a secret: the secret redactor names it «secret:NAME»
        self.known.add(v, TYPED_LABEL)

    def _learn(self, findings: Iterable[Finding]) -> None:
        for f in findings:
            self.known.add(f.value, f.entity_type)

    # ------------------------------------------------------------------ stop requests
    def request_stop(self, decision: Decision) -> None:
        with self._lock:
            if self._stop is None:
                self._stop = decision
        if self._gate_stop is not None:
            self._gate_stop(decision)

    def pending_stop(self) -> Decision | None:
        """A stop asked for by the page scan, a request guard (PII/secret) or the gate itself."""
        with self._lock:
            if self._stop is not None:
                return self._stop
        return self._gate_pending() if self._gate_pending is not None else None

    # ------------------------------------------------------------------ records
    def record(
        self, f: Finding, *, step: int | None, where: Where, location: Mapping[str, Any], policy: Policy,
        action: Literal["recorded", "approval_required", "blocked", "allowed"], dedupe: tuple[Any, ...] = (),
    ) -> None:
        key = (where, f.entity_type, f.value_hmac, action, *dedupe)
        with self._lock:
            if key in self._recorded:
                return
            self._recorded.add(key)
        if self.recorder is None:
            raise PiiError("PII finding with no evidence recorder bound")
        self.recorder.writer.append(
            PiiFinding, actor=_ACTOR, step=step, entity_type=f.entity_type, score=f.score, where=where,
            location=dict(location), value_hmac=f.value_hmac, key_id=self.key.key_id, preview=f.preview,
            policy=policy, action=action,
        )
        self.recorder.counts[PiiFinding.TYPE] += 1
        self.findings_recorded += 1

    def exception(self, *, step: int | None, message: str, mitigation: str = "blocked") -> None:
        if self.recorder is None:
            return
        self.recorder.writer.append(
            ExceptionRecord, actor=_ACTOR, step=step, category="pii", error_type="PiiScanError",
            message=message, mitigation=mitigation,
        )
        self.recorder.counts[ExceptionRecord.TYPE] += 1

    def gate(self, findings: Sequence[Finding], policy: Policy, where: str) -> _Gate:
        gated = sorted({f.entity_type for f in findings if not f.allowed})
        allowed = sorted({f.entity_type for f in findings if f.allowed})
        tail = f" (allowed, recorded: {', '.join(allowed)})" if allowed else ""
        if not gated:
            return _Gate("allow", f"no gated PII {where}{tail}" if findings else f"no PII {where}")
        names = ", ".join(gated)
        if policy == "record":
            return _Gate("allow", f"PII {where} ({names}) recorded (pii.on_* = record){tail}")
        if policy == "approve":
            return _Gate("require_approval", f"PII {where} ({names}) needs approval{tail}")
        return _Gate("deny", f"PII {where} ({names}) blocked by policy{tail}")

    @staticmethod
    def action_for(f: Finding, policy: Policy) -> Literal["recorded", "approval_required", "blocked", "allowed"]:
        return "allowed" if f.allowed else _ACTION[policy]

    # ------------------------------------------------------------------ step hooks: the page scan
    def before_screenshot(self, step: int, driver: Any) -> None:
        """Scan the page (incrementally) and remember what to mask; called before every screenshot."""
        on_page: Policy = self.policy.on_page
        try:
            url = str(driver.page_url())
            blocks: list[TextBlock] = driver.page_text_blocks()
        except DriverError as exc:
            self._masks_unknown = True
            self.exception(step=step, mitigation="masked" if on_page == "record" else "blocked", message=(
                f"page text could not be read for the PII scan ({type(exc).__name__}); no screenshot is taken"
                + ("" if on_page == "record" else "; the run stops (fail closed)")))
            if on_page != "record":
                self.request_stop(
                    Decision.deny("pii.page", "page could not be scanned (fail closed)", "pii.scan_error")
                )
            return
        self._masks_unknown = False
        pk = page_key(url)
        masks = self._page_masks.setdefault(pk, set())
        scannable = [b for b in blocks if not b.password]
        texts: list[str] = []
        for b in scannable:
            if self.secrets.in_text(b.text):  # a field holding a secret: masked, never scanned
                masks.add(b.selector)
                texts.append("")
            else:
                texts.append(b.text)
        try:
            findings = self.scanner.scan_page(pk, texts)
        except PiiScanError as exc:
            self._masks_unknown = True
            self.exception(step=step, message=f"{exc}: the page could not be scanned; no screenshot is taken; "
                                              "the run stops (fail closed)")
            self.request_stop(Decision.deny("pii.page", f"{exc} (fail closed)", "pii.scan_error"))
            return
        self._learn(findings)
        for f in findings:
            if f.block is not None:
                self._sensitive_blocks.add(_digest(texts[f.block]))
        known_pattern = len(self.known) > 0
        for b, text in zip(scannable, texts, strict=True):
            if not text:
                continue
            d = _digest(text)
            if d in self._sensitive_blocks or (known_pattern and self.known.redact(text) != text):
                self._sensitive_blocks.add(d)
                masks.add(b.selector)
        page = _page(url)
        for f in findings:
            blk = scannable[f.block] if f.block is not None else None
            self.record(
                f, step=step, where="page", policy=on_page, action=self.action_for(f, on_page),
                location={"page_url": page, "selector": blk.selector if blk else None,
                          "element": blk.kind if blk else None},
                dedupe=(pk,),
            )
        verdict = self.gate(findings, on_page, "on the page")
        if verdict.verdict != "allow":
            how = "approval is not available for page findings: denied" if on_page == "approve" else "blocked"
            self.request_stop(Decision.deny("pii.page", f"{verdict.reason}; {how}; the run stops", "pii.on_page"))

    def screenshot_masks(self, url: str) -> list[str] | None:
        """Selectors to mask on this page; None when the page could not be scanned (take no screenshot)."""
        if self._masks_unknown:
            return None
        return [PASSWORD_MASK, *sorted(self._page_masks.get(page_key(url), ()))]


class PiiInputGuard:
    """Step chain: the PII scan of each value about to be typed, before it reaches the page."""

    name = "pii.input"

    def __init__(self, runtime: PiiRuntime) -> None:
        self.rt = runtime

    def check(self, action: ActionRequest, ctx: GuardContext) -> Decision:
        values = typed_values(action.kind, action.args)
        if not values:
            return Decision.allow(self.name, "nothing typed", "pii.on_input")
        rt = self.rt
        policy: Policy = rt.policy.on_input
        findings: list[Finding] = []
        context = _context_words(action.args)
        for field_name, value in values:
            if registrable(action.kind, field_name, value):
                rt.register_typed(value)
            text = rt.secrets.strip(value)
            try:
                findings.extend(rt.scanner.scan_text(text, "input", context=context))
            except PiiScanError as exc:
                return Decision.deny(self.name, f"{exc}: the value is not typed (fail closed)", "pii.scan_error")
        rt._learn(findings)
        target = {k: action.args[k] for k in ("selector", "label", "placeholder", "role", "name", "test_id", "text")
                  if isinstance(action.args.get(k), str)}
        for f in findings:
            rt.record(f, step=action.step_no, where="input", policy=policy, action=rt.action_for(f, policy),
                      location={"target": target, "kind": action.kind, "page_url": _page(ctx.page_url)},
                      dedupe=(action.step_no,))
        g = rt.gate(findings, policy, "in the typed value")
        if g.verdict == "deny":
            return Decision.deny(self.name, g.reason, "pii.on_input")
        if g.verdict == "require_approval":
            return Decision.require_approval(self.name, g.reason, "pii.on_input")
        return Decision.allow(self.name, g.reason, "pii.on_input")


class PiiRequestGuard:
    """Network gate: the PII scan of each outgoing request's path, query and body, before it leaves."""

    name = "pii.request"

    def __init__(self, runtime: PiiRuntime) -> None:
        self.rt = runtime

    def check_request(self, request: RequestInfo, ctx: Any) -> Decision:
        rt = self.rt
        policy: Policy = rt.policy.on_request
        step = getattr(ctx, "step", None)
        host = _host(request.url)
        ctype = next((v for k, v in request.headers.items() if k.lower() == "content-type"), None)
        try:
            findings = rt.scanner.scan_request(request.url, request.body, ctype)
        except PiiScanError as exc:
            decision = Decision.deny(
                self.name, f"{exc}: the request to {host or '?'} is refused and the run stops (fail closed)",
                "pii.scan_error", host=host, stop=True,
            )
            rt.exception(step=step, message=decision.reason)
            rt.request_stop(decision)
            return decision
        if not findings:
            return Decision.allow(self.name, "no PII in the request", "pii.on_request")
        rt._learn(findings)
        g = rt.gate(findings, policy, f"in a request to {host or '?'}")
        refused = g.verdict != "allow"
        for f in findings:
            action: Literal["recorded", "blocked", "allowed"] = (
                "allowed" if f.allowed else ("blocked" if refused else "recorded")
            )
            rt.record(f, step=step, where="request", policy=policy, action=action, location={
                "host": host or None, "method": request.method, "request_kind": request.kind,
                "resource_type": request.resource_type, "source": f.source,
                "page_url": _page(getattr(ctx, "page_url", None)),
            }, dedupe=(step, host, f.source))
        if not refused:
            return Decision.allow(self.name, g.reason, "pii.on_request", host=host)
        how = "approval is not available for requests: refused" if policy == "approve" else "refused"
        decision = Decision.deny(self.name, f"{g.reason}; {how}; the run stops", "pii.on_request", host=host, stop=True)
        rt.request_stop(decision)
        return decision
