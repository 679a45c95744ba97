"""Bringing an index written by an older Warden up to date: columns and indexes it lacks, filled.

New columns are filled from the runs table and the stored record bodies, so queries see old and new
records alike (``warden evidence reindex`` would do the same from the folders).
"""

from __future__ import annotations

import json

from sqlalchemy import Engine, Table, inspect, text

from evidence.index_rows import subject_host, token_of
from evidence.records import finding_entities


def upgrade_schema(engine: Engine, table: Table) -> None:
    """An index written by an older Warden: add the denormalised columns and indexes it lacks.

    New columns are filled from the runs table and the stored record bodies, so queries see
    old and new records alike (``warden evidence reindex`` would do the same from the folders).
    """
    columns = inspect(engine).get_columns("records")
    have = {c["name"] for c in columns}
    narrow = [c for c in columns if c["name"] == "entity_type" and getattr(c["type"], "length", None)]
    if narrow and engine.dialect.name == "postgresql":  # v1 index: one type per row, VARCHAR(64)
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE records ALTER COLUMN entity_type TYPE TEXT"))
    missing = [c for c in table.columns if c.name not in have]
    if missing:
        with engine.begin() as conn:
            for col in missing:
                ddl = col.type.compile(dialect=engine.dialect)
                conn.execute(text(f'ALTER TABLE records ADD COLUMN "{col.name}" {ddl}'))
            conn.execute(
                text("UPDATE records SET mission_id = "
                     "(SELECT mission_id FROM runs WHERE runs.run_id = records.run_id)")
            )
            rows = conn.execute(
                text("SELECT run_id, seq, body FROM records WHERE type IN "
                     "('pii_finding', 'approval_request', 'approval_record', 'decision_record')")
            ).all()
            for run_id, seq, body in rows:
                data = json.loads(body)
                conn.execute(
                    text("UPDATE records SET entity_type = :e, approval_id = :a, guard = :g, subject_host = :h "
                         "WHERE run_id = :r AND seq = :s"),
                    {"e": " ".join(finding_entities(data)) or None if data.get("type") == "pii_finding" else None,
                     "a": data.get("approval_id"), "g": token_of(data.get("guard")),
                     "h": subject_host(data), "r": run_id, "s": seq},
                )
    _make_partial(engine, table)
    for ix in table.indexes:
        ix.create(engine, checkfirst=True)


def _make_partial(engine: Engine, table: Table) -> None:
    """Indexes that are partial now (``WHERE col IS NOT NULL``) but full in an older index: dropped,
    so the loop above recreates them partial (same name, same columns, the same queries use them)."""
    partial = {ix.name for ix in table.indexes if ix.dialect_options[engine.dialect.name].get("where") is not None}
    if engine.dialect.name == "sqlite":
        found = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records'"
    elif engine.dialect.name == "postgresql":
        found = ("SELECT indexname, indexdef FROM pg_indexes "
                 "WHERE tablename = 'records' AND schemaname = current_schema()")
    else:
        return
    with engine.begin() as conn:
        full = [name for name, ddl in conn.execute(text(found))
                if name in partial and " WHERE " not in str(ddl or "").upper()]
        for name in full:
            conn.execute(text(f'DROP INDEX "{name}"'))
