"""How one record becomes one line: string caps, the JSONL form, which records gate an action.

Shared by the writer (evidence.writer) and the verifiers (evidence.verify_stream / verify_exact),
which check that every line is byte-for-byte this serialisation of the record it holds.
"""

from __future__ import annotations

import json
import os
import re
import time
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
    """``n`` fresh record ids: UUID version 7 (RFC 9562) — the current Unix time in milliseconds, a
    counter (the id's place in the batch, 12 bits), then 62 random bits from one ``os.urandom``.

    Unique as UUID4s are (a repeat needs the same millisecond, counter and 62 random bits), and
    time-ordered: the index's unique ``record_id`` B-tree grows at its end instead of at a random
    page per record (a UUID4 cost SQLite ~8 µs more per insert, and a commit's dirty pages spread
    over the whole tree). The record's ``time`` already says when it was written: nothing new leaks."""
    ms = time.time_ns() // 1_000_000
    t = f"{ms & 0xFFFF_FFFF_FFFF:012x}"
    head = f"{t[:8]}-{t[8:12]}-7"
    raw = bytearray(os.urandom(8 * n))
    raw[0::8] = bytes(b & 0x3F | 0x80 for b in raw[0::8])  # the RFC 4122/9562 variant bits
    x = raw.hex()
    return [f"{head}{i & 0xFFF:03x}-{x[16 * i:16 * i + 4]}-{x[16 * i + 4:16 * i + 16]}" for i in range(n)]
