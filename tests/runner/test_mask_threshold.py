"""Two thresholds on the page: what is written is masked at the redaction threshold, what gates at the policy's.

A phone number in a table cell whose "Phone" header is another block scores 0.4 (no context): under
the default policy threshold (0.5) it is no finding and does not stop the run, but records redact at
min(policy, 0.4), so the stored screenshot must mask it too, and the run learns it as a known value
(a later block showing it where detection misses it is masked). Proved by the stored pixels (real
Chromium, Presidio, the multi-host server).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.browser.playwright_driver import MASK_COLOR
from tests.guards.pii_support import (
    BOX,
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
PHONE = "(212) 555-0147"  # phonenumbers validates it; alone in its block it scores 0.4


def _page(body: str) -> str:
    return f'<!doctype html><html><body style="margin:0;background:#ffffff">{body}</body></html>'


# The header and the number are two blocks: no context word before the number inside its block.
TABLE = _page(f"""<p id="head" style="{BOX}top:20px">Phone</p>
<p id="cell" style="{BOX}top:70px">{PHONE}</p>
<p id="plain" style="{BOX}top:120px">Nothing to see here</p>""")
# The same number glued to letters: detection drops it (part of a longer token), known values do not.
GLUED = _page(f"""<p id="glued" style="{BOX}top:20px">Order ref{PHONE[1:4]}-{PHONE[6:]} shipped</p>
<p id="plain" style="{BOX}top:70px">Nothing to see here</p>""")
# With its context word in the same block the number scores 0.75: a finding, as before.
CONTEXT = _page(f"""<p id="cell" style="{BOX}top:20px">Phone: {PHONE}</p>
<p id="plain" style="{BOX}top:70px">Nothing to see here</p>""")


@pytest.fixture
def ev(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "ev"
    yield path
    if path.exists():
        assert_no_canaries(path)


@pytest.fixture
def server(test_server: TestServer) -> TestServer:
    serve(test_server)
    test_server.set_content("/table", TABLE)
    test_server.set_content("/glued", GLUED)
    test_server.set_content("/context", CONTEXT)
    return test_server


def _shot(res: Any, step: int) -> Any:
    shots = sorted((res.folder / "screenshots").glob(f"*-step{step:02d}-*.png"))
    assert shots, sorted((res.folder / "screenshots").glob("*.png"))
    return decode_png(shots[-1].read_bytes())


def _received(server: TestServer, route: str) -> int:
    return len([r for r in server.requests if r.route == route])


def _mission(server: TestServer, *paths: str, **pii: Any) -> str:
    return mission([f"goto: {server.url(HOST, p)}" for p in paths], pii=pii_block(on_request="record", **pii))


def test_a_context_less_phone_is_masked_but_does_not_gate_at_the_policy_threshold(
    tmp_path: Path, ev: Path, server: TestServer
) -> None:
    code, res, recs, out = run(tmp_path, _mission(server, "/table", "/done", on_page="block"), ev)
    assert code == 0, out  # 0.4 < 0.5: the policy does not block the page
    assert _received(server, "/done") == 1
    assert findings(recs, "page") == []  # and it is no policy finding
    assert res is not None
    png = _shot(res, 1)
    for x in (30, 100, 400, 600):  # the whole block is painted over in the stored image (text is black too:
        assert pixel(png, x, 90) == MASK, x  # x >= 400 is past the text, white unless masked)
    assert pixel(png, 400, 140) == WHITE  # the plain text's block is not
    assert pixel(png, 400, 40) == WHITE  # nor the header


def test_a_context_less_phone_is_learnt_and_masked_where_it_recurs(
    tmp_path: Path, ev: Path, server: TestServer
) -> None:
    code, res, _recs, out = run(tmp_path, _mission(server, "/table", "/glued", on_page="record"), ev)
    assert code == 0, out
    assert res is not None
    png = _shot(res, 2)
    assert pixel(png, 500, 40) == MASK  # only the known value finds it glued to "ref"
    assert pixel(png, 500, 90) == WHITE


def test_with_a_policy_threshold_of_0_4_the_context_less_phone_blocks(
    tmp_path: Path, ev: Path, server: TestServer
) -> None:
    code, res, recs, out = run(tmp_path, _mission(server, "/table", "/done", on_page="block", threshold=0.4), ev)
    assert code == 3, out
    assert _received(server, "/done") == 0
    page = findings(recs, "page")
    assert [(f["entity_type"], f["score"], f["action"]) for f in page] == [("PHONE_NUMBER", 0.4, "blocked")]
    assert res is not None
    assert pixel(_shot(res, 1), 500, 90) == MASK


def test_a_phone_with_its_context_word_is_a_finding_and_blocks_as_before(
    tmp_path: Path, ev: Path, server: TestServer
) -> None:
    code, res, recs, out = run(tmp_path, _mission(server, "/context", "/done", on_page="block"), ev)
    assert code == 3, out
    assert _received(server, "/done") == 0
    page = findings(recs, "page")
    assert [(f["entity_type"], f["score"], f["action"]) for f in page] == [("PHONE_NUMBER", 0.75, "blocked")]
    assert page[0]["location"]["selector"] == "#cell"
    assert res is not None
    png = _shot(res, 1)
    assert pixel(png, 500, 40) == MASK
    assert pixel(png, 500, 90) == WHITE


def test_an_entity_the_mission_does_not_scan_for_is_still_masked_as_records_redact_it(
    tmp_path: Path, ev: Path, server: TestServer
) -> None:
    # pii.entities narrower than the defaults: the phone gates nothing (not the mission's entity), but
    # records redact every default entity, so the screenshot masks it too.
    text = _mission(server, "/context", "/done", on_page="block", entities=["EMAIL_ADDRESS"])
    code, res, recs, out = run(tmp_path, text, ev)
    assert code == 0, out
    assert _received(server, "/done") == 1
    assert findings(recs, "page") == []
    assert res is not None
    png = _shot(res, 1)
    assert pixel(png, 500, 40) == MASK
    assert pixel(png, 500, 90) == WHITE
