"""``warden evidence query``: filter records across runs, served from the SQL index (SPEC §5).

Audits become filters: ``--type approval_record --where decision=denied --since 2026-11-01``.

* Common filters hit denormalised, indexed columns (``type``, ``time``, ``decision``, ``phase``,
  ``kind``, ``step``, ``mission_id``, ``entity_type``, ``approval_id``, plus ``run_id``/``seq``).
  Each leads an index that continues with the sort key ``time, run_id, seq``.
* ``--where`` on any other record field, or a dotted path into the record JSON
  (``subject.host=evil.localhost``, ``actor.id=alice``, ``checks.0.guard=network``), is evaluated
  with the database's JSON functions: SQLite's ``json_extract``/``json_type`` and PostgreSQL's
  ``jsonb #>``. Values compare by JSON type: ``3`` matches the number 3 and the string "3";
  ``true``/``false`` the booleans and those strings; ``null`` a null or absent field; anything else
  the string.
* Field names are checked against the record schemas: a typo is an error, never a silent "no match".

Output is the records as written (already redacted by the writer): JSONL is byte-for-byte the
lines of ``records.jsonl``; CSV and the table add columns derived from them.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TextIO

from sqlalchemy import ColumnElement, Select, Text, and_, cast, func, literal, or_, select
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Session

from evidence.index import EvidenceIndex, RecordRow, RunRow
from evidence.index_rows import token_of
from evidence.records import LEGACY_TYPES, RECORD_TYPES
from evidence.runfolder import FINISHED_STATUSES, utc_timestamp
from evidence.timeline import safe_text, summarize
from kernel.errors import UsageError

Format = Literal["table", "jsonl", "csv"]
FORMATS: tuple[str, ...] = ("table", "jsonl", "csv")
OUTCOMES: tuple[str, ...] = ("running", *sorted(FINISHED_STATUSES))

# Record fields held in their own indexed column: ``--where`` on them never parses JSON.
COLUMNS: dict[str, Any] = {
    "type": RecordRow.type,
    "time": RecordRow.time,
    "run_id": RecordRow.run_id,
    "seq": RecordRow.seq,
    "record_id": RecordRow.record_id,
    "hash": RecordRow.hash,
    "decision": RecordRow.decision,
    "phase": RecordRow.phase,
    "kind": RecordRow.kind,
    "step": RecordRow.step,
    "mission_id": RecordRow.mission_id,
    "entity_type": RecordRow.entity_type,
    "approval_id": RecordRow.approval_id,
}
_INT_COLUMNS = frozenset({"seq", "step"})
# Paths held in a column for the records that have them (decision_record): used when VALUE can only
# mean a string identifier (a column holds those alone), with the record type pinned to theirs.
PATH_COLUMNS: dict[tuple[str, ...], tuple[Any, str]] = {
    ("guard",): (RecordRow.guard, "decision_record"),
    ("subject", "host"): (RecordRow.subject_host, "decision_record"),
}
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def record_fields(types: Sequence[str] = ()) -> set[str]:
    """Top-level field names of the given record types (all types when empty), envelope included."""
    out: set[str] = set()
    for name in types or RECORD_TYPES:
        models = [RECORD_TYPES[name], *(m for m in LEGACY_TYPES.values() if name == m.TYPE)]
        for model in models:  # a legacy version's fields still name records of older runs
            out.update(f.alias or key for key, f in model.model_fields.items())
    return out


def parse_time(value: str, *, end: bool = False) -> str:
    """An RFC 3339 time or a date as the index's fixed-width UTC string (it compares as text).

    ``end=True`` (for ``--until``) gives an exclusive bound that includes the value: the next day
    for a date, the next millisecond for a time. A time without an offset is taken as UTC.
    """
    text = value.strip()
    try:
        if _DATE.match(text):
            dt = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
            step = timedelta(days=1)
        else:
            dt = datetime.fromisoformat(text.replace("z", "Z"))
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            step = timedelta(milliseconds=1)
    except ValueError:
        raise UsageError(f"not an RFC 3339 time or YYYY-MM-DD date: {value!r}") from None
    dt = dt.astimezone(UTC)
    if not end:
        # Sub-millisecond precision rounds down: ``time >= bound`` still includes the instant given.
        return utc_timestamp(dt)
    return utc_timestamp(dt.replace(microsecond=dt.microsecond - dt.microsecond % 1000) + step)


@dataclass(frozen=True)
class Where:
    """One ``--where FIELD=VALUE``: ``path`` is the dotted field path split into segments."""

    path: tuple[str, ...]
    value: str

    @classmethod
    def parse(cls, item: str, known_fields: set[str]) -> Where:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--where expects FIELD=VALUE (a dotted path is allowed), got {item!r}")
        path = tuple(key.split("."))
        if any(not _SEGMENT.match(p) for p in path):
            raise UsageError(f"--where field {key!r}: use names, digits, '_' and '-' separated by '.'")
        if path[0] not in known_fields:
            near = ", ".join(sorted(known_fields))
            raise UsageError(f"--where: no record field {path[0]!r} in the selected record types (fields: {near})")
        return cls(path, value)

    def candidates(self) -> list[Any]:
        """The JSON values VALUE stands for: the string always, plus a number/boolean/null reading."""
        out: list[Any] = [self.value]
        text = self.value.strip()
        if text in {"true", "false"}:
            out.append(text == "true")
        elif text == "null":
            out.append(None)
        else:
            try:
                number = json.loads(text)
            except ValueError:
                number = None
            if isinstance(number, int | float) and not isinstance(number, bool):
                out.append(number)
        return out


@dataclass(frozen=True)
class RecordQuery:
    types: tuple[str, ...] = ()
    run_id: str | None = None
    mission_id: str | None = None
    since: str | None = None  # inclusive, index format
    until: str | None = None  # exclusive, index format
    outcome: str | None = None  # the run's status
    decision: str | None = None
    where: tuple[Where, ...] = ()
    limit: int | None = None
    notes: list[str] = field(default_factory=list, compare=False)

    @classmethod
    def build(
        cls,
        *,
        types: Sequence[str] = (),
        run_id: str | None = None,
        mission_id: str | None = None,
        since: str | None = None,
        until: str | None = None,
        outcome: str | None = None,
        decision: str | None = None,
        where: Sequence[str] = (),
        limit: int | None = None,
    ) -> RecordQuery:
        """Validate CLI-shaped arguments (``UsageError`` on anything wrong) into a query."""
        unknown = [t for t in types if t not in RECORD_TYPES]
        if unknown:
            raise UsageError(f"unknown record type {unknown[0]!r} (types: {', '.join(sorted(RECORD_TYPES))})")
        if outcome is not None and outcome not in OUTCOMES:
            raise UsageError(f"--outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
        if limit is not None and limit < 0:
            raise UsageError("--limit must be 0 (no limit) or more")
        known = record_fields(types)
        parsed = tuple(Where.parse(w, known) for w in where)
        for w in parsed:
            if w.path[0] in _INT_COLUMNS and len(w.path) == 1:
                try:
                    int(w.value)
                except ValueError:
                    raise UsageError(f"--where {w.path[0]} expects an integer, got {w.value!r}") from None
        lo = parse_time(since) if since else None
        hi = parse_time(until, end=True) if until else None
        return cls(
            types=tuple(dict.fromkeys(types)), run_id=run_id, mission_id=mission_id, since=lo, until=hi,
            outcome=outcome, decision=decision, where=parsed, limit=limit or None,
        )

    def statement(self, dialect: str) -> Select[RecordRow]:
        stmt = select(RecordRow)
        if self.types:
            one = RecordRow.type == self.types[0]
            stmt = stmt.where(RecordRow.type.in_(self.types) if len(self.types) > 1 else one)
        if self.run_id is not None:
            stmt = stmt.where(RecordRow.run_id == self.run_id)
        if self.mission_id is not None:
            stmt = stmt.where(RecordRow.mission_id == self.mission_id)
        if self.since is not None:
            stmt = stmt.where(RecordRow.time >= self.since)
        if self.until is not None:
            stmt = stmt.where(RecordRow.time < self.until)
        if self.decision is not None:
            stmt = stmt.where(RecordRow.decision == self.decision)
        if self.outcome is not None:
            stmt = stmt.join(RunRow, RunRow.run_id == RecordRow.run_id).where(RunRow.status == self.outcome)
        for w in self.where:
            stmt = stmt.where(_where_clause(w, dialect, self.types))
        stmt = stmt.order_by(RecordRow.time, RecordRow.run_id, RecordRow.seq)
        if self.limit is not None:
            stmt = stmt.limit(self.limit)
        return stmt


def _where_clause(w: Where, dialect: str, types: tuple[str, ...] = ()) -> ColumnElement[bool]:
    routed = PATH_COLUMNS.get(w.path)
    if routed is not None and len(w.candidates()) == 1 and token_of(w.value) is not None:
        # Only decision records fill the column; anything else with that field is read from its JSON.
        col, rtype = routed
        if types == (rtype,):
            return col == w.value  # type: ignore[no-any-return]
        json_side = _sqlite_json(w) if dialect == "sqlite" else _pg_json(w) if dialect == "postgresql" else None
        if json_side is None:
            return col == w.value  # type: ignore[no-any-return]
        return or_(col == w.value, and_(RecordRow.type != rtype, json_side))
    if len(w.path) == 1 and w.path[0] in COLUMNS:
        col = COLUMNS[w.path[0]]
        if w.value == "null":
            return col.is_(None)  # type: ignore[no-any-return]
        if w.path[0] == "entity_type":  # one of a finding's space-separated entity types
            esc = w.value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            return or_(col == w.value, *(col.like(p, escape="\\") for p in (f"{esc} %", f"% {esc}", f"% {esc} %")))
        return col == (int(w.value) if w.path[0] in _INT_COLUMNS else w.value)  # type: ignore[no-any-return]
    if dialect == "sqlite":
        return _sqlite_json(w)
    if dialect == "postgresql":
        return _pg_json(w)
    raise UsageError(f"--where on {'.'.join(w.path)!r} needs SQLite or PostgreSQL (JSON functions); this is {dialect}")


def _sqlite_json(w: Where) -> ColumnElement[bool]:
    path = "$" + "".join(f"[{p}]" if p.isdigit() else f'."{p}"' for p in w.path)
    value = func.json_extract(RecordRow.body, path)
    kind = func.json_type(RecordRow.body, path)
    alts: list[ColumnElement[bool]] = []
    for c in w.candidates():
        if c is None:
            alts.append(or_(kind.is_(None), kind == "null"))
        elif isinstance(c, bool):
            alts.append(kind == ("true" if c else "false"))
        elif isinstance(c, int | float):
            alts.append(and_(kind.in_(("integer", "real")), value == c))
        else:
            alts.append(and_(kind == "text", value == c))
    return or_(*alts)


def _pg_json(w: Where) -> ColumnElement[bool]:
    path = literal(list(w.path), type_=ARRAY(Text))
    value = cast(RecordRow.body, JSONB).op("#>", return_type=JSONB)(path)
    alts: list[ColumnElement[bool]] = []
    for c in w.candidates():
        if c is None:
            alts.append(or_(value.is_(None), value == cast(literal("null"), JSONB)))
        else:
            alts.append(value == cast(literal(json.dumps(c)), JSONB))
    return or_(*alts)


@dataclass(frozen=True, slots=True)
class QueryRow:
    """One matching record as the index holds it: its columns and its exact JSON line (``body``)."""

    run_id: str
    seq: int
    record_id: str
    type: str
    time: str
    decision: str | None
    phase: str | None
    kind: str | None
    step: int | None
    mission_id: str | None
    entity_type: str | None
    approval_id: str | None
    guard: str | None
    subject_host: str | None
    hash: str
    body: str

    def data(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.body)
        return loaded


_ROW_FIELDS: tuple[str, ...] = tuple(QueryRow.__slots__)


def run_query(index: EvidenceIndex, query: RecordQuery, *, batch: int = 1000) -> Iterator[QueryRow]:
    """Stream matching records, oldest first (time, run, seq), as plain rows (no ORM objects: a
    large answer streams at the driver's pace)."""
    table = RecordRow.__table__
    stmt = query.statement(index.engine.dialect.name).with_only_columns(*(table.c[f] for f in _ROW_FIELDS))
    with index.engine.connect() as conn:
        result = conn.execution_options(yield_per=batch).execute(stmt)
        for row in result:
            yield QueryRow(*row)


def count_query(index: EvidenceIndex, query: RecordQuery) -> int:
    stmt = query.statement(index.engine.dialect.name).order_by(None).limit(None)
    with Session(index.engine) as s:
        return int(s.scalar(select(func.count()).select_from(stmt.subquery())) or 0)


# -- output ---------------------------------------------------------------------------------------

CSV_COLUMNS = ("time", "run_id", "seq", "type", "step", "kind", "verdict", "summary", "record_id", "hash", "record")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> str:
    """Text for a spreadsheet: a cell that would start a formula gets a leading ``'`` (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def write_jsonl(rows: Iterator[QueryRow], out: TextIO) -> int:
    n = 0
    for row in rows:
        out.write(row.body + "\n")
        n += 1
    return n


def write_csv(rows: Iterator[QueryRow], out: TextIO) -> int:
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    n = 0
    for row in rows:
        data = row.data()
        verdict, summary = summarize(data)
        w.writerow([
            _csv_cell(v) for v in (
                row.time, row.run_id, row.seq, row.type, row.step, row.kind, verdict, summary, row.record_id,
                row.hash, row.body,
            )
        ])
        n += 1
    return n


def table_rows(rows: Iterator[QueryRow]) -> Iterator[tuple[str, ...]]:
    """(time, run, seq, type, step, kind, verdict, summary) as display-safe text."""
    for row in rows:
        verdict, summary = summarize(row.data())
        yield tuple(
            safe_text(v) for v in (
                row.time, row.run_id, row.seq, row.type, "" if row.step is None else row.step, row.kind or "",
                verdict or "", summary,
            )
        )
