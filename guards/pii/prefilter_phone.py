"""Presidio's PhoneRecognizer, with the (candidate, region) pairs that cannot match skipped unparsed.

Why: the recognizer runs phonenumbers' matcher once per region (8 of them), and the matcher parses
every candidate it cuts out of the text (whole digit runs, then their groups: "4012 8888 8888 1881"
is tried whole, then as "4012", "8888", ...) for that region: ~600 parses on a 50 KB page, most of
a scan's cost. A short candidate cannot be a valid number in most regions, and proving it needs no
parse.

Exactly Presidio's results: the matcher is phonenumbers' own, run the same way (same regions,
leniency, candidates, ``max_tries`` accounting, inner matches); only ``_parse_and_verify`` returns
None *before* parsing when the result is provably None. The proof, for phonenumbers 9.x
(``parse`` + ``Leniency.VALID``), for a candidate with no plus sign, no letter and only ASCII
characters, in region R:

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
  the digits, the pair is parsed.

A candidate written with "+" and a country code parses to the same number in every region (its
country code and metadata come from the number, not the region): it is parsed once per text and
position, not once per region.

``tests/guards/test_pii_prefilters.py`` checks it against Presidio's recognizer with hypothesis.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

_ASCII_LETTER = re.compile(r"[A-Za-z]")
_NOT_DIGIT = re.compile(r"[^0-9]+")


_EXTENSION_MARK = re.compile(r"[;#~,]")  # the non-letter ASCII marks of an extension (phonenumbers 9.x)
_ONE_GROUP = re.compile(r"\\[1-9]")  # a transform rule that keeps one group of the digits it matched


@dataclass(frozen=True)
class _Facts:
    idd: re.Pattern[str]  # R's international prefix
    min_len: int  # the shortest valid NSN of R's country code
    max_len: int  # the longest
    max_removed: int | None  # digits parse can remove (country code, national prefix twice); None: unbounded


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
    for other in region_codes_for_country_code(meta.country_code):
        m: Any = PhoneMetadata.metadata_for_region(other, None)
        if m is None or not m.general_desc.possible_length:
            return None  # a region without a length list: validity not bounded by length
        lengths.extend(m.general_desc.possible_length)
    widths = [_width(m.national_prefix_for_parsing) for m in (meta, main)]
    max_removed = None
    if not rules and None not in widths:  # a transform keeps a group: what it removes is not bounded here
        max_removed = len(str(meta.country_code)) + 2 * max(w or 0 for w in widths)
    return _Facts(re.compile(meta.international_prefix), min(lengths), max(lengths), max_removed)


def cannot_be_valid(candidate: str, region: str) -> bool:
    """True only if ``parse(candidate, region)`` + ``Leniency.VALID`` provably fails (see module doc)."""
    if not candidate.isascii() or "+" in candidate or _ASCII_LETTER.search(candidate):
        return False
    facts = _region_facts(region)
    if facts is None:
        return False
    digits = _NOT_DIGIT.sub("", candidate)
    if facts.min_len <= len(digits) and (
        facts.max_removed is None or len(digits) - facts.max_removed <= facts.max_len
        or _EXTENSION_MARK.search(candidate)
    ):
        return False
    return facts.idd.match(digits) is None


def fast_phone_recognizer(base: Any) -> Any:
    """A PhoneRecognizer that finds what ``base`` (Presidio's) finds: same regions, leniency, context
    and name, skipping the unparsable pairs above."""
    from phonenumbers import NumberParseException, PhoneNumberMatcher, region_code_for_number
    from phonenumbers import parse as parse_number
    from presidio_analyzer import EntityRecognizer
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    class _Matcher(PhoneNumberMatcher):
        def __init__(self, text: str, region: str, leniency: int, shared: dict[tuple[str, int], Any]) -> None:
            super().__init__(text, region, leniency=leniency)
            self._shared = shared if leniency == 1 else None  # Leniency.VALID: verify reads numobj, candidate

        def _parse_and_verify(self, candidate: str, offset: int) -> Any:
            if self.preferred_region is not None and cannot_be_valid(candidate, self.preferred_region):
                return None
            if self._shared is None or ("+" not in candidate and "\uff0b" not in candidate):
                return super()._parse_and_verify(candidate, offset)
            key = (candidate, offset)
            if key in self._shared:
                return self._shared[key]
            found = super()._parse_and_verify(candidate, offset)
            if _region_free(candidate):
                self._shared[key] = found
            return found

    def _region_free(candidate: str) -> bool:
        """Whether every region parses ``candidate`` as the same number: its country code is read after
        the plus sign (parse without a region works). The checks before the parse read the text, not the
        region, and VALID's verification reads only the number and the candidate."""
        try:
            parse_number(candidate, None, keep_raw_input=True)
        except NumberParseException:
            return False
        return True

    class FastPhoneRecognizer(PhoneRecognizer):
        """``PhoneRecognizer.analyze`` of presidio-analyzer 2.2.366, with ``_Matcher``."""

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            results = []
            shared: dict[tuple[str, int], Any] = {}  # a "+" candidate's result, the same in every region
            named: dict[str, tuple[bool, str | None]] = {}  # a match's text -> (parsed, its region)
            for region in self.supported_regions:
                for match in _Matcher(text, region, cast(int, self.leniency), shared):
                    # As Presidio: the explanation's region (only) leaks into later matches. The
                    # region-less parse is a pure function of the matched text: done once per text.
                    raw = text[match.start:match.end]
                    if raw not in named:
                        try:
                            named[raw] = (True, region_code_for_number(parse_number(raw)))
                        except NumberParseException:
                            named[raw] = (False, None)
                    parsed, found = named[raw]
                    if parsed:
                        region = found
                    results.append(self._get_recognizer_result(  # type: ignore[no-untyped-call]
                        match, text, region, nlp_artifacts))
            return list(EntityRecognizer.remove_duplicates(results))

    return FastPhoneRecognizer(
        context=list(base.context), supported_language=base.supported_language,
        supported_entity=base.supported_entities[0], supported_regions=tuple(base.supported_regions),
        leniency=base.leniency, name=base.name,
    )
