"""Screenshot masks resolved once per capture in Warden's isolated world, as one-time marks that
``mask_paint`` measures and paints into the image.

Why: Playwright resolves each mask locator with its own CSS engine; the page scan's selectors
(nth-of-type paths through shadow roots and frames) cost it ~5-10 ms each, so a PII-heavy page
(~1,800 blocks) missed the screenshot timeout. Here the isolated world (the page's scripts cannot
redefine what it calls) walks each selector natively (each step an indexed child lookup, light DOM
and open shadow root both: a path never matches fewer elements than Playwright's piercing CSS
would) and keeps the elements found there, under a one-time nonce, with the frames each one is
inside (same-origin frames are entered; an iframe whose document cannot be reached is masked whole).

Nothing is written into the page's DOM (until session 11 each element got a one-time attribute, which
a page's MutationObserver could see, strip or restyle, and which cost a style recalculation of the
page on every capture): the page cannot tell it is being photographed, nor touch the marks. Fail
closed: after the capture a marked element (or a frame it is in) that left its document discards
the image (``MasksTampered``); what moved is ``mask_paint``'s second reading.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from playwright.sync_api import Page

from runner.browser.driver import ActionFailed
from runner.browser.page_reading import evaluate_isolated
from runner.browser.page_scripts import FRAME_SEP

# Marks the elements of each selector ("frame path |> css", see page_scripts.TEXT_BLOCKS_JS).
# A page-scan path ("#id > ..." or "html > ...", then "tag:nth-of-type(n)" steps) is walked step
# by step, each step looked up among the light children AND the open shadow root's children of the
# elements so far; anything else (e.g. "input[type=password i]") is queried in the document and in
# every open shadow root. Returns {groups: [[frame ids...]...], count} or {error}.
MARK_JS = r"""
(o) => {
  const NTH = /^([^\s>:#.\[]+):nth-of-type\((\d+)\)$/;
  const kids = new Map();  // parent node -> Map(tag -> its element children of that tag, in order)
  const byTag = (p) => {
    let m = kids.get(p);
    if (!m) {
      m = new Map();
      for (let c = p.firstElementChild; c; c = c.nextElementSibling) {
        const t = c.tagName.toLowerCase();
        if (!m.has(t)) m.set(t, []);
        m.get(t).push(c);
      }
      kids.set(p, m);
    }
    return m;
  };
  const pierce = (doc, css) => {
    const found = [];
    const walk = (root) => {
      for (const e of root.querySelectorAll(css)) found.push(e);
      for (const e of root.querySelectorAll('*')) if (e.shadowRoot) walk(e.shadowRoot);
    };
    walk(doc);
    return found;
  };
  // css -> [its elements, whether it is a page-scan path], per document. A path's elements are its
  // head's (everything before its last " > ") one step further: a row's path is resolved once for all
  // of its cells, not once per cell (the DOM cannot change during this synchronous script).
  const resolved = new Map();
  const path = (doc, css, memo) => {
    let r = memo.get(css);
    if (r) return r;
    const cut = css.lastIndexOf(' > ');
    if (cut < 0) {
      if (css === 'html') r = [doc.documentElement ? [doc.documentElement] : [], true];
      else if (css.startsWith('#')) r = [Array.from(doc.querySelectorAll(css)), true];
    } else {
      const step = NTH.exec(css.slice(cut + 3));
      const head = step ? path(doc, css.slice(0, cut), memo) : null;
      if (head && head[1]) r = [down(head[0], step), true];
    }
    if (!r) r = [pierce(doc, css), false];  // not a page-scan path: the whole selector, queried
    memo.set(css, r);
    return r;
  };
  // The elements one "tag:nth-of-type(n)" step (NTH's match) below `cur`, light and shadow children.
  const down = (cur, step) => {
    const tag = step[1], n = step[2] - 1, next = [];
    for (const e of cur) {
      const light = byTag(e).get(tag);
      if (light && light[n]) next.push(light[n]);
      const shadow = e.shadowRoot ? byTag(e.shadowRoot).get(tag) : undefined;
      if (shadow && shadow[n]) next.push(shadow[n]);
    }
    return next;
  };
  const memoOf = (doc) => {
    let memo = resolved.get(doc);
    if (!memo) { memo = new Map(); resolved.set(doc, memo); }
    return memo;
  };
  const resolve = (doc, css) => path(doc, css, memoOf(doc))[0];
  const frameIds = new Map();  // frame element -> its one-time id
  const groups = new Map();    // "id,id" -> [ids]
  const els = new Map();       // element -> the frame elements it is inside (outermost first)
  const mark = (chain, el, fes) => {
    els.set(el, fes);
    const key = chain.join(',');
    if (!groups.has(key)) groups.set(key, chain);
  };
  // The selectors come packed (``pack_selectors``): [head index, last step] each, every head once.
  // The documents (with their frame chains) a selector's frame path (its parts before the css) leads into.
  const scopesOf = (frames) => {
    let scopes = [[document, [], []]];
    for (const f of frames) {
      const next = [];
      for (const [doc, chain, fes] of scopes) for (const fe of resolve(doc, f)) {
        let inner = null;
        try { inner = fe.contentDocument; } catch (e) { inner = null; }
        if (!inner) { mark(chain, fe, fes); continue; }  // cannot be entered: the frame is masked whole
        if (!frameIds.has(fe)) frameIds.set(fe, String(frameIds.size + 1));
        next.push([inner, [...chain, frameIds.get(fe)], [...fes, fe]]);
      }
      scopes = next;
    }
    return scopes;
  };
  // A head + "tag:nth-of-type(n)" selector is its head's elements one step down: the head (a row) is split
  // and resolved once for all its cells, the selector never rebuilt (the same elements as the whole
  // selector: the step holds no separator, nor can one straddle it unless the head ends with " |>").
  const byHead = new Map();  // head index -> [its frame scopes, its last css part]
  try {
    for (const [h, t] of o.tails) {
      const step = h >= 0 ? NTH.exec(t) : null;
      if (step && !o.heads[h].endsWith(' |>')) {
        let hs = byHead.get(h);
        if (!hs) {
          const frames = o.heads[h].split(o.sep);
          const last = frames.pop();
          hs = [scopesOf(frames), last];
          byHead.set(h, hs);
        }
        for (const [doc, chain, fes] of hs[0]) {
          const head = path(doc, hs[1], memoOf(doc));
          for (const e of (head[1] ? down(head[0], step) : resolve(doc, hs[1] + ' > ' + t))) mark(chain, e, fes);
        }
        continue;
      }
      const frames = (h >= 0 ? o.heads[h] + ' > ' + t : t).split(o.sep);
      const css = frames.pop();
      for (const [doc, chain, fes] of scopesOf(frames)) for (const e of resolve(doc, css)) mark(chain, e, fes);
    }
  } catch (e) {
    return {error: 'a mask selector could not be resolved: ' + String(e && e.name || e)};
  }
  // Nothing is written into the page: the elements are held here, in the isolated world, which the
  // page's scripts cannot reach (no attribute for a page's MutationObserver to see, strip or restyle).
  const state = {nonce: o.nonce, els: Array.from(els.keys()), fes: els, frames: Array.from(frameIds.entries())};
  state.fesList = state.els.map((e) => els.get(e));  // for mask_paint's RECTS_JS: by index, and whether a
  state.isFrame = state.els.map((e) => /^i?frame$/i.test(e.tagName));  // frame (tags never change)
  globalThis.__wardenMasks = state;
  return {groups: Array.from(groups.values()), count: state.els.length};
}
"""

# After the capture: are the marked elements (and the frames they are in) all still in their documents?
# Drops the marks' state either way.
CHECK_JS = r"""
(o) => {
  const s = globalThis.__wardenMasks;
  if (!s || s.nonce !== o.nonce) return {intact: false, lost: -1};
  delete globalThis.__wardenMasks;
  let lost = 0;
  for (const e of s.els) if (!e.isConnected) lost++;
  for (const [fe] of s.frames) if (!fe.isConnected) lost++;
  return {intact: lost === 0, lost};
}
"""


class MasksTampered(ActionFailed):
    """The page removed marked elements, or moved them, around the capture: the image is discarded."""


@dataclass(frozen=True)
class Marks:
    """One capture's marks: the nonce and how many elements the isolated world holds."""

    nonce: str
    count: int


def pack_selectors(selectors: Sequence[str]) -> tuple[list[str], list[tuple[int, str]]]:
    """``selectors`` as (heads, [(head index or -1, last step)]): a row's cells share one head, sent once.

    Why: a PII-heavy page's ~1,800 selectors are ~180 KB of nth-of-type paths, most of it the same
    few hundred row paths; the script rebuilds each one exactly (``head + ' > ' + step``)."""
    index: dict[str, int] = {}
    tails: list[tuple[int, str]] = []
    for s in selectors:
        head, sep, tail = s.rpartition(" > ")
        if not sep:
            tails.append((-1, s))
            continue
        i = index.get(head)
        if i is None:
            i = index[head] = len(index)
        tails.append((i, tail))
    return list(index), tails


def mark_args(selectors: Sequence[str]) -> dict[str, Any]:
    """``MARK_JS``'s argument for one capture: the packed selectors and a fresh one-time nonce."""
    nonce = secrets.token_hex(8)
    heads, tails = pack_selectors(selectors)
    return {"heads": heads, "tails": tails, "sep": FRAME_SEP, "nonce": nonce}


def marks_set(raw: Any, nonce: str) -> Marks:
    """The ``Marks`` ``MARK_JS`` answered ``raw``; ``ActionFailed`` when it could not set them."""
    if not isinstance(raw, dict) or raw.get("error") or not isinstance(raw.get("groups"), list):
        why = raw.get("error") if isinstance(raw, dict) else None
        raise ActionFailed(f"screenshot masks could not be set: {why or 'unexpected result'}")
    return Marks(nonce=nonce, count=int(raw.get("count") or 0))


def mark_masks(page: Page, selectors: Sequence[str]) -> Marks:
    """Mark every element of ``selectors`` (see ``MARK_JS``); raises ``ActionFailed`` when it cannot."""
    arg = mark_args(selectors)
    return marks_set(evaluate_isolated(page, MARK_JS, arg), arg["nonce"])


def check_marks(page: Page, marks: Marks) -> None:
    """After the capture: raise ``MasksTampered`` unless every marked element is still there (marks dropped)."""
    marks_intact(evaluate_isolated(page, CHECK_JS, {"nonce": marks.nonce}), marks)


def marks_intact(raw: Any, marks: Marks) -> None:
    """Raise ``MasksTampered`` unless ``CHECK_JS`` answered ``raw`` that every marked element is still there."""
    if not isinstance(raw, dict) or not raw.get("intact"):
        lost = raw.get("lost") if isinstance(raw, dict) else None
        raise MasksTampered(
            f"screenshot discarded: the page changed the PII masks during the capture "
            f"({marks.count} marked, {lost if lost is not None and lost >= 0 else 'all'} lost)"
        )
