"""Which (candidate, region) pairs of phonenumbers' matcher cannot match: skipped unparsed.

Why: Presidio's phone recognizer runs phonenumbers' matcher once per region (8 of them), and the
matcher parses every candidate it cuts out of the text (whole digit runs, then their groups:
"4012 8888 8888 1881" is tried whole, then as "4012", "8888", ...) for that region: ~600 parses
on a 50 KB page, most of a scan's cost. Most pairs provably fail, and proving it costs a few
precompiled regex tests instead of a parse (``guards/pii/phone_walk.py`` asks).

The proof, for phonenumbers 9.x (``parse`` + ``Leniency.VALID`` or stricter), for a candidate with
no plus sign, no letter and only ASCII characters, in region R:

* without "+" and without R's international (IDD) prefix at the start of its digits, the number's
  country code is R's (``FROM_DEFAULT_COUNTRY`` or ``FROM_NUMBER_WITHOUT_PLUS_SIGN``), and the
  national significant number (NSN) is made of the candidate's digits with some removed (country
  code, national prefix, carrier code, an extension), with R's metadata or that of the main region
  of R's country code; a region where either has a ``national_prefix_transform_rule`` other than
  one group of the matched digits (BR's ``\\2``), which could add digits, is never skipped;
  without letters there is no vanity-number conversion; without a letter there is no RFC 3966
  ``phone-context`` either;
* a valid number's NSN length is one of ``general_desc.possible_length`` of a region of its country
  code (``is_valid_number`` → ``_number_type_helper`` → ``_is_number_matching_desc``);
* so fewer digits than the smallest such length, over every region sharing R's country code, is
  never valid in R; nor, with no extension mark (``;#~,``: without letters, the only ways to write
  one), more digits than the longest such length plus what parsing can remove: the country code
  once and the national prefix (``national_prefix_for_parsing``, its widest match) twice, once when
  the country code is stripped and once by ``parse`` (not bounded, hence not used, in a region with
  a transform rule). The IDD check is conservative: whenever R's IDD pattern matches the start of
  the digits, the pair is parsed;
* otherwise (no extension mark) every NSN ``parse`` can read is tried, whichever way each of its
  branches goes (``_readings``): the digits, with R's national prefix stripped or not; and, if the
  digits start with R's country code, the rest with R's then the main region's national prefix
  stripped or not. A reading passes only if some region of the country code gives it a number
  type (``_number_type_helper``, read off the same metadata); one without the country code is
  ``FROM_DEFAULT_COUNTRY``, and VALID then also wants the national prefix written where the main
  region's format for that NSN asks for one (``_is_national_prefix_present_if_required``).

``tests/guards/test_pii_prefilters.py`` checks the skip against phonenumbers' own parse and verify,
and the recognizer against Presidio's, with hypothesis.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_ASCII_LETTER = re.compile(r"[A-Za-z]")
_NOT_DIGIT = re.compile(r"[^0-9]+")


_EXTENSION_MARK = re.compile(r"[;#~,]")  # the non-letter ASCII marks of an extension (phonenumbers 9.x)
_ONE_GROUP = re.compile(r"\\[1-9]")  # a transform rule that keeps one group of the digits it matched


_Desc = tuple[frozenset[int], "re.Pattern[str] | None"]  # possible lengths (empty: any), pattern (None: none)
_Format = tuple["re.Pattern[str] | None", "re.Pattern[str]", bool]  # leading digits, pattern, wants the prefix
_Prefix = tuple["re.Pattern[str] | None", "str | None"]  # national_prefix_for_parsing, its transform rule


@dataclass(frozen=True)
class _Facts:
    idd: re.Pattern[str]  # R's international prefix
    min_len: int  # the shortest valid NSN of R's country code
    max_len: int  # the longest
    max_removed: int | None  # digits parse can remove (country code, national prefix twice); None: unbounded
    cc: str  # R's country code
    prefix: _Prefix  # R's national prefix
    main_prefix: _Prefix  # that of the main region of R's country code
    main_formats: tuple[_Format, ...]  # the main region's number formats
    typers: tuple[tuple[_Desc, tuple[_Desc, ...]], ...]  # per region of the code: general desc, type descs
    lengths: frozenset[int]  # every general_desc.possible_length of those regions


def _desc(d: Any) -> _Desc:
    pattern = None if d is None else d.national_number_pattern
    lengths = frozenset(d.possible_length or ()) if d is not None else frozenset()
    return lengths, re.compile(pattern) if pattern else None


def _matches(nsn: str, desc: _Desc) -> bool:
    """``_is_number_matching_desc``: the length in the desc's list (if it has one), the pattern whole."""
    lengths, rx = desc
    return rx is not None and (not lengths or len(nsn) in lengths) and rx.fullmatch(nsn) is not None


