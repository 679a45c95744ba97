"""The fleet end to end with real parts: Debian's PostgreSQL, two `warden worker` processes driving
real Chromium against the local server, `warden submit`, `warden jobs` and `warden approvals` as
separate processes. Proven by what the server received and by the evidence each run left.

Placement is made deterministic with queues: worker A (1 slot) takes the ``kill`` queue, where a
mission waits on a page the server holds — provably mid-mission when A is killed; worker B (2 slots)
takes ``missions`` and ``approve``, so one of its slots waits for an approval while the other runs
the plain missions.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evidence.index import EvidenceIndex
from evidence.verify import verify_run
from runner.approvals.store import ApprovalStore
from runner.fleet.db import sqlalchemy_url
from tests.evidence.integrity_support import mission_yaml, records, serve_pages, write_mission
from tests.runner.fleet.support import Gate, Worker, alive, descendants, fresh_schema, jobs, wait_for, warden
from tests.runner.test_approval_e2e import HOST, posts, serve_shop, shop_mission
from tests.server import TestServer

pytestmark = pytest.mark.browser

APPROVAL_STEPS = ["click: {role: button, name: Submit order}", "wait_for: {text: Order received}"]


@pytest.fixture(scope="module")
def fleet_db() -> Iterator[str]:
    yield from fresh_schema()


def plain(tmp: Path, server: TestServer, name: str) -> Path:
    folder = tmp / name
    folder.mkdir()
    steps = [f"goto: {server.url(HOST, f'/a?job={name}')}", f"goto: {server.url(HOST, f'/b?job={name}')}",
             "click: {selector: '#next', timeout: 5}"]
    return write_mission(folder, mission_yaml(server, steps, mission_id=f"fleet-{name}"))


def held(tmp: Path, server: TestServer, name: str, route: str) -> Path:
    """goto /a, goto ROUTE (the server holds it), click a link to /after-ROUTE: three steps."""
    folder = tmp / name
    folder.mkdir()
    steps = [f"goto: {server.url(HOST, f'/a?job={name}')}", f"{{goto: '{server.url(HOST, route)}', timeout: 250}}",
             "click: {selector: '#after', timeout: 5}"]  # the held step outlasts the test: no step retry
    text = mission_yaml(server, steps, mission_id=f"fleet-{name}").replace("  timeout: 60\n", "  timeout: 290\n")
    return write_mission(folder, text)


def submit(db: str, mission: Path, *extra: str) -> dict[str, Any]:
    done = warden("submit", str(mission), "--db", db, "--json", *extra)
    assert done.returncode == 0, done.stderr
    got: dict[str, Any] = json.loads(done.stdout)
    return got


def hits(server: TestServer, route: str) -> int:
    return sum(1 for r in server.requests_for(HOST) if r.route == route)


def folder_of(db: str, run_id: str) -> Path:
    index = EvidenceIndex(sqlalchemy_url(db))
    try:
        row = index.get_run(run_id)
        assert row is not None, f"run {run_id} is not in the shared index"
        return Path(row.folder)
    finally:
        index.close()


def test_two_workers_six_missions_one_approval_one_killed(tmp_path: Path, test_server: TestServer,
                                                          fleet_db: str) -> None:
    db = fleet_db
    serve_pages(test_server)
    serve_shop(test_server)
    gate = Gate(test_server, "/held", after="/after-held")
    a = Worker(db, tmp_path / "ev-a", tmp_path / "a.log", "--concurrency", "1", "--queue", "kill",
               "--queue", "missions")
    b = Worker(db, tmp_path / "ev-b", tmp_path / "b.log", "--concurrency", "2", "--queue", "missions",
               "--queue", "approve")
    try:
        # A malformed mission is refused at submit (file:line, exit 2) and never queued.
        bad = write_mission(tmp_path, "mission: broken\nversion: 1\nsteps:\n  - goto: 12\n  - fly: away\n", "bad.yaml")
        refused = warden("submit", str(bad), "--db", db)
        assert refused.returncode == 2, refused.stderr
        assert "bad.yaml:4" in refused.stderr and "bad.yaml:5" in refused.stderr and "Traceback" not in refused.stderr
        assert jobs(db) == {}

        # The mission that will be killed: on A, provably mid-mission (the server holds its step 2).
        slow = submit(db, held(tmp_path, test_server, "slow", "/held"), "--queue", "kill")
        wait_for("the slow run to reach the held page", lambda: gate.hits == 1)
        view = jobs(db)[slow["job_id"]]
        assert view["state"] == "running" and view["run_id"] == slow["run_id"]
        assert view["attempts"][0]["worker"].endswith(a.name_suffix)

        approval = submit(db, shop_mission(_dir(tmp_path, "shop"), test_server, APPROVAL_STEPS,
                                           approvals="approvals:\n  timeout: 180\n"), "--queue", "approve")
        plains = [submit(db, plain(tmp_path, test_server, f"p{i}")) for i in range(4)]
        assert len({j["run_id"] for j in [slow, approval, *plains]}) == 6

        # B's approval waits in one slot; its other slot runs all four plain missions meanwhile.
        pending = wait_for("the approval request in the shared database", lambda: _pending(db))
        wait_for("the four plain missions done", lambda: all(
            jobs(db)[j["job_id"]]["state"] == "done" for j in plains), timeout=240)
        now = jobs(db)
        assert now[approval["job_id"]]["state"] == "running" and posts(test_server) == 0
        assert now[slow["job_id"]]["state"] == "running"
        assert {now[j["job_id"]]["attempts"][0]["worker"] for j in plains} == {now[approval["job_id"]][
            "attempts"][0]["worker"]}  # the same worker, B, while its approval waited

        # The approval is answered from a fourth process, with nothing but the database URL.
        listed = warden("approvals", "list", "--db", db)
        assert pending in listed.stdout and socket.gethostname() in listed.stdout
        answered = warden("approvals", "approve", pending, "--db", db, "--reason", "basket checked",
                          "--approver", "carol", "--evidence-dir", str(tmp_path / "elsewhere"))
        assert answered.returncode == 0, answered.stderr
        wait_for("the approved job done", lambda: jobs(db)[approval["job_id"]]["state"] == "done")
        assert posts(test_server) == 1  # the order reached the server exactly once

        # A is killed mid-mission: its run is lost, never re-run; B's sweep marks the job failed.
        below_a = descendants(a.proc.pid)
        assert len(below_a) >= 3  # its run's process, the Playwright driver, Chromium's tree
        killed_at = time.monotonic()
        a.kill()
        wait_for("the killed worker's runs and browsers gone", lambda: not alive(below_a), timeout=30)
        lost = wait_for("the killed job marked failed", lambda: (j := jobs(db)[slow["job_id"]])["state"] == "failed"
                        and j, timeout=60)
        assert [t["status"] for t in lost["attempts"]] == ["lost"]
        gate.release.set()
        assert hits(test_server, "/after-held") == 0 and gate.hits == 1, (killed_at, gate.log)

        # The killed run: interrupted by recovery, its prefix verifies; the other five verify whole.
        killed = folder_of(db, slow["run_id"])
        assert killed.parent.parent == tmp_path / "ev-a"
        rec = warden("evidence", "recover", slow["run_id"], "--evidence-dir", str(tmp_path / "ev-a"), "--db", db)
        assert rec.returncode == 0, rec.stderr
        assert verify_run(killed).ok
        assert json.loads((killed / "run.json").read_text())["status"] == "interrupted"
        for j in [approval, *plains]:
            folder = folder_of(db, j["run_id"])
            assert folder.parent.parent == tmp_path / "ev-b"
            report = verify_run(folder)
            assert report.ok, report
            start = next(r for r in records(folder) if r["type"] == "run_record")
            assert start["initiator"]["host"] == socket.gethostname()
            assert start["started_by"].startswith("warden worker ")
        # A run folder copied off its worker verifies on its own (no index, another path).
        copy = tmp_path / "elsewhere" / plains[0]["run_id"]  # a run folder is named by its run id
        shutil.copytree(folder_of(db, plains[0]["run_id"]), copy)
        assert verify_run(copy).ok
        final = jobs(db)
        assert {final[j["job_id"]]["state"] for j in [approval, *plains]} == {"done"}
        assert all(len(final[j["job_id"]]["attempts"]) == 1 for j in [slow, approval, *plains])
        assert {final[j["job_id"]]["exit_code"] for j in [approval, *plains]} == {0}
        # The index across the fleet: every run, whichever worker ran it.
        listed_runs = warden("evidence", "list", "--db", db, "--evidence-dir", str(tmp_path / "ev-b"))
        assert all(j["run_id"] in listed_runs.stdout for j in [slow, approval, *plains])
    finally:
        gate.release.set()
        a.kill()
        code = b.stop(timeout=60)
    assert code == 130, b.text()
    assert gate.hits == 1  # B, which took the kill queue's job never, did not re-run it before stopping


def _dir(tmp: Path, name: str) -> Path:
    folder = tmp / name
    folder.mkdir()
    return folder


def _pending(db: str) -> str | None:
    store = ApprovalStore(sqlalchemy_url(db))
    try:
        rows = store.requests(pending_only=True)
        return rows[0].approval_id if rows else None
    finally:
        store.close()


def test_sigterm_finishes_the_step_and_retries_only_before_the_first_action(
        tmp_path: Path, test_server: TestServer, fleet_db: str) -> None:
    db = fleet_db
    serve_pages(test_server)
    gate = Gate(test_server, "/held2", after="/after-held2")
    with socket.socket() as s:  # a port nobody listens on: the site is unreachable
        s.bind(("127.0.0.1", 0))
        down = s.getsockname()[1]
    folder = _dir(tmp_path, "down")
    unreachable = submit(db, write_mission(folder, mission_yaml(test_server, [
        f"goto: http://{HOST}:{down}/x", f"goto: {test_server.url(HOST, '/b?job=down')}"], mission_id="fleet-down")),
        "--retries", "1", "--queue", "term")
    w = Worker(db, tmp_path / "ev-c", tmp_path / "c.log", "--concurrency", "2", "--queue", "term")
    try:
        failed = wait_for("the unreachable job to fail after its one retry",
                          lambda: (j := jobs(db)[unreachable["job_id"]])["state"] == "failed" and j)
        tries = failed["attempts"]
        assert [t["status"] for t in tries] == ["retried", "failed"] and [t["exit_code"] for t in tries] == [4, 4]
        assert tries[0]["run_id"] == unreachable["run_id"] != tries[1]["run_id"]
        assert "unreachable" in tries[0]["message"] or "ERR_CONNECTION_REFUSED" in tries[0]["message"]
        assert hits(test_server, "/b") == 0

        # `warden jobs cancel` of a running job: its step finishes, the run stops before the next one.
        gate3 = Gate(test_server, "/held3", after="/after-held3")
        cancel_me = submit(db, held(tmp_path, test_server, "cancel", "/held3"), "--queue", "term")
        wait_for("the cancelled run to reach its held page", lambda: gate3.hits == 1)
        asked_to = warden("jobs", "cancel", str(cancel_me["job_id"]), "--db", db)
        assert asked_to.returncode == 0 and "stops after the current step" in asked_to.stdout, asked_to.stderr
        wait_for("the worker to pass the stop on", lambda: "cancel requested" in w.text())
        gate3.release.set()
        cancelled = wait_for("the cancelled job stopped",
                             lambda: (j := jobs(db)[cancel_me["job_id"]])["state"] == "stopped" and j)
        assert [t["status"] for t in cancelled["attempts"]] == ["stopped"] and cancelled["exit_code"] == 130
        assert hits(test_server, "/after-held3") == 0

        # Two slots busy: one run mid-step on a held page, one waiting for an approval.
        serve_shop(test_server)
        stopping = submit(db, held(tmp_path, test_server, "term", "/held2"), "--queue", "term")
        asking = submit(db, shop_mission(_dir(tmp_path, "shop2"), test_server, APPROVAL_STEPS,
                                         approvals="approvals:\n  timeout: 240\n"), "--queue", "term")
        wait_for("the run to reach the held page", lambda: gate.hits == 1)
        pending = wait_for("the approval request", lambda: _pending(db))
        w.proc.send_signal(signal.SIGTERM)
        wait_for("the worker to say it is stopping", lambda: "SIGTERM" in w.text())
        assert w.proc.poll() is None  # the current step is still running: the worker waits for it
        gate.release.set()
        assert w.stop(None) == 130, w.text()
    finally:
        gate.release.set()
        w.kill()
    assert hits(test_server, "/after-held2") == 0  # step 3 never started
    # The approval wait had not acted: withdrawn at once (denied), not sat out; the order never sent.
    assert posts(test_server) == 0
    asked = jobs(db)[asking["job_id"]]
    assert asked["state"] == "failed" and asked["exit_code"] == 3
    store = ApprovalStore(sqlalchemy_url(db))
    row = store.get(pending)
    store.close()
    assert row is not None and row.status == "denied" and "SIGTERM" in (row.answer_reason or "")
    view = jobs(db)[stopping["job_id"]]
    assert view["state"] == "failed" and [t["status"] for t in view["attempts"]] == ["stopped"]
    assert view["exit_code"] == 130
    folder = folder_of(db, stopping["run_id"])
    assert verify_run(folder).ok
    recs = records(folder)
    assert [r["step"] for r in recs if r["type"] == "action_record" and r["phase"] == "outcome"] == [1, 2]
    assert any(r["type"] == "exception_record" and "SIGTERM" in r["message"] for r in recs)
    assert json.loads((folder / "run.json").read_text())["status"] == "interrupted"
