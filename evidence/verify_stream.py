"""The fast, streaming pass of ``verify``: proves an intact chain holding 32 bytes per record.

At the first thing out of the ordinary it raises ``Fallback`` and the exact pass
(evidence.verify_exact), which holds every record, names each problem.
"""

from __future__ import annotations

import gc
import json
import json.scanner
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from hashlib import sha256 as _sha256
from typing import Any

import orjson

from evidence import verify_shape as _shapes
from evidence.canonical import _C_ENCODE, _PLAIN, _encode, _kind, plain_json_text, record_hash
from evidence.record_lines import HASH_PREFIX, hashed_line, jsonl_line
from evidence.records import GENESIS_HASH, Record, RunRecord, record_class
from evidence.runfolder import RunFolder
from evidence.verify_blocks import line_blocks
from evidence.verify_plain import plain_check, plain_members, raw_walked
from evidence.verify_report import Line
from evidence.verify_shape import FLAT_MEMO, Shape, flat_ok, line_shape

SORT_KEYS = orjson.OPT_SORT_KEYS
_loads, _dumps = orjson.loads, orjson.dumps
_PREFIX = HASH_PREFIX.encode()
# Per (schema, type): the model's validator (model_validate minus its wrapper), the members to walk
# before trusting the fast encoder, the plain_check (evidence.verify_plain).
_Validators = dict[tuple[Any, Any], tuple[Callable[[Any], Any], tuple[str, ...] | None, Callable[..., bool] | None]]


class Fallback(Exception):
    """The streaming pass met something out of the ordinary: the full, in-memory pass names it."""


@dataclass
class Stream:
    """What the streaming pass keeps of an intact chain: no record bodies, 32 bytes of hash per record."""

    count: int = 0
    hashes: bytearray = field(default_factory=bytearray)  # SHA-256 digest of record seq i at [32(i-1), 32i)
    linked: list[Line] = field(default_factory=list)  # lines with attachments (slim: seq + attachments)
    run_records: list[Line] = field(default_factory=list)
    last: Line | None = None
    torn: int = 0

    def seq_of_hash(self, hex_hash: str) -> int | None:
        try:
            digest = bytes.fromhex(hex_hash)
        except (ValueError, TypeError):
            return None
        if len(digest) != 32:
            return None
        at = self.hashes.find(digest)
        while at != -1 and at % 32:
            at = self.hashes.find(digest, at + 1)
        return None if at == -1 else at // 32 + 1

    def hash_at_seq(self, seq: int) -> str | None:
        if not isinstance(seq, int) or not 1 <= seq <= self.count:
            return None
        return self.hashes[32 * (seq - 1):32 * seq].hex()

    def tail(self) -> list[Line]:
        """The run_records and the last line, in order: all the outcome checks look at."""
        assert self.last is not None
        return self.run_records if self.last in self.run_records else [*self.run_records, self.last]


def _same_in_both(number: str) -> bool:
    """A float token that Python's encoder writes exactly as RFC 8785 does (evidence.canonical._kind):
    non-integral, 1e-4 <= |x| < 1e16. Anything else (and NaN, Infinity, 16+ digit ints) takes the
    reference path."""
    try:
        x = float(number)
    except ValueError:
        return False
    return not x.is_integer() and 1e-4 <= abs(x) < 1e16


@dataclass
class Part:
    """What one scan of a byte range of ``records.jsonl`` proved: its lines link from ``first_prev``
    at seq ``first_seq`` to ``last_hash`` at ``last_seq``; the stitcher checks the ranges meet."""

    first_seq: int = 0
    first_prev: str = GENESIS_HASH
    last: tuple[int, str, Record | None] | None = None
    hashes: bytearray = field(default_factory=bytearray)
    run_records: list[Line] = field(default_factory=list)
    linked: list[Line] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    id_list: list[str] = field(default_factory=list)  # a worker's answer: its ids as a list (cheaper to pass)
    torn: int = 0


