"""Screenshot masks painted into the image by Warden, not drawn in the page.

Why: Playwright's ``mask`` is an overlay element (``x-pw-glass``) inside the page's DOM during the
capture; a hostile page can remove it (a MutationObserver) or hide it (page CSS ``!important``) and
have its PII captured in clear. Here the marked elements' rectangles are read in Warden's isolated
world (the page's scripts cannot redefine what it calls): ``getBoundingClientRect`` united with the
box of the element's own contents (text overflowing the element is covered too), offset through
same-origin frames (each frame's content box clips what is inside it; a transformed frame, or one
that cannot be entered, is masked whole), clipped to the viewport, or in page coordinates for a
full-page capture. The capture is taken without Playwright's mask (in memory only) and the
rectangles are painted ``MASK_COLOR`` onto it here; the unmasked image is never written anywhere.
The rectangles are read again after the capture: if anything moved the image is discarded.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page

from runner.browser.capture import FONTS_READY, PREPARE_FN, RESTORE_FN
from runner.browser.driver import ActionFailed
from runner.browser.mask_marks import (
    CHECK_JS,
    MARK_JS,
    Marks,
    MasksTampered,
    check_marks,
    mark_args,
    marks_intact,
    marks_set,
)
from runner.browser.page_reading import evaluate_isolated
from runner.browser.page_scripts import kept
from runner.browser.png_encode import encode_png

# The rectangles of every element marked by mask_marks.MARK_JS, in the coordinates of the capture (the
# viewport, or the page: ``full``), as image pixels: CSS px times the device pixel ratio, outward to whole
# pixels (floor, ceil), flat (x0, y0, x1, y1, x0, ...: a fifth of the JSON of nested floats). Returns
# {px, dpr, w, h, sx, sy} (w, h in CSS px) or {error}.
RECTS_JS = r"""
(o) => {
  const s = globalThis.__wardenMasks;
  if (!s || s.nonce !== o.nonce) return {error: 'the marks are gone'};
  // Animations as Playwright's animations="disabled" leaves them for the capture, BEFORE measuring:
  // finite ones finished, infinite ones cancelled (played again after the second reading). Else
  // the capture would show an animated element where it was not measured.
  const docs = new Set([document]);
  for (const fes of s.fes.values()) for (const fe of fes) {
    try { if (fe.contentDocument) docs.add(fe.contentDocument); } catch (e) { /* masked whole */ }
  }
  if (o.freeze) {
    s.cancelled = [];
    for (const d of docs) for (const a of d.getAnimations()) {
      if (a.playState === 'finished' || a.playState === 'idle') continue;
      try {
        if (a.effect && a.effect.getComputedTiming().endTime !== Infinity) { a.finish(); continue; }
      } catch (e) {}
      a.cancel();
      s.cancelled.push(a);
    }
  }
  const de = document.documentElement;
  const sx = o.full ? scrollX : 0, sy = o.full ? scrollY : 0;
  const W = o.full ? Math.max(de.scrollWidth, innerWidth) : innerWidth;
  const H = o.full ? Math.max(de.scrollHeight, innerHeight) : innerHeight;
  const boxes = new Map();  // frame element -> [content box in its parent's viewport, whole?]
  const box = (fe) => {
    let b = boxes.get(fe);
    if (b) return b;
    const r = fe.getBoundingClientRect(), cs = getComputedStyle(fe);
    const px = (v) => parseFloat(v) || 0;
    const l = r.left + fe.clientLeft + px(cs.paddingLeft), t = r.top + fe.clientTop + px(cs.paddingTop);
    // A transformed frame's inside does not map 1:1 onto the page: mask it whole.
    const whole = Math.abs(r.width - fe.offsetWidth) > 0.5 || Math.abs(r.height - fe.offsetHeight) > 0.5;
    b = [[l, t, l + fe.clientWidth - px(cs.paddingLeft) - px(cs.paddingRight),
          t + fe.clientHeight - px(cs.paddingTop) - px(cs.paddingBottom)], whole, r];
    boxes.set(fe, b);
    return b;
  };
  const cut = (a, b) => [Math.max(a[0], b[0]), Math.max(a[1], b[1]), Math.min(a[2], b[2]), Math.min(a[3], b[3])];
  const px = [], dpr = devicePixelRatio;
  const ranges = new Map();  // document -> one Range, moved onto each element in turn (not one per element)
  // By index over MARK_JS's arrays (each element's frames, whether it is a frame); corners as scalars.
  const els = s.els, fesList = s.fesList, isFrame = s.isFrame;
  for (let i = 0; i < els.length; i++) {
    const el = els[i], fes = fesList[i];
    let ox = 0, oy = 0, clip = null, r = null;  // clip null: none (the top document's element)
    for (let j = 0; j < fes.length; j++) {
      const [b, whole, fr] = box(fes[j]);
      if (whole) { r = [fr.left + ox, fr.top + oy, fr.right + ox, fr.bottom + oy]; break; }
      const c = [b[0] + ox, b[1] + oy, b[2] + ox, b[3] + oy];
      clip = cut(clip || [-Infinity, -Infinity, Infinity, Infinity], c);
      ox = c[0]; oy = c[1];
    }
    if (r === null) {
      const e = el.getBoundingClientRect();
      let x0 = e.left, y0 = e.top, x1 = e.right, y1 = e.bottom;
      if (!isFrame[i]) {
        const doc = el.ownerDocument;
        let range = ranges.get(doc);
        if (!range) { range = doc.createRange(); ranges.set(doc, range); }
        range.selectNodeContents(el);
        const c = range.getBoundingClientRect();
        if (c.width > 0 || c.height > 0) {
          if (e.width > 0 || e.height > 0) {
            x0 = Math.min(x0, c.left); y0 = Math.min(y0, c.top);
            x1 = Math.max(x1, c.right); y1 = Math.max(y1, c.bottom);
          } else { x0 = c.left; y0 = c.top; x1 = c.right; y1 = c.bottom; }
        }
      }
      r = clip ? cut([x0 + ox, y0 + oy, x1 + ox, y1 + oy], clip) : [x0, y0, x1, y1];
    }
    r = cut([r[0] + sx, r[1] + sy, r[2] + sx, r[3] + sy], [0, 0, W, H]);
    if (r[2] > r[0] && r[3] > r[1]) {
      px.push(Math.floor(r[0] * dpr), Math.floor(r[1] * dpr), Math.ceil(r[2] * dpr), Math.ceil(r[3] * dpr));
    }
  }
  const out = {px, dpr, w: W, h: H, sx: scrollX, sy: scrollY};
  if (o.replay) for (const a of (s.cancelled || [])) { try { a.play(); } catch (e) {} }
  return out;
}
"""


# Every script below calls functions kept in the isolated world (``page_scripts.kept``: defined once per
# document, so V8 keeps their optimized code instead of running a fresh closure cold on every capture).
_MARK, _RECTS, _CHECK = kept(MARK_JS), kept(RECTS_JS), kept(CHECK_JS)
# One round trip before the capture: the marks set (``MARK_JS``), then, if any element carries one, the
# rectangles read (``RECTS_JS``, animations settled first) in the same synchronous task: the page cannot
# run in between. Nothing marked: the marks' state is dropped again (``CHECK_JS``).
_MARK_AND_MEASURE = kept(
    "(o) => {\n  const mark = " + _MARK + "(o);\n"
    "  if (!mark || mark.error) return {mark};\n"
    "  if (!mark.count) return {mark, check: " + _CHECK + "({nonce: o.nonce})};\n"
    "  const rects = " + _RECTS + "({nonce: o.nonce, full: o.full, freeze: true, replay: false});\n"
    "  return {mark, rects};\n}"
)
MARK_AND_MEASURE_JS = "(o) => " + _MARK_AND_MEASURE + "(o)"
# One round trip after the capture: the rectangles read again (animations played again), then the marks
# checked and taken off (``CHECK_JS``), whatever the reading gave.
_MEASURE_AND_CHECK = kept(
    "(o) => {\n  let rects;\n"
    "  try {\n"
    "    rects = " + _RECTS + "({nonce: o.nonce, full: o.full, freeze: false, replay: true});\n"
    "  } catch (e) {\n"
    "    rects = {error: 'the masks could not be measured: ' + String(e && e.name || e)};\n"
    "  }\n"
    "  return {rects, check: " + _CHECK + "({nonce: o.nonce})};\n}"
)
MEASURE_AND_CHECK_JS = "(o) => " + _MEASURE_AND_CHECK + "(o)"
# The same two round trips around Warden's own capture (``capture``): the page prepared (carets,
# animations, fonts awaited) before the marks are set; the preparation undone after the check.
PREPARED_MARK_AND_MEASURE_JS = (
    "(o) => {\n  " + PREPARE_FN + "(o);\n  return " + FONTS_READY + ".then(() => " + _MARK_AND_MEASURE + "(o));\n}"
)
MEASURE_CHECK_RESTORE_JS = (
    "(o) => {\n  try {\n    return " + _MEASURE_AND_CHECK + "(o);\n  } finally {\n    " + RESTORE_FN + "(o);\n  }\n}"
)


@dataclass(frozen=True)
class MaskRects:
    """Where to paint, in image pixels, and what the page looked like (scroll, size) when read."""

    rects: tuple[tuple[int, int, int, int], ...]
    size: tuple[int, int]
    scroll: tuple[float, float]


def mark_and_measure(
    page: Page, selectors: Sequence[str], *, full_page: bool, shot: dict[str, Any] | None = None
) -> tuple[Marks, MaskRects | None]:
    """Mark ``selectors`` and read their rectangles, one round trip (``MARK_AND_MEASURE_JS``); None
    when no element matches (then no mark is left). ``ActionFailed`` / ``MasksTampered`` when it cannot.

    ``shot`` (``capture.shot_args``): the page is first prepared for Warden's own capture in the same
    round trip (``capture.PREPARE_BODY``, fonts awaited), then marked and measured in one task."""
    arg = mark_args(selectors)
    try:
        if shot is None:
            raw: Any = evaluate_isolated(page, MARK_AND_MEASURE_JS, {**arg, "full": full_page})
        else:
            raw = evaluate_isolated(page, PREPARED_MARK_AND_MEASURE_JS, {**arg, **shot, "full": full_page},
                                    await_promise=True)
        marks = marks_set(raw.get("mark") if isinstance(raw, dict) else None, arg["nonce"])
        if marks.count == 0:
            marks_intact(raw.get("check"), marks)
            return marks, None
        return marks, _mask_rects(raw.get("rects"))
    except (PlaywrightError, ActionFailed):
        with contextlib.suppress(PlaywrightError, ActionFailed):  # take whatever marks were set off again
            check_marks(page, Marks(nonce=arg["nonce"], count=0))
        raise


def measure_and_check(page: Page, marks: Marks, *, full_page: bool, shot: dict[str, Any] | None = None) -> MaskRects:
    """After the capture: the rectangles again and the marks checked and removed, one round trip
    (``MEASURE_AND_CHECK_JS``); ``MasksTampered`` when a mark was touched or the reading failed.
    ``shot``: the preparation of ``mark_and_measure`` is undone in the same round trip, whatever happens."""
    arg = {"nonce": marks.nonce, "full": full_page}
    if shot is None:
        raw: Any = evaluate_isolated(page, MEASURE_AND_CHECK_JS, arg)
    else:
        raw = evaluate_isolated(page, MEASURE_CHECK_RESTORE_JS, {**arg, **shot})
    if not isinstance(raw, dict):
        raise MasksTampered("screenshot discarded: the PII masks could not be checked (unexpected result)")
    marks_intact(raw.get("check"), marks)
    return _mask_rects(raw.get("rects"))


def _mask_rects(raw: Any) -> MaskRects:
    """``RECTS_JS``'s answer (image pixels already); ``MasksTampered`` when it is an error or not whole rectangles."""
    px = raw.get("px") if isinstance(raw, dict) else None
    if not isinstance(raw, dict) or raw.get("error") or not isinstance(px, list) or len(px) % 4:
        why = raw.get("error") if isinstance(raw, dict) else None
        raise MasksTampered(f"screenshot discarded: the PII masks could not be measured ({why or 'unexpected result'})")
    if not all(type(v) is int or (type(v) is float and v.is_integer()) for v in px):  # floor / ceil in the script
        raise MasksTampered("screenshot discarded: the PII masks could not be measured (not whole pixels)")
    rects = tuple((int(px[i]), int(px[i + 1]), int(px[i + 2]), int(px[i + 3])) for i in range(0, len(px), 4))
    dpr = float(raw["dpr"])
    size = (round(float(raw["w"]) * dpr), round(float(raw["h"]) * dpr))
    return MaskRects(rects=rects, size=size, scroll=(float(raw["sx"]), float(raw["sy"])))


