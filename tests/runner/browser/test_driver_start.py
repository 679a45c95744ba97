"""The Playwright driver started early (runner/browser/driver_start.py) and taken over at the launch.

Taken over only when it is exactly what Playwright would start now (command, environment but for
the Python side's own variables) and still running; otherwise it is stopped and Playwright starts
its own. Each case is checked on the processes themselves (this test process's node children and
their environment) and by a browser that works.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.browser import driver_start
from runner.browser.chromium import find_chromium
from runner.browser.driver import SandboxConfig
from runner.browser.playwright_driver import LaunchedBrowser, launch_browser
from runner.cli import cli
from tests.runner.helpers.driver_procs import driver_pids


@pytest.fixture(autouse=True)
def nothing_left_early() -> Iterator[None]:
    driver_start.discard_early_driver()
    yield
    driver_start.discard_early_driver()


def _early() -> subprocess.Popen[bytes]:
    driver_start.start_driver_early()
    early = driver_start._early
    assert early is not None, "no early driver was started"
    return early.popen


def _works(launched: LaunchedBrowser) -> None:
    """A page can be driven; then the browser and Playwright are closed (``take`` hands both over)."""
    pw, browser = launched.take()
    try:
        page = browser.new_page()
        page.set_content("<p id='x'>driven</p>")
        assert page.inner_text("#x") == "driven"
    finally:
        browser.close()
        pw.stop()


def _config() -> SandboxConfig:
    return SandboxConfig(executable=find_chromium(os.environ), resolvable_hosts=["a.test"])


def test_the_launch_takes_the_early_driver_over_and_the_close_ends_it() -> None:
    popen = _early()
    assert popen.poll() is None and popen.pid in driver_pids()
    before = driver_start.taken_over
    launched = launch_browser(_config())
    try:
        assert driver_start.taken_over == before + 1
        assert driver_pids() == {popen.pid}, "Playwright started a driver of its own"
        _works(launched)
    finally:
        launched.close()
    assert popen.poll() is not None, "the taken-over driver outlived the browser's close"
    assert popen.pid not in driver_pids()


@pytest.mark.parametrize("variable", ["NODE_OPTIONS", "PLAYWRIGHT_SKIP_VALIDATE_HOST_REQUIREMENTS"])
def test_a_driver_started_with_another_environment_is_stopped_not_taken_over(
    variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    popen = _early()
    monkeypatch.setenv(variable, "--no-warnings" if variable == "NODE_OPTIONS" else "1")
    before = driver_start.taken_over
    launched = launch_browser(_config())
    try:
        assert driver_start.taken_over == before
        assert popen.poll() is not None, "the early driver was left running"
        (pid,) = driver_pids()  # Playwright's own, with the environment in force now
        assert f"{variable}=".encode() in Path(f"/proc/{pid}/environ").read_bytes()
        _works(launched)
    finally:
        launched.close()


def test_the_python_sides_own_variables_do_not_stop_the_take_over(monkeypatch: pytest.MonkeyPatch) -> None:
    popen = _early()
    for name in sorted(driver_start.PYTHON_SIDE):
        monkeypatch.setenv(name, "/set/after/the/early/start")
    before = driver_start.taken_over
    launched = launch_browser(_config())
    try:
        assert driver_start.taken_over == before + 1 and driver_pids() == {popen.pid}
        _works(launched)
    finally:
        launched.close()


def test_a_driver_that_died_is_replaced() -> None:
    popen = _early()
    popen.kill()
    popen.wait()
    before = driver_start.taken_over
    launched = launch_browser(_config())
    try:
        assert driver_start.taken_over == before
        assert len(driver_pids()) == 1
        _works(launched)
    finally:
        launched.close()


def test_discard_stops_it_and_is_idempotent() -> None:
    popen = _early()
    driver_start.discard_early_driver()
    assert popen.poll() is not None and popen.pid not in driver_pids()
    driver_start.discard_early_driver()
    assert driver_start._early is None


def test_a_refused_mission_exits_2_and_leaves_no_driver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mission = tmp_path / "bad.yaml"
    mission.write_text("mission: bad\nversion: 1\nsteps:\n  - teleport: somewhere\n")
    started: list[subprocess.Popen[bytes]] = []
    real_start = driver_start.start_driver_early

    def start() -> None:
        real_start()
        assert driver_start._early is not None
        started.append(driver_start._early.popen)

    monkeypatch.setattr(driver_start, "start_driver_early", start)
    before = driver_pids()
    result = CliRunner().invoke(cli, ["run", str(mission), "--evidence-dir", str(tmp_path / "ev"), "--quiet"])
    assert result.exit_code == 2, result.output
    assert len(started) == 1, "warden run did not start the driver early"
    assert started[0].poll() is not None
    assert driver_pids() == before and driver_start._early is None
    assert not (tmp_path / "ev").exists() or not any((tmp_path / "ev").rglob("records.jsonl"))


def test_a_playwright_whose_transport_cannot_be_wrapped_gets_no_early_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> None:
        raise AttributeError("no PipeTransport.connect here")

    before = driver_pids()
    monkeypatch.setattr(driver_start, "_install", refuse)
    driver_start.start_driver_early()  # does not raise
    assert driver_start._early is None
    assert driver_pids() == before, "the spawned driver was left running"


def test_a_driver_started_with_another_command_is_stopped_not_taken_over(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same environment, another command at the launch (e.g. another node or entry point): the command
    is compared on its own. Playwright then starts its own driver, with its own command."""
    popen = _early()
    real = driver_start._driver_command

    def elsewhere() -> tuple[tuple[str, ...], dict[str, str]]:
        (node, entry, *rest), env = real()
        return (node, entry + ".elsewhere", *rest), env

    monkeypatch.setattr(driver_start, "_driver_command", elsewhere)  # what the take-over compares with
    before = driver_start.taken_over
    launched = launch_browser(_config())
    try:
        assert driver_start.taken_over == before
        assert popen.poll() is not None, "the early driver was left running"
        assert popen.pid not in driver_pids() and len(driver_pids()) == 1
        _works(launched)
    finally:
        launched.close()
