"""Canonical bytes and hashes for the evidence chain.

The record hash is SHA-256 over the RFC 8785 (JCS) canonical JSON of the record without its
``hash`` field. JCS is a published standard, so an auditor can recompute every hash with any
conforming library, without Warden's code.

``canonical_bytes`` is a fast encoder byte-identical to RFC 8785 (a property test compares it with
the reference ``rfc8785`` package on random trees): for a tree of strings, ints, bools, nulls,
floats in the range where Python and ECMAScript write numbers alike (``_kind``), lists and dicts
whose keys are all BMP-only, ``json.dumps(sort_keys=True, ensure_ascii=False,
separators=(",", ":"))`` *is* JCS — the C encoder escapes exactly what JCS escapes, and sorting
BMP-only keys by code point equals JCS's sort by UTF-16 code units. Anything else (a float outside
that range, a key with a character above U+FFFF, an int beyond ±2**53-1, a non-str key) goes to
``rfc8785``.

For those same trees ``orjson.dumps(option=OPT_SORT_KEYS)`` writes the json encoder's bytes exactly
(compact, sorted by code point, the same escapes: ``\\" \\\\ \\b \\f \\n \\r \\t``, other controls as
lowercase ``\\u00xx``, nothing else escaped; for non-integral floats in ``_kind``'s range the same
shortest digits in fixed notation), several times faster: property tests compare it with both and
with ``rfc8785``. Where orjson refuses (a lone surrogate, nesting beyond its limit) the json encoder
decides, as before.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import rfc8785

_CHUNK = 1 << 20
_MAX_SAFE_INT = 2**53 - 1  # rfc8785 refuses integers outside the IEEE 754 exact range
_REFERENCE_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False).encode


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_c_encoder = getattr(json.encoder, "c_make_encoder", None)
# ``_REFERENCE_ENCODE`` builds the C encoder afresh on every call (and a dict of ids for its cycle
# check); built once here, with the same arguments, it writes the same text (a test compares the
# two). Without the cycle check a cyclic value raises RecursionError instead of ValueError: records
# are trees, and either way nothing is written.
_C_ENCODE = None if _c_encoder is None else _c_encoder(
    None, _not_json, json.encoder.encode_basestring, None, ":", ",", True, False, False
)


def _encode(obj: Any) -> str:
    """``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)``."""
    if _C_ENCODE is None or type(obj) is not dict:  # pragma: no cover - CPython always has the C encoder
        return _REFERENCE_ENCODE(obj)
    return "".join(_C_ENCODE(obj, 0))


_ORJSON_DUMPS = orjson.dumps
_SORT_KEYS = orjson.OPT_SORT_KEYS
_ORJSON_ERROR = orjson.JSONEncodeError


def _jcs_bytes(obj: Any) -> bytes:
    """``_encode(obj).encode()`` for a tree ``_kind`` calls ``_PLAIN``, by orjson (see the module
    docstring); where orjson refuses, the json encoder's text (which then raises as it did)."""
    try:
        return _ORJSON_DUMPS(obj, option=_SORT_KEYS)
    except _ORJSON_ERROR:
        return _encode(obj).encode("utf-8")


def _jcs_text(obj: Any) -> str:
    """``_encode(obj)`` for a tree ``_kind`` calls ``_PLAIN`` (``_jcs_bytes`` as text); where orjson
    refuses, the json encoder's text as it is (a lone surrogate stays for the UTF-8 step to refuse)."""
    try:
        return _ORJSON_DUMPS(obj, option=_SORT_KEYS).decode("utf-8")
    except _ORJSON_ERROR:
        return _encode(obj)


_PLAIN, _INTEGRAL, _REFERENCE = 0, 1, 2


def _kind(obj: Any) -> int:
    """_PLAIN: the fast encoder gives JCS as is; _INTEGRAL: it does once integral floats are ints;
    _REFERENCE: only ``rfc8785`` can say.

    Floats: JCS writes a number as ECMAScript does — shortest round-trip digits, fixed notation
    below 1e21 — and Python's ``repr`` writes the same digits, in fixed notation for
    1e-4 <= |x| < 1e16. So a non-integral float in that range is written identically; an integral
    one below 2**53 is JCS's integer (12.0 -> "12", -0.0 -> "0"); anything else goes to the reference.
    """
    kind = _PLAIN
    if type(obj) is dict:  # a record: most members are strings, skipped without a stack round trip
        stack = [v for k, v in obj.items() if type(v) is not str or type(k) is not str or not k.isascii()]
        if any(type(k) is not str or (not k.isascii() and max(k) > "\uffff") for k in obj):
            return _REFERENCE
    else:
        stack = [obj]
    pop, push = stack.pop, stack.append
    while stack:
        v = pop()
        t = type(v)
        if t is str or v is None or t is bool:
            continue
        if t is int:
            if -_MAX_SAFE_INT <= v <= _MAX_SAFE_INT:
                continue
            return _REFERENCE
        if t is float:
            a = abs(v)
            if v.is_integer():
                if a > _MAX_SAFE_INT:
                    return _REFERENCE
                kind = _INTEGRAL
                continue
            if 1e-4 <= a < 1e16:
                continue
            return _REFERENCE
        if t is dict:
            for k, item in v.items():
                if type(k) is not str or (not k.isascii() and max(k) > "\uffff"):
                    return _REFERENCE
                push(item)
            continue
        if t is list:
            stack.extend(v)
            continue
        return _REFERENCE
    return kind


