"""``run.json`` against the chain (evidence.verify): the outcome is proven, the signature is there.

``run.json`` is not hash-chained itself, so nothing in it is taken on trust: its mission sha256
must be the opening run_record's, a finished run's chain head and record count the file's, and its
``status``, ``exit_code`` and ``outcome`` what the closing run_record (inside the chain) says. The
opening run_record names the key the run is to be signed with (``signing_key_id``): a finished run
that names one must carry a signature by that key, checked with ``--public-key``.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from evidence.runfolder import RunInfo
from evidence.signing import check_signature as signature_problem
from evidence.verify_report import ChainFacts, VerifyReport


def check_run_info(info: RunInfo | None, facts: ChainFacts, report: VerifyReport) -> None:
    closing = facts.closing
    if closing is not None:
        report.exit_code = closing.exit_code
    if info is None:
        report.status = str(closing.outcome) if closing is not None else "interrupted"
        return
    if facts.start is not None and facts.start.mission_sha256 != info.mission_sha256:
        report.problem("run.json: mission_sha256 differs from the opening run_record")
    if not info.finished:
        report.status = "interrupted"
        if closing is not None:
            report.status = str(closing.outcome or "interrupted")
            report.notes.append("run.json still says running but the chain is closed — run.json was not updated")
        else:
            report.notes.append("run never closed (no end run_record): verified up to its last record")
        return
    report.status = info.status
    if closing is None:
        report.exit_code = info.exit_code
    if info.chain_head != report.head:
        report.problem(
            f"run.json: chain_head {info.chain_head[:12]}… is not the last record's hash {report.head[:12]}… — "
            "records were removed, added or rewritten after the run ended"
        )
    if info.record_count != report.record_count:
        report.problem(f"run.json: record_count {info.record_count} but records.jsonl holds {report.record_count}")
    if closing is None:
        if info.status != "evidence_error" and not (info.status == "interrupted" and not facts.has_lines):
            report.problem(f"run ended ({info.status}) but the last record is not its closing run_record")
        if info.outcome is not None and info.outcome != info.status:
            report.problem(f"run.json: outcome {info.outcome!r} but status {info.status!r}")
        return
    _check_outcome(info, closing.outcome, closing.exit_code, report)


def _check_outcome(info: RunInfo, outcome: str | None, exit_code: int | None, report: VerifyReport) -> None:
    """``status``, ``exit_code`` and ``outcome`` of ``run.json`` must be the closing run_record's."""
    forged = "— run.json's outcome was altered (the chain's closing run_record is the evidence)"
    if info.status != outcome:
        report.problem(f"run.json: status {info.status!r} but the closing run_record says outcome {outcome!r} {forged}")
    if info.exit_code != exit_code:
        report.problem(f"run.json: exit_code {info.exit_code} but the closing run_record says {exit_code} {forged}")
    if info.outcome is None:
        report.notes.append("run.json has no outcome field (written by an older Warden): its status is compared")
    elif info.outcome != outcome:
        report.problem(f"run.json: outcome {info.outcome!r} but the closing run_record says {outcome!r} {forged}")


def check_signature(
    info: RunInfo | None, facts: ChainFacts, public_key: Ed25519PublicKey | None, report: VerifyReport
) -> None:
    expected = facts.start.signing_key_id if facts.start is not None else None
    if info is None:
        if public_key is not None:
            report.problem("run.json: missing, so its signature cannot be checked")
        return
    if not info.finished:
        if public_key is not None or expected is not None:
            report.notes.append("run never closed: it has no signature to check (runs are signed at their end)")
        return
    stripped = False
    if expected is not None:
        if not info.signed or not info.signature:
            stripped = True
            report.problem(
                f"run.json: not signed, but the opening run_record says the run is signed by key {expected} — "
                "signature stripped (or the run was closed by crash recovery without its key)"
            )
        elif info.signing_key_id != expected:
            report.problem(
                f"run.json: signed by key {info.signing_key_id}, but the opening run_record names key {expected} — "
                "re-signed by another key"
            )
    if public_key is not None:
        if stripped:
            return
        problem = signature_problem(info, public_key)
        if problem is not None:
            report.problem(problem)
        else:
            report.notes.append(
                f"signature valid (key {info.signing_key_id}): chain head, count, status and exit code are signed"
                if info.signature_schema is not None
                else f"signature valid (key {info.signing_key_id}, legacy: chain head and count only)"
            )
        return
    if info.signed:
        report.notes.append(
            f"run.json is signed by key {info.signing_key_id}; pass --public-key to check the signature"
        )
    elif expected is None:
        report.notes.append(
            "run not signed: a rewrite of the whole chain with recomputed hashes and a fixed-up run.json "
            "is caught only by the index's chain head"
        )
