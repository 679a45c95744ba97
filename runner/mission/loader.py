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

import difflib
import hashlib
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml
from pydantic import BaseModel, ValidationError
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from runner.errors import MissionInvalid, Problem
from runner.mission.interpolate import NAMESPACES, InterpolationError, references
from runner.mission.model import ACTION_KINDS, Mission, Name, Slug, Step, VarName

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_NODES = 100_000  # alias expansion ("billion laughs") stops here
MAX_DEPTH = 64

_TAG = "tag:yaml.org,2002:"
_MERGE_TAG = _TAG + "merge"
_TEXT_TAGS = {_TAG + "str", _TAG + "timestamp"}  # a date-looking version stays the text written
_COLLECTION_TAGS = {_TAG + "map", _TAG + "seq"}
_TYPED_TAGS = {_TAG + t for t in ("int", "float", "bool", "null")}

# Keys that exist in the model only for Python callers (field names behind an alias, and the
# internal alias `select` uses for the option label): not valid in a mission file.
_INTERNAL_KEYS = {"label_text"}
_ALIAS_BACK = {"label_text": "label"}  # loc item after a model's own renaming -> key the user wrote


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
        return _line_for(path.split(".") if path else [], self.lines)


# ----------------------------------------------------------------------------- YAML → located data


class _TooBig(Exception):
    pass


class _Located:
    """Builds plain data from YAML nodes, recording the line of every key path."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[str, int] = {}
        self.problems: list[Problem] = []
        self._constructor = SafeConstructor()
        self._count = 0
        self._stack: set[int] = set()
        self.scalars: dict[str, str] = {}  # path -> text of an unquoted non-string scalar

    def problem(self, line: int | None, path: str, message: str) -> None:
        self.problems.append(Problem(self.file, line, path, message))

    def build(self, node: Node, path: str, line: int) -> Any:
        self.lines.setdefault(path, line)
        self._count += 1
        if self._count > MAX_NODES:
            raise _TooBig
        if id(node) in self._stack:
            self.problem(line, path, "an alias refers to itself (recursive anchor)")
            return None
        if len(self._stack) >= MAX_DEPTH:
            self.problem(line, path, f"nested more than {MAX_DEPTH} levels deep")
            return None
        self._stack.add(id(node))
        if isinstance(node, MappingNode | SequenceNode) and node.tag not in _COLLECTION_TAGS:
            self.problem(line, path, f"unsupported YAML tag {node.tag!r}: write a plain list or mapping")
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            if isinstance(node, SequenceNode):
                return [self.build(item, _join(path, i), item.start_mark.line + 1) for i, item in enumerate(node.value)]
            return self._scalar(node, path, line)
        finally:
            self._stack.discard(id(node))

    def _scalar(self, node: Node, path: str, line: int) -> Any:
        tag = node.tag
        if tag in _TEXT_TAGS:
            return str(node.value)
        if tag in _TYPED_TAGS:
            if isinstance(node, ScalarNode) and node.style is None:
                self.scalars[path] = str(node.value)
            return self._constructor.construct_object(node)
        self.problem(line, path, f"unsupported YAML tag {tag!r}: write a plain value")
        return str(node.value)  # keep validating the rest without a second, confusing error

    def _mapping(self, node: MappingNode, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        merges: list[tuple[Node, int]] = []
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, ScalarNode):
                self.problem(key_line, path, "a key must be plain text, not a list or mapping")
                continue
            if key_node.tag == _MERGE_TAG:
                merges.append((value_node, key_line))
                continue
            key = str(key_node.value)  # the text as written: `on:` is "on", not True
            if key in first_line:
                self.problem(
                    key_line, _join(path, key), f"duplicate key '{key}' (first given on line {first_line[key]})"
                )
                continue
            first_line[key] = key_line
            out[key] = self.build(value_node, _join(path, key), key_line)
        for value_node, key_line in merges:
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, MappingNode):
                    self.problem(key_line, path, "'<<' merges a mapping (or a list of mappings) only")
                    continue
                merged = self.build(source, path, key_line)
                for key, value in merged.items():
                    out.setdefault(key, value)
        return out


def _join(path: str, part: str | int) -> str:
    return f"{path}.{part}" if path else str(part)


def _line_for(parts: list[str], lines: Mapping[str, int]) -> int | None:
    """Line of the deepest prefix of ``parts`` that exists in the file."""
    for n in range(len(parts), -1, -1):
        line = lines.get(".".join(parts[:n]))
        if line is not None:
            return line
    return None


# ----------------------------------------------------------------------------- schema introspection


def _unwrap(tp: Any) -> Any:
    """Strip Annotated and Optional so a field's type can be walked like the YAML."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(members) != 1:
                return tp
            tp = members[0]
        else:
            return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _model_at(parts: list[str | int]) -> type[BaseModel] | None:
    """The pydantic model describing the mapping at ``parts`` (for key suggestions)."""
    tp: Any = Mission
    for part in parts:
        tp = _unwrap(tp)
        origin = typing.get_origin(tp)
        if _is_model(tp) and isinstance(part, str):
            fields = tp.model_fields
            name = next((n for n, f in fields.items() if (f.alias or n) == part), None)
            if name is None:
                return None
            tp = fields[name].annotation
        elif origin is list and isinstance(part, int):
            tp = typing.get_args(tp)[0]
        elif origin is dict and isinstance(part, str):
            tp = typing.get_args(tp)[1]
        else:
            return None
    tp = _unwrap(tp)
    return tp if _is_model(tp) else None


