"""The faster page reading and mask marking agree exactly with the scripts they replaced, and the
functions kept in Warden's isolated world are out of the page's reach.

The oracle is the session-8 version of each script (``oracle_scripts``): on a page with every kind
of content the reading covers (inline runs, display: contents, hidden and transparent text, fields,
password, select, attributes, duplicate ids, nested open shadow roots, a same-origin iframe, a
table of cells) and on seeded random pages, the text read is the same JSON, and the marks land on
the same elements, in the same frame groups, for the page's selectors and for hand-written ones.
"""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from playwright.sync_api import Page

from runner.browser.mask_marks import CHECK_JS, MARK_JS, MasksTampered, mark_args
from runner.browser.mask_paint import MARK_AND_MEASURE_JS, RECTS_JS, MaskRects, _mask_rects
from runner.browser.page_reading import evaluate_isolated, read_text_blocks
from runner.browser.page_scripts import (
    FRAME_SEP,
    MAX_SCAN_MS,
    MAX_TEXT_BLOCKS,
    MAX_TEXT_CHARS,
    TEXT_BLOCKS_IMPL,
    TEXT_BLOCKS_JS,
    kept,
)
from tests.runner.browser.oracle_scripts import OLD_MARK_JS, OLD_RECTS_JS, OLD_TEXT_BLOCKS_JS

LIMITS = {"maxBlocks": MAX_TEXT_BLOCKS, "maxChars": MAX_TEXT_CHARS, "maxMs": MAX_SCAN_MS, "sep": FRAME_SEP}

RICH = """<!doctype html><html><body>
<p>Phone: <b>212 555 0100</b> and <i>more <a href="#">link</a></i></p>
<div id="dup">first</div><div id="dup">second</div>
<div id="solo"><span>inline text</span><div style="display:contents">contents <em>text</em></div> tail</div>
<p style="visibility:hidden">hidden text</p><p style="opacity:0">transparent text</p>
<p style="display:none">none text</p><div style="opacity:0"><p>child of transparent</p></div>
<script>var x = "script text";</script><style>.x { color: red }</style><noscript>noscript text</noscript>
<label for="n">Name</label><input id="n" value="Ada Archer"><input name="pw" type="password" value="hunter2">
<input type="hidden" value="hidden value"><input type="checkbox" value="on" checked>
<select aria-label="Plan"><option>Team</option><option selected>Pro</option></select>
<textarea name="notes">notes text</textarea><input placeholder="Postcode" value="">
<img alt="alt text" src="data:," width="10" height="10"><span title="  title text ">t</span>
<span aria-label="aria text" style="display:none">gone</span>
<table><tr><td>c1</td><td>c2 <b>bold</b></td></tr><tr><td>c3</td><td id="c4">c4</td></tr></table>
<ul><li>one</li><li>two <span style="display:block">block in li</span> after</li></ul>
<div id="host"></div>
<iframe id="f" srcdoc="<p id='inner'>frame text <span>x</span></p><div><p>two</p><input value='framed'></div>">
</iframe>
<script>
  const r = document.getElementById('host').attachShadow({mode: 'open'});
  r.innerHTML = '<p>shadow text</p><span id="in2"></span><div><p title="shadow title">deep</p></div>';
  r.getElementById('in2').attachShadow({mode: 'open'}).innerHTML = '<b>nested shadow</b><input value="sv">';
</script>
</body></html>"""

TAGS = ["div", "p", "span", "b", "section", "li", "em", "td"]
STYLES = ["", "", "", "display:inline", "display:block", "display:none", "display:contents", "display:inline-block",
          "visibility:hidden", "opacity:0", "display:flex", "display:table-cell"]


