"""``warden evidence export``: JSONL as written, and OCSF 1.3.0 events with each class's required fields."""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from evidence.export import OCSF_VERSION, export_run
from evidence.index import EvidenceIndex
from runner.cli import cli
from tests.evidence.test_query import build_mix

# Required attributes per class (OCSF 1.3.0: the base event's, plus each class's own "required").
BASE_REQUIRED = ("activity_id", "category_uid", "class_uid", "type_uid", "severity_id", "time", "metadata.version",
                 "metadata.product.name", "metadata.product.vendor_name")
CLASS_REQUIRED = {
    6003: ("actor", "api.operation", "src_endpoint"),  # API Activity
    4001: ("src_endpoint", "dst_endpoint"),  # Network Activity
    6002: ("app.name", "app.vendor_name"),  # Application Lifecycle
    0: (),  # Base Event
}
CONTROL_PROFILE = ("action_id", "disposition_id", "policy.name")


def _get(event: dict[str, Any], path: str) -> Any:
    cur: Any = event
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _ocsf(folder: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    lines = folder.joinpath("records.jsonl").read_text().splitlines()
    out = io.StringIO()
    assert export_run(lines, "ocsf", out) == len(lines)
    return [json.loads(x) for x in lines], [json.loads(x) for x in out.getvalue().splitlines()]


def test_ocsf_events_carry_required_fields_and_round_trip(evidence_dir: Path, index: EvidenceIndex) -> None:
    mix = build_mix(evidence_dir, index)
    records, events = _ocsf(mix.folders["A"])
    assert OCSF_VERSION == "1.3.0"
    for rec, ev in zip(records, events, strict=True):
        for path in (*BASE_REQUIRED, *CLASS_REQUIRED[ev["class_uid"]]):
            assert _get(ev, path) not in (None, "", {}), (rec["type"], path)
        assert ev["metadata"]["version"] == "1.3.0" and ev["metadata"]["product"]["name"] == "Warden"
        assert ev["type_uid"] == ev["class_uid"] * 100 + ev["activity_id"]
        assert ev["time"] == int(datetime.fromisoformat(rec["time"].replace("Z", "+00:00")).timestamp() * 1000)
        # round trip: the event names its record and keeps every field OCSF has no attribute for
        assert ev["metadata"]["uid"] == rec["record_id"] and ev["metadata"]["sequence"] == rec["seq"]
        assert ev["unmapped"]["hash"] == rec["hash"] and ev["unmapped"]["prev_hash"] == rec["prev_hash"]
        for key, value in rec.items():
            if key not in {"record_id", "run_id", "type", "time", "actor", "schema"}:
                assert ev["unmapped"][key] == value, (rec["type"], key)
        if "security_control" in ev["metadata"]["profiles"]:
            for path in CONTROL_PROFILE:
                assert _get(ev, path) is not None, (rec["type"], path)
    by_type = {}
    for rec, ev in zip(records, events, strict=True):
        by_type.setdefault(rec["type"], []).append((rec, ev))
    assert {ev["class_uid"] for _, ev in by_type["action_record"]} == {6003}
    assert {ev["class_uid"] for _, ev in by_type["run_record"]} == {6002}
    failed = next(ev for rec, ev in by_type["action_record"] if rec.get("outcome") == "failed")
    assert failed["status_id"] == 2 and failed["status_detail"] == "timeout"
    assert failed["dst_endpoint"] == {"hostname": "portal.localhost"}
    network = next(ev for rec, ev in by_type["decision_record"] if rec["guard"] == "network")
    assert (network["class_uid"], network["activity_id"], network["activity_name"]) == (4001, 5, "Refuse")
    assert network["dst_endpoint"] == {"hostname": "evil.localhost", "port": 8080}
    assert (network["action_id"], network["disposition_id"], network["count"]) == (2, 2, 3)
    assert network["policy"]["uid"] == "boundaries.allowed_domains"
    step = next(ev for rec, ev in by_type["decision_record"] if rec["guard"] == "chain")
    assert (step["class_uid"], step["action_id"], step["disposition"]) == (6003, 1, "Allowed")
    (_, approval), = by_type["approval_record"]
    assert approval["class_uid"] == 6003 and approval["actor"]["user"]["name"] == "bob"
    assert (approval["action_id"], approval["disposition"], approval["policy"]["desc"]) == (2, "Blocked",
                                                                                          "amount too high")
    assert approval["api"]["operation"] == "click"  # from its approval_request
    (_, pii), = by_type["pii_finding"]
    assert pii["class_uid"] == 0 and "EMAIL_ADDRESS" in pii["message"]
    assert all(ev["src_endpoint"] == {"hostname": "ws1"} for ev in events)


def test_cli_export_jsonl_is_the_file_and_ocsf_is_one_event_per_record(evidence_dir: Path,
                                                                         index: EvidenceIndex) -> None:
    mix = build_mix(evidence_dir, index)
    runner = CliRunner()
    run_a = mix.runs["A"]
    res = runner.invoke(cli, ["evidence", "export", run_a, "--evidence-dir", str(evidence_dir)])
    assert res.exit_code == 0, res.output
    assert res.stdout == mix.folders["A"].joinpath("records.jsonl").read_text()
    out = evidence_dir / "a.ocsf.jsonl"
    res = runner.invoke(cli, ["evidence", "export", run_a[:20], "--format", "ocsf", "-o", str(out),
                              "--evidence-dir", str(evidence_dir)])
    assert res.exit_code == 0, res.output
    events = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(events) == len(mix.folders["A"].joinpath("records.jsonl").read_text().splitlines())
    assert {e["class_uid"] for e in events} == {6002, 6003, 4001, 0}
    # a killed run's torn last line is not a record: left out, said on stderr
    with open(mix.folders["C"] / "records.jsonl", "ab") as f:
        f.write(b'{"schema":"warden.action_rec')
    res = runner.invoke(cli, ["evidence", "export", str(mix.folders["C"]), "--format", "ocsf"])
    assert res.exit_code == 0 and "incomplete last line" in res.stderr
    assert len(res.stdout.splitlines()) >= 4
