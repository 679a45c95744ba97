"""``warden mcp`` end to end: the real MCP SDK client over stdio, real Chromium, the local multi-host site.

One server session (one run) is shared by the tests of this module, each starting from its own
navigation; the last test disconnects it and checks the run it leaves. Every claim is proven by
what the local server received, what the client received, or what the evidence holds.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from evidence.export import OCSF_VERSION
from tests.evidence.ocsf_schema import schema
from tests.guards.canaries import scan_bytes, scan_bytes_for_canaries
from tests.guards.pii_support import EMAIL, canary_page
from tests.runner.mcp.support import (
    HOST,
    WARDEN,
    McpClient,
    only_run,
    posts,
    records,
    ref_of,
    text,
    verify,
    wait_status,
    write_mission,
)
from tests.server import Response, TestServer

pytestmark = pytest.mark.browser

GRANTED = [
    "browser_navigate", "browser_navigate_back", "browser_snapshot", "browser_click", "browser_type",
    "browser_fill_form", "browser_tabs", "browser_close",
]
FORM = """<!doctype html><html><head><title>Contact</title></head><body><h1>Contact</h1>
<form method="post" action="/send"><label for="n">Your name</label><input id="n" name="name">
<button type="submit">Save</button></form></body></html>"""
PAY = """<!doctype html><html><body><h1>Pay</h1>
<form method="post" action="/order"><button type="submit">Submit payment</button></form></body></html>"""
POLL = """<!doctype html><html><body><button>Old button</button><script>
setInterval(async () => {
  const r = await fetch('/flag'); if ((await r.text()) === 'go') location.href = '/form';
}, 100);
</script></body></html>"""
LATER = """<!doctype html><html><body><p>Loading</p><script>
setTimeout(() => fetch('/later-data'), 300);
</script></body></html>"""
ZONES = """danger_zones:
  - {name: payment, text: "Submit payment", reason: money leaves}
