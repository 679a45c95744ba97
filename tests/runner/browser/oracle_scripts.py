"""The page reading and mask marking as they were before they were made faster (session 8), kept as
the oracle the faster scripts must agree with exactly (tests/runner/browser/test_kept_scripts.py).
Never used by Warden itself."""

OLD_TEXT_BLOCKS_JS = r"""
(lim) => {
  const out = [];
  const heads = new Map();  // selector head -> its index in `heads`
  const t0 = performance.now();
  let chars = 0, over = '', framesUnread = 0;
  const add = (text, selector, isInput, password) => {
    if (over) return;
    chars += text.length;
    if (out.length >= lim.maxBlocks) over = 'more than ' + lim.maxBlocks + ' text blocks';
    else if (chars > lim.maxChars) over = 'more than ' + lim.maxChars + ' characters of text';
    else if (performance.now() - t0 > lim.maxMs) over = 'reading took longer than ' + lim.maxMs + ' ms';
    else {
      // The selector as [its head's index, its last step]: each head (a row's path) is sent once.
      const cut = selector.lastIndexOf(' > ');
      let head = -1;
      if (cut >= 0) {
        const h = selector.slice(0, cut);
        head = heads.get(h);
        if (head === undefined) { head = heads.size; heads.set(h, head); }
      }
      out.push([text, head, cut >= 0 ? selector.slice(cut + 3) : selector, isInput ? 1 : 0, password ? 1 : 0]);
    }
  };
  const SKIP = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'TEXTAREA', 'SELECT', 'OPTION']);
  const NOVALUE = new Set(['hidden', 'checkbox', 'radio', 'submit', 'button', 'reset', 'image', 'file',
                           'range', 'color']);
  const ATTRS = ['title', 'alt', 'aria-label', 'placeholder'];
  const FIELDS = new Set(['INPUT', 'TEXTAREA', 'SELECT']);
  const FRAMES = new Set(['IFRAME', 'FRAME']);
  const nths = new Map();  // element -> its :nth-of-type index, computed once per parent (linear)
  const nth = (e) => {
    if (!nths.has(e)) {
      const count = new Map();
      for (let c = (e.parentNode || e).firstElementChild; c; c = c.nextElementSibling) {
        count.set(c.tagName, (count.get(c.tagName) || 0) + 1);
        nths.set(c, count.get(c.tagName));
      }
      if (!nths.has(e)) nths.set(e, 1);
    }
    return nths.get(e);
  };
  // The CSS path of el inside its root (a document or a shadow root); `prefix` addresses the root.
  // Each element's path is kept (the DOM cannot change during this synchronous read): a block's path
  // extends its parent's, so a row of cells looks its ancestors up once, not once per cell.
  const paths = new Map();  // prefix -> Map(element -> its path inside its root)
  const sel = (el, prefix) => {
    let memo = paths.get(prefix);
    if (!memo) { memo = new Map(); paths.set(prefix, memo); }
    const root = el.getRootNode();
    const chain = [];
    let base = '';
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
      const known = memo.get(e);
      if (known !== undefined) { base = known; break; }
      if (!prefix && e.id && root.querySelectorAll('#' + CSS.escape(e.id)).length === 1) {
        base = '#' + CSS.escape(e.id);
        memo.set(e, base);
        break;
      }
      if (e === root.documentElement) { base = 'html'; memo.set(e, base); break; }
      chain.push(e);
    }
    for (let i = chain.length - 1; i >= 0; i--) {
      const step = chain[i].tagName.toLowerCase() + ':nth-of-type(' + nth(chain[i]) + ')';
      base = base ? base + ' > ' + step : step;
      memo.set(chain[i], base);
    }
    return (prefix ? prefix + ' > ' : '') + base;
  };
  const visible = (el) => {
    if (el.checkVisibility) return el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true});
    return !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  };
  const isBlock = (el) => {
    const d = el.ownerDocument.defaultView.getComputedStyle(el).display;
    return !(d.startsWith('inline') || d === 'contents');
  };
  // root: a document's body or a shadow root; frame: the frame path ('' for the top document);
  // prefix: the selector of the shadow root's host ('' in a document).
  const walk = (root, frame, prefix) => {
    const top = root.nodeType === 11 ? root : root.ownerDocument.body;
    const groups = new Map();
    const fields = [], attrs = [], nested = [];
    const walker = root.ownerDocument.createTreeWalker(root, NodeFilter.SHOW_TEXT | NodeFilter.SHOW_ELEMENT);
    for (let n = walker.currentNode; n && !over; n = walker.nextNode()) {
      if (n.nodeType === 1) {
        if (n.shadowRoot) nested.push(['shadow', n]);
        if (FRAMES.has(n.tagName)) nested.push(['frame', n]);
        if (FIELDS.has(n.tagName)) fields.push(n);
        if (n.hasAttributes()) {
          for (const a of ATTRS) if (n.hasAttribute(a) && (n.getAttribute(a) || '').trim()) { attrs.push(n); break; }
        }
        continue;
      }
      const t = n.nodeValue;
      if (!t || !t.trim()) continue;
      const p = n.parentElement;
      if (!p || SKIP.has(p.tagName) || !visible(p)) continue;
      let b = p;
      while (b !== top && b.parentElement && !isBlock(b)) b = b.parentElement;
      if (!groups.has(b)) groups.set(b, []);
      groups.get(b).push(t.trim());
      if (performance.now() - t0 > lim.maxMs) over = 'reading took longer than ' + lim.maxMs + ' ms';
    }
    for (const [el, texts] of groups) add(texts.join(' '), frame + sel(el, prefix), false, false);
    for (const f of fields) {
      const type = (f.getAttribute('type') || '').toLowerCase();
      if (f.tagName === 'INPUT' && NOVALUE.has(type)) continue;
      const value = f.tagName === 'SELECT' ? Array.from(f.selectedOptions).map(o => o.text).join(', ') : f.value;
      if (!value || !visible(f)) continue;
      const label = ((f.labels && f.labels[0] && f.labels[0].innerText) || f.getAttribute('aria-label') ||
                     f.getAttribute('name') || f.id || '').trim().slice(0, 60);
      add((label ? label + ' ' : '') + value, frame + sel(f, prefix), true, type === 'password');
    }
    for (const el of attrs) {
      if (!visible(el)) continue;
      const vals = ATTRS.map(a => (el.getAttribute(a) || '').trim()).filter(Boolean);
      add(vals.join(' \n '), frame + sel(el, prefix), false, false);
    }
    for (const [kind, el] of nested) {
      if (over) break;
      if (kind === 'shadow') { walk(el.shadowRoot, frame, sel(el, prefix)); continue; }
      let doc = null;
      try { doc = el.contentDocument; } catch (e) { doc = null; }
      if (!doc || !doc.body) { if (visible(el)) framesUnread++; continue; }
      walk(doc.body, frame + sel(el, prefix) + lim.sep, '');
    }
  };
  if (document.body) walk(document.body, '', '');
  return JSON.stringify({complete: !over, reason: over, frames_unread: framesUnread, blocks: over ? [] : out,
                         heads: over ? [] : Array.from(heads.keys())});
}
"""

