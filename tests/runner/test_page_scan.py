"""The page scan sees the whole page and fails closed (real Chromium, Presidio, the multi-host server).

What it reads: open shadow roots, same-origin iframes, input values and the accessible attributes
(title, alt, aria-label, placeholder), each found AND masked in the screenshot (proved by pixels).
A page over the scan's budget is "cannot decide": an exception record, no screenshot, and the run
stops before the next step (proved by what the server did not receive) unless ``on_page: record``.
Warden's scan runs in an isolated world: a page that redefines the DOM prototypes Warden would call
to hide a value still has it found and masked.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.browser.page_scripts import MAX_TEXT_BLOCKS, TOO_BIG
from runner.browser.playwright_driver import MASK_COLOR
from tests.guards.pii_support import (
    BOX,
    CARD,
    EMAIL,
    PHONE,
    SSN,
    assert_no_canaries,
    decode_png,
    findings,
    mission,
    pii_block,
    pixel,
    run,
    serve,
)
from tests.server import TestServer

pytestmark = pytest.mark.browser

MASK = tuple(int(MASK_COLOR[i:i + 2], 16) for i in (1, 3, 5))
WHITE = (255, 255, 255)
HOST = "allowed.localhost"


@pytest.fixture
def ev(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "ev"
    yield path
    if path.exists():
        assert_no_canaries(path)


@pytest.fixture
def server(test_server: TestServer) -> TestServer:
    serve(test_server)
    return test_server


def _pii(**kw: Any) -> str:
    # Requests are only recorded here: this file is about the page scan (the request gate has its own tests).
    return pii_block(on_request="record", **kw)


def _page(body: str, head: str = "") -> str:
    return f'<!doctype html><html><head>{head}</head><body style="margin:0;background:#ffffff">{body}</body></html>'


def _last_shot(res: Any) -> Any:
    shots = sorted((res.folder / "screenshots").glob("*.png"))
    assert shots
    return decode_png(shots[-1].read_bytes())


def _received(server: TestServer, route: str) -> int:
    return len([r for r in server.requests if r.route == route])


def _goto_then_done(server: TestServer, path: str) -> list[str]:
    return [f"goto: {server.url(HOST, path)}", f"goto: {server.url(HOST, '/done')}"]


SHADOW = f"""<div id="host" style="{BOX}top:20px"></div>
<script>
  const root = document.getElementById('host').attachShadow({{mode: 'open'}});
  root.innerHTML = '<div><p style="margin:0;font:20px sans-serif">Email: {EMAIL[0].value}</p></div>';
  const inner = document.createElement('span');
  root.appendChild(inner);
  inner.attachShadow({{mode: 'open'}}).innerHTML = '<b>Phone: {PHONE[0].value}</b>';
</script>"""

FRAME_DOC = f'<body style="margin:0"><p id="ssn" style="{BOX}top:0px;left:0">SSN: {SSN[0].value}</p></body>'
FRAMED = """<iframe id="pay" src="/frame-inner" style="position:absolute;left:20px;top:100px;width:640px;
height:60px;border:0"></iframe>"""

ATTRS = f"""<img id="pic" alt="{EMAIL[1].value}" style="{BOX}top:20px;background:#ffffff">
<span id="tip" title="{SSN[1].value}" style="{BOX}top:80px">hover me</span>
<input id="ph" placeholder="Phone {PHONE[1].value}" style="{BOX}top:140px">
<textarea id="ta" style="{BOX}top:200px">Card: {CARD[1].value}</textarea>"""


def test_shadow_roots_are_scanned_and_masked(tmp_path: Path, ev: Path, server: TestServer) -> None:
    server.set_content("/shadow", _page(SHADOW))
    code, _res, recs, out = run(tmp_path, mission(_goto_then_done(server, "/shadow"), pii=_pii(on_page="block")), ev)
    assert code == 3, out
    assert _received(server, "/done") == 0  # the run stopped after the page showing PII
    page = findings(recs, "page")
    assert {f["entity_type"] for f in page} >= {"EMAIL_ADDRESS", "PHONE_NUMBER"}
    assert all(f["location"]["selector"].startswith("#host") for f in page)


