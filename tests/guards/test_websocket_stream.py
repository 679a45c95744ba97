"""``WebSocketStream`` is not routed by Playwright's WebSocket route: with a request gate it is gone
from every frame (page, fresh iframe, popup), proven by what the WebSocket server received (no
handshake, no message) while the routed ``WebSocket`` next to it is judged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from guards.observed import RequestInfo
from runner.browser.driver import GateVerdict, SandboxConfig
from runner.browser.playwright_driver import open_driver
from tests.guards.test_egress_browser import WsServer
from tests.server import TestServer

pytestmark = pytest.mark.browser


@pytest.fixture
def ws_server() -> Iterator[WsServer]:
    s = WsServer()
    yield s
    s.close()


def _open_streams(url: str) -> str:
    u = json.dumps(url)
    return f"""
      const f = document.body.appendChild(document.createElement('iframe'));
      const w = window.open('about:blank');
      const kinds = [typeof WebSocketStream, typeof f.contentWindow.WebSocketStream, typeof w.WebSocketStream];
      document.title = kinds.join(',');
      for (const S of [globalThis.WebSocketStream, f.contentWindow.WebSocketStream, w.WebSocketStream]) {{
        try {{ const s = new S({u}); s.opened.then(async ({{writable}}) => writable.getWriter().write('stream-msg')); }}
        catch (e) {{}}
      }}
      const a = new WebSocket({u}); a.onopen = () => a.send('routed-msg');"""


@pytest.mark.parametrize("gated", [True, False])
def test_websocket_stream_is_gone_from_every_frame(
    gated: bool, chromium_path: Path, test_server: TestServer, ws_server: WsServer
) -> None:
    url = f"ws://allowed.localhost:{ws_server.port}/ws"
    test_server.set_content("/s", f"<!doctype html><body><script>{_open_streams(url)}</script></body>")
    seen: list[RequestInfo] = []

    def gate(r: RequestInfo) -> GateVerdict:
        seen.append(r)
        return GateVerdict(r.method != "SEND", "messages refused")

    cfg = SandboxConfig(chromium_path, ["allowed.localhost"], request_gate=gate if gated else None)
    with open_driver(cfg) as d:
        d.perform("goto", {"url": test_server.url("allowed.localhost", "/s")}, 10)
        d.perform("wait_for", {"seconds": 1.5}, 5)
        title = d.page.title()
    if gated:
        assert title == "undefined,undefined,undefined"
        assert ws_server.handshakes == ["GET /ws HTTP/1.1"]  # the routed WebSocket's, once
        assert ws_server.messages == []  # its message refused by the gate; no stream ever opened
        assert [r.resource_type for r in seen if r.kind == "websocket"] == ["websocket", "websocket_message"]
    else:  # without a gate nothing is routed or removed: the streams do connect (the test can fail)
        assert title == "function,function,function"
        assert (1, b"stream-msg") in ws_server.messages
