"""Stored JSON Schemas (evidence/schemas) match the models, per version; real records validate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import ClassVar

import pytest
from jsonschema import Draft202012Validator

from evidence import schema_gen
from evidence.records import RECORD_TYPES, ActionRecord
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
    (copy / "action_record.v1.json").unlink()
    assert schema_gen.check(copy) == ["action_record.v1.json: missing — run `python -m evidence.schema_gen`"]


def test_model_change_without_version_bump_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    class ChangedAction(ActionRecord):
        TYPE: ClassVar[str] = "action_record"
        new_field: str = ""

    monkeypatch.setitem(schema_gen.RECORD_TYPES, "action_record", ChangedAction)
    assert schema_gen.check() == [
        "action_record.v1.json: schema of action_record changed without bumping SCHEMA_VERSION"
    ]

    class BumpedAction(ChangedAction):
        SCHEMA_VERSION: ClassVar[int] = 2

    monkeypatch.setitem(schema_gen.RECORD_TYPES, "action_record", BumpedAction)
    assert schema_gen.check() == ["action_record.v2.json: missing — run `python -m evidence.schema_gen`"]


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