def test_shadow_root_pii_is_masked_in_the_screenshot(tmp_path: Path, ev: Path, server: TestServer) -> None:
    server.set_content("/shadow", _page(SHADOW))
    code, res, _recs, out = run(tmp_path, mission([f"goto: {server.url(HOST, '/shadow')}"], pii=_pii()), ev)
    assert code == 0, out
    assert res is not None
    assert pixel(_last_shot(res), 60, 30) == MASK


def test_same_origin_iframe_is_scanned_and_masked(tmp_path: Path, ev: Path, server: TestServer) -> None:
    server.set_content("/frame-inner", _page(FRAME_DOC))
    server.set_content("/framed", _page(FRAMED))
    code, res, recs, out = run(tmp_path, mission([f"goto: {server.url(HOST, '/framed')}"], pii=_pii()), ev)
    assert code == 0, out
    page = findings(recs, "page")
    assert [f["entity_type"] for f in page] == ["US_SSN"]
    assert page[0]["location"]["selector"] == "#pay |> #ssn"
    assert res is not None
    png = _last_shot(res)
    assert pixel(png, 300, 120) == MASK
    assert pixel(png, 1000, 600) == WHITE


def test_attributes_and_field_values_are_scanned_and_masked(tmp_path: Path, ev: Path, server: TestServer) -> None:
    server.set_content("/attrs", _page(ATTRS))
    code, res, recs, out = run(tmp_path, mission([f"goto: {server.url(HOST, '/attrs')}"], pii=_pii()), ev)
    assert code == 0, out
    by_sel = {f["location"]["selector"]: f["entity_type"] for f in findings(recs, "page")}
    assert by_sel == {"#pic": "EMAIL_ADDRESS", "#tip": "US_SSN", "#ph": "PHONE_NUMBER", "#ta": "CREDIT_CARD"}
    assert res is not None
    png = _last_shot(res)
    for y in (40, 100, 160, 220):
        assert pixel(png, 300, y) == MASK, y


SPOOF = f"""<script>
  // The page tries to hide its values from whoever reads the DOM through the page's own prototypes.
  Object.defineProperty(Node.prototype, 'nodeValue', {{get() {{ return 'nothing'; }}}});
  Object.defineProperty(Node.prototype, 'textContent', {{get() {{ return 'nothing'; }}}});
  Object.defineProperty(HTMLElement.prototype, 'innerText', {{get() {{ return 'nothing'; }}}});
  Object.defineProperty(HTMLInputElement.prototype, 'value', {{get() {{ return ''; }}, set(v) {{}}}});
  Element.prototype.getAttribute = () => null;
  Element.prototype.hasAttribute = () => false;
  Element.prototype.checkVisibility = () => false;
  Array.prototype.map = function () {{ return []; }};
  Array.from = () => [];
  Map.prototype.set = function () {{ return this; }};
  document.createTreeWalker = () => ({{nextNode: () => null, currentNode: null}});
  window.getComputedStyle = () => ({{display: 'none'}});
  Object.defineProperty(Element.prototype, 'shadowRoot', {{get() {{ return null; }}}});
</script>
<p id="mail" style="{BOX}top:20px">Email: {EMAIL[0].value}</p>
<span id="tip" title="{SSN[1].value}" style="{BOX}top:80px">hover me</span>
<input id="field" name="phone" value="{PHONE[1].value}" style="{BOX}top:140px">"""


def test_a_page_spoofing_the_dom_cannot_hide_pii_from_the_scan(tmp_path: Path, ev: Path, server: TestServer) -> None:
    server.set_content("/spoof", _page(SPOOF))
    steps = _goto_then_done(server, "/spoof")
    code, _, recs, out = run(tmp_path, mission(steps, pii=_pii(on_page="block")), ev)
    assert code == 3, out
    assert _received(server, "/done") == 0
    by_sel = {f["location"]["selector"]: f["entity_type"] for f in findings(recs, "page")}
    assert by_sel == {"#mail": "EMAIL_ADDRESS", "#tip": "US_SSN", "#field": "PHONE_NUMBER"}


