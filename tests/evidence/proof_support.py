"""Shared by the "evidence proves itself" tests: one real signed run, copies of it, the CLI, snapshots."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from evidence.signing import keygen
from tests.evidence.integrity_support import mission_yaml, run, serve_pages, short_steps, write_mission
from tests.server import TestServer

WARDEN = [sys.executable, "-m", "runner.cli"]


@pytest.fixture(scope="module")
def keypair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return keygen(tmp_path_factory.mktemp("keys") / "warden.key")


@pytest.fixture(scope="module")
def signed_ev(
    tmp_path_factory: pytest.TempPathFactory, test_server_session: TestServer, keypair: tuple[Path, Path]
) -> Path:
    """An evidence dir holding one real, signed run (3 steps with screenshots); never modified by a test."""
    test_server_session.reset()
    serve_pages(test_server_session)
    base = tmp_path_factory.mktemp("signed")
    mission = write_mission(base, mission_yaml(test_server_session, short_steps(test_server_session)))
    code, result = run(mission, base / "ev", environ={**os.environ, "WARDEN_SIGNING_KEY": str(keypair[0])})
    assert code == 0, result
    checkpoint(base / "ev")
    return base / "ev"


def run_folder(ev: Path) -> Path:
    return next((ev / "runs").iterdir())


def copy_evidence_dir(ev: Path, target: Path) -> Path:
    shutil.copytree(ev, target)
    return target


def checkpoint(ev: Path) -> None:
    """Fold the SQLite WAL into warden.db (it is then removed on close): the store at rest."""
    db = ev / "warden.db"
    if db.exists():
        conn = sqlite3.connect(db)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()


def warden(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*WARDEN, *map(str, args)], capture_output=True, text=True, timeout=120, cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def snapshot(root: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file under ``root``: bytes, mtime and mode (a new, removed or touched file shows)."""
    out: dict[str, tuple[bytes, int, int]] = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            st = p.stat()
            out[p.relative_to(root).as_posix()] = (p.read_bytes(), st.st_mtime_ns, st.st_mode)
    return out


def lines(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (folder / "records.jsonl").read_bytes().splitlines()]


def write_lines(folder: Path, records: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records)
    (folder / "records.jsonl").write_bytes(text.encode())


def edit_run_json(folder: Path, **changes: Any) -> None:
    path = folder / "run.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data, indent=2) + "\n")


def edit_index(ev: Path, sql: str, *params: Any) -> None:
    conn = sqlite3.connect(ev / "warden.db")
    try:
        conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()
    checkpoint(ev)
