"""The index writer's own connection settings: performance only, on top of the shared ones."""

from __future__ import annotations

from pathlib import Path

from evidence.index_sqlite import PRAGMAS, WRITER_PRAGMAS, connect


def test_writer_connection_has_the_shared_settings_and_a_larger_cache(tmp_path: Path) -> None:
    conn = connect(str(tmp_path / "warden.db"))
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA secure_delete").fetchone()[0] == 1
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA cache_size").fetchone()[0] == -16384
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 10000
    finally:
        conn.close()


def test_writer_pragmas_change_no_shared_setting() -> None:
    shared = {p.split("=")[0].strip() for p in PRAGMAS}
    assert all(p.split("=")[0].strip() not in shared for p in WRITER_PRAGMAS)
    assert WRITER_PRAGMAS == ("PRAGMA cache_size = -16384", "PRAGMA wal_autocheckpoint = 10000")


def test_rows_committed_before_any_checkpoint_are_read_by_another_connection_and_after_close(
    tmp_path: Path,
) -> None:
    """The later checkpoint changes where committed rows sit (WAL or database), never whether they are there."""
    path = str(tmp_path / "warden.db")
    conn = connect(path)
    try:
        conn.execute("CREATE TABLE t (x TEXT)")
        conn.executemany("INSERT INTO t VALUES (?)", [("r" * 800,) for _ in range(3000)])
        other = connect(path)
        try:
            assert other.execute("SELECT count(*) FROM t").fetchone()[0] == 3000
        finally:
            other.close()
    finally:
        conn.close()
    assert not (tmp_path / "warden.db-wal").exists() or (tmp_path / "warden.db-wal").stat().st_size == 0
    again = connect(path)
    try:
        assert again.execute("SELECT count(*) FROM t").fetchone()[0] == 3000
    finally:
        again.close()
