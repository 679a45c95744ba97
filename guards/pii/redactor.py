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
import importlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from urllib.parse import unquote_plus

from guards.pii.finding import Finding
from guards.pii.scanner import PiiScanner, _glued
from kernel import spellings

try:  # the regex engine's own lower case and extra case-insensitive equivalences (private modules)
    _TOLOWER: Callable[[int], int] = importlib.import_module("_sre").unicode_tolower
    _EXTRA_CASES: dict[int, tuple[int, ...]] = importlib.import_module("re._casefix")._EXTRA_CASES
    _FOLD = True
except (ImportError, AttributeError):  # pragma: no cover - another Python: one key for all (correct, slower)
    _EXTRA_CASES, _FOLD = {}, False

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


def _fold_key(ch: str) -> int:
    """A character's class under ``re.IGNORECASE`` (sre's lower case plus its extra equivalences, e.g.
    ``ſ``/``s``, ``K``/``k``): two characters the regex engine matches case-insensitively share a key."""
    if not _FOLD:  # pragma: no cover
        return 0
    lo = _TOLOWER(ord(ch))
    return min((lo, *_EXTRA_CASES.get(lo, ())))


class _Index:
    """The known values' alternatives (same regexes, same order as one big alternation) bucketed by
    the case-folded first two characters of a literal form (first character of a digit pattern).

    At a text position only the alternatives whose key matches the text there can match, so the
    alternation tried there is a small one, compiled once per key and cached. Same result as the
    big alternation (same regexes in the same relative order, matched at the same positions with
    the whole text as context), without its cost of text length × number of values."""

    def __init__(self, alts: list[tuple[str, str, tuple[str, ...]]]) -> None:
        self.labels = {f"g{i}": label for i, (_, label, _) in enumerate(alts)}
        self._rx = [rx for rx, _, _ in alts]
        self._two: dict[tuple[int, int], list[int]] = {}
        self._one: dict[int, list[int]] = {}
        for i, (_, _, lead) in enumerate(alts):
            keys = tuple(_fold_key(c) for c in lead)
            if len(keys) >= 2:
                self._two.setdefault((keys[0], keys[1]), []).append(i)
            else:
                self._one.setdefault(keys[0], []).append(i)
        self.firsts = {k for k, _ in self._two} | set(self._one)
        self._sub: dict[tuple[int, int], re.Pattern[str] | None] = {}
        self._keys: dict[str, int] = {}

    def _pattern_at(self, k1: int, k2: int) -> re.Pattern[str] | None:
        key = (k1, k2)
        if key in self._sub:
            return self._sub[key]
        idx = sorted({*self._two.get(key, ()), *self._one.get(k1, ())})
        pat = re.compile("|".join(f"(?P<g{i}>{self._rx[i]})" for i in idx), re.IGNORECASE) if idx else None
        self._sub[key] = pat
        return pat

    def matches(self, text: str) -> Iterator[re.Match[str]]:
        """The big alternation's ``finditer`` matches (non-overlapping, leftmost, first alternative)."""
        keys = self._keys
        ks = [keys[c] if c in keys else keys.setdefault(c, _fold_key(c)) for c in text]
        firsts, n, pos = self.firsts, len(text), 0
        while pos < n:
            k1 = ks[pos]
            if k1 in firsts:
                pat = self._pattern_at(k1, ks[pos + 1] if pos + 1 < n else -1)
                m = pat.match(text, pos) if pat is not None else None
                if m is not None:
                    yield m
                    pos = m.end()
                    continue
            pos += 1


class KnownValueRedactor:
    """Replaces exact values seen earlier in the run (and their encodings and digit spellings)."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}
        self._index: _Index | None = None
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
            self._index = None

    def _compile(self) -> _Index | None:
        with self._lock:
            if self._index is not None or not self._values:
                return self._index
            alts: list[tuple[str, str, tuple[str, ...]]] = []  # (regex, label, its leading literal characters)
            for v, label in self._values.items():
                for form in encoded_forms(v):
                    alts.append((_bounded(form), label, tuple(form[:2])))
                digits = re.sub(r"\D", "", v)
                if len(digits) >= 7 and re.fullmatch(r"[\d\s().+/-]+", v):
                    # Any spelling of the same digits: 4111111111111111, 4111-1111-..., +44 20 7946 ...
                    alts.append(("(?<!\\d)" + r"[\s().+/-]{0,3}".join(digits) + "(?!\\d)", label, (digits[0],)))
            alts.sort(key=lambda a: -len(a[0]))
            self._index = _Index(alts)
            return self._index

    def redact(self, text: str) -> str:
        index = self._compile()
        if index is None or not text:
            return text
        parts, pos = [], 0
        for m in index.matches(text):
            parts.append(text[pos:m.start()])
            parts.append(marker(index.labels[m.lastgroup or ""]))
            pos = m.end()
        if not parts:
            return text
        parts.append(text[pos:])
        return "".join(parts)

    def contains_known(self, text: str) -> bool:
        """Whether ``redact`` would change ``text``; stops at the first known value."""
        index = self._compile()
        return index is not None and bool(text) and next(index.matches(text), None) is not None


class PiiRedactor:
    """Detection-based redaction through the run's scanner; detection cached by text hash."""

    def __init__(
        self, scanner: PiiScanner, known: KnownValueRedactor | None = None, *, threshold: float | None = None,
        cache_size: int = 10_000,
    ) -> None:
        self.scanner = scanner
        self.known = known if known is not None else KnownValueRedactor()
        self.threshold = min(scanner.threshold, 0.4) if threshold is None else threshold
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
