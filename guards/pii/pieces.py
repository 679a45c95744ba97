"""Where a model-less pattern recognizer's matches can lie in a block: the pieces its regexes read.

Why: a pattern recognizer's cost is its regexes run over every character it is given (the driver
licence's 20-alternative pattern, the dates' 13 patterns, ...), and a block that passes an entity's
pre-filter is mostly prose around one value. Every match of these recognizers is made of a known
set of characters (``BREAKS`` lists, per entity, the characters no match contains, in the ``regex``
module's own Unicode tables, as Presidio compiles them), so a match lies inside one *run* of the
other characters; and it meets the entity's pre-filter condition (``prefilter.CONDITIONS``, a
necessary condition of the match text), so its run holds a condition match. The pieces are those
runs, each with the break character on either side: their lookarounds (``\\b``, IP's
``(?<![\\w:])`` / ``(?![\\w:]|\\.\\d)``, the card's ``(?!1\\d{12}(?!\\d))`` over digits) read at most
that neighbour beyond the run, so each piece yields exactly the matches the block has in it. A
condition match that spans several runs takes them all (finditer's leftmost matches always touch
each match's run, see ``tests/guards/test_pii_pieces.py``).

Only for the recognizers Warden builds without a model (``engine.build_analyzer``): an NER model
reads the sentence around a value. IBAN keeps whole blocks (its recognizer has its own analyze).
"""

from __future__ import annotations

import importlib
import re
from functools import lru_cache
from typing import Any

from guards.pii.prefilter import CONDITIONS

_DIGIT = re.compile(r"\d")

# A phone candidate: 6+ digits joined by non-letters, plus an extension as phonenumbers reads one
# ("x31143", " ext. 12", "#5"): cutting the extension off would leave a match glued to a letter,
# which is dropped below, so the number would be lost (raw Presidio finds "453-272-3975x31143").
_PHONE_SPAN = re.compile(
    r"[+(（]?\d(?:[^\w\n]*\d){5,}"
    r"(?:[^\S\n]*[,;]?[^\S\n]*(?:e?xt(?:ension|n|\.)?|x|#|~|int\.?|anexo|доб\.?)[^\S\n]*[:.=]?[^\S\n]*\d{1,7})?",
    re.IGNORECASE,
)
# Candidates that are never phone numbers (see PHONE in _analyze_blocks): a slash date (12/5/2024,
# 2024/05/12) or a number with a decimal part (1,234.56; 1.234,56) — no dialling plan writes those.
_NOT_PHONE = re.compile(r"\d{1,4}/\d{1,2}/\d{1,4}|\d{1,3}(?:,\d{3})*\.\d{1,2}|\d{1,3}(?:\.\d{3})*,\d{1,2}")

# entity -> the characters none of its recognizers' matches contain (a ``regex`` character class).
BREAKS: dict[str, str] = {
    "CREDIT_CARD": r"[^\d \-]",  # \d groups joined by "-" or " " (also the Mastercard 2-series)
    "US_ITIN": r"[^\d \-]",
    "US_SSN": r"[^0-9 .\-]",
    "UK_NHS": r"[^0-9 \-]",
    "US_BANK_NUMBER": r"\W",
    "US_PASSPORT": r"\W",
    "MEDICAL_LICENSE": r"\W",
    "CRYPTO": r"\W",
    "US_DRIVER_LICENSE": r"[^\w\-\]]",  # letters, digits, and its "A-Z]" typo's "-" and "]"
    "IP_ADDRESS": r"[^\w:./%]",  # hex groups, ":", dotted octets, "/prefix", "%zone"
    "MAC_ADDRESS": r"[^\w:.\-]",
    "UUID": r"[^\w\-]",
    "EMAIL_ADDRESS": r"[^\w!#$%&'*+\-/=?^`{|}~.@]",
    "URL": r"[\s()<>]",  # schema, host, path up to a space or bracket, quotes
    "DATE_TIME": r"[^\w\-/.:+]",  # digits, month names, "-/.:", "T", "+hh:mm", "Z"
}


@lru_cache(maxsize=32)
def _breaks(entity: str) -> tuple[Any, Any]:
    regex: Any = importlib.import_module("regex")  # Presidio's engine: the Unicode tables its patterns use

    return regex.compile(BREAKS[entity]), regex.compile(BREAKS[entity], regex.REVERSE)


def pieces(entity: str, block: str) -> list[tuple[int, int]]:
    """The (start, end) pieces of ``block`` that hold every match of ``entity``'s recognizers in it,
    in order, not overlapping."""
    condition = CONDITIONS[entity] if entity != "DATE_TIME" else _DIGIT  # model-less dates need a digit
    assert condition is not None
    forward, backward = _breaks(entity)
    out: list[tuple[int, int]] = []
    n = len(block)
    m = condition.search(block)
    while m is not None:
        before = backward.search(block, 0, m.start())
        after = forward.search(block, m.end())
        start, end = (before.start() if before else 0), (after.end() if after else n)
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
        m = condition.search(block, out[-1][1]) if out[-1][1] < n else None
    return out


def phone_spans(text: str) -> list[tuple[int, int]]:
    """Phone numbers: phonenumbers' matcher parses every digit run for 8 regions (most of a raw scan's
    cost). It only sees spans of 6+ digits joined by non-letters, cut out of the block: no letters can
    sit inside a number, and the shortest valid international number has 6 digits (+43/+49 and a
    4-digit number). The one recall cost: a German local number of 4-5 digits written without its
    area code (e.g. "123.45" parses as one) is not seen."""
    return [(m.start(), m.end()) for m in _PHONE_SPAN.finditer(text) if not _NOT_PHONE.fullmatch(m.group())]
