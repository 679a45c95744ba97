"""Canonical bytes and hashes for the evidence chain.

The record hash is SHA-256 over the RFC 8785 (JCS) canonical JSON of the record without its
``hash`` field. JCS is a published standard, so an auditor can recompute every hash with any
conforming library, without Warden's code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import rfc8785

_CHUNK = 1 << 20


def canonical_bytes(obj: Any) -> bytes:
    """RFC 8785 canonical UTF-8 JSON of ``obj``; raises on values JCS cannot represent (NaN, 2**60)."""
    return rfc8785.dumps(obj)


def record_hash(record: Mapping[str, Any]) -> str:
    """SHA-256 hex of a record dict, computed over every key except ``hash``.

    ``hash`` is dropped if present so the same function serves the writer (which has no hash yet)
    and the verifier (which reads records back with their hash).
    """
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical_bytes(body)).hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path | str) -> str:
    """SHA-256 hex of a file, streamed so large screenshots do not load into memory at once."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()
