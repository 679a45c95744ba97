"""Which members of a record read back from JSON the streaming verify must walk before it may trust
the fast canonical encoder (evidence.canonical's ``_PLAIN``), once the record has validated.

A JSON decoder gives strings, ints, floats, bools, nulls, lists and dicts. Pydantic (lax mode)
validates a ``str`` field only from a string, a ``Literal`` of strings only from one of those
strings, ``None`` only from null, a list only from a list and a model (``extra="forbid"``) only from
a dict whose keys are its fields' names or aliases: after validation such members hold nothing but
strings, nulls, lists and dicts with ASCII keys — ``_PLAIN`` without looking. ``bool`` is not on
that list (lax mode takes 0, 1, 0.0 and 1.0 for it), nor numbers, nor ``dict`` / ``JsonValue``
fields: those members are walked (``plain_members``). A model with a validator, a computed field,
``coerce_numbers_to_str``, a non-ASCII name, a validation alias or a field constraint not known here
is not analysed (None): then the whole record is walked.

``plain_check`` goes further for the streaming verify: compiled once per model from its fields, it
tells without pydantic that a JSON-decoded record validates and is ``_PLAIN``, by accepting only
exact JSON types (no lax coercion), the writer's key spellings and the constraints known here; for
anything else it answers False ("not sure") and pydantic with ``plain_members`` decide as before.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, JsonValue
from pydantic.fields import FieldInfo

from evidence.canonical import _MAX_SAFE_INT, _PLAIN, _kind

_CONSTRAINTS = (annotated_types.MinLen, annotated_types.MaxLen, annotated_types.Ge, annotated_types.Le,
                annotated_types.Gt, annotated_types.Lt)


def _known_metadata(meta: list[Any]) -> bool:
    """Only constraints that refuse values (lengths, bounds, a pattern), never ones that change them."""
    for m in meta:
        if isinstance(m, _CONSTRAINTS):
            continue
        if type(m).__name__ == "_PydanticGeneralMetadata" and set(vars(m)) <= {"pattern"}:
            continue
        return False
    return True


def _safe(tp: Any) -> bool:
    """Does every JSON-decoded value that validates as ``tp`` hold only strings, nulls, lists and
    dicts with ASCII keys?"""
    if tp is str or tp is type(None):
        return True
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        return all(type(a) is str or a is None for a in args)
    if origin is Annotated:
        meta = [m for a in args[1:] for m in (a.metadata if isinstance(a, FieldInfo) else [a])]
        if any(isinstance(a, FieldInfo) and a.validation_alias is not None for a in args[1:]):
            return False
        return _known_metadata(meta) and _safe(args[0])
    if origin is Union or origin is types.UnionType:
        return all(_safe(a) for a in args)
    if origin is list:
        return len(args) == 1 and _safe(args[0])
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return _analysable(tp) and not _unsafe_keys(tp)
    return False


def _analysable(cls: type[BaseModel]) -> bool:
    config = cls.model_config
    decorators = cls.__pydantic_decorators__
    return (
        config.get("extra") == "forbid"
        and not config.get("coerce_numbers_to_str")
        and not cls.model_computed_fields
        and not any((decorators.validators, decorators.field_validators, decorators.root_validators,
                     decorators.model_validators))
        and all(name.isascii() and (f.alias is None or f.alias.isascii()) and f.validation_alias in (None, f.alias)
                for name, f in cls.model_fields.items())
    )


def _unsafe_keys(cls: type[BaseModel]) -> tuple[str, ...]:
    """The keys (name and alias: ``populate_by_name`` takes either) of the fields not ``_safe``."""
    keys: list[str] = []
    for name, f in cls.model_fields.items():
        if not (_known_metadata(list(f.metadata)) and _safe(f.annotation)):
            keys += [name] if f.alias in (None, name) else [name, f.alias]
    return tuple(keys)


@functools.cache
def raw_walked(cls: type[BaseModel]) -> tuple[str, ...] | None:
    """The keys of a JSON-decoded dict, valid as ``cls``, whose values must be walked; None: walk it all."""
    return _unsafe_keys(cls) if _analysable(cls) else None


def plain_members(data: dict[str, Any], walked: tuple[str, ...] | None) -> bool:
    """True when the validated, JSON-decoded record ``data`` is ``_PLAIN`` (``walked`` from
    ``raw_walked`` of its class); False only means "not sure": the exact encoder decides."""
    if walked is None:
        return _kind(data) == _PLAIN
    for name in walked:
        v: Any = data.get(name)
        t: type = type(v)
        if t is str or v is None or t is bool or (t is int and -_MAX_SAFE_INT <= v <= _MAX_SAFE_INT):
            continue
        if _kind(v) != _PLAIN:
            return False
    return True


# -- a validation the fast path may trust without pydantic -------------------------------------------

_SHA256_PATTERN = "^[0-9a-f]{64}$"
_CONFIG_KNOWN = frozenset({"extra", "frozen", "populate_by_name", "title"})
"""``model_config`` keys ``plain_check`` knows do not change what validates (others: no check)."""

_PLAIN_INT = "(type({v}) is int and -_MAX <= {v} <= _MAX)"
_PLAIN_FLOAT = ("(type({v}) is float and (1e-4 <= {v} < 1e16 or -1e16 < {v} <= -1e-4) and not {v}.is_integer()"
                " or " + _PLAIN_INT + ")")


_JSON_DEPTH = 16
"""How deep ``_flat_json`` follows nested lists and dicts (deeper: not sure)."""


def _flat_json(d: dict[str, Any] | list[Any], depth: int = 0) -> bool:
    """A ``dict[str, JsonValue]`` member (or a dict or list nested in one) holding only strings,
    nulls, bools, ints within 2**53, floats JCS writes as Python does and such lists and dicts."""
    x: Any
    for x in d.values() if type(d) is dict else d:
        t: type = type(x)
        if t is str or x is None or t is bool or (t is int and -_MAX_SAFE_INT <= x <= _MAX_SAFE_INT):
            continue
        if t is float and (1e-4 <= x < 1e16 or -1e16 < x <= -1e-4) and not x.is_integer():
            continue
        if (t is dict or t is list) and depth < _JSON_DEPTH and _flat_json(x, depth + 1):
            continue
        return False
    return True


class _Source:
    """The source of one module of check functions, one per model, and the names they refer to."""

    def __init__(self) -> None:
        self.ns: dict[str, Any] = {"_MAX": _MAX_SAFE_INT, "_flat_json": _flat_json, "_M": object(),
                                   "_fromhex": bytes.fromhex}
        self.lines: list[str] = []
        self.models: dict[type[BaseModel], str] = {}

    def const(self, value: Any) -> str:
        name = f"_k{len(self.ns)}"
        self.ns[name] = value
        return name

    def constraint(self, meta: Any, v: str) -> str | None:
        bounds: tuple[tuple[type, str, str], ...] = (
            (annotated_types.Ge, ">=", "ge"), (annotated_types.Gt, ">", "gt"),
            (annotated_types.Le, "<=", "le"), (annotated_types.Lt, "<", "lt"),
        )
        for cls, op, attr in bounds:
            if type(meta) is cls:
                bound = getattr(meta, attr)
                return f"{v} {op} {bound!r}" if type(bound) is int else None
        lengths: tuple[tuple[type, str, str], ...] = (
            (annotated_types.MinLen, ">=", "min_length"), (annotated_types.MaxLen, "<=", "max_length"),
        )
        for cls, op, attr in lengths:
            if type(meta) is cls:
                return f"len({v}) {op} {int(getattr(meta, attr))}"
        return None

    def expr(self, tp: Any, v: str, depth: int = 0) -> str | None:
        """A Python expression true only when the JSON-decoded value ``v`` validates as ``tp`` and is
        ``_PLAIN`` (keys aside: the caller checks those); None: this type is not handled."""
        if tp is str:
            return f"type({v}) is str"
        if tp is type(None):
            return f"{v} is None"
        if tp is bool:
            return f"type({v}) is bool"
        if tp is int:
            return _PLAIN_INT.format(v=v)
        if tp is float:
            return _PLAIN_FLOAT.format(v=v)
        origin, args = get_origin(tp), get_args(tp)
        if origin is Literal:
            strings = frozenset(a for a in args if type(a) is str)
            if not all(type(a) is str or a is None for a in args):
                return None
            none = f"{v} is None or " if None in args else ""
            return f"({none}type({v}) is str and {v} in {self.const(strings)})"
        if origin is Annotated:
            if any(isinstance(a, FieldInfo) and (a.validation_alias is not None or a.discriminator is not None)
                   for a in args[1:]):
                return None
            meta = [m for a in args[1:] for m in (a.metadata if isinstance(a, FieldInfo) else [a])]
            return self.constrained(args[0], meta, v, depth)
        if origin is Union or origin is types.UnionType:
            parts = [self.expr(a, v, depth) for a in args]
            return None if None in parts else "(" + " or ".join(f"({p})" for p in parts) + ")"
        if origin is list and len(args) == 1:
            x = f"x{depth}"
            item = self.expr(args[0], x, depth + 1)
            return None if item is None else f"(type({v}) is list and (not {v} or all({item} for {x} in {v})))"
        if origin is dict and len(args) == 2 and args[0] is str:
            if args[1] is JsonValue:
                return f"(type({v}) is dict and _flat_json({v}))"
            x = f"x{depth}"
            item = self.expr(args[1], x, depth + 1)
            return None if item is None else f"(type({v}) is dict and all({item} for {x} in {v}.values()))"
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            name = self.model(tp)
            return None if name is None else f"{name}({v})"
        return None

    def constrained(self, tp: Any, meta: list[Any], v: str, depth: int) -> str | None:
        base = self.expr(tp, v, depth)
        if base is None:
            return None
        parts = [base]
        for m in meta:
            if type(m).__name__ == "_PydanticGeneralMetadata" and vars(m) == {"pattern": _SHA256_PATTERN} and tp is str:
                # [0-9a-f]{64} exactly: the lowercase hex of 32 bytes is itself (fromhex: ValueError, caught)
                parts.append(f"len({v}) == 64 and _fromhex({v}).hex() == {v}")
                continue
            c = self.constraint(m, v)
            if c is None:
                return None
            parts.append(c)
        return "(" + " and ".join(parts) + ")"

    def model(self, cls: type[BaseModel], proven: tuple[str, ...] = ()) -> str | None:
        """The name of ``cls``'s check function (built once); the members named in ``proven`` are
        only required to be there (the caller checks their values)."""
        if cls in self.models:
            return self.models[cls]
        if not _analysable(cls) or not set(cls.model_config) <= _CONFIG_KNOWN:
            return None
        name = f"_check_{cls.__name__}_{len(self.models)}"
        self.models[cls] = name
        body: list[str] = []
        strings: list[str] = []  # required string members: one test for all
        required = 0
        for n, f in cls.model_fields.items():
            if f.validation_alias not in (None, f.alias) or f.discriminator is not None:
                return None
            test = self.constrained(f.annotation, list(f.metadata), "v", 0)
            if test is None:
                return None
            key = repr(f.alias or n)
            if f.is_required():  # a missing key: KeyError, caught below
                required += 1
                if (f.alias or n) in proven:
                    body.append(f"    d[{key}]")
                elif test == "(type(v) is str)":
                    strings.append(f"type(d[{key}]) is not str")
                else:
                    body += [f"    v = d[{key}]", f"    if not {test}: return False"]
            elif (f.alias or n) in proven:
                return None
            else:
                body += [f"    v = d.get({key}, _M)", "    if v is not _M:", f"      if not {test}: return False",
                         "      n += 1"]
        # Every key one of the fields' (extra="forbid"): the required ones and the optional ones
        # found are all there is.
        head = ["    if type(d) is not dict: return False", f"    n = {required}"]
        if strings:
            head.append(f"    if {' or '.join(strings)}: return False")
        tail = ["    if len(d) != n: return False"]
        self.lines += [f"def {name}(d):", "  try:", *(" " + b for b in [*head, *body, *tail]),
                       "  except (KeyError, TypeError, ValueError): return False", "  return True", ""]
        return name


@functools.cache
def plain_check(cls: type[BaseModel], proven: tuple[str, ...] = ()) -> Callable[[dict[str, Any]], bool] | None:
    """A check of a JSON-decoded dict (string keys) for the fast path: True only when ``cls`` validates
    it (pydantic, lax) and its values are ``_PLAIN`` — its keys aside: a caller whose encoding is
    not ASCII walks the tree (``_kind``). It accepts only exact JSON types (no coercion), ints
    within 2**53, floats JCS writes as Python does, the writer's key spellings (aliases), flat
    ``JsonValue`` dicts; False only means "not sure": pydantic and ``plain_members`` decide. None
    when a model, type or constraint is not one known here. ``proven``: required top-level members
    whose values the caller checks itself (the streaming pass: ``hash``, the SHA-256 it recomputes)."""
    src = _Source()
    name = src.model(cls, proven)
    if name is None:
        return None
    exec(compile("\n".join(src.lines), f"<plain_check {cls.__name__}>", "exec"), src.ns)  # noqa: S102 - our models' own code
    check: Callable[[dict[str, Any]], bool] = src.ns[name]
    return check
