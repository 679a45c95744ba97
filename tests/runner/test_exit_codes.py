"""Exit codes exactly as SPEC §3, through the real console script.

Each ``warden run`` case checks the code, what the user sees (a message, never a Python
traceback), what the server received (the witness of what was executed) and how the evidence
closed. The last part holds the table itself: SPEC §3's two tables are ``runner/exit_codes.py``,
the error classes exit with the code of their meaning, and every code the table gives ``run``,
``check`` and ``evidence verify`` is produced by a scenario of that command.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from kernel import errors
from runner import cli_approvals
from runner.cli import cli
from runner.exit_codes import COMMAND_CODES, MEANINGS, ExitCode
from tests.runner.missions import (
    base,
    mission,
    only_run,
    popen_warden,
    records,
    run_dirs,
    serve_site,
    warden,
)
from tests.server import TestServer

pytestmark = pytest.mark.browser


def run_cli(name: str | Path, server: TestServer, ev: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    path = name if isinstance(name, Path) else mission(name)
    return warden(
        "run", path, "--var", f"base={base(server)}", "--var", f"evil=http://evil.localhost:{server.port}",
        "--evidence-dir", ev, *extra,
    )


def no_traceback(done: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout, done.stderr
    assert "internal error" not in done.stderr, done.stderr


def run_json(ev: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((only_run(ev) / "run.json").read_text())
    return data


def end_record(ev: Path) -> dict[str, Any]:
    last = records(only_run(ev))[-1]
    assert last["type"] == "run_record" and last["phase"] == "end", last
    return last


# --------------------------------------------------------------------------- 0


def test_0_completed(tmp_path: Path, test_server: TestServer) -> None:
    serve_site(test_server)
    done = run_cli("three_pages", test_server, tmp_path / "ev")
    assert done.returncode == 0, done.stdout + done.stderr
    no_traceback(done)
    assert [r.route for r in test_server.requests if r.route.startswith("/p")] == ["/p1", "/p2", "/p3"]
    assert run_json(tmp_path / "ev")["status"] == "completed"
    assert end_record(tmp_path / "ev")["exit_code"] == 0


# --------------------------------------------------------------------------- 2


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("malformed_yaml", ["malformed_yaml.yaml:5", "YAML syntax error"]),
        (
            "schema_problems",
            [
                "schema_problems.yaml:5", "[boundaries.allowed_domain]", "did you mean 'allowed_domains'",
                "schema_problems.yaml:10", "[steps.1]", "exactly one action",
            ],
        ),
        ("kind_not_allowed", ["kind_not_allowed.yaml:9", "[steps.1.click]", "'click' is not in"]),
        ("goto_outside", ["goto_outside.yaml:9", "[steps.1.goto]", "evil.localhost"]),
    ],
)
def test_2_invalid_mission_executes_nothing(
    tmp_path: Path, test_server: TestServer, name: str, expected: list[str]
) -> None:
    serve_site(test_server)
    ev = tmp_path / "ev"
    done = run_cli(name, test_server, ev)
    assert done.returncode == 2, done.stdout + done.stderr
    no_traceback(done)
    missing = [e for e in expected if e not in done.stderr]
    assert missing == [], done.stderr
    assert "nothing was executed" in done.stderr
    assert done.stdout == ""
    assert test_server.requests == []  # not even the first (valid) step ran
    assert run_dirs(ev) == []  # no run folder


def test_2_every_schema_problem_is_reported_at_once(tmp_path: Path, test_server: TestServer) -> None:
    done = run_cli("schema_problems", test_server, tmp_path / "ev")
    assert done.returncode == 2
    problems = [ln for ln in done.stderr.splitlines() if ln.startswith("error ")]
    assert len(problems) >= 2, done.stderr
    assert "problem(s); nothing was executed" in done.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "{dir}/no-such-mission.yaml"], "no-such-mission.yaml"),
        (["run", "{mission}", "--var", "not a name=1"], "--var expects KEY=VALUE"),
        (["run", "{mission}", "--approval", "sometimes"], "sometimes"),
        (["run", "{mission}"], "base"),  # ${vars.base} never given
    ],
)
def test_2_usage_errors_are_messages(tmp_path: Path, test_server: TestServer, args: list[str], needle: str) -> None:
    argv = [a.format(dir=tmp_path, mission=mission("three_pages")) for a in args]
    done = warden(*argv, "--evidence-dir", tmp_path / "ev")
    assert done.returncode == 2, done.stdout + done.stderr
    no_traceback(done)
    assert needle in done.stderr
    assert test_server.requests == []
    assert run_dirs(tmp_path / "ev") == []


# --------------------------------------------------------------------------- 3


def test_3_step_limit(tmp_path: Path, test_server: TestServer) -> None:
    serve_site(test_server)
    ev = tmp_path / "ev"
    done = run_cli("max_steps", test_server, ev)
    assert done.returncode == 3, done.stdout + done.stderr
    no_traceback(done)
    assert "step limit reached" in done.stdout
    assert [r.route for r in test_server.requests if r.route.startswith("/p")] == ["/p1", "/p2"]
    recs = records(only_run(ev))
    denied = [r for r in recs if r["type"] == "decision_record" and r["decision"] == "deny"]
    assert [(r["step"], r["rule"]) for r in denied] == [(3, "boundaries.max_steps")]
    assert not [r for r in recs if r["type"] == "action_record" and r["step"] == 3]  # no intent: not attempted
    assert run_json(ev)["status"] == "stopped"
    assert end_record(ev)["outcome"] == "stopped"


def test_3_run_timeout(tmp_path: Path, test_server: TestServer) -> None:
    serve_site(test_server)
    ev = tmp_path / "ev"
    started = time.monotonic()
    done = run_cli("run_timeout", test_server, ev)  # timeout: 6; step 2 waits for text that never comes
    elapsed = time.monotonic() - started
    assert done.returncode == 3, done.stdout + done.stderr
    no_traceback(done)
    assert "run timeout reached" in done.stdout
    assert elapsed < 30, elapsed  # bounded by the run's 6 s (plus start and close), not the 30 s step default
    assert "/p2" not in {r.route for r in test_server.requests}
    stops = [r for r in records(only_run(ev)) if r["type"] == "exception_record" and r["category"] == "guardrail"]
    assert len(stops) == 1 and "run timeout" in stops[0]["message"]
    assert run_json(ev)["status"] == "stopped"


def test_3_run_timeout_bounds_a_long_pause(tmp_path: Path, test_server: TestServer) -> None:
    """`wait_for: {seconds: 60}` in a run with `timeout: 6` stops at the deadline, not after 60 s."""
    serve_site(test_server)
    started = time.monotonic()
    done = run_cli("wait_past_timeout", test_server, tmp_path / "ev")
    elapsed = time.monotonic() - started
    assert done.returncode == 3, done.stdout + done.stderr
    assert elapsed < 40, elapsed
    assert "run timeout reached" in done.stdout
    assert run_json(tmp_path / "ev")["status"] == "stopped"


def test_3_goto_built_from_an_extracted_variable_leaves_the_allowlist(
    tmp_path: Path, test_server: TestServer
) -> None:
    serve_site(test_server)
    ev = tmp_path / "ev"
    done = run_cli("extracted_goto", test_server, ev)
    assert done.returncode == 3, done.stdout + done.stderr
    no_traceback(done)
    assert test_server.requests_for("evil.localhost") == []
    recs = records(only_run(ev))
    denied = [r for r in recs if r["type"] == "decision_record" and r["decision"] == "deny"]
    assert len(denied) == 1 and denied[0]["step"] == 3 and denied[0]["kind"] == "goto"
    assert "evil.localhost" in denied[0]["rationale"]
    assert not [r for r in recs if r["type"] == "action_record" and r["step"] == 3]
    assert run_json(ev)["status"] == "stopped"


# --------------------------------------------------------------------------- 4


@pytest.mark.parametrize(
    ("name", "failed_step", "message"),
    [
        ("element_missing", 2, "#missing"),
        ("assert_fails", 3, "This text is not there"),
    ],
)
def test_4_step_failed(
    tmp_path: Path, test_server: TestServer, name: str, failed_step: int, message: str
) -> None:
    serve_site(test_server)
    ev = tmp_path / "ev"
    done = run_cli(name, test_server, ev)
    assert done.returncode == 4, done.stdout + done.stderr
    no_traceback(done)
    assert f"step {failed_step}" in done.stdout
    assert "failed (exit 4)" in done.stdout
    assert "/p2" not in {r.route for r in test_server.requests}  # the step after the failure never ran
    recs = records(only_run(ev))
    failures = [r for r in recs if r["type"] == "exception_record" and r["category"] == "step_failed"]
    assert [r["step"] for r in failures] == [failed_step]
    assert message in failures[0]["message"] or name == "element_missing"
    assert run_json(ev)["status"] == "failed"
    assert end_record(ev)["exit_code"] == 4


@pytest.fixture
def dead_port() -> int:
    """A port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_4_allowed_host_down_is_retried_then_fails(tmp_path: Path, test_server: TestServer, dead_port: int) -> None:
    serve_site(test_server)
    ev = tmp_path / "ev"
    done = run_cli("server_down", test_server, ev, "--var", f"down=http://allowed.localhost:{dead_port}")
    assert done.returncode == 4, done.stdout + done.stderr
    no_traceback(done)
    assert "retry 1 of step 1" in done.stdout and "retry 2 of step 1" in done.stdout
    recs = records(only_run(ev))
    retried = [r for r in recs if r["type"] == "exception_record" and r["mitigation"] == "retried"]
    assert [(r["step"], r["attempt"], r["category"]) for r in retried] == [(1, 1, "transient"), (1, 2, "transient")]
    assert test_server.requests == []  # step 2 (on the live server) never ran


