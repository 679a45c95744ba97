"""One record from its redacted fields: envelope, schema validation, hash, line (the writer's core).

Split from ``evidence.writer`` (which keeps the order, locking, I/O and failure handling) so that
each stays short; this part is pure: no I/O, no state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from evidence.canonical import canonical_form, canonical_form_of
from evidence.record_lines import hashed_line, jsonl_line
from evidence.records import GENESIS_HASH, Attachment, Record, walked_fields


def build_record(
    record_cls: type[Record], clean: Any, actor_data: Any, attachments: Sequence[Attachment], *,
    run_id: str, seq: int, prev: str, record_id: str, time: str,
) -> tuple[Record, str]:
    """The validated record (its hash set) and its JSONL line, from redacted fields ``clean``."""
    draft: dict[str, Any] = {
        **clean,
        "schema": record_cls.schema_id(),
        "record_id": record_id,
        "run_id": run_id,
        "seq": seq,
        "type": record_cls.TYPE,
        "time": time,
        "actor": actor_data,
        "prev_hash": prev,
        "hash": GENESIS_HASH,
        "attachments": [a.model_dump(mode="json") for a in attachments],
    }
    # Validated once against its schema; the only field set afterwards is ``hash``, a
    # SHA-256 hex computed here, so the copy below is as valid as the model it copies.
    # ``model_validate`` / ``model_dump(mode="json", by_alias=True)``, without their Python wrappers.
    model = record_cls.__pydantic_validator__.validate_python(draft)
    body = record_cls.__pydantic_serializer__.to_python(model, mode="json", by_alias=True)
    del body["hash"]
    walked = walked_fields(record_cls)  # only members of number or dict type can need the reference
    canonical, fast = canonical_form(body) if walked is None else canonical_form_of(body, walked)
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    # The usual line: hash first, then the canonical JSON (one encoding serves hash and line).
    # A record only the reference encoder can write (an unusual float) keeps the model's order.
    line = hashed_line(canonical, digest) if fast else jsonl_line({**body, "hash": digest})
    # The model was validated with a placeholder hash and is referenced nowhere else yet: its hash
    # is set in place (what ``model_copy(update=...)`` gives, without copying the model).
    model.__dict__["hash"] = digest
    return model, line
