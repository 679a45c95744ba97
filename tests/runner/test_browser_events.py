"""Nothing the browser does goes unrecorded; the boundaries' corners (trailing dot, ``<a ping>``).

Real Chromium through ``open_driver`` with ``NetworkGate``: dialogs (alert, confirm, prompt,
beforeunload) are dismissed and each becomes a ``deny`` record (rule ``boundaries.dialogs``) whose
text is only in ``subject.message``; popups become ``allow`` records; a page crash becomes an
``exception_record``. Each answer the page got is proven by what the *server* received (the page
reports ``confirm()``/``prompt()``'s return value to the allowed host). Through ``run_mission``,
a dialog's PII never reaches records.jsonl in clear.

Trailing dot: ``allowed.localhost.`` is allowed by the guard *and* resolves (``EXCLUDE host.``);
``evil.localhost.`` is refused by the gate (record) and, with a gate that lets everything through
(the route sidestepped), by the resolver (record, nothing reaches the host). ``<a ping>``: a ping
to an unlisted host is refused with a record at both layers; to a listed host it arrives.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Error as PlaywrightError

from guards.base import Decision
from guards.domains import DomainRequestGuard
from guards.observed import RequestInfo
from guards.urlmatch import DomainPolicy, resolvable_patterns
from runner.browser.chromium import launch_args, resolver_rules
from runner.browser.driver import (
    EVENT_DIALOG,
    EVENT_PAGE_CRASHED,
    EVENT_POPUP,
    ActionFailed,
    DriverError,
    GateVerdict,
    NavigationBlocked,
    SandboxConfig,
    StepOutcome,
)
from runner.browser.playwright_driver import PlaywrightDriver, open_driver
from runner.network import NetworkGate
from runner.recorder import RunRecorder
from tests.evidence.integrity_support import records, run, write_mission
from tests.server import RecordedRequest, TestServer

ALLOWED = ["allowed.localhost", "*.allowed.localhost"]


@dataclass
class FakeRecorder:
    decisions: list[tuple[Decision, dict[str, Any]]] = field(default_factory=list)
    exceptions: list[dict[str, Any]] = field(default_factory=list)

    def guard_decision(
        self, decision: Decision, *, step: int | None, subject: Mapping[str, Any], count: int = 1
    ) -> None:
        self.decisions.append((decision, {**subject, "count": count, "step": step}))

    def exception(self, **kw: Any) -> None:
        self.exceptions.append(kw)

    def of(self, guard: str) -> list[tuple[Decision, dict[str, Any]]]:
        return [(d, s) for d, s in self.decisions if d.guard == guard]


class AllowAll:
    """A request guard that allows everything: the route as if sidestepped (only the resolver holds)."""

    name = "test.allow_all"

    def check_request(self, request: RequestInfo, ctx: Any) -> Decision:
        return Decision.allow(self.name, "test")


class SwitchableGate:
    """The module driver's gate: each test installs its own NetworkGate (its own repeat counting)."""

    def __init__(self, gate: NetworkGate) -> None:
        self.gate = gate

    def __call__(self, request: RequestInfo) -> GateVerdict:
        return self.gate(request)

    def on_event(self, name: str, data: Mapping[str, Any]) -> None:
        self.gate.on_event(name, data)


@dataclass
class Box:
    driver: PlaywrightDriver
    switch: SwitchableGate
    rec: FakeRecorder


def _gate(listed: list[str], rec: FakeRecorder, *, allow_all: bool = False) -> NetworkGate:
    guard: Any = AllowAll() if allow_all else DomainRequestGuard(DomainPolicy(listed, allow_http=True))
    return NetworkGate([guard], cast(RunRecorder, rec))


@pytest.fixture(scope="module")
def box(chromium_path: Path) -> Iterator[Box]:
    rec = FakeRecorder()
    switch = SwitchableGate(_gate(ALLOWED, rec))
    policy = DomainPolicy(ALLOWED, allow_http=True)
    config = SandboxConfig(
        executable=chromium_path,
        resolvable_hosts=resolvable_patterns(policy),
        request_gate=switch,
        on_event=switch.on_event,
    )
    with open_driver(config) as driver:
        yield Box(driver, switch, rec)


