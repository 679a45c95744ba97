"""Finding what an evidence command is about, without writing anything: the index, the run folder.

``open_index`` opens SQLite read-only (``immutable`` when no writer's WAL is present, so not even
``-wal``/``-shm`` files appear); ``resolve_run`` turns a path or a run id into the folder judged —
always the one given or ``DIR/runs/<id>``, never the absolute path the index once recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from evidence.index import EvidenceIndex
from kernel.errors import UsageError


def _read_only_engine(db: Path) -> Any:
    """A SQLite engine that cannot write ``db`` or create anything beside it.

    ``mode=ro`` when a writer's ``-wal`` is present (its readers need the WAL index it keeps);
    ``immutable=1`` otherwise, because a read-only open of a WAL database would create the
    ``-wal``/``-shm`` files itself.
    """
    from sqlalchemy import create_engine, event

    wal = db.with_name(db.name + "-wal")
    mode = "mode=ro" if wal.exists() else "immutable=1"
    engine = create_engine(f"sqlite:///file:{quote(str(db.absolute()))}?{mode}&uri=true")

    def pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        try:
            cur.execute("PRAGMA busy_timeout = 15000")
            cur.execute("PRAGMA query_only = 1")
        finally:
            cur.close()

    event.listen(engine, "connect", pragmas)
    return engine


def open_index(evidence_dir: Path, db_url: str | None, *, read_only: bool = True) -> EvidenceIndex | None:
    """The index, or None where there is none (nothing is created). SQLite opens read-only."""
    if db_url is None and not (evidence_dir / "warden.db").exists():
        return None
    if db_url is None and read_only:
        db = evidence_dir / "warden.db"
        try:
            return EvidenceIndex(db, engine=_read_only_engine(db))
        except Exception as exc:  # e.g. an index an older Warden wrote: it must be upgraded by a writer
            raise UsageError(
                f"index {db} cannot be read as it is ({type(exc).__name__}): run `warden evidence reindex`"
            ) from exc
    return EvidenceIndex(db_url or evidence_dir)


def _as_folder(ref: str) -> Path | None:
    """``ref`` as the path of a run folder, when it names one (a path, never a bare run id)."""
    as_path = Path(ref)
    if as_path.is_dir() and ((as_path / "run.json").exists() or (as_path / "records.jsonl").exists()
                             or "/" in ref or ref in {".", ".."}):
        return as_path.absolute()
    if "/" in ref:
        raise UsageError(f"no run folder at {ref}")
    return None


def resolve_run(ref: str, evidence_dir: Path, index: EvidenceIndex | None) -> Path:
    """A run folder path as given, or a run id (a unique prefix is enough) as ``DIR/runs/<id>``.

    The index only turns a prefix into a run id: the folder judged is always the one in the
    evidence dir (or the path given), never the absolute path the index once recorded.
    """
    folder = _as_folder(ref)
    if folder is not None:
        return folder
    runs = evidence_dir / "runs"
    if ref and (runs / ref).is_dir():
        return (runs / ref).absolute()
    if index is not None:
        return (runs / index.find_run(ref).run_id).absolute()
    found = sorted(p for p in runs.glob(f"{ref}*") if p.is_dir()) if runs.is_dir() and ref else []
    if len(found) == 1:
        return found[0].absolute()
    if not found:
        raise UsageError(f"no run matches {ref!r} in {evidence_dir}")
    raise UsageError(f"run id {ref!r} is ambiguous: " + ", ".join(p.name for p in found[:5]))


@contextmanager
def index_at_hand(evidence_dir: Path, db_url: str | None, *, read_only: bool = True) -> Iterator[EvidenceIndex | None]:
    """``open_index`` for the length of a ``with`` block, closed after."""
    index = open_index(evidence_dir, db_url, read_only=read_only)
    try:
        yield index
    finally:
        if index is not None:
            index.close()


def find_run(ref: str, evidence_dir: Path, db_url: str | None) -> Path:
    """The run folder ``ref`` names (the index, if any, only completes a prefix)."""
    with index_at_hand(evidence_dir, db_url) as index:
        return resolve_run(ref, evidence_dir, index)
