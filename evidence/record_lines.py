"""How one record becomes one line: string caps, the JSONL form, which records gate an action.

Shared by the writer (evidence.writer) and the verifiers (evidence.verify_stream / verify_exact),
which check that every line is byte-for-byte this serialisation of the record it holds.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from evidence.records import Record

MAX_STRING = 16 * 1024
"""Longest string kept in a record (characters); longer ones end with a truncation marker."""

ENVELOPE_FIELDS = frozenset(
    {"schema", "schema_", "record_id", "run_id", "seq", "type", "time", "actor", "prev_hash", "hash", "attachments"}
)

SYNC_EVERY = 64
"""Most non-gating records left un-fsynced before the writer fsyncs anyway."""

_SURROGATE = re.compile("[\ud800-\udfff]")
# Characters some line splitters (str.splitlines, JavaScript, editors) treat as line breaks that
# JSON does not require escaping; they are escaped so one record is one line for every reader.
_EXTRA_BREAKS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def cap_string(text: str, limit: int = MAX_STRING) -> str:
    """Replace lone surrogates (not encodable as UTF-8) and cap length with an explicit marker."""
    if _SURROGATE.search(text):
        text = _SURROGATE.sub("\ufffd", text)
    if len(text) > limit:
        return f"{text[:limit]}…[truncated {len(text) - limit} chars]"
    return text


def jsonl_line(body: Mapping[str, Any]) -> str:
    """One JSON object on one line: no raw CR/LF, U+2028/U+2029/NEL escaped; NaN refused."""
    return escape_breaks(_dumps(body))


HASH_PREFIX = '{"hash":"'
"""How a record line written since issue 13 starts: its hash first, then its canonical JSON."""


def escape_breaks(text: str) -> str:
    """U+2028, U+2029 and NEL as JSON escapes (see ``jsonl_line``)."""
    if not text.isascii():
        for ch, esc in _EXTRA_BREAKS.items():
            if ch in text:
                text = text.replace(ch, esc)
    return text


def hashed_line(canonical: str, digest: str) -> str:
    """The line of a record whose canonical JSON (without ``hash``) is ``canonical``: ``hash`` first,
    then the canonical members — so the line *is* its hash input, and a verifier encodes it once.
    It is also ``jsonl_line`` of the record parsed back (keys in that order)."""
    return f'{HASH_PREFIX}{digest}",{escape_breaks(canonical[1:])}' if canonical != "{}" else \
        f'{HASH_PREFIX}{digest}"}}'


def jsonable(value: Any) -> Any:
    """Models to dicts, tuples to lists: the shapes ``redact_tree`` walks."""
    t = type(value)
    if t is str or t is int or t is float or t is bool or value is None:
        return value
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if t is dict or isinstance(value, Mapping):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def capped(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        return cap_string(value, limit)
    if isinstance(value, dict):
        return {cap_string(str(k), limit): capped(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [capped(v, limit) for v in value]
    return value


def is_gating(record_cls: type[Record], fields: Mapping[str, Any]) -> bool:
    """True for records that must be durable before ``append`` returns (they gate an action or
    mark the run's start/end/failure); False for records whose loss in a power cut hides no action."""
    t = record_cls.TYPE
    if t == "action_record":
        return fields.get("phase") != "outcome"
    if t == "decision_record":
        return fields.get("step") is not None
    return t != "pii_finding"


def new_record_ids(n: int) -> list[str]:
    """``[str(uuid.uuid4()) for _ in range(n)]`` from one ``os.urandom`` call: the same 122 random bits
    and version/variant bits per id (RFC 4122 version 4), without a system call and a UUID object each."""
    raw = bytearray(os.urandom(16 * n))
    raw[6::16] = bytes(b & 0x0F | 0x40 for b in raw[6::16])
    raw[8::16] = bytes(b & 0x3F | 0x80 for b in raw[8::16])
    x = raw.hex()
    return [f"{x[i:i + 8]}-{x[i + 8:i + 12]}-{x[i + 12:i + 16]}-{x[i + 16:i + 20]}-{x[i + 20:i + 32]}"
            for i in range(0, 32 * n, 32)]
