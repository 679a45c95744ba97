"""Danger zones judged by effect, end to end: real Chromium, the local server, real evidence.

Each attack spelling is proven by what the server received (no guarded POST arrived) and by the
record that explains why (the ``approval_request`` of the step guard, or the ``decision_record``
of the request backstop ``state_change``). The allowed cases show the guards letting through what
they should: viewing a zone page, a harmless form post, an approved submit exactly once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import runner.approvals.channels as channels_mod
from runner.browser.driver import ActionFailed, SandboxConfig
from runner.browser.playwright_driver import PlaywrightDriver, open_driver
from tests.evidence.integrity_support import only_run, records, run, write_mission
from tests.runner.test_approval_e2e import Scripted
from tests.server import Response, TestServer

pytestmark = pytest.mark.browser

HOST = "allowed.localhost"

SHOP = """<!doctype html><html><head><title>Shop</title></head><body>
<form method="post" action="/order" id="order-form">
  <label for="qty">Quantity</label> <input id="qty" name="qty" value="1">
  <input type="checkbox" id="agree" name="agree" onchange="this.form.requestSubmit()"> <label for="agree">ok</label>
  <select id="pick" name="pick" onchange="this.form.requestSubmit()"><option>a</option><option>b</option></select>
  <button type="submit" id="submit-order"><span class="lbl">Submit order</span></button>
</form>
<form method="post" action="/note" id="note-form">
  <label for="note">Note</label> <input id="note" name="note"> <button type="submit">Save</button>
</form>
<form method="post" action="/checkout/confirm" id="zone-form"><button type="submit" id="to-zone">Go</button></form>
<button id="sneak" onclick="fetch('/order', {method: 'POST', body: 'again'})">Continue</button>
<button id="fetch" onclick="fetch(document.body.dataset.to, {method: 'POST', body: 'x'})">Next</button>
<button id="beacon" onclick="navigator.sendBeacon(document.body.dataset.to, 'x')">Later</button>
<button id="xhr" onclick="var x = new XMLHttpRequest(); x.open('PUT', document.body.dataset.to); x.send('x')"
  >Also</button>
<script>document.body.dataset.to = new URLSearchParams(location.search).get('to') || '/none';</script>
</body></html>"""

ZONE_PAGE = """<!doctype html><html><body><h1>Pay here</h1>
<form method="post" action="/checkout/confirm"><button type="submit" id="go">Go</button></form>
<script>if (location.search.includes('beacon')) fetch('/track', {method: 'POST', body: 'seen'});</script>
</body></html>"""

URL_ZONE = '  - {name: pay-page, url: "http://allowed.localhost/checkout/*", reason: Payment pages}\n'
FORM_ZONE = '  - {name: order-form, selector: "#order-form", reason: The order form}\n'


def serve(server: TestServer) -> None:
    server.set_content("/shop", SHOP)
    server.set_content("/checkout/pay", ZONE_PAGE)
    for route in ("/order", "/note", "/checkout/confirm", "/track", "/none"):
        server.set_route(route, lambda r: Response(body=f"<h1>Received {r.route}</h1>"))


def posts(server: TestServer) -> list[str]:
    """The routes of every request that can change state the server received."""
    return [r.route for r in server.requests_for(HOST) if r.method not in ("GET", "HEAD", "OPTIONS")]


def mission(tmp: Path, server: TestServer, steps: list[str], zones: str = "", page: str = "/shop") -> Path:
    body = "\n".join(f"  - {s}" for s in [f"goto: {server.url(HOST, page)}", *steps])
    return write_mission(tmp, f"""mission: zone-effects
version: 1
boundaries:
  allowed_domains: [{HOST}]
  allow_http: true
  allowed_actions: [goto, click, fill, press, check, uncheck, select, hover, wait_for]
  timeout: 60
