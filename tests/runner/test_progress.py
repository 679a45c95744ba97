"""What a person (or a script) sees while ``warden run`` works: rich lines, ``--quiet``, ``--json``."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from runner.progress import JsonReporter, QuietReporter, RichReporter
from tests.runner.missions import base, mission, only_run, serve_site, warden
from tests.server import TestServer

STEP_LINE = re.compile(r"^\s+(\d+)/(\d+) (\w+)\s+(.*?)\s+(ok|failed|blocked)\s+(\d+) ms")


def run_cli(name: str, server: TestServer, ev: Path, *flags: str) -> Any:
    serve_site(server)
    return warden("run", mission(name), "--var", f"base={base(server)}", "--evidence-dir", ev, *flags)


# --------------------------------------------------------------------------- end to end


@pytest.mark.browser
def test_default_output_shows_each_step_and_ends_with_outcome_and_folder(
    tmp_path: Path, test_server: TestServer
) -> None:
    done = run_cli("three_pages", test_server, tmp_path / "ev")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    steps = [m.groups() for ln in lines if (m := STEP_LINE.match(ln))]
    assert [(s[0], s[1], s[2], s[4]) for s in steps] == [
        ("1", "3", "goto", "ok"), ("2", "3", "goto", "ok"), ("3", "3", "goto", "ok"),
    ], done.stdout
    assert all("/p" in s[3] for s in steps)  # the target is shown
    assert all(int(s[5]) > 0 for s in steps)  # a duration
    folder = only_run(tmp_path / "ev")
    assert folder.name in lines[0]  # the run id is announced first
    assert lines[-2].startswith("completed (exit 0)")
    assert lines[-1] == f"evidence: {folder}"


@pytest.mark.browser
def test_default_output_of_a_failed_run(tmp_path: Path, test_server: TestServer) -> None:
    done = run_cli("element_missing", test_server, tmp_path / "ev")
    assert done.returncode == 4
    lines = done.stdout.splitlines()
    assert lines[-2].startswith("failed (exit 4): step 2 (click) failed")
    assert lines[-1] == f"evidence: {only_run(tmp_path / 'ev')}"


@pytest.mark.browser
def test_quiet_prints_nothing(tmp_path: Path, test_server: TestServer) -> None:
    done = run_cli("three_pages", test_server, tmp_path / "ev", "--quiet")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert done.stderr == ""
    assert (only_run(tmp_path / "ev") / "run.json").is_file()  # it did run


@pytest.mark.browser
@pytest.mark.parametrize(("name", "code"), [("three_pages", 0), ("element_missing", 4)])
def test_json_is_one_event_per_line(tmp_path: Path, test_server: TestServer, name: str, code: int) -> None:
    done = run_cli(name, test_server, tmp_path / "ev", "--json")
    assert done.returncode == code, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]  # every line is one JSON value
    assert events and all(isinstance(e, dict) and isinstance(e["event"], str) for e in events)
    assert all(isinstance(e["t"], int | float) for e in events)
    assert [e["t"] for e in events] == sorted(e["t"] for e in events)
    folder = only_run(tmp_path / "ev")
    first, last = events[0], events[-1]
    assert first["event"] == "run_started"
    assert (first["run_id"], first["steps"], first["evidence"]) == (folder.name, 3, str(folder))
    assert last["event"] == "run_finished"
    assert (last["exit_code"], last["evidence"], last["run_id"]) == (code, str(folder), folder.name)
    finished = [e for e in events if e["event"] == "step_finished"]
    expected = [(1, "ok"), (2, "ok"), (3, "ok")] if code == 0 else [(1, "ok"), (2, "failed")]
    got = [(e["step"], e["outcome"]) for e in finished]
    if code == 4 and got == [(1, "ok")]:
        # a missing target may be noticed while resolving it for the danger zones, before the action
        expected = [(1, "ok")]
    assert got == expected
    assert all(e["kind"] == "goto" for e in finished if e["step"] != 2 or code == 0)
    assert all(e["duration_ms"] >= 0 for e in finished)


# --------------------------------------------------------------------------- the reporters


def rich_output(events: list[tuple[str, dict[str, Any]]], redact: Any = None, width: int = 200) -> str:
    buf = io.StringIO()
    reporter = RichReporter(Console(file=buf, width=width, highlight=False, color_system=None))
    if redact is not None:
        reporter.redact = redact
    for name, fields in events:
        reporter.event(name, **fields)
    return buf.getvalue()


EVENTS: list[tuple[str, dict[str, Any]]] = [
    ("run_started", {"run_id": "R1", "mission": "m", "version": "2", "steps": 2, "evidence": "/ev/R1"}),
    ("step_finished", {"step": 1, "kind": "fill", "target": "selector=#pw", "outcome": "ok",
                       "duration_ms": 12.3, "retries": 0}),
    ("retry", {"step": 2, "attempt": 1, "error": "Timeout 500ms exceeded"}),
    ("step_finished", {"step": 2, "kind": "wait_for", "target": "text=hunter2", "outcome": "ok",
                       "duration_ms": 640.0, "retries": 1}),
    ("decision", {"step": 2, "kind": "wait_for", "decision": "allow", "guard": "g", "reason": "fine"}),
    ("run_finished", {"run_id": "R1", "outcome": "completed", "exit_code": 0, "message": "every step executed",
                      "evidence": "/ev/R1"}),
]


def test_rich_reporter_lines() -> None:
    out = rich_output(EVENTS)
    lines = out.splitlines()
    assert "R1" in lines[0] and "2 steps" in lines[0]
    assert re.search(r"1/2 fill\s+selector=#pw\s+ok 12 ms", out)
    assert re.search(r"2/2 wait_for\s+text=hunter2\s+ok 640 ms after 1 retries", out)
    assert "retry 1 of step 2: Timeout 500ms exceeded" in out
    assert "fine" not in out  # allow decisions are not shown, only denials and approvals
    assert lines[-2] == "completed (exit 0): every step executed"
    assert lines[-1] == "evidence: /ev/R1"


def test_rich_reporter_never_wraps_the_outcome_or_the_evidence_path() -> None:
    """A path broken over two lines cannot be copied from a CI log (the console is 120 wide there)."""
    folder = "/tmp/" + "/".join(["a-rather-long-directory-name"] * 6) + "/runs/20261121T201752428Z-m-7894a3"
    message = "step 2 (click) failed: target not found: " + "x" * 150
    end = ("run_finished", {"run_id": "R1", "outcome": "failed", "exit_code": 4, "message": message,
                            "evidence": folder})
    lines = rich_output([EVENTS[0], end], width=60).splitlines()
    assert lines[-1] == f"evidence: {folder}"
    assert lines[-2] == f"failed (exit 4): {message}"


def test_rich_reporter_redacts_and_escapes_markup() -> None:
    events = [
        *EVENTS[:3],
        ("step_finished", {"step": 2, "kind": "wait_for", "target": "text=[bold]hunter2[/bold]", "outcome": "ok",
                           "duration_ms": 1.0, "retries": 0}),
    ]
    out = rich_output(events, redact=lambda s: s.replace("hunter2", "«secret:PW»"))
    assert "hunter2" not in out
    assert "text=[bold]«secret:PW»[/bold]" in out  # page text cannot style the terminal


def test_json_reporter_redacts_every_string() -> None:
    buf = io.StringIO()
    reporter = JsonReporter(buf)
    reporter.redact = lambda s: s.replace("hunter2", "«secret:PW»")
    reporter.event("step_finished", step=1, target="text=hunter2", outcome="ok", duration_ms=1.5)
    event = json.loads(buf.getvalue())
    assert event["target"] == "text=«secret:PW»"
    assert (event["event"], event["step"], event["duration_ms"]) == ("step_finished", 1, 1.5)
    assert buf.getvalue().count("\n") == 1


def test_quiet_reporter_is_silent(capsys: pytest.CaptureFixture[str]) -> None:
    reporter = QuietReporter()
    for name, fields in EVENTS:
        reporter.event(name, **fields)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


# --------------------------------------------------------------------------- Warden's own ids are never masked

DIGIT_RUN_ID = "20261203T141453119Z-pii-check-356578"  # its all-digit suffix reads as a phone number
PAGE_PHONE = "(212) 555-0143"


@pytest.fixture(scope="module")
def real_redactor() -> Any:
    from evidence.redact import RedactorChain, SecretRedactor
    from guards.pii.engine import build_analyzer, default_entities
    from guards.pii.redactor import PiiRedactor
    from guards.pii.scanner import PiiScanner
    from missions.model import PiiPolicy

    entities = default_entities()
    scanner = PiiScanner(PiiPolicy(entities=entities), b"k" * 32, analyzer=build_analyzer(entities))
    return RedactorChain([SecretRedactor({}), PiiRedactor(scanner)])


def test_reporters_never_mask_the_run_id_or_paths_but_mask_pii(real_redactor: Any) -> None:
    assert "«pii:PHONE_NUMBER»" in real_redactor.redact(DIGIT_RUN_ID)  # the premise: detection alone masks it
    folder = f"/tmp/ev/runs/{DIGIT_RUN_ID}"
    events: list[tuple[str, dict[str, Any]]] = [
        ("run_started", {"run_id": DIGIT_RUN_ID, "mission": "pii-check", "version": "1", "steps": 1,
                         "evidence": folder}),
        ("step_finished", {"step": 1, "kind": "click", "target": f"text=Call {PAGE_PHONE}", "outcome": "ok",
                           "duration_ms": 1.0, "retries": 0}),
        ("demo_finished", {"verdict": f"run {DIGIT_RUN_ID} verified",
                           "verify": f"warden evidence verify {DIGIT_RUN_ID} --evidence-dir /tmp/ev"}),
        ("run_finished", {"run_id": DIGIT_RUN_ID, "outcome": "completed", "exit_code": 0,
                          "message": f"see {folder}; Phone: {PAGE_PHONE}", "evidence": folder}),
    ]
    text = rich_output(events, redact=real_redactor.redact)
    buf = io.StringIO()
    json_reporter = JsonReporter(buf)
    json_reporter.redact = real_redactor.redact
    for name, fields in events:
        json_reporter.event(name, **fields)
    decoded = [json.loads(line) for line in buf.getvalue().splitlines()]
    for out in (text, buf.getvalue()):
        assert PAGE_PHONE not in out and "«pii:PHONE_NUMBER»" in out
        assert "356578»" not in out and "pii-check-«" not in out
    assert decoded[0]["run_id"] == DIGIT_RUN_ID and decoded[0]["evidence"] == folder
    assert decoded[2]["verify"] == f"warden evidence verify {DIGIT_RUN_ID} --evidence-dir /tmp/ev"
    assert decoded[3]["message"] == f"see {folder}; Phone: «pii:PHONE_NUMBER»"
    assert f"warden run {DIGIT_RUN_ID}" in text and f"evidence: {folder}" in text


@pytest.mark.browser
def test_a_digit_run_id_is_printed_and_recorded_unmasked(
    tmp_path: Path, test_server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic: the id generator returns a run id whose random suffix is all digits."""
    import sqlite3
    import sys

    import evidence.runfolder as runfolder
    from tests.guards.pii_support import mission as pii_mission
    from tests.guards.pii_support import records
    from tests.guards.pii_support import run as run_in_process

    original = runfolder.new_run_id
    for module in list(sys.modules.values()):  # wherever the generator was imported (run.py, lifecycle...)
        if getattr(module, "new_run_id", None) is original:
            monkeypatch.setattr(module, "new_run_id", lambda _mission_id, now=None: DIGIT_RUN_ID)
    test_server.set_content("/contact", f"<html><body><p id='p'>Phone: {PAGE_PHONE}</p></body></html>")
    ev = tmp_path / "ev"
    steps = [f"goto: {test_server.url('allowed.localhost', '/contact')}", "wait_for: {text: Phone}"]
    code, res, recs, out = run_in_process(tmp_path, pii_mission(steps), ev)
    assert code == 0, out
    assert res is not None and res.folder is not None and res.folder.name == DIGIT_RUN_ID
    events = [json.loads(line) for line in out.splitlines()]
    assert events[0]["run_id"] == DIGIT_RUN_ID and events[0]["evidence"] == str(res.folder)
    assert events[-1]["run_id"] == DIGIT_RUN_ID and events[-1]["evidence"] == str(res.folder)
    assert "pii-check-«pii" not in out and PAGE_PHONE not in out
    assert all(r["run_id"] == DIGIT_RUN_ID for r in records(res.folder))
    assert json.loads((res.folder / "run.json").read_text())["run_id"] == DIGIT_RUN_ID
    with sqlite3.connect(ev / "warden.db") as db:
        assert db.execute("SELECT run_id FROM runs").fetchall() == [(DIGIT_RUN_ID,)]
        assert {r for (r,) in db.execute("SELECT DISTINCT run_id FROM records")} == {DIGIT_RUN_ID}
    # ... while the real phone number on the page is found and never written in clear.
    found = [r for r in recs if r["type"] == "pii_finding" and r["counts"].get("PHONE_NUMBER")]
    assert all(v["preview"] != PAGE_PHONE and len(v["value_hmac"]) == 64 for r in found for v in r["values"])
    assert found, [r["type"] for r in recs]
    for f in (p for p in ev.rglob("*") if p.is_file()):
        assert PAGE_PHONE.encode() not in f.read_bytes(), f
