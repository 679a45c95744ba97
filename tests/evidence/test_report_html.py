"""report_html.clean: the printable fast path shows exactly what the per-character escape showed."""

from __future__ import annotations

import json
import sys
import unicodedata
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from evidence.report_html import JsonLines, clean, h, pretty_json, pretty_json_plain


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


# --------------------------------------------------------------- the appendix's fast pretty form
ODD_FLOATS = st.sampled_from([float("nan"), float("inf"), -float("inf"), 9.999999999999999e-05, 1e-300, -5e-324,
                              2.5e-5, 0.0001, 1e16, 1e300, 0.0, -0.0])
LINE_TREES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=2**63, max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | ODD_FLOATS
    | st.text(alphabet=st.characters(), max_size=12)
    | st.sampled_from(["\ud800", "a\udfffb", "NaN", "1e-7", "0.00001", ": 1e5", "\u2028\x7f\x00"]),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4),
    max_leaves=30,
)


@given(LINE_TREES)
def test_the_fast_pretty_form_is_json_dumps_whenever_the_reader_allows_it(tree: Any) -> None:
    """What the report's appendix shows for a line: orjson's form only where it is json.dumps's."""
    line = json.dumps({"r": tree})
    value, odd = JsonLines().loads(line)
    expected = json.dumps(value, ensure_ascii=False, indent=2)
    assert (pretty_json(value) if odd else pretty_json_plain(value)) == expected
    assert pretty_json_plain(value) == expected or odd or _orjson_refuses(value)


def _orjson_refuses(value: Any) -> bool:
    import orjson

    try:
        orjson.dumps(value)
    except TypeError:
        return True
    return False


def test_the_reader_notes_every_float_orjson_writes_otherwise() -> None:
    for text in ["NaN", "-Infinity", "1e400", "9.99e-5", "1e-7", "-2.5e-300"]:
        assert JsonLines().loads(f'{{"x": [{text}]}}')[1], text
    for text in ["0.0001", "1", "0.5", "1e16", "123456789.25", "-0.0", "null", '"1e-7"']:
        assert not JsonLines().loads(f'{{"x": [{text}]}}')[1], text


# --------------------------------------------------------------- the PII table's kept escapes
SCALARS = (st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False, width=16)
           | st.sampled_from(["text", "<b>&", "a\u202eb", "#id > td:nth-of-type(2)"]))
LOCATIONS = st.dictionaries(st.sampled_from(["page_url", "selector", "element", "frame", "<k>"]),
                            SCALARS | st.lists(SCALARS, max_size=2) | st.dictionaries(st.text(max_size=3), SCALARS,
                                                                                    max_size=2), max_size=3)


@given(st.lists(st.tuples(LOCATIONS, st.lists(st.tuples(SCALARS, SCALARS, LOCATIONS | SCALARS), max_size=4)),
                max_size=3))
def test_pii_rows_are_escaped_as_each_cell_alone_would_be(records: list[Any]) -> None:
    """Kept escapes (numbers by type and value, location pairs per record) change no cell."""
    from evidence.report import _pii

    recs = [{"type": "pii_finding", "time": "2026-12-08T01:00:00.000Z", "step": 1, "where": "page",
             "policy": "record", "location": place,
             "values": [{"entity_type": e, "score": sc, "location": loc, "preview": "p", "action": "recorded"}
                        for e, sc, loc in values]} for place, values in records]

    class Run:
        def of(self, *types: str) -> list[dict[str, Any]]:
            return [r for r in recs if r["type"] in types]

    assert _pii(Run()) == _pii_oracle(recs)  # type: ignore[arg-type]


def _pii_oracle(recs: list[dict[str, Any]]) -> str:
    """The table as session 11 wrote it: every cell escaped by itself."""
    from evidence.report_html import _dict, _kv, _section, _table, _ts, badge

    rows = []
    for p in recs:
        place = _dict(p.get("location"))
        for v in p["values"]:
            where = {**place, **_dict(v.get("location"))}
            rows.append([_ts(p.get("time")), h(p.get("step")), h(v.get("entity_type")), h(v.get("score")),
                         h(p.get("where")), f'<span class="mono">{h(v.get("preview"))}</span>', h(p.get("policy")),
                         badge(v.get("action")), _kv(where)])
    table = _table(["time", "step", "entity", "score", "where", "preview (masked)", "policy", "action", "location"],
                   rows, "No PII finding recorded.")
    return _section("PII findings (as recorded: masked, values never stored)", table, len(rows), "pii")


def test_kept_numbers_keep_their_spelling() -> None:
    from evidence.report_html import Escapes

    esc = Escapes()
    assert [esc.number(v) for v in (0.0, -0.0, 1, 1.0, True, float("nan"), float("nan"))] == [
        "0.0", "-0.0", "1", "1.0", "True", "nan", "nan"]
