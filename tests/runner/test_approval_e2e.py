"""Danger zones and the approval gate, end to end: real Chromium, the real local server, real evidence.

Every test is proven by what the server received: the guarded ``POST /order`` (or ``/archive``)
arrives exactly once after an approval and never otherwise. In-process runs swap the channel for
a scripted one (``make_channel`` is looked up when the gate is built); the terminal tests run
``warden run --approval prompt`` on a real pty with pexpect.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pexpect
import pytest

import runner.approvals.channels as channels_mod
import runner.run as run_mod
from evidence.verify import verify_run
from runner.approvals.base import ApprovalAnswer, ApprovalAsk, Channel, Eligibility
from runner.approvals.common import now_utc, os_user
from tests.evidence.integrity_support import only_run, records, run, write_mission
from tests.server import Response, TestServer

pytestmark = pytest.mark.browser

HOST = "allowed.localhost"
WARDEN = str(Path(sys.executable).parent / "warden")

ORDER_PAGE = """<!doctype html><html><head><title>Shop</title></head><body>
<h1>Basket</h1>
<form method="post" action="/order" id="order-form">
  <label for="qty">Quantity</label> <input id="qty" name="qty" value="1">
  <label for="amount">Amount</label> <input id="amount" name="amount" value="">
  <button type="submit" id="submit-order">Submit order</button>
</form>
<form method="post" action="/archive" id="archive-form">
  <button type="submit" id="archive" class="archive">Archive</button>
</form>
<form method="post" action="/order" id="danger-form" data-danger="1">
  <button type="submit" id="go">Continue</button>
</form>
<form method="post" action="/order" id="plain-form">
  <label for="note">Note</label> <input id="note" name="note">
  <button type="submit" id="proceed">Proceed</button>
</form>
<iframe id="frame" style="width:240px;height:40px;border:0"
  srcdoc="<body style='margin:0'><form method='post' action='/order'><input id='inner' name='x'
  style='width:100%;height:36px'></form></body>"></iframe>
</body></html>"""


def serve_shop(server: TestServer) -> None:
    server.set_content("/shop", ORDER_PAGE)
    server.set_content("/checkout/pay", ORDER_PAGE)
    server.set_route("/order", lambda _r: Response(body="<h1>Order received</h1>"))
    server.set_route("/archive", lambda _r: Response(body="<h1>Archived</h1>"))


def posts(server: TestServer, route: str = "/order") -> int:
    return sum(1 for r in server.requests_for(HOST) if r.method == "POST" and r.route == route)


def shop_mission(
    tmp: Path, server: TestServer, steps: list[str], *, zones: str = "", defaults: bool = True,
    approvals: str = "", page: str = "/shop",
) -> Path:
    body = "\n".join(f"  - {s}" for s in [f"goto: {server.url(HOST, page)}", *steps])
    text = f"""mission: shop-order
version: 1
boundaries:
  allowed_domains: [{HOST}]
  allow_http: true
  allowed_actions: [goto, click, fill, press, check, wait_for, screenshot]
  timeout: 60
danger_zones_defaults: {"true" if defaults else "false"}
{zones}{approvals}steps:
{body}
"""
    return write_mission(tmp, text)


@dataclass
class Scripted:
    """An in-process channel: answers from a script, optionally doing something first (e.g. change the page)."""

    answers: list[str]  # "approve" | "deny" | "expire" | "self" (four-eyes: try the initiator, then expire)
    before: Callable[[ApprovalAsk], None] | None = None
    asked: list[ApprovalAsk] = field(default_factory=list)
    name: Channel = "prompt"

    def ask(self, ask: ApprovalAsk, eligible: Eligibility) -> ApprovalAnswer:
        self.asked.append(ask)
        if self.before is not None:
            self.before(ask)
        what = self.answers.pop(0) if self.answers else "deny"
        user = os_user()
        if what == "approve":
            return ApprovalAnswer("approved", "carol", user, "checked the basket", self.name, now_utc())
        if what == "self":
            why = eligible(ask.initiator)
            assert why is not None
            return ApprovalAnswer("expired", None, user, "approval timed out", self.name, now_utc(),
                                  refusals=(f"{ask.initiator}: {why}",))
        if what == "expire":
            return ApprovalAnswer("expired", None, user, "approval timed out", self.name, now_utc())
        return ApprovalAnswer("denied", "carol", user, "not today", self.name, now_utc())


@pytest.fixture
def use_channel(monkeypatch: pytest.MonkeyPatch) -> Callable[[Scripted], Scripted]:
    def install(channel: Scripted) -> Scripted:
        monkeypatch.setattr(channels_mod, "make_channel", lambda *a, **k: channel)
        return channel

    return install


@pytest.fixture
def driver_holder(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The run's driver, captured as it opens (a scripted channel may act on the page with it)."""
    holder: list[Any] = []
    real = run_mod.open_sandbox

    def capture(*a: Any, **k: Any) -> Any:
        d = real(*a, **k)
        holder.append(d)
        return d

    monkeypatch.setattr(run_mod, "open_sandbox", capture)
    return holder


