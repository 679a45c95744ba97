"""Every bypass vector of the platform notes, proven by what the servers received.

Two runs of each vector, on one shared sandboxed browser per mode:

* ``deny`` — the mission's list is ``allowed.localhost`` (+ subdomains): the evil host (a second
  ``TestServer`` on its own port) must receive NOTHING — no HTTP request and no TCP connection —
  and the refusal must be a decision record (host, request kind, rule) where the browser reports it;
* ``allow`` — the paired case: the same page, the same target, but the target host *listed* (and
  WebRTC's UDP policy back to Chromium's default): the target must receive this vector's request,
  so a test that passes in ``deny`` would have caught a leak.

The browser is the real sandbox: ``open_driver`` (resolver allowlist + launch switches + context
route + WebSocket route + blocked service workers) with ``NetworkGate`` + ``DomainRequestGuard``.
A representative subset also runs through ``run_mission`` (tests/guards/test_network_gate.py),
where the records are proven in records.jsonl.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import pytest

from guards.base import Decision
from guards.domains import DomainRequestGuard
from guards.urlmatch import DomainPolicy, resolvable_patterns
from runner.browser.driver import ActionFailed, SandboxConfig
from runner.browser.playwright_driver import PlaywrightDriver, open_driver
from runner.network import NetworkGate
from runner.recorder import RunRecorder
from tests.guards.vectors import VECTORS as BASE_VECTORS
from tests.guards.vectors import S, Vector
from tests.server import RecordedRequest, Response, TestServer, UdpListener

pytestmark = pytest.mark.browser

ALLOWED = ["allowed.localhost", "*.allowed.localhost"]
PAIRED = [*ALLOWED, "evil.localhost", "127.0.0.1"]  # the target listed: the vector must get through
# Rows of this file on top of tests/guards/vectors.py. ``<a ping>`` is no longer silenced by
# ``--no-pings``: the route gates it like every request, so a refused ping leaves its record and a
# ping to a listed host arrives (pair "reach"). Target "evil_dot" spells the host with a trailing
# dot (``evil.localhost.``): the guard refuses it as evil.localhost, the resolver never resolves it,
# and in the paired run (listed) it resolves and arrives (``EXCLUDE host.`` beside ``EXCLUDE host``).
VECTORS: dict[str, Vector] = {
    **BASE_VECTORS,
    "a_ping": replace(BASE_VECTORS["a_ping"], kinds=frozenset({"subresource"}), pair="reach"),
    **{
        v.name: v
        for v in [
            Vector("dot_img", '<img src="{T}/v/{N}/x.png">', target="evil_dot"),
            Vector(
                "dot_location",
                S.format('setTimeout(() => {{ location.href = "{T}/v/{N}/" }}, 50)'),
                frozenset({"navigation"}),
                target="evil_dot",
            ),
            Vector("dot_fetch", S.format('fetch("{T}/v/{N}/", {{mode: "no-cors"}})'), target="evil_dot"),
            Vector("dot_redirect_img", '<img src="/r/{N}">', frozenset({"redirect"}), target="evil_dot"),
            Vector("dot_a_ping", '<a id="go" href="/landing" ping="{T}/v/{N}/">go</a>', target="evil_dot", click="#go"),
            Vector("dot_window_open", S.format('window.open("{T}/v/{N}/")'), frozenset({"popup"}), target="evil_dot"),
        ]
    },
}
DENY_WAIT_S = 1.0  # deny: how long a vector gets to leak (the paired run reaches within ~0.3 s)
ALLOW_WAIT_S = 5.0


@dataclass
class FakeRecorder:
    """Collects what NetworkGate would write (the run_mission tests use the real writer)."""

    decisions: list[tuple[Decision, Mapping[str, Any]]] = field(default_factory=list)

    def guard_decision(
        self, decision: Decision, *, step: int | None, subject: Mapping[str, Any], count: int = 1
    ) -> None:
        self.decisions.append((decision, dict(subject, count=count)))


class SwitchableGate:
    """The driver's gate for a whole module: each test installs its own NetworkGate."""

    def __init__(self) -> None:
        self.gate: NetworkGate | None = None

    def __call__(self, request: Any) -> Any:
        assert self.gate is not None
        return self.gate(request)

    def on_event(self, name: str, data: Mapping[str, Any]) -> None:
        if self.gate is not None:
            self.gate.on_event(name, data)


