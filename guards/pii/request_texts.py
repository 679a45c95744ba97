"""The texts of an outgoing request worth a PII scan: path, query, body, headers and host labels.

Form fields one by one, JSON strings with their path, multipart parts, and percent-decoded forms up
to two levels (double encoding), each tagged with its ``source`` (``query[name]``, ``body.json[..]``)
for the finding's location. ``fine`` marks a single value (a form field), which wins over a coarse
match (the whole query) that swallows it.

``header_texts``: every header value a page can influence (custom ones, the cookies the browser
adds — split into name and value —, the referer's query), base64-looking tokens decoded; the
browser's own version tokens (``Chrome/150.0.0.0``) are dropped first, as they read as IP addresses.
``host_texts``: the host's labels that hold a digit (``123-45-6789.evil.example``), and runs of
all-digit labels joined (``4111.1111.1111.1111.evil``); a name spelled as a label is not scanned
(``jane.doe.example.com`` is a host, not PII) and an IP-literal host is the destination, not data.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, unquote, unquote_plus, urlsplit

__all__ = ["header_texts", "host_texts", "request_texts"]

# Headers only the browser writes, with no page-controlled part worth a scan.
_BROWSER_ONLY = frozenset({"accept-encoding", "connection", "content-length", "host", "upgrade-insecure-requests"})
# Headers the browser fills with its own version numbers ("HeadlessChrome/150.0.0.0", v="150").
_VERSIONED = ("user-agent", "sec-ch-ua")
_VERSION_TOKEN = re.compile(r"(?:/|v=\"?)\d+(?:\.\d+)*")
# The browser's own Accept parameters (";q=0.9", ";v=b3" read as a licence number); nothing else is dropped.
_ACCEPT_PARAM = re.compile(r";\s*(?:q=[01](?:\.\d{1,3})?|v=b3)(?=[,;]|$)")
_B64_TOKEN = re.compile(r"[A-Za-z0-9+/_-]{12,}={0,2}")


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


def _base64_decodings(text: str) -> Iterator[str]:
    """Printable UTF-8 hidden in base64(url) tokens of a header value (``Basic …``, a custom token)."""
    for tok in _B64_TOKEN.findall(text)[:8]:
        raw = tok.rstrip("=").replace("-", "+").replace("_", "/")
        try:
            dec = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        if dec.isprintable():
            yield dec


def _header_value(source: str, value: str) -> Iterator[tuple[str, str, int]]:
    yield from _with_decodings(source, value, 1, plus=False)
    for dec in _base64_decodings(value):
        yield f"{source}.base64", dec, 1


_HEADER_MEMO_CAP = 1024
_header_memo: dict[tuple[tuple[str, str], ...], tuple[tuple[str, str, int], ...]] = {}


def header_texts(headers: Mapping[str, str]) -> Iterator[tuple[str, str, int]]:
    """(source, text, fine) for each header value (and custom name) worth a PII scan.

    Kept per exact header set (names, values, order): a page's 200 images send the same headers,
    read once. A pure function of that key, so a changed header is always read afresh."""
    key = tuple(headers.items())
    texts = _header_memo.get(key)
    if texts is None:
        texts = tuple(_header_texts(headers))  # an error is raised, and nothing kept
        if len(_header_memo) >= _HEADER_MEMO_CAP:
            _header_memo.clear()
        _header_memo[key] = texts
    return iter(texts)


def _header_texts(headers: Mapping[str, str]) -> Iterator[tuple[str, str, int]]:
    for key, value in headers.items():
        name = key.lower()
        if name in _BROWSER_ONLY or not value:
            continue
        label = name[:40]
        if name.startswith(_VERSIONED):
            value = _VERSION_TOKEN.sub("/", value)
        elif name == "accept":
            value = _ACCEPT_PARAM.sub("", value)
        elif name.startswith("x-") or not re.fullmatch(r"[a-z-]+", name):
            yield "header[name]", key, 1  # a custom header's name can carry data too
        if name == "cookie":
            for pair in value.split(";"):
                cname, _, cvalue = pair.strip().partition("=")
                if cname:
                    yield from _with_decodings("header[cookie][name]", cname, 1, plus=False)
                if cvalue:
                    yield from _header_value(f"header[cookie][{cname[:40]}]", cvalue.strip('"'))
        elif name == "referer":
            parts = urlsplit(value)
            yield from _with_decodings("header[referer]", parts.path, 1, plus=False)
            if parts.query:
                yield from _with_decodings("header[referer]", parts.query, 0)
                yield from _form_fields("header[referer].query", parts.query)
        else:
            yield from _header_value(f"header[{label}]", value)


def host_texts(url: str) -> Iterator[tuple[str, str, int]]:
    """(source, text, fine) for the labels of the URL's host that could hold a value."""
    yield from _host_label_texts((urlsplit(url).hostname or "").rstrip("."))


@lru_cache(maxsize=256)
def _host_label_texts(host: str) -> tuple[tuple[str, str, int], ...]:
    """``host_texts`` of one host, read once per host (a pure function of it)."""
    return tuple(_label_texts(host))


def _label_texts(host: str) -> Iterator[tuple[str, str, int]]:
    if not host:
        return
    try:
        ipaddress.ip_address(host.strip("[]"))
        return
    except ValueError:
        pass
    labels = host.split(".")
    for label in labels:
        if any(c.isdigit() for c in label):
            yield "host", label, 1
            if "-" in label or "_" in label:
                yield "host", re.sub(r"[-_]", " ", label), 1
    run: list[str] = []
    for label in [*labels, ""]:
        if label.isdigit():
            run.append(label)
            continue
        if len(run) > 1:
            yield "host", " ".join(run), 1
            yield "host", "-".join(run), 1
        run = []
