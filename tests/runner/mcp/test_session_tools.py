"""Playwright MCP's tool arguments that work (double/right/modified click, textGone, several values,
history back, slowly) — each through the same guard chain and danger zones as a YAML step.

Proved by what the server received: a gated control double- or right-clicked under
``--approval deny`` never sends its POST; the allowed variants send what the page does on them.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from runner.agent_session import open_session
from tests.runner.mcp.support import HOST, records, ref_of, write_mission
from tests.server import Response, TestServer

pytestmark = pytest.mark.browser

# A gated control that posts on every way of clicking it; a neutral one that reports how it was clicked.
GATED = """<!doctype html><html><body><h1>Pay</h1>
<button id="pay">Submit payment</button>
<button id="probe">Probe</button>
<script>
const post = () => fetch('/order', {method: 'POST', body: 'x'});
const pay = document.getElementById('pay');
pay.addEventListener('click', post); pay.addEventListener('dblclick', post);
pay.addEventListener('contextmenu', e => { e.preventDefault(); post(); });
pay.addEventListener('auxclick', post);
const probe = document.getElementById('probe');
const tell = (how, e) => fetch('/how?how=' + how + '&button=' + e.button + '&shift=' + e.shiftKey);
probe.addEventListener('dblclick', e => tell('dbl', e));
probe.addEventListener('contextmenu', e => { e.preventDefault(); tell('context', e); });
probe.addEventListener('click', e => { if (e.shiftKey) tell('shift', e); });
</script></body></html>"""
FORMS = """<!doctype html><html><body><h1>Forms</h1>
<form action="/picked"><label for="c">Colours</label>
<select id="c" name="c" multiple><option value="r">Red</option><option value="g">Green</option>
<option value="b">Blue</option></select>
<label for="k">Keys</label><input id="k" name="k"><input type="hidden" id="n" name="n" value="0">
<button type="submit">Show</button></form>
<p id="gone">Loading soon gone</p>
<script>
document.getElementById('k').addEventListener('keydown', () => {
  const n = document.getElementById('n'); n.value = String(Number(n.value) + 1); });
setTimeout(() => document.getElementById('gone').remove(), 400);
</script></body></html>"""
ZONES = """danger_zones:
  - {name: payment, text: "Submit payment", reason: money leaves}
