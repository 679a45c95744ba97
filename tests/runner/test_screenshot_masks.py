"""Screenshot masks set as one-time marks (runner/browser/mask_marks.py), proved by the stored pixels.

A page with hundreds of PII blocks (light DOM, an open shadow root, a same-origin iframe) has every
block painted over. A hostile page watching its DOM for the marks (to take them off, or off and on
again around the capture) sees none and gets its screenshot masked (real Chromium, Presidio, the
multi-host server).
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


# The hostile page watches every attribute change anywhere in its document and takes off any
# attribute of Warden's as soon as it appears ("remove"), or takes it off and puts it back a moment
# later ("restore"), and shows what it saw in #saw; its own probe attribute, set at load, proves the
# observer runs (#probe). The marks live in Warden's isolated world (nothing is written into the
# page), so it sees nothing, and the stored screenshot is masked.
HOSTILE = """<p id="probe">probe unseen</p><p id="saw">saw nothing</p><script>
  new MutationObserver((recs) => {
    for (const r of recs) {
      const el = r.target, name = r.attributeName;
      if (name === 'data-probe') { document.getElementById('probe').textContent = 'probe seen'; continue; }
      if (!name || !name.startsWith('data-warden-')) continue;
      document.getElementById('saw').textContent = 'saw ' + name;
      if (!el.hasAttribute(name)) continue;
      el.removeAttribute(name);
      if (MODE === 'restore') setTimeout(() => el.setAttribute(name, ''), 300);
    }
  }).observe(document, {attributes: true, subtree: true});
  document.body.setAttribute('data-probe', '1');
</script>"""


@pytest.mark.parametrize("mode", ["remove", "restore"])
def test_a_page_watching_for_the_marks_sees_none_and_its_screenshot_is_masked(
    tmp_path: Path, ev: Path, server: TestServer, mode: str
) -> None:
    rows = "".join(f'<p style="{ROW};position:absolute;left:0;top:{200 + 20 * i}px">Email: {_email(i)}</p>'
                   for i in range(5))
    server.set_content("/hostile", _page(f"<script>const MODE = '{mode}';</script>" + HOSTILE + rows))
    steps = [f"goto: {server.url(HOST, '/hostile')}",
             'assert_text: {text: "probe seen", selector: "#probe"}',  # the observer runs
             'assert_text: {text: "saw nothing", selector: "#saw"}']   # and saw no mark, two captures later
    text = mission(steps, pii=pii_block(on_page="record", on_request="record"))
    code, res, recs, out = run(tmp_path, text, ev)
    assert code == 0, out
    assert res is not None
    shots = _shots(res)
    assert len(shots) == 3, shots  # every step's screenshot stored
    png = decode_png(shots[0].read_bytes())
    for i in range(5):
        assert pixel(png, 60, 210 + 20 * i) == MASK, i
    assert pixel(png, 60, 320) == WHITE  # below the rows: not the whole page
    assert not [r for r in recs if r["type"] == "exception_record" and r["category"] == "screenshot"]
    assert any(r["type"] == "pii_finding" for r in recs)  # the scan did find them


# Playwright's own mask is an overlay element in the page (x-pw-glass): a page could remove every
# element injected into it ("remove", a MutationObserver on <html> and <body>) or hide it with CSS
# ("hide", !important). Warden paints the masks into the image itself, so neither reaches them.
GLASS = {
    "remove": """<script>
  const kill = (recs) => { for (const r of recs) for (const n of r.addedNodes) if (n.nodeType === 1) n.remove(); };
  new MutationObserver(kill).observe(document.documentElement, {childList: true});
  addEventListener('DOMContentLoaded', () => new MutationObserver(kill).observe(document.body, {childList: true}));
</script>""",
    "hide": "<style>x-pw-glass, x-pw-glass * {display:none!important; visibility:hidden!important}</style>",
}


@pytest.mark.parametrize("mode", sorted(GLASS))
def test_a_page_that_removes_or_hides_an_overlay_still_gets_its_pii_masked_by_pixels(
    tmp_path: Path, ev: Path, server: TestServer, mode: str
) -> None:
    rows = "".join(f'<p style="{ROW}">Email: {_email(i)}</p>' for i in range(5))
    server.set_content("/glass", _page(GLASS[mode] + rows))
    code, res, recs, out = _run(tmp_path, ev, server, "/glass")
    assert code == 0, out
    assert res is not None
    shots = _shots(res)
    assert shots, [r for r in recs if r["type"] == "exception_record"]  # nothing for it to undo: stored
    png = decode_png(shots[-1].read_bytes())
    for i in range(5):  # every PII row is MASK_COLOR across its text
        for x in (5, 60, 200, 400):
            assert pixel(png, x, i * 20 + 10) == MASK, (i, x)
    assert pixel(png, 700, 10) == WHITE  # the paint is where the rows are, not everywhere


def test_a_page_whose_pii_keeps_moving_gets_no_screenshot_stored(tmp_path: Path, ev: Path, server: TestServer) -> None:
    # Every frame moves the rows down a pixel: the rectangles read after the capture are never the
    # ones read before it, so no painted image can be trusted to cover them.
    rows = "".join(f'<p style="{ROW}">Email: {_email(i)}</p>' for i in range(5))
    mover = """<script>
  let n = 0;
  const step = () => { document.body.style.paddingTop = (++n % 400) + 'px'; requestAnimationFrame(step); };
  requestAnimationFrame(step);
</script>"""
    server.set_content("/moving", _page(rows + mover))
    code, res, recs, out = _run(tmp_path, ev, server, "/moving")
    assert code == 0, out
    assert res is not None
    assert _shots(res) == []
    exc = [r for r in recs if r["type"] == "exception_record" and r["category"] == "screenshot"]
    assert exc and "moved during the capture" in exc[0]["message"], exc


def test_an_animated_pii_block_is_masked_where_the_capture_shows_it(
    tmp_path: Path, ev: Path, server: TestServer
) -> None:
    # The capture settles animations (an infinite one is cancelled: the block drops back to its own
    # left:0); measured mid-animation (at left:400px) the paint would miss it. A red block: no red
    # pixel may be left anywhere in the stored image.
    css = ("@keyframes mv{0%{left:400px}0.01%{left:0}100%{left:0}}"
           "#pii{position:absolute;top:0;left:0;animation:mv 1000s infinite;background:#ff0000}")
    block = f'<style>{css}</style><p id="pii" style="{ROW}">Email: {_email(0)}</p>'
    server.set_content("/animated", _page(block))
    code, res, recs, out = _run(tmp_path, ev, server, "/animated")
    assert code == 0, out
    assert res is not None
    shots = _shots(res)
    assert shots, [r for r in recs if r["type"] == "exception_record"]
    png = decode_png(shots[-1].read_bytes())
    width, height, _rows = png
    red = [(x, y) for y in range(0, min(height, 60), 2) for x in range(0, width, 4) if pixel(png, x, y) == (255, 0, 0)]
    assert red == []
    assert pixel(png, 60, 10) == MASK