# --------------------------------------------------------------------------- 5


def test_5_evidence_dir_under_a_regular_file(tmp_path: Path, test_server: TestServer) -> None:
    serve_site(test_server)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    done = run_cli("three_pages", test_server, blocker / "evidence")
    assert done.returncode == 5, done.stdout + done.stderr
    no_traceback(done)
    assert str(blocker / "evidence") in done.stderr and "Not a directory" in done.stderr, done.stderr
    assert test_server.requests == []
    assert blocker.read_text() == "not a directory"


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A read-only tmpfs: root ignores file modes, not a read-only mount."""
    mount = tmp_path / "ro"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.fail(f"cannot mount a read-only tmpfs (root required): {done.stderr.decode(errors='replace')}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_5_read_only_evidence_dir(tmp_path: Path, test_server: TestServer, read_only_dir: Path) -> None:
    serve_site(test_server)
    done = run_cli("three_pages", test_server, read_only_dir)
    assert done.returncode == 5, done.stdout + done.stderr
    no_traceback(done)
    assert "Read-only file system" in done.stderr
    assert test_server.requests == []
    assert list(read_only_dir.iterdir()) == []


# --------------------------------------------------------------------------- 130


def _wait_for_intent(ev: Path, kind: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = run_dirs(ev)
        if runs and (runs[0] / "records.jsonl").exists():
            recs = records(runs[0])
            if any(r["type"] == "action_record" and r["phase"] == "intent" and r["kind"] == kind for r in recs):
                return
        time.sleep(0.05)
    raise AssertionError(f"no {kind} intent within {timeout}s")


def test_130_ctrl_c_closes_the_evidence_cleanly(tmp_path: Path, test_server: TestServer) -> None:
    serve_site(test_server)
    ev = tmp_path / "ev"
    proc = popen_warden("run", mission("long_wait"), "--var", f"base={base(test_server)}", "--evidence-dir", ev)
    try:
        _wait_for_intent(ev, "wait_for")  # step 2 is pausing 10 s
        time.sleep(0.3)
        sent = time.monotonic()
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out + err
    assert time.monotonic() - sent < 9  # it did not sit out the pause
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "interrupted" in out
    assert [r.route for r in test_server.requests if r.route.startswith("/p")] == ["/p1"]  # step 3 never ran
    folder = only_run(ev)
    recs = records(folder)
    interrupted = [r for r in recs if r["type"] == "exception_record" and r["category"] == "interrupted"]
    assert len(interrupted) == 1
    end = recs[-1]
    assert (end["type"], end["phase"], end["outcome"], end["exit_code"]) == ("run_record", "end", "interrupted", 130)
    info = run_json(ev)
    assert info["status"] == "interrupted" and info["exit_code"] == 130
    assert info["chain_head"] == end["hash"] and info["record_count"] == len(recs)
    verified = warden("evidence", "verify", folder.name, "--evidence-dir", ev)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "intact" in verified.stdout


# --------------------------------------------------------------------------- the table

SPEC = Path(__file__).resolve().parents[2] / "docs" / "SPEC.md"

RISK_DENY = """\
mission: risk-deny
version: 1
boundaries:
  allowed_domains: [allowed.localhost, portal.example.com]
  allow_http: true
  allowed_actions: [goto]
