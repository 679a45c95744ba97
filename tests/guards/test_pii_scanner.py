"""PiiScanner against real Presidio: canaries in text, URLs, forms, JSON; policy; incremental; fail closed."""

from __future__ import annotations

import json
import time
from urllib.parse import quote, urlencode

import pytest

from guards.pii.errors import PiiScanError
from guards.pii.scanner import PiiScanner
from missions.model import PiiPolicy
from tests.guards.canaries import CANARIES, ENTITIES, Canary

KEY = bytes(range(32))


@pytest.fixture(scope="module")
def scanner() -> PiiScanner:
    return PiiScanner(PiiPolicy(entities=ENTITIES, threshold=0.5), KEY)


def _has(findings: list, c: Canary) -> bool:
    return any(f.entity_type == c.entity_type and f.value.strip() == c.value for f in findings)


def _has_norm(findings: list, c: Canary, scanner: PiiScanner) -> bool:
    from guards.pii.keyed import value_hmac

    h = value_hmac(KEY, c.entity_type, c.value)
    return any(f.entity_type == c.entity_type and f.value_hmac == h for f in findings)


@pytest.mark.parametrize("c", CANARIES, ids=lambda c: c.id)
def test_canary_in_plain_text(scanner: PiiScanner, c: Canary) -> None:
    found = scanner.scan_text(f"Customer record. {c.label} {c.value}. Thanks.", "page")
    assert _has(found, c)


@pytest.mark.parametrize("c", CANARIES, ids=lambda c: c.id)
def test_canary_in_encoded_query(scanner: PiiScanner, c: Canary) -> None:
    url = "https://portal.example.com/api/save?" + urlencode({"note": f"{c.label} {c.value}", "x": "1"})
    assert _has_norm(scanner.scan_request(url, None, None), c, scanner)


@pytest.mark.parametrize("c", CANARIES, ids=lambda c: c.id)
def test_canary_in_form_body(scanner: PiiScanner, c: Canary) -> None:
    body = urlencode({"field": f"{c.label} {c.value}", "csrf": "abc"}).encode()
    found = scanner.scan_request("https://portal.example.com/submit", body, "application/x-www-form-urlencoded")
    assert _has_norm(found, c, scanner)


@pytest.mark.parametrize("c", CANARIES, ids=lambda c: c.id)
def test_canary_in_json_body(scanner: PiiScanner, c: Canary) -> None:
    body = json.dumps({"data": {"items": [{"text": f"{c.label} {c.value}"}]}}).encode()
    found = scanner.scan_request("https://portal.example.com/api", body, "application/json; charset=utf-8")
    assert _has_norm(found, c, scanner)


def test_percent_encoded_email_in_path_and_query(scanner: PiiScanner) -> None:
    found = scanner.scan_request("https://h.example/users/x%40y.com/profile?to=a%2540b.org", None, None)
    values = {f.value for f in found if f.entity_type == "EMAIL_ADDRESS"}
    assert {"x@y.com", "a@b.org"} <= values
    assert all(f.where == "request" for f in found)


def test_multipart_body(scanner: PiiScanner) -> None:
    mail = quote("j@ex.com").encode()
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"card\"\r\n\r\n4111 1111 1111 1111\r\n"
            b"--XyZ\r\nContent-Disposition: form-data; name=\"mail\"\r\n\r\n" + mail + b"\r\n--XyZ--\r\n")
    found = scanner.scan_request("https://h.example/upload", body, "multipart/form-data; boundary=XyZ")
    assert {"CREDIT_CARD", "EMAIL_ADDRESS"} <= {f.entity_type for f in found}


def test_json_number_card(scanner: PiiScanner) -> None:
    found = scanner.scan_request("https://h.example/p", b'{"pan": 5555555555554444}', "application/json")
    assert any(f.entity_type == "CREDIT_CARD" for f in found)


def test_url_noise_on_emails_is_filtered() -> None:
    s = PiiScanner(PiiPolicy(entities=["EMAIL_ADDRESS", "URL"]), KEY)
    found = s.scan_text("write to john.smith@mail.example.org or see https://docs.example.com/x", "page")
    urls = [f.value for f in found if f.entity_type == "URL"]
    assert urls
    assert all("@" not in u and "john" not in u and "mail.example.org" not in u for u in urls)


def test_threshold_and_allow() -> None:
    text = "Email: a.b@example.com, ref 212-555-0187, host 203.0.113.47"
    low = PiiScanner(PiiPolicy(entities=ENTITIES, threshold=0.3, allow=["EMAIL_ADDRESS"]), KEY)
    found = {f.entity_type: f for f in low.scan_text(text, "page")}
    assert found["EMAIL_ADDRESS"].allowed is True  # allowed: still returned, flagged
    assert found["PHONE_NUMBER"].allowed is False
    assert found["PHONE_NUMBER"].score == pytest.approx(0.4)
    high = PiiScanner(PiiPolicy(entities=ENTITIES, threshold=0.7), KEY)
    types = {f.entity_type for f in high.scan_text(text, "page")}
    assert "EMAIL_ADDRESS" in types
    assert "PHONE_NUMBER" not in types
    assert "IP_ADDRESS" not in types


def test_context_words_restore_scores(scanner: PiiScanner) -> None:
    bare = [f for f in scanner.detect("ref 212-555-0187", 0.0) if f.entity_type == "PHONE_NUMBER"]
    ctx = [f for f in scanner.detect("phone 212-555-0187", 0.0) if f.entity_type == "PHONE_NUMBER"]
    assert bare[0].score == pytest.approx(0.4)
    assert ctx[0].score == pytest.approx(0.75)
    typed = scanner.scan_text("212-555-0187", "input", context=["Mobile phone"])
    assert typed
    assert typed[0].entity_type == "PHONE_NUMBER"