def paint(png: bytes, masks: MaskRects, color: str, *, full_page: bool) -> bytes:
    """``png`` with every rectangle filled ``color``; ``MasksTampered`` if the image is not the page measured."""
    from PIL import Image, ImageDraw  # imported by the painter thread (screenshots.warm_painter), not at start-up

    with Image.open(io.BytesIO(png)) as im:  # the header only: no pixels decoded yet
        w, h = im.size
        # Larger than measured: part of the image was never measured. A viewport capture must match.
        if w > masks.size[0] + 1 or h > masks.size[1] + 1 or (
            not full_page and (w < masks.size[0] - 1 or h < masks.size[1] - 1)
        ):
            raise MasksTampered(
                f"screenshot discarded: the image ({w}x{h}) is not the page the PII masks were measured on "
                f"({masks.size[0]}x{masks.size[1]})"
            )
        if not masks.rects:  # nothing marked on the page measured: the capture is the image (same pixels)
            return png
        im.load()
        draw = ImageDraw.Draw(im)
        for x0, y0, x1, y1 in masks.rects:
            draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=color)  # opaque: RGBA's alpha is 255 too
        if im.mode in ("RGB", "RGBA"):  # what Chromium captures: one filter, fast zlib (png_encode)
            return encode_png(im)
        out = io.BytesIO()
        im.save(out, format="PNG", compress_level=3)
    return out.getvalue()