secrets:
  TOKEN: {env: WARDEN_TEST_TOKEN, domains: [portal.example.com]}
steps:
  - goto: "${vars.base}/p1"
"""


def spec_tables() -> tuple[dict[int, str], dict[str, tuple[int, ...]]]:
    """SPEC §3's two exit-code tables: code -> meaning, command -> codes."""
    text = SPEC.read_text()
    section = text[text.index("### Exit codes") : text.index("## 4.")]
    meanings: dict[int, str] = {}
    commands: dict[str, tuple[int, ...]] = {}
    for line in section.splitlines():
        if m := re.fullmatch(r"\| (\d+) \| (.+) \|", line):
            meanings[int(m[1])] = m[2]
        elif m := re.fullmatch(r"\| `([^`]+)` \| ([\d, ]+) \|", line):
            commands[m[1]] = tuple(int(c) for c in m[2].split(", "))
    return meanings, commands


def test_spec_tables_are_the_exit_code_module() -> None:
    meanings, commands = spec_tables()
    assert meanings == {int(code): text for code, text in MEANINGS.items()}
    assert commands == {name: tuple(int(c) for c in codes) for name, codes in COMMAND_CODES.items()}
    assert set(MEANINGS) == set(ExitCode)


def _leaf_commands(group: click.Group, prefix: str = "") -> set[str]:
    out: set[str] = set()
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # the public API: lazily loaded commands too (runner/cli_lazy.py)
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            out |= _leaf_commands(command, f"{prefix}{name} ")
        else:
            out.add(f"{prefix}{name}")
    return out


