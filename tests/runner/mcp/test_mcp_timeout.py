"""The mission's timeout ends a `warden mcp` run even while the agent idles; later calls are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runner.mcp.support import McpClient, only_run, records, text, verify, wait_status, write_mission

pytestmark = pytest.mark.browser


def test_the_timeout_ends_an_idle_session(tmp_path: Path) -> None:
    mission = write_mission(tmp_path, actions="goto", name="agent-timeout")
    mission.write_text(mission.read_text().replace("timeout: 600", "timeout: 3"))
    client = McpClient(mission, tmp_path / "evidence", log=tmp_path / "server.log")
    try:
        folder = only_run(client.evidence_dir)
        info = wait_status(folder, "stopped", timeout=90)  # no call made: the server's own deadline
        assert info["exit_code"] == 3
        late = client.call("browser_navigate", {"url": "http://allowed.localhost/"})
        assert late.is_error and "has ended" in text(late) and "boundaries.timeout" in text(late)
    finally:
        client.close()
    assert verify(folder, client.evidence_dir).returncode == 0
    assert [r for r in records(folder) if r["type"] == "run_record"][-1]["outcome"] == "stopped"
