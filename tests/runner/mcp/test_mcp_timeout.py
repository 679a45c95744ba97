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


def test_sigterm_closes_the_run_as_interrupted(tmp_path: Path) -> None:
    import json
    import signal
    import subprocess
    import time

    from tests.runner.mcp.support import WARDEN

    mission = write_mission(tmp_path, actions="goto", name="agent-term")
    evidence = tmp_path / "evidence"
    proc = subprocess.Popen([WARDEN, "mcp", str(mission), "--evidence-dir", str(evidence)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        started = False
        while not started and time.monotonic() < deadline:  # the run is open once its start records are
            started = any(b'"version_log"' in p.read_bytes() for p in evidence.glob("runs/*/records.jsonl"))
            time.sleep(0.1)
        assert started
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(90) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    folder = only_run(evidence)
    assert json.loads((folder / "run.json").read_text())["status"] == "interrupted"
    assert records(folder)[-1]["outcome"] == "interrupted"
    assert verify(folder, evidence).returncode == 0
