"""Fail closed (SPEC §3 exit 5, principle 5): no action runs unless its intent record is durable.

Real parts: Chromium through the driver, the local test server's request log as the witness of
side effects, real SQLite, a real full tmpfs. The injected-error sweep fails every write position
of a short run in turn (the low-level write/fsync every evidence byte goes through).
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from evidence import runfolder
from evidence.index import EvidenceIndex
from evidence.recovery import recover_evidence_dir
from evidence.verify import verify_run
from tests.evidence.integrity_support import (
    mission_yaml,
    records,
    run,
    serve_pages,
    short_steps,
    write_mission,
)
from tests.server import TestServer

pytestmark = pytest.mark.browser

STEP_ROUTES = {1: "/a", 2: "/b", 3: "/c"}


class DiskFull:
    """Fails the Nth low-level evidence write/fsync (records, attachments, run.json) with ENOSPC,
    and every one after it (the disk stays full).

    A failing write first writes half its bytes, like a real short write before ENOSPC, so the
    writer's rollback of a torn line is exercised too.
    """

    def __init__(self, fail_at: int | None) -> None:
        self.fail_at = fail_at
        self.calls = 0
        self._write = runfolder.write_all
        self._fsync = runfolder.fsync_fd

    def _tick(self, fd: int) -> bool:
        if "report.html" in os.readlink(f"/proc/self/fd/{fd}"):
            return False  # the HTML report is a view written after the run closed, not evidence
        self.calls += 1
        return self.fail_at is not None and self.calls >= self.fail_at

    def write_all(self, fd: int, data: bytes) -> None:
        if self._tick(fd):
            self._write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._write(fd, data)

    def fsync_fd(self, fd: int) -> None:
        if self._tick(fd):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._fsync(fd)


def _install(monkeypatch: pytest.MonkeyPatch, fault: DiskFull) -> None:
    monkeypatch.setattr(runfolder, "write_all", fault.write_all)
    monkeypatch.setattr(runfolder, "fsync_fd", fault.fsync_fd)


def _durable_intent_steps(folder: Path) -> set[int]:
    if not (folder / "records.jsonl").exists():
        return set()
    return {r["step"] for r in records(folder) if r["type"] == "action_record" and r["phase"] == "intent"}


def _requested_routes(server: TestServer) -> set[str]:
    return {r.route for r in server.requests_for("allowed.localhost") if r.route in STEP_ROUTES.values()}


def test_intent_is_fsynced_before_the_action_reaches_the_server(
    tmp_path: Path, test_server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_pages(test_server)
    mission = write_mission(tmp_path, mission_yaml(test_server, short_steps(test_server)))
    synced: list[tuple[float, bytes]] = []  # (time of fsync, the last bytes written to that fd)
    last_write: dict[int, bytes] = {}
    real_write, real_fsync = runfolder.write_all, runfolder.fsync_fd

    def write_all(fd: int, data: bytes) -> None:
        real_write(fd, data)
        last_write[fd] = data

    def fsync_fd(fd: int) -> None:
        real_fsync(fd)
        synced.append((time.time(), last_write.get(fd, b"")))

    monkeypatch.setattr(runfolder, "write_all", write_all)
    monkeypatch.setattr(runfolder, "fsync_fd", fsync_fd)
    code, _ = run(mission, tmp_path / "ev")
    assert code == 0
    def holds_intent(data: bytes, step: int) -> bool:  # by the record's JSON, whatever its key order
        for line in data.splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if isinstance(r, dict) and r.get("phase") == "intent" and r.get("step") == step:
                return True
        return False

    for step, route in STEP_ROUTES.items():
        intent_synced = [t for t, data in synced if holds_intent(data, step)]
        assert len(intent_synced) == 1, f"intent of step {step} fsynced {len(intent_synced)} times"
        request = test_server.wait_for_request(route, timeout=1)
        assert intent_synced[0] < request.time, f"step {step} reached the server before its intent was durable"


def test_write_error_at_every_position_stops_before_the_next_action(
    tmp_path: Path, test_server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_pages(test_server)
    mission = write_mission(tmp_path, mission_yaml(test_server, short_steps(test_server)))

    counter = DiskFull(None)  # a clean run first: how many write positions there are
    _install(monkeypatch, counter)
    code, _ = run(mission, tmp_path / "count")
    assert code == 0
    total = counter.calls
    # run.json, mission copy, records (a step's allow decision and intent: one group), screenshots
    assert total >= 25, total

    for n in range(1, total + 1):
        test_server.reset()
        serve_pages(test_server)
        ev = tmp_path / f"ev{n}"
        fault = DiskFull(n)
        _install(monkeypatch, fault)
        code, _ = run(mission, ev)
        monkeypatch.undo()
        assert code == 5, f"write position {n}/{total}: exit {code}"
        folder = next((ev / "runs").iterdir())
        durable = _durable_intent_steps(folder)
        reached = _requested_routes(test_server)
        assert reached == {STEP_ROUTES[s] for s in durable}, (
            f"position {n}: server saw {sorted(reached)} but durable intents are for steps {sorted(durable)}"
        )
        index = EvidenceIndex(ev)
        try:
            if (folder / "run.json").exists():
                report = verify_run(folder, index)
                assert report.ok, f"position {n}: {report.problems}"
                last = records(folder)[-1] if (folder / "records.jsonl").stat().st_size else {}
                if last.get("type") == "run_record" and last.get("phase") == "end":
                    # Only run.json's final rewrite failed: the chain itself says how the run ended.
                    assert any("run.json was not updated" in x for x in report.notes), report.notes
                else:
                    assert report.status in {"interrupted", "evidence_error"}, (n, report.status)
            recover_evidence_dir(ev)  # the next command closes what the failure left open
            report = verify_run(folder, index)
            assert report.ok, f"position {n} after recovery: {report.problems}"
        finally:
            index.close()


# ------------------------------------------------------------------------------ a real full disk


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (root required): {done.stderr.decode(errors='replace')}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_real_full_disk_stops_the_run_with_exit_5(
    tmp_path: Path, small_tmpfs: Path, test_server: TestServer
) -> None:
    serve_pages(test_server, big=True)
    steps: list[str] = []
    for i in range(40):
        steps += [f"goto: {test_server.url('allowed.localhost', f'/p{i}')}", f"screenshot: {{name: s{i}}}"]
    text = mission_yaml(test_server, steps).replace("timeout: 60", "timeout: 120\n  max_steps: 100")
    mission = write_mission(tmp_path, text)
    ev = small_tmpfs / "evidence"
    code, result = run(mission, ev)
    assert code == 5, result
    folder = next((ev / "runs").iterdir())
    recs = records(folder)
    goto_intents = {r["target"]["url"].rsplit("/", 1)[1] for r in recs
                    if r["type"] == "action_record" and r["phase"] == "intent" and r["kind"] == "goto"}
    reached = {r.route.lstrip("/") for r in test_server.requests_for("allowed.localhost") if r.route.startswith("/p")}
    assert 0 < len(reached) < 40, "the disk should fill part-way through"
    assert reached == goto_intents, f"pages reached {sorted(reached)} vs durable goto intents {sorted(goto_intents)}"
    executed = max(int(p[1:]) for p in reached)
    assert f"p{executed + 1}" not in reached  # nothing after the failing write
    index = EvidenceIndex(ev)
    try:
        report = verify_run(folder, index)
        assert report.ok, report.problems
        assert report.status in {"interrupted", "evidence_error"}
    finally:
        index.close()