def _scanner(parse_float: Callable[[str], float], parse_int: Callable[[str], int]) -> Callable[[str], Any]:
    """A JSON decoder of one whole line: the C scanner called directly (``JSONDecoder.decode`` adds
    two whitespace regex matches per line; a line the writer wrote has no whitespace around it, so
    any there is refused like trailing data)."""
    decoder = json.JSONDecoder(parse_float=parse_float, parse_int=parse_int, parse_constant=parse_float)
    make = getattr(json.scanner, "c_make_scanner", None)
    if make is None:  # pragma: no cover - CPython always has the C scanner
        return decoder.decode
    scan = make(decoder)

    def decode(text: str) -> Any:
        try:
            value, at = scan(text, 0)
        except StopIteration as e:
            raise ValueError("not JSON") from e
        if at != len(text):
            raise ValueError("data after the JSON value")
        return value

    return decode


def number_watching_scanner() -> tuple[list[str], Callable[[str], Any]]:
    """A line decoder and the list its hooks fill with every float, NaN/Infinity or integer beyond
    15 digits it met (the tokens only the reference encoder may write as RFC 8785 does); the caller
    clears the list before each line."""
    floats: list[str] = []

    def saw_float(s: str) -> float:
        floats.append(s)
        return float(s)

    def saw_int(s: str) -> int:
        if len(s) > 15:
            floats.append(s)
        return int(s)

    return floats, _scanner(saw_float, saw_int)


