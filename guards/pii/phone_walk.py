"""Presidio's PhoneRecognizer with phonenumbers' matcher walk shared by its 8 regions.

Why: the recognizer runs ``PhoneNumberMatcher`` once per region, and each run walks the same text
the same way: the same candidate search, the same trimming, the same date and time-stamp checks,
the same inner groups ("4012 8888 8888 1881" whole, then "8888", ...), the same bracket and
neighbouring-letter checks. Only the parse of a candidate depends on the region (and, through
which candidates matched, where the walk resumes). ``_Walk`` computes the region-free steps once
per text; each region's ``_Matcher`` runs phonenumbers' own control flow (``_find``,
``_extract_match``, ``_extract_inner_match`` of phonenumbers 9.x, ``max_tries`` counted the same
way) on them, and parses only the pairs ``prefilter_phone`` cannot rule out.

Exactly Presidio's results: ``tests/guards/test_pii_prefilters.py`` compares them with hypothesis.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, cast

from guards.pii.prefilter_phone import plain_cannot_be_valid, plain_digits

_Attempts = tuple[tuple[str, int], ...]  # (group, offset in the candidate) tried in one loop turn


class _Walk:
    """The region-free steps of phonenumbers' matcher over one text, each computed once."""

    def __init__(self, text: str, leniency: int, regions: tuple[str, ...]) -> None:
        self.text = text
        self.leniency = leniency
        self.regions = regions
        self._next: dict[int, tuple[int, str] | None] = {}
        self._excluded: dict[tuple[str, int], bool] = {}
        self._inner: dict[str, tuple[tuple[_Attempts, ...], ...]] = {}
        self._checked: dict[tuple[str, int], bool] = {}
        self._plain: dict[str, tuple[str, bool] | None] = {}
        self._hopeless: dict[tuple[str, int], tuple[int, frozenset[str]]] = {}

    def next_candidate(self, index: int) -> tuple[int, str] | None:
        """``_find``'s search from ``index``: (start, candidate trimmed before a second number)."""
        if index not in self._next:
            from phonenumbers.phonenumbermatcher import _PATTERN
            from phonenumbers.phonenumberutil import _SECOND_NUMBER_START_PATTERN

            m = _PATTERN.search(self.text, index)
            if m is None:
                self._next[index] = None
            else:
                candidate = self.text[m.start():m.end()]
                second = _SECOND_NUMBER_START_PATTERN.search(candidate)
                self._next[index] = (m.start(), candidate[:second.start()] if second else candidate)
        return self._next[index]

    def excluded(self, candidate: str, offset: int) -> bool:
        """``_extract_match``'s refusal of a slash date or a time stamp."""
        key = (candidate, offset)
        if key not in self._excluded:
            from phonenumbers.phonenumbermatcher import _SLASH_SEPARATED_DATES, _TIME_STAMPS, _TIME_STAMPS_SUFFIX

            self._excluded[key] = bool(_SLASH_SEPARATED_DATES.search(candidate)) or bool(
                _TIME_STAMPS.search(candidate)
                and _TIME_STAMPS_SUFFIX.match(self.text[offset + len(candidate):]))
        return self._excluded[key]

    def inner(self, candidate: str) -> tuple[tuple[_Attempts, ...], ...]:
        """``_extract_inner_match``'s attempts: per inner pattern, its loop turns in order."""
        if candidate not in self._inner:
            from phonenumbers.phonenumbermatcher import _INNER_MATCHES
            from phonenumbers.phonenumberutil import _UNWANTED_END_CHAR_PATTERN

            def trim(group: str) -> str:
                m = _UNWANTED_END_CHAR_PATTERN.search(group)
                return group[:m.start()] if m else group

            per_pattern = []
            for pattern in _INNER_MATCHES:
                turns: list[_Attempts] = []
                m = pattern.search(candidate)
                while m:
                    group = ((trim(m.group(1)), m.start(1)),)
                    turns.append(((trim(candidate[:m.start()]), 0), *group) if not turns else group)
                    m = pattern.search(candidate, m.start() + 1)
                per_pattern.append(tuple(turns))
            self._inner[candidate] = tuple(per_pattern)
        return self._inner[candidate]

    def passes_checks(self, matcher: Any, candidate: str, offset: int) -> bool:
        """``_parse_and_verify``'s tests before its parse: brackets, page references and (VALID or
        stricter) a Latin letter, ``%`` or currency sign just before or after the candidate. A pure
        function of the candidate and the characters around it: kept across texts (``_checks``)."""
        key = (candidate, offset)
        ok = self._checked.get(key)
        if ok is None:
            text = self.text
            end = offset + len(candidate)
            ok = _checks(candidate, text[offset - 1] if offset > 0 else "", text[end] if end < len(text) else "",
                         self.leniency, matcher)
            self._checked[key] = ok
        return ok

    def cannot_match(self, matcher: Any, candidate: str, offset: int, region: str | None) -> bool:
        """Whether ``_parse_and_verify`` provably returns None in ``region``, without a parse: the
        checks before the parse fail, or ``prefilter_phone`` proves the number invalid there."""
        if not self.passes_checks(matcher, candidate, offset):
            return True
        if self.leniency < 1 or region is None:
            return False
        if candidate not in self._plain:
            self._plain[candidate] = plain_digits(candidate)
        plain = self._plain[candidate]
        if plain is None:
            return False
        return _skip(plain[0], plain[1], region)

    def hopeless(self, matcher: Any, candidate: str, offset: int) -> tuple[int, frozenset[str]]:
        """(how many inner attempts the candidate has, the regions in which none of its attempts,
        whole or inner, can match): there ``_extract_match`` fails after counting them all as tries.

        The regions where every attempt so far ``cannot_match`` narrow attempt by attempt. Every
        attempt lies inside the candidate, so what the text adds is the characters just before and
        after it: the answer is kept across texts under those (``_HOPELESS``)."""
        key = (candidate, offset)
        got = self._hopeless.get(key)
        if got is None:
            text = self.text
            end = offset + len(candidate)
            shared = (candidate, text[offset - 1] if offset > 0 else "", text[end] if end < len(text) else "",
                      self.leniency, self.regions)
            got = _HOPELESS.get(shared)
            if got is None:
                got = self._narrowed(matcher, candidate, offset)
                if len(_HOPELESS) >= _CACHE_CAP:
                    _HOPELESS.clear()
                _HOPELESS[shared] = got
            self._hopeless[key] = got
        return got

    def _narrowed(self, matcher: Any, candidate: str, offset: int) -> tuple[int, frozenset[str]]:
        attempts = [(candidate, offset)] + [
            (group, offset + at) for turns in self.inner(candidate) for turn in turns for group, at in turn]
        left = self.regions
        for g, o in attempts:
            if not left:
                break
            if not self.passes_checks(matcher, g, o):
                continue  # cannot match in any region
            if self.leniency < 1:
                left = ()
                break
            plain = self._plain.get(g, _UNSET)
            if plain is _UNSET:
                plain = self._plain[g] = plain_digits(g)
            if plain is None:
                left = ()
                break
            left = tuple(r for r in left if _skip(plain[0], plain[1], r))
        return len(attempts) - 1, frozenset(left)


