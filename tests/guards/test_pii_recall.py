"""Recall is never lost: Warden's scanner finds everything raw Presidio finds, with the same
recognizers and threshold, on the same text.

"Finds" means: for every result of raw ``AnalyzerEngine.analyze`` there is a Warden finding of the
same entity type whose span contains it (Warden may report a wider span — a phone number read with
its extension — but never less). Property-tested over text Faker generates in the locales whose
phone formats Presidio knows, with every default entity, at the redactor's threshold (0.4: bare
phone numbers score 0.4) and at the default one.
"""

from __future__ import annotations

import random

import pytest
from faker import Faker
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guards.pii.engine import build_analyzer, default_entities
from guards.pii.scanner import PiiScanner
from missions.model import PiiPolicy

ENTITIES = default_entities(None)
LOCALES = ["en_US", "en_GB", "en_CA", "en_IN", "de_DE", "pt_BR", "he_IL"]
_FAKERS = {loc: Faker(loc) for loc in LOCALES}


@pytest.fixture(scope="module")
def engines() -> dict[float, tuple[object, PiiScanner]]:
    analyzer = build_analyzer(ENTITIES, None)
    out = {}
    for threshold in (0.4, 0.5):
        policy = PiiPolicy().model_copy(update={"entities": ENTITIES, "threshold": threshold})
        out[threshold] = (analyzer, PiiScanner(policy, b"k" * 32, analyzer=analyzer))
    return out


def fake_text(locale: str, seed: int, filler: int) -> str:
    """A paragraph of Faker values of every kind Presidio detects, in a seeded order."""
    fk = _FAKERS[locale]
    fk.seed_instance(seed)
    parts = [
        fk.phone_number(), fk.phone_number(), fk.email(), fk.credit_card_number(), fk.ipv4(), fk.ipv6(),
        fk.iban(), fk.date(), fk.url(), fk.ssn(), fk.sentence(), fk.msisdn(),
    ]
    parts += [fk.sentence() for _ in range(filler)]
    random.Random(seed).shuffle(parts)
    return " ".join(parts)


def missed(analyzer: object, scanner: PiiScanner, text: str, threshold: float) -> list[tuple[str, str]]:
    raw = analyzer.analyze(text, language="en", entities=ENTITIES, score_threshold=threshold)  # type: ignore[attr-defined]
    mine = scanner.scan_text(text, "page")
    return [
        (r.entity_type, text[r.start:r.end])
        for r in raw
        if not any(f.entity_type == r.entity_type and f.start <= r.start and r.end <= f.end for f in mine)
    ]


@settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    locale=st.sampled_from(LOCALES),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    filler=st.integers(min_value=0, max_value=3),
    threshold=st.sampled_from([0.4, 0.5]),
)
def test_never_finds_less_than_raw_presidio(
    engines: dict[float, tuple[object, PiiScanner]], locale: str, seed: int, filler: int, threshold: float
) -> None:
    analyzer, scanner = engines[threshold]
    text = fake_text(locale, seed, filler)
    assert missed(analyzer, scanner, text, threshold) == [], text


@pytest.mark.parametrize(
    "text",
    [
        "Call 453-272-3975x31143 now",  # a US number with an extension (missed before the fix)
        "(295) 559-7971 x147 or 530.216.6131x86091",
        "+1-416-437-2651x67612, 001-826-650-2014x6201",
        "reach me at 020 7946 0958 ext. 12",
        "server 70.182.249.76 answered",  # an IPv4 address also parses as a phone number
        "account GB53LJHZ23194875749118 closed",  # a licence-shaped run inside an IBAN
    ],
)
def test_regressions(engines: dict[float, tuple[object, PiiScanner]], text: str) -> None:
    analyzer, scanner = engines[0.4]
    assert missed(analyzer, scanner, text, 0.4) == []
    assert analyzer.analyze(text, language="en", entities=ENTITIES, score_threshold=0.4)  # type: ignore[attr-defined]


def test_what_raw_presidio_ignores_stays_ignored(engines: dict[float, tuple[object, PiiScanner]]) -> None:
    """The pre-filter's exclusions are not a licence to find more noise: amounts, dates and the digit
    runs inside a hex digest are findings for neither."""
    analyzer, scanner = engines[0.4]
    sha = "sha 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c1"
    for text in ["total 1,234.56 EUR", "on 12/5/2024 we", sha]:
        raw = analyzer.analyze(text, language="en", entities=ENTITIES, score_threshold=0.4)  # type: ignore[attr-defined]
        assert [r for r in raw if r.entity_type == "PHONE_NUMBER"] == []
        assert [f for f in scanner.scan_text(text, "page") if f.entity_type == "PHONE_NUMBER"] == []
