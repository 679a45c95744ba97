"""Egress DLP without a browser: which texts of a request are scanned (headers, cookies, host labels,
WebSocket messages as bodies), the PII request guard over them with real Presidio, and secrets in
headers, host labels (any case), hex and base32. Each attack spelling is paired with what must pass."""

from __future__ import annotations

import base64

import pytest

from guards.observed import RequestContext, RequestInfo
from guards.pii import engine
from guards.pii.request_texts import header_texts, host_texts
from guards.pii.scanner import PiiScanner
from guards.pii_guards import PiiRequestGuard
from guards.secrets import SecretRequestGuard, SecretSet
from missions.model import PiiPolicy
from tests.guards.pii_support import CARD, EMAIL, SSN

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/150.0.0.0 Safari/537.36"
BROWSER = {"accept": "*/*", "user-agent": UA, "sec-ch-ua": '"Chromium";v="150.0.7000.1"', "sec-ch-ua-mobile": "?0",
           "referer": "http://allowed.localhost:8000/page", "origin": "http://allowed.localhost:8000"}
SECRET = "s3cr3t-Warden-canary-pw"
CTX = RequestContext(1, "http://allowed.localhost/page")


@pytest.fixture(scope="module")
def guard() -> PiiRequestGuard:
    return PiiRequestGuard(PiiScanner(PiiPolicy(entities=engine.default_entities()), b"k" * 32), "block")


def _req(url: str = "http://allowed.localhost/api", headers: dict[str, str] | None = None,
         body: bytes | None = None, kind: str = "subresource") -> RequestInfo:
    return RequestInfo(url=url, method="GET", kind=kind, resource_type="fetch", is_navigation=False,  # type: ignore[arg-type]
                       frame_url=None, headers={**BROWSER, **(headers or {})}, body=body)


def test_header_texts_split_cookies_and_drop_browser_version_tokens() -> None:
    texts = list(header_texts({**BROWSER, "cookie": "a=1; sid=abc%40x.com", "x-trace": "v"}))
    sources = {s for s, _, _ in texts}
    assert {"header[cookie][name]", "header[cookie][sid]", "header[x-trace]", "header[name]"} <= sources
    assert ("header[cookie][sid]", "abc@x.com", 1) in texts  # URL-decoded
    assert not any("150.0" in t for _, t, _ in texts)  # HeadlessChrome/150.0.0.0 reads as an IP address


@pytest.mark.parametrize(
    ("url", "expect"),
    [
        ("http://123-45-6789.evil.localhost/", {"123-45-6789", "123 45 6789"}),
        ("http://4111.1111.1111.1111.evil.localhost/", {"4111 1111 1111 1111", "4111-1111-1111-1111"}),
        ("http://jane.doe.example.com/", set()),  # a name as labels is a host, not scanned
        ("http://10.0.0.5/", set()),  # an IP-literal host is the destination
        ("http://allowed.localhost:8000/", set()),
    ],
)
def test_host_texts(url: str, expect: set[str]) -> None:
    assert expect <= {t for _, t, _ in host_texts(url)}
    if not expect:
        assert list(host_texts(url)) == []


_CARD16 = CARD[1].value.replace(" ", "").replace("-", "")