@dataclass
class Sandbox:
    mode: str
    driver: PlaywrightDriver
    switch: SwitchableGate
    policy: DomainPolicy


@pytest.fixture(scope="module", params=["deny", "allow"])
def sandbox(request: pytest.FixtureRequest, chromium_path: Path, test_server_session: TestServer) -> Iterator[Sandbox]:
    mode = str(request.param)
    policy = DomainPolicy(ALLOWED if mode == "deny" else PAIRED, allow_http=True)
    switch = SwitchableGate()
    config = SandboxConfig(
        executable=chromium_path,
        resolvable_hosts=resolvable_patterns(policy),
        request_gate=switch,
        on_event=switch.on_event,
    )
    extra = [f"--unsafely-treat-insecure-origin-as-secure=http://allowed.localhost:{test_server_session.port}"]
    if mode == "allow":
        extra.append("--webrtc-ip-handling-policy=default")  # the last switch wins: UDP back on
    with open_driver(config, extra_args=extra) as driver:
        yield Sandbox(mode, driver, switch, policy)


def _target(v: Vector, evil: TestServer) -> str:
    host = {"evil": "evil.localhost", "evil_dot": "evil.localhost.", "ip": "127.0.0.1", "ipdec": "2130706433"}[v.target]
    return f"http://{host}:{evil.port}"


def _serve(v: Vector, server: TestServer, evil: TestServer) -> str:
    target = _target(v, evil)
    allowed = server.url("allowed.localhost", "").rstrip("/")
    fill = {"T": target, "A": allowed, "N": v.name, "E": str(evil.port)}
    page = v.page.replace("{{", "\x00").replace("}}", "\x01")
    for key, value in fill.items():
        page = page.replace("{" + key + "}", value)
    page = page.replace("\x00", "{").replace("\x01", "}")
    headers = {k: val.replace("{T}", target).replace("{N}", v.name) for k, val in v.headers.items()}
    server.set_content(f"/vec/{v.name}", f"<!doctype html><title>{v.name}</title><body>{page}</body>", headers=headers)
    server.set_content("/end", "<title>end</title><p>end</p>")
    server.set_content("/landing", "<title>landing</title>")
    server.set_redirect(f"/r/{v.name}", f"{target}/v/{v.name}/hop")
    server.set_route("/worker.js", _fetch_script("self"))
    server.set_route("/sw.js", _fetch_script("sw"))
    return server.url("allowed.localhost", f"/vec/{v.name}")


def _fetch_script(kind: str) -> Any:
    def respond(req: RecordedRequest) -> Response:
        target = parse_qs(urlsplit(req.path).query).get("t", [""])[0]
        body = f"fetch({target!r}, {{mode: 'no-cors'}}).catch(() => 0);"
        if kind == "sw":
            body = f"self.addEventListener('install', e => e.waitUntil({body[:-1]}));"
        return Response(body=body, content_type="text/javascript")

    return respond


def _hits(evil: TestServer, name: str) -> list[RecordedRequest]:
    return [r for r in evil.requests if r.route.startswith(f"/v/{name}/")]


