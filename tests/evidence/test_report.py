"""``report.html``: self-contained, escaped, states the verify verdict; written at the end of every run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from evidence.index import EvidenceIndex
from evidence.records import Actor, DecisionRecord
from evidence.report import render_report, write_report
from runner.cli import cli
from tests.evidence.test_query import POLICY, _finish, _run, _step, build_mix

HOSTILE = '<script>alert(1)</script><img src="http://evil.localhost/x.png">\u202egnp.exe'
REPORT_SHOT = os.environ.get("WARDEN_REPORT_SHOT")  # also save the browser test's screenshot here


def test_report_is_self_contained_and_escapes_page_text(evidence_dir: Path, index: EvidenceIndex) -> None:
    w = _run(evidence_dir, index, "20261105T100000000Z-hostile-dddddd", "hostile", datetime(2026, 11, 5, tzinfo=UTC))
    _step(w, 1, "goto", HOSTILE)
    w.append(DecisionRecord, actor=POLICY, guard="network", decision="deny", rationale=HOSTILE,
             subject={"host": "evil.localhost"})
    shot = w.attach_bytes(Path(__file__).with_name("__init__.py").read_bytes() or b"x", "screenshots/0009-s.png",
                          "image/png")
    w.append(DecisionRecord, actor=Actor(type="page", id="p"), guard="chain", decision="allow", rationale="x",
             step=2, kind="screenshot", attachments=[shot])
    _finish(w, index, "completed", 0)
    page = render_report(w.folder.root, index)
    assert "<script" not in page and "alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "\u202e" not in page and "\\u202e" in page  # bidi override shown, not obeyed
    assert re.findall(r'(?:src|href)="(?!data:)', page) == []  # nothing fetched: images are data: URIs
    assert 'img src="data:image/png;base64,' in page
    assert "default-src 'none'" in page  # CSP: no script, no network, even if something slipped through
    assert 'id="verdict"' in page and ">INTACT<" in page
    assert "Mission hostile" in page and 'id="step-1"' in page and 'id="step-2"' in page


def test_report_states_altered_when_the_chain_is_broken(evidence_dir: Path, index: EvidenceIndex) -> None:
    mix = build_mix(evidence_dir, index)
    path = mix.folders["A"] / "records.jsonl"
    lines = path.read_text().splitlines()
    rec = json.loads(lines[9])
    rec["reason"] = "looked fine"  # the denial's reason rewritten
    lines[9] = json.dumps(rec, separators=(",", ":"))
    path.write_text("\n".join(lines) + "\n")
    out = write_report(mix.folders["A"], index)
    page = out.read_text()
    assert out == mix.folders["A"] / "report.html"
    assert ">ALTERED<" in page and "hash mismatch" in page
    for section in ("Timeline of steps", "Decisions", "Approvals", "PII findings", "Exceptions"):
        assert section in page
    assert "amount too high" not in page.split('id="records"')[0]  # shows what the folder says now...
    assert "looked fine" in page  # ...and flags it above
    assert "j***@e***.com" in page and "bob" in page and "host not allowed" in page
    res = CliRunner().invoke(cli, ["evidence", "report", mix.runs["B"], "--evidence-dir", str(evidence_dir)])
    assert res.exit_code == 0 and (mix.folders["B"] / "report.html").exists()


def _demo(evidence_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``warden demo`` in its own process (this test process may already hold a Playwright session)."""
    return subprocess.run(
        [sys.executable, "-m", "runner.cli", "demo", "--evidence-dir", str(evidence_dir), "--json", *extra],
        capture_output=True, text=True, timeout=300, check=False,
    )


@pytest.mark.browser
def test_every_run_writes_a_report_that_chromium_renders(tmp_path: Path, page: Any) -> None:
    # Non-interactive, the demo's payment approval is denied: the run stops there (exit 3) and its
    # report must show the steps done, the decision and the denied approval.
    done = _demo(tmp_path / "ev", "--approval", "deny")
    events = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    finished = next(e for e in events if e["event"] == "run_finished")
    assert done.returncode == finished["exit_code"] in (0, 3), done.stdout[-2000:] + done.stderr[-2000:]
    report = Path(next(e["report"] for e in events if e["event"] == "report_written"))
    run = json.loads((report.parent / "run.json").read_text())
    records = [json.loads(x) for x in (report.parent / "records.jsonl").read_text().splitlines()]
    steps = sorted({r.get("step") for r in records} - {None})
    assert run["status"] in ("completed", "stopped") and len(steps) >= 10
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url))
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(report.as_uri())
    assert page.locator("h1").inner_text().startswith(f"Mission {run['mission_id']}")
    assert page.locator("#verdict .big").inner_text() == "INTACT"
    assert run["run_id"] in page.locator("header").inner_text()
    for n in steps:
        assert page.locator(f"#step-{n}").is_visible()
    shots = page.locator("#steps img")
    assert shots.count() >= 10
    assert all(page.evaluate("(i) => i.naturalWidth", shots.nth(i).element_handle()) > 0 for i in range(3))
    assert [u for u in fetched if not u.startswith(("file:", "data:"))] == []
    assert run["status"] in page.locator("#overview").inner_text()
    approvals = [r for r in records if r["type"] == "approval_record"]
    if approvals:
        text = page.locator("#approvals").inner_text()
        assert approvals[0]["approval_id"] in text and approvals[0]["decision"] in text
    png = tmp_path / "report.png"
    page.screenshot(path=str(png), full_page=False)
    assert png.stat().st_size > 10_000
    if REPORT_SHOT:
        Path(REPORT_SHOT).write_bytes(png.read_bytes())


@pytest.mark.browser
def test_a_report_that_cannot_be_written_is_a_warning_not_a_new_exit_code(tmp_path: Path) -> None:
    evidence_dir = tmp_path / "ev"
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    # sitecustomize runs in the child: report writing fails there, nothing else changes
    (tmp_path / "sitecustomize.py").write_text(
        "import evidence.report as r\n"
        "def _boom(*a, **k):\n    raise OSError(28, 'No space left on device')\n"
        "r.write_report = _boom\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "runner.cli", "demo", "--evidence-dir", str(evidence_dir), "--json",
         "--approval", "deny"],
        capture_output=True, text=True, timeout=300, check=False, env=env,
    )
    events = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    warnings = [e["message"] for e in events if e["event"] == "warning"]  # as root: the sandbox-off one too
    warning = next(m for m in warnings if "report.html" in m)
    assert "report.html not written" in warning and "No space left" in warning
    finished = next(e for e in events if e["event"] == "run_finished")
    (run_json,) = evidence_dir.glob("runs/*/run.json")
    run = json.loads(run_json.read_text())
    # the exit code is the run's own (the approval was denied: stopped, 3), not an evidence error
    assert done.returncode == finished["exit_code"] == run["exit_code"] == 3 and run["status"] == "stopped"
    assert not list(evidence_dir.glob("runs/*/report.html"))
