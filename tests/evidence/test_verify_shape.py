"""The streaming verify's line shapes (evidence.verify_shape, used by ``scan_range``): a file the
streaming pass accepts is one the exact pass (verify_exact: json scanner, pydantic, canonical
bytes) finds nothing wrong with, however the shaped line is edited (rehashed, so the hash is no
help); and the writer's lines do take the shape path."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence.records import GENESIS_HASH, Actor, DecisionRecord, record_class
from evidence.runfolder import RunFolder
from evidence.verify_blocks import line_blocks
from evidence.verify_exact import check_chain, read_lines
from evidence.verify_report import VerifyReport
from evidence.verify_shape import flat_ok, line_shape
from evidence.verify_stream import Fallback, scan_range
from tests.evidence.conftest import StartRun
from tests.evidence.ocsf_runs import DEMO_RUN, realistic_run
from tests.evidence.test_verify_plain_check import POOL, _mutate

RUN = "20261121T000000000Z-shape"
START = {
    "schema": "warden.run_record/3", "type": "run_record", "record_id": "s-1", "run_id": RUN, "seq": 1,
    "time": "2026-11-01T00:00:00.000Z", "actor": {"type": "runner", "id": "w"}, "prev_hash": GENESIS_HASH,
    "attachments": [], "phase": "start", "initiator": {"user": "u", "host": "h"}, "started_by": "warden run",
    "mission_id": "m", "mission_version": "1", "mission_sha256": "ab" * 32, "started_at": "2026-11-01T00:00:00.000Z",
}


def _hashed(text: str) -> bytes:
    """A record body's text (``{...}``, without hash) as a line, with the hash over that text."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return f'{{"hash":"{digest}",{text[1:]}'.encode("utf-8", "surrogatepass")


def _canon(body: dict[str, Any]) -> str:
    return rfc8785.dumps({k: v for k, v in body.items() if k != "hash"}).decode()


def _bodies(start_run: StartRun) -> list[dict[str, Any]]:
    """Every non-run record of a realistic run and the demo run, and one with unusual text."""
    h = realistic_run(start_run)
    out = [json.loads(x) for x in h.folder.records.read_bytes().splitlines() + DEMO_RUN.read_bytes().splitlines()]
    out.append({**out[-1], "type": "decision_record", "schema": "warden.decision_record/2", "guard": "chain",
                "decision": "allow", "rationale": 'a "quoted" \\ back/slash', "step": 3, "kind": "click",
                "subject": {"b": 1, "a": "x", "c": None, "d": True, "e": 0.25, "f": -7}, "count": 2})
    return [d for d in out if d.get("type") != "run_record"]


@pytest.fixture(autouse=True)
def shapes_for_any_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """These files are small: their lines take the shaped path as a large file's would."""
    monkeypatch.setattr("evidence.verify_shape.SHAPES_FROM", 0)


@pytest.fixture
def bodies(start_run: StartRun) -> list[dict[str, Any]]:
    return _bodies(start_run)


def _placed(body: dict[str, Any], seq: int, prev: str) -> dict[str, Any]:
    out = {k: v for k, v in body.items() if k != "hash"}
    out.update(run_id=RUN, seq=seq, prev_hash=prev, record_id=f"r-{seq}")
    return out


def _file(tmp: Path, body: dict[str, Any], third: str) -> tuple[RunFolder, bytes]:
    """A run folder: the opening run_record, ``body`` at seq 2 (it makes the streaming pass build
    its type's shape) and the text ``third`` (a body without hash) rehashed as the third line."""
    first = _hashed(_canon(START))
    second = _hashed(_canon(_placed(body, 2, json.loads(first)["hash"])))
    line = _hashed(third)
    rf = RunFolder(tmp / RUN)
    rf.root.mkdir(exist_ok=True)
    rf.records.write_bytes(b"\n".join((first, second, line)) + b"\n")
    return rf, line


def _third(body: dict[str, Any], first_two: tuple[bytes, bytes]) -> dict[str, Any]:
    return _placed(body, 3, json.loads(first_two[1])["hash"])


def _streaming_accepts(rf: RunFolder) -> bool:
    try:
        scan_range(str(rf.records), RUN)
    except Fallback:
        return False
    return True


def _exact_accepts(rf: RunFolder) -> bool:
    report = VerifyReport(run_id=RUN, folder=rf.root)
    check_chain(read_lines(rf, report, finished=False), RUN, report)
    return report.ok and not report.problems


def _judge(tmp: Path, body: dict[str, Any], text: str) -> tuple[bool, bool]:
    rf, _ = _file(tmp, body, text)
    fast = _streaming_accepts(rf)
    return fast, fast and _exact_accepts(rf)


def _body3(tmp: Path, body: dict[str, Any]) -> dict[str, Any]:
    first = _hashed(_canon(START))
    second = _hashed(_canon(_placed(body, 2, json.loads(first)["hash"])))
    return _third(body, (first, second))


def test_the_writers_lines_take_the_shape_path(bodies: list[dict[str, Any]]) -> None:
    shaped = 0
    for body in bodies:
        cls = record_class(body)
        assert cls is not None
        shape = line_shape(cls, body["schema"], body["type"], RUN)
        line = _hashed(_canon(_placed(body, 5, "cd" * 32)))
        m = None if shape is None or not line.isascii() else shape.match(line.decode("latin-1"))
        if m is not None:
            shaped += 1
            h, p, r, s, g = m.group(*shape.groups)  # type: ignore[union-attr]
            assert (h, p, r, s) == (json.loads(line)["hash"], "cd" * 32, "r-5", "5")
            assert g == "" or flat_ok(g)
    assert shaped >= 0.3 * len(bodies)  # the others: attachments, pii_finding, non-ASCII text
    for type_ in ("decision_record", "action_record", "approval_request", "approval_record", "exception_record"):
        assert any(b["type"] == type_ for b in bodies)


def test_a_shaped_file_is_accepted_and_an_edit_refused(bodies: list[dict[str, Any]], tmp_path: Path) -> None:
    body = next(b for b in bodies if b["type"] == "decision_record" and b.get("subject"))
    rf, _ = _file(tmp_path, body, _canon(_body3(tmp_path, body)))
    assert _streaming_accepts(rf) and _exact_accepts(rf)
    for edit in ((',"count":', ',"count":0'), ('"decision":"', '"decision":"x'), (',"seq":3', ',"seq":03'),
                 (',"subject":{', ',"subject":{"zz":1,')):
        text = _canon(_body3(tmp_path, body)).replace(*edit, 1)
        assert _judge(tmp_path, body, text) == (False, False), edit


TRICKY = [
    ("step", -0.0), ("step", 1.0), ("duration_ms", 1e-5), ("duration_ms", 12.0), ("duration_ms", 0.1 + 0.2),
    ("duration_ms", 123456789.5), ("duration_ms", 1e8 + 0.5), ("count", 1.0), ("count", 0), ("count", True),
    ("rationale", "tab\there"), ("rationale", "del\x7f"), ("rationale", "é"), ("rationale", "\u2028"),
    ("rationale", "a/b"), ("subject", {"b": 1, "a": 2}), ("subject", {"a": [1]}), ("subject", {"a": {"b": 1}}),
    ("subject", {"a": 1.0}), ("subject", {"a": 2**60}), ("target", {"n": -0.0}), ("kind", None), ("step", None),
    ("checks", [{"guard": "g", "decision": "allow", "reason": "r", "rule": "", "x": 1}]),
    ("checks", [{"decision": "allow", "guard": "g", "reason": "r"}]), ("actor", {"id": "x", "type": "robot"}),
]
SPELLINGS = [
    lambda b: rfc8785.dumps(b).decode(),
    lambda b: json.dumps(b, sort_keys=True, ensure_ascii=True, separators=(",", ":")),
    lambda b: json.dumps(b, sort_keys=True, ensure_ascii=False, separators=(",", ":")),
    lambda b: orjson.dumps(b, option=orjson.OPT_SORT_KEYS).decode(),
    lambda b: json.dumps(b, ensure_ascii=False, separators=(",", ":")),
]


def _spell(body: dict[str, Any], how: int) -> str | None:
    try:
        return SPELLINGS[how](body)
    except (TypeError, ValueError, orjson.JSONEncodeError):
        return None


@pytest.mark.parametrize(("key", "value"), TRICKY)
def test_tricky_values_are_judged_as_the_exact_pass_judges_them(
    bodies: list[dict[str, Any]], tmp_path: Path, key: str, value: Any,
) -> None:
    for body in bodies:
        if key not in body and body["type"] not in ("decision_record", "action_record"):
            continue
        changed = {**_body3(tmp_path, body), key: copy.deepcopy(value)}
        for how in range(len(SPELLINGS)):
            text = _spell(changed, how)
            if text is not None:
                fast, exact = _judge(tmp_path, body, text)
                assert exact or not fast, (key, value, text)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(st.data())
def test_an_edited_member_is_never_accepted_where_the_exact_pass_refuses(
    bodies: list[dict[str, Any]], tmp_path: Path, data: st.DataObject,
) -> None:
    body = data.draw(st.sampled_from(bodies))
    cls = record_class(body)
    assert cls is not None
    rnd = random.Random(data.draw(st.integers(0, 2**32)))
    changed = _mutate(_body3(tmp_path, body), rnd, cls)
    text = _spell(changed, data.draw(st.integers(0, len(SPELLINGS) - 1)))
    if text is not None:
        fast, exact = _judge(tmp_path, body, text)
        assert exact or not fast, text


ALPHABET = '"\\{}[],:0123456789.-+eEnulltruefalsxa /\t\x00\x1f\x7f\u2028é'


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(st.data())
def test_an_edited_byte_is_never_accepted_where_the_exact_pass_refuses(
    bodies: list[dict[str, Any]], tmp_path: Path, data: st.DataObject,
) -> None:
    body = data.draw(st.sampled_from(bodies))
    text = _canon(_body3(tmp_path, body))
    at = data.draw(st.integers(1, len(text) - 1))
    cut = data.draw(st.integers(0, 3))
    text = text[:at] + data.draw(st.text(ALPHABET, max_size=3)) + text[at + cut:]
    fast, exact = _judge(tmp_path, body, text)
    assert exact or not fast, text


def test_the_pool_of_values_in_each_member(bodies: list[dict[str, Any]], tmp_path: Path) -> None:
    """Every member of one record of each type set to every value of the pool, canonically spelt."""
    accepted = 0
    for type_ in ("decision_record", "action_record", "approval_record"):
        body = next(b for b in bodies if b["type"] == type_)
        base = _body3(tmp_path, body)
        for key in base:
            for value in POOL:
                text = _spell({**base, key: copy.deepcopy(value)}, 0)
                if text is not None:
                    fast, exact = _judge(tmp_path, body, text)
                    assert exact or not fast, (key, value)
                    accepted += fast
    assert accepted > 50


def test_flat_ok_wants_sorted_keys_once() -> None:
    assert flat_ok('{"a":1,"b":"x"}') and flat_ok("{}")
    assert not flat_ok('{"b":1,"a":2}') and not flat_ok('{"a":1,"a":1}') and not flat_ok('{"a":1')


def test_line_blocks_reads_what_readline_reads() -> None:
    def readline_way(raw: bytes, start: int, end: int | None) -> tuple[list[bytes], int]:
        f = io.BytesIO(raw)
        f.seek(start)
        out, pos = [], start
        for chunk in f:
            if end is not None and pos >= end:
                break
            pos += len(chunk)
            if not chunk.endswith(b"\n"):
                return out, len(chunk)
            out.append(chunk[:-1])
        return out, 0

    rnd = random.Random(7)
    for _ in range(5000):
        raw = bytes(rnd.choice(b"ab\n") for _ in range(rnd.randrange(0, 30)))
        start = rnd.choice([0] + [i + 1 for i, c in enumerate(raw) if c == 10])
        end = rnd.choice([None, rnd.randrange(0, len(raw) + 3)])
        torn: list[int] = []
        got = [x for block in line_blocks(io.BytesIO(raw), start, end, torn, block=rnd.randrange(1, 9)) for x in block]
        assert (got, torn[0] if torn else 0) == readline_way(raw, start, end), (raw, start, end)


def test_a_shape_is_only_built_for_its_own_model() -> None:
    assert line_shape(DecisionRecord, "warden.action_record/2", "action_record", RUN) is None
    assert line_shape(DecisionRecord, "warden.decision_record/2", "decision_record", 'a"b') is None
    shape = line_shape(DecisionRecord, "warden.decision_record/2", "decision_record", RUN)
    assert shape is not None
    assert Actor(type="policy", id="x")  # the models the shapes are built from are the real ones


def test_a_key_beyond_the_bmp_in_the_hash_first_form_is_refused(bodies: list[dict[str, Any]], tmp_path: Path) -> None:
    """The writer writes such a record in the older form (``canonical_form``: not fast), so the
    exact pass refuses it hash first; the streaming pass used to accept it (found by the test above)."""
    body = next(b for b in bodies if b["type"] == "action_record")
    changed = {**_body3(tmp_path, body), "target": {"error": {"\U0001f600": 1}, "label": "é"}}
    assert _judge(tmp_path, body, _canon(changed)) == (False, False)
    changed["target"] = {"error": {"é": "\U0001f600"}}  # beyond the BMP in a value only: the writer's form
    rf, _ = _file(tmp_path, body, _canon(changed))
    assert _streaming_accepts(rf) and _exact_accepts(rf)


def test_a_small_file_builds_no_shape_and_a_large_one_does(
    start_run: StartRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's own report verifies a few hundred lines at its end: no pattern is compiled for them."""
    import evidence.verify_stream as stream

    h = start_run()
    for n in range(1, 6):
        h.step(n, screenshot=False)
    h.writer.sync()
    built: list[str] = []
    real = stream.line_shape

    def spy(*args: Any) -> Any:
        built.append(args[1])
        return real(*args)

    monkeypatch.setattr(stream, "line_shape", spy)
    monkeypatch.setattr("evidence.verify_shape.SHAPES_FROM", 4 << 20)
    path = str(h.folder.records)
    assert Path(path).stat().st_size < 4 << 20
    scan_range(path, h.run_id)
    assert built == []
    monkeypatch.setattr("evidence.verify_shape.SHAPES_FROM", 0)
    scan_range(path, h.run_id)
    assert built
