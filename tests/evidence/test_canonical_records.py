"""The writer's schema-directed canonical form (only the members of number or dict type walked) is
the full walk's, and RFC 8785's, for records of every type built from any values their schemas take."""

from __future__ import annotations

import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import pytest
import rfc8785
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, JsonValue, ValidationError
from pydantic.fields import FieldInfo

from evidence.canonical import _PLAIN, _kind, canonical_form, canonical_form_of
from evidence.records import LEGACY_TYPES, RECORD_TYPES, Record, walked_fields

_chars = st.one_of(
    st.characters(blacklist_categories=("Cs",)),
    st.characters(min_codepoint=0xE000, max_codepoint=0xFFFF, blacklist_categories=("Cs",)),
    st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF),
    st.sampled_from(list('"\\\x00\x1f\u2028é')),
)
_text = st.text(_chars, max_size=6)
_floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**60), max_value=2**60).map(float),
    st.sampled_from([0.0, -0.0, 1e16, 1e21, 1e-7, 12.0, 0.1, 2.5]),
)
_ints = st.one_of(st.integers(), st.sampled_from([2**53 - 1, 2**53, -(2**53), 2**64]))
_json: st.SearchStrategy[Any] = st.recursive(
    st.one_of(st.none(), st.booleans(), _ints, _floats, _text),
    lambda kids: st.one_of(st.lists(kids, max_size=3), st.dictionaries(_text, kids, max_size=3)),
    max_leaves=10,
)


def _for(tp: Any, meta: list[Any]) -> st.SearchStrategy[Any]:
    """Values of type ``tp`` (with its field's constraints), tricky ones for the encoder included."""
    if tp is JsonValue:
        return _json
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        extra = [m for a in args[1:] for m in (a.metadata if isinstance(a, FieldInfo) else [a])]
        return _for(args[0], meta + extra)
    if origin is Literal:
        return st.sampled_from(args)
    if origin is Union or origin is types.UnionType:
        return st.one_of(*(_for(a, meta) for a in args))
    if origin is list:
        least = max([m.min_length for m in meta if isinstance(m, annotated_types.MinLen)], default=0)
        return st.lists(_for(args[0], []), min_size=least, max_size=least + 2)
    if origin is dict:
        return st.dictionaries(_text, _for(args[1], []), max_size=3)
    if tp is type(None):
        return st.none()
    if tp is bool:
        return st.booleans()
    if tp is float:
        return _floats
    if tp is int:
        least = [m.ge for m in meta if isinstance(m, annotated_types.Ge)]
        return st.integers(min_value=least[0]) | st.sampled_from([least[0] + 2**53]) if least else _ints
    if tp is str:
        patterns = [m.pattern for m in meta if getattr(m, "pattern", None)]
        return st.from_regex(patterns[0], fullmatch=True) if patterns else _text
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return _model(tp)
    raise AssertionError(f"no strategy for {tp!r}")


def _model(cls: type[BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({f.alias or name: _for(f.annotation, list(f.metadata))
                                  for name, f in cls.model_fields.items()})


_TYPES = [*RECORD_TYPES.values(), *LEGACY_TYPES.values()]


@pytest.mark.parametrize("cls", _TYPES, ids=lambda c: c.schema_id())
def test_every_record_type_has_a_schema_directed_walk(cls: type[Record]) -> None:
    walked = walked_fields(cls)
    assert walked is not None and "seq" in walked and "time" not in walked and "actor" not in walked


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.sampled_from(_TYPES).flatmap(lambda c: st.tuples(st.just(c), _model(c))))
def test_schema_directed_canonical_form_is_the_full_walks(drawn: tuple[type[Record], dict[str, Any]]) -> None:
    cls, draft = drawn
    try:
        model = cls.model_validate(draft)
    except ValidationError:
        assume(False)
        return
    body = model.model_dump(mode="json", by_alias=True)
    walked = walked_fields(cls)
    assert walked is not None
    for name, value in body.items():  # the schema's claim: what is not walked is plain
        if name not in walked:
            assert _kind(value) == _PLAIN, (name, value)
    try:
        expected: Any = canonical_form(body)
    except (ValueError, TypeError, rfc8785.CanonicalizationError) as e:
        with pytest.raises(type(e)):
            canonical_form_of(body, walked)
        return
    assert canonical_form_of(body, walked) == expected
    assert expected[0].encode("utf-8") == rfc8785.dumps(body)