pii: {{entities: [EMAIL_ADDRESS]}}
danger_zones:
{zones or URL_ZONE}steps:
{body}
""")


def of(recs: list[dict[str, Any]], t: str) -> list[dict[str, Any]]:
    return [r for r in recs if r["type"] == t]


def backstop(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in of(recs, "decision_record") if r["guard"] == "state_change" and r["decision"] == "deny"]


@pytest.fixture
def approve_all(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[str]], Scripted]:
    def install(answers: list[str]) -> Scripted:
        channel = Scripted(answers)
        monkeypatch.setattr(channels_mod, "make_channel", lambda *a, **k: channel)
        return channel

    return install


# ----------------------------------------------------------------------------- the step guard: every spelling

STEP_ATTACKS = [
    # (id, step, extra zones, the rule of the approval request)
    ("space-on-submit", 'press: {key: " ", selector: "#submit-order"}', "", "danger_zone.default.order"),
    ("lf-in-field", 'press: {key: "\\n", selector: "#qty"}', "", "danger_zone.default.order"),
    ("cr-in-field", 'press: {key: "\\r", selector: "#qty"}', "", "danger_zone.default.order"),
    ("shift-enter", 'press: {key: "Shift+Enter", selector: "#qty"}', "", "danger_zone.default.order"),
    ("numpad-enter", 'press: {key: "Control+NumpadEnter", selector: "#qty"}', "", "danger_zone.default.order"),
    ("enter-on-checkbox", 'press: {key: Enter, selector: "#agree"}', "", "danger_zone.default.order"),
    ("click-inner-span", 'click: {selector: "#submit-order .lbl"}', "", "danger_zone.default.order"),
    ("check-in-zone", 'check: {selector: "#agree"}', FORM_ZONE, "danger_zone.order-form"),
    ("select-in-zone", 'select: {selector: "#pick", value: b}', FORM_ZONE, "danger_zone.order-form"),
    ("hover-in-zone", 'hover: {selector: "#submit-order"}', FORM_ZONE, "danger_zone.order-form"),
    ("submit-into-url-zone", 'click: {selector: "#to-zone"}', "", "danger_zone.pay-page"),
]


@pytest.mark.parametrize(("step", "zones", "rule"), [a[1:] for a in STEP_ATTACKS], ids=[a[0] for a in STEP_ATTACKS])
def test_every_spelling_of_a_gated_action_asks_and_nothing_is_posted(
    tmp_path: Path, test_server: TestServer, step: str, zones: str, rule: str
) -> None:
    serve(test_server)
    code, _ = run(mission(tmp_path, test_server, [step], zones=URL_ZONE + zones), tmp_path / "ev", approval="deny")
    assert code == 3
    assert posts(test_server) == []
    (req,) = of(records(only_run(tmp_path / "ev")), "approval_request")
    assert req["rule"] == rule and req["step"] == 2


# ----------------------------------------------------------------------------- the network backstop

NET_ATTACKS = [
    ("fetch-post", "#fetch", "/checkout/confirm"),
    ("fetch-escaped-path", "#fetch", "/%63heckout/confirm"),
    ("fetch-double-slash", "#fetch", "/.//checkout//confirm"),
    ("fetch-dot-segments", "#fetch", "/x/%2e%2e/checkout/./confirm"),
    ("beacon", "#beacon", "/checkout/confirm"),
    ("xhr-put", "#xhr", "/checkout/confirm"),
]


@pytest.mark.parametrize(("button", "to"), [a[1:] for a in NET_ATTACKS], ids=[a[0] for a in NET_ATTACKS])
def test_a_page_script_cannot_post_into_a_url_zone(
    tmp_path: Path, test_server: TestServer, button: str, to: str
) -> None:
    serve(test_server)
    steps = [f'click: {{selector: "{button}"}}', "wait_for: {seconds: 1}"]
    code, _ = run(mission(tmp_path, test_server, steps, page=f"/shop?to={to}"), tmp_path / "ev", approval="deny")
    assert code == 0  # the click itself is harmless; its effect is refused
    assert posts(test_server) == []
    (refusal,) = backstop(records(only_run(tmp_path / "ev")))
    assert refusal["rule"] == "state_change.url_zone" and refusal["step"] == 2
    assert refusal["subject"]["host"] == HOST and "pay-page" in refusal["rationale"]


@pytest.mark.parametrize("step", ['check: {selector: "#agree"}', 'select: {selector: "#pick", value: b}'],
                         ids=["check", "select"])
def test_a_toggle_whose_script_submits_a_gated_form_cannot_post(
    tmp_path: Path, test_server: TestServer, step: str
) -> None:
    serve(test_server)
    code, _ = run(mission(tmp_path, test_server, [step, "wait_for: {seconds: 1}"]), tmp_path / "ev", approval="deny")
    # A toggle is not gated by the built-in zones; the form submit its script makes is. (``check``
    # verifies the box after clicking: the refused form navigation may have replaced the page, 4.)
    assert code in ((0, 4) if step.startswith("check") else (0,))
    assert posts(test_server) == []
    recs = records(only_run(tmp_path / "ev"))
    assert of(recs, "approval_request") == []
    (refusal,) = backstop(recs)
    assert refusal["rule"] == "state_change.gated_form" and refusal["step"] == 2


def test_viewing_a_zone_page_is_allowed_but_its_scripts_cannot_post(tmp_path: Path, test_server: TestServer) -> None:
    serve(test_server)
    m = mission(tmp_path, test_server, ["wait_for: {text: Pay here}", "wait_for: {seconds: 1}"],
                page="/checkout/pay?beacon=1")
    code, _ = run(m, tmp_path / "ev", approval="deny")
    assert code == 0
    gets = [r.route for r in test_server.requests_for(HOST) if r.method == "GET" and r.route != "/favicon.ico"]
    assert gets == ["/checkout/pay"]  # (the browser's own icon request is judged like any, not asserted)
    assert posts(test_server) == []
    (refusal,) = backstop(records(only_run(tmp_path / "ev")))
    assert refusal["rule"] == "state_change.zone_page" and refusal["step"] == 1


def test_a_harmless_form_post_goes_through(tmp_path: Path, test_server: TestServer) -> None:
    serve(test_server)
    m = mission(tmp_path, test_server, ["press: {key: Enter, selector: '#note'}", "wait_for: {text: Received}"])
    code, _ = run(m, tmp_path / "ev", approval="deny")
    assert code == 0
    assert posts(test_server) == ["/note"]
    recs = records(only_run(tmp_path / "ev"))
    assert backstop(recs) == [] and of(recs, "approval_request") == []


def test_an_approved_submit_goes_through_once_and_a_second_unapproved_one_is_refused(
    tmp_path: Path, test_server: TestServer, approve_all: Callable[[list[str]], Scripted]
) -> None:
    serve(test_server)
    approve_all(["approve"])
    steps = ["click: {role: button, name: Submit order}", "wait_for: {text: Received}",
             f"goto: {test_server.url(HOST, '/shop')}", "click: {selector: '#sneak'}", "wait_for: {seconds: 1}"]
    code, _ = run(mission(tmp_path, test_server, steps), tmp_path / "ev")
    assert code == 0
    assert posts(test_server) == ["/order"]  # the approved one; the script's second POST never arrived
    recs = records(only_run(tmp_path / "ev"))
    (refusal,) = backstop(recs)
    assert refusal["rule"] == "state_change.gated_form" and refusal["step"] == 5
    assert refusal["subject"]["url"].endswith("/order")


def test_an_approved_submit_on_a_zone_page_goes_through_once(
    tmp_path: Path, test_server: TestServer, approve_all: Callable[[list[str]], Scripted]
) -> None:
    serve(test_server)
    approve_all(["approve"])
    m = mission(tmp_path, test_server, ["click: {selector: '#go'}", "wait_for: {text: Received}"],
                page="/checkout/pay")
    code, _ = run(m, tmp_path / "ev")
    assert code == 0
    assert posts(test_server) == ["/checkout/confirm"]
    recs = records(only_run(tmp_path / "ev"))
    assert backstop(recs) == []
    (req,) = of(recs, "approval_request")
    assert req["rule"] == "danger_zone.pay-page"


# ----------------------------------------------------------------------------- act on what was judged

SWAP_PAGE = """<!doctype html><html><body>
<form method="post" action="/note"><input id="note" name="note"></form>
<form method="post" action="/order"><button type="submit" id="gated">Continue</button></form>
<button id="b" onclick="fetch('/note', {method: 'POST', body: 'judged'})">Save</button>
<script>
function swap() {
  const n = document.createElement('button'); n.id = 'b'; n.textContent = 'Save';
  n.onclick = () => fetch('/order', {method: 'POST', body: 'swapped'});
  document.querySelector('#b').replaceWith(n);
}
</script></body></html>"""


@pytest.fixture
def swap_driver(sandbox_config: SandboxConfig, test_server: TestServer) -> Iterator[PlaywrightDriver]:
    serve(test_server)
    test_server.set_content("/swap", SWAP_PAGE)
    with open_driver(sandbox_config) as driver:
        driver.perform("goto", {"url": test_server.url(HOST, "/swap")}, 10)
        yield driver


def test_an_element_swapped_after_it_was_judged_is_not_acted_on(
    swap_driver: PlaywrightDriver, test_server: TestServer
) -> None:
    judged = swap_driver.resolve("click", {"selector": "#b"}, 5)
    assert judged.found and judged.text == "Save"
    swap_driver.page.evaluate("swap()")  # same id, same text: a re-query would find the new one
    with pytest.raises(ActionFailed):
        swap_driver.perform("click", {"selector": "#b"}, 2)
    swap_driver.page.wait_for_timeout(300)
    assert posts(test_server) == []


def test_the_judged_element_is_acted_on(swap_driver: PlaywrightDriver, test_server: TestServer) -> None:
    swap_driver.resolve("click", {"selector": "#b"}, 5)
    swap_driver.perform("click", {"selector": "#b"}, 5)
    test_server.wait_for_request("/note", host=HOST)
    assert posts(test_server) == ["/note"]


def test_a_press_goes_to_the_element_judged_even_if_the_page_moves_the_focus(
    swap_driver: PlaywrightDriver, test_server: TestServer
) -> None:
    swap_driver.page.focus("#note")
    judged = swap_driver.resolve("press", {"key": "Enter"}, 5)
    assert judged.found and judged.tag == "input" and judged.form_action.endswith("/note")
    swap_driver.page.focus("#gated")  # a page script moving the focus onto a gated control
    swap_driver.perform("press", {"key": "Enter"}, 5)
    test_server.wait_for_request("/note", host=HOST)
    swap_driver.page.wait_for_timeout(300)
    assert posts(test_server) == ["/note"]
