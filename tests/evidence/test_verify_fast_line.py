"""The streaming verify's orjson line check (``_fast_line``) never vouches for a line the exact,
json-scanner check (``_exact_line``, the pre-orjson code) refuses, and it does vouch for the writer's."""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import pytest
import rfc8785

from evidence.records import Actor, DecisionRecord, PiiFinding
from evidence.verify_plain import raw_walked
from evidence.verify_stream import (
    Fallback,
    _exact_line,
    _fast_line,
    _Validators,
    number_watching_scanner,
    scan_range,
)


def _exact(line: bytes) -> dict[str, Any] | None:
    floats, decode = number_watching_scanner()
    try:
        data, _ = _exact_line(line, decode, floats, {}, lambda o: json.dumps(
            o, sort_keys=True, ensure_ascii=False, separators=(",", ":")))
    except Fallback:
        return None
    return data


def _rehashed(body: dict[str, Any], text: str) -> bytes:
    """``text`` (a spelling of ``body`` without hash) as a line with the hash over that spelling."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f'{{"hash":"{digest}",{text[1:]}'.encode()


def _variants(line: bytes, rnd: random.Random) -> list[bytes]:
    rec = json.loads(line)
    body = {k: v for k, v in rec.items() if k != "hash"}
    canon = rfc8785.dumps(body).decode()
    out = [line]
    for _ in range(40):  # single-byte edits, insertions and deletions
        i = rnd.randrange(len(line))
        out += [line[:i] + bytes([rnd.randrange(256)]) + line[i + 1:], line[:i] + b" " + line[i:],
                line[:i] + line[i + 1:]]
    spellings = [
        json.dumps(body, sort_keys=True, ensure_ascii=True, separators=(",", ":")),  # \\u escapes
        json.dumps(dict(reversed(body.items())), ensure_ascii=False, separators=(",", ":")),
        json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(", ", ": ")),
        canon.replace('"seq":', '"seq":0', 1), canon.replace(',"seq":', ',"seq":1.0e0,"x":', 1),
        canon.replace('"run_id":"', '"run_id":"\\u0032', 1), canon.replace('"schema":', '"schema_":', 1),
    ]
    for key, value in (("step", 1.0), ("step", 2**60), ("duration_ms", 1e-5), ("duration_ms", 12.0), ("count", True),
                       ("subject", {"\U0001f600": 1, "\uff61": 2}), ("subject", {"a": 1e16}), ("rationale", "a\u2028b"),
                       ("target", {"n": 0.1}), ("rationale", "x\x85\x1f\\\"")):
        changed = {**body, key: value}
        for spelling in (json.dumps(changed, sort_keys=True, ensure_ascii=False, separators=(",", ":")),
                         json.dumps(changed, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
                         .replace("\u2028", "\\u2028").replace("\x85", "\\u0085")):
            spellings.append(spelling)
    for text in spellings:
        out.append(_rehashed(body, text))
        out.append(_rehashed(body, text).replace(b"\\u2028", "\u2028".encode()))
    return out


def test_the_fast_check_vouches_only_for_what_the_exact_one_accepts(make_run: Any) -> None:
    h = make_run(steps=3, finish=False)
    h.writer.append(DecisionRecord, actor=Actor(type="policy", id="chain"), guard="chain", decision="allow",
                    rationale="a\u2028b\u2029c\x85d é \U0001f600 \x1f", step=1, kind="click",
                    subject={"n": 0.25, "big": 2**40, "é": [1, None, True, "x"]})
    h.finish()
    lines = h.folder.records.read_bytes().split(b"\n")[:-1]
    rnd = random.Random(13)
    vouched = refused = 0
    for line in lines:
        assert _fast_line(line, {}) is not None, line  # the writer's own lines take the fast path
        for variant in _variants(line, rnd):
            validators: _Validators = {}
            fast = _fast_line(variant, validators)
            exact = _exact(variant)
            if fast is not None:
                vouched += 1
                assert exact is not None, variant
                assert fast[0] == exact
            else:
                refused += 1
    assert vouched >= len(lines) and refused > 40 * len(lines)


def test_every_record_type_has_its_members_analysed() -> None:
    walked = raw_walked(PiiFinding)
    assert walked is not None and {"values", "counts", "location", "seq", "step"} <= set(walked)
    assert "schema" not in walked and "actor" not in walked  # strings / a model of strings only


@pytest.mark.parametrize("edit", [(b'"click"', b'"clack"'), (b'"seq":4', b'"seq":4.0')])
def test_a_tampered_line_still_falls_back(make_run: Any, edit: tuple[bytes, bytes]) -> None:
    h = make_run(steps=2)
    path = h.folder.records
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3].replace(*edit, 1)
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(Fallback):
        scan_range(str(path), h.run_id)
