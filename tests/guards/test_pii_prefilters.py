"""The pre-filters keep Presidio's results: the fast phone recognizer finds exactly what Presidio's
PhoneRecognizer finds (same spans, scores and entity), on generated phone-like text and on Faker's
phone numbers (explanations included) of every locale whose format Presidio knows."""

from __future__ import annotations

import pytest
from faker import Faker
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guards.pii.engine import import_presidio
from guards.pii.prefilter import CONDITIONS, entities_per_block, may_contain
from guards.pii.prefilter_phone import cannot_be_valid, fast_phone_recognizer

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
    """The skip rule itself: short groups and long digit runs are skipped where provably invalid,
    never a candidate with a plus sign, a letter, an extension mark or R's international prefix."""
    assert cannot_be_valid("4012", "US") and not cannot_be_valid("4012", "DE")  # DE has 4-digit numbers
    assert cannot_be_valid("4111 1111 1111 1111", "US")  # 16 digits: more than 10 + 3 removable
    assert not cannot_be_valid("4111 1111 1111 1111", "GB")  # GB's national prefix 180020: not bounded enough
    assert not cannot_be_valid("212-555-0143", "US")
    for text in ["+4012", "4012x", "011 40", "٤٠١٢", "+4111 1111 1111 1111", "4111 1111 1111 1111 # 1"]:
        assert not cannot_be_valid(text, "US"), text


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