def _run_vector(sb: Sandbox, v: Vector, server: TestServer, evil: TestServer) -> FakeRecorder:
    recorder = FakeRecorder()
    sb.switch.gate = NetworkGate([DomainRequestGuard(sb.policy)], cast(RunRecorder, recorder))
    d = sb.driver
    url = _serve(v, server, evil)
    d.perform("goto", {"url": url}, 10)
    if v.click:
        d.perform("click", {"selector": v.click}, 5)
    if sb.mode == "deny":
        d.perform("wait_for", {"seconds": DENY_WAIT_S}, 5)
    else:
        deadline = time.monotonic() + ALLOW_WAIT_S
        while not _hits(evil, v.name) and time.monotonic() < deadline and v.pair == "reach":
            d.perform("wait_for", {"seconds": 0.05}, 5)
        # let a page-initiated navigation that just reached the target commit before we leave
        d.perform("wait_for", {"seconds": 0.3 if v.pair == "reach" else DENY_WAIT_S}, 5)
    try:
        d.perform("goto", {"url": server.url("allowed.localhost", "/end")}, 10)  # fires pagehide
    except ActionFailed:  # "interrupted by another navigation": the page navigated itself meanwhile
        d.perform("goto", {"url": server.url("allowed.localhost", "/end")}, 10)
    d.perform("wait_for", {"seconds": 0.3}, 5)
    for popup in d.popups:
        if not popup.is_closed():
            popup.close()
    sb.switch.gate.flush()
    return recorder


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_vector(name: str, sandbox: Sandbox, test_server: TestServer, evil_server: TestServer) -> None:
    v = VECTORS[name]
    recorder = _run_vector(sandbox, v, test_server, evil_server)
    denies = [(d, s) for d, s in recorder.decisions if d.verdict == "deny"]
    if sandbox.mode == "deny":
        assert evil_server.requests == [], [(r.host, r.method, r.path) for r in evil_server.requests]
        assert evil_server.connections == []
        host = {"evil": "evil.localhost", "evil_dot": "evil.localhost", "ip": "127.0.0.1", "ipdec": "127.0.0.1"}[
            v.target
        ]
        mine = [(d, s) for d, s in denies if s.get("host") == host]
        if v.kinds:
            assert mine, f"no decision record for {host}: {recorder.decisions}"
            assert {s["request_kind"] for _, s in mine} <= v.kinds | {"redirect"}, mine
            assert any(s["request_kind"] in v.kinds for _, s in mine), mine
            for d, s in mine:
                assert d.rule == "boundaries.allowed_domains"
                assert d.guard in ("boundaries.network", "boundaries.resolver")
                assert s["page_url"] is None or s["page_url"].startswith(("http://allowed.localhost:", "about:"))
        else:
            assert all(s["request_kind"] in ("redirect", "other") for _, s in mine), mine
    else:
        assert [d for d, s in denies if s.get("host") in ("evil.localhost", "127.0.0.1")] == []
        if v.pair == "reach":
            assert _hits(evil_server, v.name), f"paired run: {name} did not reach the listed host"
        elif v.pair == "no_pings":  # --no-pings: Chromium never sends <a ping>, even to a listed host
            assert _hits(evil_server, v.name) == []
            assert any(r.route == "/landing" for r in test_server.requests)  # the click did happen
        elif v.pair == "sw_blocked":  # service_workers="block": registration refused even on listed hosts
            assert _hits(evil_server, v.name) == []
            assert "/sw.js" not in [r.route for r in test_server.requests]


def test_webrtc_stun(sandbox: Sandbox, test_server: TestServer, udp_listener: UdpListener) -> None:
    """STUN to an IP literal: no UDP with the sandbox's policy; the paired run (policy default) sends it."""
    sandbox.switch.gate = NetworkGate([DomainRequestGuard(sandbox.policy)], cast(RunRecorder, FakeRecorder()))
    test_server.set_content("/rtc", "<title>rtc</title>")
    sandbox.driver.perform("goto", {"url": test_server.url("allowed.localhost", "/rtc")}, 10)
    sandbox.driver.page.evaluate(
        f"""async () => {{
            const pc = new RTCPeerConnection({{iceServers: [{{urls: 'stun:127.0.0.1:{udp_listener.port}'}}]}});
            pc.createDataChannel('x');
            await pc.setLocalDescription(await pc.createOffer());
            await new Promise(r => setTimeout(r, 800));
            pc.close();
        }}"""
    )
    assert (udp_listener.count > 0) is (sandbox.mode == "allow")


def test_vector_count() -> None:
    assert len(VECTORS) + 1 >= 35  # + WebRTC; URL confusions are in test_network_gate.py