def test_every_command_is_in_the_table() -> None:
    named = set()
    for key in COMMAND_CODES:
        head, _, leaves = key.rpartition(" ")
        named |= {f"{head} {leaf}".strip() for leaf in leaves.split("/")}
    assert named == _leaf_commands(cli)


def test_errors_and_commands_use_the_codes_of_their_meaning() -> None:
    assert errors.UserError.exit_code == errors.MissionInvalid.exit_code == errors.UsageError.exit_code == 2
    assert ExitCode(errors.UserError.exit_code) is ExitCode.INVALID
    assert ExitCode(errors.GuardrailStop.exit_code) is ExitCode.GUARDRAIL
    assert ExitCode(errors.SandboxUnavailable.exit_code) is ExitCode.GUARDRAIL  # refused to start: fail closed
    assert ExitCode(errors.StepFailed.exit_code) is ExitCode.STEP_FAILED
    assert ExitCode(errors.EvidenceUnavailable.exit_code) is ExitCode.EVIDENCE_UNAVAILABLE
    assert ExitCode(errors.Interrupted.exit_code) is ExitCode.INTERRUPTED
    assert (
        cli_approvals.EXIT_RECORDED, cli_approvals.EXIT_NOT_PENDING, cli_approvals.EXIT_USAGE,
        cli_approvals.EXIT_REFUSED,
    ) == (ExitCode.OK, ExitCode.NEGATIVE, ExitCode.INVALID, ExitCode.GUARDRAIL)


@dataclass
class Ctx:
    tmp: Path
    server: TestServer
    monkeypatch: pytest.MonkeyPatch

    @property
    def ev(self) -> Path:
        return self.tmp / "ev"

    def run(self, name: str | Path, *extra: str, env: dict[str, str] | None = None) -> tuple[int, str]:
        path = name if isinstance(name, Path) else mission(name)
        done = warden("run", path, "--var", f"base={base(self.server)}", "--evidence-dir", self.ev, *extra, env=env)
        return done.returncode, done.stdout + done.stderr

    def risk_deny(self) -> Path:
        path = self.tmp / "risk-deny.yaml"
        path.write_text(RISK_DENY)
        return path

    def in_process(self, *argv: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli, list(argv), env={"COLUMNS": "200"})
        return result.exit_code, result.output


def ctrl_c(*_: object, **__: object) -> None:
    raise KeyboardInterrupt


def _check(ctx: Ctx, path: str | Path) -> tuple[int, str]:
    done = warden("check", path, "--var", f"base={base(ctx.server)}")
    return done.returncode, done.stdout + done.stderr


