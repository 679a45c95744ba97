"""The close waits for a page's last words by a condition, not a pause (``runner/browser/last_words``),
and Warden's own sentinel is never put to the gate nor reported; a target found by a frame-free
locator is known to be in the main frame without asking (``page_reading.in_main_frame``)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from guards.observed import RequestInfo
from runner.browser.driver import EVENT_REQUEST_REFUSED, GateVerdict, SandboxConfig
from runner.browser.last_words import SENTINEL_PATH, JudgedRequests
from runner.browser.page_reading import in_main_frame
from runner.browser.playwright_driver import open_driver
from tests.server import TestServer

HOST = "allowed.localhost"
LAST_WORDS = """addEventListener('pagehide', () => {
  fetch('/bye-fetch', {method: 'POST', body: 'n=1', keepalive: true});
  navigator.sendBeacon('/bye-beacon', 'n=2'); });"""


def _info(url: str) -> RequestInfo:
    return RequestInfo(url=url, method="POST", kind="subresource", resource_type="ping", is_navigation=False,
                       frame_url=None, headers={}, body=None)


def test_a_sentinel_is_refused_without_the_gate_and_its_refusal_is_not_reported() -> None:
    asked: list[str] = []
    events: list[tuple[str, Mapping[str, Any]]] = []
    judged = JudgedRequests()
    def inner(info: RequestInfo) -> GateVerdict:
        asked.append(info.url)
        return GateVerdict(True)

    gate = judged.gate(inner)
    on_event = judged.on_event(lambda name, data: events.append((name, data)))
    sentinel = f"http://{HOST}{SENTINEL_PATH}abc"
    assert gate(_info("http://allowed.localhost/x")).allow  # an ordinary request: the gate decides
    assert not judged.seen(sentinel)
    judged.expect(sentinel)
    assert not gate(_info(sentinel)).allow and judged.seen(sentinel)
    assert asked == ["http://allowed.localhost/x"]  # the gate never saw the sentinel
    on_event(EVENT_REQUEST_REFUSED, {"url": sentinel, "layer": "gate"})
    on_event(EVENT_REQUEST_REFUSED, {"url": "http://allowed.localhost/y", "layer": "gate"})
    assert [d["url"] for _, d in events] == ["http://allowed.localhost/y"]
    # Refused by the resolver rules before the gate: not reported either, and it counts as arrived.
    other = f"http://127.0.0.1:1{SENTINEL_PATH}def"
    judged.expect(other)
    on_event(EVENT_REQUEST_REFUSED, {"url": other, "layer": "resolver"})
    assert judged.seen(other) and len(events) == 1
    # A URL of the same shape that was never expected is the page's: put to the gate as any other.
    assert gate(_info(f"http://{HOST}{SENTINEL_PATH}other")).allow and len(asked) == 2


@pytest.mark.parametrize(("args", "known"), [
    ({"role": "button", "name": "Pay"}, True),
    ({"label": "Name"}, True),
    ({"selector": "#pay"}, True),
    ({"selector": "#f >> internal:control=enter-frame >> #in"}, False),
    ({"text": "internal:control=enter-frame"}, False),  # unsure: asked, as before
    ({"key": "Enter"}, False),  # the focused element: the page's world says which, so always asked
])
def test_in_main_frame_only_when_the_locator_cannot_enter_a_frame(args: dict[str, Any], known: bool) -> None:
    assert in_main_frame(args) is known


@pytest.mark.browser
def test_the_close_waits_until_the_last_words_are_judged(sandbox_config: SandboxConfig,
                                                          test_server: TestServer) -> None:
    """The page's pagehide requests are judged before close_context returns (a slow gate: the
    first one takes 300 ms, far over the old fixed 50 ms pause), and the sentinel is not among them."""
    seen: list[str] = []

    def slow_gate(info: RequestInfo) -> GateVerdict:
        if "/bye-" in info.url and not seen:
            time.sleep(0.3)
        seen.append(info.url.rsplit("/", 1)[-1])
        return GateVerdict(True)

    test_server.set_content("/last", f"<!doctype html><p>bye</p><script>{LAST_WORDS}</script>")
    config = SandboxConfig(executable=Path(sandbox_config.executable), resolvable_hosts=[HOST],
                           request_gate=slow_gate)
    with open_driver(config) as driver:
        driver.perform("goto", {"url": test_server.url(HOST, "/last")}, 10)
        seen.clear()
        driver.close_context()
        assert {"bye-fetch", "bye-beacon"} <= set(seen), seen
        assert not any(SENTINEL_PATH.strip("/") in s for s in seen)


@pytest.mark.browser
def test_a_page_whose_csp_forbids_the_sentinel_still_closes_and_the_gate_sees_nothing_of_warden(
    sandbox_config: SandboxConfig, test_server: TestServer
) -> None:
    seen: list[str] = []
    test_server.set_content("/csp", "<!doctype html><meta http-equiv=\"Content-Security-Policy\" "
                                    "content=\"connect-src 'none'\"><p>strict</p>")
    def gate(info: RequestInfo) -> GateVerdict:
        seen.append(info.url)
        return GateVerdict(True)

    config = SandboxConfig(executable=Path(sandbox_config.executable), resolvable_hosts=[HOST], request_gate=gate)
    with open_driver(config) as driver:
        driver.perform("goto", {"url": test_server.url(HOST, "/csp")}, 10)
        driver.close_context()  # the probe cannot reach the gate: the old short pause, no sentinel awaited
    assert not any(SENTINEL_PATH in url for url in seen), seen