def _plain(obj: Any) -> bool:
    """True when the fast encoder's output equals JCS for ``obj`` as it is (see ``_kind``)."""
    return _kind(obj) == _PLAIN


def _ints(obj: Any) -> Any:
    """A copy of ``obj`` with every integral float as the int it equals (see ``_kind``)."""
    t = type(obj)
    if t is float:
        return int(obj) if obj.is_integer() else obj
    if t is dict:
        return {k: _ints(v) for k, v in obj.items()}
    if t is list:
        return [_ints(v) for v in obj]
    return obj


def plain_json_text(text: str) -> bool:
    """For a tree parsed from JSON ``text`` by a decoder whose ``parse_float``/``parse_constant``
    saw no float, NaN or Infinity and whose ``parse_int`` saw no integer of 16+ digits: True when
    ``text`` has no character above U+FFFF, so the tree is ``_plain`` (JSON keys are strings). False
    only means "walk the tree"."""
    return text.isascii() or max(text) <= "\uffff"


def canonical_bytes(obj: Any, *, plain: bool = False) -> bytes:
    """RFC 8785 canonical UTF-8 JSON of ``obj``; raises on values JCS cannot represent (NaN, 2**60).

    ``plain=True`` (the caller has established ``_plain(obj)``, e.g. by ``plain_json_text``) skips
    the tree walk.
    """
    kind = _PLAIN if plain else _kind(obj)
    if kind == _PLAIN:
        return _jcs_bytes(obj)
    if kind == _INTEGRAL:
        return _jcs_bytes(_ints(obj))
    return rfc8785.dumps(obj)


def canonical_form(obj: Any) -> tuple[str, bool]:
    """(canonical text, whether it is the fast encoder's output of ``obj``'s own tree — i.e. what
    ``json.dumps(sort_keys=True)`` of the record parsed back from that text gives)."""
    kind = _kind(obj)
    if kind == _PLAIN:
        return _jcs_text(obj), True
    if kind == _INTEGRAL:
        return _jcs_text(_ints(obj)), True
    return rfc8785.dumps(obj).decode("utf-8"), False


def canonical_form_of(obj: dict[str, Any], walked: tuple[str, ...]) -> tuple[str, bool]:
    """``canonical_form(obj)`` for a dict whose keys are ASCII strings and whose members not named in
    ``walked`` are already known to be ``_plain`` (a validated record's members of string, literal,
    bool or null type, or lists / models of those: ``records.walked_fields``): only the members
    named in ``walked`` are walked, the others are never looked at."""
    kind = _PLAIN
    for name in walked:
        v = obj.get(name)
        t: type = type(v)
        if t is str or v is None or t is bool or (t is int and -_MAX_SAFE_INT <= v <= _MAX_SAFE_INT):
            continue
        k = _kind(v)
        if k == _REFERENCE:
            return rfc8785.dumps(obj).decode("utf-8"), False
        kind = kind or k
    if kind == _PLAIN:
        return _jcs_text(obj), True
    return _jcs_text(_ints(obj)), True


def canonical_text(obj: Any, *, plain: bool = False) -> str:
    """``canonical_bytes`` as text (what a writer's line holds, hash aside)."""
    kind = _PLAIN if plain else _kind(obj)
    if kind == _PLAIN:
        return _jcs_text(obj)
    if kind == _INTEGRAL:
        return _jcs_text(_ints(obj))
    return rfc8785.dumps(obj).decode("utf-8")


def record_hash(record: Mapping[str, Any], *, plain: bool = False) -> str:
    """SHA-256 hex of a record dict, computed over every key except ``hash``.

    ``hash`` is dropped if present so the same function serves the writer (which has no hash yet)
    and the verifier (which reads records back with their hash).
    """
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical_bytes(body, plain=plain)).hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path | str) -> str:
    """SHA-256 hex of a file, streamed so large screenshots do not load into memory at once."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()
