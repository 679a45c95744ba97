"""Helpers for the integrity tests: a short real mission against the local test server, run in-process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kernel.errors import WardenError
from runner.progress import QuietReporter
from runner.run import RunOptions, RunResult, run_mission
from tests.server import TestServer

PAGES = ("/a", "/b", "/c")


def serve_pages(server: TestServer, big: bool = False) -> None:
    """Pages /a, /b, /c (and /p0../p39); ``big`` pages make large, incompressible-ish screenshots."""
    filler = ""
    if big:
        cells = "".join(
            f'<div style="display:inline-block;width:9px;height:9px;background:#{(i * 2654435761) % 0xFFFFFF:06x}">'
            "</div>"
            for i in range(6000)
        )
        filler = f'<div style="width:1200px">{cells}</div>'
    for path in (*PAGES, *(f"/p{i}" for i in range(40))):
        html = f"<html><body><h1>page {path}</h1><a id='next' href='/c'>next page</a>{filler}</body></html>"
        server.set_content(path, html)


def mission_yaml(server: TestServer, steps: list[str], *, mission_id: str = "integrity-check", extra: str = "") -> str:
    body = "\n".join(f"  - {s}" for s in steps)
    return f"""mission: {mission_id}
version: 1
changelog: first cut
boundaries:
  allowed_domains: [allowed.localhost]
  allow_http: true
  allowed_actions: [goto, click, wait_for, screenshot]
  timeout: 60
{extra}steps:
{body}
"""


def short_steps(server: TestServer) -> list[str]:
    """Three steps, each with one side effect the server logs (GET /a, GET /b, GET /c via a click)."""
    return [
        f"goto: {server.url('allowed.localhost', '/a')}",
        f"goto: {server.url('allowed.localhost', '/b')}",
        "click: {selector: '#next', timeout: 5}",
    ]


def write_mission(tmp: Path, text: str, name: str = "mission.yaml") -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def run(mission: Path, evidence_dir: Path, **kw: Any) -> tuple[int, RunResult | None]:
    """Run in-process; (exit code, result). Setup failures (exit 2/5 before the run) give no result."""
    try:
        result = run_mission(RunOptions(mission_path=mission, evidence_dir=evidence_dir, **kw), QuietReporter())
    except WardenError as exc:
        return exc.exit_code, None
    return result.exit_code, result


def records(folder: Path) -> list[dict[str, Any]]:
    raw = (folder / "records.jsonl").read_bytes()
    return [json.loads(line) for line in raw.split(b"\n") if line.strip()]


def only_run(evidence_dir: Path) -> Path:
    runs = sorted((evidence_dir / "runs").iterdir())
    assert len(runs) == 1, runs
    return runs[0]
