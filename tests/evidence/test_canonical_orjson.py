"""orjson, the canonical encoder's fast path, writes exactly what the json encoder and RFC 8785 write
for every tree ``_kind`` lets through (and the json encoder still decides where orjson refuses)."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence.canonical import (
    _INTEGRAL,
    _PLAIN,
    _REFERENCE_ENCODE,
    _encode,
    _ints,
    _kind,
    canonical_bytes,
    canonical_form,
    canonical_text,
)

_chars = st.one_of(
    st.characters(exclude_categories=["Cs"]),
    st.characters(min_codepoint=0, max_codepoint=0x1F),
    st.characters(min_codepoint=0x7F, max_codepoint=0xA0),
    st.characters(min_codepoint=0xE000, max_codepoint=0xFFFF, exclude_categories=["Cs"]),
    st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF),
    st.sampled_from(list('"\\/\x7f\u2028\u2029\x85\ufeffé')),
)
_text = st.text(_chars, max_size=8)
_in_range = st.floats(min_value=1e-4, max_value=1e16, exclude_max=True).filter(lambda x: not x.is_integer())
_floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    _in_range, _in_range.map(lambda x: -x),
    st.integers(min_value=-(2**60), max_value=2**60).map(float),
    st.sampled_from([0.0, -0.0, 1e16, 1e21, 1e-4, 1e-5, 1e-7, 5e-324, 9999999999999998.5, 0.1, 211.9]),
)
_ints_st = st.one_of(st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1), st.integers())
_leaves = st.one_of(st.none(), st.booleans(), _ints_st, _floats, _text)
_trees = st.recursive(
    _leaves,
    lambda children: st.one_of(st.lists(children, max_size=5), st.dictionaries(_text, children, max_size=6)),
    max_leaves=30,
)


def _orjson(tree: Any) -> bytes:
    return orjson.dumps(tree, option=orjson.OPT_SORT_KEYS)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_trees)
def test_orjson_equals_json_and_rfc8785_where_kind_says_so(tree: Any) -> None:
    kind = _kind(tree)
    if kind == _INTEGRAL:
        tree = _ints(tree)
        assert _kind(tree) == _PLAIN
    elif kind != _PLAIN:
        return
    assert _orjson(tree) == _encode(tree).encode() == _REFERENCE_ENCODE(tree).encode() == rfc8785.dumps(tree)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_trees)
def test_canonical_functions_still_equal_rfc8785(tree: Any) -> None:
    try:
        want = rfc8785.dumps(tree)
    except rfc8785.CanonicalizationError:
        with pytest.raises(ValueError):  # noqa: PT011 - the reference's own error, whichever it is
            canonical_bytes(tree)
        return
    assert canonical_bytes(tree) == want
    assert canonical_text(tree).encode() == want
    assert canonical_form(tree)[0].encode() == want


@settings(max_examples=5000, deadline=None)
@given(st.one_of(_in_range, _in_range.map(lambda x: -x)))
def test_floats_in_the_plain_range_are_written_as_python_and_jcs_write_them(x: float) -> None:
    assert orjson.dumps(x) == repr(x).encode() == rfc8785.dumps(x)


def test_floats_at_the_edges_of_the_plain_range() -> None:
    for edge in (1e-4, 1e-3, 0.1, 1.0, 10.0, 1e15, 2.0**52, 2.0**53, 1e16):
        for direction in (math.inf, 0.0):
            x = edge
            for _ in range(300):
                if not x.is_integer() and 1e-4 <= x < 1e16:
                    assert orjson.dumps(x) == orjson.dumps(-x)[1:] == repr(x).encode() == rfc8785.dumps(x)
                x = math.nextafter(x, direction)


def test_every_code_point_as_a_value_and_every_bmp_one_as_a_key() -> None:
    points = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for i in range(0, len(points), 8192):
        block = points[i:i + 8192]
        value = ["".join(map(chr, block))]
        assert _orjson(value) == _encode(value).encode()
        keys = {chr(c): 0 for c in block if c <= 0xFFFF}
        if keys:
            assert _kind(keys) == _PLAIN
            assert _orjson(keys) == _encode(keys).encode() == rfc8785.dumps(keys)


def test_where_orjson_refuses_the_json_encoder_decides_as_before() -> None:
    lone = {"a": "x\ud800y"}  # a lone surrogate: the writer replaces them; the encoders must not pass one
    with pytest.raises(orjson.JSONEncodeError):
        _orjson(lone)
    assert canonical_text(lone) == _encode(lone)
    with pytest.raises(UnicodeEncodeError):
        canonical_bytes(lone)
    deep: Any = "leaf"
    for _ in range(300):  # beyond orjson's nesting limit
        deep = [deep]
    with pytest.raises(orjson.JSONEncodeError):
        _orjson(deep)
    assert canonical_bytes({"d": deep}) == _encode({"d": deep}).encode() == rfc8785.dumps({"d": deep})
