"""The pre-filters keep Presidio's results: the fast phone recognizer finds exactly what Presidio's
PhoneRecognizer finds (same spans, scores and entity), on generated phone-like text and on Faker's
phone numbers (explanations included) of every locale whose format Presidio knows."""

from __future__ import annotations

import pytest
from faker import Faker
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guards.pii import prefilter_phone
from guards.pii.engine import import_presidio
from guards.pii.phone_walk import fast_phone_recognizer, walk_matches
from guards.pii.prefilter import CONDITIONS, entities_per_block, may_contain
from guards.pii.prefilter_phone import cannot_be_valid

LOCALES = ["en_US", "en_GB", "en_CA", "en_IN", "de_DE", "pt_BR", "he_IL", "fr_FR"]
_FAKERS = {loc: Faker(loc) for loc in LOCALES}


@pytest.fixture(scope="module")
def recognizers() -> tuple[object, object]:
    import_presidio()
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    presidio = PhoneRecognizer()
    return presidio, fast_phone_recognizer(presidio)


def _spans(rec: object, text: str) -> list[tuple[str, int, int, float, str]]:
    found = rec.analyze(text, ["PHONE_NUMBER"], None)  # type: ignore[attr-defined]
    return sorted((r.entity_type, r.start, r.end, r.score, r.analysis_explanation.textual_explanation) for r in found)


# Digits with the separators, brackets, plus signs and extension marks phone numbers are written with.
_PIECES = st.sampled_from(
    [*"0123456789", *"0123456789", " ", "-", ".", "/", "(", ")", "+", "00", "011", "1 ", "44 ", "49 ",
     "x", " ext. ", "#", ",", ";", "~", "ab", "\n", "＋", "٣", "tel:", "  "]
)


@settings(max_examples=400, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_PIECES, min_size=1, max_size=40).map("".join))
def test_same_results_as_presidio_on_phone_like_text(recognizers: tuple[object, object], text: str) -> None:
    presidio, fast = recognizers
    assert _spans(fast, text) == _spans(presidio, text)


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(locale=st.sampled_from(LOCALES), seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_same_results_as_presidio_on_fake_numbers(
    recognizers: tuple[object, object], locale: str, seed: int
) -> None:
    fk = _FAKERS[locale]
    fk.seed_instance(seed)
    text = " / ".join([fk.phone_number(), fk.msisdn(), fk.phone_number(), fk.credit_card_number(), fk.iban()])
    presidio, fast = recognizers
    assert _spans(fast, text) == _spans(presidio, text)


def test_skips_only_what_cannot_parse_as_valid(recognizers: tuple[object, object]) -> None:
    """The skip rule itself: short groups and long digit runs are skipped where provably invalid, and
    a number no reading of which is valid (or is written without the national prefix its format
    asks for); never a candidate with a plus sign, a letter, an extension mark or R's IDD prefix."""
    assert cannot_be_valid("4012", "US") and cannot_be_valid("4111 1111 1111 1111", "US")  # lengths
    assert cannot_be_valid("4111 1111 1111 1111", "GB")  # long, but no reading has a number type
    assert not cannot_be_valid("212-555-0143", "US") and not cannot_be_valid("030 901820", "DE")
    assert cannot_be_valid("(212) 555-0143", "DE")  # a valid German number, but written without its 0
    for text in ["+4012", "4012x", "011 40", "٤٠١٢", "+4111 1111 1111 1111", "4111 1111 1111 1111 # 1"]:
        assert not cannot_be_valid(text, "US"), text


# The regions Presidio uses, and others with unusual metadata: several regions per country code (GB's
# 44 with GG/IM/JE, IT's with VA), a transform rule (AR, MX, BR), national prefixes to strip (RU, JP).
_REGIONS = ["US", "GB", "DE", "FR", "IL", "IN", "CA", "BR", "IT", "AR", "MX", "RU", "JP", "AU", "SM", "JE"]


def _parse_and_verify(candidate: str, region: str) -> bool:
    """phonenumbers' own parse + VALID verification of a candidate (what the matcher accepts)."""
    import phonenumbers
    from phonenumbers.phonenumbermatcher import _verify

    try:
        number = phonenumbers.parse(candidate, region, keep_raw_input=True)
    except phonenumbers.NumberParseException:
        return False
    return bool(_verify(1, number, candidate, None))


def _written_forms() -> list[str]:
    """Every example number phonenumbers knows for those regions, written the ways pages write them:
    national format, international without the plus, E.164 digits, with 00 or 011, bare NSN."""
    import phonenumbers
    from phonenumbers import PhoneNumberFormat, PhoneNumberType

    out = []
    for region in _REGIONS:
        for kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.TOLL_FREE,
                     PhoneNumberType.PREMIUM_RATE, PhoneNumberType.VOIP, PhoneNumberType.UAN):
            n = phonenumbers.example_number_for_type(region, kind)
            if n is None:
                continue
            nsn = phonenumbers.national_significant_number(n)
            intl = phonenumbers.format_number(n, PhoneNumberFormat.INTERNATIONAL)
            out += [phonenumbers.format_number(n, PhoneNumberFormat.NATIONAL), intl.lstrip("+"), nsn,
                    f"{n.country_code}{nsn}", f"00{n.country_code}{nsn}", f"011 {intl.lstrip('+')}", f"0{nsn}",
                    f"1{nsn}", nsn[:-1], nsn + "0"]
    return out


