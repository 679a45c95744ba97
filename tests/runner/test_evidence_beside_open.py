"""`warden run` opens its evidence in the build thread once Chromium has launched, beside the early
open of its context (runner/launch.py ``after_launch``, runner/run.py ``_open_evidence``): never for
a launch that failed, never before the build, and closed (interrupted, verifiable) when Ctrl-C comes
while the context opens.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from evidence.verify import verify_run
from kernel.errors import EvidenceUnavailable, MissionInvalid, SandboxUnavailable
from runner import launch
from runner.browser.driver import SandboxConfig
from runner.browser.playwright_driver import LaunchedBrowser
from runner.launch import start_while_building
from runner.progress import QuietReporter
from runner.run import RunOptions, run_mission
from tests.evidence.integrity_support import (
    mission_yaml,
    only_run,
    records,
    run,
    serve_pages,
    short_steps,
    write_mission,
)
from tests.server import TestServer


def _no_chromium(tmp_path: Path) -> SandboxConfig:
    return SandboxConfig(executable=tmp_path / "no-chromium", resolvable_hosts=["a.localhost"])


def test_after_launch_never_runs_when_the_launch_fails(tmp_path: Path) -> None:
    seen: list[object] = []
    with pytest.raises(SandboxUnavailable):
        start_while_building(lambda: "built", _no_chromium(tmp_path), after_launch=seen.append)
    assert seen == []


def test_after_launch_never_runs_after_a_build_error(sandbox_config: SandboxConfig) -> None:
    boom = MissionInvalid([])
    seen: list[object] = []

    def build() -> str:
        raise boom

    with pytest.raises(MissionInvalid) as info:
        start_while_building(build, sandbox_config, after_launch=seen.append)
    assert info.value is boom and seen == []


def test_after_launch_runs_in_the_worker_on_what_it_built_once_launched(sandbox_config: SandboxConfig) -> None:
    seen: list[tuple[object, str]] = []
    built, launched, opened = start_while_building(
        lambda: "built", sandbox_config, after_launch=lambda b: seen.append((b, threading.current_thread().name)),
    )
    try:
        assert built == "built" and seen == [("built", "warden-pii-build")]  # done before it returned
        assert isinstance(opened, tuple)
    finally:
        if isinstance(opened, tuple):
            opened[0].close()
        launched.close()


def test_an_error_of_after_launch_is_raised_as_a_build_error_would_be(sandbox_config: SandboxConfig) -> None:
    boom = EvidenceUnavailable("evidence dir cannot be written")

    def after(_: object) -> None:
        raise boom

    with pytest.raises(EvidenceUnavailable) as info:
        start_while_building(lambda: "built", sandbox_config, after_launch=after)
    assert info.value is boom


@pytest.mark.browser
def test_a_run_whose_launch_fails_leaves_no_evidence(tmp_path: Path, test_server: TestServer) -> None:
    serve_pages(test_server)
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    ev = tmp_path / "ev"
    mission = write_mission(tmp_path, mission_yaml(test_server, short_steps(test_server)))
    code, result = run(mission, ev, environ={**os.environ, "WARDEN_CHROMIUM": str(fake)})
    assert code == SandboxUnavailable.exit_code and result is None
    assert not (ev / "runs").exists() or list((ev / "runs").iterdir()) == []


@pytest.mark.browser
def test_ctrl_c_while_the_context_opens_closes_the_opened_evidence_as_interrupted(
    tmp_path: Path, test_server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_pages(test_server)
    ev = tmp_path / "ev"
    mission = write_mission(tmp_path, mission_yaml(test_server, short_steps(test_server)))

    def interrupted_open(launched: LaunchedBrowser, config: SandboxConfig) -> object:
        deadline = time.monotonic() + 60  # the build thread opens the evidence meanwhile
        while not list(ev.glob("runs/*/records.jsonl")) and time.monotonic() < deadline:
            time.sleep(0.02)
        raise KeyboardInterrupt

    monkeypatch.setattr(launch, "open_early", interrupted_open)
    with pytest.raises(KeyboardInterrupt):
        run_mission(RunOptions(mission_path=mission, evidence_dir=ev), QuietReporter())
    folder = only_run(ev)
    recs = records(folder)
    assert recs[0]["type"] == "run_record" and recs[0]["phase"] == "start"
    assert recs[-1]["type"] == "run_record" and recs[-1]["phase"] == "end"
    assert recs[-1]["outcome"] == "interrupted" and recs[-1]["exit_code"] == 130
    assert verify_run(folder).ok
    assert test_server.requests_for("allowed.localhost") == []  # nothing navigated
