"""HostVerdicts: the domain guard's decision kept per (kind, scheme, plain host[:port]), never more widely.

The memo must give exactly the guard's answer: the same host on another port, scheme or request
kind is judged again, and an authority that is not plain (userinfo, percent-escapes, upper case,
IPv6, a backslash) always goes to the guard, so no spelling can ride on a kept "allow".
"""

from __future__ import annotations

import pytest

from guards.base import Decision
from guards.domains import DomainRequestGuard
from guards.observed import RequestContext, RequestInfo, RequestKind
from guards.urlmatch import DomainPolicy
from runner.network import HostVerdicts

CTX = RequestContext(1, "http://allowed.localhost/")


class Counting(DomainRequestGuard):
    def __init__(self, policy: DomainPolicy) -> None:
        super().__init__(policy)
        self.calls = 0

    def check_request(self, request: RequestInfo, ctx: RequestContext) -> Decision:
        self.calls += 1
        return super().check_request(request, ctx)


def _req(url: str, kind: RequestKind = "subresource") -> RequestInfo:
    return RequestInfo(url=url, method="GET", kind=kind, resource_type="image", is_navigation=False, frame_url=None)


@pytest.fixture
def guard() -> Counting:
    return Counting(DomainPolicy(["allowed.localhost", "*.allowed.localhost"], allow_http=False))


def test_one_parse_per_host_and_the_same_answer(guard: Counting) -> None:
    memo = HostVerdicts(guard)
    answers = {memo.check_request(_req(f"https://img.allowed.localhost/i/{i}.gif?r={i}"), CTX).verdict
               for i in range(50)}
    assert answers == {"allow"} and guard.calls == 1


@pytest.mark.parametrize("second", [
    "http://img.allowed.localhost/x",            # another scheme (plain http is refused here)
    "https://img.allowed.localhost:8443/x",      # another port
    "https://evil.localhost/x",                  # another host
])
def test_another_scheme_port_or_host_is_judged_again(guard: Counting, second: str) -> None:
    memo = HostVerdicts(guard)
    memo.check_request(_req("https://img.allowed.localhost/x"), CTX)
    got = memo.check_request(_req(second), CTX)
    assert guard.calls == 2
    assert got == guard.check_request(_req(second), CTX)


def test_the_kind_is_part_of_the_key(guard: Counting) -> None:
    memo = HostVerdicts(guard)
    memo.check_request(_req("https://allowed.localhost/a", "subresource"), CTX)
    memo.check_request(_req("https://allowed.localhost/a", "navigation"), CTX)
    assert guard.calls == 2


@pytest.mark.parametrize("url", [
    "https://evil.localhost@allowed.localhost/x",
    "https://allowed.localhost%2F@evil.localhost/x",
    "https://ALLOWED.localhost/x",
    "https://[::1]/x",
    "https://allowed.localhost\\@evil.localhost/x",
    "data:text/plain,hi",
    "about:blank",
])
def test_no_plain_authority_no_memo(guard: Counting, url: str) -> None:
    memo = HostVerdicts(guard)
    for _ in range(3):
        got = memo.check_request(_req(url), CTX)
    assert guard.calls == 3
    assert got == guard.check_request(_req(url), CTX)
