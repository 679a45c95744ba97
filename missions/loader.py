"""Load a mission file: YAML → located data → schema → semantic checks (SPEC §2).

The YAML is composed into nodes and walked here (not ``yaml.safe_load``) so that every key path
keeps its line number, duplicate keys are refused instead of silently winning, and keys stay the
text the user wrote (PyYAML would turn a key ``on:`` into ``True``). Every problem found is
reported at once, each as a :class:`Problem` with file, line and key path; user input never ends
in a traceback. Messages never contain secret values.

Paths use the YAML list index (``steps.3.click`` is the fourth step); messages about a step start
with ``step N:`` counting from 1, as a person reads the file.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError
from yaml.nodes import MappingNode, SequenceNode

from kernel.errors import MissionInvalid, Problem
from missions.checks import MissionView, semantic_problems
from missions.model import Mission
from missions.schema_errors import alias_key_problems, schema_problems, step_prefix
from missions.yaml_located import MAX_NODES, Located, TooBig, compose, line_for, read_text


@dataclass(frozen=True)
class LoadedMission:
    """A validated mission plus what later stages need: provenance, resolved inputs, line map.

    ``cli_vars`` and ``secret_values`` hold values that may be PII or secrets: kept out of repr.
    """

    mission: Mission
    path: Path
    raw_text: str
    sha256: str
    cli_vars: dict[str, str] = field(repr=False)
    secret_values: dict[str, str] = field(repr=False)
    lines: dict[str, int] = field(repr=False)

    def line_of(self, path: str) -> int | None:
        """Line of ``path`` or of its deepest existing ancestor, for errors found at run time."""
        return line_for(path.split(".") if path else [], self.lines)


# ----------------------------------------------------------------------------- entry points


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line if p.line is not None else 0, p.path))


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[int | None, str, str]] = set()
    out: list[Problem] = []
    for p in problems:
        key = (p.line, p.path, p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def load_mission(
    path: Path,
    *,
    cli_vars: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    require_secrets: bool = True,
    require_vars: bool = True,
    require_steps: bool = True,
) -> LoadedMission:
    """Load, validate and check a mission; raise :class:`MissionInvalid` listing every problem.

    ``require_secrets=False`` is for `warden check` where the secrets' environment is absent
    (CI, a reviewer's laptop): unset secret variables are then not problems, and such secrets are
    missing from ``secret_values``. ``require_vars=False`` likewise treats ``${vars.X}`` that no
    ``--var`` gives as inputs of the run (a variable used before its ``extract`` is still a problem).
    ``require_steps=False`` is for `warden mcp`, where the agent supplies the actions.
    ``environ`` defaults to ``os.environ``.
    """
    path = Path(path)
    file = str(path)
    variables = dict(cli_vars or {})
    env: Mapping[str, str] = os.environ if environ is None else environ

    blob, text = read_text(path, file)
    root = compose(text, file)
    if root is None:
        raise MissionInvalid(
            [Problem(file, 1, "", "the file is empty: a mission needs mission:, boundaries: and steps:")]
        )
    root_line = root.start_mark.line + 1
    if not isinstance(root, MappingNode):
        kind = "a list" if isinstance(root, SequenceNode) else "a single value"
        raise MissionInvalid(
            [
                Problem(
                    file,
                    root_line,
                    "",
                    f"the top level must be a mapping of keys (mission:, boundaries:, steps:, ...), not {kind}",
                )
            ]
        )

    located = Located(file)
    try:
        data = located.build(root, "", root_line)
    except TooBig:
        raise MissionInvalid(
            [Problem(file, root_line, "", f"more than {MAX_NODES} values after expanding aliases: not a mission file")]
        ) from None
    problems = list(located.problems)
    scalars = located.scalars

    alias_hits: list[tuple[list[str | int], str]] = []
    alias_key_problems(data, [], alias_hits)
    for parts, message in alias_hits:
        key_path = ".".join(map(str, parts))
        problems.append(
            Problem(file, line_for(key_path.split("."), located.lines), key_path, step_prefix(parts, message))
        )

    mission: Mission | None = None
    try:
        mission = Mission.model_validate(data)
    except ValidationError as exc:
        problems.extend(schema_problems(exc, data, file, located.lines, scalars))

    # Semantic checks run whatever the schema said: on the whole mission when it is valid, else on
    # every part that still validates alone (a missing key must not hide a goto off the allowlist).
    view: Mission | MissionView = mission if mission is not None and not problems else MissionView.readable(data)
    problems.extend(semantic_problems(
        view, data, file, located.lines, variables, env, require_secrets, require_vars, require_steps
    ))
    if problems or mission is None:
        raise MissionInvalid(_sorted(_unique(problems)))

    secret_values = {name: env[spec.env] for name, spec in mission.secrets.items() if env.get(spec.env)}
    return LoadedMission(
        mission=mission,
        path=path,
        raw_text=text,
        sha256=hashlib.sha256(blob).hexdigest(),
        cli_vars=variables,
        secret_values=secret_values,
        lines=dict(located.lines),
    )


def format_problems(problems: list[Problem]) -> str:
    """One line per problem, ``file:line: [key.path] message``, as `warden check` prints them."""
    return "\n".join(str(p) for p in problems)
