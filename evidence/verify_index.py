"""The folder against the index (evidence.verify), when an index is at hand and holds the run.

The index's chain head must be in ``records.jsonl`` (a tail cut behind its back is caught), at most
one group of records may follow it (the crash window between writing a group and indexing it; more
were appended behind its back), every indexed record's hash must be the file's,
and a finished run's chain head, record count, status and exit code must be the same on both sides.
Each disagreement names the side that differs from the chain (the chain is what the hashes prove).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evidence.index import EvidenceIndex
from evidence.index_chain import IndexedChain, indexed_chain
from evidence.records import GENESIS_HASH
from evidence.runfolder import RunInfo
from evidence.verify_report import ChainFacts, VerifyReport

_MAX_INDEX_MISMATCHES = 5
# The writer indexes a group right after writing (and fsyncing) it: a process killed in between
# leaves that group in the file but not in the index. The largest group the runner writes is two
# records (a step's allow decision and its intent: runner/steps.py); more is an append.
UNINDEXED_GROUP = 2


def check_index_against(
    index: EvidenceIndex,
    run_id: str,
    info: RunInfo | None,
    facts: ChainFacts,
    seq_of_hash: Callable[[str], Any],
    hash_at_seq: Callable[[int], Any],
    report: VerifyReport,
) -> None:
    row = indexed_chain(index, run_id)
    if row is None:
        report.notes.append("run is not in the index: a cut tail cannot be detected")
        return
    report.index_checked = True
    head = row.chain_head
    at = seq_of_hash(head) if head != GENESIS_HASH else None
    if head != GENESIS_HASH and at is None:
        report.problem(
            f"index: chain head {head[:12]}… (record {row.record_count}) is not in records.jsonl — "
            "records were cut from the tail (or rewritten) behind the index's back"
        )
    elif head != GENESIS_HASH and isinstance(at, int) and report.record_count > at:
        behind = report.record_count - at
        if behind > UNINDEXED_GROUP:
            report.problem(
                f"records.jsonl: {behind} records after the index's chain head (seq {at}) — "
                "records appended behind the index's back"
            )
        else:
            report.notes.append(
                f"records.jsonl: {behind} record(s) after the index's chain head (seq {at}): the last group written "
                "before the process stopped, not yet indexed (`warden evidence recover` indexes them)"
            )
    elif facts.has_lines and row.record_count == 0 and report.record_count > 1:
        report.problem(f"records.jsonl: {report.record_count} records but the index saw none — records appended")
    mismatches = 0
    for seq, indexed_hash in row.hashes:
        in_file = hash_at_seq(seq)
        if in_file is not None and in_file != indexed_hash:
            mismatches += 1
            if mismatches <= _MAX_INDEX_MISMATCHES:
                report.problem(f"index: record seq {seq} has a different hash in records.jsonl — record rewritten")
    if mismatches > _MAX_INDEX_MISMATCHES:
        report.problem(f"index: {mismatches - _MAX_INDEX_MISMATCHES} more records differ from records.jsonl")
    _compare_outcome(row, info, facts, report)


def _compare_outcome(row: IndexedChain, info: RunInfo | None, facts: ChainFacts, report: VerifyReport) -> None:
    """A finished run: head, count, status and exit code agree between the index row and the folder."""
    closing = facts.closing
    folder_done = closing is not None or (info is not None and info.finished)
    if row.status == "running":
        if folder_done and row.chain_head == report.head:
            report.notes.append(
                "index still says running but the folder is closed: its process ended before updating the index "
                "(`warden evidence recover` syncs it)"
            )
        return
    if not folder_done and row.status == "evidence_error" and row.exit_code == 5:
        # Evidence could not be written: the folder could not record its own end, the index did.
        # Consistent only when the index names exactly the chain the folder holds.
        if row.chain_head == report.head and row.record_count == report.record_count:
            report.notes.append(
                "index says evidence_error (exit 5): evidence could not be written, so the folder has no "
                "closing run_record; its chain is the one the index names"
            )
        else:
            report.problem(
                f"index says evidence_error (exit 5) after {row.record_count} records (head "
                f"{row.chain_head[:12]}…) but the folder holds {report.record_count} (head {report.head[:12]}…) "
                "— index row or folder altered"
            )
        return
    if not folder_done:
        report.problem(
            f"index says the run ended ({row.status}, exit {row.exit_code}, {row.record_count} records) but the "
            "folder's run.json says running and its chain has no closing run_record — the folder's tail was cut "
            "and run.json reset"
        )
        return
    stale_run_json = info is not None and not info.finished  # its final rewrite failed (exit 5)
    if stale_run_json and row.status == "evidence_error" and row.exit_code == 5:
        report.notes.append("index says evidence_error (exit 5): run.json's final rewrite failed")
        return
    if row.chain_head != report.head or row.record_count != report.record_count:
        report.problem(
            f"index: chain head {row.chain_head[:12]}… / {row.record_count} records, but the folder's is "
            f"{report.head[:12]}… / {report.record_count} — index row or folder altered"
        )
    chain = (closing.outcome, closing.exit_code) if closing is not None else None
    run_json = (info.status, info.exit_code) if info is not None and info.finished else None
    folder_says = chain or run_json
    indexed = (row.status, row.exit_code)
    if folder_says is None or indexed == folder_says:
        return
    source = "its closing run_record" if chain is not None else "run.json"
    if chain is not None and run_json is not None:
        source = "run.json and its closing run_record" if run_json == chain else "its closing run_record"
    side = "the index row was altered" if run_json in (None, folder_says) else (
        "run.json and the index row were altered" if run_json == indexed else "the index row was altered"
    )
    report.problem(
        f"index: status {row.status!r}, exit code {row.exit_code} but the folder ({source}) says "
        f"{folder_says[0]!r}, exit code {folder_says[1]} — {side}"
    )
