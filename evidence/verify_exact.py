"""The exact, in-memory pass of ``verify``: every record held, so each problem is named precisely.

Runs when the streaming pass (evidence.verify_stream) meets anything out of the ordinary. Each
line must be a valid record of its type, byte-for-byte the writer's serialisation of it, with a
hash that recomputes; seqs run gap-free from 1 and ``prev_hash`` links, checked by seq so a swap
reads as a swap and a deletion as a gap, never as a broken chain everywhere.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from pydantic import ValidationError

from evidence.canonical import canonical_form, record_hash
from evidence.record_lines import HASH_PREFIX, hashed_line, jsonl_line
from evidence.records import GENESIS_HASH, Record, RunRecord, parse_record
from evidence.runfolder import RunFolder
from evidence.verify_report import Line, VerifyReport, int_seq, where


def _validation_summary(e: ValidationError) -> str:
    # Locations and messages only: input values are deliberately not echoed.
    parts = [f"{'.'.join(str(p) for p in err['loc']) or '(record)'}: {err['msg']}" for err in e.errors()[:3]]
    more = f" (+{e.error_count() - 3} more)" if e.error_count() > 3 else ""
    return "; ".join(parts) + more


# Python names of aliased fields (``schema_`` for ``schema``): pydantic's ``populate_by_name`` accepts
# them, but the writer only ever writes the alias, so a line spelling one was not written by it.
_FIELD_NAMES_NOT_WRITTEN = frozenset(
    name for name, f in Record.model_fields.items() if f.alias is not None and f.alias != name
)


@functools.lru_cache(maxsize=16384)
def _parse(text: str) -> tuple[Record | None, str | None]:
    """The typed record of one line (frozen, so safe to share), or why it is invalid; cached on the text."""
    data = json.loads(text)
    spelled = _FIELD_NAMES_NOT_WRITTEN & data.keys() if isinstance(data, dict) else frozenset()
    if spelled:
        names = ", ".join(sorted(spelled))
        return None, f"not a valid {data.get('type')} record — {names}: not a field name the writer writes"
    try:
        return parse_record(data), None
    except ValidationError as e:
        return None, f"not a valid {data.get('type')} record — {_validation_summary(e)}"
    except ValueError as e:
        return None, str(e)


def read_lines(folder: RunFolder, report: VerifyReport, finished: bool, empty_ok: bool = False) -> list[Line]:
    try:
        raw = folder.records.read_bytes()
    except FileNotFoundError:
        if empty_ok:
            report.notes.append("records.jsonl was never created: the run stopped before its first record")
        else:
            report.problem("records.jsonl: missing")
        return []
    except OSError as e:
        report.problem(f"records.jsonl: cannot be read ({e.strerror or e})")
        return []
    chunks = raw.split(b"\n")
    torn = chunks.pop()  # bytes after the last newline: empty unless the last write was cut
    out: list[Line] = []
    for i, chunk in enumerate(chunks, start=1):
        if not chunk.strip():
            report.problem(f"records.jsonl line {i}: empty line")
            continue
        try:
            data = json.loads(chunk.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            report.problem(f"records.jsonl line {i}: not valid JSON")
            continue
        if not isinstance(data, dict):
            report.problem(f"records.jsonl line {i}: not a JSON object")
            continue
        text = chunk.decode("utf-8")
        record, invalid = _parse(text)
        if invalid is not None:
            report.problem(f"{where(i, data.get('seq'))}: {invalid}")
        out.append(Line(i, data, record, text))
    if torn:
        torn_line(report, len(chunks) + 1, len(torn), finished)
    return out


def torn_line(report: VerifyReport, line_no: int, size: int, finished: bool) -> None:
    """Bytes after the last newline: a problem in a finished run, the kill's last write otherwise."""
    at = f"records.jsonl line {line_no}"
    if finished:
        report.problem(f"{at}: incomplete line ({size} bytes, no newline) — appended or cut")
    else:
        report.notes.append(f"{at}: incomplete final write ({size} bytes) ignored — the run was killed")


