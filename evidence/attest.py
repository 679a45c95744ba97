"""``warden evidence attest``: a run folder as an in-toto Statement v1 in a DSSE envelope.

Any in-toto / DSSE verifier (securesystemslib, sigstore, in-toto tooling) can check it with the
run's Ed25519 public key, without Warden: the envelope's ``payloadType`` is
``application/vnd.in-toto+json``, its signature is by the ``WARDEN_SIGNING_KEY`` key and its
``keyid`` is Warden's key id for that key (evidence.signing.key_id). The statement's subjects are
``records.jsonl``, ``run.json`` and every file a record links (``mission.yaml``, screenshots, ...),
each named by its path relative to the run folder with its sha256; the predicate
(``https://warden.dev/evidence-run/v1``) says the run id, mission, outcome, exit code, record count
and chain head.

A run is attested only when it verifies (chain, attachments, outcome, signature with this key;
the index too when one is at hand) and is finished: an attestation never launders a tampered or
unfinished folder. The envelope sits in the run folder as ``attestation.dsse.json`` by default; it
is not part of the chain, not an attachment, and ``verify`` ignores it (beyond a note): it attests
the folder, the folder does not depend on it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from securesystemslib.dsse import Envelope
from securesystemslib.signer import CryptoSigner, SSlibKey  # type: ignore[attr-defined]

from evidence.canonical import sha256_file
from evidence.index import EvidenceIndex
from evidence.runfolder import RunFolder, atomic_write_bytes, safe_relpath
from evidence.signing import Signer
from evidence.verify import ATTESTATION_FILE, verify_run
from kernel.errors import UsageError

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_TYPE = "https://warden.dev/evidence-run/v1"

__all__ = ["ATTESTATION_FILE", "PAYLOAD_TYPE", "PREDICATE_TYPE", "STATEMENT_TYPE", "attest_run", "public_sslib_key",
           "statement"]


def public_sslib_key(signer: Signer) -> SSlibKey:
    """The signer's public key as securesystemslib sees it, with Warden's key id."""
    return SSlibKey.from_crypto(signer.private_key.public_key(), keyid=signer.key_id)


def _linked_paths(folder: RunFolder) -> list[str]:
    out: list[str] = []
    for line in folder.records.read_bytes().split(b"\n"):
        if not line.strip():
            continue
        for att in json.loads(line).get("attachments") or []:
            rel = safe_relpath(str(att.get("path", "")))
            if rel not in out:
                out.append(rel)
    return out


def statement(folder: RunFolder) -> dict[str, Any]:
    """The in-toto Statement v1 of a run folder (read as it is now; verify it first)."""
    info = folder.read_run_info()
    names = ["records.jsonl", "run.json", *_linked_paths(folder)]
    subjects = [{"name": n, "digest": {"sha256": sha256_file(folder.root / n)}} for n in names]
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "run_id": info.run_id,
            "mission_id": info.mission_id,
            "mission_version": info.mission_version,
            "mission_sha256": info.mission_sha256,
            "outcome": info.outcome or info.status,
            "exit_code": info.exit_code,
            "record_count": info.record_count,
            "chain_head": info.chain_head,
            "signing_key_id": info.signing_key_id,
            "warden_version": info.warden_version,
        },
    }


def attest_run(
    folder: Path | str, signer: Signer, output: Path | str | None = None, index: EvidenceIndex | None = None
) -> Path:
    """Verify the run, then write its DSSE envelope (default ``attestation.dsse.json`` in the folder).

    ``UsageError`` when the run does not verify or is not finished: nothing is written then.
    """
    rf = RunFolder.open(folder)
    report = verify_run(rf.root, index, signer.private_key.public_key())
    if not report.ok:
        raise UsageError(f"run {rf.run_id} does not verify, not attested: " + "; ".join(report.problems))
    info = rf.read_run_info()
    if not info.finished:
        raise UsageError(f"run {rf.run_id} is not finished ({info.status}): run `warden evidence recover` first")
    payload = json.dumps(statement(rf), sort_keys=True, separators=(",", ":")).encode()
    envelope = Envelope(payload=payload, payload_type=PAYLOAD_TYPE, signatures={})
    envelope.sign(CryptoSigner(signer.private_key, public_sslib_key(signer)))
    data = (json.dumps(envelope.to_dict(), indent=2, sort_keys=True) + "\n").encode()
    target = Path(output) if output is not None else rf.root / ATTESTATION_FILE
    try:
        atomic_write_bytes(target.absolute(), data)
    except OSError as e:
        raise UsageError(f"cannot write {target}: {e.strerror or e}") from e
    return target
