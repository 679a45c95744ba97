"""HTML primitives of ``report.html`` (evidence/report.py): escaping, badges, tables, sections.

Every value a record carries may be page-derived: ``h`` HTML-escapes it after ``clean`` has shown
control and bidi-override characters as escapes, so nothing a page wrote can inject markup or
reorder what the auditor reads.
"""

from __future__ import annotations

import html
import json
import math
import unicodedata
from collections.abc import Callable, Iterable
from json.encoder import encode_basestring
from typing import Any

import orjson

_OK = {"allow", "approved", "ok", "completed", "recorded", "allowed", "start"}
_BAD = {"deny", "denied", "blocked", "failed", "expired", "aborted", "evidence_error", "ALTERED"}
_WARN = {"require_approval", "approval_required", "stopped", "interrupted", "retried", "masked", "running"}


def clean(value: Any, *, keep_newlines: bool = False) -> str:
    """Text with control/format (bidi) characters shown as escapes; not yet HTML-escaped.

    Every Cc/Cf/Zl/Zp character is one ``str.isprintable`` rejects, so a printable text (nearly every
    value of a report) is returned as it is without a look at each character."""
    text = "" if value is None else str(value)
    if text.isprintable():
        return text
    if keep_newlines and "\n" in text:
        return "\n".join(line if line.isprintable() else _escaped(line) for line in text.split("\n"))
    return _escaped(text)


def _escaped(text: str) -> str:
    """``text`` with each Cc/Cf/Zl/Zp character (newlines too) as an escape."""
    out = []
    for ch in text:
        if unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"}:
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def h(value: Any, *, keep_newlines: bool = False) -> str:
    """Escaped for HTML text and attribute values."""
    return html.escape(clean(value, keep_newlines=keep_newlines), quote=True)


def badge(verdict: Any) -> str:
    v = str(verdict or "")
    cls = "ok" if v in _OK else "bad" if v in _BAD else "warn" if v in _WARN else ""
    return f'<span class="badge {cls}">{h(v or "—")}</span>'


def _facts(rows: Iterable[tuple[str, str]]) -> str:
    items = "".join(f"<div><dt>{h(k)}</dt><dd>{v}</dd></div>" for k, v in rows)
    return f'<dl class="facts">{items}</dl>'


_NARROW = frozenset({"time", "step", "guard", "kind", "decision", "score", "where", "action", "mitigation",
                     "attempt", "asked", "when", "channel", "policy", "entity"})


