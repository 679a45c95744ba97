"""Redactors for the evidence writer's choke point (``evidence.redact.Redactor`` protocol).

``PiiRedactor`` replaces what the scanner detects by ``«pii:ENTITY»`` — allowed entities too: a
mission may *handle* an e-mail, its evidence still must not *store* it. It also looks at the
percent-decoded form of a text (a logged URL holds ``x%40y.com``) and then replaces the encoded
spellings of what it found. Every value it detects is remembered by a ``KnownValueRedactor``, so the
same value echoed later where detection misses (other surroundings, split digits) is still caught.

The redaction threshold defaults to min(policy threshold, 0.4): gating a run on a context-less phone
number (score 0.4) is the policy's call, writing it to disk is not.
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
from guards.pii.scanner import PiiScanner, _glued
from kernel import spellings

_LABEL = re.compile(r"[^A-Z0-9_]")
_URL_DELIMS = re.compile(r"[/?&=#;]")
_MIN_VALUE_LEN = 4


def marker(entity_type: str) -> str:
    return f"«pii:{_LABEL.sub('_', entity_type.upper())}»"


def encoded_forms(value: str) -> list[str]:
    """The spellings of a value that commonly land in logs: raw, URL-encoded, JSON- and HTML-escaped."""
    return spellings.encoded_forms(value)


def _bounded(form: str) -> str:
    """``form`` as a regex that does not match inside a longer alphanumeric token: a known value
    "cafe" must not rewrite the middle of a sha256 in a record (which would also break its schema)."""
    rx = re.escape(form)
    if form[:1].isalnum():
        rx = "(?<![A-Za-z0-9])" + rx
    if form[-1:].isalnum():
        rx += "(?![A-Za-z0-9])"
    return rx


class KnownValueRedactor:
    """Replaces exact values seen earlier in the run (and their encodings and digit spellings)."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}
        self._pattern: re.Pattern[str] | None = None
        self._labels: dict[str, str] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._values)

    def add(self, value: str, label: str) -> None:
        v = value.strip()
        if len(v) < _MIN_VALUE_LEN:
            return
        with self._lock:
            if self._values.get(v) == label:
                return
            self._values[v] = label
            self._pattern = None

    def _compile(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._pattern is not None or not self._values:
                return self._pattern
            alts: list[tuple[str, str]] = []  # (regex, label)
            for v, label in self._values.items():
                for form in encoded_forms(v):
                    alts.append((_bounded(form), label))
                digits = re.sub(r"\D", "", v)
                if len(digits) >= 7 and re.fullmatch(r"[\d\s().+/-]+", v):
                    # Any spelling of the same digits: 4111111111111111, 4111-1111-..., +44 20 7946 ...
                    alts.append(("(?<!\\d)" + r"[\s().+/-]{0,3}".join(digits) + "(?!\\d)", label))
            alts.sort(key=lambda a: -len(a[0]))
            self._labels = {f"g{i}": label for i, (_, label) in enumerate(alts)}
            self._pattern = re.compile("|".join(f"(?P<g{i}>{rx})" for i, (rx, _) in enumerate(alts)), re.IGNORECASE)
            return self._pattern

    def redact(self, text: str) -> str:
        pattern = self._compile()
        if pattern is None or not text:
            return text
        return pattern.sub(lambda m: marker(self._labels[m.lastgroup or ""]), text)


class PiiRedactor:
    """Detection-based redaction through the run's scanner; results cached by text hash."""

    def __init__(
        self, scanner: PiiScanner, known: KnownValueRedactor | None = None, *, threshold: float | None = None,
        cache_size: int = 10_000,
    ) -> None:
        self.scanner = scanner
        self.known = known if known is not None else KnownValueRedactor()
        self.threshold = min(scanner.threshold, 0.4) if threshold is None else threshold
        self._cache: OrderedDict[bytes, str] = OrderedDict()
        self._cache_size = cache_size
        self._known_size = -1
        self._lock = threading.Lock()

    def redact(self, text: str) -> str:
        if not text:
            return text
        digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        with self._lock:
            if self._known_size != len(self.known):  # new known values: old results may be stale
                self._cache.clear()
                self._known_size = len(self.known)
            hit = self._cache.get(digest)
        if hit is not None:
            return hit
        out = self._redact(text)
        with self._lock:
            self._cache[digest] = out
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            self._known_size = len(self.known)
        return out

    def redact_many(self, texts: Sequence[str]) -> list[str]:
        """``[self.redact(t) for t in texts]`` with ONE detection pass over every text not cached
        (the scanner's joined, pre-filtered per-entity passes), not one per text. Every value found in
        any of them is known before the known-value pass of each: never less redaction than one by one."""
        digests = [hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=16).digest() for t in texts]
        out: list[str | None] = [None] * len(texts)
        todo: dict[bytes, str] = {}
        with self._lock:
            if self._known_size != len(self.known):
                self._cache.clear()
                self._known_size = len(self.known)
            for i, (t, d) in enumerate(zip(texts, digests, strict=True)):
                hit = self._cache.get(d) if t else t
                if hit is not None:
                    out[i] = hit
                else:
                    todo[d] = t
        if todo:
            done = dict(zip(todo, self._redact_batch(list(todo.values())), strict=True))
            with self._lock:
                self._cache.update(done)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
                self._known_size = len(self.known)
            out = [o if o is not None else done[d] for o, d in zip(out, digests, strict=True)]
        return [o if o is not None else "" for o in out]

    def _redact_batch(self, texts: list[str]) -> list[str]:
        # What ``_redact`` reads per text (the text, its URL delimiters blanked, its percent-decoded
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
        outs = [replace_spans(t, hits) for t, hits in zip(texts, spans, strict=True)]
        return [self.known.redact(o) for o in outs] if len(self.known) else outs

    def _redact(self, text: str) -> str:
        findings = self.scanner.detect(text, self.threshold)
        if _URL_DELIMS.search(text):
            # In a URL Presidio's e-mail pattern swallows "search?email=" into the local part and the
            # match fails validation: look again with the delimiters blanked (same length, same spans).
            spaced = _URL_DELIMS.sub(" ", text)
            findings = findings + self.scanner.detect(spaced, self.threshold)
        out = replace_spans(text, findings)
        found = list(findings)
        if "%" in text or "+" in text:
            decoded = unquote_plus(text)
            if decoded != text:
                found.extend(self.scanner.detect(decoded, self.threshold))
        for f in found:
            self.known.add(f.value, f.entity_type)
        return self.known.redact(out) if len(self.known) else out


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
