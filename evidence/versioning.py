"""``version_log`` records (SPEC §5): what changed since the last run of the same mission, and why.

At run start, right after the opening ``run_record``, the run is compared with the most recent
run of the same mission id in the index (any outcome). One ``version_log`` per subject that differs:

- ``mission``: the mission file's sha256 differs. ``changes`` lists the keys added / removed /
  changed (dotted paths) and the steps added / removed / changed (by position and kind), computed
  from the two ``mission.yaml`` copies in the run folders — the redacted copies, parsed as plain
  YAML: variables and secrets are never resolved and no value is quoted. ``why`` is the mission's
  ``changelog``.
- ``warden``: the Warden version differs (``old_version``/``new_version``; sha256 of the version text).
- ``policy``: the effective policy differs — sha256 of the RFC 8785 JSON of boundaries, danger
  zones (+ the defaults flag), approvals, PII policy and the secrets *spec* (names, env names,
  domains; never values). The start ``run_record`` carries it as ``policy_sha256``.

The first run of a mission id in an evidence store writes one ``version_log`` (subject
``mission``, ``old_sha256: null``, ``changes: ["first run of this mission in this evidence store"]``)
so the store shows when each mission entered it and why; warden/policy logs start from the second
run (the first run's ``run_record`` already holds those versions).
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from evidence.canonical import canonical_bytes
from evidence.index import EvidenceIndex
from evidence.records import Actor, ExceptionRecord, VersionLog
from evidence.writer import EvidenceWriter

FIRST_RUN = "first run of this mission in this evidence store"
POLICY_SECTIONS = ("boundaries", "danger_zones_defaults", "danger_zones", "approvals", "pii", "secrets")
_MAX_CHANGES = 50


@dataclass(frozen=True)
class MissionSubject:
    """What version logs compare, handed in by the caller (evidence/ never imports the mission model).

    ``policy`` is the effective policy as plain JSON data (``Mission.policy_document()``).
    """

    mission_id: str
    version: str
    changelog: str
    policy: Mapping[str, Any]

    @property
    def policy_sha256(self) -> str:
        return policy_sha256(self.policy)


def policy_sha256(policy: Mapping[str, Any]) -> str:
    """The sha256 of a policy document's canonical (RFC 8785) bytes."""
    return hashlib.sha256(canonical_bytes(dict(policy))).hexdigest()


