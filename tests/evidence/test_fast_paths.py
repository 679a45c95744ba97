"""The evidence chain's fast paths give what the slow ones give, and still reject every tampering.

The oracles: ``json.JSONEncoder`` (for the encoder built once), RFC 8785 (``rfc8785``) for the
canonical text, and the exact, in-memory verify pass for the streaming one.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence.canonical import _REFERENCE_ENCODE, _encode, canonical_bytes
from evidence.record_lines import new_record_ids
from evidence.records import Actor, DecisionRecord
from evidence.redact import is_warden_id
from evidence.runfolder import utc_timestamp
from evidence.verify import verify_run
from evidence.verify_stream import Fallback, scan_range

_chars = st.one_of(
    st.characters(exclude_categories=["Cs"]),
    st.characters(min_codepoint=0, max_codepoint=0x1F),
    st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF),
    st.sampled_from(list('"\\/\x7f\u2028\u2029\x85é')),
)
_text = st.text(_chars, max_size=8)
_leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), _text)
_trees = st.recursive(
    _leaves,
    lambda children: st.one_of(st.lists(children, max_size=5), st.dictionaries(_text, children, max_size=6)),
    max_leaves=30,
)


def _outcome(f: Any, tree: Any) -> tuple[str, str]:
    try:
        return "ok", f(tree)
    except (ValueError, TypeError) as e:
        return "error", type(e).__name__


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_text, _trees, max_size=8))
def test_encoder_built_once_writes_what_json_writes(tree: dict[str, Any]) -> None:
    assert _outcome(_encode, tree) == _outcome(_REFERENCE_ENCODE, tree)


def test_encoder_built_once_refuses_what_json_refuses() -> None:
    for bad in ({"a": math.nan}, {"a": math.inf}, {"a": object()}, {"a": {1, 2}}):
        with pytest.raises((ValueError, TypeError)):
            _encode(bad)
        with pytest.raises((ValueError, TypeError)):
            _REFERENCE_ENCODE(bad)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_text, _trees, max_size=8))
def test_canonical_bytes_still_equal_rfc8785(tree: dict[str, Any]) -> None:
    try:
        want = rfc8785.dumps(tree)
    except rfc8785.CanonicalizationError:  # JCS cannot say (NaN, 2**60): neither may the fast path
        with pytest.raises(ValueError):  # noqa: PT011 - the reference's own error, whichever it is
            canonical_bytes(tree)
        return
    assert canonical_bytes(tree) == want


def test_record_ids_are_uuid7_strings_unique_and_in_order() -> None:
    before = time.time_ns() // 1_000_000
    ids = new_record_ids(4096)
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == 4096 and ids == sorted(ids)  # one millisecond, the counter orders them
    for rid in ids[:300]:
        u = uuid.UUID(rid)
        assert str(u) == rid and u.version == 7 and u.variant == uuid.RFC_4122
        assert before <= u.int >> 80 <= after
        assert is_warden_id("record_id", rid)  # kept verbatim by the redactor, as a UUID4 was
    assert new_record_ids(0) == []
    assert len({r[-17:] for r in new_record_ids(1000)}) == 1000  # the random part differs


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 30),
                    timezones=st.sampled_from([UTC, None])))
def test_timestamp_fast_format_equals_the_strftime_one(t: datetime) -> None:
    u = t.astimezone(UTC)
    assert utc_timestamp(t) == f"{u:%Y-%m-%dT%H:%M:%S}.{u.microsecond // 1000:03d}Z"


def test_timestamp_of_now_and_a_shifted_zone() -> None:
    t = datetime(2026, 12, 4, 23, 59, 59, 999999, tzinfo=UTC)
    assert utc_timestamp(t.astimezone(__import__("datetime").timezone(timedelta(hours=5)))) == (
        "2026-12-04T23:59:59.999Z"
    )
    assert len(utc_timestamp()) == 24


# -- the streaming verify pass on the writer's own lines -----------------------------------------


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


def _rewrite(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def _rehashed(body: dict[str, Any], text_of: Any) -> bytes:
    """A line holding ``body`` spelled by ``text_of`` with a hash recomputed over that spelling."""
    body = {k: v for k, v in body.items() if k != "hash"}
    text = text_of(body)
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f'{{"hash":"{digest}",{text[1:]}'.encode()


def test_intact_run_passes_the_streaming_pass(make_run: Any) -> None:
    h = make_run(steps=4)
    part = scan_range(str(h.folder.records), h.run_id)
    assert part.last is not None and part.last[0] == h.info.record_count
    assert verify_run(h.folder.root, h.index).ok


def test_a_line_break_character_escaped_in_the_line_passes(start_run: Any) -> None:
    h = start_run()
    h.writer.append(DecisionRecord, actor=Actor(type="policy", id="chain"), guard="chain", decision="allow",
                    rationale="a\u2028b\u2029c\x85d é", step=1, kind="click")
    h.finish()
    assert b"\\u2028" in h.folder.records.read_bytes()
    scan_range(str(h.folder.records), h.run_id)  # no Fallback: the writer's form
    assert verify_run(h.folder.root, h.index).ok


@pytest.mark.parametrize("attack", ["byte", "reordered keys", "whitespace", "removed", "raw line break",
                                    "escaped letter"])
def test_streaming_pass_rejects_and_the_exact_pass_names_it(make_run: Any, attack: str) -> None:
    h = make_run(steps=3)
    path = h.folder.records
    lines = _lines(path)
    k = 3
    rec = json.loads(lines[k])
    if attack == "byte":
        lines[k] = lines[k].replace(b"click", b"clack", 1)
    elif attack == "reordered keys":  # same values, keys in reverse order, hash over that text
        lines[k] = _rehashed(rec, lambda b: json.dumps(dict(reversed(b.items())), ensure_ascii=False,
                                                       separators=(",", ":")))
    elif attack == "whitespace":
        lines[k] = _rehashed(rec, lambda b: json.dumps(b, ensure_ascii=False, sort_keys=True,
                                                       separators=(", ", ": ")))
    elif attack == "removed":
        del lines[k]
    elif attack == "raw line break":  # hash over the canonical text, but the line not the writer's escaped form
        rec = {**rec, "call": rec["call"] + "\u2028"}
        body = {key: v for key, v in rec.items() if key != "hash"}
        canonical = rfc8785.dumps(body).decode()
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        lines[k] = f'{{"hash":"{digest}",{canonical[1:]}'.encode()
    elif attack == "escaped letter":  # the same record, "k" spelled \u006b, hash over that spelling
        lines[k] = _rehashed(rec, lambda b: rfc8785.dumps(b).decode().replace('"kind":"', '"\\u006bind":"', 1))
    _rewrite(path, lines)
    with pytest.raises(Fallback):
        scan_range(str(path), h.run_id)
    if attack != "removed":  # the tampered line last in the range: its own form is what is refused
        end = sum(len(line) + 1 for line in lines[:k + 1])
        with pytest.raises(Fallback):
            scan_range(str(path), h.run_id, 0, end)
    report = verify_run(h.folder.root, h.index)
    assert not report.ok and report.problems


# -- redact_trees: the walks with string members inlined give what the plain recursion gave -------


def _reference_redact_trees(trees: list[Any], redact: Any) -> list[Any]:
    """The walk as it was (one call per node): every string redacted, keys included, Warden ids kept."""

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return redact(value)
        if isinstance(value, dict):
            return {redact(str(k)): v if type(v) is str and is_warden_id(str(k), v) else walk(v)
                    for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [walk(v) for v in value]
        return value

    return [walk(t) for t in trees]


class _Marking:
    """A redactor that visibly changes every text it is given (digits and the letter a)."""

    def redact(self, text: str) -> str:
        return "".join("#" if c.isdigit() else "A" if c == "a" else c for c in text)


_id_keys = st.sampled_from(["record_id", "value_hmac", "approval_id", "key_id", "run_id", "x", "a1"])
_id_values = st.sampled_from(["ab" * 32, "ap-0123456789abcdef", "0123456789abcdef", str(uuid.UUID(int=7)),
                              "20261121T000000000Z-bench-0a1b2c", "a1", "not 4 an id"])
_rtrees = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), _text, _id_values),
    lambda children: st.one_of(st.lists(children, max_size=4), st.tuples(children, children),
                               st.dictionaries(st.one_of(_text, _id_keys, st.integers()), children, max_size=5)),
    max_leaves=25,
)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_rtrees, max_size=4))
def test_redact_trees_equals_the_plain_recursion(trees: list[Any]) -> None:
    from evidence.redact import redact_trees

    red = _Marking()
    assert redact_trees(trees, red) == _reference_redact_trees(trees, red.redact)


class _Digits:
    """A redactor that changes only texts holding a 7 (so most trees pass through unchanged)."""

    def redact(self, text: str) -> str:
        return text.replace("7", "#")


_ntrees = st.one_of(_rtrees, st.builds(lambda a, b: Actor(type="runner", id=a + b), _text, _id_values))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_ntrees, st.dictionaries(_text, _ntrees, max_size=4)), max_size=5),
       st.sampled_from([_Marking(), _Digits()]))
def test_redact_native_equals_redact_trees_of_jsonable(trees: list[Any], red: Any) -> None:
    from evidence.record_lines import jsonable
    from evidence.redact import redact_native, redact_trees

    def cap(t: str) -> str:
        return t[:5]

    out = redact_native(trees, red, cap, jsonable)
    assert out == redact_trees([jsonable(t) for t in trees], red, cap)
    for tree, got in zip(trees, out, strict=True):
        if got is tree:  # handed back as it is: it was JSON-native and the redaction changed none of it
            assert jsonable(tree) == tree and redact_trees([tree], red, cap) == [tree]


def test_redact_native_hands_back_unchanged_trees_and_copies_changed_ones() -> None:
    from evidence.record_lines import jsonable
    from evidence.redact import redact_native

    kept, changed, odd = {"a": ["x", {"b": 1.5}]}, {"a": "call 7"}, {"a": ("x",)}
    out = redact_native([kept, changed, odd], _Digits(), None, jsonable)
    assert out[0] is kept and out == [kept, {"a": "call #"}, {"a": ["x"]}]
    assert changed == {"a": "call 7"}  # the inputs are never edited


# -- durability before the index -----------------------------------------------------------------


def test_a_failed_fsync_indexes_nothing(start_run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from evidence.records import ActionRecord
    from kernel.errors import EvidenceUnavailable

    h = start_run()
    good, head = h.folder.records.read_bytes(), h.index.head(h.run_id)
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(5, "Input/output error")))
    with pytest.raises(EvidenceUnavailable, match="Input/output error"):
        h.writer.append(ActionRecord, actor=Actor(type="runner", id="w"), phase="intent", step=1, kind="click",
                        call="locator('#a').click()")
    monkeypatch.undo()
    assert h.folder.records.read_bytes() == good  # cut back off
    assert h.index.head(h.run_id) == head  # and never indexed
    assert len(h.index.records(h.run_id)) == 1


def test_a_gating_group_is_durable_and_indexed_when_it_returns(start_run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from evidence.records import ActionRecord

    h = start_run()
    order: list[str] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (order.append("fsync"), real_fsync(fd))[1])
    real_add = h.index.add_records

    def add(rows: Any) -> None:
        order.append("index")
        real_add(rows)

    monkeypatch.setattr(h.index, "add_records", add)
    rec = h.writer.append(ActionRecord, actor=Actor(type="runner", id="w"), phase="intent", step=1, kind="click",
                          call="locator('#a').click()")
    assert order == ["fsync", "index"]  # durable, then indexed, before append returns
    assert h.index.head(h.run_id) == rec.hash


def test_a_bulk_group_leaves_the_collector_as_it_found_it(start_run: Any) -> None:
    import gc

    from evidence.records import ActionRecord
    from evidence.writer import BULK_GROUP

    h = start_run()
    actor = Actor(type="runner", id="w")
    group = [(ActionRecord, actor, (), {"phase": "outcome", "step": n, "kind": "click", "call": "c", "outcome": "ok"})
             for n in range(BULK_GROUP)]
    assert gc.isenabled()
    h.writer.append_many(group[: BULK_GROUP // 2])
    h.writer.append_many(group)
    assert gc.isenabled()
    gc.disable()
    try:
        h.writer.append_many(group)
        assert not gc.isenabled()  # a caller's choice is not undone
    finally:
        gc.enable()
    with pytest.raises(TypeError):  # a refused group restores it too
        h.writer.append_many([*group, (ActionRecord, actor, (), {"seq": 3})])
    assert gc.isenabled()
    h.finish()
    assert verify_run(h.folder.root, h.index).ok
