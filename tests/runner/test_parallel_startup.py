"""The PII engine is built in a worker thread while Chromium launches (runner/launch.py): that must be safe."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kernel.errors import MissionInvalid, SandboxUnavailable
from runner.assembly import PreparedRun
from runner.browser.driver import SandboxConfig
from runner.launch import build_while_launching

ROOT = Path(__file__).resolve().parents[2]

# A fresh interpreter: Presidio (and spaCy under it) imported in a worker thread for the first
# time, while the main thread imports the browser and evidence stack.
_SCRIPT = textwrap.dedent(
    """
    import os, sys, threading
    from pathlib import Path
    from missions.loader import load_mission
    from runner.assembly import assemble
    loaded = load_mission(Path(sys.argv[1]), cli_vars={"base_url": "http://bench.localhost:1"}, environ=os.environ)
    box = {}
    def work():
        box["s"] = assemble(loaded, os.environ, evidence_dir=Path(sys.argv[2]))
    t = threading.Thread(target=work)
    t.start()
    import runner.browser.playwright_driver, evidence.writer, evidence.index  # concurrently
    t.join()
    threaded = box["s"].redactor.redact("mail alice.smith@example.com or call 212-555-0187")
    again = assemble(loaded, os.environ, evidence_dir=Path(sys.argv[2])).redactor.redact(
        "mail alice.smith@example.com or call 212-555-0187")
    assert threaded == again, (threaded, again)
    assert "alice.smith@example.com" not in threaded, threaded
    print("ok")
    """
)


def test_presidio_builds_in_a_worker_thread(tmp_path: Path) -> None:
    mission = ROOT / "benchmarks" / "bench_mission.yaml"
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(mission), str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_build_error_wins_over_launch_error(tmp_path: Path) -> None:
    """Both fail: the PII engine's error is raised (it was first, before), and nothing is left open."""
    boom = MissionInvalid([])

    def build() -> PreparedRun:
        raise boom

    config = SandboxConfig(executable=tmp_path / "no-chromium", resolvable_hosts=["a.localhost"])
    with pytest.raises(MissionInvalid) as info:
        build_while_launching(build, config)
    assert info.value is boom


def test_launch_error_when_the_build_succeeds(tmp_path: Path) -> None:
    config = SandboxConfig(executable=tmp_path / "no-chromium", resolvable_hosts=["a.localhost"])
    with pytest.raises(SandboxUnavailable):
        build_while_launching(lambda: object(), config)
