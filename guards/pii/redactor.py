"""Redactors for the evidence writer's choke point (``evidence.redact.Redactor`` protocol).

``PiiRedactor`` replaces what the scanner detects by ``«pii:ENTITY»`` — allowed entities too: a
mission may *handle* an e-mail, its evidence still must not *store* it. It also looks at the
percent-decoded form of a text (a logged URL holds ``x%40y.com``) and then replaces the encoded
spellings of what it found. Every value it detects is remembered by a ``KnownValueRedactor``, so the
same value echoed later where detection misses (other surroundings, split digits) is still caught.

The redaction threshold defaults to min(policy threshold, 0.4) (``guards/pii/thresholds.py``; the
screenshots' masks use the same): gating a run on a context-less phone number (score 0.4) is the
policy's call, writing it to disk is not.
Errors propagate (PiiScanError): the writer then refuses to write, never writes raw.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from urllib.parse import unquote_plus

from guards.pii.finding import Finding
from guards.pii.known_values import KnownValueRedactor, _bounded, encoded_forms, marker
from guards.pii.scanner import PiiScanner, _glued
from guards.pii.thresholds import redaction_threshold

__all__ = ["KnownValueRedactor", "PiiRedactor", "_bounded", "encoded_forms", "marker", "replace_spans"]

_URL_DELIMS = re.compile(r"[/?&=#;]")


class PiiRedactor:
    """Detection-based redaction through the run's scanner; detection cached by text hash."""

    def __init__(
        self, scanner: PiiScanner, known: KnownValueRedactor | None = None, *, threshold: float | None = None,
        cache_size: int = 10_000,
    ) -> None:
        self.scanner = scanner
        self.known = known if known is not None else KnownValueRedactor()
        self.threshold = redaction_threshold(scanner.threshold) if threshold is None else threshold
        self._cache: OrderedDict[bytes, str] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def redact(self, text: str) -> str:
        return self.redact_many([text])[0] if text else text

    def redact_many(self, texts: Sequence[str]) -> list[str]:
        """``[self.redact(t) for t in texts]`` with ONE detection pass over every text not seen
        before (the scanner's joined, pre-filtered per-entity passes), not one per text.

        What detection made of a text is cached by its hash and never redone: it does not depend on
        what the run learns later. The known-value pass runs on every call, so a value learnt since
        (typed, found on a page) is redacted in a text detected before it was known — and every value
        found in any of these texts is known before the known-value pass of each."""
        digests = [hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=16).digest() for t in texts]
        detected: list[str | None] = [None] * len(texts)
        todo: dict[bytes, str] = {}
        with self._lock:
            for i, (t, d) in enumerate(zip(texts, digests, strict=True)):
                hit = self._cache.get(d) if t else t
                if hit is not None:
                    detected[i] = hit
                else:
                    todo[d] = t
        if todo:
            done = dict(zip(todo, self._redact_batch(list(todo.values())), strict=True))
            with self._lock:
                self._cache.update(done)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
            detected = [o if o is not None else done[d] for o, d in zip(detected, digests, strict=True)]
        out = [o or "" for o in detected]
        return [self.known.redact(o) if o else o for o in out] if len(self.known) else out

    def _redact_batch(self, texts: list[str]) -> list[str]:
        # What detection reads per text (the text, its URL delimiters blanked, its percent-decoded
        # form), all in one detection call.
        variants: list[str] = []
        slots: list[tuple[int, int, int]] = []  # per text: index of its text / spaced / decoded variant
        for t in texts:
            own = len(variants)
            variants.append(t)
            spaced = decoded = -1
            if _URL_DELIMS.search(t):
                spaced = len(variants)
                variants.append(_URL_DELIMS.sub(" ", t))
            if "%" in t or "+" in t:
                d = unquote_plus(t)
                if d != t:
                    decoded = len(variants)
                    variants.append(d)
            slots.append((own, spaced, decoded))
        found = _detect_many(self.scanner, variants, self.threshold)
        spans: list[list[Finding]] = []
        for own, spaced, decoded in slots:
            hits = found[own] + (found[spaced] if spaced >= 0 else [])
            spans.append(hits)
            for f in hits + (found[decoded] if decoded >= 0 else []):
                self.known.add(f.value, f.entity_type)
        return [replace_spans(t, hits) for t, hits in zip(texts, spans, strict=True)]


def _detect_many(scanner: PiiScanner, texts: list[str], threshold: float) -> list[list[Finding]]:
    """``[scanner.detect(t, threshold) for t in texts]`` through one batched analysis (same results:
    the scanner's joined passes map every hit back to its text; a hit across two texts is redone)."""
    raws = scanner._analyze(texts, ())
    return [
        scanner._findings(t, tuple(r for r in raw if not _glued(t, r[2], r[3])), "page", threshold)
        for t, raw in zip(texts, raws, strict=True)
    ]


def replace_spans(text: str, findings: list[Finding]) -> str:
    """Replace each finding's span (overlaps merged; the highest score names the merged span)."""
    if not findings:
        return text
    spans = sorted(findings, key=lambda f: (f.start, -f.end))
    merged: list[tuple[int, int, str, float]] = []
    for f in spans:
        if merged and f.start < merged[-1][1]:
            s, e, label, score = merged[-1]
            if f.score > score:
                label, score = f.entity_type, f.score
            merged[-1] = (s, max(e, f.end), label, score)
        else:
            merged.append((f.start, f.end, f.entity_type, f.score))
    parts, pos = [], 0
    for start, end, label, _ in merged:
        parts.append(text[pos:start])
        parts.append(marker(label))
        pos = end
    parts.append(text[pos:])
    return "".join(parts)
