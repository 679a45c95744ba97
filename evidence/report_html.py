"""HTML primitives of ``report.html`` (evidence/report.py): escaping, badges, tables, sections.

Every value a record carries may be page-derived: ``h`` HTML-escapes it after ``clean`` has shown
control and bidi-override characters as escapes, so nothing a page wrote can inject markup or
reorder what the auditor reads.
"""

from __future__ import annotations

import html
import json
import unicodedata
from collections.abc import Iterable
from typing import Any

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


def _kv(d: Any) -> str:
    if isinstance(d, dict) and d:
        return "<br>".join(
            f"<code>{h(k)}</code>={h(json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v)}"
            for k, v in d.items()
        )
    return ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