_UNSET: Any = object()
# Kept across texts (pure functions of their keys; each cleared whole when full).
_CACHE_CAP = 1 << 16
_CHECKS: dict[tuple[str, str, str, int], bool] = {}
_HOPELESS: dict[tuple[str, str, str, int, tuple[str, ...]], tuple[int, frozenset[str]]] = {}
_VERIFIED: dict[tuple[str, str | None], Any] = {}  # (candidate, region) -> parsed number or None (VALID)


def forget() -> None:
    """Drop what the walk keeps across texts (a benchmark's cold scan; a test)."""
    _CHECKS.clear()
    _HOPELESS.clear()
    _VERIFIED.clear()
    _skip.cache_clear()


def _checks(candidate: str, before: str, after: str, leniency: int, matcher: Any) -> bool:
    """``passes_checks`` on the candidate and the characters just before and after it ("" at an end)."""
    key = (candidate, before, after, leniency)
    ok = _CHECKS.get(key)
    if ok is None:
        from phonenumbers.phonenumbermatcher import _LEAD_PATTERN, _MATCHING_BRACKETS, _PUB_PAGES

        ok = _MATCHING_BRACKETS.fullmatch(candidate) is not None and not _PUB_PAGES.search(candidate)
        if ok and leniency >= 1:
            if before and not _LEAD_PATTERN.match(candidate):
                ok = not _bad_neighbour(matcher, before)
            if ok and after:
                ok = not _bad_neighbour(matcher, after)
        if len(_CHECKS) >= _CACHE_CAP:
            _CHECKS.clear()
        _CHECKS[key] = ok
    return ok


