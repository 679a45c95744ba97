"""Scripts Warden runs inside the page, and the decoding of what they return.

They read only: the visible text (for the PII scan and the screenshot masks) and a description of
the element an action will hit (for the danger zones). Neither changes the page's DOM. The text
scan runs in an isolated world (``page_reading``), where the page's scripts cannot reach.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from guards.observed import ElementInfo, TextBlock

# The page scan's budget. A page that does not fit in it is "cannot decide" (``complete: false``):
# the caller must treat it as a scan failure (exception record, no screenshot), never as a pass.
MAX_TEXT_BLOCKS = 5000
MAX_TEXT_CHARS = 2_000_000
MAX_SCAN_MS = 15000  # the reading's own time budget (the scanner has its own timeout)
TOO_BIG = "the page is too big to scan within its budget"  # how a PageTooBig's message starts
# Separates the frame path from the selector inside the frame in a TextBlock's selector
# ("iframe#pay |> #card": the element #card in the document of the iframe #pay). Not CSS.
FRAME_SEP = " |> "
# The page's visible text for the PII scan, run in an isolated world (the page's own scripts cannot
# redefine what it calls). Walks the composed tree: the document, every open shadow root and every
# same-origin (i)frame's document, recursively. Each rendered text node is grouped under its nearest
# block-level ancestor (so "Phone: <b>212…</b>" stays one block and keeps its context word); each
# input/textarea/select holding a value (with its label as context); and the accessible attributes
# title, alt, aria-label, placeholder of rendered elements. Each block carries a selector that finds
# the element again to mask it: CSS (id when unique in the document, else an nth-of-type path; a
# shadow root's content is addressed through its host, which Playwright's CSS pierces), prefixed by
# the frame path joined with FRAME_SEP. Returns, as one JSON string (one value to hand over, not
# thousands), {complete, reason, frames_unread, heads, blocks: [text, head, tail, is_input, password]}:
# a block's selector is heads[head] + ' > ' + tail (tail alone when head is -1; ``decode_blocks``);
# over the budget: complete = false, never a partial pass. Run as TEXT_BLOCKS_JS (kept: see ``kept``).
TEXT_BLOCKS_IMPL = r"""
(lim) => {
  const out = [], heads = new Map();  // heads: selector head -> its index in `heads`
  const t0 = performance.now();
  let chars = 0, over = '', framesUnread = 0, ops = 0;
  const late = () => (++ops & 15) === 0 && performance.now() - t0 > lim.maxMs;  // every 16th time, and at the end
  const add = (text, selector, isInput, password) => {
    if (over) return;
    chars += text.length;
    if (out.length >= lim.maxBlocks) over = 'more than ' + lim.maxBlocks + ' text blocks';
    else if (chars > lim.maxChars) over = 'more than ' + lim.maxChars + ' characters of text';
    else if (late()) over = 'reading took longer than ' + lim.maxMs + ' ms';
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
  // The CSS path of el inside its root (a document or a shadow root); `prefix` addresses the root. Each
  // element's path is kept (the DOM cannot change during this synchronous read): a row's cells extend it.
  const paths = new Map();  // prefix -> Map(element -> its path inside its root)
  const sel = (el, prefix) => {
    let memo = paths.get(prefix);
    if (!memo) { memo = new Map(); paths.set(prefix, memo); }
    let base = memo.get(el);
    if (base === undefined) {
      const root = el.getRootNode();
      const chain = [];
      base = '';
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
    }
    return prefix ? prefix + ' > ' + base : base;
  };
  const VIS = {checkOpacity: true, checkVisibilityCSS: true};
  const visible = (el) => {
    if (el.checkVisibility) return el.checkVisibility(VIS);
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
    // A text node's parent -> the block its text joins (null: not read), the same for all its text nodes.
    const blockOf = new Map();
    const fields = [], attrs = [], nested = [];
    const walker = root.ownerDocument.createTreeWalker(root, NodeFilter.SHOW_TEXT | NodeFilter.SHOW_ELEMENT);
    for (let n = walker.currentNode; n && !over; n = walker.nextNode()) {
      if (n.nodeType === 1) {
        if (n.shadowRoot) nested.push(['shadow', n]);
        const tag = n.tagName;
        if (FRAMES.has(tag)) nested.push(['frame', n]);
        if (FIELDS.has(tag)) fields.push(n);
        if (n.hasAttributes()) {
          for (const a of ATTRS) if (n.hasAttribute(a) && (n.getAttribute(a) || '').trim()) { attrs.push(n); break; }
        }
        continue;
      }
      const t = n.nodeValue, trimmed = t ? t.trim() : '', p = n.parentElement;
      if (!trimmed || !p) continue;
      let b = blockOf.get(p);
      if (b === undefined) {
        b = null;
        if (!SKIP.has(p.tagName) && visible(p)) {
          b = p;
          while (b !== top && b.parentElement && !isBlock(b)) b = b.parentElement;
        }
        blockOf.set(p, b);
      }
      if (b === null) continue;
      const texts = groups.get(b);
      if (texts === undefined) groups.set(b, [trimmed]); else texts.push(trimmed);
      if (late()) over = 'reading took longer than ' + lim.maxMs + ' ms';
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
  if (!over && performance.now() - t0 > lim.maxMs) over = 'reading took longer than ' + lim.maxMs + ' ms';
  return JSON.stringify({complete: !over, reason: over, frames_unread: framesUnread, blocks: over ? [] : out,
                         heads: over ? [] : Array.from(heads.keys())});
}
"""


def kept(impl: str) -> str:
    """A JS expression for the function ``impl`` (source), defined once per isolated world and kept on its
    global (keyed by the source); ISOLATED WORLDS ONLY (the main world's global is the page's). Why: V8
    optimizes per closure, and each ``Runtime.callFunctionOn`` is a new one: every read ran cold code."""
    key = "__warden_" + hashlib.sha256(impl.encode()).hexdigest()[:16]
    return f"(globalThis.{key} || (globalThis.{key} = ({impl.strip()})))"


TEXT_BLOCKS_JS = "(lim) => " + kept(TEXT_BLOCKS_IMPL) + "(lim)"


OUTLINE_CSS = "outline: 4px solid #ff0033 !important; outline-offset: 2px !important;"

# Describes an element for the danger zones (runs in the page; returns plain JSON). The accessible
# name is an approximation of the W3C algorithm (aria-labelledby, aria-label, labels, value/alt,
# content, title, placeholder); visible text is innerText. Field *values* are never read (they
# may hold PII): only button-like inputs report theirs, which is their label.
RESOLVE_JS = r"""
(el, opts) => {
  const norm = (s) => (s || '').replace(/\s+/g, ' ').trim().slice(0, 500);
  const BUTTONISH = ['submit', 'button', 'reset', 'image'];
  const TEXTLESS = ['checkbox', 'radio', 'range', 'color', 'file', 'hidden'];
  const tag = (e) => e.tagName.toLowerCase();
  const itype = (e) => tag(e) === 'input' ? (e.getAttribute('type') || 'text').toLowerCase() : '';
  const isTextEntry = (e) => {
    if (e.isContentEditable) return true;
    const t = tag(e);
    if (t === 'textarea' || t === 'select') return true;
    return t === 'input' && !BUTTONISH.includes(itype(e)) && !TEXTLESS.includes(itype(e));
  };
  const role = (e) => {
    const explicit = (e.getAttribute('role') || '').trim().split(/\s+/)[0];
    if (explicit) return explicit;
    const t = tag(e), ty = itype(e);
    if (t === 'button') return 'button';
    if (t === 'a' || t === 'area') return e.hasAttribute('href') ? 'link' : '';
    if (t === 'input') {
      if (BUTTONISH.includes(ty)) return 'button';
      return {checkbox: 'checkbox', radio: 'radio', range: 'slider', number: 'spinbutton',
              search: 'searchbox', hidden: ''}[ty] ?? 'textbox';
    }
    if (t === 'select') return e.multiple ? 'listbox' : 'combobox';
    return {textarea: 'textbox', form: 'form', img: 'img', summary: 'button', option: 'option',
            h1: 'heading', h2: 'heading', h3: 'heading', h4: 'heading', h5: 'heading', h6: 'heading',
            li: 'listitem', nav: 'navigation', dialog: 'dialog', main: 'main'}[t] || '';
  };
  const name = (e) => {
    const ids = (e.getAttribute('aria-labelledby') || '').trim();
    if (ids) {
      const t = ids.split(/\s+/).map((id) => document.getElementById(id)).filter(Boolean)
        .map((n) => n.textContent).join(' ');
      if (norm(t)) return norm(t);
    }
    const aria = norm(e.getAttribute('aria-label'));
    if (aria) return aria;
    const t = tag(e), ty = itype(e);
    if (t === 'input' && ['submit', 'button', 'reset'].includes(ty))
      return norm(e.value) || (ty === 'submit' ? 'Submit' : ty === 'reset' ? 'Reset' : '');
    if (t === 'input' && ty === 'image') return norm(e.getAttribute('alt')) || 'Submit';
    if (t === 'img') return norm(e.getAttribute('alt'));
    if (e.labels && e.labels.length) {
      const l = norm(Array.from(e.labels).map((x) => x.textContent).join(' '));
      if (l) return l;
    }
    if (!isTextEntry(e) && !['form', 'select'].includes(t)) {
      const c = norm(e.textContent);
      if (c) return c;
    }
    return norm(e.getAttribute('title')) || norm(e.getAttribute('placeholder'));
  };
  const text = (e) => {
    if (tag(e) === 'input') return BUTTONISH.includes(itype(e)) ? norm(e.value || e.getAttribute('alt')) : '';
    if (isTextEntry(e)) return '';
    return norm(e.innerText);
  };
  const cssPath = (e) => {
    const parts = [];
    for (let n = e; n && n.nodeType === 1 && n !== document.documentElement; n = n.parentElement) {
      let i = 1;
      for (let s = n.previousElementSibling; s; s = s.previousElementSibling) if (s.tagName === n.tagName) i++;
      parts.unshift(`${tag(n)}:nth-of-type(${i})`);
      if (n.getRootNode() !== document) break;
    }
    return ['html', ...parts].join(' > ');
  };
  const invalid = new Set();
  const matched = (e) => opts.selectors.filter((s) => {
    try { return !!e.closest(s); } catch (err) { invalid.add(s); return true; }
  });
  const formOf = (e) => e.form || (tag(e) === 'form' ? e : e.closest('form'));
  const formAction = (e) => {
    if ((tag(e) === 'button' || (tag(e) === 'input' && BUTTONISH.includes(itype(e)))) && e.form &&
        e.hasAttribute('formaction'))
      return e.formAction || '';  // (without the attribute, .formAction is the document's URL)
    const f = formOf(e);
    return f ? (f.action || '') : '';
  };
  const describe = (e) => {
    const r = e.getBoundingClientRect();
    const attrs = {};
    for (const a of ['id', 'name', 'type', 'href', 'data-testid', 'class', 'form', 'formaction'])
      if (e.hasAttribute(a)) attrs[a] = String(e.getAttribute(a)).slice(0, 300);
    return {
      tag: tag(e), role: role(e), accessible_name: name(e), text: text(e), selector_hint: cssPath(e),
      input_type: itype(e), attributes: attrs, box: [r.x, r.y, r.width, r.height],
      form_action: formAction(e), text_entry: isTextEntry(e), matched_selectors: matched(e),
    };
  };
  const out = describe(el);
  const act = el.closest('button, a[href], [role=button], [role=link], [role=menuitem], [role=tab], ' +
    '[role=option], [role=switch], input[type=submit], input[type=button], input[type=image], ' +
    'input[type=reset], summary, label');
  out.activator = act && act !== el ? describe(act) : null;
  const form = formOf(el);
  out.form_submit = null;
  if (form) {
    const button = Array.from(form.elements || []).find(
      (e) => (tag(e) === 'button' && (e.getAttribute('type') || 'submit').toLowerCase() === 'submit') ||
             (tag(e) === 'input' && ['submit', 'image'].includes(itype(e))));
    out.form_submit = describe(button || form);
  }
  out.invalid_selectors = Array.from(invalid);
  return out;
}
"""

MARK_ATTR = "data-warden-judged"  # set for the moment of the isolated reading (page_reading.describe_element)
# RESOLVE_JS in the page's world, then the one-time mark on the element (one round trip for both):
# the page's reading comes first, so it does not see the mark.
MARK_AND_RESOLVE_JS = r"""
(el, opts) => {
  const out = (""" + RESOLVE_JS.strip() + r""")(el, opts);
  Element.prototype.setAttribute.call(el, opts.attr, opts.nonce);
  return out;
}
"""
# RESOLVE_JS again, in Warden's isolated world (the page's redefinitions of getAttribute, textContent,
# innerText, closest, ... are not what it calls): finds the one element carrying the mark (through
# open shadow roots), removes the mark, and describes it. {error} when it is not exactly one element.
ISOLATED_RESOLVE_JS = r"""
(arg) => {
  const sel = '[' + arg.attr + '="' + arg.nonce + '"]';
  const found = [];
  const walk = (root) => {
    for (const e of root.querySelectorAll(sel)) found.push(e);
    for (const e of root.querySelectorAll('*')) if (e.shadowRoot) walk(e.shadowRoot);
  };
  walk(document);
  for (const e of found) e.removeAttribute(arg.attr);
  if (found.length !== 1) return {error: found.length + ' elements carry the mark'};
  return (""" + RESOLVE_JS.strip() + r""")(found[0], arg);
}
"""


def decode_blocks(raw: Any) -> dict[str, Any] | None:
    """``TEXT_BLOCKS_JS``'s JSON answer as {complete, reason, blocks: [TextBlock...]}; None if it is not one."""
    if not isinstance(raw, str):
        return None
    try:
        data = json.loads(raw)
        heads = [str(x) for x in data.get("heads") or ()]
        blocks = [  # positional: a frozen dataclass's keyword init is ~2x slower (thousands a page)
            TextBlock(str(text), f"{heads[head]} > {tail}" if head >= 0 else str(tail),
                      "input" if is_input else "text", bool(password))
            for text, head, tail, is_input, password in data.get("blocks") or ()
        ]
    except (ValueError, TypeError, IndexError, AttributeError):
        return None
    return {"complete": bool(data.get("complete")), "reason": data.get("reason"), "blocks": blocks}


def element_info(data: Mapping[str, Any]) -> ElementInfo:
    def one(d: Mapping[str, Any] | None) -> ElementInfo | None:
        if not d:
            return None
        box = d.get("box")
        return ElementInfo(
            found=True,
            tag=str(d.get("tag", "")),
            role=str(d.get("role", "")),
            accessible_name=str(d.get("accessible_name", "")),
            text=str(d.get("text", "")),
            selector_hint=str(d.get("selector_hint", "")),
            input_type=str(d.get("input_type", "")),
            attributes={str(k): str(v) for k, v in dict(d.get("attributes") or {}).items()},
            box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])) if box and len(box) == 4 else None,
            form_action=str(d.get("form_action", "")),
            text_entry=bool(d.get("text_entry", False)),
            matched_selectors=tuple(str(x) for x in d.get("matched_selectors") or ()),
            invalid_selectors=tuple(str(x) for x in data.get("invalid_selectors") or ()),
        )

    top = one(data)
    assert top is not None
    return replace(top, activator=one(data.get("activator")), form_submit=one(data.get("form_submit")))


def merge_views(isolated: ElementInfo, page: ElementInfo) -> ElementInfo:
    """The isolated reading, judged also by what the page's own world showed: its names and texts
    where they differ (``other_names``) and every selector either view matched (never fewer matches)."""
    def both(a: ElementInfo | None, b: ElementInfo | None) -> ElementInfo | None:
        if a is None or b is None:
            return a or b
        others = tuple(dict.fromkeys(
            t for t in (*a.other_names, b.accessible_name, b.text, *b.other_names)
            if t and t not in (a.accessible_name, a.text)))
        return replace(
            a, other_names=others,
            matched_selectors=tuple(dict.fromkeys((*a.matched_selectors, *b.matched_selectors))),
            invalid_selectors=tuple(dict.fromkeys((*a.invalid_selectors, *b.invalid_selectors))),
        )

    top = both(isolated, page)
    assert top is not None
    return replace(top, activator=both(isolated.activator, page.activator),
                   form_submit=both(isolated.form_submit, page.form_submit))
