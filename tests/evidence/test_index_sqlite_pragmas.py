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
    finally:
        conn.close()


def test_writer_pragmas_change_no_shared_setting() -> None:
    shared = {p.split("=")[0].strip() for p in PRAGMAS}
    assert all(p.split("=")[0].strip() not in shared for p in WRITER_PRAGMAS)
    assert WRITER_PRAGMAS == ("PRAGMA cache_size = -16384",)
