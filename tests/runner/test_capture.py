"""Warden's own viewport capture (runner/browser/capture.py) and its PNG writer (png_encode.py).

The writer must give back exactly the pixels it was given (any decoder: Pillow and the tests' own);
the capture must leave the page as it found it (carets, animations, no state left behind), whether
masks were painted or not, and paint only where the masks are.
"""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image
from playwright.sync_api import Page

from runner.browser.capture import RESTORE_JS
from runner.browser.mask_marks import MasksTampered
from runner.browser.mask_paint import MaskRects, paint
from runner.browser.page_reading import evaluate_isolated
from runner.browser.png_encode import encode_png
from runner.browser.screenshots import MASK_COLOR, take_screenshot
from tests.png import decode_png, pixel

MASK = tuple(int(MASK_COLOR[i:i + 2], 16) for i in (1, 3, 5))


def _noise(mode: str, size: tuple[int, int], seed: int) -> Image.Image:
    rnd = random.Random(seed)
    n = size[0] * size[1] * len(mode)
    return Image.frombytes(mode, size, bytes(rnd.getrandbits(8) for _ in range(n)))


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
@pytest.mark.parametrize("size", [(37, 23), (1, 1), (64, 1), (1, 40)])
def test_encode_png_gives_back_exactly_the_pixels(mode: str, size: tuple[int, int]) -> None:
    im = _noise(mode, size, seed=size[0] * 1000 + size[1])
    data = encode_png(im)
    with Image.open(io.BytesIO(data)) as back:
        back.load()
        assert back.mode == mode and back.size == size
        assert back.tobytes() == im.tobytes()
    width, height, rows = decode_png(data)  # the tests' own decoder (every PNG filter)
    assert (width, height) == size
    assert b"".join(rows) == im.tobytes()


def test_encode_png_refuses_other_modes() -> None:
    with pytest.raises(ValueError, match="RGB or RGBA"):
        encode_png(Image.new("L", (4, 4)))


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_paint_covers_the_rectangles_opaquely_and_nothing_else(mode: str) -> None:
    im = _noise(mode, (80, 60), seed=7)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    rects = ((5, 5, 20, 12), (70, 0, 80, 60), (10, 50, 11, 51))
    out = paint(buf.getvalue(), MaskRects(rects=rects, size=(80, 60), scroll=(0.0, 0.0)), MASK_COLOR, full_page=False)
    with Image.open(io.BytesIO(out)) as painted:
        painted.load()
        assert painted.mode == mode
        src, dst = im.load(), painted.load()
        assert src is not None and dst is not None
        for y in range(60):
            for x in range(80):
                inside = any(x0 <= x < x1 and y0 <= y < y1 for x0, y0, x1, y1 in rects)
                want = (*MASK, 255) if mode == "RGBA" else MASK
                if inside:
                    assert dst[x, y] == want, (x, y)
                else:
                    assert dst[x, y] == src[x, y], (x, y)


def test_paint_without_rectangles_returns_the_capture_itself_but_still_checks_its_size() -> None:
    # No pixel to paint: no decode and re-encode (25 ms a shot); a wrong-sized image still refused.
    buf = io.BytesIO()
    _noise("RGB", (80, 60), seed=3).save(buf, format="PNG")
    png = buf.getvalue()
    assert paint(png, MaskRects(rects=(), size=(80, 60), scroll=(0.0, 0.0)), MASK_COLOR, full_page=False) is png
    with pytest.raises(MasksTampered):
        paint(png, MaskRects(rects=(), size=(120, 60), scroll=(0.0, 0.0)), MASK_COLOR, full_page=False)


PAGE = """<!doctype html><html><body style="margin:0;background:#fff">
<style>@keyframes spin{from{transform:rotate(0)}to{transform:rotate(360deg)}}
#spin{width:40px;height:40px;background:#00f;animation:spin 3s linear infinite}
#secret{display:block;width:300px;height:40px;border:0;background:#fff}</style>
<input id="field" style="caret-color: red" value="typed">
<input id="secret" value="hunter2">
<div id="spin"></div></body></html>"""

STATE = """() => {
  const a = document.getAnimations()[0];
  return [document.getElementById('field').style.getPropertyValue('caret-color'),
          document.getElementById('secret').getAttribute('style'), a ? a.playState : 'none', document.activeElement.id];
}"""


