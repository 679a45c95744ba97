"""A page cannot spoof what Warden reads of an action's target (issue item 2), end to end.

The page's own scripts redefine what a page-world reading calls (``Element.prototype.getAttribute``,
the ``textContent`` / ``innerText`` getters, ``closest``, a ``defineProperty`` on the element) so
that the "Submit payment" button reads "Cancel". Warden describes the target again in its
isolated world (``page_reading._read_isolated``) and judges it by both readings, so the approval is
still asked: with ``--approval deny`` the POST never reaches the server and the approval request
explains why. A page that will not let its element be read in the isolated world is fail-closed
(``danger_zone.unresolved``). The unspoofed page still works; a harmless button is not gated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.evidence.integrity_support import only_run, records, run, write_mission
from tests.server import Response, TestServer

pytestmark = pytest.mark.browser

HOST = "allowed.localhost"

PAGE = """<!doctype html><html><head><title>Pay</title></head><body>
<form method="post" action="/pay" id="pay-form">
  <button type="submit" id="pay"><span class="lbl">Submit payment</span></button>
</form>
<form method="post" action="/archive"><button type="submit" id="go" class="danger">Go</button></form>
<button id="later" onclick="location.href = '/later'">Later</button>
<button id="decoy">Cancel</button>
<div id="host"></div>
<script>document.getElementById('host').attachShadow({mode: 'open'}).innerHTML =
  '<form method="post" action="/pay"><button type="submit" id="inner-pay">Pay now</button></form>';</script>
<script>{spoof}</script>
</body></html>"""

LIE = "'Cancel'"
SPOOFS = {
    # every getter and reader on the prototypes: the button (and its span) read "Cancel"
    "prototype-getters": f"""
      const lie = (o, p) => Object.defineProperty(o, p, {{get() {{ return {LIE}; }}, configurable: true}});
      lie(Node.prototype, 'textContent'); lie(HTMLElement.prototype, 'innerText');
      const ga = Element.prototype.getAttribute;
      Element.prototype.getAttribute = function (n) {{
        return ['aria-label', 'title'].includes(n) ? {LIE} : ga.call(this, n); }};
    """,
    # an aria-label that only the page's world sees, and the role gone
    "aria-label-and-role": f"""
      const ga = Element.prototype.getAttribute, has = Element.prototype.hasAttribute;
      Element.prototype.getAttribute = function (n) {{
        if (n === 'aria-label') return {LIE};
        if (n === 'role') return 'presentation';
        return ga.call(this, n); }};
      Element.prototype.hasAttribute = function (n) {{ return n === 'aria-label' || has.call(this, n); }};
    """,
    # own properties on the very elements (the prototypes untouched)
    "define-property-on-element": f"""
      for (const el of [document.getElementById('pay'), document.querySelector('#pay .lbl')]) {{
        for (const p of ['textContent', 'innerText']) Object.defineProperty(el, p, {{get: () => {LIE}}});
        el.closest = () => null;
      }}
    """,
    # the interactive ancestor hidden: a click on the span no longer "lands on" the button
    "closest-returns-null": f"""
      Element.prototype.closest = function () {{ return null; }};
      Object.defineProperty(Node.prototype, 'textContent', {{get() {{ return {LIE}; }}}});
    """,
}


def serve(server: TestServer, spoof: str = "") -> None:
    server.set_content("/pay-page", PAGE.replace("{spoof}", spoof))
    for route in ("/pay", "/archive", "/later"):
        server.set_route(route, lambda r: Response(body=f"<h1>Received {r.route}</h1>"))


def posts(server: TestServer) -> list[str]:
    return [r.route for r in server.requests_for(HOST) if r.method not in ("GET", "HEAD", "OPTIONS")]


def mission(tmp: Path, server: TestServer, steps: list[str], zones: str = "") -> Path:
    body = "\n".join(f"  - {s}" for s in [f"goto: {server.url(HOST, '/pay-page')}", *steps])
    return write_mission(tmp, f"""mission: target-spoofing
version: 1
boundaries:
  allowed_domains: [{HOST}]
  allow_http: true
  allowed_actions: [goto, click, press, wait_for]
  timeout: 60