def _keys_of(model: type[BaseModel]) -> list[str]:
    """The keys a mission file may use for ``model``."""
    keys = [f.alias or n for n, f in model.model_fields.items()]
    return [k for k in keys if k not in _INTERNAL_KEYS]


def _unknown_key_message(key: str, parts: list[str | int]) -> str:
    model = _model_at(parts)
    allowed = _keys_of(model) if model is not None else []
    if model is not None:
        # a Python field name behind an alias (`as_`) is still a typo in YAML
        for name, f in model.model_fields.items():
            if key == name and f.alias and f.alias not in _INTERNAL_KEYS:
                return f"unknown key '{key}' (did you mean '{f.alias}'?)"
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key '{key}' (did you mean '{close[0]}'?)"
    if model is Step:
        return f"unknown action '{key}' (actions: {', '.join(ACTION_KINDS)}; step options: timeout, approve)"
    if allowed:
        return f"unknown key '{key}' (allowed: {', '.join(allowed)})"
    return f"unknown key '{key}'"


def _alias_key_problems(data: Any, parts: list[str | int], out: list[tuple[list[str | int], str]]) -> None:
    """Find keys pydantic would accept only by Python field name (``as_``, ``label_text``)."""
    if isinstance(data, dict):
        model = _model_at(parts)
        if model is not None:
            renamed = {n for n, f in model.model_fields.items() if f.alias and f.alias != n}
            hidden = renamed | (_INTERNAL_KEYS & set(_all_aliases(model)))
            for key in data:
                if key in hidden:
                    out.append(([*parts, key], _unknown_key_message(key, parts)))
        for key, value in data.items():
            _alias_key_problems(value, [*parts, key], out)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            _alias_key_problems(value, [*parts, i], out)


def _all_aliases(model: type[BaseModel]) -> list[str]:
    return [f.alias for f in model.model_fields.values() if f.alias]


# ----------------------------------------------------------------------------- pydantic errors → problems

_MISSING = object()

_PATTERN_HELP = {
    typing.get_args(Slug)[1].pattern: "a lowercase id: a-z, 0-9 and '-', starting with a letter or digit, "
    "at most 63 characters",
    typing.get_args(Name)[1].pattern: "a name: letters, digits, '_', '.' and '-', starting with a letter or digit, "
    "at most 63 characters",
    typing.get_args(VarName)[1].pattern: "a name made of letters, digits and '_', not starting with a digit",
    r"^[A-Za-z_][A-Za-z0-9_]*$": "an environment variable name: letters, digits and '_'",
    r"^[A-Z][A-Z0-9_]*$": "an entity name in capitals, such as EMAIL_ADDRESS",
}

_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _yaml_path(loc: tuple[str | int, ...], data: Any, error_type: str) -> list[str | int]:
    """Turn a pydantic loc into the YAML key path, dropping union tags and internal renames."""
    parts: list[str | int] = []
    cur: Any = data
    last = len(loc) - 1
    for i, item in enumerate(loc):
        if item == "[key]":
            continue
        if isinstance(cur, dict) and isinstance(item, str):
            key = item
            if key not in cur and _ALIAS_BACK.get(key) in cur:
                key = _ALIAS_BACK[key]
            if key in cur:
                parts.append(key)
                cur = cur[key]
            elif i == last and error_type in ("missing", "extra_forbidden"):
                parts.append(key)
                cur = _MISSING
            # else: a union member tag such as 'int' / 'str': not part of the YAML path
        elif isinstance(cur, list) and isinstance(item, int) and 0 <= item < len(cur):
            parts.append(item)
            cur = cur[item]
        # else: a tag on a scalar, or a key a model invented (the `goto: URL` shorthand's url)
    return parts