@lru_cache(maxsize=1 << 16)
def _skip(digits: str, extension_mark: bool, region: str) -> bool:
    """``plain_cannot_be_valid``, kept across texts: a pure function of the digits and the region's
    (static) metadata; a page's short groups ("555", "0124", "2024") recur on every page."""
    return plain_cannot_be_valid(digits, extension_mark, region)


def _bad_neighbour(matcher: Any, char: str) -> bool:
    return bool(matcher._is_invalid_punctuation_symbol(char) or matcher._is_latin_letter(char))


@lru_cache(maxsize=1)
def matcher_class() -> Any:
    """``_Matcher(walk, region, shared, max_tries=65535)``: phonenumbers' matcher for one region,
    reading the shared ``walk``; ``shared`` holds the "+" candidates' results across regions."""
    from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberMatch, PhoneNumberMatcher
    from phonenumbers import parse as parse_number

    class _Matcher(PhoneNumberMatcher):
        """phonenumbers' matcher for one region, reading the shared walk."""

        def __init__(self, walk: _Walk, region: str, shared: dict[tuple[str, int], Any],
                     max_tries: int = 65535) -> None:
            super().__init__(walk.text, region, leniency=walk.leniency, max_tries=max_tries)
            self._walk = walk
            self._shared = shared if walk.leniency == 1 else None  # VALID: verify reads numobj, candidate

        def _find(self, index: int) -> Any:
            walk = self._walk
            found = walk.next_candidate(index)
            while self._max_tries > 0 and found is not None:
                start, candidate = found
                if len(candidate) >= self._min_candidate_length:
                    match = self._extract_match(candidate, start)
                    if match is not None:
                        return match
                    self._max_tries -= 1
                found = walk.next_candidate(start + len(candidate))
            return None

        def _extract_match(self, candidate: str, offset: int) -> Any:
            if self._walk.excluded(candidate, offset):
                return None
            tries, hopeless_in = self._walk.hopeless(self, candidate, offset)
            if self.preferred_region in hopeless_in and self._max_tries > tries:
                # Every attempt fails and each turn of the inner loop still sees a try left: the
                # same outcome as walking them, in one step.
                self._max_tries -= tries
                return None
            match = self._parse_and_verify(candidate, offset)
            if match is not None:
                return match
            return self._extract_inner_match(candidate, offset)

        def _extract_inner_match(self, candidate: str, offset: int) -> Any:
            for turns in self._walk.inner(candidate):
                for attempts in turns:
                    if self._max_tries <= 0:
                        break
                    for group, at in attempts:
                        match = self._parse_and_verify(group, offset + at)
                        if match is not None:
                            return match
                        self._max_tries -= 1
            return None

        def _parse_and_verify(self, candidate: str, offset: int) -> Any:
            if self._walk.cannot_match(self, candidate, offset, self.preferred_region):
                return None
            if self._shared is None:
                return super()._parse_and_verify(candidate, offset)
            # VALID, the checks before the parse passed (cannot_match): the outcome is parse and
            # verify of the candidate in the region alone, kept across texts.
            key = (candidate, self.preferred_region)
            if key in _VERIFIED:
                number = _VERIFIED[key]
                if number is None:
                    return None
                copy = PhoneNumber()
                copy.merge_from(number)  # a match's number is its own, as a parse would give
                return PhoneNumberMatch(offset, candidate, copy)
            found = self._verified(candidate, offset)
            if len(_VERIFIED) >= _CACHE_CAP:
                _VERIFIED.clear()
            _VERIFIED[key] = None if found is None else found.number
            return found

        def _verified(self, candidate: str, offset: int) -> Any:
            assert self._shared is not None
            if "+" not in candidate and "\uff0b" not in candidate:
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

    return _Matcher


