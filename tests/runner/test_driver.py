"""The Playwright driver against the local test server, on real Debian Chromium.

Why: the step loop trusts ``perform`` to do exactly the described call, to fail with the right
error class (retry vs stop vs guardrail), and the allowlist to refuse navigation before anything
reaches a disallowed host.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from guards.observed import RequestInfo
from runner.browser.driver import (
    EVENT_POPUP,
    EVENT_REQUEST_REFUSED,
    EVENT_WEBSOCKET_REFUSED,
    ActionFailed,
    GateVerdict,
    NavigationBlocked,
    SandboxConfig,
    TransientFailure,
)
from runner.browser.playwright_driver import MASK_COLOR, PlaywrightDriver, open_driver
from tests.png import decode_png, pixel
from tests.server import TestServer

pytestmark = pytest.mark.browser

FORM = """<!doctype html><html><head><title>Form</title>
<style>body{margin:0;font:16px sans-serif;background:#fff} input{display:block;margin:8px}
#secret{width:300px;height:40px;background:#ffffff;border:0}</style></head><body>
<h1>Expense form</h1>
<div id="out">none</div>
<button id="b1" data-testid="tb" onclick="out('button')">Sign in</button>
<span id="txt" onclick="out('span')">Click me text</span>
<label for="email">Email</label>
<input id="email" placeholder="you@example.com" onclick="out('email')">
<input type="checkbox" id="cb" aria-label="Remember me">
<label for="sel">Choice</label>
<select id="sel"><option value="a">Alpha</option><option value="b">Beta</option></select>
<a id="link" href="/page2" data-x="attr-value">Next page</a>
<div id="hov" onmouseover="out('hovered')">Hover here</div>
<input id="keys" onkeydown="out('key:' + event.key)">
<textarea id="ta">text area value</textarea>
<input id="secret" value="hunter2">
<section id="scope">Scoped words</section>
<a id="pop" href="/page2" target="_blank">Open popup</a>
<script>function out(s){ document.getElementById('out').textContent = s; }</script>
</body></html>"""

PAGE2 = "<!doctype html><title>Two</title><h1>Second page</h1>"


def args(**kw: Any) -> dict[str, Any]:
    """What the loop passes: model_dump(by_alias=False, exclude_none=True) keeps exact/approve."""
    return {"exact": False, "approve": False, **kw}


class SharedDriver:
    """One driver reused by the tests of this module (a launch costs ~0.4 s).

    Only one sync Playwright can run on a thread at a time, so a test that opens its own driver
    requests ``solo``, which closes the shared one first; the next test reopens it.
    """

    def __init__(self, chromium_path: Path) -> None:
        self.config = SandboxConfig(
            executable=chromium_path, resolvable_hosts=("allowed.localhost", "*.allowed.localhost")
        )
        self.current: PlaywrightDriver | None = None

    def get(self) -> PlaywrightDriver:
        if self.current is None:
            self.current = open_driver(self.config)
        return self.current

    def release(self) -> None:
        if self.current is not None:
            self.current.close()
            self.current = None


@pytest.fixture(scope="module")
def _shared(chromium_path: Path) -> Iterator[SharedDriver]:
    shared = SharedDriver(chromium_path)
    yield shared
    shared.release()


@pytest.fixture
def driver(_shared: SharedDriver) -> PlaywrightDriver:
    return _shared.get()


@pytest.fixture
def solo(_shared: SharedDriver) -> None:
    """This test opens its own driver."""
    _shared.release()


@pytest.fixture
def form(driver: PlaywrightDriver, test_server: TestServer) -> PlaywrightDriver:
    test_server.set_content("/", FORM)
    test_server.set_content("/page2", PAGE2)
    driver.perform("goto", {"url": test_server.url("allowed.localhost", "/")}, 5)
    return driver


def routes(server: TestServer, host: str | None = None) -> list[str]:
    """Paths the server was asked for, without the favicon fetches Chromium makes on its own."""
    logged = server.requests if host is None else server.requests_for(host)
    return [r.route for r in logged if r.route != "/favicon.ico"]


def out(d: PlaywrightDriver) -> str | None:
    return d.perform("extract", args(selector="#out", as_="o"), 2).value


# ----------------------------------------------------------------------------- actions and targets


def test_goto_reports_url_and_call(driver: PlaywrightDriver, test_server: TestServer) -> None:
    test_server.set_content("/p", PAGE2)
    url = test_server.url("allowed.localhost", "/p")
    outcome = driver.perform("goto", {"url": url}, 5)
    assert outcome.url_after == url == driver.page_url()
    assert outcome.call == f'page.goto("{url}", wait_until="load")'
    assert routes(test_server, "allowed.localhost") == ["/p"]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ({"selector": "#b1"}, "button"),
        ({"text": "Click me text"}, "span"),
        ({"text": "Click me"}, "span"),  # substring match unless exact
        ({"role": "button", "name": "Sign in"}, "button"),
        ({"label": "Email"}, "email"),
        ({"placeholder": "you@example.com"}, "email"),
        ({"test_id": "tb"}, "button"),
    ],
    ids=["selector", "text", "text-substring", "role", "label", "placeholder", "test_id"],
)
def test_click_every_target_form(form: PlaywrightDriver, target: dict[str, Any], expected: str) -> None:
    form.perform("click", args(**target), 2)
    assert out(form) == expected


def test_exact_text_does_not_match_a_substring(form: PlaywrightDriver) -> None:
    with pytest.raises(ActionFailed, match="Timeout"):  # not found, not some other failure
        form.perform("click", args(text="Click me", exact=True), 0.3)


def test_hover(form: PlaywrightDriver) -> None:
    form.perform("hover", args(selector="#hov"), 2)
    assert out(form) == "hovered"


def test_check_and_uncheck(form: PlaywrightDriver) -> None:
    form.perform("check", args(label="Remember me"), 2)
    assert form.page.is_checked("#cb")
    form.perform("uncheck", args(selector="#cb"), 2)
    assert not form.page.is_checked("#cb")


def test_fill_then_extract_input_value(form: PlaywrightDriver) -> None:
    outcome = form.perform("fill", args(label="Email", value="ops@example.com"), 2)
    assert outcome.call == 'page.get_by_label("Email").fill("ops@example.com")'
    got = form.perform("extract", args(selector="#email", as_="e"), 2)
    assert got.value == "ops@example.com"
    assert got.call == 'page.locator("#email").input_value()'


@pytest.mark.parametrize(
    "select_args",
    [args(selector="#sel", value="b"), args(selector="#sel", option_label="Beta"), args(label="Choice", value="b")],
    ids=["value", "option-label", "field-by-label"],
)
def test_select(form: PlaywrightDriver, select_args: dict[str, Any]) -> None:
    form.perform("select", select_args, 2)
    assert form.perform("extract", args(selector="#sel", as_="s"), 2).value == "b"


def test_press_on_a_target(form: PlaywrightDriver) -> None:
    outcome = form.perform("press", args(selector="#keys", key="a"), 2)
    assert out(form) == "key:a"
    assert outcome.call == 'page.locator("#keys").press("a")'


def test_press_without_target_goes_to_the_focused_element(form: PlaywrightDriver) -> None:
    form.page.focus("#keys")
    outcome = form.perform("press", args(key="Enter"), 2)
    assert out(form) == "key:Enter"
    assert outcome.call == 'page.keyboard.press("Enter")'


def test_click_that_navigates_then_wait_for_url(form: PlaywrightDriver, test_server: TestServer) -> None:
    form.perform("click", args(selector="#link"), 2)
    outcome = form.perform("wait_for", {"url": "**/page2"}, 2)
    assert outcome.url_after == test_server.url("allowed.localhost", "/page2")


def test_wait_for_text_and_selector_that_appear_later(form: PlaywrightDriver) -> None:
    form.page.evaluate(
        "() => { const add = (cls, text, ms) => setTimeout(() => { const p = document.createElement('p');"
        " p.className = cls; p.textContent = text; document.body.append(p); }, ms);"
        " add('late', 'Payment received', 150); add('later', 'Receipt sent', 300); }"
    )
    # count() does not wait: each element is there because wait_for waited for it.
    form.perform("wait_for", {"text": "Payment received"}, 2)
    assert form.page.locator("p.late").count() == 1
    form.perform("wait_for", {"selector": "p.later"}, 2)
    assert form.page.locator("p.later").count() == 1
    outcome = form.perform("wait_for", {"load_state": "load"}, 2)
    assert outcome.call == 'page.wait_for_load_state("load")'


def test_wait_for_seconds_pauses(form: PlaywrightDriver) -> None:
    start = time.monotonic()
    outcome = form.perform("wait_for", {"seconds": 0.2}, 0.05)  # a pause ignores the step timeout
    assert time.monotonic() - start >= 0.19
    assert outcome.call == "page.wait_for_timeout(200)"


def test_wait_for_text_that_never_comes_is_transient(form: PlaywrightDriver) -> None:
    with pytest.raises(TransientFailure, match="Timeout"):
        form.perform("wait_for", {"text": "never there"}, 0.3)


def test_screenshot_step_is_a_no_op_outcome(form: PlaywrightDriver) -> None:
    outcome = form.perform("screenshot", {"name": "receipt", "full_page": True}, 2)
    assert outcome.call == "page.screenshot(full_page=True)"
    assert outcome.value is None


def test_extract_text_attribute_textarea_select(form: PlaywrightDriver) -> None:
    text = form.perform("extract", args(role="heading", as_="h"), 2)
    assert (text.value, text.call) == ("Expense form", 'page.get_by_role("heading").inner_text()')
    attr = form.perform("extract", args(selector="#link", attribute="data-x", as_="x"), 2)
    assert (attr.value, attr.call) == ("attr-value", 'page.locator("#link").get_attribute("data-x")')
    assert form.perform("extract", args(selector="#ta", as_="t"), 2).value == "text area value"
    assert form.perform("extract", args(selector="#sel", as_="s"), 2).value == "a"


def test_extract_waits_for_a_field_that_appears_later_and_reads_its_value(form: PlaywrightDriver) -> None:
    form.page.evaluate(
        "() => setTimeout(() => { const t = document.createElement('textarea'); t.id = 'late-ta';"
        " t.textContent = 'initial'; document.body.append(t); t.value = 'typed later'; }, 200)"
    )
    outcome = form.perform("extract", args(selector="#late-ta", as_="t"), 3)
    assert (outcome.value, outcome.call) == ("typed later", 'page.locator("#late-ta").input_value()')


def test_extract_of_several_elements_fails_as_strict(form: PlaywrightDriver) -> None:
    form.page.evaluate("() => { for (const x of ['one', 'two']) { const p = document.createElement('p');"
                       " p.className = 'twice'; p.textContent = x; document.body.append(p); } }")
    with pytest.raises(ActionFailed, match="strict mode violation"):
        form.perform("extract", args(selector="p.twice", as_="x"), 1)


def test_extract_missing_attribute_fails(form: PlaywrightDriver) -> None:
    with pytest.raises(ActionFailed, match="no attribute 'nope'"):
        form.perform("extract", args(selector="#link", attribute="nope", as_="x"), 1)


def test_extract_missing_element_times_out_transient(form: PlaywrightDriver) -> None:
    with pytest.raises(TransientFailure):
        form.perform("extract", args(selector="#missing", as_="x"), 0.3)


def test_assert_text_passes_on_page_and_in_scope(form: PlaywrightDriver) -> None:
    form.perform("assert_text", args(text="Expense form"), 1)
    outcome = form.perform("assert_text", args(text="Scoped words", selector="#scope"), 1)
    assert outcome.call == 'expect(page.locator("#scope")).to_contain_text("Scoped words")'


def test_assert_text_waits_for_text(form: PlaywrightDriver) -> None:
    form.page.evaluate("setTimeout(() => document.getElementById('out').textContent = 'Done!', 150)")
    form.perform("assert_text", args(text="Done!"), 2)


def test_assert_text_fails_with_a_short_message(form: PlaywrightDriver) -> None:
    with pytest.raises(ActionFailed) as info:
        form.perform("assert_text", args(text="Not on the page"), 0.3)
    message = str(info.value)
    assert message == 'assert_text: text "Not on the page" not found within 0.3s'
    assert "\n" not in message


def test_assert_text_outside_its_scope_fails(form: PlaywrightDriver) -> None:
    with pytest.raises(ActionFailed, match="not found"):
        form.perform("assert_text", args(text="Expense form", selector="#scope"), 0.3)


def test_assert_text_ignores_script_source(form: PlaywrightDriver) -> None:
    # textContent of <body> would include the <script>; the user never sees it.
    assert "getElementById('out')" in form.page.evaluate("document.body.textContent")
    with pytest.raises(ActionFailed, match="not found within"):
        form.perform("assert_text", args(text="getElementById('out')"), 0.3)


def test_click_on_a_missing_element_fails_fast_and_short(form: PlaywrightDriver) -> None:
    start = time.monotonic()
    with pytest.raises(ActionFailed) as info:
        form.perform("click", args(selector="#does-not-exist"), 0.3)
    assert time.monotonic() - start < 2
    assert "\n" not in str(info.value) and "Timeout 300ms exceeded" in str(info.value)
    assert not info.value.transient


def test_ambiguous_target_is_action_failed(form: PlaywrightDriver) -> None:
    with pytest.raises(ActionFailed, match="strict mode violation"):
        form.perform("click", args(selector="input"), 1)


def test_unknown_kind_and_bad_role(form: PlaywrightDriver) -> None:
    with pytest.raises(ActionFailed, match="unknown action kind"):
        form.perform("teleport", {}, 1)
    with pytest.raises(ActionFailed):
        form.perform("click", args(role="not-a-role"), 0.3)


# ----------------------------------------------------------------------------- navigation errors


def test_goto_outside_the_allowlist_is_blocked_and_nothing_arrives(
    driver: PlaywrightDriver, test_server: TestServer, evil_server: TestServer
) -> None:
    for url in (test_server.url("evil.localhost", "/steal"), evil_server.url("evil.localhost", "/steal")):
        with pytest.raises(NavigationBlocked) as info:
            driver.perform("goto", {"url": url}, 3)
        assert info.value.url == url
        assert not info.value.transient
    assert test_server.requests_for("evil.localhost") == []
    assert evil_server.requests == [] and evil_server.connections == []


def test_redirect_to_a_disallowed_host_is_blocked(solo: None, chromium_path: Path, test_server: TestServer) -> None:
    events: list[tuple[str, Mapping[str, Any]]] = []
    target = test_server.url("evil.localhost", "/x")
    test_server.set_redirect("/go", target)
    config = SandboxConfig(
        executable=chromium_path, resolvable_hosts=("allowed.localhost",), on_event=lambda n, d: events.append((n, d))
    )
    with open_driver(config) as d, pytest.raises(NavigationBlocked) as info:
        d.perform("goto", {"url": test_server.url("allowed.localhost", "/go")}, 3)
    assert info.value.url == target
    assert routes(test_server) == ["/go"]
    assert (EVENT_REQUEST_REFUSED, "redirect", target) in [(n, d["kind"], d["url"]) for n, d in events]


def test_unreachable_allowed_host_is_transient(driver: PlaywrightDriver) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TransientFailure, match="ERR_CONNECTION_REFUSED"):
        driver.perform("goto", {"url": f"http://sub.allowed.localhost:{port}/"}, 3)


def test_sub_domain_pattern_is_strict(driver: PlaywrightDriver, test_server: TestServer) -> None:
    test_server.set_content("/", PAGE2)
    driver.perform("goto", {"url": test_server.url("a.b.allowed.localhost", "/")}, 3)
    assert test_server.requests_for("a.b.allowed.localhost")
    with pytest.raises(NavigationBlocked):
        driver.perform("goto", {"url": test_server.url("notallowed.localhost", "/")}, 3)


# ----------------------------------------------------------------------------- request gate, popups


def test_request_gate_sees_kinds_and_refuses(solo: None, chromium_path: Path, test_server: TestServer) -> None:
    seen: list[RequestInfo] = []
    events: list[tuple[str, Mapping[str, Any]]] = []

    def gate(info: RequestInfo) -> GateVerdict:
        seen.append(info)
        if "/tracker" in info.url or info.url.endswith("/ws"):
            return GateVerdict(False, "tracker")
        return GateVerdict(True)

    test_server.set_content(
        "/",
        """<img src="/tracker.gif"><img src="/ok.gif">
        <form method=post action="/submit"><input name=q value="hello"><button>Go</button></form>
        <script>new WebSocket("ws://allowed.localhost:" + location.port + "/ws")</script>""",
    )
    test_server.set_content("/ok.gif", b"GIF89a", "image/gif")
    test_server.set_content("/submit", PAGE2)
    config = SandboxConfig(
        executable=chromium_path,
        resolvable_hosts=("allowed.localhost",),
        request_gate=gate,
        on_event=lambda n, d: events.append((n, d)),
    )
    with open_driver(config) as d:
        d.perform("goto", {"url": test_server.url("allowed.localhost", "/")}, 5)
        d.perform("click", args(role="button", name="Go"), 3)
        d.perform("wait_for", {"text": "Second page"}, 3)
    kinds = {(i.kind, i.resource_type, i.url.rsplit("/", 1)[-1]) for i in seen}
    assert ("navigation", "document", "") in kinds
    assert ("subresource", "image", "tracker.gif") in kinds
    assert ("websocket", "websocket", "ws") in kinds
    post = next(i for i in seen if i.method == "POST")
    assert post.body == b"q=hello" and post.kind == "navigation" and post.is_navigation
    asked = routes(test_server)
    assert "/tracker.gif" not in asked and "/ws" not in asked and "/ok.gif" in asked
    names = [n for n, _ in events]
    assert EVENT_REQUEST_REFUSED in names and EVENT_WEBSOCKET_REFUSED in names


def test_gate_refusing_the_step_navigation_is_navigation_blocked(
    solo: None, chromium_path: Path, test_server: TestServer
) -> None:
    config = SandboxConfig(
        executable=chromium_path,
        resolvable_hosts=("allowed.localhost",),
        request_gate=lambda i: GateVerdict(False, "PII in URL"),
    )
    with open_driver(config) as d, pytest.raises(NavigationBlocked, match="PII in URL"):
        d.perform("goto", {"url": test_server.url("allowed.localhost", "/?email=a@b.c")}, 3)
    assert routes(test_server) == []


def test_gate_error_fails_closed_and_surfaces(solo: None, chromium_path: Path, test_server: TestServer) -> None:
    class ScannerDown(RuntimeError):
        pass

    def gate(info: RequestInfo) -> GateVerdict:
        raise ScannerDown("presidio died")

    config = SandboxConfig(executable=chromium_path, resolvable_hosts=("allowed.localhost",), request_gate=gate)
    with open_driver(config) as d, pytest.raises(ScannerDown):
        d.perform("goto", {"url": test_server.url("allowed.localhost", "/")}, 3)
    assert routes(test_server) == []


def test_popups_are_reported_and_the_driver_stays_on_the_main_page(
    solo: None, chromium_path: Path, test_server: TestServer
) -> None:
    test_server.set_content("/", FORM)
    test_server.set_content("/page2", PAGE2)
    events: list[tuple[str, Mapping[str, Any]]] = []
    kinds: list[tuple[str, str]] = []

    def gate(info: RequestInfo) -> GateVerdict:
        kinds.append((info.kind, info.url))
        return GateVerdict(True)

    config = SandboxConfig(
        executable=chromium_path,
        resolvable_hosts=("allowed.localhost",),
        request_gate=gate,
        on_event=lambda n, d: events.append((n, d)),
    )
    with open_driver(config) as d:
        main = test_server.url("allowed.localhost", "/")
        d.perform("goto", {"url": main}, 5)
        d.perform("click", args(text="Open popup"), 3)
        test_server.wait_for_request("/page2", 3)
        for _ in range(40):  # browser events are delivered while the driver works
            if d.popups:
                break
            d.perform("wait_for", {"seconds": 0.05}, 1)
        assert len(d.popups) == 1
        assert d.page_url() == main
        d.perform("assert_text", args(text="Expense form"), 1)  # still acting on the main page
    assert EVENT_POPUP in [n for n, _ in events]
    assert ("popup", test_server.url("allowed.localhost", "/page2")) in kinds


# ----------------------------------------------------------------------------- screenshots


def test_screenshot_masks_selected_elements(form: PlaywrightDriver) -> None:
    box = form.page.locator("#secret").bounding_box()
    assert box is not None
    cx, cy = int(box["x"] + box["width"] / 2), int(box["y"] + box["height"] / 2)
    mask_rgb = tuple(int(MASK_COLOR[i : i + 2], 16) for i in (1, 3, 5))

    plain = decode_png(form.screenshot())
    masked = decode_png(form.screenshot(mask_selectors=["#secret"]))
    assert plain[:2] == masked[:2] == (1280, 800)
    assert pixel(plain, cx, cy) != mask_rgb  # the white input, unmasked
    assert pixel(masked, cx, cy) == mask_rgb
    assert pixel(masked, cx, int(box["y"]) - 30) != mask_rgb  # only the element is painted

    full = decode_png(form.screenshot(full_page=True))
    assert full[0] == 1280 and full[1] >= 800


# ----------------------------------------------------------------------------- describe


@pytest.mark.parametrize(
    ("kind", "step_args", "call"),
    [
        ("goto", {"url": "https://a.com/x"}, 'page.goto("https://a.com/x", wait_until="load")'),
        ("click", args(role="button", name="Sign in"), 'page.get_by_role("button", name="Sign in").click()'),
        (
            "click",
            args(role="link", name="Pay", exact=True),
            'page.get_by_role("link", name="Pay", exact=True).click()',
        ),
        ("hover", args(text="Menu"), 'page.get_by_text("Menu").hover()'),
        ("check", args(label="I agree", exact=True), 'page.get_by_label("I agree", exact=True).check()'),
        ("uncheck", args(test_id="opt"), 'page.get_by_test_id("opt").uncheck()'),
        ("fill", args(placeholder="Amount", value="1200"), 'page.get_by_placeholder("Amount").fill("1200")'),
        ("select", args(selector="#c", value="eur"), 'page.locator("#c").select_option(value="eur")'),
        ("select", args(selector="#c", option_label="Euro"), 'page.locator("#c").select_option(label="Euro")'),
        ("press", args(key="Enter"), 'page.keyboard.press("Enter")'),
        ("press", args(selector="#q", key="Tab"), 'page.locator("#q").press("Tab")'),
        ("wait_for", {"text": "Done"}, 'page.get_by_text("Done").first.wait_for()'),
        ("wait_for", {"selector": ".ok"}, 'page.locator(".ok").first.wait_for()'),
        ("wait_for", {"url": "**/done"}, 'page.wait_for_url("**/done")'),
        ("wait_for", {"load_state": "networkidle"}, 'page.wait_for_load_state("networkidle")'),
        ("wait_for", {"seconds": 1.5}, "page.wait_for_timeout(1500)"),
        ("screenshot", {"name": "r", "full_page": False}, "page.screenshot(full_page=False)"),
        ("extract", args(selector=".id", as_="v"), 'page.locator(".id").inner_text()'),
        ("extract", args(selector="a", attribute="href", as_="v"), 'page.locator("a").get_attribute("href")'),
        ("assert_text", args(text='say "hi"'), 'expect(page.locator("body")).to_contain_text("say \\"hi\\"")'),
        ("assert_text", args(text="ok", role="alert"), 'expect(page.get_by_role("alert")).to_contain_text("ok")'),
    ],
)
def test_describe(driver: PlaywrightDriver, kind: str, step_args: dict[str, Any], call: str) -> None:
    assert driver.describe(kind, step_args) == call


# ----------------------------------------------------------------------------- lifecycle


def _driver_children() -> list[int]:
    """PIDs of our own child processes that run Playwright's node driver."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and b"run-driver" in cmdline:
            pids.append(int(entry.name))
    return pids


def test_close_is_idempotent_and_survives_a_dead_driver(
    solo: None, sandbox_config: SandboxConfig, test_server: TestServer
) -> None:
    before = set(_driver_children())
    d = open_driver(sandbox_config)
    ours = [p for p in _driver_children() if p not in before]
    assert len(ours) == 1
    os.kill(ours[0], signal.SIGKILL)
    time.sleep(0.2)
    start = time.monotonic()
    d.close()
    d.close()
    assert time.monotonic() - start < 5
    with pytest.raises(ActionFailed, match="closed"):
        d.perform("goto", {"url": test_server.url("allowed.localhost", "/")}, 1)


def test_close_context_ends_the_pages_and_leaves_the_browser_to_close(
    solo: None, sandbox_config: SandboxConfig, test_server: TestServer
) -> None:
    """The run closes its evidence between the two: after ``close_context`` nothing can act or
    request (no page), the driver process still runs; ``close`` then ends it."""
    test_server.set_content("/", "<h1>hi</h1>")
    before = set(_driver_children())
    d = open_driver(sandbox_config)
    d.perform("goto", {"url": test_server.url("allowed.localhost", "/")}, 5)
    d.close_context()
    d.close_context()
    with pytest.raises(ActionFailed, match="closed"):
        d.perform("goto", {"url": test_server.url("allowed.localhost", "/")}, 1)
    assert [p for p in _driver_children() if p not in before]
    d.close()
    deadline = time.monotonic() + 5
    while [p for p in _driver_children() if p not in before] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p in _driver_children() if p not in before] == []