@functools.lru_cache(maxsize=16384)
def _self_check(text: str) -> str | None:
    """The hash and byte-form check of one line, cached on its exact text (a pure function of it), so
    re-verifying (``--all``, repeated checks) only canonicalises lines it has not seen before."""
    d = json.loads(text)
    problem = _self_check_data(d)
    if problem is None and (text != jsonl_line(d) or (text.startswith(HASH_PREFIX) and text != _hashed(d))):
        return "line is not the writer's serialisation of its record — bytes edited (the parsed values are unchanged)"
    return problem


def _hashed(d: dict[str, Any]) -> str | None:
    """The line the writer writes for ``d`` in its hash-first form (None when it would not use it)."""
    body = {k: v for k, v in d.items() if k != "hash"}
    canonical, fast = canonical_form(body)
    return hashed_line(canonical, str(d.get("hash"))) if fast else None


def _self_check_data(d: dict[str, Any]) -> str | None:
    try:
        if d.get("hash") != record_hash(d):
            return "hash mismatch — record edited"
    except Exception as e:
        return f"cannot be canonicalised ({type(e).__name__}) — record edited"
    return None


def check_chain(lines: list[Line], run_id: str, report: VerifyReport) -> None:
    """Order, gaps, duplicates, links and self-hashes; one precise message per tampering, no cascades.

    Links are checked by seq (record s must point at record s-1 wherever it sits), order by
    position, so a swap reads as a swap and a deletion as a gap, not as a broken chain everywhere.
    """
    by_seq: dict[int, Line] = {}
    for ln in lines:
        s = int_seq(ln.data)
        if s is not None:
            by_seq.setdefault(s, ln)
    expected = 1
    seen_ids: dict[str, str] = {}
    seen_seqs: set[int] = set()
    for ln in lines:
        d = ln.data
        seq = int_seq(d)
        at = where(ln.line_no, d.get("seq"))
        rid = d.get("record_id")
        duplicate = isinstance(rid, str) and rid in seen_ids
        if duplicate:
            report.problem(f"{at}: duplicate of {seen_ids[str(rid)]} (same record_id) — record duplicated")
        elif isinstance(rid, str):
            seen_ids[rid] = at
        if seq is None:
            report.problem(f"{at}: seq missing or not an integer")
        elif not duplicate:
            if seq in seen_seqs:
                report.problem(f"{at}: seq {seq} appears twice — a record was inserted or duplicated")
            elif seq > expected:
                missing = list(range(expected, seq))
                span = str(expected) if len(missing) == 1 else f"{expected}..{seq - 1}"
                if all(m in by_seq for m in missing):
                    report.problem(f"{at}: out of order — seq {seq} comes before seq {span} (records reordered)")
                else:
                    report.problem(f"{at}: seq gap — seq {span} missing (record deleted)")
            elif seq < expected:
                report.problem(f"{at}: out of order — seq {seq} after seq {expected - 1} (records reordered)")
            seen_seqs.add(seq)
            expected = max(expected, seq + 1)
        if d.get("run_id") != run_id:
            report.problem(f"{at}: run_id {d.get('run_id')!r} is not this run ({run_id})")
        self_problem = _self_check(ln.text) if ln.text else _self_check_data(d)
        if self_problem is not None:
            report.problem(f"{at}: {self_problem}")
        if seq is None or duplicate:
            continue
        if seq == 1:
            if d.get("prev_hash") != GENESIS_HASH:
                report.problem(f"{at}: prev_hash is not the genesis hash — the chain does not start here")
        elif (before := by_seq.get(seq - 1)) is not None and d.get("prev_hash") != before.data.get("hash"):
            report.problem(
                f"{at}: prev_hash does not match the hash of {where(before.line_no, seq - 1)} — "
                "that record was edited and rehashed, or a record was inserted or replaced"
            )
    if lines:
        first = lines[0].record
        if not (isinstance(first, RunRecord) and first.phase == "start"):
            report.problem(
                f"{where(lines[0].line_no, lines[0].data.get('seq'))}: the chain does not open "
                "with a run_record (phase start)"
            )
