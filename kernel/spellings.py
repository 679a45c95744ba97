"""The spellings under which a value travels: raw, URL-encoded, JSON- and HTML-escaped, base64.

One list for everyone who must recognise a value in another spelling: the secret guards (a secret
must not leave under any of them), the evidence redactors (a secret or a known PII value must not
be written under any of them). It lives in the kernel because both guards/ and evidence/ need it
and neither may import the other.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterator
from urllib.parse import quote, quote_plus

MIN_BASE64_CORE = 8  # shorter base64 fragments match too much unrelated text


def base64_cores(raw: bytes) -> Iterator[str]:
    """Base64 of ``raw`` at each of the three alignments: the characters that depend only on ``raw``
    (standard and URL-safe alphabets), so the value is found inside a longer base64 string."""
    n = len(raw)
    for k in range(3):
        enc = base64.b64encode(b"\0" * k + raw).decode()
        core = enc[(k * 8 + 5) // 6 : (k + n) * 8 // 6]
        if len(core) >= MIN_BASE64_CORE:
            yield core
            yield core.replace("+", "-").replace("/", "_")


def encoded_forms(value: str, *, with_base64: bool = False) -> list[str]:
    """``value`` and its common encodings, without repeats or empty strings, raw first.

    URL-encoding both strict and keeping ``@`` (e-mail addresses in query strings), form encoding
    (``+`` for space), JSON string escaping, HTML escaping; with ``with_base64`` also the base64
    cores (an ``Authorization: Basic`` header, a token in a cookie).
    """
    forms = [
        value,
        quote(value, safe=""),
        quote_plus(value, safe=""),
        quote(value, safe="@"),
        quote_plus(value, safe="@"),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        html.escape(value),
    ]
    if with_base64:
        forms.extend(base64_cores(value.encode()))
    return list(dict.fromkeys(f for f in forms if f))