"""


class Site:
    def __init__(self, server: TestServer) -> None:
        self.server = server
        self.flag = threading.Event()
        server.set_content("/form", FORM)
        server.set_route("/send", lambda _r: Response(body="<h1>Thanks</h1>"))
        server.set_content("/pii", canary_page())
        server.set_content("/pay", PAY)
        server.set_route("/order", lambda _r: Response(body="<h1>Paid</h1>"))
        server.set_content("/poll", POLL)
        server.set_content("/later", LATER)
        server.set_route("/later-data", lambda _r: Response(body="{}", content_type="application/json"))
        server.set_route("/flag", lambda _r: Response(body="go" if self.flag.is_set() else "wait",
                                                      content_type="text/plain"))

    def url(self, path: str) -> str:
        return self.server.url(HOST, path)


@pytest.fixture(scope="module")
def site(test_server_session: TestServer) -> Site:
    test_server_session.reset()
    return Site(test_server_session)


@pytest.fixture(scope="module")
def agent(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[McpClient]:
    tmp = tmp_path_factory.mktemp("mcp")
    mission = write_mission(tmp, actions="goto, click, fill", extra=ZONES)
    client = McpClient(mission, tmp / "evidence", "--approval", "deny", log=tmp / "server.log")
    try:
        yield client
    finally:
        try:
            client.close()
        except Exception:  # noqa: S110 - the last test closes it already
            pass


def test_tools_listed_match_the_grants_and_the_goal_is_the_instructions(agent: McpClient) -> None:
    assert agent.tools() == GRANTED  # no press_key (not granted), no evaluate, no approve tool
    assert agent.init.instructions is not None and agent.init.instructions.startswith("Send the contact form.")
    refused = agent.call("browser_press_key", {"key": "Enter"})
    assert refused.is_error and "not granted by boundaries.allowed_actions" in text(refused)


def test_navigate_then_type_and_click_by_ref(agent: McpClient, site: Site) -> None:
    page = agent.call("browser_navigate", {"url": site.url("/form")})
    assert not page.is_error, text(page)
    box = ref_of(text(page), "textbox", "Your name")
    typed = agent.call("browser_type", {"element": "name field", "ref": box, "text": "Ada Lovelace"})
    assert not typed.is_error, text(typed)
    save = ref_of(text(typed), "button", "Save")
    clicked = agent.call("browser_click", {"element": "Save button", "target": save})  # `target` works too
    assert not clicked.is_error, text(clicked)
    assert "Thanks" in text(clicked)
    assert posts(site.server, "/send") == [b"name=Ada+Lovelace"]


def test_navigate_outside_the_allowlist_is_an_error_and_never_contacts_the_host(
    agent: McpClient, evil_server_session: TestServer
) -> None:
    evil_server_session.reset()
    result = agent.call("browser_navigate", {"url": evil_server_session.url("evil.localhost", "/steal")})
    assert result.is_error and "allowed_domains" in text(result)
    assert evil_server_session.connections == [] and evil_server_session.requests == []


def test_a_page_full_of_pii_reaches_the_client_masked(agent: McpClient, site: Site) -> None:
    page = agent.call("browser_navigate", {"url": site.url("/pii")})
    snap = agent.call("browser_snapshot")
    for result in (page, snap):
        body = text(result)
        assert not result.is_error, body
        assert scan_bytes(body.encode()) == [], body  # no canary, in any spelling
        assert "«pii:EMAIL_ADDRESS»" in body and "Masked: " in body and "EMAIL_ADDRESS ×" in body


def test_typing_pii_is_refused_per_policy(agent: McpClient, site: Site) -> None:
    page = agent.call("browser_navigate", {"url": site.url("/form")})
    box = ref_of(text(page), "textbox", "Your name")
    refused = agent.call("browser_type", {"element": "name", "ref": box, "text": EMAIL[0].value})
    # pii.on_input: approve (the default) and --approval deny: nobody approves, nothing is typed
    assert refused.is_error and "approval not granted" in text(refused), text(refused)
    assert EMAIL[0].value not in text(agent.call("browser_snapshot"))


def test_danger_zone_click_with_deny_is_refused_and_its_post_never_sent(agent: McpClient, site: Site) -> None:
    page = agent.call("browser_navigate", {"url": site.url("/pay")})
    pay = ref_of(text(page), "button", "Submit payment")
    for how in ({}, {"doubleClick": True}, {"button": "right"}, {"modifiers": ["Shift"]}):  # every way to click it
        refused = agent.call("browser_click", {"element": "Submit payment", "target": pay, **how})
        assert refused.is_error and "approval not granted" in text(refused) and "denied" in text(refused), how
    assert posts(site.server, "/order") == []


def test_bad_input_is_an_error_result_and_the_server_keeps_serving(agent: McpClient, site: Site) -> None:
    page = agent.call("browser_navigate", {"url": site.url("/poll")})
    old = ref_of(text(page), "button", "Old button")
    cases = [
        ("browser_teleport", {}, "unknown tool 'browser_teleport'"),
        ("browser_navigate", {"url": 5}, "url: Input should be a valid string"),
        ("browser_click", {"ref": "e1", "doubleClick": "yes"}, "doubleClick: Input should be a valid boolean"),
        ("browser_click", {"element": "x"}, "give the element's ref"),
        ("browser_click", {"ref": "e999"}, "unknown ref e999"),
        ("browser_type", {"ref": old}, "text: Field required"),
    ]
    for name, args, message in cases:
        result = agent.call(name, args)
        assert result.is_error and message in text(result), (name, text(result))
    site.flag.set()  # the page navigates itself: the refs it showed are stale now
    deadline = time.monotonic() + 60
    while "/form" not in text(agent.call("browser_tabs")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "/form" in text(agent.call("browser_tabs"))
    stale = agent.call("browser_click", {"ref": old})
    assert stale.is_error and f"stale ref {old}" in text(stale)
    assert not agent.call("browser_snapshot").is_error  # still serving


def test_the_pages_own_requests_go_through_the_gate_between_calls(agent: McpClient, site: Site) -> None:
    assert not agent.call("browser_navigate", {"url": site.url("/later")}).is_error
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(r.route == "/later-data" for r in site.server.requests_for(HOST)):
        time.sleep(0.05)
    # no call was made since the navigation: the server's idle loop let the page's timer fetch through
    assert any(r.route == "/later-data" for r in site.server.requests_for(HOST))


def test_disconnect_leaves_a_verifiable_interrupted_run(agent: McpClient) -> None:
    agent.close()
    folder = only_run(agent.evidence_dir)
    assert wait_status(folder, "interrupted")["exit_code"] == 130
    done = verify(folder, agent.evidence_dir)
    assert done.returncode == 0 and "intact" in done.stdout and "interrupted" in done.stdout, done.stdout
    recs = records(folder)
    calls = [r for r in recs if r["type"] == "decision_record" and r.get("guard") == "mcp.tools"]
    assert calls and all(r["subject"]["agent"] == {"kind": "agent", "name": "warden-test-client",
                                                   "version": "1.2.3"} for r in calls)
    assert {r["subject"]["tool"] for r in calls} >= {"browser_navigate", "browser_click", "browser_type"}
    by_agent = {"type": "agent", "id": "warden-test-client/1.2.3"}  # actor kind agent: the client from initialize
    actions = [r for r in recs if r["type"] == "action_record"]
    assert actions and all(r["actor"] == by_agent for r in calls + actions)
    assert recs[-1]["type"] == "run_record" and recs[-1]["outcome"] == "interrupted"
    for command in (["show"], ["export", "--format", "ocsf"], ["report"]):  # the evidence tools, unchanged
        out = subprocess.run([WARDEN, "evidence", command[0], folder.name, *command[1:], "--evidence-dir",
                              str(agent.evidence_dir)], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and scan_bytes(out.stdout.encode()) == [], (command, out.stderr)
        if command[0] == "export":  # the agent as the OCSF actor's app, acting for the initiator
            assert '"app_name": "agent:warden-test-client/1.2.3"' in out.stdout.replace('":"', '": "')
            events = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
            ocsf = schema(OCSF_VERSION)
            assert events and [p for e in events for p in ocsf.validate(e)] == []  # valid OCSF 1.3.0
    # nothing Warden wrote holds a canary, and nothing the client received did either
    assert scan_bytes_for_canaries(folder) == []
    assert all(scan_bytes(t.encode()) == [] for t in agent.received)
