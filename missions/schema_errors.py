"""Pydantic validation errors → located, human problems (unknown keys with did-you-mean, quoting hints)."""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, Union

from pydantic import BaseModel, ValidationError

from kernel.errors import Problem
from missions.model import ACTION_KINDS, Mission, Name, Slug, Step, VarName
from missions.yaml_located import line_for

# Keys that exist in the model only for Python callers (field names behind an alias, and the
# internal alias `select` uses for the option label): not valid in a mission file.
_INTERNAL_KEYS = {"label_text"}
_ALIAS_BACK = {"label_text": "label"}  # loc item after a model's own renaming -> key the user wrote


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


def alias_key_problems(data: Any, parts: list[str | int], out: list[tuple[list[str | int], str]]) -> None:
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
            alias_key_problems(value, [*parts, key], out)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            alias_key_problems(value, [*parts, i], out)


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


def step_prefix(parts: list[str | int], message: str) -> str:
    if len(parts) >= 2 and parts[0] == "steps" and isinstance(parts[1], int):
        return f"step {parts[1] + 1}: {message}"
    return message


def schema_problems(
    exc: ValidationError, data: Any, file: str, lines: Mapping[str, int], scalars: Mapping[str, str]
) -> list[Problem]:
    grouped: dict[str, list[tuple[Mapping[str, Any], list[str | int]]]] = {}
    for err in exc.errors(include_url=False):
        parts = _yaml_path(tuple(err["loc"]), data, err["type"])
        grouped.setdefault(".".join(map(str, parts)), []).append((err, parts))
    problems: list[Problem] = []
    for path, errs in grouped.items():
        str_parts = path.split(".") if path else []
        line = line_for(str_parts, lines)
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
            problems.append(Problem(file, line, path, step_prefix(parts0, message)))
    return problems
