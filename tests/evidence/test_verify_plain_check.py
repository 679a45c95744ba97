"""``verify_plain.plain_check``: the streaming verify's pydantic-free validation never vouches for a
record its model refuses, nor for one whose members the fast encoder would not write as RFC 8785
does (non-ASCII keys aside: the caller walks those), and it does vouch for what the writer writes."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from evidence.canonical import _PLAIN, _kind
from evidence.records import LEGACY_TYPES, RECORD_TYPES, PiiFindingV1, Record, record_class
from evidence.verify_plain import plain_check
from tests.evidence.conftest import StartRun
from tests.evidence.ocsf_runs import DEMO_RUN, realistic_run

H = "ab" * 32
V1 = {
    "schema": PiiFindingV1.schema_id(), "record_id": "r1", "run_id": "run", "seq": 3, "type": "pii_finding",
    "time": "2026-11-01T00:00:00.000Z", "actor": {"type": "runner", "id": "w"}, "prev_hash": H, "hash": H,
    "attachments": [], "step": 2, "entity_type": "EMAIL_ADDRESS", "score": 0.85, "where": "page",
    "location": {"selector": "#a"}, "value_hmac": H, "key_id": "k1", "preview": "j***", "policy": "record",
    "action": "recorded",
}

POOL: list[Any] = [
    None, True, False, 0, 1, -1, 2, 2**53 - 1, 2**53, -(2**53), 2**60, 1.0, 0.0, -0.0, 0.5, 211.9, 1e-5, 1e-4,
    1e16, 1e300, 12.0, "", "x", "é", "\U0001f600", H, "0" * 64, "A" * 64, "0" * 63 + "g", "0" * 63, "0" * 65,
    " " + "0" * 63, "00 " * 21 + "0", "allow", "deny", "intent", "outcome", "ok", "start", "runner", "page",
    "record", "recorded", "blocked", [], [1], ["x"], [None], [{}], {}, {"a": 1}, {"a": "b"}, {"a": None},
    {"a": 0.5}, {"a": 2.0}, {"a": 2**60}, {"a": [1]}, {"a": {"b": 1}}, {"é": "x"}, {"\U0001f600": 1},
    {"type": "runner", "id": "x"}, {"type": "robot", "id": "x"}, {"type": "runner"},
    {"type": "runner", "id": "x", "extra": 1}, {"guard": "g", "decision": "allow", "reason": "r"},
    [{"guard": "g", "decision": "allow", "reason": "r", "rule": ""}],
    [{"guard": "g", "decision": "nope", "reason": "r"}],
    [{"guard": "g", "decision": "allow"}], [{"path": "p", "sha256": H, "media_type": "image/png"}],
    [{"path": "p", "sha256": "A" * 64, "media_type": "image/png"}], {"EMAIL_ADDRESS": 1}, {"EMAIL_ADDRESS": 0},
    {"EMAIL_ADDRESS": 1.0}, {"EMAIL_ADDRESS": True},
]


def _samples(start_run: StartRun) -> list[dict[str, Any]]:
    h = realistic_run(start_run)
    lines = h.folder.records.read_bytes().splitlines() + DEMO_RUN.read_bytes().splitlines()
    return [json.loads(line) for line in lines] + [V1]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON tree (the root excluded), for a mutation to land on."""
    out: list[tuple[Any, ...]] = [path] if path else []
    if type(value) is dict:
        for k, v in value.items():
            out += _paths(v, (*path, k))
    elif type(value) is list:
        for i, v in enumerate(value):
            out += _paths(v, (*path, i))
    return out


def _mutate(data: dict[str, Any], rnd: random.Random, cls: type[BaseModel]) -> dict[str, Any]:
    d = copy.deepcopy(data)
    for _ in range(rnd.choice((1, 1, 2, 3))):
        paths = _paths(d)
        path = rnd.choice(paths)
        *up, last = path
        parent: Any = d
        for p in up:
            parent = parent[p]
        what = rnd.random()
        if what < 0.7:
            parent[last] = copy.deepcopy(rnd.choice(POOL))
        elif what < 0.8 and type(parent) is dict:
            del parent[last]
        elif what < 0.9 and type(parent) is dict:
            parent[rnd.choice(["x", "schema_", "prevHash", *cls.model_fields])] = copy.deepcopy(rnd.choice(POOL))
        else:  # a member the record may hold but does not
            name = rnd.choice([f.alias or n for n, f in cls.model_fields.items()])
            d[name] = copy.deepcopy(rnd.choice(POOL))
    return d


def _valid(cls: type[Record], d: dict[str, Any]) -> bool:
    try:
        cls.model_validate(d)
    except (ValidationError, ValueError):
        return False
    return True


def _ascii_keys(value: Any) -> bool:
    if type(value) is dict:
        return all(k.isascii() and _ascii_keys(v) for k, v in value.items())
    if type(value) is list:
        return all(_ascii_keys(v) for v in value)
    return True


@pytest.mark.parametrize("cls", [*RECORD_TYPES.values(), *LEGACY_TYPES.values()])
def test_every_record_type_has_a_check(cls: type[Record]) -> None:
    assert plain_check(cls) is not None


def test_the_check_vouches_for_the_writers_records(start_run: StartRun) -> None:
    samples = _samples(start_run)
    assert {record_class(d) for d in samples} >= {*RECORD_TYPES.values(), *LEGACY_TYPES.values()}
    for d in samples:
        cls = record_class(d)
        assert cls is not None
        check = plain_check(cls)
        # the demo run was written before integral floats were written as ints: not plain, refused
        assert check is not None and check(d) == (_kind(d) == _PLAIN), d
    assert sum(_kind(d) == _PLAIN for d in samples) > 0.9 * len(samples)


def test_the_check_never_vouches_for_what_the_model_refuses_or_the_encoder_misspells(start_run: StartRun) -> None:
    rnd = random.Random(2026)
    vouched = refused = 0
    for data in _samples(start_run):
        cls = record_class(data)
        assert cls is not None
        check, trusting = plain_check(cls), plain_check(cls, ("hash",))
        assert check is not None and trusting is not None
        assert not trusting({k: v for k, v in data.items() if k != "hash"})
        for _ in range(300):
            d = _mutate(data, rnd, cls)
            if check(d):
                vouched += 1
                assert _valid(cls, d), d
                assert _kind(d) == _PLAIN or not _ascii_keys(d), d
            else:
                refused += 1
            if trusting(d):  # the hash left to the caller: any valid one makes the record valid
                assert _valid(cls, {**d, "hash": H}), d
                assert _kind({**d, "hash": H}) == _PLAIN or not _ascii_keys(d), d
    assert vouched > 1000 and refused > 1000


def test_a_refused_value_of_each_kind(start_run: StartRun) -> None:
    data = next(d for d in _samples(start_run) if d["type"] == "action_record" and d.get("duration_ms"))
    check = plain_check(RECORD_TYPES["action_record"])
    assert check is not None and check(data)
    for key, value in (("seq", 0), ("seq", 4.0), ("seq", True), ("seq", 2**53), ("duration_ms", 12.0),
                       ("duration_ms", 1e16), ("duration_ms", 1e-5), ("phase", "Intent"), ("prev_hash", "A" * 64),
                       ("prev_hash", "0" * 63 + "\n"), ("actor", {"type": "runner", "id": 1}), ("target", {"a": [1.0]}),
                       ("target", {"a": {"b": 2**60}}),
                       ("call", None), ("schema_", data["schema"]), ("extra", 1)):
        assert not check({**data, key: value}), (key, value)
    assert not check({k: v for k, v in data.items() if k != "call"})
