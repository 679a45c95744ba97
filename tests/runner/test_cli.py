"""``warden evidence list|show|verify`` and ``warden check`` as a user types them (subprocess, no tty)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.runner.missions import base, mission, run_dirs, serve_site, warden
from tests.server import TestServer

pytestmark = pytest.mark.browser


@dataclass
class Store:
    ev: Path
    ids: list[str]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, test_server_session: TestServer) -> Store:
    """Two completed runs of the same mission in one evidence dir."""
    test_server_session.reset()
    serve_site(test_server_session)
    ev = tmp_path_factory.mktemp("cli") / "ev"
    for _ in range(2):
        done = warden("run", mission("three_pages"), "--var", f"base={base(test_server_session)}",
                      "--evidence-dir", ev, "--quiet")
        assert done.returncode == 0, done.stdout + done.stderr
    ids = [p.name for p in run_dirs(ev)]
    assert len(ids) == 2
    return Store(ev, ids)


def clean(done: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr


def test_list_shows_every_run(store: Store) -> None:
    done = warden("evidence", "list", "--evidence-dir", store.ev)
    assert done.returncode == 0, done.stderr
    clean(done)
    for run_id in store.ids:
        row = next((ln for ln in done.stdout.splitlines() if run_id in ln), None)
        assert row is not None, done.stdout
        assert "three-pages" in row and "completed" in row


def test_list_of_an_empty_dir_says_so(tmp_path: Path) -> None:
    done = warden("evidence", "list", "--evidence-dir", tmp_path / "nothing")
    assert done.returncode == 0
    assert "no runs" in done.stdout


def test_show_prints_a_readable_timeline(store: Store) -> None:
    run_id = store.ids[0]
    done = warden("evidence", "show", run_id, "--evidence-dir", store.ev)
    assert done.returncode == 0, done.stderr
    clean(done)
    out = done.stdout
    assert run_id in out and "three-pages" in out and "completed" in out
    for page in ("/p1", "/p2", "/p3"):
        assert 'page.goto("http://allowed.localhost:' in out and page in out
    for word in ("run_record", "decision_record", "action_record", "intent", "allow"):
        assert word in out, word
    assert out.count("screenshots/") == 3  # one per step
    # in time order: the start record first, the end record last
    assert out.index("started by warden run") < out.index("/p1") < out.index("/p3") < out.rindex("run ended")


def test_a_unique_prefix_is_enough(store: Store) -> None:
    run_id = store.ids[1]
    prefix = run_id[:-3]
    assert sum(i.startswith(prefix) for i in store.ids) == 1
    for command in ("show", "verify"):
        done = warden("evidence", command, prefix, "--evidence-dir", store.ev)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
        assert run_id in done.stdout


def test_a_run_folder_path_works_as_run(store: Store) -> None:
    done = warden("evidence", "verify", store.ev / "runs" / store.ids[0], "--evidence-dir", store.ev)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "intact" in done.stdout


@pytest.mark.parametrize("command", ["show", "verify"])
def test_ambiguous_prefix_is_exit_2_naming_the_candidates(store: Store, command: str) -> None:
    prefix = store.ids[0][:4]  # the year: both runs share it
    done = warden("evidence", command, prefix, "--evidence-dir", store.ev)
    assert done.returncode == 2, done.stdout + done.stderr
    clean(done)
    assert "ambiguous" in done.stderr
    assert all(run_id in done.stderr for run_id in store.ids), done.stderr


@pytest.mark.parametrize("command", ["show", "verify"])
def test_unknown_run_is_exit_2(store: Store, command: str) -> None:
    done = warden("evidence", command, "zz-no-such-run", "--evidence-dir", store.ev)
    assert done.returncode == 2, done.stdout + done.stderr
    clean(done)
    assert "no run matches 'zz-no-such-run'" in done.stderr


def test_check_prints_the_shape_of_a_valid_mission() -> None:
    done = warden("check", mission("three_pages"), "--var", "base=http://allowed.localhost:1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "three-pages" in done.stdout
    assert done.stdout.count("goto") >= 3


def test_check_reports_an_invalid_mission_with_exit_2() -> None:
    done = warden("check", mission("kind_not_allowed"))
    assert done.returncode == 2
    clean(done)
    assert "kind_not_allowed.yaml:9" in done.stderr and "'click' is not in" in done.stderr