def of_type(recs: list[dict[str, Any]], t: str) -> list[dict[str, Any]]:
    return [r for r in recs if r["type"] == t]


def step_actions(recs: list[dict[str, Any]], step: int) -> list[dict[str, Any]]:
    return [r for r in recs if r["type"] == "action_record" and r["step"] == step]


def assert_verifies(folder: Path) -> None:
    report = verify_run(folder)
    assert report.ok, report


# ----------------------------------------------------------------------------- deny / approve


def test_deny_channel_stops_with_exit_3_and_the_post_never_arrives(tmp_path: Path, test_server: TestServer) -> None:
    serve_shop(test_server)
    mission = shop_mission(tmp_path, test_server, ["click: {role: button, name: Submit order}"])
    code, result = run(mission, tmp_path / "ev", approval="deny")
    assert code == 3 and result is not None
    assert "approval" in result.message and "denied" in result.message
    assert posts(test_server) == 0
    recs = records(only_run(tmp_path / "ev"))
    (req,) = of_type(recs, "approval_request")
    (ans,) = of_type(recs, "approval_record")
    assert req["rule"] == "danger_zone.default.order" and req["step"] == 2 and req["channel"] == "deny"
    assert req["target"]["text"] == "Submit order" and req["target"]["role"] == "button"
    assert req["attachments"] and req["attachments"][0]["path"].startswith("screenshots/")
    assert ans["decision"] == "denied" and ans["channel"] == "deny" and ans["action_digest"] == req["action_digest"]
    assert ans["actor"]["type"] == "policy" and ans["os_user"]
    assert step_actions(recs, 2) == []  # no intent, no executed outcome
    chain = [r for r in of_type(recs, "decision_record") if r.get("step") == 2]
    assert chain[0]["decision"] == "require_approval" and chain[-1]["decision"] == "deny"
    assert any(r["category"] == "guardrail" for r in of_type(recs, "exception_record"))
    assert recs.index(req) < recs.index(ans)
    assert_verifies(only_run(tmp_path / "ev"))


def test_an_approval_lets_the_post_arrive_exactly_once(
    tmp_path: Path, test_server: TestServer, use_channel: Callable[[Scripted], Scripted]
) -> None:
    serve_shop(test_server)
    channel = use_channel(Scripted(["approve"]))
    mission = shop_mission(
        tmp_path, test_server, ["click: {role: button, name: Submit order}", "wait_for: {text: Order received}"]
    )
    code, _ = run(mission, tmp_path / "ev")
    assert code == 0
    assert posts(test_server) == 1
    recs = records(only_run(tmp_path / "ev"))
    (req,) = of_type(recs, "approval_request")
    (ans,) = of_type(recs, "approval_record")
    assert ans["decision"] == "approved" and ans["approver"] == "carol" and ans["reason"] == "checked the basket"
    assert ans["actor"] == {"type": "human", "id": "carol"}
    intent = next(r for r in step_actions(recs, 2) if r["phase"] == "intent")
    assert recs.index(req) < recs.index(ans) < recs.index(intent)  # both persisted before the click
    assert channel.asked[0].screenshot and Path(channel.asked[0].screenshot).is_file()
    assert channel.asked[0].risk_score is not None and channel.asked[0].total_steps == 3
    assert_verifies(only_run(tmp_path / "ev"))