def _random_page(seed: int) -> str:
    rnd = random.Random(seed)

    def node(depth: int) -> str:
        if depth > 4 or rnd.random() < 0.3:
            return rnd.choice(["text", "  ", f"Phone 212 555 01{rnd.randint(0, 99):02d}", "a b", "\n"])
        tag = rnd.choice(TAGS)
        attrs = f' style="{rnd.choice(STYLES)}"'
        if rnd.random() < 0.15:
            attrs += f' id="i{rnd.randint(0, 5)}"'
        if rnd.random() < 0.1:
            attrs += f' title="t{rnd.randint(0, 9)}"'
        inner = "".join(node(depth + 1) for _ in range(rnd.randint(0, 4)))
        return f"<{tag}{attrs}>{inner}</{tag}>"

    return "<!doctype html><html><body>" + "".join(node(0) for _ in range(30)) + "</body></html>"


def _table(rows: int) -> str:
    cells = "".join(f"<tr><td>Ada {i}</td><td>ada{i}@example.com</td><td>(212) 555-01{i % 100:02d}</td></tr>"
                    for i in range(rows))
    return f'<!doctype html><html><body><section id="customers"><table>{cells}</table></section></body></html>'


def _load(page: Page, html: str) -> None:
    page.set_content(html)
    if "srcdoc" in html:
        page.frame_locator("#f").locator("#inner").wait_for()


def _both_readings(page: Page, limits: dict[str, Any]) -> tuple[Any, Any, Any]:
    old = evaluate_isolated(page, OLD_TEXT_BLOCKS_JS, limits)
    new = evaluate_isolated(page, TEXT_BLOCKS_JS, limits)
    again = evaluate_isolated(page, TEXT_BLOCKS_JS, limits)  # the kept function, second call
    return old, new, again


@pytest.mark.browser
@pytest.mark.parametrize("html", [RICH, _table(150), *(_random_page(s) for s in range(6))],
                         ids=["rich", "table", *(f"random{s}" for s in range(6))])
def test_the_text_read_is_the_same_as_before(page: Page, html: str) -> None:
    _load(page, html)
    old, new, again = _both_readings(page, LIMITS)
    assert new == old
    assert again == old


@pytest.mark.browser
@pytest.mark.parametrize("limit", [{"maxBlocks": 3}, {"maxChars": 40}, {"maxMs": -1}])
def test_over_budget_is_the_same_as_before(page: Page, limit: dict[str, int]) -> None:
    # maxMs -1: over at the first clock reading (each block before; every 16th and at the end now)
    _load(page, RICH)
    old, new, again = _both_readings(page, {**LIMITS, **limit})
    assert '"complete":false' in old
    assert new == old == again


# Each marked element (and each frame element carrying a frame mark) as its index in the composed tree.
MARKED = r"""
() => {
  const ids = new Map();
  let i = 0;
  const number = (root) => {
    for (const e of root.querySelectorAll('*')) {
      ids.set(e, i++);
      if (e.shadowRoot) number(e.shadowRoot);
      let inner = null;
      try { inner = e.contentDocument; } catch (x) { inner = null; }
      if (inner) number(inner);
    }
  };
  number(document);
  const s = globalThis.__wardenMasks;
  return {els: s.els.map((e) => ids.get(e)).sort((a, b) => a - b),
          frames: s.frames.map(([fe, id]) => [ids.get(fe), id])};
}
"""

ODD = ["input[type=password i]", "main p", "#dup", "#dup > b:nth-of-type(1)", "html", "#nope > div:nth-of-type(1)",
       "html > body:nth-of-type(1) > p:nth-of-type(1)", "p", "#host > p:nth-of-type(1)",
       "#host > span:nth-of-type(1) > b:nth-of-type(1)", "#host > div:nth-of-type(1) > p:nth-of-type(1)",
       "#f |> #inner", "#f |> html > body:nth-of-type(1) > div:nth-of-type(1) > p:nth-of-type(1)", "#f |> p",
       "iframe |> input", "#solo > span:nth-of-type(1) > i:nth-of-type(1)", "td:nth-of-type(2)",
       "div > p > b:nth-of-type(1)", "ul li > span:nth-of-type(1)", "#f |> div > p:nth-of-type(1)",
       "tr > td:nth-of-type(2)", "#host > div:nth-of-type(1) > p:nth-of-type(9)",
       "html > body:nth-of-type(1) > table:nth-of-type(1) > tbody:nth-of-type(1) > tr:nth-of-type(2)"
       " > td:nth-of-type(2)"]


