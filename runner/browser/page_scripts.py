"""Scripts Warden runs inside the page, and the decoding of what they return.

They read only: the visible text (for the PII scan and the screenshot masks) and a description of
the element an action will hit (for the danger zones). Neither changes the page's DOM.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from guards.observed import ElementInfo

MAX_TEXT_BLOCKS = 5000
# The page's visible text for the PII scan: each text node whose element is rendered, grouped under
# its nearest block-level ancestor (so "Phone: <b>212…</b>" stays one block and keeps its context
# word), and each input/textarea/select holding a value (with its label as context). Each block
# carries a CSS selector (id when unique, else an nth-of-type path) used to mask it in screenshots.
# Main frame only: iframes are not read (see docs/pii.md). Returns [text, selector, is_input, password].
TEXT_BLOCKS_JS = r"""
(max) => {
  const out = [];
  const body = document.body;
  if (!body) return out;
  const sel = (el) => {
    const parts = [];
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
      if (e.id && document.querySelectorAll('#' + CSS.escape(e.id)).length === 1) {
        parts.unshift('#' + CSS.escape(e.id));
        return parts.join(' > ');
      }
      if (e === document.documentElement) { parts.unshift('html'); break; }
      let i = 1;
      for (let s = e.previousElementSibling; s; s = s.previousElementSibling) if (s.tagName === e.tagName) i++;
      parts.unshift(e.tagName.toLowerCase() + ':nth-of-type(' + i + ')');
    }
    return parts.join(' > ');
  };
  const visible = (el) => {
    if (el.checkVisibility) return el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true});
    return !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  };
  const isBlock = (el) => {
    const d = getComputedStyle(el).display;
    return !(d.startsWith('inline') || d === 'contents');
  };
  const SKIP = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'TEXTAREA', 'SELECT', 'OPTION']);
  const groups = new Map();
  const walker = document.createTreeWalker(body, NodeFilter.SHOW_TEXT);
  let n;
  while ((n = walker.nextNode()) && groups.size < max) {
    const t = n.nodeValue;
    if (!t || !t.trim()) continue;
    const p = n.parentElement;
    if (!p || SKIP.has(p.tagName) || !visible(p)) continue;
    let b = p;
    while (b !== body && b.parentElement && !isBlock(b)) b = b.parentElement;
    if (!groups.has(b)) groups.set(b, []);
    groups.get(b).push(t.trim());
  }
  for (const [el, texts] of groups) out.push([texts.join(' '), sel(el), false, false]);
  const NOVALUE = new Set(['hidden', 'checkbox', 'radio', 'submit', 'button', 'reset', 'image', 'file',
                           'range', 'color']);
  for (const f of document.querySelectorAll('input, textarea, select')) {
    if (out.length >= max) break;
    const type = (f.getAttribute('type') || '').toLowerCase();
    if (f.tagName === 'INPUT' && NOVALUE.has(type)) continue;
    let value = f.tagName === 'SELECT' ? Array.from(f.selectedOptions).map(o => o.text).join(', ') : f.value;
    if (!value && f.placeholder) value = f.placeholder;
    if (!value || !visible(f)) continue;
    const label = ((f.labels && f.labels[0] && f.labels[0].innerText) || f.getAttribute('aria-label') ||
                   f.getAttribute('name') || f.id || '').trim().slice(0, 60);
    out.push([(label ? label + ' ' : '') + value, sel(f), true, type === 'password']);
  }
  return out;
}
"""


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