# attack spelling -> (request, the source the finding must name)
ATTACKS = {
    "custom header": (_req(headers={"x-ref": SSN[0].value}), "header[x-ref]"),
    "custom header, base64": (_req(headers={"x-blob": base64.b64encode(EMAIL[0].value.encode()).decode()}),
                              "header[x-blob].base64"),
    "cookie set by script": (_req(headers={"cookie": f"theme=dark; sid={SSN[1].value}"}), "header[cookie][sid]"),
    "cookie, url-encoded": (_req(headers={"cookie": "u=" + EMAIL[1].value.replace("@", "%40")}),
                            "header[cookie][u]"),
    "referer query (pushState)": (_req(headers={"referer": f"http://allowed.localhost/p?c={CARD[0].value}"}),
                                  "header[referer].query[c]"),
    "host label": (_req(url=f"http://{SSN[2].value}.allowed.localhost/x"), "host"),
    "split host labels": (_req(url=f"http://{'.'.join(_CARD16[i:i + 4] for i in range(0, 16, 4))}.allowed.localhost/"),
                          "host"),
    "websocket text message": (_req(url="ws://allowed.localhost/ws", body=f'{{"p":"{EMAIL[2].value}"}}'.encode(),
                                    kind="websocket"), "body"),
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_pii_request_guard_refuses_each_spelling(guard: PiiRequestGuard, name: str) -> None:
    request, source = ATTACKS[name]
    d = guard.check_request(request, CTX)
    assert d.verdict == "deny" and d.stops_run, d.reason
    assert source in {o.finding.source for o in d.findings}
    assert all(o.action == "blocked" for o in d.findings)
    assert all(o.finding.value not in d.reason for o in d.findings)


@pytest.mark.parametrize(
    "request_",
    [
        _req(),  # the browser's own headers (user-agent versions, sec-ch-ua) are not PII
        _req(url="http://jane.doe.allowed.localhost/a", headers={"cookie": "theme=dark; n=3", "x-trace": "abc"}),
        _req(url="ws://allowed.localhost/ws", body=b"hello", kind="websocket"),
        _req(headers={"authorization": "Bearer " + base64.b64encode(b"just a token").decode()}),
    ],
)
def test_pii_request_guard_allows_clean_requests(guard: PiiRequestGuard, request_: RequestInfo) -> None:
    d = guard.check_request(request_, CTX)
    assert d.verdict == "allow" and not d.findings, [o.finding.source for o in d.findings]


def test_record_policy_lets_a_header_through_and_reports_it() -> None:
    g = PiiRequestGuard(PiiScanner(PiiPolicy(entities=engine.default_entities()), b"k" * 32), "record")
    d = g.check_request(_req(headers={"x-ref": SSN[0].value}), CTX)
    assert d.verdict == "allow" and [o.action for o in d.findings] == ["recorded"]


@pytest.fixture(scope="module")
def secrets() -> SecretRequestGuard:
    return SecretRequestGuard(SecretSet({"API": (SECRET, ["allowed.localhost"])}))


_raw = SECRET.encode()
SECRET_ATTACKS = {
    "custom header": _req("http://other.allowed.localhost/", headers={"x-k": SECRET}),
    "cookie": _req("http://other.allowed.localhost/", headers={"cookie": f"k={SECRET}"}),
    "host label, lowercased by the browser": _req(f"http://{SECRET.lower()}.other.localhost/"),
    "hex in query": _req(f"http://other.localhost/?d={_raw.hex()}"),
    "base32 host label": _req(f"http://{base64.b32encode(_raw).decode().rstrip('=').lower()}.other.localhost/"),
    "base32, shifted": _req(f"http://other.localhost/?d={base64.b32encode(b'xy' + _raw).decode()}"),
    "websocket message": _req("ws://other.localhost/ws", body=f"k={SECRET}".encode(), kind="websocket"),
}


@pytest.mark.parametrize("name", sorted(SECRET_ATTACKS))
def test_secret_refused_in_every_place(secrets: SecretRequestGuard, name: str) -> None:
    d = secrets.check_request(SECRET_ATTACKS[name], CTX)
    assert d.verdict == "deny" and d.stops_run and SECRET not in d.reason and SECRET.lower() not in d.reason


def test_secret_allowed_to_its_own_host(secrets: SecretRequestGuard) -> None:
    d = secrets.check_request(_req("http://allowed.localhost/login", headers={"cookie": f"k={SECRET}"}), CTX)
    assert d.verdict == "allow"
    assert secrets.check_request(_req("http://other.localhost/", headers={"x-k": "nothing"}), CTX).verdict == "allow"