def test_skip_is_sound_on_every_example_number() -> None:
    """No written form of a real example number is skipped in a region where phonenumbers accepts it."""
    import_presidio()
    forms = _written_forms()
    accepted = 0
    for candidate in forms:
        for region in _REGIONS:
            if cannot_be_valid(candidate, region):
                assert not _parse_and_verify(candidate, region), (candidate, region)
            else:
                accepted += _parse_and_verify(candidate, region)
    assert accepted > 200  # the forms do hold valid numbers


_DIGITS = st.text(alphabet="0123456789", min_size=1, max_size=18)
_CANDIDATE = st.lists(st.sampled_from([*"0123456789", *"0123456789", " ", "-", ".", "(", ")", "/", "1", "0",
                                       "00", "011", "44", "49", "55", "0549", "#", ","]),
                      min_size=1, max_size=24).map("".join)


@settings(max_examples=3000, deadline=None, derandomize=True)
@given(candidate=st.one_of(_CANDIDATE, _DIGITS), region=st.sampled_from(_REGIONS))
def test_skip_is_sound_on_generated_candidates(candidate: str, region: str) -> None:
    """Whenever a pair is skipped, phonenumbers' parse + VALID verification fails on it."""
    import_presidio()
    if cannot_be_valid(candidate, region):
        assert not _parse_and_verify(candidate, region), (candidate, region)


@settings(max_examples=2000, deadline=None, derandomize=True)
@given(nsn=_DIGITS, region=st.sampled_from(_REGIONS))
def test_number_types_and_formats_read_as_phonenumbers_does(nsn: str, region: str) -> None:
    """The precompiled reading of the metadata: ``_typed`` is "some region of the code gives it a type"
    (``_number_type_helper``) and ``_prefix_required`` is what the main region's chosen format asks."""
    import phonenumbers
    from phonenumbers import PhoneMetadata
    from phonenumbers.phonenumberutil import (
        PhoneNumberType,
        _choose_formatting_pattern_for_number,
        _formatting_rule_has_first_group_only,
        _number_type_helper,
    )

    facts = prefilter_phone._region_facts(region)
    if facts is None:
        return
    cc = int(facts.cc)
    metas = [PhoneMetadata.metadata_for_region(r) for r in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[cc]]
    typed = any(_number_type_helper(nsn, m) != PhoneNumberType.UNKNOWN for m in metas)
    assert prefilter_phone._typed(nsn, facts) == typed
    main = PhoneMetadata.metadata_for_region(phonenumbers.region_code_for_country_code(cc))
    rule = _choose_formatting_pattern_for_number(main.number_format, nsn)
    expected = None if rule is None else bool(
        rule.national_prefix_formatting_rule and not rule.national_prefix_optional_when_formatting
        and not _formatting_rule_has_first_group_only(rule.national_prefix_formatting_rule))
    assert prefilter_phone._prefix_required(nsn, facts.main_formats) == expected


# Text for the shared walk: numbers, the dates, time stamps, page references, brackets and neighbouring
# letters or signs the matcher refuses, and the separators of inner matches (slash, " - ", ". ", space).
_WALK_PIECES = st.sampled_from(
    [*"0123456789", *"0123456789", " ", "-", " - ", ". ", "/", "(", ")", "+", "$", "%", "€", "a", "é", "\n",
     "2012-01-02 08:00", "3/10/2011", "211-227 (2003)", "(650) 223 3345 (754) 223 3321", "212-555-0143",
     "+44 20 7946 0958", "030 901820", "4012 8888 8888 1881", "0800 123 4567", "x12", "#", "–"]
)


@settings(max_examples=500, deadline=None, derandomize=True)
@given(text=st.lists(_WALK_PIECES, min_size=1, max_size=30).map("".join), max_tries=st.integers(1, 12),
       leniency=st.sampled_from([0, 1, 2, 3]))
def test_shared_walk_matches_each_region_like_phonenumbers(text: str, max_tries: int, leniency: int) -> None:
    """Every region's matches through the shared walk are phonenumbers' own, at every leniency and with
    few tries left (``max_tries`` counted the same way, the one-step refusal of hopeless candidates)."""
    import_presidio()
    from phonenumbers import PhoneNumberMatcher

    regions = ("US", "GB", "DE", "FR", "IL", "IN", "CA", "BR")
    for tries in (max_tries, 65535):
        shared = walk_matches(text, regions, leniency, tries)
        for region, got in zip(regions, shared, strict=True):
            want = list(PhoneNumberMatcher(text, region, leniency=leniency, max_tries=tries))
            assert [(m.start, m.end, m.number) for m in got] == [(m.start, m.end, m.number) for m in want], region