def _typer(m: Any) -> tuple[_Desc, tuple[_Desc, ...]]:
    """The descs ``_number_type_helper`` tries after the general one, in its order (mobile only when
    its pattern is not the fixed line's)."""
    types = [m.premium_rate, m.toll_free, m.shared_cost, m.voip, m.personal_number, m.pager, m.uan, m.voicemail,
             m.fixed_line]
    if not m.same_mobile_and_fixed_line_pattern:
        types.append(m.mobile)
    return _desc(m.general_desc), tuple(_desc(d) for d in types)


def _formats(m: Any) -> tuple[_Format, ...]:
    from phonenumbers.phonenumberutil import _formatting_rule_has_first_group_only

    out = []
    for f in m.number_format:
        rule = f.national_prefix_formatting_rule
        wants = bool(rule) and not f.national_prefix_optional_when_formatting and not (
            _formatting_rule_has_first_group_only(rule))
        out.append((re.compile(f.leading_digits_pattern[-1]) if f.leading_digits_pattern else None,
                    re.compile(f.pattern), wants))
    return tuple(out)


def _prefix(m: Any) -> _Prefix:
    npfp = m.national_prefix_for_parsing
    return re.compile(npfp) if npfp else None, m.national_prefix_transform_rule or None


def _width(pattern: str | None) -> int | None:
    """The most characters ``pattern`` can match (None: unbounded or unknown)."""
    if not pattern:
        return 0
    sre_parse: Any = importlib.import_module("re._parser")  # the stdlib's own width computation
    widest = sre_parse.parse(pattern).getwidth()[1]
    return None if widest >= sre_parse.MAXREPEAT else int(widest)


@lru_cache(maxsize=64)
def _region_facts(region: str) -> _Facts | None:
    """What bounds a valid number's length in ``region`` (None: never skip it)."""
    from phonenumbers import PhoneMetadata
    from phonenumbers.phonenumberutil import region_code_for_country_code, region_codes_for_country_code

    meta: Any = PhoneMetadata.metadata_for_region(region, None)
    if meta is None or meta.international_prefix is None:
        return None
    # A number written with R's country code is parsed with the metadata of that code's main region.
    main: Any = PhoneMetadata.metadata_for_region(region_code_for_country_code(meta.country_code), None)
    if main is None:
        return None
    rules = [m.national_prefix_transform_rule for m in (meta, main) if m.national_prefix_transform_rule]
    if any(not _ONE_GROUP.fullmatch(r) for r in rules):
        return None  # a rule with literal digits can add digits (e.g. SM's "0549\1")
    lengths: list[int] = []
    typers = []
    for other in region_codes_for_country_code(meta.country_code):
        m: Any = PhoneMetadata.metadata_for_region(other, None)
        if m is None or not m.general_desc.possible_length:
            return None  # a region without a length list (or a non-geographic entity): never skipped
        lengths.extend(m.general_desc.possible_length)
        typers.append(_typer(m))
    widths = [_width(m.national_prefix_for_parsing) for m in (meta, main)]
    max_removed = None
    if not rules and None not in widths:  # a transform keeps a group: what it removes is not bounded here
        max_removed = len(str(meta.country_code)) + 2 * max(w or 0 for w in widths)
    return _Facts(re.compile(meta.international_prefix), min(lengths), max(lengths), max_removed,
                  str(meta.country_code), _prefix(meta), _prefix(main), _formats(main), tuple(typers),
                  frozenset(lengths))


