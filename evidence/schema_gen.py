"""JSON Schemas of the evidence records, generated from the pydantic models.

``python -m evidence.schema_gen`` writes ``evidence/schemas/<type>.v<N>.json`` for every record
type (N = the model's ``SCHEMA_VERSION``); ``--check`` only compares and exits 1 on a difference.
A stored version file is never meant to change: when a model's fields change, bump its
``SCHEMA_VERSION`` and generate the new file beside the old one (tests/evidence/test_schemas.py
fails otherwise), so records written under every version stay checkable.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from evidence.records import RECORD_TYPES, Record

__all__ = ["RECORD_TYPES", "SCHEMA_DIR", "check", "generate", "load_schema", "render", "schema_for", "write"]

SCHEMA_DIR = Path(__file__).with_name("schemas")
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_filename(record_cls: type[Record]) -> str:
    return f"{record_cls.TYPE}.v{record_cls.SCHEMA_VERSION}.json"


def schema_for(record_cls: type[Record]) -> dict[str, Any]:
    """The JSON Schema of one record type, with its id and the envelope's ``schema`` value pinned."""
    schema = record_cls.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema["$id"] = f"https://warden.invalid/schemas/{schema_filename(record_cls)}"
    schema["title"] = record_cls.schema_id()
    props = schema["properties"]
    # The generic envelope says "a string"; each stored schema pins its own identity.
    props["schema"] = {**props["schema"], "const": record_cls.schema_id()}
    props["type"] = {**props["type"], "const": record_cls.TYPE}
    return schema


def render(schema: dict[str, Any]) -> str:
    """Stable text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generate() -> dict[str, str]:
    """``{filename: text}`` for every record type, current versions."""
    return {schema_filename(cls): render(schema_for(cls)) for cls in RECORD_TYPES.values()}


def load_schema(schema_id: str, directory: Path = SCHEMA_DIR) -> dict[str, Any]:
    """The stored schema of ``warden.<type>/<N>``; ``FileNotFoundError`` if that version is not stored."""
    prefix, _, version = schema_id.partition("/")
    rtype = prefix.removeprefix("warden.")
    loaded: dict[str, Any] = json.loads((directory / f"{rtype}.v{version}.json").read_text())
    return loaded


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write the current schemas; returns the files that were created or changed."""
    directory.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in generate().items():
        target = directory / name
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
            changed.append(target)
    return changed


def check(directory: Path = SCHEMA_DIR) -> list[str]:
    """Problems: a current schema missing from ``directory`` or differing from its stored version."""
    problems = []
    for name, text in generate().items():
        target = directory / name
        if not target.exists():
            problems.append(f"{name}: missing — run `python -m evidence.schema_gen`")
        elif target.read_text() != text:
            rtype = name.split(".v")[0]
            problems.append(f"{name}: schema of {rtype} changed without bumping SCHEMA_VERSION")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if "--check" in args:
        problems = check()
        for p in problems:
            print(p, file=sys.stderr)
        return 1 if problems else 0
    for path in write():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