# ----------------------------------------------------------------------------- press Enter, form submit, approve: true


def test_press_enter_in_a_field_whose_form_submits_through_a_danger_button_is_gated(
    tmp_path: Path, test_server: TestServer
) -> None:
    serve_shop(test_server)
    mission = shop_mission(tmp_path, test_server, ["press: {key: Enter, label: Quantity}"])
    code, _ = run(mission, tmp_path / "ev", approval="deny")
    assert code == 3
    assert posts(test_server) == 0
    (req,) = of_type(records(only_run(tmp_path / "ev")), "approval_request")
    assert req["rule"] == "danger_zone.default.order" and req["kind"] == "press"
    assert "Submit order" in req["target"]["submits_via"]


def test_press_enter_approved_submits_the_form_once(
    tmp_path: Path, test_server: TestServer, use_channel: Callable[[Scripted], Scripted]
) -> None:
    serve_shop(test_server)
    use_channel(Scripted(["approve"]))
    mission = shop_mission(tmp_path, test_server, ["press: {key: Enter, label: Quantity}",
                                                   "wait_for: {text: Order received}"])
    code, _ = run(mission, tmp_path / "ev")
    assert code == 0
    assert posts(test_server) == 1


def test_press_enter_in_a_harmless_form_is_not_gated(tmp_path: Path, test_server: TestServer) -> None:
    serve_shop(test_server)
    steps = ["press: {key: Enter, label: Note}", "wait_for: {text: Order received}"]
    mission = shop_mission(tmp_path, test_server, steps)
    code, _ = run(mission, tmp_path / "ev", approval="deny")
    assert code == 0
    assert posts(test_server) == 1
    assert of_type(records(only_run(tmp_path / "ev")), "approval_request") == []


def test_a_form_submit_through_a_zone_selector_on_the_form_is_gated(tmp_path: Path, test_server: TestServer) -> None:
    serve_shop(test_server)
    zones = 'danger_zones:\n  - {name: danger-form, selector: "form[data-danger]", reason: Flagged form}\n'
    mission = shop_mission(tmp_path, test_server, ["click: {selector: '#go'}"], zones=zones)
    code, _ = run(mission, tmp_path / "ev", approval="deny")
    assert code == 3
    assert posts(test_server) == 0
    (req,) = of_type(records(only_run(tmp_path / "ev")), "approval_request")
    assert req["rule"] == "danger_zone.danger-form" and req["reason"] == "Flagged form"
    assert req["target"]["form_action"].endswith("/order")


def test_approve_true_gates_a_harmless_step(tmp_path: Path, test_server: TestServer) -> None:
    serve_shop(test_server)
    mission = shop_mission(tmp_path, test_server, ["click: {selector: '#proceed', approve: true}"])
    code, _ = run(mission, tmp_path / "ev", approval="deny")
    assert code == 3
    assert posts(test_server) == 0
    (req,) = of_type(records(only_run(tmp_path / "ev")), "approval_request")
    assert req["rule"] == "step.approve"


def test_approve_true_approved_runs_once(
    tmp_path: Path, test_server: TestServer, use_channel: Callable[[Scripted], Scripted]
) -> None:
    serve_shop(test_server)
    use_channel(Scripted(["approve"]))
    mission = shop_mission(tmp_path, test_server, ["click: {selector: '#proceed', approve: true}",
                                                   "wait_for: {text: Order received}"])
    code, _ = run(mission, tmp_path / "ev")
    assert code == 0
    assert posts(test_server) == 1


# ----------------------------------------------------------------------------- zone kinds: blocking and allowing

