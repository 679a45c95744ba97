"""Real fleet parts for the tests: a fresh PostgreSQL schema per module, `warden worker` processes,
`warden submit | jobs | approvals` as separate processes, and waits on conditions with deadlines."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import create_engine, text

from runner.fleet.db import sqlalchemy_url
from tests.server import Response, TestServer

WARDEN = str(Path(sys.executable).parent / "warden")
PG_URL = os.environ.get("WARDEN_TEST_PG_URL")
HOW = ("WARDEN_TEST_PG_URL is not set: run `export WARDEN_TEST_PG_URL=$(scripts/setup-postgres.sh)` "
       "(installs and starts Debian's PostgreSQL), or use `make test`")
T = TypeVar("T")


def fresh_schema() -> Iterator[str]:
    """A URL whose search_path is a new, empty schema (dropped after): no collision with other tests."""
    if not PG_URL:
        if os.environ.get("CI"):
            pytest.fail(HOW)
        pytest.skip(HOW)
    schema = f"fleet_{secrets.token_hex(4)}"
    engine = create_engine(sqlalchemy_url(PG_URL))
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 120.0, every: float = 0.25) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def warden(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([WARDEN, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "250", **(env or {})}, stdin=subprocess.DEVNULL)


def jobs(db: str) -> dict[int, dict[str, Any]]:
    done = warden("jobs", "list", "--db", db, "--json", "--limit", "500")
    assert done.returncode == 0, done.stderr
    return {int(j["job_id"]): j for j in map(json.loads, done.stdout.splitlines())}


class Worker:
    """A `warden worker` process; its stderr goes to a log file the test can read."""

    def __init__(self, db: str, evidence_dir: Path, log: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.log = log
        self.evidence_dir = evidence_dir
        self._log_file = log.open("w")
        self.proc = subprocess.Popen(
            [WARDEN, "worker", "--db", db, "--evidence-dir", str(evidence_dir), "--heartbeat", "1",
             "--stalled-after", "6", *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._log_file,
            env={**os.environ, **(env or {})},
        )
        wait_for(f"worker {self.proc.pid} ready", lambda: "ready:" in self.text() or self._dead(), timeout=60)
        assert self.proc.poll() is None, self.text()

    def _dead(self) -> bool:
        return self.proc.poll() is not None

    @property
    def name_suffix(self) -> str:
        return f":{self.proc.pid}"

    def text(self) -> str:
        return self.log.read_text()

    def stop(self, sig: int | None = signal.SIGTERM, timeout: float = 120) -> int:
        """Send ``sig`` (None: it was sent already) and wait for the worker to exit."""
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log_file.close()


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc): a worker's children, drivers and Chromium."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    return {p for p in pids if Path(f"/proc/{p}").exists() and
            (Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split() or ["X"])[0] not in ("Z", "X")}


class Gate:
    """A page the server holds until released: a run is provably mid-mission while it waits here."""

    def __init__(self, server: TestServer, route: str, after: str) -> None:
        self.release = threading.Event()
        self.hits = 0
        self.log: list[tuple[float, Any]] = []

        def hold(request: Any) -> Response:
            self.hits += 1
            self.log.append((time.monotonic(), request.client))
            self.release.wait(90)
            return Response(body=f"<html><body><h1>held page</h1><a id='after' href='{after}'>on</a></body></html>")

        server.set_route(route, hold)