def cannot_be_valid(candidate: str, region: str) -> bool:
    """True only if ``parse(candidate, region)`` + ``Leniency.VALID`` provably fails (see module doc)."""
    plain = plain_digits(candidate)
    return plain is not None and plain_cannot_be_valid(plain[0], plain[1], region)


def plain_digits(candidate: str) -> tuple[str, bool] | None:
    """The region-free half of ``cannot_be_valid``: (the digits, whether an extension mark is written)
    of a candidate with no plus sign, no letter and only ASCII characters; None for any other."""
    if not candidate.isascii() or "+" in candidate or _ASCII_LETTER.search(candidate):
        return None
    return _NOT_DIGIT.sub("", candidate), _EXTENSION_MARK.search(candidate) is not None


def plain_cannot_be_valid(digits: str, extension_mark: bool, region: str) -> bool:
    """The region's half of ``cannot_be_valid``, on what ``plain_digits`` returned."""
    facts = _region_facts(region)
    if facts is None:
        return False
    if facts.idd.match(digits) is not None:
        return False
    if len(digits) < facts.min_len:
        return True
    if extension_mark:
        return False
    if facts.max_removed is not None and len(digits) - facts.max_removed > facts.max_len:
        return True
    return _no_valid_reading(digits, facts)


def _no_valid_reading(digits: str, facts: _Facts) -> bool:
    """True if no NSN ``parse`` can read from ``digits`` (no plus, IDD nor extension) passes VALID's
    checks (module doc, last point)."""
    main_rx = facts.main_prefix[0]
    prefix_written: bool | None = None  # at most what _is_national_prefix_present_if_required finds
    for nsn in _stripped(digits, facts.prefix):
        if _typed(nsn, facts):
            if prefix_written is None:
                prefix_written = main_rx is not None and main_rx.match(digits) is not None
            if prefix_written or _prefix_required(nsn, facts.main_formats) is not True:
                return False
    if digits.startswith(facts.cc):
        for rest in _stripped(digits[len(facts.cc):], facts.prefix):
            if any(_typed(nsn, facts) for nsn in _stripped(rest, facts.main_prefix)):
                return False
    return True


def _stripped(number: str, prefix: _Prefix) -> set[str]:
    """What ``_maybe_strip_national_prefix_carrier_code`` can return as the number: itself, or with
    the national prefix removed or transformed (whichever its viability tests pick)."""
    out = {number}
    rx, rule = prefix
    if number and rx is not None:
        m = rx.match(number)
        if m is not None:
            out.add(number[m.end():])
            if rule:
                out.add(rx.sub(rule, number, count=1))
    return out


def _typed(nsn: str, facts: _Facts) -> bool:
    """Whether some region of R's country code gives ``nsn`` a number type (validity needs one)."""
    if len(nsn) not in facts.lengths:  # the general desc's length test, for every region at once
        return False
    return any(_matches(nsn, general) and any(_matches(nsn, d) for d in types) for general, types in facts.typers)


def _prefix_required(nsn: str, formats: tuple[_Format, ...]) -> bool | None:
    """Whether VALID wants the national prefix written before ``nsn``: the first format whose last
    leading-digits pattern and whole pattern fit (``_choose_formatting_pattern_for_number``) says;
    None if no format fits."""
    for leading, rx, wants in formats:
        if (leading is None or leading.match(nsn) is not None) and rx.fullmatch(nsn) is not None:
            return wants
    return None