@pytest.fixture
def fresh(box: Box) -> Box:
    box.rec.decisions.clear()
    box.rec.exceptions.clear()
    box.switch.gate = _gate(ALLOWED, box.rec)
    return box


def _goto(b: Box, url: str) -> StepOutcome:
    """A goto; again (up to 3 times) when a previous refusal's error page interrupted it."""
    for _ in range(2):
        try:
            return b.driver.perform("goto", {"url": url}, 10)
        except ActionFailed as exc:
            if "interrupted by another navigation" not in str(exc):
                raise
            _wait(b, 0.3)
    return b.driver.perform("goto", {"url": url}, 10)


def _wait(b: Box, seconds: float = 0.5) -> None:
    b.driver.perform("wait_for", {"seconds": seconds}, 5)


def _until(b: Box, done: Callable[[], bool], timeout: float = 5.0) -> None:
    """Pump Playwright's events (the route runs on this thread) until ``done()`` or the timeout."""
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        _wait(b, 0.05)


def _routes(server: TestServer, route: str, host: str | None = None) -> list[RecordedRequest]:
    return [r for r in server.requests if r.route == route and (host is None or r.host == host)]


# ----------------------------------------------------------------------------- units


def test_resolver_rules_name_both_spellings_of_every_host_in_the_launch_args() -> None:
    rules = resolver_rules(["a.com", "*.b.com", "127.0.0.1", "[::1]"], trailing_dot=True)
    assert rules == (
        "MAP * ~NOTFOUND , EXCLUDE a.com , EXCLUDE a.com. , EXCLUDE *.b.com , EXCLUDE *.b.com. , "
        "EXCLUDE 127.0.0.1 , EXCLUDE ::1"
    )
    args = launch_args(SandboxConfig(executable=Path("/x"), resolvable_hosts=["A.com."]))
    assert args[0] == "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE a.com , EXCLUDE a.com."
    assert "--no-pings" not in args  # a ping goes through the route: a refused one is recorded


def test_events_become_records_without_the_query() -> None:
    rec = FakeRecorder()
    gate = NetworkGate([AllowAll()], cast(RunRecorder, rec))
    gate.step, gate.page_url = 3, "http://a.com/p?card=4111"
    gate.on_event(EVENT_DIALOG, {"type": "confirm", "message": "sure?", "url": None, "handled": "dismissed"})
    gate.on_event(EVENT_POPUP, {"url": "http://a.com/pop?t=secret", "opener_url": "http://a.com/p?x=1"})
    gate.on_event(EVENT_PAGE_CRASHED, {"url": "http://a.com/p?card=4111", "main": True})
    (dialog, ds), (popup, ps) = rec.decisions
    assert (dialog.verdict, dialog.rule, ds["dialog_type"], ds["message"]) == (
        "deny",
        "boundaries.dialogs",
        "confirm",
        "sure?",
    )
    assert ds["page_url"] == "http://a.com/p" and ds["step"] == 3 and ds["handled"] == "dismissed"
    assert popup.verdict == "allow" and ps["url"] == "http://a.com/pop" and ps["opener_url"] == "http://a.com/p"
    assert ps["host"] == "a.com" and "secret" not in repr(rec.decisions)
    (crash,) = rec.exceptions
    assert crash["category"] == "sandbox" and crash["error_type"] == "PageCrashed"
    assert "card" not in crash["message"] and crash["step"] == 3
    assert gate.counts()["requests_refused"] == 0  # dialogs and popups are not requests


# ----------------------------------------------------------------------------- through run_mission
# (before the module's driver opens: one sync Playwright per thread, and run_mission opens its own)


def _mission(steps: list[str]) -> str:
    body = "\n".join(f"  - {s}" for s in steps)
    return (
        "mission: browser-events\nversion: 1\nchangelog: test\nboundaries:\n"
        "  allowed_domains: [allowed.localhost]\n  allow_http: true\n"
        "  allowed_actions: [goto, click, wait_for]\n  timeout: 60\n"
        # the random test port can read as a driver's licence: record, not block, PII in requests
        "pii:\n  on_request: record\n"
        f"steps:\n{body}\n"
    )