def _message(err: Mapping[str, Any], parts: list[str | int], node_text: str | None) -> str:
    etype: str = err["type"]
    value = err.get("input")
    ctx: Mapping[str, Any] = err.get("ctx") or {}
    key = parts[-1] if parts else ""
    if etype == "extra_forbidden":
        return _unknown_key_message(str(key), parts[:-1])
    if etype == "missing":
        return f"missing required key '{key}'"
    if etype in ("value_error", "assertion_error"):
        return str(ctx.get("error", err["msg"])).removeprefix("Value error, ")
    if etype == "literal_error":
        expected = str(ctx.get("expected", ""))
        options = re.findall(r"'([^']*)'", expected)
        hint = ""
        if isinstance(value, str):
            close = difflib.get_close_matches(value, options, n=1, cutoff=0.6)
            if close:
                hint = f" (did you mean '{close[0]}'?)"
        return f"expected one of {', '.join(options)}; got {_describe(value)}{hint}"
    if etype == "string_pattern_mismatch":
        want = _PATTERN_HELP.get(str(ctx.get("pattern")), f"text matching {ctx.get('pattern')}")
        return f"{_describe(value)} is not valid here: expected {want}"
    if etype in ("too_short", "too_long") and "min_length" in ctx and ctx["min_length"] == 1 and etype == "too_short":
        return "must not be empty"
    if etype in _EXPECTED:
        msg = f"expected {_EXPECTED[etype]}, got {_describe(value)}"
        if etype == "model_type" and parts and parts[-1] == "goto":
            msg = f"expected a URL or a mapping with 'url', got {_describe(value)}"
        elif etype == "model_type" and len(parts) == 2 and parts[0] == "steps":
            msg = f"expected a mapping with one action (e.g. '- goto: URL'), got {_describe(value)}"
        if etype == "string_type":
            msg += _quote_hint(value, node_text)
        return msg
    bound = {
        "greater_than": "greater than",
        "greater_than_equal": "at least",
        "less_than": "less than",
        "less_than_equal": "at most",
    }.get(etype)
    if bound is not None:
        limit = next(iter(ctx.values()), "")
        return f"must be {bound} {limit}, got {_describe(value)}"
    if etype == "finite_number":
        return f"expected a finite number, got {_describe(value)}"
    return f"{err['msg']} (got {_describe(value)})"


def _quote_hint(value: Any, node_text: str | None) -> str:
    """Suggest quoting when YAML turned what the user meant as text into a number or boolean."""
    if node_text is None or value is None or isinstance(value, dict | list):
        return ""
    word = "a boolean" if isinstance(value, bool) else "a number"
    return f' (YAML reads {node_text} as {word}; quote it: "{node_text}")'


def _step_prefix(parts: list[str | int], message: str) -> str:
    if len(parts) >= 2 and parts[0] == "steps" and isinstance(parts[1], int):
        return f"step {parts[1] + 1}: {message}"
    return message


def _schema_problems(
    exc: ValidationError, data: Any, file: str, lines: Mapping[str, int], scalars: Mapping[str, str]
) -> list[Problem]:
    grouped: dict[str, list[tuple[Mapping[str, Any], list[str | int]]]] = {}
    for err in exc.errors(include_url=False):
        parts = _yaml_path(tuple(err["loc"]), data, err["type"])
        grouped.setdefault(".".join(map(str, parts)), []).append((err, parts))
    problems: list[Problem] = []
    for path, errs in grouped.items():
        str_parts = path.split(".") if path else []
        line = _line_for(str_parts, lines)
        union_types = [e for e, _ in errs if e["type"] in _EXPECTED]
        messages: list[str]
        if len(union_types) > 1 and len(union_types) == len(errs):
            # the members of a union (`version: int | str`) each failed: one problem, not two
            wanted = " or ".join(dict.fromkeys(_EXPECTED[e["type"]] for e in union_types))
            value = union_types[0].get("input")
            messages = [f"expected {wanted}, got {_describe(value)}{_quote_hint(value, scalars.get(path))}"]
        else:
            messages = list(dict.fromkeys(_message(e, p, scalars.get(path)) for e, p in errs))
        parts0 = errs[0][1]
        for message in messages:
            problems.append(Problem(file, line, path, _step_prefix(parts0, message)))
    return problems


