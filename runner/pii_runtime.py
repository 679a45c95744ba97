"""The run's PII state, the records of what the PII guards found, and the page scan (SPEC §4 PII).

The guards (``guards/pii_guards.py``, ``guards/secrets.py``) only judge; this module is where
their findings become evidence. One ``PiiRuntime`` per run holds the scanner (built once,
offline), the evidence key, the known-value redactor and what the run learnt (where PII was seen,
which fields hold it):

* ``observe(decision)`` — the step and request chains hand it every decision: its ``Observation``s
  become ONE ``pii_finding`` record (entity counts; per distinct value its entity, score, keyed
  HMAC, masked preview, action and place in the scan; where + page url/host/field, key id, policy,
  strongest action — never a value), written beside the run (``RunRecorder.record_soon``: redacted
  while the screenshot is taken; the next record waits for it), every value found or typed is fed to the
  known-value redactor (so it is redacted wherever it shows up later), and a ``failure`` (a scan
  that could not run) becomes an ``exception_record``;
* the step loop's hooks (``before_screenshot`` / ``screenshot_masks`` / ``pending_stop``): after
  each action, before its screenshot, the page's visible text and field values are scanned
  incrementally; ``pii.on_page``: record → go on, approve or block → the run stops after this step
  (the page already shows it; there is no action left to gate). Two thresholds
  (``guards/pii/thresholds.py``): everything scored at the redaction threshold, min(policy, 0.4), is
  masked and learnt as a known value — a record would redact it, so no screenshot may show it —
  while only what reaches the policy threshold is a finding (recorded, gated).

Fail closed: a page that cannot be read or scanned takes no screenshot (its masks are unknown) and,
unless ``on_page: record``, stops the run — with an ``exception_record`` that says why.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from evidence.records import ACTION_RANK, Actor, ExceptionRecord, PiiFinding
from guards.base import Decision, Observation
from guards.pii.errors import PiiError, PiiScanError
from guards.pii.thresholds import redaction_threshold
from guards.pii_guards import Policy, action_for, judge
from guards.secrets import SecretSet
from guards.urlmatch import page_without_query
from kernel.collector import collector_paused
from runner.browser.driver import Driver, DriverError
from runner.browser.page_scripts import TOO_BIG

if TYPE_CHECKING:
    from guards.observed import TextBlock
    from guards.pii.finding import Finding
    from guards.pii.keyed import EvidenceKey
    from guards.pii.redactor import KnownValueRedactor
    from guards.pii.scanner import PiiScanner
    from missions.model import PiiPolicy
    from runner.recorder import RunRecorder

TYPED_LABEL = "TYPED_VALUE"  # «pii:TYPED_VALUE»: a value the mission typed, redacted wherever it recurs
PASSWORD_MASK = "input[type=password i]"  # noqa: S105 - a CSS selector: password fields are always masked
_PLAIN_NUMBER = re.compile(r"[+-]?\d{1,7}(?:[.,]\d{1,4})?")  # amounts, quantities: evidence keeps them
_ACTOR = Actor(type="policy", id="pii-guard")
_PAUSE_GC_BLOCKS = 200  # a page with this many blocks is scanned with the collector paused


def page_key(url: str) -> str:
    """The page identity for the incremental scan: the URL without its fragment."""
    return url.split("#", 1)[0]


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class PiiRuntime:
    """Per-run PII and secret state shared by the chains' observer, the step loop's hooks and the redactor."""

    def __init__(
        self,
        policy: PiiPolicy,
        scanner: PiiScanner,
        key: EvidenceKey,
        known: KnownValueRedactor,
        secrets: SecretSet,
        *,
        redaction_scanner: PiiScanner | None = None,
    ) -> None:
        self.policy = policy
        self.scanner = scanner
        self.key = key
        self.known = known
        self.secrets = secrets
        self.redaction_scanner = redaction_scanner  # evidence redaction (a wider entity set)
        self.mask_threshold = redaction_threshold(scanner.threshold)  # masks and learning; gating: the policy's
        # Entities the records redact that the mission does not scan for (pii.entities narrower than
        # the defaults): the page is also scanned for them, for the masks and known values only.
        wider = redaction_scanner is not None and not set(redaction_scanner.entities) <= set(scanner.entities)
        self._mask_only_scanner = redaction_scanner if wider else None
        self.recorder: RunRecorder | None = None
        self._gate_pending: Callable[[], Decision | None] | None = None
        self._stop: Decision | None = None
        self._lock = threading.RLock()
        self._recorded: set[tuple[Any, ...]] = set()
        self._sensitive_blocks: set[bytes] = set()  # digests of page blocks that had findings / known values
        self._page_masks: dict[str, set[str]] = {}
        self._masks_unknown = False
        self._unchanged: tuple[str, int, tuple[TextBlock, ...]] | None = None  # the last full scan (_same_scan)
        self.findings_recorded = 0  # distinct values recorded
        self.scans_recorded = 0  # pii_finding records written

    # ------------------------------------------------------------------ wiring
    def bind(self, recorder: RunRecorder, gate_pending: Callable[[], Decision | None] | None = None) -> None:
        """The recorder findings are written through, and a reader of the request gate's stop request."""
        self.recorder = recorder
        self._gate_pending = gate_pending

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

    # ------------------------------------------------------------------ the chains' observer
    def observe(self, decision: Decision, step: int | None) -> None:
        """Record what a guard found (one ``pii_finding`` per decision), learn its values, record a scan failure."""
        for value in decision.learn:
            self.register_typed(value)
        self._learn(o.finding for o in decision.findings)
        self.record_scan(decision.findings, step=step)
        if decision.failure:
            self.exception(step=step, message=decision.failure)

    # ------------------------------------------------------------------ stop requests
    def request_stop(self, decision: Decision) -> None:
        with self._lock:
            if self._stop is None:
                self._stop = decision

    def pending_stop(self) -> Decision | None:
        """A stop asked for by the page scan, or by the request gate (a PII/secret refusal)."""
        with self._lock:
            if self._stop is not None:
                return self._stop
        return self._gate_pending() if self._gate_pending is not None else None

    # ------------------------------------------------------------------ records
    def record_scan(self, observations: Sequence[Observation], *, step: int | None) -> None:
        """One ``pii_finding`` for one scan: entity counts, one entry per distinct value (keyed HMAC,
        masked preview, action, where in the scan), the place shared by all of them, the key id,
        policy and strongest action — never a value. A value already recorded on the same occasion
        (``Observation.dedupe``) is left out; a scan left with nothing new writes nothing."""
        entries: dict[tuple[Any, ...], dict[str, Any]] = {}
        fresh: list[Observation] = []
        with self._lock:
            for o in observations:
                f = o.finding
                key = (o.where, f.entity_type, f.value_hmac, o.action, *o.dedupe)
                if key in entries:
                    entries[key]["occurrences"] += 1
                    continue
                if key in self._recorded:
                    continue
                self._recorded.add(key)
                fresh.append(o)
                entries[key] = {"entity_type": f.entity_type, "score": f.score, "value_hmac": f.value_hmac,
                                "preview": f.preview, "action": o.action, "occurrences": 1,
                                "location": dict(o.location)}
        if not fresh:
            return
        if self.recorder is None:
            raise PiiError("PII finding with no evidence recorder bound")
        values = list(entries.values())
        # The place every value shares (page url, host, field) goes to the record; the rest stays per value.
        shared = {k: v for k, v in values[0]["location"].items()
                  if all(k in e["location"] and e["location"][k] == v for e in values[1:])}
        for e in values:
            e["location"] = {k: v for k, v in e["location"].items() if k not in shared}
        counts: dict[str, int] = {}
        for e in values:
            counts[e["entity_type"]] = counts.get(e["entity_type"], 0) + 1
        policy = fresh[0].policy
        action = max((e["action"] for e in values), key=lambda a: ACTION_RANK[a])
        self.recorder.record_soon(
            PiiFinding, _ACTOR, step=step, where=fresh[0].where, location=shared, key_id=self.key.key_id,
            policy=policy, action=action, counts=dict(sorted(counts.items())), values=values,
        )
        self.findings_recorded += len(values)
        self.scans_recorded += 1

    def exception(self, *, step: int | None, message: str, mitigation: str = "blocked") -> None:
        if self.recorder is None:
            raise PiiError("PII scan failure with no evidence recorder bound")
        self.recorder.record(
            ExceptionRecord, _ACTOR, step=step, category="pii", error_type="PiiScanError",
            message=message, mitigation=mitigation,
        )

    # ------------------------------------------------------------------ step hooks: the page scan
    def before_screenshot(self, step: int, driver: Driver) -> None:
        """Scan the page (incrementally) and remember what to mask; called before every screenshot."""
        on_page: Policy = self.policy.on_page
        try:
            url = str(driver.page_url())
            blocks: list[TextBlock] = driver.page_text_blocks()
        except DriverError as exc:
            self._masks_unknown = True
            # A page over the scan's budget is "cannot decide", never a pass: said as such (the
            # message is Warden's own: counts and limits, no page text); other errors by type only.
            why = str(exc) if str(exc).startswith(TOO_BIG) else f"page text could not be read ({type(exc).__name__})"
            self.exception(step=step, mitigation="masked" if on_page == "record" else "blocked", message=(
                f"{why}: the PII scan cannot decide; no screenshot is taken"
                + ("" if on_page == "record" else "; the run stops (fail closed)")))
            if on_page != "record":
                self.request_stop(
                    Decision.deny("pii.page", "page could not be scanned (fail closed)", "pii.scan_error")
                )
            return
        self._masks_unknown = False
        # The collector paused while a page's blocks are scanned and its findings learnt and recorded:
        # a PII-heavy page makes thousands of results, and each collection would walk them all again.
        with collector_paused(len(blocks) >= _PAUSE_GC_BLOCKS):
            self._scan_blocks(step, url, blocks)

    def _scan_blocks(self, step: int, url: str, blocks: list[TextBlock]) -> None:
        on_page: Policy = self.policy.on_page
        pk = page_key(url)
        if self._same_scan(pk, blocks):
            return
        masks = self._page_masks.setdefault(pk, set())
        scannable = [b for b in blocks if not b.password]
        masks.update(b.selector for b in blocks if b.password)  # password fields in frames / shadow roots too
        texts: list[str] = []
        for b in scannable:
            if self.secrets.in_text(b.text):  # a field holding a secret: masked, never scanned
                masks.add(b.selector)
                texts.append("")
            else:
                texts.append(b.text)
        try:
            # The mask-only scan first: if the page scan then fails, its blocks are still unseen (a
            # rescan finds, records and gates them); what this one found is noted already.
            if self._mask_only_scanner is not None:
                self._note_sensitive(self._mask_only_scanner.scan_page(
                    pk, texts, threshold=redaction_threshold(self._mask_only_scanner.threshold)), texts)
            found = self.scanner.scan_page(pk, texts, threshold=self.mask_threshold)
        except PiiScanError as exc:
            self._masks_unknown = True
            self.exception(step=step, message=f"{exc}: the page could not be scanned; no screenshot is taken; "
                                              "the run stops (fail closed)")
            self.request_stop(Decision.deny("pii.page", f"{exc} (fail closed)", "pii.scan_error"))
            return
        self._note_sensitive(found, texts)
        known_pattern = len(self.known) > 0
        for b, text in zip(scannable, texts, strict=True):
            if not text:
                continue
            d = _digest(text)
            if d in self._sensitive_blocks or (known_pattern and self.known.contains_known(text)):
                self._sensitive_blocks.add(d)
                masks.add(b.selector)
        # Findings (recorded, gated per pii.on_page) from the policy threshold on. The score read is the
        # finding's (4 decimals), the one its record shows.
        findings = [f for f in found if f.score >= self.scanner.threshold]
        page = page_without_query(url)
        observed = []
        for f in findings:
            blk = scannable[f.block] if f.block is not None else None
            location = {"page_url": page, "selector": blk.selector if blk else None,
                        "element": blk.kind if blk else None}
            observed.append(Observation(f, "page", on_page, action_for(f, on_page), location, (pk,)))
        self.record_scan(observed, step=step)
        verdict = judge(findings, on_page, "on the page")
        if verdict.verdict != "allow":
            how = "approval is not available for page findings: denied" if on_page == "approve" else "blocked"
            self.request_stop(Decision.deny("pii.page", f"{verdict.reason}; {how}; the run stops", "pii.on_page"))
        else:
            self._unchanged = (pk, len(self.known), tuple(blocks))

    def _same_scan(self, pk: str, blocks: list[TextBlock]) -> bool:
        """Whether this scan would change nothing: the same blocks (the very objects the text read kept
        for an unchanged page) on the same page as the last full scan, no value learnt since, and both
        scanners still remembering the page. Each block's findings are a function of its text, secrets
        are fixed for the run and known values only grow: with those, the masks, the findings (none
        new) and the verdict are what the last scan left (~10 ms of digests a step on a PII-heavy page)."""
        last = self._unchanged
        if last is None or last[0] != pk or last[1] != len(self.known) or len(last[2]) != len(blocks):
            return False
        if not all(a is b for a, b in zip(last[2], blocks, strict=True)):
            return False
        scanners = [self.scanner] + ([self._mask_only_scanner] if self._mask_only_scanner is not None else [])
        return all(s.remembers(pk) for s in scanners)

    def _note_sensitive(self, found: Iterable[Finding], texts: Sequence[str]) -> None:
        """Learn what scored at the redaction threshold and mark its blocks: nothing written shows them."""
        blocks: set[int] = set()
        for f in found:
            self.known.add(f.value, f.entity_type)
            if f.block is not None:
                blocks.add(f.block)
        self._sensitive_blocks.update(_digest(texts[b]) for b in blocks)

    def screenshot_masks(self, url: str) -> list[str] | None:
        """Selectors to mask on this page; None when the page could not be scanned (take no screenshot)."""
        if self._masks_unknown:
            return None
        return [PASSWORD_MASK, *sorted(self._page_masks.get(page_key(url), ()))]
