"""``warden evidence verify``: recompute a run's chain and attachments and name every problem.

What it proves: each line is a valid record of its type; seqs run gap-free from 1; each
``prev_hash`` links to the previous record; each ``hash`` recomputes (RFC 8785 + SHA-256); every
attachment exists with its sha256 and no unreferenced file sits in ``screenshots/``; a finished
run's ``run.json`` chain head and count match the file; the index's chain head is still in the
file (so a tail cut behind the index's back is caught). A run still marked ``running`` (killed
mid-way) verifies up to its last record and is reported as ``interrupted``.

Each line must also be byte-for-byte the writer's serialisation of the record it holds, so an
edit that leaves the parsed JSON equal (an escape spelled differently, a space) is caught too:
every single changed byte of ``records.jsonl`` is a problem.

With ``public_key`` the Ed25519 signature in ``run.json`` (evidence.signing) must be valid for the
run's chain head: a whole-chain rewrite with recomputed hashes is then caught as well.

Known limit: with no index and a run not finished, a cut tail cannot be told from a run killed
early; the report says so in its notes.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from evidence.canonical import plain_json_text, record_hash, sha256_file
from evidence.index import EvidenceIndex
from evidence.records import GENESIS_HASH, RECORD_TYPES, Record, RunRecord, parse_record
from evidence.runfolder import RunFolder, RunInfo
from evidence.signing import check_signature
from evidence.writer import jsonl_line

_MAX_INDEX_MISMATCHES = 5


@dataclass
class VerifyReport:
    run_id: str
    folder: Path
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # facts worth saying that are not tampering
    record_count: int = 0
    head: str = GENESIS_HASH
    status: str = "unknown"  # run.json status; "interrupted" for a run that never closed
    attachments_checked: int = 0

    def problem(self, text: str) -> None:
        self.ok = False
        self.problems.append(text)


def _where(line_no: int, seq: Any) -> str:
    return f"record {line_no} (seq {seq})" if isinstance(seq, int) else f"record {line_no}"


def _validation_summary(e: ValidationError) -> str:
    # Locations and messages only: input values are deliberately not echoed.
    parts = [f"{'.'.join(str(p) for p in err['loc']) or '(record)'}: {err['msg']}" for err in e.errors()[:3]]
    more = f" (+{e.error_count() - 3} more)" if e.error_count() > 3 else ""
    return "; ".join(parts) + more


@dataclass
class _Line:
    line_no: int
    data: dict[str, Any]
    record: Record | None
    text: str = ""


@functools.lru_cache(maxsize=16384)
def _parse(text: str) -> tuple[Record | None, str | None]:
    """The typed record of one line (frozen, so safe to share), or why it is invalid; cached on the text."""
    data = json.loads(text)
    try:
        return parse_record(data), None
    except ValidationError as e:
        return None, f"not a valid {data.get('type')} record — {_validation_summary(e)}"
    except ValueError as e:
        return None, str(e)


def _read_lines(folder: RunFolder, report: VerifyReport, finished: bool, empty_ok: bool = False) -> list[_Line]:
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
    out: list[_Line] = []
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
            report.problem(f"{_where(i, data.get('seq'))}: {invalid}")
        out.append(_Line(i, data, record, text))
    if torn:
        where = f"records.jsonl line {len(chunks) + 1}"
        if finished:
            report.problem(f"{where}: incomplete line ({len(torn)} bytes, no newline) — appended or cut")
        else:
            report.notes.append(f"{where}: incomplete final write ({len(torn)} bytes) ignored — the run was killed")
    return out


def _int_seq(d: dict[str, Any]) -> int | None:
    seq = d.get("seq")
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


@functools.lru_cache(maxsize=16384)
def _self_check(text: str) -> str | None:
    """The hash and byte-form check of one line, cached on its exact text (a pure function of it), so
    re-verifying (``--all``, repeated checks) only canonicalises lines it has not seen before."""
    d = json.loads(text)
    problem = _self_check_data(d)
    if problem is None and text != jsonl_line(d):
        return "line is not the writer's serialisation of its record — bytes edited (the parsed values are unchanged)"
    return problem


def _self_check_data(d: dict[str, Any]) -> str | None:
    try:
        if d.get("hash") != record_hash(d):
            return "hash mismatch — record edited"
    except Exception as e:
        return f"cannot be canonicalised ({type(e).__name__}) — record edited"
    return None


def _check_chain(lines: list[_Line], run_id: str, report: VerifyReport) -> None:
    """Order, gaps, duplicates, links and self-hashes; one precise message per tampering, no cascades.

    Links are checked by seq (record s must point at record s-1 wherever it sits), order by
    position, so a swap reads as a swap and a deletion as a gap, not as a broken chain everywhere.
    """
    by_seq: dict[int, _Line] = {}
    for ln in lines:
        s = _int_seq(ln.data)
        if s is not None:
            by_seq.setdefault(s, ln)
    expected = 1
    seen_ids: dict[str, str] = {}
    seen_seqs: set[int] = set()
    for ln in lines:
        d = ln.data
        seq = _int_seq(d)
        where = _where(ln.line_no, d.get("seq"))
        rid = d.get("record_id")
        duplicate = isinstance(rid, str) and rid in seen_ids
        if duplicate:
            report.problem(f"{where}: duplicate of {seen_ids[str(rid)]} (same record_id) — record duplicated")
        elif isinstance(rid, str):
            seen_ids[rid] = where
        if seq is None:
            report.problem(f"{where}: seq missing or not an integer")
        elif not duplicate:
            if seq in seen_seqs:
                report.problem(f"{where}: seq {seq} appears twice — a record was inserted or duplicated")
            elif seq > expected:
                missing = list(range(expected, seq))
                span = str(expected) if len(missing) == 1 else f"{expected}..{seq - 1}"
                if all(m in by_seq for m in missing):
                    report.problem(f"{where}: out of order — seq {seq} comes before seq {span} (records reordered)")
                else:
                    report.problem(f"{where}: seq gap — seq {span} missing (record deleted)")
            elif seq < expected:
                report.problem(f"{where}: out of order — seq {seq} after seq {expected - 1} (records reordered)")
            seen_seqs.add(seq)
            expected = max(expected, seq + 1)
        if d.get("run_id") != run_id:
            report.problem(f"{where}: run_id {d.get('run_id')!r} is not this run ({run_id})")
        self_problem = _self_check(ln.text) if ln.text else _self_check_data(d)
        if self_problem is not None:
            report.problem(f"{where}: {self_problem}")
        if seq is None or duplicate:
            continue
        if seq == 1:
            if d.get("prev_hash") != GENESIS_HASH:
                report.problem(f"{where}: prev_hash is not the genesis hash — the chain does not start here")
        elif (before := by_seq.get(seq - 1)) is not None and d.get("prev_hash") != before.data.get("hash"):
            report.problem(
                f"{where}: prev_hash does not match the hash of {_where(before.line_no, seq - 1)} — "
                "that record was edited and rehashed, or a record was inserted or replaced"
            )
    if lines:
        first = lines[0].record
        if not (isinstance(first, RunRecord) and first.phase == "start"):
            report.problem(
                f"{_where(lines[0].line_no, lines[0].data.get('seq'))}: the chain does not open "
                "with a run_record (phase start)"
            )


def _check_attachments(
    folder: RunFolder, lines: list[_Line], report: VerifyReport, finished: bool, count: int | None = None
) -> None:
    root = folder.root.resolve()
    referenced: set[Path] = set()
    for ln in lines:
        atts = ln.data.get("attachments")
        if not isinstance(atts, list):
            continue
        for att in atts:
            if not isinstance(att, dict):
                continue
            rel = str(att.get("path", ""))
            target = (root / rel).resolve()
            if not rel or rel.startswith("/") or not target.is_relative_to(root):
                where = _where(ln.line_no, ln.data.get("seq"))
                report.problem(f"{where}: attachment path {rel!r} leaves the run folder")
                continue
            referenced.add(target)
            report.attachments_checked += 1
            if not target.is_file():
                report.problem(f"{rel}: missing — attachment deleted (linked from "
                               f"{_where(ln.line_no, ln.data.get('seq'))})")
                continue
            try:
                actual = sha256_file(target)
            except OSError as e:
                report.problem(f"{rel}: cannot be read ({e.strerror or e})")
                continue
            if actual != att.get("sha256"):
                report.problem(f"{rel}: sha256 mismatch — attachment changed")
    shots = folder.screenshots
    if shots.is_dir():
        for path in sorted(p for p in shots.rglob("*") if p.is_file() or p.is_symlink()):
            if path.resolve() in referenced:
                continue
            rel = path.relative_to(folder.root).as_posix()
            prefix = re.match(r"^(\d+)-", path.name)
            next_seq = (len(lines) if count is None else count) + 1
            if not finished and prefix is not None and int(prefix.group(1)) == next_seq:
                # Named for the next seq: saved just before the kill, its record never written.
                report.notes.append(f"{rel}: saved for seq {prefix.group(1)}, whose record was never written")
            else:
                report.problem(f"{rel}: extra attachment — not referenced by any record")


def _check_run_info(info: RunInfo | None, lines: list[_Line], report: VerifyReport) -> None:
    last = lines[-1].record if lines else None
    closed = isinstance(last, RunRecord) and last.phase == "end"
    starts = [ln.record for ln in lines if isinstance(ln.record, RunRecord) and ln.record.phase == "start"]
    if info is None:
        report.status = str(last.outcome) if closed and isinstance(last, RunRecord) else "interrupted"
        return
    if starts and isinstance(starts[0], RunRecord) and starts[0].mission_sha256 != info.mission_sha256:
        report.problem("run.json: mission_sha256 differs from the opening run_record")
    if not info.finished:
        report.status = "interrupted"
        if closed and isinstance(last, RunRecord):
            report.status = str(last.outcome or "interrupted")
            report.notes.append("run.json still says running but the chain is closed — run.json was not updated")
        else:
            report.notes.append("run never closed (no end run_record): verified up to its last record")
        return
    report.status = info.status
    if info.chain_head != report.head:
        report.problem(
            f"run.json: chain_head {info.chain_head[:12]}… is not the last record's hash {report.head[:12]}… — "
            "records were removed, added or rewritten after the run ended"
        )
    if info.record_count != report.record_count:
        report.problem(f"run.json: record_count {info.record_count} but records.jsonl holds {report.record_count}")
    if not closed and info.status != "evidence_error" and not (info.status == "interrupted" and not lines):
        report.problem(f"run ended ({info.status}) but the last record is not its closing run_record")


def _check_index(index: EvidenceIndex, run_id: str, lines: list[_Line], report: VerifyReport) -> None:
    by_hash = {ln.data.get("hash"): ln.data.get("seq") for ln in lines}
    file_by_seq = {ln.data.get("seq"): ln.data.get("hash") for ln in lines}
    _check_index_against(index, run_id, bool(lines), by_hash.get, file_by_seq.get, report)


def _check_index_against(
    index: EvidenceIndex,
    run_id: str,
    has_lines: bool,
    seq_of_hash: Callable[[str], Any],
    hash_at_seq: Callable[[int], Any],
    report: VerifyReport,
) -> None:
    row = index.get_run(run_id)
    if row is None:
        report.notes.append("run is not in the index: a cut tail cannot be detected")
        return
    head = row.chain_head
    at = seq_of_hash(head) if head != GENESIS_HASH else None
    if head != GENESIS_HASH and at is None:
        report.problem(
            f"index: chain head {head[:12]}… (record {row.record_count}) is not in records.jsonl — "
            "records were cut from the tail (or rewritten) behind the index's back"
        )
    elif head != GENESIS_HASH:
        if isinstance(at, int) and report.record_count > at + 1:
            report.problem(
                f"records.jsonl: {report.record_count - at} records after the index's chain head (seq {at}) — "
                "records appended behind the index's back"
            )
    elif has_lines and row.record_count == 0 and report.record_count > 1:
        report.problem(f"records.jsonl: {report.record_count} records but the index saw none — records appended")
    mismatches = 0
    for rec in index.records(run_id):
        in_file = hash_at_seq(rec.seq)
        if in_file is not None and in_file != rec.hash:
            mismatches += 1
            if mismatches <= _MAX_INDEX_MISMATCHES:
                report.problem(f"index: record seq {rec.seq} has a different hash in records.jsonl — record rewritten")
    if mismatches > _MAX_INDEX_MISMATCHES:
        report.problem(f"index: {mismatches - _MAX_INDEX_MISMATCHES} more records differ from records.jsonl")


def _check_signature(info: RunInfo | None, public_key: Ed25519PublicKey | None, report: VerifyReport) -> None:
    if public_key is not None:
        if info is None:
            report.problem("run.json: missing, so its signature cannot be checked")
            return
        if not info.finished:
            report.notes.append("run never closed: it has no signature to check (runs are signed at their end)")
            return
        problem = check_signature(info, public_key)
        if problem is not None:
            report.problem(problem)
        else:
            report.notes.append(f"signature valid (key {info.signing_key_id}): the chain head is the signed one")
        return
    if info is not None and info.signed:
        report.notes.append(
            f"run.json is signed by key {info.signing_key_id}; pass --public-key to check the signature"
        )
    elif info is not None and info.finished:
        report.notes.append(
            "run not signed: a rewrite of the whole chain with recomputed hashes and a fixed-up run.json "
            "is caught only by the index's chain head"
        )


class _Fallback(Exception):
    """The streaming pass met something out of the ordinary: the full, in-memory pass names it."""


@dataclass
class _Stream:
    """What the streaming pass keeps of an intact chain: no record bodies, 32 bytes of hash per record."""

    count: int = 0
    hashes: bytearray = field(default_factory=bytearray)  # SHA-256 digest of record seq i at [32(i-1), 32i)
    linked: list[_Line] = field(default_factory=list)  # lines with attachments (slim: seq + attachments)
    run_records: list[_Line] = field(default_factory=list)
    last: _Line | None = None
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


def _stream_lines(folder: RunFolder, run_id: str) -> _Stream:
    """One pass over ``records.jsonl`` that holds only the previous hash, the seq, the record ids
    seen, one 32-byte digest per record and the attachment links. It proves an intact chain (each
    line a valid record, its own serialisation, its hash recomputing, seqs 1..n in order, links
    unbroken, ids unique, the run opened by a run_record); at the first anything else it raises
    ``_Fallback`` and the full pass, which holds every record, names each problem precisely."""
    out = _Stream()
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
                raise _Fallback from e
            if not isinstance(data, dict):
                raise _Fallback
            digest = data.get("hash")
            rid = data.get("record_id")
            if (
                data.get("seq") != seq or type(data.get("seq")) is not int
                or data.get("prev_hash") != prev
                or data.get("run_id") != run_id
                or not isinstance(rid, str) or rid in seen_ids
                or not isinstance(digest, str)
            ):
                raise _Fallback
            cls = RECORD_TYPES.get(str(data.get("type")))
            if cls is None:
                raise _Fallback
            try:
                record = cls.model_validate(data)
                if record_hash(data, plain=not floats and plain_json_text(text)) != digest or text != jsonl_line(data):
                    raise _Fallback
            except Exception as e:  # invalid, NaN, unencodable: the full pass says which
                raise _Fallback from e
            seen_ids.add(rid)
            out.hashes += bytes.fromhex(digest)
            prev = digest
            slim = _Line(seq, {"seq": seq, "hash": digest}, record if isinstance(record, RunRecord) else None)
            if seq == 1 and not (isinstance(record, RunRecord) and record.phase == "start"):
                raise _Fallback
            if isinstance(record, RunRecord):
                out.run_records.append(slim)
            if data.get("attachments"):
                out.linked.append(_Line(seq, {"seq": seq, "attachments": data["attachments"]}, None))
            out.last = slim
            out.count = seq
    return out


def _verify_streaming(
    rf: RunFolder, info: RunInfo | None, index: EvidenceIndex | None,
    public_key: Ed25519PublicKey | None, report: VerifyReport,
) -> bool:
    """The fast path of ``verify_run``; False (report untouched) when the full pass must run."""
    finished = info is not None and info.finished
    try:
        st = _stream_lines(rf, rf.run_id)
    except (_Fallback, OSError):
        return False
    if st.count == 0:
        return False  # empty or missing file: the full pass words it
    if st.torn:
        where = f"records.jsonl line {st.count + 1}"
        if finished:
            report.problem(f"{where}: incomplete line ({st.torn} bytes, no newline) — appended or cut")
        else:
            report.notes.append(f"{where}: incomplete final write ({st.torn} bytes) ignored — the run was killed")
    report.record_count = st.count
    assert st.last is not None
    report.head = str(st.last.data["hash"])
    _check_attachments(rf, st.linked, report, finished=finished, count=st.count)
    # _check_run_info looks at the last line and the run_records only.
    tail = st.run_records if st.last in st.run_records else [*st.run_records, st.last]
    _check_run_info(info, tail, report)
    _check_signature(info, public_key, report)
    if index is not None:
        _check_index_against(index, rf.run_id, True, st.seq_of_hash, st.hash_at_seq, report)
    return True


def verify_run(
    folder: Path | str, index: EvidenceIndex | None = None, public_key: Ed25519PublicKey | None = None
) -> VerifyReport:
    """Verify one run folder; ``report.ok`` is False when anything was altered, removed or added."""
    rf = RunFolder(Path(folder).absolute())
    report = VerifyReport(run_id=rf.run_id, folder=rf.root)
    if not rf.root.is_dir():
        report.problem(f"{rf.root}: run folder not found")
        return report
    info: RunInfo | None = None
    try:
        info = rf.read_run_info()
    except FileNotFoundError:
        report.problem("run.json: missing")
    except (OSError, ValueError) as e:
        report.problem(f"run.json: unreadable or invalid ({type(e).__name__})")
    if info is not None and info.run_id != rf.run_id:
        report.problem(f"run.json: run_id {info.run_id!r} does not match the folder name {rf.run_id!r}")
    if not _verify_streaming(rf, info, index, public_key, report):
        _verify_in_memory(rf, info, index, public_key, report)
    if index is None and not (info is not None and info.finished):
        report.notes.append("no index given: a cut tail cannot be told from a run killed early")
    return report


def _verify_in_memory(
    rf: RunFolder, info: RunInfo | None, index: EvidenceIndex | None,
    public_key: Ed25519PublicKey | None, report: VerifyReport,
) -> None:
    """The full pass: every record in memory, so a reorder, gap or duplicate is named precisely."""
    lines = _read_lines(
        rf, report, finished=info is not None and info.finished,
        # A run that stopped before its first record: run.json says it holds none.
        empty_ok=info is not None and info.record_count == 0,
    )
    _check_chain(lines, rf.run_id, report)
    report.record_count = len(lines)
    if lines:
        last_hash = lines[-1].data.get("hash")
        report.head = last_hash if isinstance(last_hash, str) else ""
    _check_attachments(rf, lines, report, finished=info is not None and info.finished)
    _check_run_info(info, lines, report)
    _check_signature(info, public_key, report)
    if index is not None:
        _check_index(index, rf.run_id, lines, report)