pii: {{entities: [EMAIL_ADDRESS]}}
danger_zones:
  - {{name: archive, selector: ".danger", reason: Archiving is final}}
{zones}steps:
{body}
""")


def of(recs: list[dict[str, Any]], t: str) -> list[dict[str, Any]]:
    return [r for r in recs if r["type"] == t]


def approval_rules(tmp: Path) -> list[str]:
    return [r["rule"] for r in of(records(only_run(tmp / "ev")), "approval_request")]


CASES = [
    # (spoof, step, the rule the approval request must carry)
    *[(name, 'click: {selector: "#pay"}', "danger_zone.default.pay") for name in SPOOFS],
    *[(name, 'click: {selector: "#pay .lbl"}', "danger_zone.default.pay") for name in SPOOFS],
    ("closest-returns-null", 'click: {selector: "#go"}', "danger_zone.archive"),
    ("prototype-getters", 'press: {key: Enter, selector: "#pay"}', "danger_zone.default.pay"),
    ("prototype-getters", 'click: {selector: "#host #inner-pay"}', "danger_zone.default.pay"),  # open shadow root
]


@pytest.mark.parametrize(("spoof", "step", "rule"), CASES,
                         ids=[f"{c[0]}:{c[1].split('selector: ')[1].rstrip('}')}" for c in CASES])
def test_a_spoofed_target_is_still_gated_and_nothing_is_posted(
    tmp_path: Path, test_server: TestServer, spoof: str, step: str, rule: str
) -> None:
    serve(test_server, SPOOFS[spoof])
    code, _ = run(mission(tmp_path, test_server, [step]), tmp_path / "ev", approval="deny")
    assert code == 3
    assert posts(test_server) == []
    (req,) = of(records(only_run(tmp_path / "ev")), "approval_request")
    assert req["rule"] == rule and req["step"] == 2


MARK_ATTACKS = {
    # the mark Warden hands to its isolated world is dropped, or moved to a harmless decoy
    "setattribute-noop": """
      const sa = Element.prototype.setAttribute;
      Element.prototype.setAttribute = function (n, v) { if (!n.startsWith('data-warden')) sa.call(this, n, v); };
      Object.defineProperty(Node.prototype, 'textContent', {get() { return 'Cancel'; }});
    """,
    "setattribute-to-decoy": """
      const sa = Element.prototype.setAttribute;
      Element.prototype.setAttribute = function (n, v) {
        sa.call(n.startsWith('data-warden') ? document.getElementById('decoy') : this, n, v); };
      Object.defineProperty(Node.prototype, 'textContent', {get() { return 'Cancel'; }});
      Object.defineProperty(HTMLElement.prototype, 'innerText', {get() { return 'Cancel'; }});
    """,
}


@pytest.mark.parametrize("spoof", list(MARK_ATTACKS), ids=list(MARK_ATTACKS))
def test_a_page_that_hides_its_element_from_the_isolated_reading_is_gated(
    tmp_path: Path, test_server: TestServer, spoof: str
) -> None:
    serve(test_server, MARK_ATTACKS[spoof])
    code, _ = run(mission(tmp_path, test_server, ['click: {selector: "#pay"}']), tmp_path / "ev", approval="deny")
    assert code == 3
    assert posts(test_server) == []
    (req,) = of(records(only_run(tmp_path / "ev")), "approval_request")
    assert req["rule"] == "danger_zone.unresolved" and req["step"] == 2
    assert "cannot read the target in Warden's isolated world" in req["reason"]


def test_the_unspoofed_page_is_gated_as_before(tmp_path: Path, test_server: TestServer) -> None:
    serve(test_server)
    code, _ = run(mission(tmp_path, test_server, ['click: {selector: "#pay"}']), tmp_path / "ev", approval="deny")
    assert code == 3
    assert posts(test_server) == []
    assert approval_rules(tmp_path) == ["danger_zone.default.pay"]


@pytest.mark.parametrize("spoof", ["", *SPOOFS], ids=["unspoofed", *SPOOFS])
def test_a_harmless_button_is_not_gated(tmp_path: Path, test_server: TestServer, spoof: str) -> None:
    serve(test_server, SPOOFS.get(spoof, ""))
    steps = ['click: {selector: "#later"}', "wait_for: {text: Received}"]
    code, _ = run(mission(tmp_path, test_server, steps), tmp_path / "ev", approval="deny")
    assert code == 0
    assert approval_rules(tmp_path) == []
    assert "/later" in [r.route for r in test_server.requests_for(HOST) if r.method == "GET"]
    assert posts(test_server) == []
