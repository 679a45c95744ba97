"""One record from its redacted fields: envelope, schema validation, hash, line (the writer's core).

Split from ``evidence.writer`` (which keeps the order, locking, I/O and failure handling) so that
each stays short; this part is pure: no I/O, no state (``build_group`` hands chunks to its caller's
``Chunked``, which may index them beside it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from evidence.canonical import canonical_form, canonical_form_of
from evidence.record_lines import ENVELOPE_FIELDS, hashed_line, jsonl_line, new_record_ids
from evidence.records import GENESIS_HASH, RECORD_TYPES, Actor, Attachment, Record, walked_fields

_FACTS: dict[type[Record], tuple[str, str, Any, Any, tuple[str, ...] | None]] = {}
"""Per record class: its schema id, type, validator, serializer and ``walked_fields`` (fixed per class)."""


def build_record(
    record_cls: type[Record], clean: Any, actor_data: Any, attachments: Sequence[Attachment], *,
    run_id: str, seq: int, prev: str, record_id: str, time: str,
) -> tuple[Record, str]:
    """The validated record (its hash set) and its JSONL line, from redacted fields ``clean``."""
    facts = _FACTS.get(record_cls)
    if facts is None:
        facts = _FACTS[record_cls] = (record_cls.schema_id(), record_cls.TYPE, record_cls.__pydantic_validator__,
                                      record_cls.__pydantic_serializer__, walked_fields(record_cls))
    schema, type_, validator, serializer, walked = facts
    draft: dict[str, Any] = {
        **clean,
        "schema": schema,
        "record_id": record_id,
        "run_id": run_id,
        "seq": seq,
        "type": type_,
        "time": time,
        "actor": actor_data,
        "prev_hash": prev,
        "hash": GENESIS_HASH,
        "attachments": [a.model_dump(mode="json") for a in attachments] if attachments else [],
    }
    # Validated once against its schema; the only field set afterwards is ``hash``, a
    # SHA-256 hex computed here, so the copy below is as valid as the model it copies.
    # ``model_validate`` / ``model_dump(mode="json", by_alias=True)``, without their Python wrappers.
    model = validator.validate_python(draft)
    body = serializer.to_python(model, mode="json", by_alias=True)
    del body["hash"]
    # ``walked``: only members of number or dict type can need the reference encoder.
    canonical, fast = canonical_form(body) if walked is None else canonical_form_of(body, walked)
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    # The usual line: hash first, then the canonical JSON (one encoding serves hash and line).
    # A record only the reference encoder can write (an unusual float) keeps the model's order.
    line = hashed_line(canonical, digest) if fast else jsonl_line({**body, "hash": digest})
    # The model was validated with a placeholder hash and is referenced nowhere else yet: its hash
    # is set in place (what ``model_copy(update=...)`` gives, without copying the model).
    model.__dict__["hash"] = digest
    return model, line


def check_items(items: Sequence[tuple[type[Record], Any, Any, Any]]) -> None:
    """``TypeError`` unless every item's type is a registered record type and its fields leave the
    envelope to the writer."""
    for record_cls, _, _, fields in items:
        if RECORD_TYPES.get(record_cls.TYPE) is not record_cls:
            raise TypeError(f"{record_cls.__name__} is not a registered record type")
        reserved = ENVELOPE_FIELDS & fields.keys()
        if reserved:
            raise TypeError(f"envelope fields are filled by the writer: {', '.join(sorted(reserved))}")


def redact_group(
    items: Sequence[tuple[type[Record], Any, Any, Any]], actor_data: Callable[[Any], Any],
    redact: Callable[[list[Any]], list[Any]],
) -> list[Any]:
    """``redact`` (one batch) of the items' fields and actors' dumps, as ``build_group`` takes them
    (fields, actor, fields, actor, ...), each distinct actor dump redacted once, not once per record."""
    fields = [f for _, _, _, f in items]
    actors = [actor_data(a) for _, a, _, _ in items]
    distinct = list({id(a): a for a in actors}.values())
    clean = redact(fields + distinct)
    by_id = {id(a): c for a, c in zip(distinct, clean[len(fields):], strict=True)}
    return [tree for f, a in zip(clean[:len(fields)], actors, strict=True) for tree in (f, by_id[id(a)])]


class Chunked(Protocol):
    """Where a large group's records go as they are built (``evidence.index_bulk.BulkInsert``)."""

    def add(self, records: Sequence[Record], lines: Sequence[str]) -> None: ...


CHUNK = 128
"""Records per chunk handed to ``Chunked.add`` while the rest of the group is built."""


def build_group(
    items: Sequence[tuple[type[Record], Any, Sequence[Attachment], Any]], clean_trees: list[Any],
    actor_data: Callable[[Any], Any], now: Callable[[], str], *, run_id: str, seq: int, head: str,
    chunks: Chunked | None = None,
) -> tuple[list[Record], list[str]]:
    """The records and lines of a group, chained after ``seq`` / ``head``: ``items`` (type, actor,
    attachments, fields) with their redacted fields and actors in ``clean_trees`` (fields, actor,
    fields, actor, ...; emptied here, so the trees are freed as soon as the group is built).
    ``chunks`` gets every ``CHUNK`` records as soon as they are built, and the rest at the end."""
    records: list[Record] = []
    lines: list[str] = []
    record_ids = new_record_ids(len(items))
    handed = 0
    for n, (record_cls, actor, attachments, _) in enumerate(items):
        seq += 1
        clean_actor = clean_trees[2 * n + 1]
        if type(actor) is Actor and (clean_actor is actor_data(actor) or clean_actor == actor_data(actor)):
            clean_actor = actor  # redaction left it as it is: the (validated, frozen) model itself
        record, line = build_record(record_cls, clean_trees[2 * n], clean_actor, attachments, run_id=run_id,
                                    seq=seq, prev=head, record_id=record_ids[n], time=now())
        head = record.hash
        records.append(record)
        lines.append(line)
        if chunks is not None and len(records) - handed >= CHUNK:
            chunks.add(records[handed:], lines[handed:])
            handed = len(records)
    clean_trees.clear()
    if chunks is not None and handed < len(records):
        chunks.add(records[handed:], lines[handed:])
    return records, lines
