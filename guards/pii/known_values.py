"""Known-value redaction: exact values seen earlier in the run, wherever and however they recur.

A value found on a page or typed by the mission is replaced by ``«pii:LABEL»`` in every later text,
in each of its spellings (raw, URL-, JSON-, HTML-encoded; ``encoded_forms``), case-insensitively,
and, for a digit value (a card, a phone, an SSN), in any spelling of the same digits
(``4111-1111 1111/1111``, ``+44 (20) 7946 0958``).

The reference semantics is ONE ``re.IGNORECASE`` alternation of every spelling's regex (``_bounded``
for a literal, a digit-run regex for a digit value), longest regex first, applied with ``sub``
(kept as the oracle in tests/guards/test_pii_known_values.py). Compiling that alternation costs
seconds per thousand values and had to be redone whenever the run learnt one more value, so the
same matches are found without any regex per value:

* a literal spelling matches at a position iff the text there, case-folded the way the regex engine
  folds under IGNORECASE (``_fold_key``: one code point to one key), equals the spelling folded, and
  its boundary conditions hold. Spellings are indexed by their first four folded characters, then
  by length and folded text: at each position one slice and one dict look-up, then one per length;
* a digit value's regex matches a chain of digit runs joined by at most three separators; each run
  start is looked up by the chain's digits, for each digit count some value has;
* among the alternatives matching at a position the one the big alternation tried first wins
  (rank: longer regex first, then the order values were learnt, then the spelling's order).

Adding a value only inserts its entries (copy-on-write tuples: readers never lock and never see a
half-built index), so learning a page's values costs milliseconds, not a recompilation.
"""

from __future__ import annotations

import bisect
import importlib
import re
import threading
from collections.abc import Callable, Iterator
from typing import NamedTuple, TypeVar

from kernel import spellings

try:  # the regex engine's own lower case and extra case-insensitive equivalences (private modules)
    _TOLOWER: Callable[[int], int] = importlib.import_module("_sre").unicode_tolower
    _EXTRA_CASES: dict[int, tuple[int, ...]] = importlib.import_module("re._casefix")._EXTRA_CASES
    _FOLD = True
except (ImportError, AttributeError):  # pragma: no cover - another Python: one key for all (correct, slower)
    _EXTRA_CASES, _FOLD = {}, False

_LABEL = re.compile(r"[^A-Z0-9_]")
MIN_VALUE_LEN = 4
_PREFIX = MIN_VALUE_LEN  # every spelling is at least as long as its value
_DIGIT_RUN = re.compile(r"\d+")
_NON_DIGITS = re.compile(r"\D+")  # the complement of _DIGIT_RUN's characters
_SEPARATORS = re.compile(r"[\s().+/-]{1,3}", re.IGNORECASE)  # what a digit regex allows between two digits
_DIGIT_VALUE = re.compile(r"[\d\s().+/-]+")
_BOUNDARY = re.compile(r"[A-Za-z0-9]", re.IGNORECASE)  # the class of _bounded's lookarounds


def marker(entity_type: str) -> str:
    return f"«pii:{_LABEL.sub('_', entity_type.upper())}»"


_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]+")  # what no URL, JSON or HTML encoding changes
_EMAIL_PLAIN = re.compile(r"[A-Za-z0-9_.~-]+@[A-Za-z0-9_.~-]+")
# Unreserved characters and " ()+": JSON and HTML leave them as they are, the URL quotings encode
# only those four (quote: %20, quote_plus: "+" for a space); "@" is absent, so safe="@" changes nothing.
_DIGITS_SPACED = re.compile(r"[A-Za-z0-9_.~ ()+-]+")
_QUOTED = str.maketrans({" ": "%20", "(": "%28", ")": "%29", "+": "%2B"})
_QUOTED_PLUS = str.maketrans({" ": "+", "(": "%28", ")": "%29", "+": "%2B"})


def encoded_forms(value: str) -> list[str]:
    """The spellings of a value that commonly land in logs: raw, URL-encoded, JSON- and HTML-escaped.

    ``spellings.encoded_forms``, with shortcuts for what a page's values mostly are: a value of unreserved
    characters only (an IP, an SSN) is its only spelling; an e-mail of them adds "@" written ``%40``."""
    if _UNRESERVED.fullmatch(value):
        return [value]
    if _EMAIL_PLAIN.fullmatch(value):
        return [value, value.replace("@", "%40")]
    if _DIGITS_SPACED.fullmatch(value):  # a card or phone written with spaces, brackets, "+"
        return list(dict.fromkeys((value, value.translate(_QUOTED), value.translate(_QUOTED_PLUS))))
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


