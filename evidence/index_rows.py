"""The index's record rows: the denormalised columns of one record, and one fast batch insert.

Nothing sensitive in a column: the columns are copied from the redacted record and kept only when
they are identifier tokens (``_token``), so free text never reaches an indexed column.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from evidence.records import Record

if TYPE_CHECKING:
    from sqlalchemy import Connection

ROW_COLUMNS = ("run_id", "seq", "record_id", "type", "time", "decision", "phase", "kind", "step", "mission_id",
               "entity_type", "approval_id", "guard", "subject_host", "hash", "body")
_ROW_VALUES = itemgetter(*ROW_COLUMNS)
row_values = _ROW_VALUES
"""A row's values in ``ROW_COLUMNS`` order (the parameters of one insert)."""

_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,99}")
"""What a denormalised record column may hold: an identifier token, never free text."""
_FULLMATCH = _TOKEN.fullmatch


def _fields(record: Record) -> dict[str, Any]:
    # A model's fields (pydantic keeps them in __dict__): no attribute lookup per absent column.
    fields: dict[str, Any] = vars(record)
    return fields


def _opt_str(record: Record, name: str) -> str | None:
    value = _fields(record).get(name)
    return None if value is None else str(value)


def _token(record: Record, name: str) -> str | None:
    """``_opt_str``, kept only when it is an identifier token (the body still holds the redacted field)."""
    value = _opt_str(record, name)
    return value if value is not None and _TOKEN.fullmatch(value) else None


def _entity_types(record: Record) -> str | None:
    """A ``pii_finding``'s entity types as one column: v1 its one type, v2 its types space-separated
    (``--where entity_type=X`` matches one of them); only identifier tokens, never free text."""
    counts = _fields(record).get("counts")
    if not isinstance(counts, dict):
        return _token(record, "entity_type")
    names = sorted(str(k) for k in counts if _TOKEN.fullmatch(str(k)))
    return " ".join(names) or None


def token_of(value: Any) -> str | None:
    """``value`` when it is a string identifier token (a column may hold it), else None."""
    return value if type(value) is str and _TOKEN.fullmatch(value) else None


def subject_host(data: Any) -> str | None:
    """A ``decision_record``'s ``subject.host`` as a column (identifier tokens only)."""
    subject = data.get("subject") if isinstance(data, dict) else None
    return token_of(subject.get("host")) if isinstance(subject, dict) else None


def _record_row(record: Record, body: str | None) -> dict[str, Any]:
    """A record's row as a dict of ``ROW_COLUMNS`` (``mission_id``: the record's own, a run_record's;
    the index fills the run's for the others)."""
    return dict(zip(ROW_COLUMNS, row_tuple(record, body, _tok(_fields(record).get("mission_id"))), strict=True))


def row_tuple(record: Record, body: str | None, mission_id: str | None) -> tuple[Any, ...]:
    """A record's row in ``ROW_COLUMNS`` order (the parameters of one insert), ``mission_id`` given."""
    # One dict lookup per column and no call for an absent one (this runs for every record a run
    # writes): what ``_token`` / ``_entity_types`` / ``token_of`` give, without a call chain per column.
    fields = _fields(record)
    get = fields.get
    step = get("step")
    decision, phase, kind, approval = get("decision"), get("phase"), get("kind"), get("approval_id")
    if get("type") == "decision_record":
        guard = get("guard")
        guard = guard if type(guard) is str and _is_token(guard) else None
        host = subject_host(fields)
    else:
        guard = host = None
    if get("counts") is None:
        entity = get("entity_type")
        entity = None if entity is None else _tok(entity)
    else:
        entity = _entity_types(record)
    return (
        fields["run_id"], fields["seq"], fields["record_id"], fields["type"], fields["time"],
        None if decision is None else _tok(decision), None if phase is None else _tok(phase),
        None if kind is None else _tok(kind), step if isinstance(step, int) else None,
        mission_id, entity, None if approval is None else _tok(approval), guard, host,
        fields["hash"],
        body if body is not None else record.model_dump_json(by_alias=True),
    )


def _tok(value: Any) -> str | None:
    """``_token`` of a field's value."""
    if value is None:
        return None
    text = value if type(value) is str else str(value)
    return text if _is_token(text) else None


_KNOWN: dict[str, bool] = {}
"""``_TOKEN.fullmatch`` of the texts met so far (a run's decisions, phases and kinds repeat)."""


def _is_token(text: str) -> bool:
    """``_TOKEN.fullmatch(text)``, remembered for up to 4096 texts."""
    known = _KNOWN.get(text)
    if known is None:
        known = _FULLMATCH(text) is not None
        if len(_KNOWN) >= 4096:
            _KNOWN.clear()
        _KNOWN[text] = known
    return known


def insert_rows(conn: Connection, rows: Sequence[dict[str, Any]]) -> bool:
    """One ``executemany`` of prebuilt SQL through the driver (no per-row statement compilation);
    False when the driver's parameter style is not one this knows (the caller inserts with Core)."""
    style = conn.dialect.paramstyle
    mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(style or "")
    if mark is None:
        return False
    # Only constant column names and placeholders: the values travel as parameters.
    sql = f"INSERT INTO records ({', '.join(ROW_COLUMNS)}) VALUES ({', '.join([mark] * len(ROW_COLUMNS))})"  # noqa: S608
    conn.exec_driver_sql(sql, list(map(_ROW_VALUES, rows)))
    return True