# ----------------------------------------------------------------------------- semantic checks


def _strings(value: Any, path: str) -> list[tuple[str, str]]:
    """Every string in a step's data with its key path, in file order."""
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(v, _join(path, k))]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in _strings(v, _join(path, i))]
    return []


def _goto_host(url: str) -> str:
    rest = url.split("://", 1)[1] if "://" in url else url
    return re.split(r"[/?#]", rest, maxsplit=1)[0]


def _semantic_problems(
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
        problems.append(Problem(file, _line_for(path.split("."), lines), path, message))

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


# ----------------------------------------------------------------------------- entry points


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line if p.line is not None else 0, p.path))


def _read(path: Path, file: str) -> tuple[bytes, str]:
    try:
        if path.is_dir():
            raise MissionInvalid([Problem(file, None, "", "is a directory, not a mission file")])
        with path.open("rb") as fh:
            blob = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise MissionInvalid([Problem(file, None, "", "mission file not found")]) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise MissionInvalid([Problem(file, None, "", f"cannot read the mission file: {reason}")]) from None
    if len(blob) > MAX_FILE_BYTES:
        raise MissionInvalid([Problem(file, None, "", f"larger than {MAX_FILE_BYTES} bytes: not a mission file")])
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = blob[: exc.start].count(b"\n") + 1
        raise MissionInvalid(
            [Problem(file, line, "", f"not UTF-8 text (byte 0x{blob[exc.start]:02x} at offset {exc.start})")]
        ) from None
    return blob, text


def _compose(text: str, file: str) -> Node | None:
    try:
        return yaml.compose(text.removeprefix("\ufeff"), Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = " ".join(s for s in (exc.context, exc.problem) if s) or "cannot parse"
        rows = text.splitlines()
        bad_row = rows[line - 1] if line is not None and 0 < line <= len(rows) else ""
        if "\t" in bad_row or "'\\t'" in what:
            what += " (tabs cannot indent YAML: use spaces)"
        raise MissionInvalid([Problem(file, line, "", f"YAML syntax error: {what}")]) from None
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        char = exc.character
        code = char if isinstance(char, int) else ord(str(char)[:1] or " ")
        message = f"YAML cannot read the file: {exc.reason} (character U+{code:04X})"
        raise MissionInvalid([Problem(file, line, "", message)]) from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise MissionInvalid([Problem(file, None, "", f"YAML cannot be parsed: {type(exc).__name__}")]) from None


def load_mission(
    path: Path,
    *,
    cli_vars: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    require_secrets: bool = True,
    require_vars: bool = True,
) -> LoadedMission:
    """Load, validate and check a mission; raise :class:`MissionInvalid` listing every problem.

    ``require_secrets=False`` is for `warden check` where the secrets' environment is absent
    (CI, a reviewer's laptop): unset secret variables are then not problems, and such secrets are
    missing from ``secret_values``. ``require_vars=False`` likewise treats ``${vars.X}`` that no
    ``--var`` gives as inputs of the run (a variable used before its ``extract`` is still a problem).
    ``environ`` defaults to ``os.environ``.
    """
    path = Path(path)
    file = str(path)
    variables = dict(cli_vars or {})
    env: Mapping[str, str] = os.environ if environ is None else environ

    blob, text = _read(path, file)
    root = _compose(text, file)
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

    located = _Located(file)
    try:
        data = located.build(root, "", root_line)
    except _TooBig:
        raise MissionInvalid(
            [Problem(file, root_line, "", f"more than {MAX_NODES} values after expanding aliases: not a mission file")]
        ) from None
    problems = list(located.problems)
    scalars = located.scalars

    alias_hits: list[tuple[list[str | int], str]] = []
    _alias_key_problems(data, [], alias_hits)
    for parts, message in alias_hits:
        key_path = ".".join(map(str, parts))
        problems.append(
            Problem(file, _line_for(key_path.split("."), located.lines), key_path, _step_prefix(parts, message))
        )

    mission: Mission | None = None
    try:
        mission = Mission.model_validate(data)
    except ValidationError as exc:
        problems.extend(_schema_problems(exc, data, file, located.lines, scalars))

    if mission is not None and not problems:
        problems.extend(
            _semantic_problems(mission, data, file, located.lines, variables, env, require_secrets, require_vars)
        )
    if problems or mission is None:
        raise MissionInvalid(_sorted(problems))

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
