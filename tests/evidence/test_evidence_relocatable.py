"""Verify judges the folder it is given: a copy anywhere verifies offline, every tamper of a copy is
named, the outcome is proven (run.json against the closing run_record, the signature, the index).

All on one real signed run (Chromium + local server), copied per test to an unrelated directory.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import rfc8785

from evidence.index import EvidenceIndex
from evidence.signing import load_public_key
from evidence.verify import VerifyReport, verify_run
from tests.evidence import proof_support
from tests.evidence.proof_support import (
    copy_evidence_dir,
    edit_index,
    edit_run_json,
    lines,
    run_folder,
    warden,
    write_lines,
)

pytestmark = pytest.mark.browser
keypair = proof_support.keypair
signed_ev = proof_support.signed_ev


@pytest.fixture
def copy(signed_ev: Path, tmp_path: Path) -> Path:
    """The run folder alone, copied to a fresh path that has nothing to do with the evidence dir."""
    src = run_folder(signed_ev)
    return Path(shutil.copytree(src, tmp_path / "elsewhere" / "archive" / src.name))


@pytest.fixture
def index(signed_ev: Path) -> Iterator[EvidenceIndex]:
    idx = EvidenceIndex(signed_ev)
    yield idx
    idx.close()


def _verify(folder: Path, index: EvidenceIndex | None = None, key: Path | None = None) -> VerifyReport:
    return verify_run(folder, index, load_public_key(key) if key else None)


def _rehash(record: dict[str, object]) -> dict[str, object]:
    body = {k: v for k, v in record.items() if k != "hash"}
    return {**record, "hash": hashlib.sha256(rfc8785.dumps(body)).hexdigest()}


def test_untouched_copy_verifies_offline_at_a_fresh_path(
    copy: Path, signed_ev: Path, index: EvidenceIndex, keypair: tuple[Path, Path]
) -> None:
    alone = _verify(copy)
    assert alone.ok, alone.problems
    with_key = _verify(copy, key=keypair[1])  # offline: only the public key
    assert with_key.ok, with_key.problems
    assert any("signature valid" in n and "status and exit code" in n for n in with_key.notes)
    both = _verify(copy, index, keypair[1])
    assert both.ok and both.index_checked, both.problems
    assert both.status == "completed" and both.exit_code == 0
    # Relocatable: nothing inside the folder names where it was written.
    for name in ("run.json", "records.jsonl", "mission.yaml"):
        assert str(signed_ev) not in (copy / name).read_text(), name


def test_run_json_carries_the_outcome_and_the_start_record_names_the_key(
    copy: Path, keypair: tuple[Path, Path]
) -> None:
    import json

    from evidence.signing import key_id

    info = json.loads((copy / "run.json").read_text())
    assert info["outcome"] == info["status"] == "completed" and info["exit_code"] == 0
    assert info["signature_schema"] == "warden.run_signature/2"
    recs = lines(copy)
    assert recs[0]["schema"] == "warden.run_record/3"
    assert recs[0]["signing_key_id"] == info["signing_key_id"] == key_id(load_public_key(keypair[1]))
    assert recs[-1]["outcome"] == "completed" and recs[-1]["exit_code"] == 0


def test_cli_verifies_the_path_given_not_the_indexed_folder(copy: Path, signed_ev: Path, tmp_path: Path) -> None:
    recs = lines(copy)
    recs[3]["call"] = "page.goto('https://evil.example')"
    write_lines(copy, recs)
    done = warden("evidence", "verify", copy, "--evidence-dir", signed_ev, cwd=tmp_path)
    assert done.returncode == 1, done.stdout
    assert "hash mismatch" in done.stdout
    # The original, by id, is intact.
    done = warden("evidence", "verify", copy.name, "--evidence-dir", signed_ev, cwd=tmp_path)
    assert done.returncode == 0, done.stdout
    # A whole evidence dir copied elsewhere: its index still records the original's absolute path,
    # yet RUN is looked up in the dir given, so the edited copy is what is judged.
    ev2 = copy_evidence_dir(signed_ev, tmp_path / "ev2")
    write_lines(run_folder(ev2), recs)
    done = warden("evidence", "verify", copy.name, "--evidence-dir", ev2, cwd=tmp_path)
    assert done.returncode == 1 and "hash mismatch" in done.stdout, done.stdout
    done = warden("evidence", "verify", "--all", "--evidence-dir", ev2, cwd=tmp_path)
    assert done.returncode == 1 and "hash mismatch" in done.stdout, done.stdout


def _edit_record(folder: Path) -> None:
    recs = lines(folder)
    recs[3]["call"] = "page.goto('https://evil.example')"
    write_lines(folder, recs)


def _delete_record(folder: Path) -> None:
    recs = lines(folder)
    del recs[4]
    write_lines(folder, recs)


def _swap_records(folder: Path) -> None:
    recs = lines(folder)
    recs[3], recs[4] = recs[4], recs[3]
    write_lines(folder, recs)


def _truncate_tail_and_reset_running(folder: Path) -> None:
    write_lines(folder, lines(folder)[:-3])
    edit_run_json(folder, status="running", exit_code=None, outcome=None, ended_at=None,
                  chain_head="0" * 64, record_count=0, signed=False, signature=None, signing_key_id=None,
                  signature_schema=None)


def _forge_outcome_in_run_json(folder: Path) -> None:
    edit_run_json(folder, status="failed", exit_code=4, outcome="failed")


def _forge_outcome_in_run_json_and_chain_end(folder: Path) -> None:
    """The closing record edited and rehashed alone: its link to the next breaks nothing (it is last),
    but run.json's chain head no longer matches and the signature does not cover the new head."""
    recs = lines(folder)
    recs[-1] = _rehash({**recs[-1], "outcome": "failed", "exit_code": 4})
    write_lines(folder, recs)
    edit_run_json(folder, status="failed", exit_code=4, outcome="failed", chain_head=recs[-1]["hash"])