def test_a_spoofing_page_is_still_masked(tmp_path: Path, ev: Path, server: TestServer) -> None:
    server.set_content("/spoof", _page(SPOOF))
    code, res, _, out = run(tmp_path, mission([f"goto: {server.url(HOST, '/spoof')}"], pii=_pii()), ev)
    assert code == 0, out
    assert res is not None
    png = _last_shot(res)
    for y in (40, 100, 160):
        assert pixel(png, 300, y) == MASK, y


def test_a_spoofing_iframe_cannot_hide_pii(tmp_path: Path, ev: Path, server: TestServer) -> None:
    server.set_content("/frame-inner", _page(SPOOF))
    server.set_content("/framed", _page(FRAMED.replace("height:60px", "height:200px")))
    code, _, recs, out = run(tmp_path, mission(_goto_then_done(server, "/framed"), pii=_pii(on_page="block")), ev)
    assert code == 3, out
    assert _received(server, "/done") == 0
    sels = {f["location"]["selector"] for f in findings(recs, "page")}
    assert sels == {"#pay |> #mail", "#pay |> #tip", "#pay |> #field"}


def _huge(n: int) -> str:
    rows = "".join(f"<p>row {i}</p>" for i in range(n))
    return _page(f'<p id="mail">Email: {EMAIL[0].value}</p>{rows}')


def test_a_page_over_the_block_budget_cannot_decide_and_stops(tmp_path: Path, ev: Path, server: TestServer) -> None:
    server.set_content("/huge", _huge(MAX_TEXT_BLOCKS + 10))
    code, res, recs, out = run(tmp_path, mission(_goto_then_done(server, "/huge"), pii=_pii(on_page="block")), ev)
    assert code == 3, out
    assert _received(server, "/done") == 0
    exc = [r for r in recs if r["type"] == "exception_record" and r["category"] == "pii"]
    assert exc and exc[0]["message"].startswith(TOO_BIG) and "cannot decide" in exc[0]["message"]
    assert exc[0]["mitigation"] == "blocked"
    assert res is not None
    assert not list((res.folder / "screenshots").glob("*.png"))  # its masks are unknown: no screenshot
    assert findings(recs, "page") == []


def test_over_budget_with_on_page_record_goes_on_without_a_screenshot(
    tmp_path: Path, ev: Path, server: TestServer
) -> None:
    server.set_content("/huge", _huge(MAX_TEXT_BLOCKS + 10))
    code, res, recs, out = run(tmp_path, mission(_goto_then_done(server, "/huge"), pii=_pii(on_page="record")), ev)
    assert code == 0, out
    assert _received(server, "/done") == 1
    exc = [r for r in recs if r["type"] == "exception_record" and r["category"] == "pii"]
    assert len(exc) == 1 and exc[0]["message"].startswith(TOO_BIG) and exc[0]["mitigation"] == "masked"
    assert res is not None
    assert len(list((res.folder / "screenshots").glob("*.png"))) == 1  # /done only


def test_a_page_under_the_budget_with_shadow_and_frames_but_no_pii_passes(
    tmp_path: Path, ev: Path, server: TestServer
) -> None:
    """The guard allows what it should: a big-but-fitting page with shadow DOM, a frame, attributes."""
    server.set_content("/frame-inner", _page('<p id="x">Order 1200.00 shipped</p>'))
    clean_shadow = SHADOW.replace(f"Email: {EMAIL[0].value}", "Hello").replace(f"Phone: {PHONE[0].value}", "World")
    rows = "".join(f"<p>row {i}</p>" for i in range(MAX_TEXT_BLOCKS - 100))
    server.set_content("/fine", _page(clean_shadow + FRAMED + '<img alt="company logo"><input placeholder="Search">'
                                      + rows))
    code, res, recs, out = run(tmp_path, mission(_goto_then_done(server, "/fine"), pii=_pii(on_page="block")), ev)
    assert code == 0, out
    assert _received(server, "/done") == 1
    assert findings(recs, "page") == []
    assert not [r for r in recs if r["type"] == "exception_record"]
    assert res is not None
    assert len(list((res.folder / "screenshots").glob("*.png"))) == 2
