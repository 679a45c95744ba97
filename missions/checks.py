"""Semantic checks: variables defined before use, secrets declared and set, action kinds allowed,
no secret in a goto host — and, when the schema failed, a literal goto outside the allowlist.

They run on a :class:`MissionView`: the whole mission when it is valid, else every part of the
document that still validates on its own (each step, the boundaries, each secret). So a missing
required key or a typo never hides the other problems of the same file: `warden check` and
`warden run` list them all in one go (SPEC §2). A part that does not validate is skipped here
(its schema problem is already reported), so no check guesses at a value it cannot read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pydantic import TypeAdapter, ValidationError

from kernel.errors import Problem
from missions.interpolate import NAMESPACES, InterpolationError, references
from missions.model import Boundaries, Mission, SecretSpec, Step, VarName
from missions.yaml_located import join_path, line_for

_SECRET_NAMES: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[VarName, Any])  # the key type of Mission.secrets


@dataclass(frozen=True)
class MissionView:
    """What the semantic checks read: the valid parts of a mission (all of it when it is valid).

    ``steps[i]`` is None when step i does not validate on its own; ``allowed_actions`` and
    ``allowed_domains`` are None when the boundaries do not. ``secret_names`` holds every declared
    name (even one whose spec is invalid, so it is not also called undeclared); ``secrets`` the valid
    specs. ``partial``: the schema failed (the literal goto check runs only then: for a valid mission
    the guards' preflight judges every goto with the real URL matcher).
    """

    steps: list[Step | None]
    allowed_actions: frozenset[str] | None
    allowed_domains: tuple[str, ...] | None
    secrets: Mapping[str, SecretSpec] = field(default_factory=dict)
    secret_names: frozenset[str] = frozenset()
    partial: bool = False

    @classmethod
    def of(cls, mission: Mission) -> MissionView:
        b = mission.boundaries
        return cls(list(mission.steps), frozenset(b.allowed_actions), tuple(b.allowed_domains),
                   dict(mission.secrets), frozenset(mission.secrets))

    @classmethod
    def readable(cls, data: Mapping[str, Any]) -> MissionView:
        """The parts of an invalid document that validate alone."""
        raw_steps = data.get("steps")
        steps = [_valid(Step, s) for s in raw_steps] if isinstance(raw_steps, list) else []
        boundaries = _valid(Boundaries, data.get("boundaries"))
        raw_secrets = data.get("secrets")
        names = {k for k in raw_secrets if isinstance(k, str)} if isinstance(raw_secrets, dict) else set()
        secrets = {
            k: spec for k in names
            if _name_ok(k) and (spec := _valid(SecretSpec, raw_secrets[k])) is not None  # type: ignore[index]
        }
        return cls(
            steps,
            frozenset(boundaries.allowed_actions) if boundaries is not None else None,
            tuple(boundaries.allowed_domains) if boundaries is not None else None,
            secrets,
            frozenset(names),
            partial=True,
        )


def _name_ok(name: str) -> bool:
    """A secret name the schema accepts (an invalid one is reported there and checked no further)."""
    try:
        _SECRET_NAMES.validate_python({name: None})
    except ValidationError:
        return False
    return True


def _valid(model: Any, value: Any) -> Any:
    if not isinstance(value, dict):
        return None
    try:
        return model.model_validate(value)
    except (ValidationError, ValueError, TypeError):
        return None

# ----------------------------------------------------------------------------- semantic checks


def _strings(value: Any, path: str) -> list[tuple[str, str]]:
    """Every string in a step's data with its key path, in file order."""
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(v, join_path(path, k))]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in _strings(v, join_path(path, i))]
    return []


def _goto_host(url: str) -> str:
    rest = url.split("://", 1)[1] if "://" in url else url
    return re.split(r"[/?#]", rest, maxsplit=1)[0]


def _raw_extract(raw_steps: Any, i: int) -> str | None:
    """The ``extract: {as: NAME}`` of an invalid step, when it can be read."""
    raw = raw_steps[i] if isinstance(raw_steps, list) and i < len(raw_steps) else None
    extract = raw.get("extract") if isinstance(raw, dict) else None
    name = extract.get("as") if isinstance(extract, dict) else None
    return name if isinstance(name, str) else None


_PLAIN_HOST = re.compile(r"[a-z0-9.-]+")
_PLAIN_NETLOC = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?")