ZONE_CASES = {
    # name: (zones yaml, step that is gated, step that is not)
    "text-regex": ('  - {name: go-on, text: "/^proc(eed)?$/i", reason: Regex zone}\n',
                   "click: {selector: '#proceed'}", "click: {selector: '#go'}"),
    "text-exact": ('  - {name: go-on, text: "  proceed ", reason: Exact zone}\n',
                   "click: {selector: '#proceed'}", "click: {selector: '#go'}"),
    "selector": ('  - {name: go-on, selector: "#plain-form button", reason: Selector zone}\n',
                 "click: {text: Proceed}", "click: {selector: '#go'}"),
}


@pytest.mark.parametrize("case", sorted(ZONE_CASES))
def test_zone_blocks_its_target_and_allows_others(case: str, tmp_path: Path, test_server: TestServer) -> None:
    serve_shop(test_server)
    zones_yaml, gated, free = ZONE_CASES[case]
    zones = "danger_zones:\n" + zones_yaml
    blocked = shop_mission(tmp_path, test_server, [gated], zones=zones, defaults=False)
    code, _ = run(blocked, tmp_path / "ev1", approval="deny")
    assert code == 3 and posts(test_server) == 0
    (req,) = of_type(records(only_run(tmp_path / "ev1")), "approval_request")
    assert req["rule"] == "danger_zone.go-on" and req["zone"] == "go-on"

    allowed = shop_mission(tmp_path, test_server, [free, "wait_for: {text: Order received}"], zones=zones,
                           defaults=False)
    code, _ = run(allowed, tmp_path / "ev2", approval="deny")
    assert code == 0 and posts(test_server) == 1


def test_url_zone_gates_actions_on_matching_pages_only(tmp_path: Path, test_server: TestServer) -> None:
    serve_shop(test_server)
    zones = 'danger_zones:\n  - {name: checkout, url: "http://allowed.localhost/checkout/*", reason: Checkout}\n'
    on_checkout = shop_mission(tmp_path, test_server, ["click: {selector: '#proceed'}"], zones=zones,
                               defaults=False, page="/checkout/pay")
    code, _ = run(on_checkout, tmp_path / "ev1", approval="deny")
    assert code == 3 and posts(test_server) == 0
    (req,) = of_type(records(only_run(tmp_path / "ev1")), "approval_request")
    assert req["rule"] == "danger_zone.checkout"

    steps = ["click: {selector: '#proceed'}", "wait_for: {text: Order received}"]
    elsewhere = shop_mission(tmp_path, test_server, steps, zones=zones, defaults=False, page="/shop")
    code, _ = run(elsewhere, tmp_path / "ev2", approval="deny")
    assert code == 0 and posts(test_server) == 1


@pytest.mark.parametrize(("value", "gated"), [("999.50", False), ("1,200.00", True), (" 1 200 ", True),
                                                ("lots", True)])
def test_field_zone_gates_a_fill_above_the_threshold(
    value: str, gated: bool, tmp_path: Path, test_server: TestServer
) -> None:
    serve_shop(test_server)
    zones = 'danger_zones:\n  - {name: big-amount, field: "#amount", above: 1000, reason: Large amount}\n'
    steps = [f"fill: {{selector: '#amount', value: '{value}'}}", "click: {selector: '#proceed'}",
             "wait_for: {text: Order received}"]
    mission = shop_mission(tmp_path, test_server, steps, zones=zones, defaults=False)
    code, _ = run(mission, tmp_path / "ev", approval="deny")
    recs = records(only_run(tmp_path / "ev"))
    if gated:
        assert code == 3 and posts(test_server) == 0
        (req,) = of_type(recs, "approval_request")
        assert req["rule"] == "danger_zone.big-amount" and req["kind"] == "fill"
        assert step_actions(recs, 2) == []  # the value was never typed
    else:
        assert code == 0 and posts(test_server) == 1
        assert of_type(recs, "approval_request") == []


def test_defaults_off_lets_submit_order_through(tmp_path: Path, test_server: TestServer) -> None:
    serve_shop(test_server)
    mission = shop_mission(tmp_path, test_server, ["click: {role: button, name: Submit order}",
                                                   "wait_for: {text: Order received}"], defaults=False)
    code, _ = run(mission, tmp_path / "ev", approval="deny")
    assert code == 0 and posts(test_server) == 1


# ----------------------------------------------------------------------------- binding, four eyes, fail closed


