"""The Python API keeps the MCP server's guarantees while the framework does nothing: the page's own
requests are judged between calls, and the mission's timeout ends the run. No pump, no expire called."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from runner.agent_session import open_session
from tests.runner.mcp.support import HOST, records, write_mission
from tests.server import Response, TestServer

pytestmark = pytest.mark.browser


def _until(what: str, check: object, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.05)
    raise AssertionError(f"waited {seconds:g}s for {what}")


def test_the_pages_own_requests_are_judged_while_the_framework_thinks(
    tmp_path: Path, test_server: TestServer, evil_server: TestServer
) -> None:
    evil = evil_server.url("evil.localhost", "/beacon")
    test_server.set_content("/later", f"""<!doctype html><html><body><p>Loading</p><script>
setTimeout(() => {{ fetch('/later-data'); fetch('{evil}', {{mode: 'no-cors'}}).catch(() => 0); }}, 300);
</script></body></html>""")
    test_server.set_route("/later-data", lambda _r: Response(body="ok"))
    mission = write_mission(tmp_path, actions="goto", name="idle-pump")
    with open_session(mission, evidence_dir=tmp_path / "ev") as s:
        assert s.navigate(test_server.url(HOST, "/later")).ok
        # no call from here on: the session's own thread lets the timer's requests reach the gate
        _until("the page's fetch to reach the server",
               lambda: any(r.route == "/later-data" for r in test_server.requests_for(HOST)))
        folder = s.folder
        _until("the refused beacon to be recorded", lambda: any(
            r["type"] == "decision_record" and r["decision"] == "deny" and "evil.localhost" in json.dumps(r)
            for r in records(folder)))
    assert evil_server.connections == []  # refused at the gate, never sent


def test_the_mission_timeout_ends_an_idle_python_session(tmp_path: Path, test_server: TestServer) -> None:
    test_server.set_content("/one", "<h1>One</h1>")
    mission = write_mission(tmp_path, actions="goto", name="idle-timeout")
    mission.write_text(mission.read_text().replace("timeout: 600", "timeout: 3"))
    with open_session(mission, evidence_dir=tmp_path / "ev") as s:
        assert s.navigate(test_server.url(HOST, "/one")).ok
        folder = s.folder
        _until("the run to end on its own", lambda: (folder / "run.json").exists()
               and json.loads((folder / "run.json").read_text()).get("status") == "stopped")
        assert s.remaining() is None
        late = s.navigate(test_server.url(HOST, "/one"))
        assert not late.ok and late.ended and "has ended" in late.text
    info = json.loads((folder / "run.json").read_text())
    assert info["status"] == "stopped" and info["exit_code"] == 3  # leaving the block changes nothing


def test_calls_from_another_thread_run_on_the_sessions_thread(tmp_path: Path, test_server: TestServer) -> None:
    """Sync Playwright is bound to one thread: a framework calling from a worker pool still works."""
    test_server.set_content("/one", "<h1>One</h1>")
    mission = write_mission(tmp_path, actions="goto", name="threads")
    before = threading.active_count()
    session = open_session(mission, evidence_dir=tmp_path / "ev")
    assert threading.active_count() == before  # nothing starts before `with`
    with session as s:
        out: list[bool] = []
        worker = threading.Thread(target=lambda: out.append(s.navigate(test_server.url(HOST, "/one")).ok))
        worker.start()
        worker.join(120)
        assert out == [True] and "One" in s.snapshot().text
    assert not s.worker.thread.is_alive()  # closing the session stops its thread
