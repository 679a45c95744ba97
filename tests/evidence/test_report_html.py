"""report_html.clean: the printable fast path shows exactly what the per-character escape showed."""

from __future__ import annotations

import json
import sys
import unicodedata
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from evidence.report_html import clean, h, pretty_json


def _oracle(text: str, keep_newlines: bool) -> str:
    """The escape as it was before the fast path: every character looked at."""
    out = []
    for ch in text:
        if keep_newlines and ch == "\n":
            out.append(ch)
        elif unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"}:
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def test_a_printable_character_is_never_one_to_escape() -> None:
    """Why the fast path is exact: whatever ``str.isprintable`` accepts, the escape leaves as it is."""
    escaped = {"Cc", "Cf", "Zl", "Zp"}
    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        if ch.isprintable():
            assert unicodedata.category(ch) not in escaped, hex(cp)


def test_every_escaped_character_is_escaped_as_before() -> None:
    # every character escaped, and those left as they are though not printable (spaces, private use,
    # surrogates); unassigned code points take the same path as private use
    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        if not ch.isprintable() and unicodedata.category(ch) != "Cn":
            for keep in (False, True):
                text = f"a{ch}\nb"
                assert clean(text, keep_newlines=keep) == _oracle(text, keep), hex(cp)


@given(st.text(alphabet=st.characters(), max_size=60), st.booleans())
def test_any_text_is_escaped_as_before(text: str, keep: bool) -> None:
    assert clean(text, keep_newlines=keep) == _oracle(text, keep)


def test_bidi_override_and_controls_never_reach_the_page_raw() -> None:
    assert h("a\u202eb<i>\x00") == "a\\u202eb&lt;i&gt;\\x00"
    assert clean("one\ntwo\u2028", keep_newlines=True) == "one\ntwo\\u2028"
    assert clean(None) == ""


JSON_TREES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(alphabet=st.characters(), max_size=12),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4),
    max_leaves=30,
)


@given(JSON_TREES)
def test_pretty_json_is_json_dumps_with_an_indent(tree: Any) -> None:
    assert pretty_json(tree) == json.dumps(tree, ensure_ascii=False, indent=2)


def test_pretty_json_hands_what_json_loads_never_gives_to_json_dumps() -> None:
    for odd in ({1: "a", "b": [1.5]}, ("t", 1), {"k": ("t",)}):
        assert pretty_json(odd) == json.dumps(odd, ensure_ascii=False, indent=2)
