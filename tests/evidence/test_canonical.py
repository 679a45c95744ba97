"""The fast canonical encoder is byte-identical to RFC 8785 (the reference ``rfc8785`` package)."""

from __future__ import annotations

import json
from typing import Any

import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence.canonical import _plain, canonical_bytes, plain_json_text, record_hash

# Any code point but lone surrogates (not UTF-8 encodable; the writer replaces them before hashing),
# weighted towards the interesting ranges: controls, the U+E000–U+FFFF block, non-BMP.
_chars = st.one_of(
    st.characters(blacklist_categories=("Cs",)),
    st.characters(min_codepoint=0, max_codepoint=0x1F),
    st.characters(min_codepoint=0xE000, max_codepoint=0xFFFF, blacklist_categories=("Cs",)),
    st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF),
    st.sampled_from(list('"\\/\x7f\u2028\u2029\x85é')),
)
_text = st.text(_chars, max_size=8)
_ints = st.one_of(
    st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1), st.sampled_from([2**53 - 1, 10**15, -(10**15)])
)
_floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**60), max_value=2**60).map(float),  # integral floats, incl. beyond 2**53
    st.sampled_from([0.0, -0.0, 1e16, 1e21, 1e-7, 1e-6, 5e-324, 1.7976931348623157e308, 12.0, 0.1]),
)
_leaves = st.one_of(st.none(), st.booleans(), _ints, _floats, _text)
_trees = st.recursive(
    _leaves,
    lambda children: st.one_of(st.lists(children, max_size=5), st.dictionaries(_text, children, max_size=6)),
    max_leaves=30,
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_trees)
def test_fast_encoder_equals_rfc8785(tree: Any) -> None:
    assert canonical_bytes(tree) == rfc8785.dumps(tree)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(_text, st.one_of(st.none(), st.booleans(), _ints, _text), max_size=8))
def test_fast_path_taken_for_float_free_bmp_keys(tree: dict[str, Any]) -> None:
    if all(max(k, default="\0") <= "\uffff" for k in tree):
        assert _plain(tree)
    assert canonical_bytes(tree) == rfc8785.dumps(tree)


def test_known_divergences_go_to_the_reference() -> None:
    for tree in (
        {"a": 12.0},  # Python "12.0", JCS "12"
        {"a": 1e16},  # Python "1e+16", JCS "10000000000000000"
        {"\U0001f600": 1, "\uff61": 2},  # UTF-16 order differs from code point order
        {"n": 2**53},  # outside the exact range: rfc8785 refuses
    ):
        assert not _plain(tree)
    assert canonical_bytes({"a": 12.0}) == b'{"a":12}'
    assert canonical_bytes({"\U0001f600": 1, "\uff61": 2}) == rfc8785.dumps({"\U0001f600": 1, "\uff61": 2})


def test_record_hash_ignores_hash_key() -> None:
    body = {"seq": 1, "text": "x\u2028y", "nested": {"b": [1, None, True], "a": "é"}}
    assert record_hash({**body, "hash": "f" * 64}) == record_hash(body)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_trees)
def test_plain_json_text_implies_a_plain_tree(tree: Any) -> None:
    floats: list[str] = []

    def saw_float(s: str) -> float:
        floats.append(s)
        return float(s)

    def saw_int(s: str) -> int:
        if len(s) > 15:
            floats.append(s)
        return int(s)

    text = json.dumps(tree, ensure_ascii=False, separators=(",", ":"))
    parsed = json.JSONDecoder(parse_float=saw_float, parse_int=saw_int, parse_constant=saw_float).decode(text)
    if not floats and plain_json_text(text):
        assert _plain(parsed)
        assert canonical_bytes(parsed, plain=True) == rfc8785.dumps(parsed)