OLD_MARK_JS = r"""
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
  const resolve = (doc, css) => {
    const parts = css.split(' > ');
    let cur = null;
    if (parts[0] === 'html') cur = doc.documentElement ? [doc.documentElement] : [];
    else if (parts[0].startsWith('#')) cur = Array.from(doc.querySelectorAll(parts[0]));
    if (cur === null || !parts.slice(1).every((p) => NTH.test(p))) return pierce(doc, css);
    for (let i = 1; i < parts.length && cur.length; i++) {
      const [, tag, n] = NTH.exec(parts[i]);
      const next = [];
      for (const e of cur) for (const p of [e, e.shadowRoot]) {
        const c = p ? byTag(p).get(tag) : undefined;
        if (c && c[n - 1]) next.push(c[n - 1]);
      }
      cur = next;
    }
    return cur;
  };
  const frameIds = new Map();  // frame element -> its one-time id
  const groups = new Map();    // "id,id" -> [ids]
  const els = new Map();       // element -> the frame elements it is inside (outermost first)
  const mark = (chain, el, fes) => {
    els.set(el, fes);
    const key = chain.join(',');
    if (!groups.has(key)) groups.set(key, chain);
  };
  // The selectors come packed (``pack_selectors``): [head index, last step] each, every head once.
  const selectors = o.tails.map(([h, t]) => (h >= 0 ? o.heads[h] + ' > ' + t : t));
  try {
    for (const s of selectors) {
      const path = s.split(o.sep);
      const css = path.pop();
      let scopes = [[document, [], []]];
      for (const f of path) {
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
      for (const [doc, chain, fes] of scopes) for (const e of resolve(doc, css)) mark(chain, e, fes);
    }
  } catch (e) {
    return {error: 'a mask selector could not be resolved: ' + String(e && e.name || e)};
  }
  for (const e of els.keys()) e.setAttribute(o.attr, '');
  for (const [fe, id] of frameIds) fe.setAttribute(o.frameAttr, id);
  const state = {nonce: o.nonce, attr: o.attr, frameAttr: o.frameAttr, els: Array.from(els.keys()), fes: els,
                 frames: Array.from(frameIds.entries()), changed: 0};
  state.obs = new MutationObserver((recs) => { state.changed += recs.length; });
  for (const e of state.els) state.obs.observe(e, {attributes: true, attributeFilter: [o.attr]});
  for (const [fe] of state.frames) state.obs.observe(fe, {attributes: true, attributeFilter: [o.frameAttr]});
  globalThis.__wardenMasks = state;
  return {groups: Array.from(groups.values()), count: state.els.length};
}
"""


