"""The fleet's database: one PostgreSQL URL for the queue (Procrastinate), the approvals and the index.

Users give the SQLAlchemy spelling the index already takes (``postgresql+psycopg://...``) or plain
``postgresql://``; Procrastinate gets the libpq form of the same URL. The schema (Procrastinate's
tables and functions, and ``fleet_attempts``) is applied once, under an advisory lock, by whoever
needs it first: two workers starting together do not race.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import psycopg
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from kernel.errors import UsageError

_SCHEMA_LOCK = 0x57A2D3F1  # pg_advisory_xact_lock key: "warden fleet schema"


def sqlalchemy_url(url: str | None) -> str:
    """The URL as SQLAlchemy (psycopg 3) takes it; ``UsageError`` unless it is PostgreSQL."""
    raw = (url or "").strip()
    if raw.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + raw.split("://", 1)[1]
    if raw.startswith("postgresql+psycopg://"):
        return raw
    raise UsageError("--db must be a PostgreSQL URL (postgresql://USER:PASSWORD@HOST:PORT/DB): the fleet's queue "
                     "lives in PostgreSQL (the embedded default, SQLite, is one process: use `warden run`)")


def libpq_url(url: str | None) -> str:
    """The same URL in libpq's spelling, for Procrastinate's psycopg pool."""
    return "postgresql://" + sqlalchemy_url(url).split("://", 1)[1]


def engine_for(url: str | None) -> Engine:
    return create_engine(sqlalchemy_url(url), pool_pre_ping=True)


def ensure_schema(engine: Engine) -> None:
    """Procrastinate's schema and the fleet's own table, applied once (idempotent, race-free)."""
    from procrastinate.schema import SchemaManager

    from runner.fleet.attempts import FleetBase

    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK})
        if conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is None:
            conn.exec_driver_sql(SchemaManager.get_schema().replace("%", "%%"))
        FleetBase.metadata.create_all(conn)


def has_schema(engine: Engine) -> bool:
    with engine.connect() as conn:
        return conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is not None


@contextmanager
def reachable(url: str | None) -> Iterator[None]:
    """A database that cannot be reached or logged into is the command line's problem (exit 2), said
    with the host and database only (never the password)."""
    try:
        yield
    except (OperationalError, psycopg.OperationalError) as exc:
        parts = urlsplit(sqlalchemy_url(url))
        where = f"{parts.hostname}:{parts.port or 5432}{parts.path}"
        first = str(getattr(exc, "orig", exc)).strip().splitlines()[:1]
        detail = first[0].replace(parts.password or "\0", "***")[:200] if first else type(exc).__name__
        raise UsageError(f"cannot use the fleet database at {where}: {detail}") from None
