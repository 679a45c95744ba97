"""The Python session API: the same calls as the MCP tools, the same guards, masking and evidence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.agent_session import AgentInfo, open_session
from runner.browser.playwright_driver import MASK_COLOR
from tests.guards.canaries import scan_bytes, scan_bytes_for_canaries
from tests.guards.pii_support import canary_page
from tests.png import decode_png, pixel
from tests.runner.mcp.support import HOST, records, ref_of, write_mission
from tests.server import TestServer

pytestmark = pytest.mark.browser
MASK = tuple(int(MASK_COLOR[i:i + 2], 16) for i in (1, 3, 5))


def test_a_guarded_session_from_python(tmp_path: Path, test_server: TestServer) -> None:
    test_server.set_content("/pii", canary_page())
    mission = write_mission(tmp_path, actions="goto, screenshot", name="py-session")
    evidence = tmp_path / "evidence"
    with open_session(mission, evidence_dir=evidence, agent=AgentInfo("my-framework", "0.9")) as s:
        assert s.goal == "Send the contact form."
        assert "browser_take_screenshot" in s.tool_names() and "browser_click" not in s.tool_names()
        page = s.navigate(test_server.url(HOST, "/pii"))
        assert page.ok and scan_bytes(page.text.encode()) == [] and page.masked.get("EMAIL_ADDRESS", 0) >= 1
        shot = s.take_screenshot()
        assert shot.ok and shot.image_png is not None
        png = decode_png(shot.image_png)
        for y in (40, 90, 140, 190, 290):  # the PII boxes of the canary page are painted over
            assert pixel(png, 300, y) == MASK, y
        assert pixel(png, 300, 420) != MASK
        refused = s.click(ref_of(page.text, "textbox", "Reference"))
        assert not refused.ok and "not granted" in refused.text  # click is not in allowed_actions
        folder = s.folder
    info = json.loads((folder / "run.json").read_text())
    assert info["status"] == "completed" and info["exit_code"] == 0
    agents = {json.dumps(r["subject"]["agent"]) for r in records(folder) if r.get("guard") == "mcp.tools"}
    assert agents == {json.dumps({"kind": "agent", "name": "my-framework", "version": "0.9"})}
    recs = records(folder)
    agent = {"type": "agent", "id": "my-framework/0.9"}
    calls = [r for r in recs if r.get("guard") == "mcp.tools"]
    actions = [r for r in recs if r["type"] == "action_record"]
    assert calls and actions and all(r["actor"] == agent for r in calls + actions)  # actor kind agent
    verdicts = [r for r in recs if r["type"] == "decision_record" and r.get("guard") == "chain"]
    assert verdicts and all(r["actor"]["type"] == "policy" for r in verdicts)  # the guards still decide
    assert scan_bytes_for_canaries(folder) == []


ATTACK_URLS = [
    ("javascript:location.href='{evil}/js'", "scheme"),
    ("data:text/html,<h1>x</h1>", "scheme"),
    ("file:///etc/passwd", "scheme"),
    ("view-source:{evil}/vs", "scheme"),
    ("http://127.0.0.1:{port}/", "boundaries.allowed_domains"),
    ("http://allowed.localhost@evil.localhost:{port}/", "boundaries.allowed_domains"),
    ("{evil}/x", "boundaries.allowed_domains"),
    ("{allowed}", "allowed_domains"),  # an allowed page redirecting off the allowlist
]


def test_agent_attacks_are_refused_and_nothing_reaches_the_hosts(
    tmp_path: Path, test_server: TestServer, evil_server: TestServer
) -> None:
    from tests.runner.mcp.test_mcp_stdio import PAY, ZONES

    test_server.set_content("/pay", PAY)
    evil = evil_server.url("evil.localhost", "").rstrip("/")
    test_server.set_redirect("/go-evil", evil + "/r")
    mission = write_mission(tmp_path, actions="goto, click, fill, press, check", extra=ZONES, name="attacks")
    with open_session(mission, evidence_dir=tmp_path / "evidence") as s:
        for url, rule in ATTACK_URLS:
            hosts = {"evil": evil, "port": evil_server.port, "allowed": test_server.url(HOST, "/go-evil")}
            result = s.navigate(url.format(**hosts))
            assert not result.ok and rule in result.text, (url, result.text)
        pay = ref_of(s.navigate(test_server.url(HOST, "/pay")).text, "button", "Submit payment")
        # every activating way to the danger-zone button is gated (deny: refused), not only click
        form = {"fields": [{"name": "pay", "type": "checkbox", "ref": pay, "value": "true"}]}
        assert not s.call("browser_fill_form", form).ok
        assert not s.click(pay).ok
        assert s.press_key("Tab").ok  # the focus moves onto the button ...
        enter = s.press_key("Enter")  # ... and Enter on it is judged as activating it
        assert not enter.ok and "approval not granted" in enter.text
    assert [r for r in test_server.requests if r.route == "/order"] == []
    assert evil_server.connections == []


def test_what_cannot_be_masked_is_withheld_and_a_bug_ends_the_run(
    tmp_path: Path, test_server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import runner.agent_session.calls as calls

    test_server.set_content("/pii", canary_page())
    mission = write_mission(tmp_path, actions="goto", name="fail-closed")
    with open_session(mission, evidence_dir=tmp_path / "evidence") as s:
        assert s.navigate(test_server.url(HOST, "/pii")).ok

        def no_mask(*_a: object) -> object:
            raise RuntimeError("engine gone")

        with monkeypatch.context() as m:
            m.setattr(calls, "mask", no_mask)
            withheld = s.snapshot()
        assert not withheld.ok and "withheld" in withheld.text and scan_bytes(withheld.text.encode()) == []

        def bug(*_a: object) -> object:
            raise KeyError("oops")

        monkeypatch.setattr(calls.Dispatcher, "_handle", bug)
        broken = s.snapshot()
        assert not broken.ok and broken.ended and "internal error (KeyError)" in broken.text
        assert "has ended" in s.tabs().text
        folder = s.folder
    info = json.loads((folder / "run.json").read_text())
    assert info["status"] == "failed" and info["exit_code"] == 4


def test_a_refusal_midway_says_what_was_already_done(tmp_path: Path, test_server: TestServer) -> None:
    from tests.runner.mcp.test_mcp_stdio import FORM, ZONES

    test_server.set_content("/form", FORM)
    mission = write_mission(tmp_path, actions="goto, fill", extra=ZONES, max_steps=2, name="midway")
    with open_session(mission, evidence_dir=tmp_path / "evidence") as s:
        box = ref_of(s.navigate(test_server.url(HOST, "/form")).text, "textbox", "Your name")
        fields = [{"name": "a", "type": "textbox", "ref": box, "value": "one"},
                  {"name": "b", "type": "textbox", "ref": box, "value": "two"}]
        result = s.fill_form(fields)  # the second fill is past max_steps: 2
        assert not result.ok and "step limit reached" in result.text
        assert "1 earlier step(s) of this call were done" in result.text