def test_results_kept_across_texts_follow_the_neighbours(recognizers: tuple[object, object]) -> None:
    """The walk's answers kept across texts (checks, hopeless candidates, parses) are keyed by the
    candidate and the characters around it: the same digits next to a letter, a currency sign, a
    percent sign or nothing are judged afresh, as Presidio does, in any order."""
    presidio, fast = recognizers
    texts = []
    for number in ("212-555-0143", "(650) 223 3345", "+44 20 7946 0958", "030 901820", "4012 8888 8888 1881"):
        for before, after in (("", ""), ("a", ""), ("", "b"), ("$", ""), ("", "%"), ("call ", " now"), ("x", "y")):
            texts.append(f"{before}{number}{after}")
    for text in texts + texts[::-1]:
        assert _spans(fast, text) == _spans(presidio, text), text


# Text that exercises every condition: digits, hex letters, the separators they look for, other letters.
_BLOCK = st.text(alphabet=st.sampled_from([*"0123456789abcdefABCDEFxyzKL", *" .:-@]_\n", "ſ", "K", "١", "é"]),
                 max_size=60)


@settings(max_examples=1500, deadline=None, derandomize=True)
@given(block=_BLOCK, no_model=st.booleans())
def test_fast_conditions_decide_as_the_stated_ones(block: str, no_model: bool) -> None:
    """``may_contain`` (digit gate, look-behind searches) says what ``CONDITIONS`` say, entity by entity."""
    for entity, rx in CONDITIONS.items():
        stated = rx is None or rx.search(block) is not None
        if entity == "DATE_TIME" and no_model:
            stated = any(c.isdecimal() for c in block)
        assert may_contain(entity, block, no_model) == stated, (entity, block)
    assert may_contain("PERSON", block, no_model)  # an entity without a pre-filter always runs
    per_block = entities_per_block(tuple(CONDITIONS), [block, "x"], no_model)
    assert all((0 in per_block[e]) == may_contain(e, block, no_model) for e in CONDITIONS)


def test_every_raw_presidio_finding_passes_its_prefilter() -> None:
    """What raw Presidio finds, with every default recognizer, on the benchmark's page and on Faker
    text, lies in a block its entity's pre-filter lets through (the filter is a necessary condition)."""
    import_presidio()
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NoOpNlpEngine

    nlp = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "no_op"}])
    nlp.load()
    raw = AnalyzerEngine(nlp_engine=nlp)
    texts = []
    for loc, fk in _FAKERS.items():
        for seed in range(15):
            fk.seed_instance(seed)
            texts.append(" ".join([fk.phone_number(), fk.email(), fk.credit_card_number(), fk.ipv4(), fk.ipv6(),
                                   fk.iban(), fk.date(), fk.url(), fk.ssn(), fk.mac_address(), fk.uuid4(),
                                   fk.sentence(), fk.msisdn(), fk.license_plate(), loc]))
    for text in texts:
        for r in raw.analyze(text=text, language="en", score_threshold=0.0):
            assert may_contain(r.entity_type, text, True), (r.entity_type, text[r.start:r.end])
            assert may_contain(r.entity_type, text[r.start:r.end], True), (r.entity_type, text[r.start:r.end])


def test_request_text_memos_follow_the_exact_input() -> None:
    """The header and host memos answer a repeated input as a fresh read would, and a changed one
    (one more header, another value, another host) is read afresh."""
    from guards.pii import request_texts as rt

    headers = {"referer": "http://a.example/p?email=jane%40example.com", "x-user": "123-45-6789"}
    first = list(rt.header_texts(headers))
    assert list(rt.header_texts(headers)) == first == list(rt._header_texts(headers))
    changed = {**headers, "x-user": "987-65-4321"}
    assert ("header[x-user]", "987-65-4321", 1) in list(rt.header_texts(changed))
    assert ("header[x-user]", "987-65-4321", 1) not in first
    assert list(rt.host_texts("http://123-45-6789.evil.example/")) == list(rt._label_texts("123-45-6789.evil.example"))
    assert list(rt.host_texts("http://www.example.com/")) == []


def test_scan_text_memo_is_keyed_by_the_exact_text() -> None:
    """A remembered scan_text answer is the same as a fresh scan; another text, or the same text with
    other context words, is scanned again."""
    from guards.pii.scanner import PiiScanner
    from missions.model import PiiPolicy

    scanner = PiiScanner(PiiPolicy(entities=["US_SSN", "PHONE_NUMBER"], threshold=0.5), b"k" * 32)
    text = "call 212-555-0143"
    once = scanner.scan_text(text, "request")
    calls = scanner.analyzer_calls
    assert scanner.scan_text(text, "request") == once and scanner.analyzer_calls == calls
    assert scanner.scan_text(text + " now", "request") != [] and scanner.analyzer_calls > calls
    with_context = scanner.scan_text("212-555-0143", "request", context=["phone"])
    assert [f.score for f in with_context] != [f.score for f in scanner.scan_text("212-555-0143", "request")]
