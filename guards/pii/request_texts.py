"""The texts of an outgoing request worth a PII scan: path, query and body, raw and decoded.

Form fields one by one, JSON strings with their path, multipart parts, and percent-decoded forms up
to two levels (double encoding), each tagged with its ``source`` (``query[name]``, ``body.json[..]``)
for the finding's location. ``fine`` marks a single value (a form field), which wins over a coarse
match (the whole query) that swallows it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, unquote, unquote_plus, urlsplit

__all__ = ["request_texts"]



def _decodings(text: str, plus: bool) -> Iterator[str]:
    """Percent-decoded forms, up to two levels (double encoding)."""
    cur = text
    for _ in range(2):
        dec = unquote_plus(cur) if plus else unquote(cur)
        if dec == cur:
            return
        yield dec
        cur = dec


def _with_decodings(source: str, text: str, fine: int, plus: bool = True) -> Iterator[tuple[str, str, int]]:
    yield source, text, fine
    if "%" in text or (plus and "+" in text):
        for dec in _decodings(text, plus):
            yield source, dec, fine


def request_texts(url: str, body: bytes | None, content_type: str | None) -> Iterator[tuple[str, str, int]]:
    """(source, text, fine) for each form of the request worth scanning; fine=1 for single values."""
    parts = urlsplit(url)
    if parts.path:
        yield from _with_decodings("path", parts.path, 0, plus=False)
        for seg in parts.path.split("/"):
            if seg and ("%" in seg or ";" in seg):
                yield from _with_decodings("path", seg, 1, plus=False)
    if parts.query:
        yield from _with_decodings("query", parts.query, 0)
        yield from _form_fields("query", parts.query)
    if not body:
        return
    ctype = (content_type or "").lower()
    charset = "utf-8"
    m = re.search(r"charset=\"?([\w.-]+)", ctype)
    if m:
        charset = m.group(1)
    try:
        text = body.decode(charset, "replace")
    except LookupError:
        text = body.decode("utf-8", "replace")
    yield "body", text, 0
    stripped = text.lstrip()
    if "multipart/" in ctype:
        yield from _multipart(body, ctype)
    elif "x-www-form-urlencoded" in ctype or (
        not stripped.startswith(("{", "[", "<")) and re.match(r"[\w.%+\-\[\]]+=", stripped)
    ):
        yield from _with_decodings("body", text, 0)
        yield from _form_fields("body.form", text)
    if "json" in ctype or stripped.startswith(("{", "[")):
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if doc is not None:
            for path, s in _json_strings(doc, "body.json"):
                yield from _with_decodings(path, s, 1)
    elif "%" in text and "x-www-form-urlencoded" not in ctype:
        yield from _with_decodings("body", text, 0)


def _form_fields(source: str, text: str) -> Iterator[tuple[str, str, int]]:
    for k, v in parse_qsl(text, keep_blank_values=True):
        name = k[:40]
        if k:
            yield from _with_decodings(f"{source}[name]", k, 1)
        if v:
            yield from _with_decodings(f"{source}[{name}]", v, 1)


def _json_strings(node: Any, path: str, depth: int = 0) -> Iterator[tuple[str, str]]:
    if depth > 64:
        return
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, bool) or node is None:
        return
    elif isinstance(node, int | float):
        yield path, str(node)
    elif isinstance(node, dict):
        for k, v in node.items():
            yield f"{path}.<key>", str(k)
            yield from _json_strings(v, f"{path}.{str(k)[:40]}", depth + 1)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _json_strings(v, f"{path}[{i}]", depth + 1)


def _multipart(body: bytes, ctype: str) -> Iterator[tuple[str, str, int]]:
    m = re.search(r"boundary=\"?([^\";]+)", ctype)
    if not m:
        return
    delim = b"--" + m.group(1).encode("latin-1", "replace")
    for i, part in enumerate(body.split(delim)):
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            head, sep, content = part.partition(b"\n\n")
        if not sep:
            continue
        h = head.decode("utf-8", "replace")
        nm = re.search(r'name="([^"]*)"', h)
        name = (nm.group(1) if nm else str(i))[:40]
        fn = re.search(r'filename="([^"]*)"', h)
        if fn:
            yield f"body.multipart[{name}].filename", fn.group(1), 1
        value = content.removesuffix(b"\r\n").removesuffix(b"\n").decode("utf-8", "replace")
        yield from _with_decodings(f"body.multipart[{name}]", value, 1)