@pytest.mark.browser
@pytest.mark.parametrize("masks", [[], ["#secret"], ["#nothing-matches"]])
def test_the_capture_leaves_the_page_as_it_found_it(page: Page, masks: list[str]) -> None:
    page.set_content(PAGE)
    page.focus("#field")
    before = page.evaluate(STATE)
    assert before == ["red", None, "running", "field"]
    png = decode_png(take_screenshot(page, mask_selectors=masks))
    viewport = page.viewport_size
    assert viewport is not None
    assert png[:2] == (viewport["width"], viewport["height"])
    after = page.evaluate(STATE)
    assert after[0] == "red" and after[2:] == ["running", "field"]  # caret colour and animation back
    assert after[1] in (None, "")  # Playwright's own capture leaves an empty style attribute too
    # Nothing of the capture is left in Warden's isolated world: a restore finds nothing to undo.
    assert evaluate_isolated(page, RESTORE_JS, {"shot": "any"}) is False
    box = page.locator("#secret").bounding_box()
    assert box is not None
    probe = (int(box["x"] + 20), int(box["y"] + box["height"] / 2))
    if masks == ["#secret"]:
        assert pixel(png, *probe) == MASK
    else:
        assert pixel(png, *probe) != MASK


@pytest.mark.browser
def test_a_capture_that_is_not_the_page_measured_is_never_returned(page: Page, monkeypatch: pytest.MonkeyPatch) -> None:
    """The masks are painted in their own thread while the page is measured again: the painter's
    refusal (here: a capture of another size than the page measured) still reaches the caller, on
    every attempt, and the page is left as it was found."""
    import runner.browser.mask_paint as mask_paint
    import runner.browser.screenshots as screenshots

    page.set_content(PAGE)
    page.focus("#field")
    real_paint = mask_paint.paint
    seen: list[str] = []

    def shrunk(png: bytes, masks: MaskRects, color: str, *, full_page: bool) -> bytes:
        import threading

        seen.append(threading.current_thread().name)
        small = MaskRects(rects=masks.rects, size=(masks.size[0] // 2, masks.size[1] // 2), scroll=masks.scroll)
        return real_paint(png, small, color, full_page=full_page)

    monkeypatch.setattr(screenshots, "paint", shrunk)
    with pytest.raises(MasksTampered, match="not the page the PII masks were measured on"):
        take_screenshot(page, mask_selectors=["#secret"])
    assert len(seen) == screenshots.CAPTURE_ATTEMPTS and all(n.startswith("warden-paint") for n in seen)
    assert page.evaluate(STATE)[2:] == ["running", "field"]
    assert evaluate_isolated(page, RESTORE_JS, {"shot": "any"}) is False


@pytest.mark.browser
def test_a_page_that_goes_away_during_the_second_reading_gives_no_image(
    page: Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The painter has the painted image ready, but the page navigated (the second reading failed):
    no image comes back, the marks are taken off, and the painted image is dropped."""
    from playwright.sync_api import Error as PlaywrightError

    import runner.browser.screenshots as screenshots
    from runner.browser.driver import ActionFailed

    page.set_content(PAGE)
    painted: list[bytes] = []
    real_paint = screenshots.paint

    def paint(png: bytes, masks: MaskRects, color: str, *, full_page: bool) -> bytes:
        painted.append(real_paint(png, masks, color, full_page=full_page))
        return painted[-1]

    def gone(*args: object, **kwargs: object) -> MaskRects:
        raise PlaywrightError("Execution context was destroyed")

    monkeypatch.setattr(screenshots, "paint", paint)
    monkeypatch.setattr(screenshots, "measure_and_check", gone)
    with pytest.raises(ActionFailed, match="screenshot failed"):
        take_screenshot(page, mask_selectors=["#secret"])
    screenshots._painter().submit(lambda: None).result()  # the painter has finished what it was given
    assert painted, "the painter never ran: this test would not see an image escape"
    assert page.evaluate("() => document.querySelectorAll('*').length") == page.evaluate(
        "() => Array.from(document.querySelectorAll('*')).filter(e => "
        "!Array.from(e.attributes).some(a => a.name.startsWith('data-warden-mask-'))).length"
    ), "a mask mark was left on the page"