def _check_interrupted(ctx: Ctx) -> tuple[int, str]:
    ctx.monkeypatch.setattr("runner.report_check.print_shape", ctrl_c)
    return ctx.in_process("check", str(mission("three_pages")), "--var", "base=http://allowed.localhost:1")


def _run_interrupted(ctx: Ctx) -> tuple[int, str]:
    proc = popen_warden("run", mission("long_wait"), "--var", f"base={base(ctx.server)}", "--evidence-dir", ctx.ev)
    try:
        _wait_for_intent(ctx.ev, "wait_for")
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out + err


def _run_with_a_blocked_evidence_dir(ctx: Ctx) -> tuple[int, str]:
    blocker = ctx.tmp / "a-file"
    blocker.write_text("not a directory")
    done = warden("run", mission("three_pages"), "--var", f"base={base(ctx.server)}", "--evidence-dir",
                  blocker / "ev")
    return done.returncode, done.stdout + done.stderr


def _verify(ctx: Ctx, tamper: bool) -> tuple[int, str]:
    code, said = ctx.run("three_pages")
    assert code == 0, said
    folder = only_run(ctx.ev)
    if tamper:
        lines = (folder / "records.jsonl").read_text().splitlines(keepends=True)
        (folder / "records.jsonl").write_text("".join(lines[:2] + lines[3:]))  # a record removed
    done = warden("evidence", "verify", folder.name, "--evidence-dir", ctx.ev)
    return done.returncode, done.stdout + done.stderr


def _verify_interrupted(ctx: Ctx) -> tuple[int, str]:
    ctx.monkeypatch.setattr("runner.evidence_cli.verify", ctrl_c)
    return ctx.in_process("evidence", "verify", "any-run", "--evidence-dir", str(ctx.ev))


# (command, code, case) -> what produces that code. Every code SPEC §3 gives these commands has one.
SCENARIOS: dict[tuple[str, int, str], Callable[[Ctx], tuple[int, str]]] = {
    ("check", 0, "valid"): lambda c: _check(c, mission("three_pages")),
    ("check", 2, "invalid"): lambda c: _check(c, mission("kind_not_allowed")),
    ("check", 2, "risk deny"): lambda c: _check(c, c.risk_deny()),
    ("check", 130, "ctrl-c"): _check_interrupted,
    ("run", 0, "completed"): lambda c: c.run("three_pages"),
    ("run", 2, "invalid"): lambda c: c.run("kind_not_allowed"),
    ("run", 2, "risk deny"): lambda c: c.run(c.risk_deny(), env={"WARDEN_TEST_TOKEN": "t0ken"}),
    ("run", 2, "usage"): lambda c: c.run("three_pages", "--var", "not a name=1"),
    ("run", 3, "step limit"): lambda c: c.run("max_steps"),
    ("run", 4, "element missing"): lambda c: c.run("element_missing"),
    ("run", 5, "evidence dir unwritable"): _run_with_a_blocked_evidence_dir,
    ("run", 130, "ctrl-c"): _run_interrupted,
    ("evidence verify", 0, "intact"): lambda c: _verify(c, tamper=False),
    ("evidence verify", 1, "a record removed"): lambda c: _verify(c, tamper=True),
    ("evidence verify", 2, "unknown run"): lambda c: c.in_process(
        "evidence", "verify", "zz-no-such-run", "--evidence-dir", str(c.ev)
    ),
    ("evidence verify", 130, "ctrl-c"): _verify_interrupted,
}


def test_every_code_of_check_run_and_verify_has_a_scenario() -> None:
    tested = {(command, code) for command, code, _ in SCENARIOS}
    assert tested == {(name, int(c)) for name in ("check", "run", "evidence verify") for c in COMMAND_CODES[name]}


@pytest.mark.parametrize(("command", "code", "case"), list(SCENARIOS))
def test_exit_code_means_what_the_table_says(
    tmp_path: Path, test_server: TestServer, monkeypatch: pytest.MonkeyPatch, command: str, code: int, case: str
) -> None:
    serve_site(test_server)
    got, said = SCENARIOS[(command, code, case)](Ctx(tmp_path, test_server, monkeypatch))
    assert got == code, said
    assert "Traceback" not in said and "internal error" not in said, said
    if code == ExitCode.INTERRUPTED:
        assert "interrupted" in said
