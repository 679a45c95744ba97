"""`warden mcp` refuses a bad mission before serving (exit 2, file:line, nothing written); steps may be
empty only there (`warden run` refuses, `warden check --mcp` accepts)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.runner.mcp.support import WARDEN

NO_STEPS = """mission: agent-only
version: 1
goal: Look around.
boundaries:
  allowed_domains: [allowed.localhost]
  allowed_actions: [goto]
"""
BAD = """mission: Bad
version: 1
boundaries:
  allowed_domains: []
  allowed_actions: [goto, fly]
"""


def _warden(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([WARDEN, *args], capture_output=True, text=True, timeout=120, cwd=cwd,
                          stdin=subprocess.DEVNULL)


def test_an_invalid_mission_fails_before_the_server_starts(tmp_path: Path) -> None:
    mission = tmp_path / "bad.yaml"
    mission.write_text(BAD)
    done = _warden("mcp", str(mission), "--evidence-dir", str(tmp_path / "ev"), cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""  # nothing on the protocol stream
    assert f"{mission}:1: [mission]" in done.stderr and f"{mission}:4: [boundaries.allowed_domains]" in done.stderr
    assert "boundaries.allowed_actions.1" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "ev" / "runs").exists()


def test_steps_may_be_empty_only_for_mcp(tmp_path: Path) -> None:
    mission = tmp_path / "agent.yaml"
    mission.write_text(NO_STEPS)
    run = _warden("run", str(mission), "--evidence-dir", str(tmp_path / "ev"), cwd=tmp_path)
    assert run.returncode == 2 and "[steps] steps must not be empty for `warden run`" in run.stderr
    assert _warden("check", str(mission), cwd=tmp_path).returncode == 2
    assert _warden("check", "--mcp", str(mission), cwd=tmp_path).returncode == 0
