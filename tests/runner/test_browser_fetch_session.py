"""The Fetch layer's session: replies it does not wait for still decide, in order, what leaves.

``Session.answer`` puts ``Fetch.continueRequest``/``failRequest`` on Playwright's connection without
waiting for the empty reply. Proven by what the server received: refused requests never arrive,
allowed ones all do, a reply to a request that is gone raises nothing and leaves no unread error,
and a session without Playwright's internals falls back to the sync call.
"""

from __future__ import annotations

import gc
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guards.observed import RequestInfo
from runner.browser.browser_fetch import Session, plain_host
from runner.browser.chromium import host_of
from runner.browser.driver import GateVerdict, SandboxConfig
from runner.browser.playwright_driver import open_driver
from tests.server import TestServer

pytestmark = pytest.mark.browser

HOST = "site.localhost"
GIF = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")


def _page(server: TestServer, n: int) -> str:
    return "".join(f'<img src="{server.url(HOST, f"/i/{i}.gif")}">' for i in range(n))


def test_every_allowed_request_arrives_and_no_refused_one_does(chromium_path: Path, test_server: TestServer) -> None:
    n = 60
    test_server.set_content("/", _page(test_server, n))
    for i in range(n):
        test_server.set_content(f"/i/{i}.gif", GIF, "image/gif")
    judged: list[str] = []

    def gate(info: RequestInfo) -> GateVerdict:
        judged.append(info.url)
        number = info.url.rsplit("/", 1)[-1].split(".")[0]
        return GateVerdict(not (number.isdigit() and int(number) % 3 == 0), "every third image refused")

    config = SandboxConfig(executable=chromium_path, resolvable_hosts=(HOST,), request_gate=gate)
    with open_driver(config) as d:
        d.page.goto(test_server.url(HOST, "/"), wait_until="load", timeout=60_000)
    got = {r.route for r in test_server.requests_for(HOST)}
    images = {f"/i/{i}.gif" for i in range(n)}
    assert got & images == {f"/i/{i}.gif" for i in range(n) if i % 3}
    assert {u.rsplit("/", 1)[-1] for u in judged} >= {f"{i}.gif" for i in range(n)}  # each judged first


def test_an_answer_for_a_request_that_is_gone_raises_nothing(chromium_path: Path, test_server: TestServer) -> None:
    test_server.set_content("/", "<p>hi</p>")
    config = SandboxConfig(executable=chromium_path, resolvable_hosts=(HOST,), request_gate=lambda i: GateVerdict(True))
    with warnings.catch_warnings(record=True) as caught, open_driver(config) as d:
        warnings.simplefilter("always")
        session = Session(d.page.context.browser.new_browser_cdp_session())  # type: ignore[union-attr]
        session.answer("Fetch.continueRequest", {"requestId": "interception-job-0.0"})
        session.answer("Fetch.failRequest", {"requestId": "nope", "errorReason": "BlockedByClient"})
        d.page.goto(test_server.url(HOST, "/"), wait_until="load")  # the replies (errors) arrive meanwhile
        assert session.send("Target.getTargets")["targetInfos"]
        gc.collect()
    assert not [w for w in caught if "never retrieved" in str(w.message)]


class _SyncOnly:
    """A CDP session with only the public sync API (another Playwright): the fallback path."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []
        self.listeners: list[str] = []

    def send(self, method: str, params: Any = None) -> dict[str, Any]:
        self.sent.append((method, params))
        return {}

    def on(self, event: str, listener: Any) -> None:
        self.listeners.append(event)


def test_without_playwrights_internals_the_sync_call_is_used() -> None:
    cdp = _SyncOnly()
    session = Session(cdp)  # type: ignore[arg-type]
    session.on("Fetch.requestPaused", lambda e: None)
    session.answer("Fetch.continueRequest", {"requestId": "1"})
    assert cdp.sent == [("Fetch.continueRequest", {"requestId": "1"})]
    assert cdp.listeners == ["Fetch.requestPaused"]


_PIECES = st.sampled_from(["http", "https", "ws", "HTTP", "://", ":", "/", "?", "#", "@", "%2e", ".", "-", "a", "B",
                           "example", "localhost", "80", "65535", "99999", "[::1]", "\t", "\n", " ", "\\", "x.y"])


@given(st.lists(_PIECES, max_size=12).map("".join))
@settings(max_examples=3000, deadline=None)
def test_plain_host_is_host_of(url: str) -> None:
    assert plain_host(url) == host_of(url)


@given(st.from_regex(r"https?://[a-z0-9.-]{1,20}(:[0-9]{1,6})?([/?#][ -~\t]*)?", fullmatch=True))
@settings(max_examples=3000, deadline=None)
def test_plain_host_is_host_of_for_plain_urls(url: str) -> None:
    assert plain_host(url) == host_of(url)