@pytest.mark.browser
def test_a_dialogs_pii_is_redacted_in_its_record(
    tmp_path: Path, test_server: TestServer, capfd: pytest.CaptureFixture[str]
) -> None:
    email, card = "jane.doe.dialog@example.com", "4111 1111 1111 1111"
    test_server.set_content(
        "/pii-dialog",
        "<title>d</title><button id='b'>b</button><script>document.getElementById('b').onclick = () => {"
        f"alert('Dear {email}, your card {card}'); fetch('/after-alert'); }}</script>",
    )
    test_server.set_content("/after-alert", "ok")
    test_server.set_content("/end", "<title>end</title>")
    steps = [
        f"goto: {test_server.url('allowed.localhost', '/pii-dialog')}",
        "click: {selector: '#b'}",
        "wait_for: {seconds: 0.5}",
        f"goto: {test_server.url('allowed.localhost', '/end')}",
    ]
    code, result = run(write_mission(tmp_path, _mission(steps)), tmp_path / "ev")
    assert result is not None and result.folder is not None, code
    folder = result.folder
    assert code == 0, [r for r in records(folder) if r["type"] in ("exception_record", "decision_record")]
    assert _routes(test_server, "/after-alert")  # dismissed: the page went on
    raw = (folder / "records.jsonl").read_text(encoding="utf-8")
    assert email not in raw and card not in raw and card.replace(" ", "") not in raw
    (dialog,) = [r for r in records(folder) if r.get("guard") == "browser.dialogs"]
    assert dialog["decision"] == "deny" and dialog["rule"] == "boundaries.dialogs" and dialog["step"] == 2
    assert dialog["subject"]["dialog_type"] == "alert" and dialog["subject"]["handled"] == "dismissed"
    assert dialog["subject"]["message"].startswith("Dear ") and "«" in dialog["subject"]["message"]
    out, err = capfd.readouterr()
    assert email not in out + err and card not in out + err


# ----------------------------------------------------------------------------- dialogs


DIALOG_PAGE = """<!doctype html><title>d</title><button id="b">b</button><script>
document.getElementById('b').onclick = () => {
  const r = {KIND};
  fetch('/answer?kind={NAME}&v=' + encodeURIComponent(String(r)));
};
</script>"""


@pytest.mark.browser
@pytest.mark.parametrize(
    ("name", "call", "answer"),
    [
        ("alert", "alert('hello alert')", "undefined"),
        ("confirm", "confirm('delete everything?')", "false"),  # dismissed: the page hears "no"
        ("prompt", "prompt('your name?', 'jane')", "null"),  # dismissed: no answer, not the default
    ],
)
def test_dialogs_are_dismissed_and_recorded(
    name: str, call: str, answer: str, fresh: Box, test_server: TestServer
) -> None:
    test_server.set_content("/d", DIALOG_PAGE.replace("{KIND}", call).replace("{NAME}", name))
    test_server.set_content("/answer", "ok")
    _goto(fresh, test_server.url("allowed.localhost", "/d?x=1"))
    fresh.driver.perform("click", {"selector": "#b"}, 5)
    # a page's fetch is answered only while a browser call is in progress (the route, then the browser
    # layer, run on this thread): pump as a run's next step does
    _until(fresh, lambda: bool(_routes(test_server, "/answer")))
    got = test_server.wait_for_request("/answer", timeout=1)
    assert parse_qs(urlsplit(got.path).query)["v"] == [answer]
    (d, s), *_ = fresh.rec.of("browser.dialogs")
    assert (d.verdict, d.rule, s["dialog_type"], s["handled"]) == ("deny", "boundaries.dialogs", name, "dismissed")
    assert s["message"] == call.split("'")[1]
    assert s["page_url"] == test_server.url("allowed.localhost", "/d")  # never the query
    assert s.get("default_value") == ("jane" if name == "prompt" else None)


@pytest.mark.browser
def test_beforeunload_cannot_veto_the_missions_navigation(fresh: Box, test_server: TestServer) -> None:
    test_server.set_content(
        "/bu",
        "<title>bu</title><button id='b'>b</button><script>addEventListener('beforeunload', e => {"
        "e.preventDefault(); e.returnValue = 'stay'; })</script>",
    )
    test_server.set_content("/after-bu", "<title>after</title>")
    _goto(fresh, test_server.url("allowed.localhost", "/bu"))
    fresh.driver.perform("click", {"selector": "#b"}, 5)  # beforeunload needs a user gesture
    out = _goto(fresh, test_server.url("allowed.localhost", "/after-bu"))
    assert out.url_after == test_server.url("allowed.localhost", "/after-bu")
    test_server.wait_for_request("/after-bu", timeout=5)  # the navigation did happen
    (d, s), *_ = fresh.rec.of("browser.dialogs")
    assert (s["dialog_type"], s["handled"], d.verdict) == ("beforeunload", "accepted", "deny")
    assert "cannot keep the browser" in d.reason


