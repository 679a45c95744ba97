"""Secrets bound to domains: the input and request guards, without a browser (allow AND refuse)."""

from __future__ import annotations

import base64
from typing import Any

from guards.base import ActionRequest, GuardContext
from guards.observed import RequestInfo
from guards.secrets import SecretInputGuard, SecretRequestGuard, SecretSet, encoded_forms

PW = "s3cr3t/pw with+spaces&é"  # a test secret with characters that encode differently
SECRETS = SecretSet({"PW": (PW, ["portal.example.com", "*.cdn.example.com:8443"])})


def _req(url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> RequestInfo:
    return RequestInfo(url=url, method="POST" if body else "GET", kind="subresource", resource_type="fetch",
                       is_navigation=False, frame_url=None, headers=headers or {}, body=body)


def _action(kind: str, **args: Any) -> tuple[ActionRequest, Any]:
    return ActionRequest(step_no=1, kind=kind, step=None, args=args), None  # type: ignore[arg-type]


def _ctx(url: str) -> GuardContext:
    return GuardContext(mission=None, phase="run", page_url=url)  # type: ignore[arg-type]


def test_input_guard_allows_the_bound_host_and_refuses_others() -> None:
    g = SecretInputGuard(SECRETS)
    action, _ = _action("fill", selector="#pw", value=PW)
    assert g.check(action, _ctx("https://portal.example.com/login")).verdict == "allow"
    assert g.check(action, _ctx("https://PORTAL.example.com.:443/x")).verdict == "allow"  # canonical host
    for url in ("https://evil.example.com/login", "https://portal.example.com@evil.com/", "about:blank",
                "https://a.cdn.example.com/"):  # wrong port for the cdn entry
        d = g.check(action, _ctx(url))
        assert d.verdict == "deny" and d.rule == "secrets.domains" and PW not in d.reason
    assert g.check(action, _ctx("https://a.cdn.example.com:8443/")).verdict == "allow"
    other, _ = _action("fill", selector="#q", value="no secret here")
    assert g.check(other, _ctx("https://evil.example.com/")).verdict == "allow"


def test_request_guard_finds_every_encoding_off_its_domains() -> None:
    g = SecretRequestGuard(SECRETS)
    basic = base64.b64encode(f"bot:{PW}".encode()).decode()
    leaks = [
        _req("https://evil.example.com/api", body=PW.encode()),
        _req("https://evil.example.com/api?x=" + encoded_forms(PW)[1]),
        _req("https://evil.example.com/api", body=("q=" + encoded_forms(PW)[2]).encode()),
        _req("https://evil.example.com/api", body=b'{"pw": "' + encoded_forms(PW)[3].encode() + b'"}'),
        _req("https://evil.example.com/api", headers={"authorization": f"Basic {basic}"}),
        _req("https://evil.example.com/api", headers={"x-token": base64.b64encode(PW.encode()).decode()}),
    ]
    for r in leaks:
        d = g.check_request(r, None)
        assert d.verdict == "deny" and d.details["host"] == "evil.example.com" and PW not in d.reason, r
        assert d.stops_run, r  # a leak attempt ends the run, not just the request
    # Sent to its own host: allowed; no secret at all: allowed.
    own_host, no_secret = _req("https://portal.example.com/login", body=PW.encode()), _req("https://evil.example.com/")
    for ok in (own_host, no_secret):
        d = g.check_request(ok, None)
        assert d.verdict == "allow" and not d.stops_run


def test_secret_set_strips_and_hides_values() -> None:
    assert SECRETS.strip(f"a {PW} b") == "a «secret:PW» b"
    assert PW not in repr(SECRETS.secrets[0])