def _change_screenshot(folder: Path) -> None:
    shot = sorted((folder / "screenshots").iterdir())[0]
    data = bytearray(shot.read_bytes())
    data[len(data) // 2] ^= 0x01
    shot.write_bytes(bytes(data))


def _strip_signature(folder: Path) -> None:
    edit_run_json(folder, signed=False, signature=None, signing_key_id=None, signature_schema=None)


TAMPERS: dict[str, tuple[Callable[[Path], None], str, bool]] = {
    # name: (attack, fragment of a problem, caught by the folder alone, without index or key)
    "edit a record": (_edit_record, "hash mismatch", True),
    "delete a record": (_delete_record, "seq gap", True),
    "swap two records": (_swap_records, "out of order", True),
    "truncate the tail, status running": (_truncate_tail_and_reset_running, "is not in records.jsonl", False),
    "forge the outcome in run.json": (_forge_outcome_in_run_json, "run.json: status 'failed'", True),
    "forge the outcome in run.json and the chain's end": (
        _forge_outcome_in_run_json_and_chain_end, "signature does not match", False),
    "change a screenshot": (_change_screenshot, "sha256 mismatch — attachment changed", True),
    "strip the signature": (_strip_signature, "opening run_record says the run is signed by key", True),
}


@pytest.mark.parametrize("name", list(TAMPERS))
def test_tampered_copy_fails_naming_the_problem(
    name: str, copy: Path, index: EvidenceIndex, keypair: tuple[Path, Path]
) -> None:
    attack, fragment, alone = TAMPERS[name]
    attack(copy)
    report = _verify(copy, index, keypair[1])
    assert not report.ok
    assert any(fragment in p for p in report.problems), report.problems
    if alone:
        report = _verify(copy)
        assert not report.ok and any(fragment in p for p in report.problems), report.problems


def test_truncated_tail_reports_the_index_disagreeing(copy: Path, index: EvidenceIndex) -> None:
    _truncate_tail_and_reset_running(copy)
    report = _verify(copy, index)
    assert any("index says the run ended (completed, exit 0" in p for p in report.problems), report.problems


def test_forged_outcome_in_run_json_names_each_field(copy: Path) -> None:
    _forge_outcome_in_run_json(copy)
    problems = _verify(copy).problems
    for field in ("status 'failed'", "exit_code 4", "outcome 'failed'"):
        assert any(f"run.json: {field}" in p and "closing run_record" in p for p in problems), (field, problems)


def test_forged_outcome_in_the_index_names_the_index(signed_ev: Path, tmp_path: Path) -> None:
    ev = copy_evidence_dir(signed_ev, tmp_path / "ev")
    folder = run_folder(ev)
    edit_index(ev, "UPDATE runs SET status = 'failed', exit_code = 4 WHERE run_id = ?", folder.name)
    idx = EvidenceIndex(ev)
    try:
        report = verify_run(folder, idx)
    finally:
        idx.close()
    assert not report.ok
    assert any(
        "index: status 'failed', exit code 4 but the folder (run.json and its closing run_record) says 'completed', "
        "exit code 0 — the index row was altered" in p for p in report.problems
    ), report.problems
    done = warden("evidence", "verify", folder.name, "--evidence-dir", ev, cwd=tmp_path)
    assert done.returncode == 1 and "index row was altered" in done.stdout, done.stdout


def test_forged_outcome_in_run_json_and_index_names_both(signed_ev: Path, tmp_path: Path) -> None:
    ev = copy_evidence_dir(signed_ev, tmp_path / "ev")
    folder = run_folder(ev)
    _forge_outcome_in_run_json(folder)
    edit_index(ev, "UPDATE runs SET status = 'failed', exit_code = 4 WHERE run_id = ?", folder.name)
    idx = EvidenceIndex(ev)
    try:
        problems = verify_run(folder, idx).problems
    finally:
        idx.close()
    assert any("run.json: status 'failed'" in p for p in problems), problems
    assert any("run.json and the index row were altered" in p for p in problems), problems


def test_re_signed_by_another_key_is_named(copy: Path, tmp_path: Path) -> None:
    from evidence.runfolder import RunFolder
    from evidence.signing import keygen, load_private_key

    other, _ = keygen(tmp_path / "other.key")
    rf = RunFolder(copy)
    rf.write_run_info(load_private_key(other).sign_info(rf.read_run_info()))
    problems = _verify(copy).problems
    assert any("but the opening run_record names key" in p for p in problems), problems
