"""The PII engine is built in a worker thread while Chromium launches (runner/launch.py): that must be safe."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from guards.observed import RequestInfo
from kernel.errors import MissionInvalid, SandboxUnavailable
from runner.assembly import PreparedRun
from runner.browser.driver import EVENT_GATE_ERROR, DriverError, GateVerdict, SandboxConfig
from runner.launch import LateGate, build_while_launching, start_while_building
from tests.server import TestServer

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


# ----------------------------------------------------------------------------- the context opened early


class _Gate:
    """A stand-in for the run's request gate: allows everything, keeps what it saw."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.events: list[tuple[str, dict[str, object]]] = []

    def __call__(self, request: RequestInfo) -> GateVerdict:
        self.requests.append(request.url)
        return GateVerdict(True)

    def on_event(self, name: str, data: Mapping[str, object]) -> None:
        self.events.append((name, dict(data)))


def test_a_late_gate_refuses_until_bound_then_hands_over_what_it_saw() -> None:
    late = LateGate()
    request = RequestInfo(url="http://allowed.localhost/", method="GET", kind="navigation", resource_type="document",
                          is_navigation=True, frame_url=None)
    with pytest.raises(SandboxUnavailable):
        late(request)
    late.on_event("request_refused", {"url": "http://allowed.localhost/"})
    gate = _Gate()
    late.bind(gate)  # type: ignore[arg-type]
    assert gate.events == [("request_refused", {"url": "http://allowed.localhost/"})]
    assert late(request).allow and gate.requests == ["http://allowed.localhost/"]
    with pytest.raises(SandboxUnavailable):
        late.bind(gate)  # type: ignore[arg-type]


def test_the_early_context_refuses_every_request_until_its_gate_is_bound(
    sandbox_config: SandboxConfig, test_server: TestServer
) -> None:
    """Opened while the PII engine builds: a navigation before the gate is bound never reaches the
    server (fail closed, the error surfaces after the action); once bound, the gate sees it."""
    test_server.set_content("/", "<p>hi</p>")
    built, launched, opened = start_while_building(lambda: "built", sandbox_config)
    assert built == "built" and opened is not None
    driver, late = opened
    try:
        assert driver.page_url() == "about:blank"
        with pytest.raises((SandboxUnavailable, DriverError)):
            driver.perform("goto", {"url": test_server.url("allowed.localhost", "/")}, 10)
        assert test_server.requests_for("allowed.localhost") == []
        gate = _Gate()
        late.bind(gate)  # type: ignore[arg-type]
        refused = {"url": test_server.url("allowed.localhost", "/"), "error": "SandboxUnavailable"}
        assert (EVENT_GATE_ERROR, refused) in gate.events
        driver.perform("goto", {"url": test_server.url("allowed.localhost", "/")}, 10)
        assert gate.requests and test_server.requests_for("allowed.localhost")
    finally:
        driver.close()
        launched.close()


def test_a_build_error_closes_the_early_context(sandbox_config: SandboxConfig) -> None:
    boom = MissionInvalid([])

    def build() -> PreparedRun:
        raise boom

    with pytest.raises(MissionInvalid) as info:
        start_while_building(build, sandbox_config)
    assert info.value is boom
