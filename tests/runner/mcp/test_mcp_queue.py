"""``warden mcp --approval queue``: a person approves from another process; the step cap; a kill.

One server session for the module: a danger-zone click waits until ``warden approvals approve ID``
runs in a second process, then goes through exactly once (the approval is bound to that call: the
next identical click asks again, and is denied); past ``max_steps`` every action is refused; a
SIGKILL leaves a prefix that verifies as interrupted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import mcp_types as types
import pytest

from runner.approvals.store import ApprovalRow
from runner.cli_approvals import open_store
from tests.runner.mcp.support import WARDEN, McpClient, only_run, posts, ref_of, text, verify, write_mission
from tests.runner.mcp.test_mcp_stdio import ZONES, Site
from tests.server import TestServer

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site(test_server_session: TestServer) -> Site:
    test_server_session.reset()
    return Site(test_server_session)


@pytest.fixture(scope="module")
def agent(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[McpClient]:
    tmp = tmp_path_factory.mktemp("mcpq")
    mission = write_mission(tmp, actions="goto, click", extra=ZONES, max_steps=4, name="agent-queue")
    client = McpClient(mission, tmp / "evidence", "--approval", "queue", log=tmp / "server.log")
    try:
        yield client
    finally:
        try:
            client.close()
        except Exception:  # noqa: S110 - the server was killed by the last test
            pass


def _pending(
    evidence_dir: Path, seen: set[str], waiting: Future[types.CallToolResult], timeout: float = 60
) -> ApprovalRow:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert not waiting.done(), text(waiting.result())  # it must wait for the person
        store = open_store(evidence_dir, None)
        try:
            rows = [r for r in store.requests() if r.approval_id not in seen]
        finally:
            store.close()
        if rows:
            return rows[0]
        time.sleep(0.1)
    raise AssertionError("no pending approval request")


def _answer(verb: str, row: ApprovalRow, evidence_dir: Path) -> None:
    done = subprocess.run([WARDEN, "approvals", verb, row.approval_id, "--reason", "checked by a person",
                           "--evidence-dir", str(evidence_dir)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def _click_waiting(agent: McpClient, ref: str) -> Future[types.CallToolResult]:
    return ThreadPoolExecutor(1).submit(agent.call, "browser_click", {"element": "Submit payment", "ref": ref}, 300)


def test_a_queued_approval_from_a_second_process_lets_exactly_that_call_through(
    agent: McpClient, site: Site
) -> None:
    assert "browser_click" in agent.tools() and "approve" not in " ".join(agent.tools())
    page = agent.call("browser_navigate", {"url": site.url("/pay")})
    pay = ref_of(text(page), "button", "Submit payment")
    waiting = _click_waiting(agent, pay)
    row = _pending(agent.evidence_dir, set(), waiting)
    assert row.kind == "click" and posts(site.server, "/order") == []  # nothing sent while it waits
    deadline = time.monotonic() + 30
    while not agent.logs and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any("warden approvals approve" in m and "nothing sent" in m for m in agent.logs), agent.logs
    _answer("approve", row, agent.evidence_dir)
    result = waiting.result(120)
    assert not result.is_error and "Approval: granted" in text(result), text(result)
    assert len(posts(site.server, "/order")) == 1

    # The approval was for that call only: the same click again asks again (here: denied).
    again = ref_of(text(agent.call("browser_navigate_back")), "button", "Submit payment")
    waiting = _click_waiting(agent, again)
    second = _pending(agent.evidence_dir, {row.approval_id}, waiting)
    _answer("deny", second, agent.evidence_dir)
    refused = waiting.result(120)
    assert refused.is_error and "denied" in text(refused), text(refused)
    assert len(posts(site.server, "/order")) == 1


def test_past_the_step_cap_every_action_is_refused(agent: McpClient, site: Site) -> None:
    # max_steps: 4; used: the navigation, the approved click, the way back (a refused call is no step)
    assert not agent.call("browser_navigate", {"url": site.url("/form")}).is_error
    for _ in range(2):
        refused = agent.call("browser_navigate", {"url": site.url("/form")})
        assert refused.is_error and "step limit reached: 4 of 4" in text(refused), text(refused)
    assert not agent.call("browser_snapshot").is_error  # reading the page is not an action


def _server_pid(mission_name: str) -> int:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"mcp" in argv and any(a.endswith(f"{mission_name}.yaml".encode()) for a in argv):
            return int(entry.name)
    raise AssertionError("warden mcp process not found")


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_killed_server_leaves_a_prefix_that_verifies_as_interrupted(agent: McpClient) -> None:
    pid = _server_pid("agent-queue")
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    folder = only_run(agent.evidence_dir)
    done = verify(folder, agent.evidence_dir)
    assert done.returncode == 0 and "interrupted" in done.stdout + done.stderr, done.stdout + done.stderr
