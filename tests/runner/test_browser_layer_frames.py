"""The browser-level Fetch layer judges every http(s) request: the frame it names must be the one on screen.

A document that never commits (a 204) leaves the frame where it was: a zone page that sends itself
to a 204 and then posts is still a zone page (the state-change backstop refuses; the server gets no
POST). Kinds as the route told them: a navigation, an iframe's document as a subresource, a popup.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from guards.observed import RequestInfo
from runner.browser.driver import GateVerdict, SandboxConfig
from runner.browser.playwright_driver import open_driver
from tests.evidence.integrity_support import only_run, records, run
from tests.runner.test_zone_effects import HOST, backstop, mission, posts, serve
from tests.server import Response, TestServer

pytestmark = pytest.mark.browser

SELF_204 = """<!doctype html><html><body><h1>Pay here</h1><script>
addEventListener('load', () => setTimeout(() => {
  location.href = '/nocontent';
  setTimeout(() => fetch('/track', {method: 'POST', body: 'seen'}), 300);
}, 100));
</script></body></html>"""


def test_a_zone_page_sent_to_a_204_is_still_a_zone_page(tmp_path: Path, test_server: TestServer) -> None:
    serve(test_server)
    test_server.set_content("/checkout/self204", SELF_204)
    test_server.set_route("/nocontent", lambda r: Response(status=204))
    m = mission(tmp_path, test_server, ["wait_for: {text: Pay here}", "wait_for: {seconds: 1}"],
                page="/checkout/self204")
    code, _ = run(m, tmp_path / "ev", approval="deny")
    assert code == 0
    assert "/nocontent" in [r.route for r in test_server.requests_for(HOST)]  # the 204 was asked for
    assert posts(test_server) == []
    (refusal,) = backstop(records(only_run(tmp_path / "ev")))
    assert refusal["rule"] == "state_change.zone_page"


def test_kinds_and_frames_as_the_page_shows_them(chromium_path: Path, test_server: TestServer) -> None:
    test_server.set_content("/", '<a id="pop" href="/p2" target="_blank">pop</a><iframe src="/fr"></iframe>')
    test_server.set_content("/fr", "<img src='/fr.gif'>")
    test_server.set_content("/p2", "<img src='/p2.gif'>")
    seen: list[tuple[str, str, str, str | None]] = []

    def gate(info: RequestInfo) -> GateVerdict:
        seen.append((info.kind, info.resource_type, info.url.rsplit("/", 1)[-1], info.frame_url))
        return GateVerdict(True)

    config = SandboxConfig(executable=chromium_path, resolvable_hosts=(HOST,), request_gate=gate)
    with open_driver(config) as d:
        d.perform("goto", {"url": test_server.url(HOST, "/")}, 10)
        d.perform("click", {"selector": "#pop"}, 5)
        for _ in range(60):
            if any(s[2] == "p2.gif" for s in seen):
                break
            d.perform("wait_for", {"seconds": 0.05}, 1)
    seen = [s for s in seen if s[2] != "favicon.ico"]  # the browser's own icon requests: judged too, not asserted
    kinds = sorted(s[:3] for s in seen)
    assert kinds == [("navigation", "document", ""), ("popup", "document", "p2"), ("subresource", "document", "fr"),
                     ("subresource", "image", "fr.gif"), ("subresource", "image", "p2.gif")], seen  # once each
    frames = {s[2]: s[3] for s in seen}
    assert frames["fr.gif"] == test_server.url(HOST, "/fr") and frames["p2.gif"] == test_server.url(HOST, "/p2")


SAME_POST = """<!doctype html><html><body><h1>{title}</h1><script>
addEventListener('load', () => setTimeout(() => fetch('/track', {{method: 'POST', body: 'seen'}}), 100));
</script></body></html>"""


def test_the_same_post_from_a_zone_page_is_judged_again(tmp_path: Path, test_server: TestServer) -> None:
    """Byte-identical requests (method, URL, headers, body) from a plain page, then from a zone page:
    the first arrives, the second is refused (a verdict is never reused across kinds or frames)."""
    serve(test_server)
    test_server.set_content("/plain", SAME_POST.format(title="Plain"))
    test_server.set_content("/checkout/same", SAME_POST.format(title="Pay here"))
    m = mission(tmp_path, test_server, [
        "wait_for: {text: Plain}", "wait_for: {seconds: 1}",
        f"goto: {test_server.url(HOST, '/checkout/same')}", "wait_for: {text: Pay here}", "wait_for: {seconds: 1}",
    ], page="/plain")
    code, _ = run(m, tmp_path / "ev", approval="deny")
    assert posts(test_server) == ["/track"]  # the plain page's, once
    (refusal,) = backstop(records(only_run(tmp_path / "ev")))
    assert refusal["rule"] == "state_change.zone_page"
    assert code == 0, code
