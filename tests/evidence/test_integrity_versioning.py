"""version_log records: first run, unchanged, mission/policy/warden changes; no values in summaries."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import runner.lifecycle
from evidence.verify import verify_run
from evidence.versioning import FIRST_RUN, diff_keys, mission_changes
from tests.evidence.integrity_support import mission_yaml, records, run, serve_pages, short_steps, write_mission
from tests.server import TestServer


def _logs(folder: Path) -> list[dict[str, Any]]:
    return [r for r in records(folder) if r["type"] == "version_log"]


def test_diff_summaries_name_keys_and_steps_without_values() -> None:
    old = "mission: m\nversion: 1\nboundaries: {allowed_domains: [a.com], timeout: 5}\nsteps:\n" \
          "  - goto: https://a.com/\n  - click: {text: Go}\n  - fill: {selector: '#x', value: '4111'}\n"
    new = "mission: m\nversion: 2\nchangelog: why\nboundaries: {allowed_domains: [a.com, b.com]}\nsteps:\n" \
          "  - goto: https://a.com/\n  - click: {text: Go now}\n  - fill: {selector: '#x', value: '4111'}\n" \
          "  - screenshot: {name: s}\n"
    changes = mission_changes(old, new)
    assert changes == [
        "changed: boundaries.allowed_domains",
        "removed: boundaries.timeout",
        "added: changelog",
        "step 2 (click) changed",
        "step 4 (screenshot) added",
        "changed: version",
    ]
    assert not any("4111" in c or "b.com" in c for c in changes)
    assert diff_keys({"a": 1}, {"a": 1}) == []
    assert mission_changes(None, new)[0].startswith("previous mission text unavailable")


@pytest.mark.browser
def test_version_logs_across_runs(tmp_path: Path, test_server: TestServer, monkeypatch: pytest.MonkeyPatch) -> None:
    serve_pages(test_server)
    ev = tmp_path / "ev"
    steps = short_steps(test_server)
    env = dict(os.environ)

    first = write_mission(tmp_path, mission_yaml(test_server, steps), "v1.yaml")
    code, r1 = run(first, ev, environ=env)
    assert code == 0 and r1 is not None and r1.folder is not None
    (log,) = _logs(r1.folder)
    assert log["subject"] == "mission" and log["old_sha256"] is None and log["changes"] == [FIRST_RUN]
    assert log["why"] == "first cut" and log["seq"] == 2  # right after the opening run_record

    code, r2 = run(first, ev, environ=env)  # same content: nothing to log
    assert code == 0 and r2 is not None and r2.folder is not None
    assert _logs(r2.folder) == []

    approvals = "approvals:\n  timeout: 30\n"
    text = mission_yaml(test_server, [*steps, "screenshot: {name: final}"], extra=approvals)
    text = text.replace("version: 1", "version: 2").replace("first cut", "add final screenshot, shorter approvals")
    second = write_mission(tmp_path, text, "v2.yaml")
    monkeypatch.setattr(runner.lifecycle, "__version__", "9.9.9")
    code, r3 = run(second, ev, environ=env)
    assert code == 0 and r3 is not None and r3.folder is not None
    logs = {log["subject"]: log for log in _logs(r3.folder)}
    assert set(logs) == {"mission", "warden", "policy"}
    m = logs["mission"]
    assert m["old_sha256"] == records(r2.folder)[0]["mission_sha256"] != m["new_sha256"]
    assert (m["old_version"], m["new_version"]) == ("1", "2")
    assert m["why"] == "add final screenshot, shorter approvals"
    assert {"added: approvals", "step 4 (screenshot) added", "changed: changelog", "changed: version"} <= set(
        m["changes"]
    )
    assert logs["warden"]["old_version"] == "0.1.0" and logs["warden"]["new_version"] == "9.9.9"
    p = logs["policy"]
    assert p["changes"] == ["added: approvals"]
    assert p["old_sha256"] == records(r2.folder)[0]["policy_sha256"] != p["new_sha256"]
    for folder in (r1.folder, r2.folder, r3.folder):
        assert verify_run(folder).ok
