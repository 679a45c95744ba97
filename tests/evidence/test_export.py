"""``warden evidence export``: JSONL as written, and OCSF 1.3.0 events that validate against the schema.

Every event of every run here is checked by ``tests/evidence/ocsf_schema.py`` against the OCSF
1.3.0 schema source vendored in ``tests/data/ocsf/1.3.0`` (attributes defined for the class or a
declared profile, required attributes, enums and their captions, type_uid, nested objects).
"""

from __future__ import annotations

import copy
import filecmp
import io
import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from evidence.export import OCSF_VERSION, export_run
from evidence.index import EvidenceIndex
from runner.cli import cli
from tests.evidence.conftest import StartRun
from tests.evidence.ocsf_runs import DEMO_RUN, realistic_run
from tests.evidence.ocsf_schema import SCHEMA_ROOT, schema
from tests.evidence.test_query import build_mix

REPO = Path(__file__).resolve().parents[2]


def _ocsf_lines(lines: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    out = io.StringIO()
    assert export_run(lines, "ocsf", out) == len(lines)
    return [json.loads(x) for x in lines], [json.loads(x) for x in out.getvalue().splitlines()]


def _ocsf(folder: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return _ocsf_lines(folder.joinpath("records.jsonl").read_text().splitlines())


def _invalid(events: list[dict[str, Any]]) -> list[str]:
    s = schema(OCSF_VERSION)
    return [f"#{i} {e.get('metadata', {}).get('event_code')}: {p}" for i, e in enumerate(events) for p in s.validate(e)]


def _all_runs(evidence_dir: Path, index: EvidenceIndex, start_run: StartRun) -> dict[str, tuple[list[Any], list[Any]]]:
    mix = build_mix(evidence_dir, index)
    runs = {name: _ocsf(folder) for name, folder in mix.folders.items()}
    runs["realistic"] = _ocsf(realistic_run(start_run).folder.root)
    runs["demo"] = _ocsf_lines(DEMO_RUN.read_text().splitlines())
    return runs


# --------------------------------------------------------------------------- schema validity


def test_every_exported_event_validates_against_ocsf_1_3_0(evidence_dir: Path, index: EvidenceIndex,
                                                            start_run: StartRun) -> None:
    runs = _all_runs(evidence_dir, index, start_run)
    events = [ev for _, evs in runs.values() for ev in evs]
    assert _invalid(events) == []
    types = Counter(rec["type"] for recs, _ in runs.values() for rec in recs)
    assert set(types) == {"run_record", "version_log", "decision_record", "action_record", "approval_request",
                          "approval_record", "pii_finding", "exception_record"}
    assert len(events) == sum(types.values()) == 101  # every record of the five runs, one event each
    assert {ev["class_uid"] for ev in events} == {0, 4001, 6002, 6003}
    refused = [ev for ev in events if ev["class_uid"] == 4001]
    assert len(refused) == 8 and all(ev["metadata"]["profiles"] == ["host", "security_control"] for ev in refused)


def test_the_validator_catches_what_the_old_export_got_wrong(evidence_dir: Path, start_run: StartRun) -> None:
    _, events = _ocsf(realistic_run(start_run).folder.root)
    s = schema(OCSF_VERSION)
    refusal = next(e for e in events if e["class_uid"] == 4001)
    action = next(e for e in events if e["metadata"]["event_code"] == "action_record" and "http_request" in e)
    lifecycle = next(e for e in events if e["class_uid"] == 6002)

    def broken(event: dict[str, Any], change: Any) -> list[str]:
        e = copy.deepcopy(event)
        change(e)
        return s.validate(e)

    # the previous mapping: Security Control attributes on API Activity, policy (not in 1.3.0's profile)
    problems = broken(action, lambda e: e.update(action_id=2, policy={"name": "chain"}) or e["metadata"].update(
        profiles=["security_control"]))
    assert "metadata.profiles: profile 'security_control' does not apply to API Activity" in problems
    assert "action_id: not an attribute of API Activity" in problems
    assert "policy: not an attribute of API Activity" in problems
    # a profile attribute without its profile declared; a profile's required attribute missing
    assert "actor: attribute of the 'host' profile, not declared in metadata.profiles" in broken(
        lifecycle, lambda e: e["metadata"].update(profiles=[]))
    assert "action_id: required by Network Activity, missing" in broken(refusal, lambda e: e.pop("action_id"))
    # required attributes, enums and their captions, type_uid, classes
    assert "api: required by API Activity, missing" in broken(action, lambda e: e.pop("api"))
    assert "api.operation: required by API, missing" in broken(action, lambda e: e["api"].pop("operation"))
    assert "activity_id: 5 is not one of ['0', '1', '2', '3', '4', '99']" in broken(
        action, lambda e: e.update(activity_id=5, type_uid=600305))
    assert "type_uid: 600399, expected 600302" in broken(action, lambda e: e.update(type_uid=600399))
    assert "status: 'Failed', the caption of status_id=2 is 'Failure'" in broken(
        action, lambda e: e.update(status_id=2, status="Failed"))
    assert "category_uid: 4 is not one of ['6']" in broken(action, lambda e: e.update(category_uid=4))
    assert broken(action, lambda e: e.update(class_uid=6004)) == ["class_uid: 6004 is not a class of OCSF 1.3.0"]
    # nested objects: unknown attributes, types, constraints
    assert "http_request.url.query: not an attribute of Uniform Resource Locator" in broken(
        action, lambda e: e["http_request"]["url"].update(query="a=1"))
    assert "dst_endpoint.port: 70000 outside port_t range [0, 65535]" in broken(
        refusal, lambda e: e["dst_endpoint"].update(port=70000))
    assert "dst_endpoint.hostname: 'bad_host!' does not match hostname_t" in broken(
        refusal, lambda e: e["dst_endpoint"].update(hostname="bad_host!"))
    assert "dst_endpoint: Network Endpoint needs at least one of" in " ".join(
        broken(refusal, lambda e: e.update(dst_endpoint={"port": 1})))
    assert "src_endpoint: not an attribute of Application Lifecycle" in broken(
        lifecycle, lambda e: e.update(src_endpoint={"hostname": "h"}))
    assert "time: '2026-01-01' is not timestamp_t" in broken(action, lambda e: e.update(time="2026-01-01"))


def test_the_vendored_schema_is_the_shared_copy() -> None:
    """tests/data/ocsf/1.3.0 is /work/shared's copy (CI has it at ../shared beside the repo)."""
    ours = SCHEMA_ROOT / "1.3.0"
    assert (ours / "LICENSE").is_file() and (ours / "NOTICE").is_file()
    assert json.loads((ours / "version.json").read_text())["version"] == OCSF_VERSION
    shared = REPO.parent / "shared" / "data" / "ocsf" / "1.3.0"
    if not shared.is_dir():
        pytest.skip("no ../shared/data/ocsf/1.3.0 beside the repository")
    files = sorted(str(p.relative_to(shared)) for p in shared.rglob("*") if p.is_file())
    _, mismatch, errors = filecmp.cmpfiles(shared, ours, files, shallow=False)
    assert (mismatch, errors) == ([], [])
    assert sorted(str(p.relative_to(ours)) for p in ours.rglob("*") if p.is_file()) == files


# --------------------------------------------------------------------------- the mapping


def _get(event: dict[str, Any], path: str) -> Any:
    cur: Any = event
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def test_ocsf_events_round_trip_to_their_records(evidence_dir: Path, index: EvidenceIndex,
                                                 start_run: StartRun) -> None:
    for records, events in _all_runs(evidence_dir, index, start_run).values():
        for rec, ev in zip(records, events, strict=True):
            assert ev["metadata"]["version"] == "1.3.0" and ev["metadata"]["product"]["name"] == "Warden"
            assert ev["time"] == int(datetime.fromisoformat(rec["time"].replace("Z", "+00:00")).timestamp() * 1000)
            # the event names its record and keeps every field (the actor too where OCSF has no actor)
            assert ev["metadata"]["uid"] == rec["record_id"] and ev["metadata"]["sequence"] == rec["seq"]
            assert ev["metadata"]["correlation_uid"] == rec["run_id"] and ev["metadata"]["event_code"] == rec["type"]
            assert ev["unmapped"]["hash"] == rec["hash"] and ev["unmapped"]["prev_hash"] == rec["prev_hash"]
            for key, value in rec.items():
                if key not in {"record_id", "run_id", "type", "time", "schema", "actor"}:
                    assert ev["unmapped"][key] == value, (rec["type"], key)
            if ev["class_uid"] == 0:
                assert ev["unmapped"]["actor"] == rec["actor"]
            # structured URLs never carry a query or fragment (they may carry PII)
            for path in ("url", "http_request.url"):
                if (url := _get(ev, path)) is not None:
                    assert set(url) <= {"scheme", "hostname", "port", "path"}, url


def test_the_mapping_per_record_type(evidence_dir: Path, index: EvidenceIndex, start_run: StartRun) -> None:
    mix = build_mix(evidence_dir, index)
    records, events = _ocsf(mix.folders["A"])
    by_type: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for rec, ev in zip(records, events, strict=True):
        by_type.setdefault(rec["type"], []).append((rec, ev))
    assert {ev["class_uid"] for _, ev in by_type["action_record"]} == {6003}
    assert {ev["class_uid"] for _, ev in by_type["run_record"]} == {6002}
    failed = next(ev for rec, ev in by_type["action_record"] if rec.get("outcome") == "failed")
    assert (failed["status_id"], failed["status"], failed["status_code"], failed["status_detail"]) == (
        2, "Failure", "failed", "timeout")
    assert failed["dst_endpoint"] == {"hostname": "portal.localhost"}
    network = next(ev for rec, ev in by_type["decision_record"] if rec["guard"] == "network")
    assert (network["class_uid"], network["activity_id"], network["activity_name"]) == (4001, 5, "Refuse")
    assert network["type_uid"] == 400105 and network["category_uid"] == 4
    assert network["dst_endpoint"] == {"hostname": "evil.localhost", "port": 8080}
    assert (network["action_id"], network["disposition_id"], network["count"]) == (2, 2, 3)
    assert network["firewall_rule"]["uid"] == "boundaries.allowed_domains"
    assert network["actor"]["authorizations"][0]["decision"] == "deny"
    step = next(ev for rec, ev in by_type["decision_record"] if rec["guard"] == "chain")
    assert (step["class_uid"], step["status"]) == (6003, "Success")
    assert step["actor"]["authorizations"][0] == {"decision": "allow", "policy": {
        "name": "chain", "uid": "chain", "desc": "goto allowed"}}
    (_, request), = by_type["approval_request"]
    assert (request["class_uid"], request["status_id"], request["status"]) == (6003, 99, "Approval Requested")
    (_, approval), = by_type["approval_record"]
    assert approval["class_uid"] == 6003 and approval["actor"]["user"]["name"] == "bob"
    assert approval["actor"]["user"]["account"] == {"name": "bob"}
    assert approval["actor"]["authorizations"] == [{"decision": "denied", "policy": {
        "name": "approval", "uid": "danger_zones.payments", "desc": "amount too high"}}]
    assert approval["api"]["operation"] == "click"  # from its approval_request
    assert approval["dst_endpoint"] == {"hostname": "portal.localhost"}  # its page_url
    (_, pii), = by_type["pii_finding"]
    assert (pii["class_uid"], pii["activity_id"], pii["activity_name"]) == (0, 99, "PII Finding")
    assert "EMAIL_ADDRESS ×1" in pii["message"] and "actor" not in pii and "src_endpoint" not in pii
    assert pii["unmapped"]["counts"] == {"EMAIL_ADDRESS": 1, "PHONE_NUMBER": 1} and "j***@e***.com" in pii["message"]
    assert all(ev["src_endpoint"] == {"hostname": "ws1"} for ev in events if ev["class_uid"] in (4001, 6003))
    end = by_type["run_record"][-1][1]
    assert (end["activity_name"], end["status_id"], end["status_code"], end["metadata"]["profiles"]) == (
        "Stop", 2, "failed", ["host"])
    assert end["device"]["hostname"] == "ws1" and end["actor"]["user"]["name"] == "alice"


def test_refused_requests_are_network_activity_refuse(evidence_dir: Path, start_run: StartRun) -> None:
    records, events = _ocsf(realistic_run(start_run).folder.root)
    refused = [(r, e) for r, e in zip(records, events, strict=True) if e["class_uid"] == 4001]
    assert [r["guard"] for r, _ in refused] == ["boundaries.network", "boundaries.resolver", "pii.request",
                                                "boundaries.network", "boundaries.network", "boundaries.downloads",
                                                "boundaries.downloads"]
    dst = [e["dst_endpoint"] for _, e in refused]
    assert dst == [{"hostname": "tracker.ads.example"}, {"ip": "10.0.0.5"}, {"hostname": "collect.example.net"},
                   {"hostname": "evil.example", "port": 8443}, {"hostname": "tracker.ads.example"},
                   {"name": "unknown"}, {"hostname": "files.example.com"}]
    assert [(e["activity_name"], e["action"], e["disposition"]) for _, e in refused][-2:] == [
        ("Refuse", "Denied", "Blocked"), ("Traffic", "Allowed", "Allowed")]  # a quarantined download is allowed
    with_url = refused[3][1]
    assert with_url["url"] == {"scheme": "https", "hostname": "evil.example", "port": 8443, "path": "/c"}
    assert "jane" not in json.dumps({k: v for k, v in with_url.items() if k != "unmapped"})
    assert refused[4][1]["count"] == 3
    assert all(e["connection_info"] == {"direction_id": 2, "direction": "Outbound"} for _, e in refused)
    # a step decision of a guard that is not about a request stays the API Activity it decides
    (unresolved,) = [e for r, e in zip(records, events, strict=True) if r.get("guard") == "danger_zones"]
    assert (unresolved["class_uid"], unresolved["api"]["operation"], unresolved["status_id"]) == (6003, "click", 2)
    # the page URL's query is not in the structured URL of an action either
    goto = next(e for r, e in zip(records, events, strict=True) if r.get("phase") == "outcome")
    assert goto["http_request"]["url"] == {"scheme": "https", "hostname": "portal.example.com", "path": "/login"}


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
    assert _invalid(events) == []
    # a killed run's torn last line is not a record: left out, said on stderr
    with open(mix.folders["C"] / "records.jsonl", "ab") as f:
        f.write(b'{"schema":"warden.action_rec')
    res = runner.invoke(cli, ["evidence", "export", str(mix.folders["C"]), "--format", "ocsf"])
    assert res.exit_code == 0 and "incomplete last line" in res.stderr
    assert len(res.stdout.splitlines()) >= 4
    assert _invalid([json.loads(x) for x in res.stdout.splitlines()]) == []