def _rename_button(holder: list[Any], text: str) -> Callable[[ApprovalAsk], None]:
    def before(ask: ApprovalAsk) -> None:
        holder[0].page.evaluate("t => { document.querySelector('#submit-order').textContent = t }", text)

    return before


def test_page_change_between_prompt_and_click_voids_the_approval_and_asks_again(
    tmp_path: Path, test_server: TestServer, use_channel: Callable[[Scripted], Scripted], driver_holder: list[Any]
) -> None:
    serve_shop(test_server)
    calls = {"n": 0}
    rename = _rename_button(driver_holder, "Submit order now")

    def first_only(ask: ApprovalAsk) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            rename(ask)

    channel = use_channel(Scripted(["approve", "approve"], before=first_only))
    mission = shop_mission(tmp_path, test_server, ["click: {role: button, name: Submit order}",
                                                   "wait_for: {text: Order received}"])
    code, _ = run(mission, tmp_path / "ev")
    assert code == 0
    assert posts(test_server) == 1
    recs = records(only_run(tmp_path / "ev"))
    reqs, answers = of_type(recs, "approval_request"), of_type(recs, "approval_record")
    assert len(reqs) == 2 and len(answers) == 2
    assert reqs[0]["action_digest"] != reqs[1]["action_digest"]
    assert channel.asked[1].target["text"] == "Submit order now"
    void = [r for r in of_type(recs, "decision_record") if r["rule"] == "approval.binding"]
    assert len(void) == 1 and void[0]["decision"] == "deny" and "Submit order now" in void[0]["rationale"]
    assert_verifies(only_run(tmp_path / "ev"))


def test_a_page_that_keeps_changing_is_denied_after_three_asks(
    tmp_path: Path, test_server: TestServer, use_channel: Callable[[Scripted], Scripted], driver_holder: list[Any]
) -> None:
    serve_shop(test_server)
    n = {"i": 0}

    def churn(ask: ApprovalAsk) -> None:
        n["i"] += 1
        _rename_button(driver_holder, f"Submit order {n['i']}")(ask)

    use_channel(Scripted(["approve"] * 5, before=churn))
    mission = shop_mission(tmp_path, test_server, ["click: {role: button, name: Submit order}"])
    code, _ = run(mission, tmp_path / "ev")
    assert code == 3 and posts(test_server) == 0
    recs = records(only_run(tmp_path / "ev"))
    assert len(of_type(recs, "approval_request")) == 3
    assert step_actions(recs, 2) == []


def test_four_eyes_refuses_the_initiator_and_records_it(
    tmp_path: Path, test_server: TestServer, use_channel: Callable[[Scripted], Scripted]
) -> None:
    serve_shop(test_server)
    use_channel(Scripted(["self"]))
    mission = shop_mission(tmp_path, test_server, ["click: {role: button, name: Submit order}"],
                           approvals="approvals:\n  four_eyes: true\n  timeout: 5\n")
    code, _ = run(mission, tmp_path / "ev")
    assert code == 3 and posts(test_server) == 0
    recs = records(only_run(tmp_path / "ev"))
    refusals = [r for r in of_type(recs, "decision_record") if r["rule"] == "approvals.four_eyes"]
    assert len(refusals) == 1 and "four_eyes" in refusals[0]["rationale"]
    (ans,) = of_type(recs, "approval_record")
    assert ans["decision"] == "expired"


def test_an_unresolvable_target_is_gated(tmp_path: Path, test_server: TestServer) -> None:
    """Focus inside an iframe: the driver cannot see the element Enter goes to, so it asks (fail closed)."""
    serve_shop(test_server)
    steps = ["click: {selector: '#frame'}", "press: {key: Enter}"]
    mission = shop_mission(tmp_path, test_server, steps)
    code, _ = run(mission, tmp_path / "ev", approval="deny")
    assert code == 3 and posts(test_server) == 0
    (req,) = of_type(records(only_run(tmp_path / "ev")), "approval_request")
    assert req["rule"] == "danger_zone.unresolved" and req["step"] == 3
    assert "iframe" in req["target"]["unresolved"]


