"""Screenshot masks set as one-time marks (runner/browser/mask_marks.py), proved by the stored pixels.

A page with hundreds of PII blocks (light DOM, an open shadow root, a same-origin iframe) has every
block painted over. A hostile page that takes the marks off (a MutationObserver removing them, or
removing and putting them back around the capture) gets no stored screenshot: the image is
discarded and the step records why (real Chromium, Presidio, the multi-host server).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.browser.playwright_driver import MASK_COLOR
from tests.guards.pii_support import EMAIL, assert_no_canaries, mission, pii_block, run, serve
from tests.png import decode_png, pixel
from tests.server import TestServer

pytestmark = pytest.mark.browser

MASK = tuple(int(MASK_COLOR[i:i + 2], 16) for i in (1, 3, 5))
WHITE = (255, 255, 255)
HOST = "allowed.localhost"
ROWS = 300
ROW = "margin:0;width:560px;height:20px;font:14px sans-serif;white-space:nowrap"


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


def _page(body: str) -> str:
    return f'<!doctype html><html><body style="margin:0;background:#ffffff">{body}</body></html>'


def _email(i: int) -> str:
    return f"customer{i}.{EMAIL[0].value}"


def _shots(res: Any) -> list[Path]:
    return sorted((res.folder / "screenshots").glob("*.png"))


def _run(tmp_path: Path, ev: Path, server: TestServer, path: str) -> tuple[int, Any, list[dict[str, Any]], str]:
    text = mission([f"goto: {server.url(HOST, path)}"], pii=pii_block(on_page="record", on_request="record"))
    return run(tmp_path, text, ev)


# Rows 0..ROWS-1 in the document (each its own nth-of-type block), then a shadow root and an iframe.
MANY = "".join(f'<p style="{ROW}">Email: {_email(i)}</p>' for i in range(ROWS)) + f"""
<div id="host" style="position:absolute;left:700px;top:0"></div>
<iframe id="inner" src="/masks-inner" style="position:absolute;left:700px;top:100px;width:500px;height:60px;border:0">
</iframe>
<script>
  document.getElementById('host').attachShadow({{mode: 'open'}}).innerHTML =
    '<div><p style="{ROW}">Email: {_email(ROWS)}</p></div>';
</script>"""
INNER = _page(f'<p style="{ROW}">Email: {_email(ROWS + 1)}</p>')


def test_hundreds_of_pii_blocks_in_document_shadow_root_and_iframe_are_all_masked(
    tmp_path: Path, ev: Path, server: TestServer
) -> None:
    server.set_content("/masks-inner", INNER)
    server.set_content("/many", _page(MANY))
    code, res, _recs, out = _run(tmp_path, ev, server, "/many")
    assert code == 0, out
    assert res is not None
    png = decode_png(_shots(res)[-1].read_bytes())
    visible_rows = 800 // 20  # the viewport is 800 px high: rows below it are not in the image
    for i in range(visible_rows):
        assert pixel(png, 60, i * 20 + 10) == MASK, i
    assert pixel(png, 720, 10) == MASK  # the shadow root's row
    assert pixel(png, 720, 110) == MASK  # the iframe's row
    assert pixel(png, 1200, 600) == WHITE  # and not the whole page


# The hostile page watches every attribute change; a Warden mask mark is taken off as soon as it
# appears ("remove"), or taken off and put back a moment later ("restore": the count after the
# capture is right again, the observer of the marks still saw it).
HOSTILE = """<script>
  new MutationObserver((recs) => {
    for (const r of recs) {
      if (!r.attributeName || !r.attributeName.startsWith('data-warden-mask-')) continue;
      const el = r.target, name = r.attributeName;
      if (!el.hasAttribute(name)) continue;
      el.removeAttribute(name);
      if (MODE === 'restore') setTimeout(() => el.setAttribute(name, ''), 300);
    }
  }).observe(document, {attributes: true, subtree: true});
</script>"""


@pytest.mark.parametrize("mode", ["remove", "restore"])
def test_a_page_that_takes_the_marks_off_gets_no_screenshot_stored(
    tmp_path: Path, ev: Path, server: TestServer, mode: str
) -> None:
    rows = "".join(f'<p style="{ROW}">Email: {_email(i)}</p>' for i in range(5))
    server.set_content("/hostile", _page(f"<script>const MODE = '{mode}';</script>" + HOSTILE + rows))
    code, res, recs, out = _run(tmp_path, ev, server, "/hostile")
    assert code == 0, out  # on_page: record goes on, without the image
    assert res is not None
    assert _shots(res) == []  # nothing with unmasked PII was stored
    exc = [r for r in recs if r["type"] == "exception_record" and r["category"] == "screenshot"]
    assert exc and "screenshot discarded" in exc[0]["message"], exc
    assert any(r["type"] == "pii_finding" or "finding" in r["type"] for r in recs)  # the scan did find them