def test_a_bad_launch_is_sandbox_unavailable(solo: None, sandbox_config: SandboxConfig, tmp_path: Path) -> None:
    from kernel.errors import SandboxUnavailable

    with pytest.raises(SandboxUnavailable, match="Chromium not found"):
        open_driver(dataclasses.replace(sandbox_config, executable=tmp_path / "nope"))
    with pytest.raises(SandboxUnavailable, match="not a host pattern"):
        open_driver(dataclasses.replace(sandbox_config, resolvable_hosts=["a.com , EXCLUDE *"]))


CTRL_C_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, threading
    from pathlib import Path
    from runner.browser.driver import SandboxConfig
    from runner.browser.playwright_driver import open_driver
    d = open_driver(SandboxConfig(executable=Path(sys.argv[1]), resolvable_hosts=["allowed.localhost"]))
    d.perform("goto", {"url": sys.argv[2]}, 5)
    threading.Timer(0.3, lambda: os.killpg(os.getpgrp(), signal.SIGINT)).start()
    try:
        d.perform("wait_for", {"seconds": 5}, 1)
        print("no interrupt")
    except KeyboardInterrupt:
        print("interrupted")
    print("after:", d.perform("extract", {"selector": "h1", "as_": "h"}, 2).value)
    d.close()
    print("closed")
    """
)


def test_ctrl_c_leaves_the_browser_usable_until_close(chromium_path: Path, test_server: TestServer) -> None:
    """A terminal Ctrl-C signals the whole foreground process group (simulated with killpg)."""
    test_server.set_content("/", PAGE2)
    proc = subprocess.run(
        [sys.executable, "-c", CTRL_C_SCRIPT, str(chromium_path), test_server.url("allowed.localhost", "/")],
        capture_output=True,
        text=True,
        timeout=30,
        start_new_session=True,  # its own process group, so the SIGINT cannot reach pytest
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert proc.stdout.splitlines() == ["interrupted", "after: Second page", "closed"], proc.stderr
