"""The fast, streaming pass of ``verify``: proves an intact chain holding 32 bytes per record.

At the first thing out of the ordinary it raises ``Fallback`` and the exact pass
(evidence.verify_exact), which holds every record, names each problem.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from evidence.canonical import plain_json_text, record_hash
from evidence.records import GENESIS_HASH, RECORD_TYPES, RunRecord
from evidence.runfolder import RunFolder
from evidence.verify_report import Line
from evidence.writer import jsonl_line


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


def stream_lines(folder: RunFolder, run_id: str) -> Stream:
    """One pass over ``records.jsonl`` that holds only the previous hash, the seq, the record ids
    seen, one 32-byte digest per record and the attachment links. It proves an intact chain (each
    line a valid record, its own serialisation, its hash recomputing, seqs 1..n in order, links
    unbroken, ids unique, the run opened by a run_record); at the first anything else it raises
    ``Fallback`` and the full pass, which holds every record, names each problem precisely."""
    out = Stream()
    # A float, NaN/Infinity or an integer beyond 15 digits in the line: its hash takes the full encoder.
    floats: list[str] = []

    def saw_float(s: str) -> float:
        floats.append(s)
        return float(s)

    def saw_int(s: str) -> int:
        if len(s) > 15:
            floats.append(s)
        return int(s)

    decode = json.JSONDecoder(parse_float=saw_float, parse_int=saw_int, parse_constant=saw_float).decode
    seen_ids: set[str] = set()
    prev = GENESIS_HASH
    with open(folder.records, "rb") as f:
        for seq, chunk in enumerate(f, start=1):
            if not chunk.endswith(b"\n"):
                out.torn = len(chunk)
                break
            try:
                text = chunk[:-1].decode("utf-8")
                floats.clear()
                data = decode(text)
            except ValueError as e:
                raise Fallback from e
            if not isinstance(data, dict):
                raise Fallback
            digest = data.get("hash")
            rid = data.get("record_id")
            if (
                data.get("seq") != seq or type(data.get("seq")) is not int
                or data.get("prev_hash") != prev
                or data.get("run_id") != run_id
                or not isinstance(rid, str) or rid in seen_ids
                or not isinstance(digest, str)
            ):
                raise Fallback
            cls = RECORD_TYPES.get(str(data.get("type")))
            if cls is None:
                raise Fallback
            try:
                record = cls.model_validate(data)
                if record_hash(data, plain=not floats and plain_json_text(text)) != digest or text != jsonl_line(data):
                    raise Fallback
            except Exception as e:  # invalid, NaN, unencodable: the full pass says which
                raise Fallback from e
            seen_ids.add(rid)
            out.hashes += bytes.fromhex(digest)
            prev = digest
            slim = Line(seq, {"seq": seq, "hash": digest}, record if isinstance(record, RunRecord) else None)
            if seq == 1 and not (isinstance(record, RunRecord) and record.phase == "start"):
                raise Fallback
            if isinstance(record, RunRecord):
                out.run_records.append(slim)
            if data.get("attachments"):
                out.linked.append(Line(seq, {"seq": seq, "attachments": data["attachments"]}, None))
            out.last = slim
            out.count = seq
    return out