@pytest.mark.browser
def test_an_alert_loop_is_counted_not_written_a_thousand_times(fresh: Box, test_server: TestServer) -> None:
    test_server.set_content(
        "/spam",
        "<title>s</title><button id='b'>b</button><script>document.getElementById('b').onclick = () => {"
        "for (let i = 0; i < 40; i++) alert('spam'); alert('last'); fetch('/after-spam'); }</script>",
    )
    test_server.set_content("/after-spam", "ok")
    _goto(fresh, test_server.url("allowed.localhost", "/spam"))
    fresh.driver.perform("click", {"selector": "#b"}, 5)
    _until(fresh, lambda: bool(_routes(test_server, "/after-spam")))
    assert _routes(test_server, "/after-spam")  # every dialog dismissed: the page ran to its end
    fresh.switch.gate.flush()
    got = [(s["message"], s["count"], s.get("repeated", False)) for _, s in fresh.rec.of("browser.dialogs")]
    assert got == [("spam", 1, False), ("last", 1, False), ("spam", 39, True)]


# ----------------------------------------------------------------------------- popups, crashes


@pytest.mark.browser
def test_a_popup_is_recorded_with_its_opener(fresh: Box, test_server: TestServer) -> None:
    test_server.set_content("/pop", "<title>pop</title>")
    target = test_server.url("allowed.localhost", "/pop?token=abc")
    test_server.set_content("/opener", f"<title>o</title><script>window.open({target!r})</script>")
    _goto(fresh, test_server.url("allowed.localhost", "/opener"))
    _until(fresh, lambda: bool(fresh.rec.of("browser.popups")) and bool(_routes(test_server, "/pop")))
    assert _routes(test_server, "/pop")  # the popup (allowed) did load: the gate judged its request
    (d, s), *_ = fresh.rec.of("browser.popups")
    assert d.verdict == "allow" and s["opener_url"] == test_server.url("allowed.localhost", "/opener")
    assert s["url"] in (test_server.url("allowed.localhost", "/pop"), "about:") and "abc" not in repr(s)
    for p in fresh.driver.popups:
        p.close()


@pytest.mark.browser
def test_a_page_crash_is_recorded(fresh: Box, test_server: TestServer) -> None:
    """A second page of the context crashes (one sync Playwright per thread: the module's driver)."""
    test_server.set_content("/c", "<title>c</title>")
    page = fresh.driver.page.context.new_page()
    page.goto(test_server.url("allowed.localhost", "/c?k=v"))
    with pytest.raises(PlaywrightError):  # the target crashed
        page.goto("chrome://crash", timeout=5000)
    _until(fresh, lambda: bool(fresh.rec.exceptions))
    (crash,) = fresh.rec.exceptions
    assert (crash["category"], crash["error_type"], crash["mitigation"]) == ("sandbox", "PageCrashed", "recorded")
    assert crash["message"].startswith("a page crashed") and "k=v" not in crash["message"]
    page.close()
    _goto(fresh, test_server.url("allowed.localhost", "/c"))  # the run goes on


# ----------------------------------------------------------------------------- trailing dot


@pytest.mark.browser
def test_an_allowed_host_with_a_trailing_dot_resolves(fresh: Box, test_server: TestServer) -> None:
    test_server.set_content("/dot", "<title>dot</title>")
    for host in ("allowed.localhost.", "sub.allowed.localhost."):
        out = _goto(fresh, test_server.url(host, "/dot"))
        assert out.url_after == test_server.url(host, "/dot")
        assert _routes(test_server, "/dot", host)  # the server received it, Host header with the dot
    assert [d for d, _ in fresh.rec.decisions if d.verdict == "deny"] == []


