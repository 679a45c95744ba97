"""A viewport capture taken by Warden over CDP, prepared as Playwright prepares its own, cheaper.

Why: ``page.screenshot`` asks Chromium for a PNG at zlib's default level with the best of five
filters per row (~17 ms of Chromium's CPU per 1280x800 capture on the bench machine) and has no
way to ask for less; ``Page.captureScreenshot`` with ``optimizeForSpeed`` encodes one filter
(``Up``) at zlib level 1 — a lossless PNG of the same pixels, ~1.8x the bytes — and is cheaper to
decode when the masks are painted (``mask_paint``). Full-page captures and captures with a
stylesheet (the approval prompt's outline) stay with ``page.screenshot``.

What Playwright does around its capture (``animations="disabled"``, ``caret="hide"``) is done here
in Warden's isolated world (``PREPARE_JS``, the page's scripts cannot redefine what it calls), in
the main document, its open shadow roots and its same-origin frames: text carets made transparent,
finite animations finished, infinite ones cancelled (and those that start during the capture
settled as they start), web fonts awaited (at most ``FONTS_WAIT_MS``); ``RESTORE_JS`` undoes it
after the capture. The masked capture puts the marks and their first measurement in the same
round trip as the preparation, and the second measurement with the restore (``mask_paint``).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Any

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page

from runner.browser.page_reading import evaluate_isolated, send_cdp
from runner.browser.page_scripts import kept

FONTS_WAIT_MS = 5000

# Prepares the page for one capture; o = {shot}. Sets globalThis.__wardenShot = {nonce, undo}.
# The body of PREPARE_FN, which the masked capture also runs before marking (mask_paint).
PREPARE_BODY = r"""
  const prevShot = globalThis.__wardenShot;
  if (prevShot) { try { prevShot.undo(); } catch (e) {} }
  const roots = [];
  const collect = (root) => {
    roots.push(root);
    const doc = root.ownerDocument || root;
    const walker = doc.createTreeWalker(root, NodeFilter.SHOW_ELEMENT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      if (n.shadowRoot) collect(n.shadowRoot);
      const tag = n.tagName;  // the length first: the pattern only matches 5 or 6 letters
      if (tag.length < 7 && /^i?frame$/i.test(tag)) {
        let inner = null;
        try { inner = n.contentDocument; } catch (e) { inner = null; }
        if (inner && inner.documentElement) collect(inner);
      }
    }
  };
  collect(document);
  const undo = [];
  const carets = new Map();
  for (const root of roots) for (const el of root.querySelectorAll('input,textarea,[contenteditable]')) {
    carets.set(el, [el.style.getPropertyValue('caret-color'), el.style.getPropertyPriority('caret-color')]);
    el.style.setProperty('caret-color', 'transparent', 'important');
  }
  undo.push(() => { for (const [el, [v, p]] of carets) el.style.setProperty('caret-color', v, p); });
  const resume = new Set();
  const settle = (root) => {
    for (const a of root.getAnimations()) {
      if (!a.effect || a.playbackRate === 0 || resume.has(a)) continue;
      if (Number.isFinite(a.effect.getComputedTiming().endTime)) { try { a.finish(); } catch (e) {} }
      else { try { a.cancel(); resume.add(a); } catch (e) {} }
    }
  };
  for (const root of roots) {
    const onStart = () => settle(root);
    settle(root);
    root.addEventListener('transitionrun', onStart);
    root.addEventListener('animationstart', onStart);
    undo.push(() => {
      root.removeEventListener('transitionrun', onStart);
      root.removeEventListener('animationstart', onStart);
    });
  }
  undo.push(() => { for (const a of resume) { try { a.play(); } catch (e) {} } });
  globalThis.__wardenShot = {nonce: o.shot, undo: () => { for (const f of undo) f(); }};
"""
# Waits for the web fonts (as Playwright's capture does), at most FONTS_WAIT_MS.
FONTS_READY = "Promise.race([document.fonts.ready, new Promise((r) => setTimeout(r, o.fontsMs))])"
RESTORE_BODY = r"""
  const shot = globalThis.__wardenShot;
  const restored = !!shot && shot.nonce === o.shot;
  if (restored) { delete globalThis.__wardenShot; shot.undo(); }
"""
# The two as functions kept in the isolated world (``page_scripts.kept``: defined once per document, so
# V8 keeps their optimized code), expressions the masked capture's scripts call too (mask_paint).
PREPARE_FN = kept("(o) => {\n" + PREPARE_BODY + "}")
RESTORE_FN = kept("(o) => {\n" + RESTORE_BODY + "  return restored;\n}")
PREPARE_JS = "(o) => {\n  " + PREPARE_FN + "(o);\n  return " + FONTS_READY + ".then(() => true);\n}"
RESTORE_JS = "(o) => " + RESTORE_FN + "(o)"


def shot_args() -> dict[str, Any]:
    """The preparation's argument for one capture: a fresh nonce (``restore`` undoes only its own)."""
    return {"shot": secrets.token_hex(8), "fontsMs": FONTS_WAIT_MS}


def prepare(page: Page, arg: dict[str, Any]) -> None:
    """Carets hidden, animations settled, fonts awaited (``PREPARE_JS``); ``PlaywrightError`` if it cannot."""
    evaluate_isolated(page, PREPARE_JS, arg, await_promise=True)


def restore(page: Page, arg: dict[str, Any]) -> None:
    """Undo ``prepare``; never raises (a page that navigated away has nothing left to undo)."""
    try:
        evaluate_isolated(page, RESTORE_JS, arg)
    except PlaywrightError:
        pass


def capture_viewport(page: Page, *, timeout_s: float) -> bytes:
    """The viewport as Chromium's fast PNG (``optimizeForSpeed``); ``PlaywrightError`` when it cannot."""
    res = send_cdp(page, "Page.captureScreenshot", {"format": "png", "optimizeForSpeed": True}, timeout_s=timeout_s)
    data = res.get("data")
    if not isinstance(data, str):
        raise PlaywrightError("the capture returned no image")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise PlaywrightError("the capture returned an image that is not base64") from None