"""


def _hits(server: TestServer, route: str) -> list[dict[str, list[str]]]:
    return [parse_qs(urlsplit(r.path).query) for r in server.requests if r.route == route]


@pytest.mark.parametrize("how", [
    {"doubleClick": True},
    {"button": "right"},
    {"button": "middle"},
    {"modifiers": ["Shift"]},
    {"doubleClick": True, "button": "right", "modifiers": ["Control"]},
])
def test_every_way_of_clicking_a_gated_control_needs_approval(
    tmp_path: Path, test_server: TestServer, how: dict[str, object]
) -> None:
    test_server.set_content("/pay", GATED)
    test_server.set_route("/order", lambda _r: Response(body="paid"))
    mission = write_mission(tmp_path, actions="goto, click", extra=ZONES, name="clicks")
    with open_session(mission, evidence_dir=tmp_path / "ev", approval="deny") as s:
        pay = ref_of(s.navigate(test_server.url(HOST, "/pay")).text, "button", "Submit payment")
        refused = s.call("browser_click", {"element": "Submit payment", "ref": pay, **how})
        assert not refused.ok and "approval not granted" in refused.text, refused.text
        s.pump(0.3)  # anything the page would send now has had its chance
        folder = s.folder
    assert [r for r in test_server.requests if r.route == "/order"] == []  # the POST never reached the server
    chain = [r for r in records(folder) if r["type"] == "decision_record" and r.get("guard") == "chain"
             and r.get("kind") == "click"]
    assert chain and chain[-1]["decision"] == "require_approval"


def test_double_right_and_modified_clicks_do_what_the_page_expects(tmp_path: Path, test_server: TestServer) -> None:
    test_server.set_content("/pay", GATED)
    test_server.set_route("/how", lambda _r: Response(body="ok"))
    mission = write_mission(tmp_path, actions="goto, click", extra=ZONES, name="probe")
    with open_session(mission, evidence_dir=tmp_path / "ev") as s:
        probe = ref_of(s.navigate(test_server.url(HOST, "/pay")).text, "button", "Probe")
        for how in ({"doubleClick": True}, {"button": "right"}, {"modifiers": ["Shift"]}):
            result = s.call("browser_click", {"ref": probe, **how})
            assert result.ok, result.text
        s.pump(0.3)
        folder = s.folder
    seen = {(q["how"][0], q["button"][0], q["shift"][0]) for q in _hits(test_server, "/how")}
    assert seen == {("dbl", "0", "false"), ("context", "2", "false"), ("shift", "0", "true")}
    calls = [r["call"] for r in records(folder) if r["type"] == "action_record" and r["phase"] == "intent"]
    assert any(".dblclick()" in c for c in calls) and any('button="right"' in c for c in calls)


def test_several_values_slow_typing_and_text_gone(tmp_path: Path, test_server: TestServer) -> None:
    test_server.set_content("/forms", FORMS)
    test_server.set_route("/picked", lambda _r: Response(body="<h1>Picked</h1>"))
    mission = write_mission(tmp_path, actions="goto, click, fill, select, press, wait_for", name="forms")
    with open_session(mission, evidence_dir=tmp_path / "ev") as s:
        page = s.navigate(test_server.url(HOST, "/forms")).text
        assert s.wait_for(text_gone="Loading soon gone").ok  # the paragraph goes after 400 ms
        assert "Loading soon gone" not in s.snapshot().text
        assert s.select_option(ref_of(page, "listbox", "Colours"), ["r", "Blue"]).ok  # a value and a label
        keys = ref_of(page, "textbox", "Keys")
        assert s.type(keys, "abc", slowly=True).ok
        entered = s.type(keys, "x\ny", slowly=True)  # Enter typed key by key would submit: refused
        assert not entered.ok and "control characters" in entered.text and "nothing was done" not in entered.text
        assert s.click(ref_of(page, "button", "Show")).ok
        folder = s.folder
    [query] = _hits(test_server, "/picked")
    assert query["c"] == ["r", "b"] and query["k"] == ["abc"] and query["n"] == ["3"]  # three key presses
    calls = [r["call"] for r in records(folder) if r["type"] == "action_record" and r["phase"] == "intent"]
    assert any("press_sequentially" in c for c in calls) and any("select_option(['r', 'Blue'])" in c for c in calls)


def test_navigate_back_goes_through_history_judged_as_a_navigation(tmp_path: Path, test_server: TestServer) -> None:
    test_server.set_content("/one", "<h1>One</h1><a href='/two'>to two</a>")
    test_server.set_content("/two", "<h1>Two</h1>")
    mission = write_mission(tmp_path, actions="goto, click", name="back")
    with open_session(mission, evidence_dir=tmp_path / "ev") as s:
        assert "no previous page" in s.navigate_back().text  # a fresh tab has no history
        one = s.navigate(test_server.url(HOST, "/one")).text
        assert s.click(ref_of(one, "link", "to two")).ok  # the page's own link: only the browser's history knows
        back = s.navigate_back()
        assert back.ok and "/one" in back.text and "One" in back.text, back.text
        folder = s.folder
    recs = records(folder)
    judged = [r for r in recs if r["type"] == "decision_record" and r.get("guard") == "chain" and r["kind"] == "goto"]
    assert judged[-1]["decision"] == "allow" and judged[-1]["subject"]["target"]["url"] == test_server.url(HOST, "/one")
    intents = [r for r in recs if r["type"] == "action_record" and r["phase"] == "intent"]
    assert intents[-1]["call"].startswith("page.go_back(")


def test_tabs_list_select_new_and_close_all_behind_the_same_guards(
    tmp_path: Path, test_server: TestServer, evil_server: TestServer
) -> None:
    test_server.set_content("/opener", "<h1>Opener</h1><a href='/popup' target='_blank'>open it</a>")
    test_server.set_content("/popup", "<h1>Popup page</h1>")
    evil = evil_server.url("evil.localhost", "/x")
    mission = write_mission(tmp_path, actions="goto, click", name="tabs")
    with open_session(mission, evidence_dir=tmp_path / "ev") as s:
        opener = s.navigate(test_server.url(HOST, "/opener")).text
        assert s.click(ref_of(opener, "link", "open it")).ok  # the page opens a tab of its own
        listed = s.tabs().text
        assert "- 0: (current) " in listed and "/popup" in listed.split("- 1: ")[1], listed
        picked = s.tabs("select", 1)
        assert picked.ok and "Popup page" in picked.text and "- 1: (current)" in picked.text
        assert "unknown ref" in s.click(ref_of(opener, "link", "open it")).text  # refs are the snapshot's page's
        fresh = s.tabs("new")
        assert fresh.ok and "- 2: (current) about:blank" in fresh.text, fresh.text
        outside = s.navigate(evil)  # a new tab is behind the same allowlist
        assert not outside.ok and "allowed_domains" in outside.text
        assert s.tabs("close").ok  # the current (new) tab: the last one left becomes current
        assert "- 1: (current)" in s.tabs().text
        assert not s.tabs("select", 7).ok and "there is no tab 7" in s.tabs("select", 7).text
        assert s.tabs("close", 1).ok and s.tabs("close", 0).text.count("last tab") == 1
        assert not s.call("browser_tabs", {"action": "select"}).ok  # select needs its index
        folder = s.folder
    assert evil_server.connections == []
    calls = [r for r in records(folder) if r.get("guard") == "mcp.tools" and r["subject"]["tool"] == "browser_tabs"]
    assert {c["subject"]["arguments"].get("action", "list") for c in calls} == {"list", "select", "new", "close"}


def test_going_back_onto_a_form_result_never_sends_the_form_again(tmp_path: Path, test_server: TestServer) -> None:
    """Chromium re-sends a POST when history goes back onto its result page, asking no one: the form's
    action again without its step (and without the approval it may have needed). Refused."""
    test_server.set_content("/pay", '<form method="post" action="/order"><button type="submit">Go on</button></form>')
    test_server.set_route("/order", lambda _r: Response(body="<h1>Ordered</h1>"))
    test_server.set_content("/one", "<h1>One</h1>")
    mission = write_mission(tmp_path, actions="goto, click", name="back-post")
    with open_session(mission, evidence_dir=tmp_path / "ev") as s:
        assert s.click(ref_of(s.navigate(test_server.url(HOST, "/pay")).text, "button", "Go on")).ok
        assert s.navigate(test_server.url(HOST, "/one")).ok
        back = s.navigate_back()
        assert not back.ok and "would send the previous page's form again (POST)" in back.text, back.text
        s.pump(0.3)
        assert s.navigate(test_server.url(HOST, "/one")).ok  # the session goes on
    assert [r.method for r in test_server.requests if r.route == "/order"] == ["POST"]  # once, by its step