@pytest.mark.browser
@pytest.mark.parametrize(
    "host", ["evil.localhost.", "EVIL.localhost.", "allowed.localhost..", "allowed.localhost.evil.localhost."]
)
def test_an_unlisted_host_with_a_trailing_dot_is_refused_by_the_gate(
    host: str, fresh: Box, test_server: TestServer, evil_server: TestServer
) -> None:
    url = f"http://{host}:{evil_server.port}/x"
    with pytest.raises(DriverError):
        _goto(fresh, url)
    assert evil_server.requests == [] and evil_server.connections == []
    denies = [s for d, s in fresh.rec.decisions if d.verdict == "deny"]
    assert denies and denies[0]["request_kind"] == "navigation", fresh.rec.decisions
    assert denies[0]["host"] in ("evil.localhost", "allowed.localhost.", "allowed.localhost.evil.localhost")


@pytest.mark.browser
def test_with_the_route_sidestepped_the_resolver_refuses_a_trailing_dot_host_and_records_it(
    fresh: Box, test_server: TestServer, evil_server: TestServer
) -> None:
    """Second layer: a gate that allows everything; ``evil.localhost.`` still never resolves."""
    box = fresh
    box.switch.gate = _gate(ALLOWED, box.rec, allow_all=True)  # the route now allows everything
    test_server.set_content(
        "/ping-dot", f'<a id="go" href="/landing" ping="http://evil.localhost.:{evil_server.port}/p">go</a>'
    )
    test_server.set_content("/landing", "<title>landing</title>")
    with pytest.raises(NavigationBlocked):
        box.driver.perform("goto", {"url": f"http://evil.localhost.:{evil_server.port}/x"}, 10)
    _goto(box, test_server.url("allowed.localhost", "/ping-dot"))
    box.driver.perform("click", {"selector": "#go"}, 5)
    _until(box, lambda: len([1 for d, _ in box.rec.decisions if d.verdict == "deny"]) >= 2)
    _wait(box, 0.5)
    assert evil_server.requests == [] and evil_server.connections == []
    refused = [(d, s) for d, s in box.rec.decisions if d.verdict == "deny"]
    assert {s["host"] for _, s in refused} == {"evil.localhost"}, refused
    assert {d.guard for d, _ in refused} == {"boundaries.resolver"}
    assert {s["request_kind"] for _, s in refused} >= {"navigation", "subresource"}, refused  # the goto, the ping


# ----------------------------------------------------------------------------- <a ping>


@pytest.mark.browser
def test_a_refused_ping_leaves_its_record(fresh: Box, test_server: TestServer, evil_server: TestServer) -> None:
    test_server.set_content(
        "/ping", f'<a id="go" href="/landing" ping="http://evil.localhost:{evil_server.port}/p">go</a>'
    )
    test_server.set_content("/landing", "<title>landing</title>")
    _goto(fresh, test_server.url("allowed.localhost", "/ping?q=1"))
    fresh.driver.perform("click", {"selector": "#go"}, 5)
    _until(fresh, lambda: any(s.get("host") == "evil.localhost" for _, s in fresh.rec.decisions))
    _wait(fresh, 0.5)
    assert evil_server.requests == [] and evil_server.connections == []
    assert _routes(test_server, "/landing")  # the click itself did navigate
    (d, s), *_ = [(d, s) for d, s in fresh.rec.decisions if s.get("host") == "evil.localhost"]
    assert (d.verdict, d.guard, d.rule) == ("deny", "boundaries.network", "boundaries.allowed_domains")
    assert (s["request_kind"], s["resource_type"]) == ("subresource", "ping")
    assert s["page_url"] == test_server.url("allowed.localhost", "/ping")


@pytest.mark.browser
def test_a_ping_to_a_listed_host_arrives(fresh: Box, test_server: TestServer) -> None:
    test_server.set_content("/ping-ok", '<a id="go" href="/landing" ping="/p-ok">go</a>')
    test_server.set_content("/landing", "<title>landing</title>")
    _goto(fresh, test_server.url("allowed.localhost", "/ping-ok"))
    fresh.driver.perform("click", {"selector": "#go"}, 5)
    _until(fresh, lambda: bool(_routes(test_server, "/p-ok")))
    (got,) = _routes(test_server, "/p-ok")
    assert got.method == "POST" and got.host == "allowed.localhost"
    assert [d for d, _ in fresh.rec.decisions if d.verdict == "deny"] == []
