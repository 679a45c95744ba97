"""Read-only commands never write: ``warden evidence list|show|verify|query|export`` leave every file of
the evidence dir (run folders, ``.lock`` files, ``warden.db``) with its bytes, mtime and mode, and
create none — even when a run is still marked running and its process is gone (they say
``interrupted?``). ``warden evidence recover`` is the explicit step that closes it (and signs it when
the key is at hand)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evidence.index import EvidenceIndex
from evidence.signing import load_public_key
from evidence.verify import verify_run
from tests.evidence import proof_support
from tests.evidence.proof_support import (
    checkpoint,
    copy_evidence_dir,
    edit_index,
    lines,
    run_folder,
    snapshot,
    warden,
    write_lines,
)

pytestmark = pytest.mark.browser
keypair = proof_support.keypair
signed_ev = proof_support.signed_ev


def _kill_mid_way(ev: Path) -> Path:
    """The run as if its process had been killed after its last step: no closing record, run.json and
    the index still say running, the lock free."""
    folder = run_folder(ev)
    recs = lines(folder)[:-1]
    write_lines(folder, recs)
    path = folder / "run.json"
    info = json.loads(path.read_text())
    info.update(status="running", exit_code=None, outcome=None, ended_at=None, chain_head="0" * 64, record_count=0,
                signed=False, signature=None, signing_key_id=None, signature_schema=None)
    path.write_text(json.dumps(info, indent=2) + "\n")
    edit_index(ev, "DELETE FROM records WHERE run_id = ? AND seq > ?", folder.name, len(recs))
    edit_index(ev, "UPDATE runs SET status = 'running', exit_code = NULL, ended_at = NULL, chain_head = ?, "
               "record_count = ? WHERE run_id = ?", recs[-1]["hash"], len(recs), folder.name)
    return folder


READ_ONLY = {
    "list": ["evidence", "list"],
    "show": ["evidence", "show", "{run}"],
    "verify RUN": ["evidence", "verify", "{run}"],
    "verify PATH": ["evidence", "verify", "{folder}"],
    "verify --all": ["evidence", "verify", "--all"],
    "query": ["evidence", "query", "--type", "run_record", "--format", "jsonl"],
    "query table": ["evidence", "query", "--run", "{run}"],
    "export jsonl": ["evidence", "export", "{run}"],
    "export ocsf": ["evidence", "export", "{run}", "--format", "ocsf"],
}


def test_read_only_commands_change_no_file(signed_ev: Path, tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    ev = copy_evidence_dir(signed_ev, tmp_path / "ev")
    folder = _kill_mid_way(ev)
    checkpoint(ev)
    before = snapshot(ev)
    assert "warden.db" in before and f"runs/{folder.name}/.lock" in before
    said = ""
    for name, argv in READ_ONLY.items():
        args = [a.format(run=folder.name, folder=folder) for a in argv]
        done = warden(*args, "--evidence-dir", ev, cwd=tmp_path, env={"WARDEN_SIGNING_KEY": str(keypair[0])})
        assert done.returncode == 0, (name, done.stdout, done.stderr)
        assert "recovered" not in done.stderr, name
        said += done.stdout + done.stderr
        after = snapshot(ev)
        assert after.keys() == before.keys(), (name, after.keys() ^ before.keys())
        changed = [k for k in before if before[k] != after[k]]
        assert changed == [], (name, changed)
    assert "interrupted?" in said and "warden evidence recover" in said

    # The explicit step closes it, signed with the key its opening record named.
    done = warden("evidence", "recover", folder.name, "--evidence-dir", ev, cwd=tmp_path,
                  env={"WARDEN_SIGNING_KEY": str(keypair[0])})
    assert done.returncode == 0 and "recovered" in done.stderr, done.stdout + done.stderr
    info = json.loads((folder / "run.json").read_text())
    assert info["status"] == info["outcome"] == "interrupted" and info["signed"] is True
    idx = EvidenceIndex(ev)
    try:
        report = verify_run(folder, idx, load_public_key(keypair[1]))
    finally:
        idx.close()
    assert report.ok, report.problems
    assert report.status == "interrupted"
    done = warden("evidence", "recover", "--all", "--evidence-dir", ev, cwd=tmp_path)
    assert done.returncode == 0 and "nothing to recover" in done.stdout, done.stdout


def test_recovery_without_the_key_leaves_a_run_that_was_to_be_signed_flagged(
    signed_ev: Path, tmp_path: Path
) -> None:
    ev = copy_evidence_dir(signed_ev, tmp_path / "ev")
    folder = _kill_mid_way(ev)
    done = warden("evidence", "recover", "--all", "--evidence-dir", ev, cwd=tmp_path, env={"WARDEN_SIGNING_KEY": ""})
    assert done.returncode == 0 and "recovered" in done.stderr, done.stdout + done.stderr
    report = verify_run(folder)
    assert not report.ok
    assert any("opening run_record says the run is signed by key" in p for p in report.problems), report.problems
