"""PII integration pieces without a browser: engine defaults, static policy check, typed values, tokens."""

from __future__ import annotations

from guards.pii import engine
from guards.pii.redactor import KnownValueRedactor, PiiRedactor
from guards.pii.scanner import PiiScanner
from guards.pii_guards import registrable
from missions.model import PiiPolicy


def test_static_entity_list_matches_presidio() -> None:
    assert sorted(engine.PATTERN_ENTITIES) == engine.supported_entities(None)


def test_default_entities_are_personal_ones() -> None:
    d = engine.default_entities(None)
    assert not set(d) & engine.TECHNICAL_ENTITIES
    assert {"EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS"} <= set(d)
    assert "PERSON" not in d


def test_policy_problems() -> None:
    assert engine.policy_problems(None, ["PERSON", "EMAIL_ADDRESS"], None) == []  # allow: harmless
    assert engine.policy_problems(["EMAIL_ADDRESS"], [], None) == []
    (path, msg), = engine.policy_problems(["PERSON"], [], None)
    assert path == "pii.entities" and "NER model" in msg and "en_core_web_sm" in msg
    (path, msg), = engine.policy_problems(["NOPE"], [], None)
    assert "unknown PII entity NOPE" in msg
    (path, msg), = engine.policy_problems(None, [], "no_such_model_xyz")
    assert path == "pii.nlp_model" and "never downloads" in msg


def test_registrable_values() -> None:
    assert registrable("fill", "value", "Jane Demo-Sample")
    assert registrable("press", "key", "hello there")
    assert not registrable("press", "key", "Enter")
    assert not registrable("press", "key", "Control+Shift+K")
    assert not registrable("select", "value", "travel")


def test_matches_glued_to_a_token_are_not_values_and_hashes_survive_redaction() -> None:
    scanner = PiiScanner(PiiPolicy(entities=engine.default_entities()), b"k" * 32)
    digest = "72f9372345e5f4b0c2b7a8b47a130820c5c1b82a7ef2a4c1d9e8f7a6b5c4d3e2"
    r = PiiRedactor(scanner, KnownValueRedactor())
    assert r.redact(digest) == digest
    assert r.redact("call (212) 555-0143 now") == "call «pii:PHONE_NUMBER» now"
    assert r.redact("http://h.localhost:4444/s?email=canary.alice.7f3k@example.com&x=1") == (
        "http://h.localhost:4444/s?email=«pii:EMAIL_ADDRESS»&x=1"
    )


def test_known_values_do_not_match_inside_tokens() -> None:
    k = KnownValueRedactor()
    k.add("cafe", "TYPED_VALUE")
    assert k.redact("sha 00cafe11") == "sha 00cafe11"
    assert k.redact("at the cafe.") == "at the «pii:TYPED_VALUE»."