def _text_sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _load(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def _step_kind(step: Any) -> str:
    if isinstance(step, Mapping):
        kinds = [k for k in step if k not in {"timeout", "approve"}]
        return str(kinds[0]) if kinds else "?"
    return "?"


def _stable(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _diff_steps(old: list[Any], new: list[Any]) -> list[str]:
    out: list[str] = []
    matcher = difflib.SequenceMatcher(a=[_stable(s) for s in old], b=[_stable(s) for s in new], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if tag == "replace" and i2 - i1 == j2 - j1:
            out += [f"step {j + 1} ({_step_kind(new[j])}) changed" for j in range(j1, j2)]
            continue
        if tag in {"delete", "replace"}:
            out += [f"step {i + 1} ({_step_kind(old[i])}) removed" for i in range(i1, i2)]
        if tag in {"insert", "replace"}:
            out += [f"step {j + 1} ({_step_kind(new[j])}) added" for j in range(j1, j2)]
    return out


def diff_keys(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted key paths added / removed / changed between two mappings; ``steps`` lists by step."""
    out: list[str] = []
    for key in sorted(set(old) | set(new), key=str):
        path = f"{prefix}{key}"
        if key not in old:
            out.append(f"added: {path}")
        elif key not in new:
            out.append(f"removed: {path}")
        elif old[key] != new[key]:
            a, b = old[key], new[key]
            if isinstance(a, Mapping) and isinstance(b, Mapping):
                out += diff_keys(a, b, prefix=f"{path}.")
            elif path == "steps" and isinstance(a, list) and isinstance(b, list):
                out += _diff_steps(a, b)
            else:
                out.append(f"changed: {path}")
    return out


def mission_changes(old_text: str | None, new_text: str | None) -> list[str]:
    """Summary of what changed between two mission texts (no values, nothing resolved)."""
    old, new = _load(old_text), _load(new_text)
    if old is None:
        return ["previous mission text unavailable (its run folder is gone or unreadable)"]
    if new is None:
        return ["mission text unreadable"]
    changes = diff_keys(old, new)
    if not changes:
        return ["file bytes changed (formatting or comments only)"]
    return changes[:_MAX_CHANGES] + ([f"... {len(changes) - _MAX_CHANGES} more"] if len(changes) > _MAX_CHANGES else [])


def _first_record(folder: Path) -> dict[str, Any] | None:
    try:
        with open(folder / "records.jsonl", "rb") as f:
            line = f.readline()
        data = json.loads(line)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("type") == "run_record" else None


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def version_logs(
    index: EvidenceIndex,
    *,
    run_id: str,
    mission: MissionSubject,
    mission_sha256: str,
    mission_text: str | None,
    warden_version: str,
    sandbox: str | None = None,
) -> list[dict[str, Any]]:
    """The ``version_log`` fields (for ``EvidenceWriter.append``) this run should record, in order.

    ``sandbox``: this run's ``versions["chromium_sandbox"]``; a change from the previous run (the
    browser's own sandbox turned off by running as root, or back on) is a ``warden`` version_log.
    """
    why = mission.changelog
    version = mission.version
    policy_sha = mission.policy_sha256
    previous = index.last_run_of_mission(mission.mission_id, exclude_run_id=run_id)
    if previous is None:
        return [
            dict(subject="mission", subject_id=mission.mission_id, old_sha256=None, new_sha256=mission_sha256,
                 old_version=None, new_version=version, changes=[FIRST_RUN], why=why)
        ]
    old_folder = Path(previous.folder)
    old_start = _first_record(old_folder) or {}
    old_text = _read_text(old_folder / "mission.yaml")
    out: list[dict[str, Any]] = []
    if previous.mission_sha256 != mission_sha256:
        out.append(
            dict(subject="mission", subject_id=mission.mission_id, old_sha256=previous.mission_sha256,
                 new_sha256=mission_sha256, old_version=previous.mission_version, new_version=version,
                 changes=mission_changes(old_text, mission_text), why=why)
        )
    versions = old_start.get("versions")
    old_warden = versions.get("warden") if isinstance(versions, dict) else None
    if isinstance(old_warden, str) and old_warden != warden_version:
        out.append(
            dict(subject="warden", subject_id="warden", old_sha256=_text_sha(old_warden),
                 new_sha256=_text_sha(warden_version), old_version=old_warden, new_version=warden_version,
                 changes=[f"warden {old_warden} -> {warden_version}"], why="")
        )
    old_sandbox = versions.get("chromium_sandbox") if isinstance(versions, dict) else None
    if sandbox is not None and isinstance(old_sandbox, str) and old_sandbox != sandbox:
        out.append(
            dict(subject="warden", subject_id="chromium_sandbox", old_sha256=_text_sha(old_sandbox),
                 new_sha256=_text_sha(sandbox), old_version=old_sandbox, new_version=sandbox,
                 changes=[f"chromium sandbox {old_sandbox} -> {sandbox}"], why="")
        )
    old_policy = old_start.get("policy_sha256")
    if isinstance(old_policy, str) and old_policy != policy_sha:
        old_data, new_data = _load(old_text) or {}, _load(mission_text) or {}
        changes = diff_keys(
            {k: old_data[k] for k in POLICY_SECTIONS if k in old_data},
            {k: new_data[k] for k in POLICY_SECTIONS if k in new_data},
        ) or ["same policy text, different effective policy (Warden's defaults changed)"]
        out.append(
            dict(subject="policy", subject_id=mission.mission_id, old_sha256=old_policy, new_sha256=policy_sha,
                 old_version=previous.mission_version, new_version=version, changes=changes[:_MAX_CHANGES], why=why)
        )
    return out


def write_version_logs(
    writer: EvidenceWriter,
    actor: Actor,
    index: EvidenceIndex,
    *,
    mission: MissionSubject,
    mission_sha256: str,
    warden_version: str,
    sandbox: str | None = None,
) -> None:
    """Append this run's ``version_log`` records (right after the opening ``run_record``).

    Evidence failures propagate (``EvidenceUnavailable``: exit 5). A failure to *compute* the
    comparison (an unreadable earlier run, an index error) is itself recorded as an
    ``exception_record`` and the run goes on: the gap in the audit trail is visible.
    """
    try:
        entries = version_logs(
            index, run_id=writer.run_id, mission=mission, mission_sha256=mission_sha256,
            mission_text=_read_text(writer.folder.mission_yaml), warden_version=warden_version, sandbox=sandbox,
        )
    except Exception as e:
        writer.append(
            ExceptionRecord, actor=actor, category="version_log", error_type=type(e).__name__,
            message=f"could not compare with the previous run of {mission.mission_id}", mitigation="recorded",
        )
        return
    for fields in entries:
        writer.append(VersionLog, actor=actor, **fields)