def _marked(page: Page, script: str, selectors: list[str]) -> tuple[Any, Any]:
    arg = mark_args(selectors)
    if script == OLD_MARK_JS:  # the session-8 script also set one-time attributes (the new one writes nothing)
        arg = {**arg, "attr": "data-warden-mask-" + arg["nonce"], "frameAttr": "data-warden-frame-" + arg["nonce"]}
    res = evaluate_isolated(page, script, arg)
    assert isinstance(res, dict) and not res.get("error"), res
    marked = evaluate_isolated(page, MARKED, None)
    assert evaluate_isolated(page, CHECK_JS, {"nonce": arg["nonce"]})["intact"]
    return (res["count"], res["groups"]), marked


@pytest.mark.browser
@pytest.mark.parametrize("html", [RICH, _table(150), _random_page(3)], ids=["rich", "table", "random"])
def test_the_marks_land_on_the_same_elements_as_before(page: Page, html: str) -> None:
    _load(page, html)
    selectors = [b.selector for b in read_text_blocks(page)] + ODD
    old = _marked(page, OLD_MARK_JS, selectors)
    assert old[0][0] > len(ODD)  # the page's blocks were found
    assert _marked(page, MARK_JS, selectors) == old
    assert _marked(page, "(o) => " + kept(MARK_JS) + "(o)", selectors) == old
    assert _marked(page, "(o) => " + kept(MARK_JS) + "(o)", selectors) == old  # kept, second call


def _old_pixels(raw: dict[str, Any]) -> list[int]:
    """The session-8 conversion (in Python then) of OLD_RECTS_JS's CSS-px rectangles to image pixels."""
    dpr = float(raw["dpr"])
    return [v for x0, y0, x1, y1 in raw["rects"]
            for v in (math.floor(x0 * dpr), math.floor(y0 * dpr), math.ceil(x1 * dpr), math.ceil(y1 * dpr))]


@pytest.mark.browser
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("html", [RICH, _table(150)], ids=["rich", "table"])
def test_the_rectangles_are_the_same_as_before(page: Page, html: str, full: bool) -> None:
    _load(page, html.replace("<body>", '<body style="margin:7px;zoom:1.25">', 1))
    page.mouse.wheel(0, 130)
    selectors = [b.selector for b in read_text_blocks(page)] + ODD
    arg = mark_args(selectors)
    assert evaluate_isolated(page, MARK_JS, arg)["count"] > len(ODD)
    try:
        for _ in range(2):  # the second time through the kept function
            old = evaluate_isolated(page, OLD_RECTS_JS, {"nonce": arg["nonce"], "full": full})
            new = evaluate_isolated(page, "(o) => " + kept(RECTS_JS) + "(o)", {"nonce": arg["nonce"], "full": full})
            assert len(old["rects"]) > 10
            assert new["px"] == _old_pixels(old)
            keys = ("dpr", "w", "h", "sx", "sy")
            assert {k: new[k] for k in keys} == {k: old[k] for k in keys}
    finally:
        evaluate_isolated(page, CHECK_JS, {"nonce": arg["nonce"]})


