"""No fail-open defaults: a missing part is a construction error, never an allow-all; a browser
without its sandbox is said on the terminal and recorded in the start run_record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from guards.base import Decision, RequestChain, StepChain
from guards.least_privilege import least_privilege_guards
from missions.loader import load_mission
from runner import launch
from runner.approvals.seam import NoApprovals
from runner.assembly import build_preflight_chain, domain_policy
from runner.steps import StepExecutor
from tests.runner.missions import base, mission, only_run, records, serve_site, warden
from tests.server import TestServer


class Events:
    """A reporter that keeps what it is told."""

    def __init__(self) -> None:
        self.redact: Any = lambda s: s
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def event(self, name: str, **fields: Any) -> None:
        self.seen.append((name, fields))


class Hooks:
    """A PII-hooks double: nothing on the page, nothing to stop."""

    def before_screenshot(self, step: int, driver: Any) -> None:
        return None

    def screenshot_masks(self, url: str) -> list[str] | None:
        return []

    def pending_stop(self) -> Decision | None:
        return None


class Allow:
    name = "allow"

    def check(self, action: Any, ctx: Any) -> Decision:
        return Decision.allow(self.name, "test", "test")


def executor(**overrides: Any) -> StepExecutor:
    parts: dict[str, Any] = dict(
        driver=object(), chain=StepChain([Allow()]), recorder=object(), reporter=Events(),
        attach_screenshot=lambda png, n, when: None, approvals=NoApprovals(), hooks=Hooks(),
    )
    parts.update(overrides)
    return StepExecutor(**parts)


# ----------------------------------------------------------------------------- construction errors


@pytest.mark.parametrize(
    ("missing", "fragment"),
    [("hooks", "PII hooks"), ("approvals", "approval desk"), ("chain", "StepChain")],
)
def test_a_step_executor_without_a_part_is_not_built(missing: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        executor(**{missing: None})


@pytest.mark.parametrize("missing", ["hooks", "approvals"])
def test_hooks_and_approvals_have_no_default(missing: str) -> None:
    parts: dict[str, Any] = dict(
        driver=object(), chain=StepChain([Allow()]), recorder=object(), reporter=Events(),
        attach_screenshot=lambda png, n, when: None, approvals=NoApprovals(), hooks=Hooks(),
    )
    del parts[missing]
    with pytest.raises(TypeError, match=missing):
        StepExecutor(**parts)


def test_a_step_executor_with_every_part_is_built() -> None:
    built = executor()
    assert isinstance(built.approvals, NoApprovals) and isinstance(built.hooks, Hooks)


@pytest.mark.parametrize("chain", [StepChain, RequestChain])
def test_an_empty_chain_is_refused(chain: Any) -> None:
    with pytest.raises(ValueError, match="at least one guard"):
        chain([])


def test_the_chains_warden_builds_are_never_empty(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "mission: m\nversion: 1\nboundaries:\n  allowed_domains: [allowed.localhost]\n"
        "  allowed_actions: [goto]\nsteps:\n  - goto: https://allowed.localhost/\n",
        encoding="utf-8",
    )
    loaded = load_mission(path, environ={})
    assert len(least_privilege_guards(domain_policy(loaded))) >= 4
    assert build_preflight_chain(loaded).guards  # the preflight chain holds the least-privilege guards


def test_a_run_without_its_pii_runtime_is_not_assembled(tmp_path: Path) -> None:
    """Without it no secret or PII guard would join the chains: refused, not built thinner."""
    from evidence.redact import RedactorChain
    from kernel.errors import SandboxUnavailable
    from runner.approvals.human import ApprovalOptions
    from runner.assembly import PreparedRun, complete

    path = tmp_path / "m.yaml"
    path.write_text(
        "mission: m\nversion: 1\nboundaries:\n  allowed_domains: [allowed.localhost]\n"
        "  allowed_actions: [goto]\nsteps:\n  - goto: https://allowed.localhost/\n",
        encoding="utf-8",
    )
    loaded = load_mission(path, environ={})
    prepared = PreparedRun(policy=domain_policy(loaded), redactor=RedactorChain([]), pii=None)
    with pytest.raises(SandboxUnavailable, match="PII runtime"):
        complete(loaded, prepared, object(), ApprovalOptions(mode="deny"))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- the sandbox


def test_as_root_the_sandbox_is_off_and_the_run_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launch.os, "geteuid", lambda: 0)
    config = launch.sandbox_config(Path("/usr/lib/chromium/chromium"), domain_policy_for("allowed.localhost"))
    assert config.chromium_sandbox is False
    assert launch.sandbox_state() == "off: running as root"
    reporter = Events()
    executor(reporter=reporter)
    assert reporter.seen == [("warning", {"message": launch.SANDBOX_OFF})]


def test_as_a_user_the_sandbox_is_on_and_nothing_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launch.os, "geteuid", lambda: 1000)
    config = launch.sandbox_config(Path("/usr/lib/chromium/chromium"), domain_policy_for("allowed.localhost"))
    assert config.chromium_sandbox is True
    assert (launch.sandbox_state(), launch.sandbox_notice()) == ("on", None)
    reporter = Events()
    executor(reporter=reporter)
    assert reporter.seen == []


def domain_policy_for(host: str) -> Any:
    from guards.urlmatch import DomainPolicy

    return DomainPolicy([host], [])


@pytest.mark.browser
def test_a_real_run_shows_and_records_the_sandbox_state(tmp_path: Path, test_server: TestServer) -> None:
    serve_site(test_server)
    ev = tmp_path / "ev"
    done = warden("run", mission("three_pages"), "--var", f"base={base(test_server)}", "--evidence-dir", ev, "--json")
    assert done.returncode != 2, done.stdout + done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    warnings = [e["message"] for e in events if e["event"] == "warning"]
    start = next(r for r in records(only_run(ev)) if r["type"] == "run_record" and r["phase"] == "start")
    if launch.chromium_sandbox_on():
        assert start["versions"]["chromium_sandbox"] == "on"
        assert launch.SANDBOX_OFF not in warnings
    else:
        assert start["versions"]["chromium_sandbox"] == "off: running as root"
        assert warnings.count(launch.SANDBOX_OFF) == 1
        names = [e["event"] for e in events]
        assert names.index("warning") < (names.index("step_finished") if "step_finished" in names else len(names))
    rich = warden("run", mission("three_pages"), "--var", f"base={base(test_server)}", "--evidence-dir", ev)
    assert ("warning: Chromium's own sandbox is off" in rich.stdout) is (not launch.chromium_sandbox_on())


# ----------------------------------------------------------------------------- the version_log


def _version_logs(tmp_path: Path, old: str | None, new: str | None) -> list[dict[str, Any]]:
    from types import SimpleNamespace

    from evidence.versioning import MissionSubject, version_logs
    from kernel import __version__

    subject = MissionSubject("m", "1", "", {"boundaries": {}})
    versions = {"warden": __version__, **({"chromium_sandbox": old} if old is not None else {})}
    first = {"type": "run_record", "phase": "start", "versions": versions, "policy_sha256": subject.policy_sha256}
    (tmp_path / "records.jsonl").write_text(json.dumps(first) + "\n", encoding="utf-8")
    previous = SimpleNamespace(folder=str(tmp_path), mission_sha256="a" * 64, mission_version="1")
    index = SimpleNamespace(last_run_of_mission=lambda mission_id, exclude_run_id: previous)
    return version_logs(index, run_id="R2", mission=subject, mission_sha256="a" * 64,  # type: ignore[arg-type]
                        mission_text=None, warden_version=__version__, sandbox=new)


def test_the_sandbox_turned_off_since_the_last_run_is_a_version_log(tmp_path: Path) -> None:
    (log,) = _version_logs(tmp_path, "on", "off: running as root")
    assert (log["subject"], log["subject_id"]) == ("warden", "chromium_sandbox")
    assert (log["old_version"], log["new_version"]) == ("on", "off: running as root")
    assert log["changes"] == ["chromium sandbox on -> off: running as root"]


@pytest.mark.parametrize(("old", "new"), [("on", "on"), (None, "off: running as root"), ("on", None)])
def test_an_unchanged_or_unknown_sandbox_state_writes_no_version_log(
    tmp_path: Path, old: str | None, new: str | None
) -> None:
    assert _version_logs(tmp_path, old, new) == []
