"""The Playwright driver's compile cache (runner/browser/node_cache.py): used only when private.

Why: the cache holds V8 code the driver runs; a folder another user could write would be a way
into the driver that drives the sandbox. Each test fails if its check were missing.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from runner.browser.chromium import find_chromium
from runner.browser.driver import SandboxConfig
from runner.browser.node_cache import ENV_NODE_CACHE, private_cache_dir, use_compile_cache
from runner.browser.playwright_driver import launch_browser
from tests.runner.helpers.driver_procs import driver_pids


def _env(base: Path) -> dict[str, str]:
    return {"XDG_CACHE_HOME": str(base)}


def test_made_private_and_set(tmp_path: Path) -> None:
    env = _env(tmp_path / "cache")
    folder = use_compile_cache(env)
    assert folder == tmp_path / "cache" / "warden" / "node-compile-cache"
    assert env[ENV_NODE_CACHE] == str(folder)
    for path in (tmp_path / "cache" / "warden", folder):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def test_operator_setting_kept(tmp_path: Path) -> None:
    env = {**_env(tmp_path), ENV_NODE_CACHE: "/somewhere/else"}
    assert use_compile_cache(env) is None
    assert env[ENV_NODE_CACHE] == "/somewhere/else"
    assert not (tmp_path / "warden").exists()


@pytest.mark.parametrize("level", [0, 1, 2])
def test_writable_by_others_refused(tmp_path: Path, level: int) -> None:
    base = tmp_path / "cache"
    folders = [base, base / "warden", base / "warden" / "node-compile-cache"]
    folders[-1].mkdir(parents=True)
    folders[level].chmod(0o777)
    env = _env(base)
    assert private_cache_dir(env) is None
    assert use_compile_cache(env) is None
    assert ENV_NODE_CACHE not in env


def test_group_writable_refused(tmp_path: Path) -> None:
    (tmp_path / "warden").mkdir()
    (tmp_path / "warden").chmod(0o770)
    assert private_cache_dir(_env(tmp_path)) is None


def test_symlink_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (tmp_path / "cache" / "warden").mkdir(parents=True)
    (tmp_path / "cache" / "warden" / "node-compile-cache").symlink_to(elsewhere)
    assert private_cache_dir(_env(tmp_path / "cache")) is None


def test_a_file_in_the_way_refused(tmp_path: Path) -> None:
    (tmp_path / "warden").write_text("not a folder")
    assert private_cache_dir(_env(tmp_path)) is None


def test_the_driver_uses_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """launch_browser starts node with the private cache, and node fills it (it honours the variable)."""
    monkeypatch.setenv(ENV_NODE_CACHE, "")  # empty counts as unset; restored (or removed) after the test
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = tmp_path / "warden" / "node-compile-cache"
    config = SandboxConfig(executable=find_chromium(os.environ), resolvable_hosts=["a.test"])
    before = set(driver_pids())
    launched = launch_browser(config)
    try:
        started = set(driver_pids()) - before
        assert started, "no Playwright driver process found"
        for pid in started:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            assert f"{ENV_NODE_CACHE}={folder}".encode() in environ
    finally:
        launched.close()
    assert any(p.is_file() for p in folder.rglob("*")), "node wrote no compile cache"