@pytest.mark.browser
def test_the_page_cannot_reach_or_replace_the_kept_functions(page: Page) -> None:
    # The page plants what a kept function's key would be, in its own (main) world, and as a setter.
    key = kept(TEXT_BLOCKS_IMPL).split(" ||", 1)[0].removeprefix("(globalThis.")
    empty = "() => JSON.stringify({complete: true, blocks: [], heads: []})"
    page.set_content(RICH.replace("<body>", "<body><script>"
                                  f"Object.defineProperty(window, '{key}', {{get() {{ return {empty}; }},"
                                  " set() { window.hit = 1; }, configurable: false});"
                                  "</script>", 1))
    page.frame_locator("#f").locator("#inner").wait_for()
    before = evaluate_isolated(page, OLD_TEXT_BLOCKS_JS, LIMITS)
    assert evaluate_isolated(page, TEXT_BLOCKS_JS, LIMITS) == before
    assert len(read_text_blocks(page)) > 10
    mark_arg = {**mark_args(["p"]), "full": False}
    assert evaluate_isolated(page, MARK_AND_MEASURE_JS, mark_arg)["mark"]["count"] > 0
    evaluate_isolated(page, CHECK_JS, {"nonce": mark_arg["nonce"]})
    kept_here = evaluate_isolated(page, "() => Object.keys(globalThis).filter((k) => k.startsWith('__warden_'))", None)
    assert len(kept_here) >= 2
    # Nothing of Warden's leaked into the page's world: only what the page planted itself.
    in_page = page.evaluate("() => Object.getOwnPropertyNames(window).filter((k) => k.startsWith('__warden_'))")
    assert in_page == [key]
    assert page.evaluate("() => window.hit") is None


@pytest.mark.browser
def test_the_page_replacing_its_json_changes_neither_the_arguments_nor_the_read(page: Page) -> None:
    """A script's argument travels as JSON text parsed in Warden's isolated world: a page that
    replaces ``JSON.parse``/``stringify`` (or the ``JSON`` global) in its own world changes neither
    the selectors Warden marks nor the text it reads, and never sees the argument."""
    page.set_content(RICH)
    page.frame_locator("#f").locator("#inner").wait_for()
    before = evaluate_isolated(page, OLD_TEXT_BLOCKS_JS, LIMITS)
    page.evaluate("""() => {
        window.seen = [];
        const parse = JSON.parse;
        JSON.parse = (t) => { window.seen.push(String(t)); return {selectors: ['#nothing'], nonce: 'x'}; };
        JSON.stringify = () => '{"complete":true,"blocks":[],"heads":[]}';
        window.JSON = {parse: JSON.parse, stringify: JSON.stringify, original: parse};
    }""")
    assert evaluate_isolated(page, TEXT_BLOCKS_JS, LIMITS) == before
    arg = {**mark_args(["#c4", "p"]), "full": False}
    marked = evaluate_isolated(page, MARK_AND_MEASURE_JS, arg)
    evaluate_isolated(page, CHECK_JS, {"nonce": arg["nonce"]})
    old_arg = {**mark_args(["#c4", "p"]), "full": False}
    old = evaluate_isolated(page, OLD_MARK_JS, old_arg)
    evaluate_isolated(page, CHECK_JS, {"nonce": old_arg["nonce"]})
    assert marked["mark"]["count"] == old["count"] > 1
    assert page.evaluate("() => window.seen") == []  # the page never saw an argument


def test_mask_rectangles_must_be_whole_pixels_in_fours() -> None:
    good = {"px": [0, 1, 10, 11, 5, 5, 6.0, 7], "dpr": 1, "w": 20, "h": 20, "sx": 0, "sy": 0}
    assert _mask_rects(good) == MaskRects(rects=((0, 1, 10, 11), (5, 5, 6, 7)), size=(20, 20), scroll=(0.0, 0.0))
    for px in ([0, 1, 10], [0, 1, 10, 11.5], [0, 1, 10, None], [0, 1, 10, True], [0, 1, 10, "11"]):
        with pytest.raises(MasksTampered):
            _mask_rects({**good, "px": px})
    for raw in (None, {"error": "the marks are gone"}, {**good, "px": None}, {"rects": [[0, 0, 1, 1]]}):
        with pytest.raises(MasksTampered):
            _mask_rects(raw)


@pytest.mark.browser
def test_a_small_page_over_the_time_budget_is_still_over(page: Page) -> None:
    # Fewer than 16 clock occasions: the reading's last look at the clock still fails it.
    page.set_content("<!doctype html><html><body><p>one</p><p title='t'>two</p></body></html>")
    old, new, again = _both_readings(page, {**LIMITS, "maxMs": -1})
    assert '"complete":false' in new
    assert new == old == again