def scan_range(path: str, run_id: str, start: int = 0, end: int | None = None) -> Part:
    """The streaming checks over the lines in bytes [start, end) of ``path`` (``start`` at a line start).
    The first line's seq and prev_hash are taken as given (the caller checks them); then seqs run on by
    one, each prev_hash the previous hash. The collector is paused: nothing cyclic is made per line."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _scan_range(path, run_id, start, end)
    finally:
        if enabled:
            gc.enable()


def _scan_range(path: str, run_id: str, start: int, end: int | None) -> Part:
    out = Part()
    floats, decode = number_watching_scanner()
    validators: _Validators = {}
    seen_ids = out.ids
    add_id = seen_ids.add
    hashes = out.hashes
    fromhex = bytes.fromhex
    run_records, linked = out.run_records, out.linked
    encode = _encode if _C_ENCODE is None else lambda obj: "".join(_C_ENCODE(obj, 0))
    shapes: dict[bytes, Shape | None] = {}  # per schema id: its line shape (evidence.verify_shape)
    shaped = (os.path.getsize(path) if end is None else end) - start >= _shapes.SHAPES_FROM
    flats: set[str] = {""}  # flat objects flat_ok accepted (a pure function of the text); "": none
    sha256 = _sha256
    prev: str | None = None
    seq = before = 0
    digest: Any = None
    record: Record | None = None
    torn: list[int] = []
    with open(path, "rb") as f:
        for block in line_blocks(f, start, end, torn):
            for line in block:
                if prev is not None:  # the shape of the line's schema: one match proves the record (verify_shape)
                    at = line.find(b',"schema":"', 75) + 11
                    shape = shapes.get(line[at:line.find(b'"', at)])
                    m = None if shape is None else shape.match(line.decode("latin-1"))
                    if m is not None:
                        h, p, r, s, g = m.group(*shape.groups)  # type: ignore[union-attr]
                        # p is prev (a checked hash) and the digest's hex is h: both are lowercase hex
                        if p == prev and int(s) == seq + 1 and (g in flats or _flat(g, flats)):
                            d = sha256(b"{" + line[75:]).digest()
                            if d.hex() != h:
                                raise Fallback  # the pattern proved the line canonical: its hash is wrong
                            seq += 1
                            add_id(r)
                            if len(seen_ids) != seq - before:
                                raise Fallback
                            hashes += d
                            prev = digest = h
                            record = None
                            continue
                fast = _fast_line(line, validators)
                if fast is not None:
                    data, record = fast
                else:
                    data, record = _exact_line(line, decode, floats, validators, encode)
                get = data.get
                key = get("schema")
                if type(key) is str and key.encode() not in shapes:
                    shapes[key.encode()] = _shape_of(data, key, run_id) if shaped else None
                digest = get("hash")
                rid = get("record_id")
                s_ = get("seq")
                if prev is None:  # the range's first line: where it starts is the stitcher's to check
                    prev = get("prev_hash")
                    seq = s_ if type(s_) is int else 0
                    out.first_seq, out.first_prev = seq, str(prev)
                    before = seq - 1  # seqs before the range's first
                else:
                    seq += 1
                if (
                    s_ != seq or type(s_) is not int
                    or get("prev_hash") != prev
                    or get("run_id") != run_id
                    or type(rid) is not str
                    or type(digest) is not str
                ):
                    raise Fallback
                add_id(rid)  # one lookup: a repeated id leaves the set as it was
                if len(seen_ids) != seq - before:
                    raise Fallback
                hashes += fromhex(digest)
                prev = digest
                if type(record) is RunRecord:
                    if seq == 1 and record.phase != "start":
                        raise Fallback
                    run_records.append(Line(seq, {"seq": seq, "hash": digest}, record))
                elif seq == 1:
                    raise Fallback
                attachments = get("attachments")
                if attachments:
                    linked.append(Line(seq, {"seq": seq, "attachments": attachments}, None))
    out.torn = torn[0] if torn else 0
    if prev is not None:
        out.last = (seq, digest, record)
    return out


def _shape_of(data: dict[str, Any], schema: str, run_id: str) -> Shape | None:
    """The line shape of a record like ``data`` (not a run_record's: those are read whole)."""
    cls = record_class(data)
    type_ = data.get("type")
    if cls is None or cls is RunRecord or type(type_) is not str:
        return None
    return line_shape(cls, schema, type_, run_id)


def _flat(text: str, accepted: set[str]) -> bool:
    if not flat_ok(text):
        return False
    if len(accepted) >= FLAT_MEMO:
        accepted.clear()
        accepted.add("")
    accepted.add(text)
    return True


def _fast_line(line: bytes, validators: _Validators) -> tuple[dict[str, Any], Record | None] | None:
    """(record dict, its model or None) of a line as the writer writes it, or None: "not sure", for
    ``_exact_line`` to decide and name — a mismatch here is never taken as proof of tampering.

    orjson decodes; the record validates — by its class's ``plain_check`` (no model built: the
    model is None) or else by pydantic — and its members are ``_PLAIN`` (evidence.verify_plain);
    the line is byte for byte hash + orjson's sorted compact JSON (RFC 8785 for a ``_PLAIN`` tree,
    evidence.canonical) and that hashes to the hash. A run_record is always built (its phase and
    outcome are read later)."""
    try:
        data = _loads(line)
        if type(data) is not dict or not line.startswith(_PREFIX):
            return None
        key = (data.get("schema"), data.get("type"))
        cached = validators.get(key)
        if cached is None:
            if type(key[0]) is not str or type(key[1]) is not str:
                return None
            cls = record_class(data)
            if cls is None:
                return None
            cached = validators[key] = (cls.__pydantic_validator__.validate_python, raw_walked(cls),
                                        None if cls is RunRecord else plain_check(cls, ("hash",)))
        check = cached[2]
        record: Record | None = None
        if check is None or not check(data):
            record = cached[0](data)
            if not plain_members(data, cached[1]):
                return None
        digest = data.pop("hash")
        canonical = _dumps(data, None, SORT_KEYS)
        if canonical.isascii():
            if line[75:] != canonical[1:]:
                return None
        elif (record is None and _kind(data) != _PLAIN) or line != hashed_line(canonical.decode(), digest).encode():
            return None  # plain_check leaves non-ASCII keys to this walk
        # line[:9] is _PREFIX (above): with these, line[:75] is exactly _PREFIX + digest + '",'
        if not line.startswith(digest.encode(), 9) or line[73:75] != b'",' or _sha256(canonical).hexdigest() != digest:
            return None
        data["hash"] = digest
    except Exception:  # not sure: the exact path decides and names it
        return None
    return data, record


def _exact_line(
    line: bytes, decode: Callable[[str], Any], floats: list[str],
    validators: _Validators,
    encode: Callable[[Any], str],
) -> tuple[dict[str, Any], Record]:
    """One line the fast path did not vouch for, checked as before orjson: the json scanner (its
    hooks see every float and long integer), the model, then hash + canonical JSON or ``jsonl_line``
    byte for byte; ``Fallback`` at anything wrong."""
    try:
        text = line.decode("utf-8")
        if floats:
            floats.clear()
        data = decode(text)
    except ValueError as e:
        raise Fallback from e
    if type(data) is not dict:
        raise Fallback
    digest = data.get("hash")
    if type(digest) is not str:
        raise Fallback
    key = (data.get("schema"), data.get("type"))
    named = type(key[0]) is str and type(key[1]) is str
    cached = validators.get(key) if named else None
    if cached is None:
        cls = record_class(data)
        if cls is None:
            raise Fallback
        cached = (cls.__pydantic_validator__.validate_python, raw_walked(cls), None)
        if named:
            validators[key] = cached
    try:
        record = cached[0](data)
        plain = not floats or all(_same_in_both(x) for x in floats)
        if text.startswith(HASH_PREFIX):
            # A line as the writer writes it: hash, then the canonical JSON. One encoding
            # gives both the hash input and the line it must be, byte for byte. The writer uses
            # this form only for a tree its fast encoder writes (canonical_form): never for one
            # with a key beyond the BMP, which the exact pass (verify_exact) refuses here.
            if not plain or not (text.isascii() or plain_json_text(text) or _kind(data) == _PLAIN):
                raise Fallback
            del data["hash"]
            canonical = encode(data)
            # An ASCII canonical text has nothing for hashed_line to escape: the line is hash +
            # canonical. Otherwise U+2028, U+2029 and NEL are escaped in the line, raw in the hash input.
            same = text[75:] == canonical[1:] if canonical.isascii() else text == hashed_line(canonical, digest)
            if not same or text[:75] != f'{HASH_PREFIX}{digest}",' or (
                _sha256(canonical.encode()).hexdigest() != digest
            ):
                raise Fallback
            data["hash"] = digest
        elif (record_hash(data, plain=not floats and plain_json_text(text)) != digest
              or text != jsonl_line(data)):
            raise Fallback
    except Exception as e:  # invalid, NaN, unencodable: the full pass says which
        raise Fallback from e
    return data, record


def stream_lines(folder: RunFolder, run_id: str) -> Stream:
    """One pass over ``records.jsonl`` that holds only the previous hash, the seq, the record ids
    seen, one 32-byte digest per record and the attachment links. It proves an intact chain (each
    line a valid record, its own serialisation, its hash recomputing, seqs 1..n in order, links
    unbroken, ids unique, the run opened by a run_record); at the first anything else it raises
    ``Fallback`` and the full pass, which holds every record, names each problem precisely.

    A large file is cut into byte ranges at line starts, scanned by worker processes side by side
    (evidence.verify_parallel); the ranges must meet exactly (seq and hash), their ids be disjoint."""
    from evidence.verify_parallel import scan_parts

    parts = scan_parts(str(folder.records), run_id)
    out = Stream()
    id_sets: list[set[str]] = []  # each range's ids: checked pairwise, never copied into one set
    expect_seq, expect_prev = 1, GENESIS_HASH
    for part in parts:
        if part.last is None:
            if part.torn:
                out.torn = part.torn
            continue
        if part.first_seq != expect_seq or part.first_prev != expect_prev:
            raise Fallback
        if any(not ids.isdisjoint(part.ids or part.id_list) for ids in id_sets):
            raise Fallback
        if part is not parts[-1]:
            id_sets.append(part.ids or set(part.id_list))
        out.hashes += part.hashes
        out.run_records += part.run_records
        out.linked += part.linked
        seq, digest, record = part.last
        expect_seq, expect_prev = seq + 1, digest
        out.last = Line(seq, {"seq": seq, "hash": digest}, record if type(record) is RunRecord else None)
        out.count = seq
        out.torn = part.torn
    return out
