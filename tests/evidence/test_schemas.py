"""Stored JSON Schemas (evidence/schemas) match the models, per version; real records validate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, ClassVar

import pytest
from jsonschema import Draft202012Validator

from evidence import schema_gen
from evidence.records import RECORD_TYPES, ActionRecord, PiiFinding, PiiFindingV1, parse_record
from tests.evidence.integrity_support import mission_yaml, records, run, serve_pages, short_steps, write_mission
from tests.server import TestServer


def test_every_record_type_has_its_stored_schema_unchanged() -> None:
    assert schema_gen.check() == []
    stored = {p.name for p in schema_gen.SCHEMA_DIR.glob("*.json")}
    for cls in RECORD_TYPES.values():
        assert schema_gen.schema_filename(cls) in stored
        Draft202012Validator.check_schema(schema_gen.load_schema(cls.schema_id()))


def test_stored_text_is_stable(tmp_path: Path) -> None:
    for name, text in schema_gen.generate().items():
        assert text == schema_gen.render(json.loads(text)), name  # sorted keys, fixed indent
    assert schema_gen.generate() == schema_gen.generate()


def test_missing_version_file_fails(tmp_path: Path) -> None:
    copy = tmp_path / "schemas"
    shutil.copytree(schema_gen.SCHEMA_DIR, copy)
    current = schema_gen.schema_filename(ActionRecord)
    (copy / current).unlink()
    assert schema_gen.check(copy) == [f"{current}: missing — run `python -m evidence.schema_gen`"]


def test_model_change_without_version_bump_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    class ChangedAction(ActionRecord):
        TYPE: ClassVar[str] = "action_record"
        new_field: str = ""

    monkeypatch.setitem(schema_gen.RECORD_TYPES, "action_record", ChangedAction)
    v = ActionRecord.SCHEMA_VERSION
    assert schema_gen.check() == [
        f"action_record.v{v}.json: schema of action_record changed without bumping SCHEMA_VERSION"
    ]

    class BumpedAction(ChangedAction):
        SCHEMA_VERSION: ClassVar[int] = v + 1

    monkeypatch.setitem(schema_gen.RECORD_TYPES, "action_record", BumpedAction)
    assert schema_gen.check() == [f"action_record.v{v + 1}.json: missing — run `python -m evidence.schema_gen`"]


@pytest.mark.browser
def test_every_record_of_a_real_run_validates_against_its_stored_schema(
    tmp_path: Path, test_server: TestServer
) -> None:
    serve_pages(test_server)
    mission = write_mission(tmp_path, mission_yaml(test_server, short_steps(test_server)))
    code, result = run(mission, tmp_path / "ev")
    assert code == 0 and result is not None and result.folder is not None
    recs = records(result.folder)
    assert {"run_record", "decision_record", "action_record", "version_log"} <= {r["type"] for r in recs}
    for rec in recs:
        validator = Draft202012Validator(schema_gen.load_schema(rec["schema"]))
        errors = [e.message for e in validator.iter_errors(rec)]
        assert not errors, (rec["type"], errors)
    # and a schema does reject a malformed record of its type
    bad = {**recs[0], "phase": "middle"}
    assert list(Draft202012Validator(schema_gen.load_schema(recs[0]["schema"])).iter_errors(bad))


def test_a_v1_pii_finding_still_parses_and_a_v2_one_needs_its_fields() -> None:
    """Runs written before issue 13 hold one record per value (warden.pii_finding/1): still read."""
    env = {"record_id": "r", "run_id": "x", "seq": 2, "time": "2026-11-01T00:00:00.000Z", "attachments": [],
           "actor": {"type": "policy", "id": "pii-guard"}, "prev_hash": "0" * 64, "hash": "1" * 64,
           "type": "pii_finding"}
    v1 = {**env, "schema": "warden.pii_finding/1", "entity_type": "EMAIL_ADDRESS", "score": 0.9, "where": "page",
          "value_hmac": "a" * 64, "key_id": "k", "preview": "j***@e***.com", "policy": "record", "action": "recorded"}
    assert isinstance(parse_record(v1), PiiFindingV1)
    assert Draft202012Validator(schema_gen.load_schema("warden.pii_finding/1")).is_valid(v1)
    with pytest.raises(ValueError, match="counts"):
        parse_record({**v1, "schema": "warden.pii_finding/2"})  # a v1 body cannot pass as v2
    v2 = {k: v for k, v in v1.items() if k not in {"entity_type", "score", "value_hmac", "preview"}}
    v2 |= {"schema": "warden.pii_finding/2", "counts": {"EMAIL_ADDRESS": 1}, "values": [
        {"entity_type": "EMAIL_ADDRESS", "score": 0.9, "value_hmac": "a" * 64, "preview": "j***@e***.com",
         "action": "recorded"}]}
    assert isinstance(parse_record(v2), PiiFinding)
    assert Draft202012Validator(schema_gen.load_schema("warden.pii_finding/2")).is_valid(v2)
    with pytest.raises(ValueError, match="values"):
        parse_record({**v2, "values": []})  # a finding record holds at least one value


def test_records_written_before_actor_kind_agent_still_parse_and_validate() -> None:
    """Every type's v2 (v3 for run_record, approval_record, pii_finding) only added actor kind agent:
    the older stored versions stay, and their records parse with today's models."""
    old = {"decision_record": 1, "action_record": 1, "run_record": 2}
    env = {"record_id": "r", "run_id": "x", "seq": 2, "time": "2026-11-01T00:00:00.000Z", "attachments": [],
           "actor": {"type": "policy", "id": "guard-chain"}, "prev_hash": "0" * 64, "hash": "1" * 64}
    v1 = f"warden.decision_record/{old['decision_record']}"
    decision: dict[str, Any] = {**env, "type": "decision_record", "schema": v1,
                "guard": "chain", "decision": "allow", "rationale": "ok", "rule": "", "step": 1, "kind": "goto",
                "subject": {}, "checks": [], "count": 1}
    assert Draft202012Validator(schema_gen.load_schema(v1)).is_valid(decision)
    assert parse_record(decision).actor.type == "policy"
    agent = {**decision, "schema": "warden.decision_record/2", "actor": {"type": "agent", "id": "claude/1.0"}}
    assert Draft202012Validator(schema_gen.load_schema("warden.decision_record/2")).is_valid(agent)
    # v1 never knew agents: an agent record is a v2 one
    assert not Draft202012Validator(schema_gen.load_schema(v1)).is_valid({**agent, "schema": v1})
    assert parse_record(agent).actor.type == "agent"
    for name, version in old.items():
        assert (schema_gen.SCHEMA_DIR / f"{name}.v{version}.json").exists()
        assert version + 1 == RECORD_TYPES[name].SCHEMA_VERSION