def _digit_regex(digits: str) -> str:
    return "(?<!\\d)" + r"[\s().+/-]{0,3}".join(digits) + "(?!\\d)"


def digit_spelling(value: str) -> str | None:
    """The digits of a value written only with digits and separators (7 or more), else None."""
    digits = re.sub(r"\D", "", value)
    return digits if len(digits) >= 7 and _DIGIT_VALUE.fullmatch(value) else None


def _fold_key(ch: str) -> int:
    """A character's class under ``re.IGNORECASE`` (sre's lower case plus its extra equivalences, e.g.
    ``ſ``/``s``, ``K``/``k``): two characters the regex engine matches case-insensitively share a key
    (and only they: checked over every code point against the regex engine itself)."""
    if not _FOLD:  # pragma: no cover
        return 0
    lo = _TOLOWER(ord(ch))
    return min((lo, *_EXTRA_CASES.get(lo, ())))


class _FoldTable(dict[int, int]):
    """``str.translate`` table: a code point to its fold key, filled on first sight."""

    def __missing__(self, cp: int) -> int:
        key = self[cp] = _fold_key(chr(cp))
        return key


class _CharClass(dict[str, bool]):
    """Whether a character is in a regex class (asked of the regex engine once per character)."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        super().__init__()
        self._pattern = pattern

    def __missing__(self, ch: str) -> bool:
        hit = self[ch] = self._pattern.fullmatch(ch) is not None
        return hit


_FOLD_TABLE = _FoldTable()
_IS_BOUNDARY = _CharClass(_BOUNDARY)

Rank = tuple[int, int, int]  # (-len(regex), order the value was learnt, spelling's index)


class _Literal(NamedTuple):
    rank: Rank
    length: int
    left: bool  # the spelling starts alphanumeric: not preceded by [A-Za-z0-9]
    right: bool  # ends alphanumeric: not followed by one
    value: int


class _Bucket(NamedTuple):
    """The spellings sharing a folded 4-character prefix: their lengths, and per length the folded
    spellings' entries (best rank first)."""

    lengths: tuple[int, ...]
    by_length: dict[int, dict[str, tuple[_Literal, ...]]]


class Match(NamedTuple):
    start: int
    end: int
    value: int  # the value's index in the order learnt


_Entry = TypeVar("_Entry", _Literal, tuple[Rank, int])


def _insert(entries: tuple[_Entry, ...], item: _Entry) -> tuple[_Entry, ...]:
    """``entries`` with ``item`` in rank order, as a new tuple (readers keep the one they hold)."""
    out = list(entries)
    bisect.insort(out, item)
    return tuple(out)


def _no_prefix(folded: str, literals: dict[str, _Bucket]) -> bool:
    """Whether no 4-character window of ``folded`` is a spelling's folded prefix: then no literal
    spelling (each at least ``_PREFIX`` long, indexed by exactly its first ``_PREFIX`` folded
    characters) can match anywhere. One set of windows, not a walk with look-ups at every position."""
    if len(folded) < _PREFIX or not literals:
        return True
    return literals.keys().isdisjoint({folded[i:i + _PREFIX] for i in range(len(folded) - _PREFIX + 1)})