def _table(headers: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f'<p class="empty">{h(empty)}</p>'
    cls = [' class="nw"' if x in _NARROW else "" for x in headers]
    head = "".join(f"<th{c}>{h(x)}</th>" for x, c in zip(headers, cls, strict=True))
    body = "".join(
        "<tr>" + "".join(f"<td{c}>{v}</td>" for v, c in zip(row, cls, strict=True)) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _section(title: str, inner: str, count: int | None = None, ident: str = "") -> str:
    n = f'<span class="count">{count}</span>' if count is not None else ""
    anchor = f' id="{h(ident)}"' if ident else ""
    return f"<section{anchor}><h2>{h(title)}{n}</h2>{inner}</section>"


def _ts(value: Any) -> str:
    """An RFC 3339 time as date and time on two lines (full value in the tooltip)."""
    text = clean(value)
    if len(text) >= 20 and text[10] == "T":
        return f'<span title="{h(text)}">{h(text[:10])}<br><span class="mono">{h(text[11:])}</span></span>'
    return h(text or "—")


def _kv(d: Any, esc: Callable[[Any], str] = h) -> str:
    """``key=value`` lines of a dict (nested values as JSON); ``esc``: ``h`` or a memo of it."""
    if isinstance(d, dict) and d:
        return "<br>".join(
            f"<code>{esc(k)}</code>={esc(json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v)}"
            for k, v in d.items()
        )
    return ""


class Escapes:
    """``h`` and ``badge`` of strings, each distinct string escaped once (same output as calling them)."""

    def __init__(self) -> None:
        self._h: dict[str, str] = {}
        self._badges: dict[str, str] = {}
        self._numbers: dict[tuple[type, Any], str] = {}

    def __call__(self, value: Any) -> str:
        return _kept(self._h, h, value)

    def badge(self, value: Any) -> str:
        return _kept(self._badges, badge, value)

    def number(self, value: Any) -> str:
        """``h`` of a score: kept by type and spelling (1, 1.0 and True print differently, as 0.0 and -0.0)."""
        if type(value) not in (int, float):
            return h(value)
        key = (type(value), value if type(value) is int else repr(value))  # -0.0 == 0.0, nan != nan
        out = self._numbers.get(key)
        if out is None:
            out = self._numbers[key] = h(value)
        return out

    def pair(self, key: Any, value: Any) -> str:
        """One ``key=value`` line of ``_kv``."""
        shown = json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value
        return f"<code>{self(key)}</code>={self(shown)}"


def _kept(cache: dict[str, str], escape: Callable[[Any], str], value: Any) -> str:
    """``escape(value)``, kept in ``cache`` for a string (other values are escaped each time)."""
    if type(value) is not str:
        return escape(value)
    out = cache.get(value)
    if out is None:
        out = cache[value] = escape(value)
    return out


def pretty_json(value: Any) -> str:
    """``json.dumps(value, ensure_ascii=False, indent=2)``, the same text, for what ``json.loads`` gives.

    Why: with an indent the standard library encodes in Python, one generator step per token (~0.2 s
    for a PII-heavy run's records); here each leaf is the C encoder's and each level one join. Anything
    else than str keys and JSON leaves goes to ``json.dumps`` itself."""
    try:
        return _pretty(value, "\n")
    except _NotPlain:
        return json.dumps(value, ensure_ascii=False, indent=2)


class JsonLines:
    """``json.loads`` of a line, noting whether it held a float orjson writes otherwise than
    ``json.dumps`` (NaN and ±Infinity: null; a magnitude below 1e-4: another form; checked against
    a million random doubles): such a record's pretty form takes the exact path."""

    def __init__(self) -> None:
        self._odd = False

    def loads(self, text: str) -> tuple[Any, bool]:
        self._odd = False
        value = json.loads(text, parse_float=self._float, parse_constant=self._constant)
        return value, self._odd

    def _float(self, text: str) -> float:
        f = float(text)
        if not (f == 0 or 1e-4 <= abs(f) < math.inf):
            self._odd = True
        return f

    def _constant(self, text: str) -> float:
        self._odd = True
        return float(text)  # "NaN", "Infinity", "-Infinity": what json.loads gives


def pretty_json_plain(value: Any) -> str:
    """``pretty_json(value)`` for a value ``JsonLines`` read without noting a float: orjson's indent
    (C: ~40x faster on a PII-heavy run's records), the same text."""
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode("utf-8")
    except TypeError:  # a lone surrogate, an integer over 64 bits: the exact path
        return pretty_json(value)


class _NotPlain(Exception):
    """A value ``_pretty`` does not encode itself (``json.dumps`` does it)."""


_ENCODE = json.JSONEncoder(ensure_ascii=False).encode  # one leaf: the C encoder (NaN, floats, escapes)


def _pretty(value: Any, pad: str) -> str:
    t = type(value)
    if t is str:
        return encode_basestring(value)
    if t is dict:
        if not value:
            return "{}"
        inner = pad + "  "
        parts = []
        for k, v in value.items():
            if type(k) is not str:
                raise _NotPlain
            parts.append(encode_basestring(k) + ": " + _pretty(v, inner))
        return "{" + inner + ("," + inner).join(parts) + pad + "}"
    if t is list:
        if not value:
            return "[]"
        inner = pad + "  "
        return "[" + inner + ("," + inner).join([_pretty(v, inner) for v in value]) + pad + "]"
    if value is None or t is bool or t is int or t is float:
        return _ENCODE(value)
    raise _NotPlain


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
