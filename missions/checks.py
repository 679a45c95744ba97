"""Checks that need the whole valid mission: variables defined before use, secrets declared and
set, action kinds allowed, no secret in a goto host."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kernel.errors import Problem
from missions.interpolate import NAMESPACES, InterpolationError, references
from missions.model import Mission
from missions.yaml_located import join_path, line_for

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


def semantic_problems(
    mission: Mission,
    data: Mapping[str, Any],
    file: str,
    lines: Mapping[str, int],
    cli_vars: Mapping[str, str],
    environ: Mapping[str, str],
    require_secrets: bool,
    require_vars: bool = True,
) -> list[Problem]:
    problems: list[Problem] = []

    def add(path: str, message: str) -> None:
        problems.append(Problem(file, line_for(path.split("."), lines), path, message))

    extracted_at: dict[str, int] = {}
    for i, step in enumerate(mission.steps):
        if step.extract is not None:
            extracted_at.setdefault(step.extract.as_, i)

    allowed = set(mission.boundaries.allowed_actions)
    defined = set(cli_vars)
    raw_steps = data.get("steps") or []
    for i, step in enumerate(mission.steps):
        label = f"step {i + 1}"
        kind = step.kind
        if kind not in allowed:
            add(f"steps.{i}.{kind}", f"{label}: '{kind}' is not in boundaries.allowed_actions")
        raw = raw_steps[i] if i < len(raw_steps) else {}
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
                elif namespace == "secrets" and name not in mission.secrets:
                    add(path, f"{label}: undeclared secret {ref}: declare it under 'secrets:'")
                elif namespace == "secrets" and kind == "goto" and path.endswith(("goto", "goto.url")):
                    url = text
                    if ref in _goto_host(url):
                        add(path, f"{label}: a secret may not be part of a goto URL's host ({ref})")
        if step.extract is not None:
            defined.add(step.extract.as_)

    for name, spec in mission.secrets.items():
        value = environ.get(spec.env)
        if value is None and not require_secrets:
            continue
        if value is None:
            add(f"secrets.{name}.env", f"secret '{name}': environment variable {spec.env} is not set")
        elif value == "":
            add(f"secrets.{name}.env", f"secret '{name}': environment variable {spec.env} is empty")
    return problems