OLD_RECTS_JS = r"""
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
  const rects = [];
  const ranges = new Map();  // document -> one Range, moved onto each element in turn (not one per element)
  for (const el of s.els) {
    let ox = 0, oy = 0, clip = [-Infinity, -Infinity, Infinity, Infinity], r = null;
    for (const fe of (s.fes.get(el) || [])) {
      const [b, whole, fr] = box(fe);
      if (whole) { r = [fr.left + ox, fr.top + oy, fr.right + ox, fr.bottom + oy]; break; }
      const c = [b[0] + ox, b[1] + oy, b[2] + ox, b[3] + oy];
      clip = cut(clip, c);
      ox = c[0]; oy = c[1];
    }
    if (r === null) {
      const e = el.getBoundingClientRect();
      r = [e.left, e.top, e.right, e.bottom];
      if (!/^i?frame$/i.test(el.tagName)) {
        let range = ranges.get(el.ownerDocument);
        if (!range) { range = el.ownerDocument.createRange(); ranges.set(el.ownerDocument, range); }
        range.selectNodeContents(el);
        const c = range.getBoundingClientRect();
        if (c.width > 0 || c.height > 0) {
          r = e.width > 0 || e.height > 0
            ? [Math.min(r[0], c.left), Math.min(r[1], c.top), Math.max(r[2], c.right), Math.max(r[3], c.bottom)]
            : [c.left, c.top, c.right, c.bottom];
        }
      }
      r = cut([r[0] + ox, r[1] + oy, r[2] + ox, r[3] + oy], clip);
    }
    r = cut([r[0] + sx, r[1] + sy, r[2] + sx, r[3] + sy], [0, 0, W, H]);
    if (r[2] > r[0] && r[3] > r[1]) rects.push(r);
  }
  const out = {rects, dpr: devicePixelRatio, w: W, h: H, sx: scrollX, sy: scrollY};
  if (o.replay) for (const a of (s.cancelled || [])) { try { a.play(); } catch (e) {} }
  return out;
}
"""