def walk_matches(text: str, regions: tuple[str, ...], leniency: int = 1, max_tries: int = 65535) -> list[Any]:
    """Every region's matches over ``text``, one walk shared (what the recognizer reads; for tests)."""
    walk = _Walk(text, leniency, regions)
    shared: dict[tuple[str, int], Any] = {}
    return [list(matcher_class()(walk, region, shared, max_tries)) for region in regions]


def phone_match_spans(text: str, regions: tuple[str, ...], leniency: int = 1) -> list[tuple[int, int]]:
    """The (start, end) of each result ``FastPhoneRecognizer.analyze`` returns, in its order, without
    Presidio (the phone pass's worker process imports only phonenumbers: ``phone_worker``).

    Every phone result has the recognizer's one score, so Presidio's ``remove_duplicates`` reduces
    to: each span once, sorted by start then longest first, a span inside a kept one dropped."""
    walk = _Walk(text, leniency, regions)
    shared: dict[tuple[str, int], Any] = {}
    matcher = matcher_class()
    found = {(m.start, m.end) for region in regions for m in matcher(walk, region, shared)}
    kept: list[tuple[int, int]] = []
    active: list[tuple[int, int]] = []
    for start, end in sorted(found, key=lambda sp: (sp[0], sp[0] - sp[1])):
        active = [k for k in active if k[1] >= start]
        if not any(start >= a and end <= b for a, b in active):
            kept.append((start, end))
            active.append((start, end))
    return kept


@lru_cache(maxsize=1)
def _recognizer_class() -> Any:
    from phonenumbers import NumberParseException, region_code_for_number
    from phonenumbers import parse as parse_number
    from presidio_analyzer import EntityRecognizer
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    matcher = matcher_class()

    class FastPhoneRecognizer(PhoneRecognizer):
        """``PhoneRecognizer.analyze`` of presidio-analyzer 2.2.366, with ``_Matcher``."""

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            results = []
            walk = _Walk(text, cast(int, self.leniency), tuple(self.supported_regions))
            shared: dict[tuple[str, int], Any] = {}  # a "+" candidate's result, the same in every region
            named: dict[str, tuple[bool, str | None]] = {}  # a match's text -> (parsed, its region)
            for region in self.supported_regions:
                for match in matcher(walk, region, shared):
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

    return FastPhoneRecognizer


def fast_phone_recognizer(base: Any) -> Any:
    """A PhoneRecognizer that finds what ``base`` (Presidio's) finds: same regions, leniency, context
    and name; the walk shared, the unparsable pairs skipped, a "+" candidate parsed once."""
    return _recognizer_class()(
        context=list(base.context), supported_language=base.supported_language,
        supported_entity=base.supported_entities[0], supported_regions=tuple(base.supported_regions),
        leniency=base.leniency, name=base.name,
    )


def is_fast_phone_recognizer(recognizer: Any) -> bool:
    """Whether ``recognizer`` is exactly what ``fast_phone_recognizer`` makes (what ``phone_match_spans``
    answers for): a subclass could find something else."""
    return type(recognizer) is _recognizer_class()
