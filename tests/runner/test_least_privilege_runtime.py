"""Least privilege at run time, through real runs: action kinds, max_steps and the run timeout.

Preflight already refuses a mission that breaks these statically; here it is bypassed
(``runner.run.preflight`` is a no-op) so the step loop's own guards must hold, each with a
decision record and exit 3, and the server proves the refused action never happened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import missions.loader as loader
import runner.run as run_module
from tests.evidence.integrity_support import records, run, write_mission
from tests.server import TestServer

pytestmark = pytest.mark.browser


def _mission(server: TestServer, steps: list[str], *, actions: str, limits: str = "") -> str:
    body = "\n".join(f"  - {s}" for s in steps)
    return (
        "mission: lp-runtime\nversion: 1\nchangelog: test\nboundaries:\n  allowed_domains: [allowed.localhost]\n"
        f"  allow_http: true\n  allowed_actions: {actions}\n{limits}steps:\n{body}\n"
    )


def _serve(server: TestServer) -> None:
    for p in ("/a", "/b", "/c"):
        server.set_content(p, f"<h1>{p}</h1><a id='next' href='/c'>next</a>")


def _go(server: TestServer, path: str) -> str:
    return f"goto: {server.url('allowed.localhost', path)}"


def _do(
    tmp_path: Path, text: str, skip_preflight: bool, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, list[dict[str, Any]]]:
    if skip_preflight:  # bypass the static checks (loader's semantic check, preflight chain)
        monkeypatch.setattr(run_module, "preflight", lambda loaded: None)
        monkeypatch.setattr(loader, "semantic_problems", lambda *a, **k: [])
    code, result = run(write_mission(tmp_path, text), tmp_path / "ev")
    return code, (records(result.folder) if result is not None and result.folder is not None else [])


def _step_decisions(recs: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {r["step"]: r for r in recs if r["type"] == "decision_record" and r.get("guard") == "chain"}


def _routes(server: TestServer) -> list[str]:
    return [r.route for r in server.requests if r.route in ("/a", "/b", "/c")]


def test_an_action_kind_outside_allowed_actions_is_refused_at_execution(
    tmp_path: Path, test_server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _serve(test_server)
    text = _mission(test_server, [_go(test_server, "/a"), "click: {selector: '#next'}"], actions="[goto]")
    code, _ = run(write_mission(tmp_path / "", text, "pre.yaml"), tmp_path / "pre")
    assert code == 2  # preflight refuses it statically
    code, recs = _do(tmp_path, text, True, monkeypatch)
    assert code == 3
    d = _step_decisions(recs)
    assert d[1]["decision"] == "allow"
    assert d[2]["decision"] == "deny" and d[2]["rule"] == "boundaries.allowed_actions"
    assert [c["guard"] for c in d[2]["checks"]] == ["least_privilege.actions"]
    assert _routes(test_server) == ["/a"]  # the click (-> /c) never happened
    exc = [r for r in recs if r["type"] == "exception_record"][-1]
    assert exc["category"] == "guardrail" and exc["mitigation"] == "blocked"
    assert not [r for r in recs if r["type"] == "action_record" and r["step"] == 2]


def test_allowed_action_kinds_run(tmp_path: Path, test_server: TestServer, monkeypatch: pytest.MonkeyPatch) -> None:
    _serve(test_server)
    text = _mission(test_server, [_go(test_server, "/a"), "click: {selector: '#next'}"], actions="[goto, click]")
    code, recs = _do(tmp_path, text, True, monkeypatch)
    assert code == 0 and _routes(test_server) == ["/a", "/c"]
    assert all(d["decision"] == "allow" for d in _step_decisions(recs).values())


@pytest.mark.parametrize(
    ("max_steps", "expect_code", "expect_routes"), [(2, 3, ["/a", "/b"]), (3, 0, ["/a", "/b", "/c"])]
)
def test_max_steps_is_enforced(
    max_steps: int,
    expect_code: int,
    expect_routes: list[str],
    tmp_path: Path,
    test_server: TestServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _serve(test_server)
    steps = [_go(test_server, p) for p in ("/a", "/b", "/c")]
    text = _mission(test_server, steps, actions="[goto]", limits=f"  max_steps: {max_steps}\n")
    code, recs = _do(tmp_path, text, True, monkeypatch)
    assert code == expect_code
    assert _routes(test_server) == expect_routes
    if expect_code == 3:
        d = _step_decisions(recs)[3]
        assert d["decision"] == "deny" and d["rule"] == "boundaries.max_steps"
        end = next(r for r in recs if r["type"] == "run_record" and r["phase"] == "end")
        assert end["exit_code"] == 3 and end["counts"]["steps_executed"] == 2


@pytest.mark.parametrize(("timeout", "expect_code"), [(5, 3), (30, 0)])
def test_run_timeout_is_enforced(
    timeout: float, expect_code: int, tmp_path: Path, test_server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _serve(test_server)
    steps = [_go(test_server, "/a"), "wait_for: {seconds: 5}", _go(test_server, "/c")]
    text = _mission(test_server, steps, actions="[goto, wait_for]", limits=f"  timeout: {timeout}\n")
    code, recs = _do(tmp_path, text, False, monkeypatch)
    assert code == expect_code
    if expect_code == 3:
        assert "/c" not in _routes(test_server)
        # the deadline counts from the run's start (browser launch included): step 2 or 3 is refused
        # (before a step: a deny decision; while one runs: the step is cut and the stop is recorded)
        denied = [d for d in _step_decisions(recs).values() if d["decision"] == "deny"]
        assert [d["rule"] for d in denied] in (["boundaries.timeout"], [])
        exc = [r for r in recs if r["type"] == "exception_record"][-1]
        assert exc["category"] == "guardrail" and "run timeout reached" in exc["message"]
    else:
        assert _routes(test_server) == ["/a", "/c"]