def test_only_requested_recognizers_are_built() -> None:
    s = PiiScanner(PiiPolicy(entities=["EMAIL_ADDRESS"]), KEY)
    ents = {e for r in s.analyzer.registry.recognizers for e in r.supported_entities}
    assert ents == {"EMAIL_ADDRESS"}
    assert s.scan_text("card 4111111111111111", "page") == []


def test_incremental_page_scan(scanner: PiiScanner) -> None:
    blocks = [f"Block {i}: quarterly numbers look fine." for i in range(200)]
    blocks[17] = "Contact: canary.alice.7f3k@example.com"
    blocks[90] = "Card number: 4111 1111 1111 1111"
    first = scanner.scan_page("page-1", blocks)
    assert {(f.block, f.entity_type) for f in first} == {(17, "EMAIL_ADDRESS"), (90, "CREDIT_CARD")}
    calls = scanner.analyzer_calls
    t = time.perf_counter()
    assert scanner.scan_page("page-1", blocks) == []
    assert (time.perf_counter() - t) < 0.05
    assert scanner.analyzer_calls == calls  # no Presidio call on the unchanged rescan
    changed = [*blocks, "IP address: 198.51.100.23"]
    new = scanner.scan_page("page-1", changed)
    assert [(f.block, f.entity_type) for f in new] == [(200, "IP_ADDRESS")]
    # Same blocks on another page: reported again, from the cache.
    calls = scanner.analyzer_calls
    again = scanner.scan_page("page-2", blocks)
    assert len(again) == 2
    assert scanner.analyzer_calls == calls


def test_finding_repr_hides_value(scanner: PiiScanner) -> None:
    f = scanner.scan_text("Email: canary.alice.7f3k@example.com", "input")[0]
    assert "canary" not in repr(f)
    assert "canary" not in f.preview
    assert f.where == "input"
    assert len(f.value_hmac) == 64


class _Boom:
    pass


def _raising_recognizer(entity: str, delay: float | None = None) -> object:
    from presidio_analyzer import EntityRecognizer

    class Raising(EntityRecognizer):  # type: ignore[misc]
        def load(self) -> None:
            pass

        def analyze(self, text, entities, nlp_artifacts=None):  # type: ignore[no-untyped-def]
            if delay is not None:
                time.sleep(delay)
                return []
            raise RuntimeError("recognizer exploded on canary.alice.7f3k@example.com")

    return Raising(supported_entities=[entity], name=f"Raising{delay}")


def test_scan_error_when_analyzer_raises() -> None:
    s = PiiScanner(PiiPolicy(entities=["EMAIL_ADDRESS"]), KEY)
    s.analyzer.registry.add_recognizer(_raising_recognizer("EMAIL_ADDRESS"))
    with pytest.raises(PiiScanError) as ei:
        s.scan_text("mail me at x@y.com", "input")
    assert "canary" not in str(ei.value)
    with pytest.raises(PiiScanError):
        s.scan_page("p", ["x@y.com"])
    with pytest.raises(PiiScanError):
        s.scan_request("https://h.example/?e=x%40y.com", None, None)


def test_scan_error_on_timeout() -> None:
    s = PiiScanner(PiiPolicy(entities=["EMAIL_ADDRESS"]), KEY, timeout_s=0.2)
    s.analyzer.registry.add_recognizer(_raising_recognizer("EMAIL_ADDRESS", delay=1.0))
    t = time.perf_counter()
    with pytest.raises(PiiScanError, match="timeout"):
        s.scan_text("x@y.com", "page")
    assert time.perf_counter() - t < 0.9
    s.close()


def test_text_no_entity_can_be_in_skips_the_worker_thread_and_finds_nothing() -> None:
    # The pre-filter runs in the caller's thread: a request text no entity's pre-filter lets
    # through needs no Presidio, so no hand-off; one that may hold an entity still goes through
    # the worker (and its timeout), and is found.
    s = PiiScanner(PiiPolicy(entities=["EMAIL_ADDRESS"]), KEY, timeout_s=5.0)
    try:
        assert s.scan_request("https://h.example/plain/path?q=nothing-here", None, None) == []
        assert s._executor is None and s.analyzer_calls == 0
        found = s.scan_request("https://h.example/?e=ada%40example.com", None, None)
        assert [f.entity_type for f in found] == ["EMAIL_ADDRESS"]
        assert s._executor is not None and s.analyzer_calls >= 1
    finally:
        s.close()


def test_keyed_fields_are_those_of_each_entity_and_key() -> None:
    """The (entity, value) -> HMAC and preview memo gives what keyed.py computes, per entity and per
    scanner key: the same digits found as a card and as a phone keep each type's preview, and two
    scanners with different keys never share an HMAC."""
    from guards.pii.keyed import masked_preview, value_hmac

    text = "card 4111 1111 1111 1111, call (212) 555-0143, mail ada@example.com"
    a = PiiScanner(PiiPolicy(), b"a" * 32, timeout_s=None)
    b = PiiScanner(PiiPolicy(), b"b" * 32, timeout_s=None)
    for _ in range(2):  # the second scan reads the memo
        fa, fb = a.scan_text(text + " ", "page"), b.scan_text(text + "  ", "page")
        assert {f.entity_type for f in fa} >= {"CREDIT_CARD", "PHONE_NUMBER", "EMAIL_ADDRESS"}
        for found, key in ((fa, b"a" * 32), (fb, b"b" * 32)):
            for f in found:
                assert f.value_hmac == value_hmac(key, f.entity_type, f.value)
                assert f.preview == masked_preview(f.entity_type, f.value)
        assert not {f.value_hmac for f in fa} & {f.value_hmac for f in fb}
        text += " again"
