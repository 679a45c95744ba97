"""SIGKILL mid-step, then crash recovery (evidence.recovery) on the next command; later runs still work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evidence.index import EvidenceIndex
from evidence.records import parse_record
from evidence.recovery import recover_evidence_dir, recover_run
from evidence.runfolder import RunFolder, RunLock
from evidence.verify import verify_run
from tests.evidence.integrity_support import mission_yaml, records, run, serve_pages, short_steps, write_mission
from tests.server import TestServer

pytestmark = pytest.mark.browser
WARDEN = [sys.executable, "-m", "runner.cli"]


def _warden(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*WARDEN, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def _holds_intent(data: bytes, kind: str) -> bool:
    """Step 2's intent of this kind is in the bytes (by the record's JSON, whatever its key order)."""
    for line in data.splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue  # a line being written
        if isinstance(r, dict) and (r.get("phase"), r.get("step"), r.get("kind")) == ("intent", 2, kind):
            return True
    return False


def _wait_for_intent(folder_parent: Path, kind: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"warden exited early ({proc.returncode})"
        for folder in folder_parent.glob("*"):
            path = folder / "records.jsonl"
            if path.exists() and _holds_intent(path.read_bytes(), kind):
                return folder
        time.sleep(0.05)
    raise TimeoutError(f"no {kind} intent within {timeout}s")


def test_sigkill_mid_step_then_recovery_then_a_new_run(tmp_path: Path, test_server: TestServer) -> None:
    serve_pages(test_server)
    ev = tmp_path / "ev"
    steps = [f"goto: {test_server.url('allowed.localhost', '/a')}", "wait_for: {seconds: 20}"]
    mission = write_mission(tmp_path, mission_yaml(test_server, steps).replace("timeout: 60", "timeout: 120"))
    proc = subprocess.Popen(
        [*WARDEN, "run", str(mission), "--evidence-dir", str(ev), "--quiet", "--approval", "deny"],
        cwd=Path(__file__).parents[2], start_new_session=True,
    )
    try:
        folder = _wait_for_intent(ev / "runs", "wait_for", proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        with_group = proc.pid
        try:
            os.killpg(with_group, signal.SIGKILL)  # Playwright's driver and Chromium, started by this test
        except ProcessLookupError:
            pass
    assert proc.returncode == -signal.SIGKILL

    # The prefix verifies and is reported interrupted, through the read-only CLI too.
    index = EvidenceIndex(ev)
    try:
        report = verify_run(folder, index)
        assert report.ok, report.problems
        assert report.status == "interrupted"
        assert index.get_run(folder.name).status == "running"  # type: ignore[union-attr]
    finally:
        index.close()
    done = _warden("evidence", "verify", folder.name, "--evidence-dir", str(ev), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "interrupted" in done.stdout
    before = records(folder)
    assert before[-1]["phase"] == "intent" and before[-1]["kind"] == "wait_for"

    # Read-only commands leave it as it is; the explicit recovery step closes the dead run.
    done = _warden("evidence", "list", "--evidence-dir", str(ev), cwd=tmp_path)
    assert done.returncode == 0 and "interrupted?" in done.stdout + done.stderr, done.stderr
    assert records(folder) == before
    done = _warden("evidence", "recover", "--evidence-dir", str(ev), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "recovered" in done.stderr
    after = records(folder)
    assert after[: len(before)] == before  # nothing rewritten, only appended
    exc, end = after[len(before):]
    assert exc["type"] == "exception_record" and exc["category"] == "crash_recovery"
    assert "step 2 (wait_for) has an intent" in exc["message"]
    assert exc["prev_hash"] == before[-1]["hash"] and exc["seq"] == before[-1]["seq"] + 1
    assert end["type"] == "run_record" and end["phase"] == "end" and end["outcome"] == "interrupted"
    index = EvidenceIndex(ev)
    try:
        row = index.get_run(folder.name)
        assert row is not None and row.status == "interrupted" and row.chain_head == end["hash"]
        report = verify_run(folder, index)
        assert report.ok, report.problems
        assert report.status == "interrupted"
    finally:
        index.close()
    assert json.loads((folder / "run.json").read_text())["status"] == "interrupted"

    # A second recovery changes nothing; a later run into the same store works and verifies.
    assert recover_evidence_dir(ev) == []
    test_server.reset()
    serve_pages(test_server)
    short = write_mission(tmp_path, mission_yaml(test_server, short_steps(test_server)), "short.yaml")
    code, result = run(short, ev)
    assert code == 0 and result is not None and result.folder is not None
    done = _warden("evidence", "verify", "--all", "--evidence-dir", str(ev), cwd=tmp_path)
    assert done.returncode == 0, done.stdout
    assert "all 2 run(s) intact" in done.stdout


def test_recovery_leaves_a_live_run_alone_and_cuts_a_torn_tail(tmp_path: Path, test_server: TestServer) -> None:
    serve_pages(test_server)
    ev = tmp_path / "ev"
    mission = write_mission(tmp_path, mission_yaml(test_server, short_steps(test_server)))
    code, result = run(mission, ev)
    assert code == 0 and result is not None and result.folder is not None
    folder = RunFolder(result.folder)
    # Make it look like a run killed mid-write: drop the closing record, add a torn half line, mark running.
    lines = folder.records.read_bytes().split(b"\n")[:-1]
    kept = b"\n".join(lines[:-1]) + b"\n"
    folder.records.write_bytes(kept + lines[-1][:40])
    info = folder.read_run_info()
    folder.write_run_info(info.model_copy(update={"status": "running", "ended_at": None, "exit_code": None}))
    index = EvidenceIndex(tmp_path / "crashed.db")  # the index as the dead process left it
    try:
        last = json.loads(lines[-2])
        index.upsert_run_info(folder.read_run_info(), folder.root)
        index.add_records([(parse_record(json.loads(x)), x.decode()) for x in lines[:-1]])

        lock = RunLock.acquire(folder)  # a live process holds it
        try:
            assert recover_run(index, folder.run_id, folder.root).action == "skipped"
            assert folder.records.read_bytes() == kept + lines[-1][:40]
        finally:
            lock.release()

        outcome = recover_run(index, folder.run_id, folder.root)
        assert outcome.action == "closed"
        assert "40 bytes of an incomplete last line were cut off" in outcome.detail
        report = verify_run(folder.root, index)
        assert report.ok, report.problems
        assert report.status == "interrupted"
        recs = records(folder.root)
        assert recs[-2]["category"] == "crash_recovery" and recs[-2]["seq"] == last["seq"] + 1
    finally:
        index.close()


def test_recovery_refuses_to_paper_over_a_cut_tail(tmp_path: Path, test_server: TestServer) -> None:
    serve_pages(test_server)
    ev = tmp_path / "ev"
    mission = write_mission(tmp_path, mission_yaml(test_server, short_steps(test_server)))
    code, result = run(mission, ev)
    assert code == 0 and result is not None and result.folder is not None
    folder = RunFolder(result.folder)
    info = folder.read_run_info()
    folder.write_run_info(info.model_copy(update={"status": "running", "ended_at": None, "exit_code": None}))
    lines = folder.records.read_bytes().split(b"\n")[:-1]
    folder.records.write_bytes(b"\n".join(lines[:-3]) + b"\n")  # cut 3 records; the index still has them
    index = EvidenceIndex(ev)
    try:
        index.upsert_run(run_id=info.run_id, mission_id=info.mission_id, mission_version=info.mission_version,
                         mission_sha256=info.mission_sha256, started_at=info.started_at, status="running",
                         folder=folder.root)
        outcome = recover_run(index, folder.run_id, folder.root)
        assert outcome.action == "skipped" and outcome.problems
        report = verify_run(folder.root, index)
        assert not report.ok
        assert any("cut from the tail" in p for p in report.problems), report.problems
    finally:
        index.close()
