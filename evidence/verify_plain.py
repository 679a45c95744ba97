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
"""

from __future__ import annotations

import functools
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
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
