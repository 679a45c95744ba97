"""Per-entity pre-filters: which text blocks may hold an entity, decided before Presidio reads them.

Each pre-filter is a *necessary* condition of every pattern of that recognizer (read off Presidio
2.2.366's regexes), so it never costs recall: e.g. an e-mail needs an ``@``, a card needs 12+
digits with at most one ``-``/space between them, an IPv6 needs two colons around ≤ 4 hex digits.
Entities without a known pre-filter (NER ones, custom ones) always run.

``CONDITIONS`` states each condition; ``may_contain`` decides the same thing faster (a 50 KB page:
~15 ms of regex searches → a few ms): a block without a digit fails every condition that needs
one without a search, and each search starts at the character that is rarest in prose (a digit,
``.``, ``:``, ``-``) rather than at every letter — the same match, found with a look-behind
(``tests/guards/test_pii_prefilters.py`` checks both agree, with hypothesis).
"""

from __future__ import annotations

import re

__all__ = ["CONDITIONS", "entities_per_block", "may_contain"]

_I = re.IGNORECASE
# The necessary conditions per entity. None = no pre-filter: always scanned.
CONDITIONS: dict[str, re.Pattern[str] | None] = {
    "EMAIL_ADDRESS": re.compile(r"@"),
    "PHONE_NUMBER": re.compile(r"\d(?:[^\w\n]*\d){5}"),  # = the span rule of the scanner's phone pass
    "CREDIT_CARD": re.compile(r"\d(?:[- ]?\d){11}"),
    "US_SSN": re.compile(r"\d(?:[- .]?\d){8}"),
    "US_ITIN": re.compile(r"9\d(?:[- ]?\d){7}"),
    "US_BANK_NUMBER": re.compile(r"\d{8}"),
    "US_PASSPORT": re.compile(r"\d{8}"),
    # A letter next to a digit (the alphanumeric patterns), "]" then a digit (Presidio's typo
    # alternative ``A-Z]{2}[0-9]...``), or 6+ digits (the digits pattern). Letters as any Unicode
    # letter: Presidio matches [A-Z] case-insensitively, with its case folding.
    "US_DRIVER_LICENSE": re.compile(r"[^\W\d_][0-9]|[0-9][^\W\d_]|\][0-9]|[0-9]{6}"),
    "UK_NHS": re.compile(r"\d(?:[- ]?\d){9}"),
    "IBAN_CODE": re.compile(r"[A-Z]{2}\d{2}", _I),
    "IP_ADDRESS": re.compile(r"\d\.\d{1,3}\.\d|:[0-9A-F]{0,4}:", _I),  # three dotted octets, or IPv6's colons
    "CRYPTO": re.compile(r"[13][^\W_]{25}"),  # (bc1|[13]) then 25+ address characters
    "DATE_TIME": None,  # regex dates need digits, but an NER model finds "January" too
    "MEDICAL_LICENSE": re.compile(r"\d{7}"),
    "MAC_ADDRESS": re.compile(r"[0-9A-F]{2}[:-][0-9A-F]{2}|[0-9A-F]{4}\.[0-9A-F]{4}", _I),
    "UUID": re.compile(r"[0-9A-F]{8}-", _I),
    "URL": re.compile(r"[a-z0-9]\.[a-z]", _I),
}
# Without a model only the regex DateRecognizer runs, and its dates need a digit.
_DATE_WITHOUT_MODEL = re.compile(r"\d")

_DIGIT = re.compile(r"\d")


def _same(entity: str) -> re.Pattern[str]:
    rx = CONDITIONS[entity]
    assert rx is not None
    return rx