def test_a_missing_target_fails_the_step_without_acting(tmp_path: Path, test_server: TestServer) -> None:
    serve_shop(test_server)
    mission = shop_mission(tmp_path, test_server, ["click: {selector: '#nope', timeout: 1}"])
    code, _ = run(mission, tmp_path / "ev", approval="deny")
    assert code == 4 and posts(test_server) == 0
    recs = records(only_run(tmp_path / "ev"))
    assert of_type(recs, "approval_request") == [] and step_actions(recs, 2) == []


# ----------------------------------------------------------------------------- the real terminal (pexpect)

TOKEN_PROMPT = "Type approve or deny: "
REASON_PROMPT = r"Reason for '(approve|deny)' \(required\): "


def _spawn(args: list[str], cwd: Path) -> pexpect.spawn:
    env = {k: v for k, v in os.environ.items() if k != "WARDEN_EVIDENCE_DIR"}
    env["COLUMNS"] = "120"
    return pexpect.spawn(WARDEN, args, cwd=str(cwd), env=env, encoding="utf-8", codec_errors="replace",
                         timeout=90, dimensions=(60, 120))


@pytest.mark.parametrize("explicit", [True, False], ids=["--approval-prompt", "default-with-a-terminal"])
def test_terminal_approve_on_a_pty_posts_once(explicit: bool, tmp_path: Path, test_server: TestServer) -> None:
    serve_shop(test_server)
    mission = shop_mission(tmp_path, test_server, ["click: {role: button, name: Submit order}",
                                                   "wait_for: {text: Order received}"])
    args = ["run", str(mission), "--evidence-dir", str(tmp_path / "ev"), "--approver", "dana"]
    child = _spawn(args + (["--approval", "prompt"] if explicit else []), tmp_path)
    child.expect("APPROVAL REQUIRED")
    child.expect(TOKEN_PROMPT)
    assert posts(test_server) == 0  # nothing yet: the run is waiting for the human
    child.sendline("yes")  # not the token: asked again
    child.expect(TOKEN_PROMPT)
    child.sendline("approve")
    child.expect(REASON_PROMPT)
    child.sendline("basket checked with the customer")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert posts(test_server) == 1
    (ans,) = of_type(records(only_run(tmp_path / "ev")), "approval_record")
    assert ans["decision"] == "approved" and ans["approver"] == "dana" and ans["channel"] == "prompt"
    assert ans["reason"] == "basket checked with the customer" and ans["os_user"]


def test_terminal_deny_on_a_pty_stops_with_exit_3(tmp_path: Path, test_server: TestServer) -> None:
    serve_shop(test_server)
    mission = shop_mission(tmp_path, test_server, ["click: {role: button, name: Submit order}"])
    child = _spawn(["run", str(mission), "--evidence-dir", str(tmp_path / "ev"), "--approval", "prompt"], tmp_path)
    child.expect(TOKEN_PROMPT)
    child.sendline("deny")
    child.expect(REASON_PROMPT)
    child.sendline("wrong basket")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3
    assert posts(test_server) == 0
    (ans,) = of_type(records(only_run(tmp_path / "ev")), "approval_record")
    assert ans["decision"] == "denied" and ans["reason"] == "wrong basket"


def test_without_a_terminal_the_default_channel_denies(tmp_path: Path, test_server: TestServer) -> None:
    serve_shop(test_server)
    mission = shop_mission(tmp_path, test_server, ["click: {role: button, name: Submit order}"])
    proc = subprocess.run(  # a new session: no controlling terminal, /dev/tty cannot be opened
        [WARDEN, "run", str(mission), "--evidence-dir", str(tmp_path / "ev"), "--json"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, start_new_session=True,
    )
    assert proc.returncode == 3, proc.stderr
    assert posts(test_server) == 0
    (ans,) = of_type(records(only_run(tmp_path / "ev")), "approval_record")
    assert ans["channel"] == "deny" and ans["decision"] == "denied"
    finished = [json.loads(line) for line in proc.stdout.splitlines() if '"run_finished"' in line]
    assert finished and "approval" in json.dumps(finished[-1])
