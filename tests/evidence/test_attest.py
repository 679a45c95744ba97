"""``warden evidence attest``: an in-toto Statement v1 in a DSSE envelope that a standard verifier
(securesystemslib's ``Envelope.verify`` with its Ed25519 key) accepts — and rejects after any change
of the payload, of a subject file, or under another key."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

from evidence.signing import keygen, load_private_key
from evidence.verify import verify_run
from tests.evidence import proof_support
from tests.evidence.proof_support import copy_evidence_dir, edit_run_json, lines, run_folder, warden, write_lines

pytestmark = pytest.mark.browser
keypair = proof_support.keypair
signed_ev = proof_support.signed_ev


def _sslib_key(public_pem: Path, keyid: str) -> SSlibKey:
    return SSlibKey.from_crypto(load_pem_public_key(public_pem.read_bytes()), keyid=keyid)


def _standard_check(envelope_path: Path, folder: Path, public_pem: Path, keyid: str) -> dict[str, Any]:
    """What any in-toto consumer does: DSSE signature over the payload, then each subject's digest."""
    envelope = Envelope.from_dict(json.loads(envelope_path.read_text()))
    envelope.verify([_sslib_key(public_pem, keyid)], 1)  # raises VerificationError
    assert envelope.payload_type == "application/vnd.in-toto+json"
    statement: dict[str, Any] = json.loads(envelope.payload)
    for subject in statement["subject"]:
        actual = hashlib.sha256((folder / subject["name"]).read_bytes()).hexdigest()
        if actual != subject["digest"]["sha256"]:
            raise VerificationError(f"subject {subject['name']} changed")
    return statement


@pytest.fixture
def attested(signed_ev: Path, tmp_path: Path, keypair: tuple[Path, Path]) -> tuple[Path, Path, str]:
    ev = copy_evidence_dir(signed_ev, tmp_path / "ev")
    folder = run_folder(ev)
    done = warden("evidence", "attest", folder.name[:20], "--evidence-dir", ev, cwd=tmp_path,
                  env={"WARDEN_SIGNING_KEY": str(keypair[0])})
    assert done.returncode == 0, done.stdout + done.stderr
    path = Path(done.stdout.strip().splitlines()[-1])
    assert path == folder / "attestation.dsse.json"
    return folder, path, load_private_key(keypair[0]).key_id


def test_attestation_verifies_with_the_standard_verifier(
    attested: tuple[Path, Path, str], keypair: tuple[Path, Path]
) -> None:
    folder, path, keyid = attested
    envelope = json.loads(path.read_text())
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert [s["keyid"] for s in envelope["signatures"]] == [keyid]
    statement = _standard_check(path, folder, keypair[1], keyid)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://warden.dev/evidence-run/v1"
    names = [s["name"] for s in statement["subject"]]
    shots = sorted(p.relative_to(folder).as_posix() for p in (folder / "screenshots").iterdir())
    assert names[:3] == ["records.jsonl", "run.json", "mission.yaml"] and sorted(names[3:]) == shots
    assert all(not n.startswith("/") for n in names)
    recs = lines(folder)
    pred = statement["predicate"]
    assert (pred["run_id"], pred["outcome"], pred["exit_code"], pred["record_count"], pred["chain_head"]) == (
        folder.name, "completed", 0, len(recs), recs[-1]["hash"]
    )
    # The attestation file in the run folder does not confuse verify: not an attachment, ignored.
    report = verify_run(folder)
    assert report.ok, report.problems
    assert any("attestation.dsse.json" in n for n in report.notes)


def test_a_changed_payload_fails(attested: tuple[Path, Path, str], keypair: tuple[Path, Path]) -> None:
    folder, path, keyid = attested
    envelope = json.loads(path.read_text())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["outcome"] = "failed"
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    path.write_text(json.dumps(envelope))
    with pytest.raises(VerificationError):
        _standard_check(path, folder, keypair[1], keyid)


def test_a_changed_payload_type_fails(attested: tuple[Path, Path, str], keypair: tuple[Path, Path]) -> None:
    folder, path, keyid = attested
    envelope = json.loads(path.read_text())
    envelope["payloadType"] = "application/json"
    path.write_text(json.dumps(envelope))
    with pytest.raises(VerificationError):
        _standard_check(path, folder, keypair[1], keyid)


@pytest.mark.parametrize("subject", ["records.jsonl", "run.json", "mission.yaml", "screenshot"])
def test_a_changed_subject_file_fails(
    subject: str, attested: tuple[Path, Path, str], keypair: tuple[Path, Path]
) -> None:
    folder, path, keyid = attested
    if subject == "records.jsonl":
        recs = lines(folder)
        recs[2]["call"] = "x"
        write_lines(folder, recs)
    elif subject == "run.json":
        edit_run_json(folder, status="failed")
    else:
        target = folder / "mission.yaml" if subject == "mission.yaml" else sorted((folder / "screenshots").iterdir())[0]
        data = bytearray(target.read_bytes())
        data[-1] ^= 0x01
        target.write_bytes(bytes(data))
    with pytest.raises(VerificationError, match="changed"):
        _standard_check(path, folder, keypair[1], keyid)


def test_another_key_fails(attested: tuple[Path, Path, str], tmp_path: Path) -> None:
    folder, path, keyid = attested
    _, other_pub = keygen(tmp_path / "other.key")
    with pytest.raises(VerificationError):
        _standard_check(path, folder, other_pub, keyid)  # same keyid claimed, other key material


def test_attest_refuses_a_tampered_run_and_needs_the_key(
    signed_ev: Path, tmp_path: Path, keypair: tuple[Path, Path]
) -> None:
    ev = copy_evidence_dir(signed_ev, tmp_path / "ev")
    folder = run_folder(ev)
    done = warden("evidence", "attest", folder, cwd=tmp_path, env={"WARDEN_SIGNING_KEY": ""})
    assert done.returncode == 2 and "WARDEN_SIGNING_KEY" in done.stderr, done.stderr
    edit_run_json(folder, status="failed")
    out = tmp_path / "att.json"
    done = warden("evidence", "attest", folder, "-o", out, cwd=tmp_path, env={"WARDEN_SIGNING_KEY": str(keypair[0])})
    assert done.returncode == 2 and "does not verify" in done.stderr, done.stderr
    assert not out.exists() and not (folder / "attestation.dsse.json").exists()


def test_output_elsewhere(signed_ev: Path, tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    ev = copy_evidence_dir(signed_ev, tmp_path / "ev")
    folder = run_folder(ev)
    out = tmp_path / "out" / "run.dsse.json"
    out.parent.mkdir()
    done = warden("evidence", "attest", folder, "-o", out, cwd=tmp_path, env={"WARDEN_SIGNING_KEY": str(keypair[0])})
    assert done.returncode == 0 and done.stdout.strip().endswith(str(out)), done.stdout + done.stderr
    _standard_check(out, folder, keypair[1], load_private_key(keypair[0]).key_id)