class KnownValueRedactor:
    """Replaces exact values seen earlier in the run (and their encodings and digit spellings)."""

    def __init__(self) -> None:
        self._values: dict[str, int] = {}
        self._labels: list[str] = []
        self._literals: dict[str, _Bucket] = {}
        self._digits: dict[str, tuple[tuple[Rank, int], ...]] = {}
        self._digit_counts: tuple[int, ...] = ()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._values)

    def add(self, value: str, label: str) -> None:
        v = value.strip()
        if len(v) < MIN_VALUE_LEN:
            return
        with self._lock:
            seq = self._values.get(v)
            if seq is not None:
                self._labels[seq] = label  # relabelled: same place in the order
                return
            seq = len(self._labels)
            self._labels.append(label)
            forms = encoded_forms(v)
            for i, form in enumerate(forms):
                self._add_literal(form, _Literal((-len(_bounded(form)), seq, i), len(form), form[:1].isalnum(),
                                                 form[-1:].isalnum(), seq))
            digits = digit_spelling(v)
            if digits is not None:
                entry = ((-len(_digit_regex(digits)), seq, len(forms)), seq)
                self._digits[digits] = _insert(self._digits.get(digits, ()), entry)
                if len(digits) not in self._digit_counts:
                    self._digit_counts = tuple(sorted((*self._digit_counts, len(digits))))
            self._values[v] = seq  # last: a reader seeing the count sees the entries

    def _add_literal(self, form: str, entry: _Literal) -> None:
        folded = form.translate(_FOLD_TABLE)
        bucket = self._literals.get(folded[:_PREFIX])
        if bucket is None:
            bucket = _Bucket((), {})
        same_length = bucket.by_length.setdefault(entry.length, {})
        same_length[folded] = _insert(same_length.get(folded, ()), entry)
        if entry.length not in bucket.lengths:  # a new lengths tuple, published after its entries
            self._literals[folded[:_PREFIX]] = _Bucket(tuple(sorted((*bucket.lengths, entry.length))),
                                                       bucket.by_length)

    def _digit_matches(self, text: str) -> dict[int, tuple[Rank, int, int]]:
        """Per run start: (rank, end, value) of the best digit alternative matching there."""
        counts = self._digit_counts
        if not counts or not self._digits or len(_NON_DIGITS.sub("", text)) < counts[0]:
            return {}  # every chain's digits are text's: fewer than any value has, no chain can match
        runs = [(m.start(), m.end()) for m in _DIGIT_RUN.finditer(text)]
        if not runs:
            return {}
        joined = [  # run i continues into run i + 1 (1-3 separators between them)
            _SEPARATORS.fullmatch(text, runs[i][1], runs[i + 1][0]) is not None for i in range(len(runs) - 1)
        ]
        longest, table, out = counts[-1], self._digits, {}
        for i, (start, _end) in enumerate(runs):
            digits, ends = "", []  # digits of the chain from this run; digit count at each run's end
            j = i
            while True:
                s, e = runs[j]
                digits += text[s:e]
                ends.append((len(digits), e))
                if len(digits) >= longest or j >= len(joined) or not joined[j]:
                    break
                j += 1
            best: tuple[Rank, int, int] | None = None
            for n, end_pos in ends:
                if n in counts:
                    hit = table.get(digits[:n])
                    if hit and (best is None or hit[0][0] < best[0]):
                        best = (hit[0][0], end_pos, hit[0][1])
            if best is not None:
                out[start] = best
        return out

    def matches(self, text: str) -> Iterator[Match]:
        """The big alternation's ``finditer`` matches (non-overlapping, leftmost, first alternative)."""
        if not text or not self._values:
            return
        folded = text.translate(_FOLD_TABLE)
        literals, boundary, n, pos = self._literals, _IS_BOUNDARY, len(text), 0
        digit_at = self._digit_matches(text)
        if not digit_at and _no_prefix(folded, literals):
            return  # no position can start a match: the walk below would find none (a record's selectors)
        while pos < n:
            best: tuple[Rank, int, int] | None = digit_at.get(pos)
            bucket = literals.get(folded[pos:pos + _PREFIX])
            if bucket is not None:
                left_ok = pos == 0 or not boundary[text[pos - 1]]
                for length in bucket.lengths:
                    end = pos + length
                    if end > n:
                        break
                    for e in bucket.by_length[length].get(folded[pos:end], ()):
                        if best is not None and e.rank >= best[0]:
                            break
                        if (left_ok or not e.left) and (not e.right or end == n or not boundary[text[end]]):
                            best = (e.rank, end, e.value)
                            break
            if best is not None:
                yield Match(pos, best[1], best[2])
                pos = best[1]
            else:
                pos += 1

    def redact(self, text: str) -> str:
        parts, pos = [], 0
        for m in self.matches(text):
            parts.append(text[pos:m.start])
            parts.append(marker(self._labels[m.value]))
            pos = m.end
        if not parts:
            return text
        parts.append(text[pos:])
        return "".join(parts)

    def contains_known(self, text: str) -> bool:
        """Whether ``redact`` would change ``text``; stops at the first known value."""
        return next(self.matches(text), None) is not None
