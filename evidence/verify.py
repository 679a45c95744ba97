"""``warden evidence verify``: recompute a run's chain and attachments and name every problem.

It judges the folder it is given and nothing else: every path inside a run folder is relative,
so a copy anywhere verifies offline (with only the public key for a signed run).

What it proves: each line is a valid record of its type; seqs run gap-free from 1; each
``prev_hash`` links to the previous record; each ``hash`` recomputes (RFC 8785 + SHA-256); every
attachment exists with its sha256 and no unreferenced file sits in ``screenshots/``; a finished
run's ``run.json`` chain head and count match the file and its status, exit code and outcome are
the closing run_record's; a run whose opening run_record names a signing key is signed by it. With
an index that holds the run: the index's chain head is still in the file (a tail cut behind its
back is caught) and a finished run's head, count, status and exit code agree on both sides. A run
still marked ``running`` (killed mid-way) verifies up to its last record, reported ``interrupted``.

Each line must also be byte-for-byte the writer's serialisation of the record it holds, so an
edit that leaves the parsed JSON equal (an escape spelled differently, a space) is caught too:
every single changed byte of ``records.jsonl`` is a problem.

With ``public_key`` the Ed25519 signature in ``run.json`` (evidence.signing) must be valid for the
run's chain head, count, status and exit code: a whole-chain rewrite with recomputed hashes is
then caught as well.

The passes: a streaming one (evidence.verify_stream) proves an intact chain with 32 bytes per
record; at anything unusual the exact one (evidence.verify_exact) holds every record and names
each problem. Then attachments (evidence.verify_attachments), ``run.json`` and the signature
(evidence.verify_outcome) and the index (evidence.verify_index).

Known limit: with no index and a run not finished, a cut tail cannot be told from a run killed
early; the report says so in its notes.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from evidence.index import EvidenceIndex
from evidence.runfolder import RunFolder, RunInfo
from evidence.verify_attachments import check_attachments
from evidence.verify_exact import check_chain, read_lines, torn_line
from evidence.verify_index import check_index_against
from evidence.verify_outcome import check_run_info, check_signature
from evidence.verify_report import VerifyReport, facts_of
from evidence.verify_stream import Fallback, stream_lines

__all__ = ["VerifyReport", "verify_run"]

ATTESTATION_FILE = "attestation.dsse.json"


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
    if (rf.root / ATTESTATION_FILE).exists():
        report.notes.append(
            f"{ATTESTATION_FILE}: a DSSE/in-toto attestation of this folder — not part of the chain, not checked "
            "here (check it with a DSSE verifier and the public key)"
        )
    return report


def _verify_streaming(
    rf: RunFolder, info: RunInfo | None, index: EvidenceIndex | None,
    public_key: Ed25519PublicKey | None, report: VerifyReport,
) -> bool:
    """The fast path of ``verify_run``; False (report untouched) when the full pass must run."""
    finished = info is not None and info.finished
    try:
        st = stream_lines(rf, rf.run_id)
    except (Fallback, OSError):
        return False
    if st.count == 0:
        return False  # empty or missing file: the full pass words it
    if st.torn:
        torn_line(report, st.count + 1, st.torn, finished)
    report.record_count = st.count
    assert st.last is not None
    report.head = str(st.last.data["hash"])
    check_attachments(rf, st.linked, report, finished=finished, count=st.count)
    facts = facts_of(st.tail())  # the outcome checks look at the run_records and the last line only
    check_run_info(info, facts, report)
    check_signature(info, facts, public_key, report)
    if index is not None:
        check_index_against(index, rf.run_id, info, facts, st.seq_of_hash, st.hash_at_seq, report)
    return True


def _verify_in_memory(
    rf: RunFolder, info: RunInfo | None, index: EvidenceIndex | None,
    public_key: Ed25519PublicKey | None, report: VerifyReport,
) -> None:
    """The full pass: every record in memory, so a reorder, gap or duplicate is named precisely."""
    lines = read_lines(
        rf, report, finished=info is not None and info.finished,
        # A run that stopped before its first record: run.json says it holds none.
        empty_ok=info is not None and info.record_count == 0,
    )
    check_chain(lines, rf.run_id, report)
    report.record_count = len(lines)
    if lines:
        last_hash = lines[-1].data.get("hash")
        report.head = last_hash if isinstance(last_hash, str) else ""
    check_attachments(rf, lines, report, finished=info is not None and info.finished)
    facts = facts_of(lines)
    check_run_info(info, facts, report)
    check_signature(info, facts, public_key, report)
    if index is not None:
        by_hash = {ln.data.get("hash"): ln.data.get("seq") for ln in lines}
        file_by_seq = {ln.data.get("seq"): ln.data.get("hash") for ln in lines}
        check_index_against(index, rf.run_id, info, facts, by_hash.get, file_by_seq.get, report)