# The same conditions, each search anchored on its rarest character: (needs a digit, alternatives),
# an alternative being (characters one of which it needs, "" for none; its search).
_Alt = tuple[str, re.Pattern[str]]
_FAST: dict[str, tuple[bool, tuple[_Alt, ...]]] = {
    "EMAIL_ADDRESS": (False, (("@", _same("EMAIL_ADDRESS")),)),
    "PHONE_NUMBER": (True, (("", _same("PHONE_NUMBER")),)),
    "CREDIT_CARD": (True, (("", _same("CREDIT_CARD")),)),
    "US_SSN": (True, (("", _same("US_SSN")),)),
    "US_ITIN": (True, (("9", _same("US_ITIN")),)),
    "US_BANK_NUMBER": (True, (("", _same("US_BANK_NUMBER")),)),
    "US_PASSPORT": (True, (("", _same("US_PASSPORT")),)),
    "US_DRIVER_LICENSE": (True, (("", re.compile(r"[0-9](?:(?<=[^\W\d_][0-9])|(?<=\][0-9])|[^\W\d_]|[0-9]{5})")),)),
    "UK_NHS": (True, (("", _same("UK_NHS")),)),
    "IBAN_CODE": (True, (("", re.compile(r"\d(?<=[A-Z]{2}\d)\d", _I)),)),
    "IP_ADDRESS": (False, ((".", re.compile(r"\.(?<=\d\.)\d{1,3}\.\d")), (":", re.compile(r":[0-9A-F]{0,4}:", _I)))),
    "CRYPTO": (True, (("13", _same("CRYPTO")),)),
    "MEDICAL_LICENSE": (True, (("", _same("MEDICAL_LICENSE")),)),
    "MAC_ADDRESS": (False, ((":-", re.compile(r"[:-](?<=[0-9A-F]{2}[:-])[0-9A-F]{2}", _I)),
                            (".", re.compile(r"\.(?<=[0-9A-F]{4}\.)[0-9A-F]{4}", _I)))),
    "UUID": (False, (("-", re.compile(r"-(?<=[0-9A-F]{8}-)", _I)),)),
    "URL": (False, ((".", re.compile(r"\.(?<=[a-z0-9]\.)[a-z]", _I)),)),
}


def _has_digit(b: str) -> bool:
    """``\\d`` anywhere: for ASCII text, ten substring tests (its only ``\\d`` are 0-9; unrolled, as a
    generator costs more than the tests)."""
    if b.isascii():
        return ("0" in b or "1" in b or "2" in b or "3" in b or "4" in b or "5" in b or "6" in b or "7" in b
                or "8" in b or "9" in b)
    return _DIGIT.search(b) is not None


def _meets(alternatives: tuple[_Alt, ...], block: str) -> bool:
    for chars, rx in alternatives:
        if chars and not any(c in block for c in chars):
            continue
        if rx.search(block) is not None:
            return True
    return False


def _passing(alternatives: tuple[_Alt, ...], blocks: list[str], pool: list[int]) -> list[int]:
    """``[i for i in pool if _meets(alternatives, blocks[i])]``, without a call per block for the usual
    single alternative."""
    if len(alternatives) != 1:
        return [i for i in pool if _meets(alternatives, blocks[i])]
    chars, rx = alternatives[0]
    search = rx.search
    if not chars:
        return [i for i in pool if search(blocks[i]) is not None]
    if len(chars) == 1:
        return [i for i in pool if chars in blocks[i] and search(blocks[i]) is not None]
    return [i for i in pool if any(c in blocks[i] for c in chars) and search(blocks[i]) is not None]


def may_contain(entity: str, block: str, no_model: bool, has_digit: bool | None = None) -> bool:
    """Whether ``block`` meets ``entity``'s condition (True for an entity without one)."""
    if entity == "DATE_TIME" and no_model:
        return _has_digit(block) if has_digit is None else has_digit
    fast = _FAST.get(entity)
    if fast is None:  # no pre-filter, or one without a fast form: the stated condition
        stated = CONDITIONS.get(entity)
        return stated is None or stated.search(block) is not None
    needs_digit, alternatives = fast
    if needs_digit and not (_has_digit(block) if has_digit is None else has_digit):
        return False
    return _meets(alternatives, block)


def entities_per_block(entities: tuple[str, ...], blocks: list[str], no_model: bool) -> dict[str, list[int]]:
    """For each entity, the indexes of the blocks that may hold it: ``may_contain`` for every pair,
    with each block's digit test done once and the digit conditions searched in digit blocks only."""
    every = list(range(len(blocks)))
    with_digit = [i for i in every if _has_digit(blocks[i])]
    out: dict[str, list[int]] = {}
    for e in entities:
        fast = _FAST.get(e)
        if e == "DATE_TIME" and no_model:
            out[e] = with_digit
        elif fast is None:
            out[e] = [i for i in every if may_contain(e, blocks[i], no_model)]
        else:
            needs_digit, alternatives = fast
            out[e] = _passing(alternatives, blocks, with_digit if needs_digit else every)
    return out