def _outside_allowlist(url: str, allowed: tuple[str, ...]) -> str | None:
    """The host of a literal goto URL that no allowlist entry can match, else None.

    Deliberately looser than ``guards.urlmatch`` (ports ignored, ``*.host`` also taken to cover
    ``host``, anything not plain ASCII left undecided): this only adds problems the preflight guard
    would also raise, so a document that becomes valid never hears a different verdict.
    """
    if "${" in url or any(c in url for c in "\\\t\r\n ") or any(ord(c) < 0x20 or ord(c) > 0x7E for c in url):
        return None  # (a backslash or a control character is read differently by a browser's URL parser)
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").removesuffix(".")
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not _PLAIN_NETLOC.fullmatch(parts.netloc):
        return None  # user info, IPv6, percent-escapes...: the guard decides
    if not _PLAIN_HOST.fullmatch(host):
        return None
    for entry in allowed:
        text = entry.strip().lower()
        if text.startswith("["):
            return None
        wildcard = text.startswith("*.")
        base = text[2:] if wildcard else text
        base = base.split(":", 1)[0].removesuffix(".")
        if not _PLAIN_HOST.fullmatch(base):
            return None
        if host == base or (wildcard and host.endswith("." + base)):
            return None
    return host


def semantic_problems(
    mission: Mission | MissionView,
    data: Mapping[str, Any],
    file: str,
    lines: Mapping[str, int],
    cli_vars: Mapping[str, str],
    environ: Mapping[str, str],
    require_secrets: bool,
    require_vars: bool = True,
    require_steps: bool = True,
) -> list[Problem]:
    view = mission if isinstance(mission, MissionView) else MissionView.of(mission)
    problems: list[Problem] = []

    def add(path: str, message: str) -> None:
        problems.append(Problem(file, line_for(path.split("."), lines), path, message))

    if require_steps and not data.get("steps"):  # only `warden mcp` runs a mission whose agent gives the steps
        add("steps",
            "steps must not be empty for `warden run` (only `warden mcp` runs a mission whose agent gives them)")

    raw_steps = data.get("steps") or []
    extracted_at: dict[str, int] = {}
    for i, step in enumerate(view.steps):
        name = step.extract.as_ if step is not None and step.extract is not None else _raw_extract(raw_steps, i)
        if name is not None:
            extracted_at.setdefault(name, i)

    allowed = view.allowed_actions
    defined = set(cli_vars)
    for i, step in enumerate(view.steps):
        if step is None:  # its schema problem is reported; its references are not read
            if (name := _raw_extract(raw_steps, i)) is not None:
                defined.add(name)  # (an invalid extract still names its variable: no false "undefined")
            continue
        label = f"step {i + 1}"
        kind = step.kind
        if allowed is not None and kind not in allowed:
            add(f"steps.{i}.{kind}", f"{label}: '{kind}' is not in boundaries.allowed_actions")
        if view.partial and kind == "goto" and step.goto is not None and view.allowed_domains is not None:
            host = _outside_allowlist(step.goto.url, view.allowed_domains)
            if host is not None:
                add(f"steps.{i}.goto", f"{label} refused before the run: {host} is not in allowed_domains")
        raw = raw_steps[i] if isinstance(raw_steps, list) and i < len(raw_steps) else {}
        for path, text in _strings(raw, f"steps.{i}"):
            try:
                refs = references(text)
            except InterpolationError as exc:
                add(path, f"{label}: {exc.message}")
                continue
            for namespace, name in refs:
                ref = f"${{{namespace}.{name}}}"
                if namespace not in NAMESPACES:
                    add(
                        path,
                        f"{label}: unknown namespace '{namespace}' in {ref}: use ${{vars.NAME}} or ${{secrets.NAME}}",
                    )
                elif namespace == "vars" and name not in defined:
                    later = extracted_at.get(name)
                    if later is not None and later >= i:
                        when = "in the same step" if later == i else f"later, in step {later + 1}"
                        add(path, f"{label}: {ref} is used before it is extracted ({when})")
                    elif require_vars:
                        add(
                            path,
                            f"{label}: undefined variable {ref}: pass --var {name}=VALUE or extract it "
                            "in an earlier step",
                        )
                elif namespace == "secrets" and name not in view.secret_names:
                    add(path, f"{label}: undeclared secret {ref}: declare it under 'secrets:'")
                elif namespace == "secrets" and kind == "goto" and path.endswith(("goto", "goto.url")):
                    url = text
                    if ref in _goto_host(url):
                        add(path, f"{label}: a secret may not be part of a goto URL's host ({ref})")
        if step.extract is not None:
            defined.add(step.extract.as_)

    for name, spec in view.secrets.items():
        value = environ.get(spec.env)
        if value is None and not require_secrets:
            continue
        if value is None:
            add(f"secrets.{name}.env", f"secret '{name}': environment variable {spec.env} is not set")
        elif value == "":
            add(f"secrets.{name}.env", f"secret '{name}': environment variable {spec.env} is empty")
    return problems
