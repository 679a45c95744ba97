"""Optional Ed25519 signature over a run's chain head (``WARDEN_SIGNING_KEY``).

Without a key, the hash chain proves that records were not edited, removed or reordered *inside*
the chain, and the index's chain head catches a cut tail; but someone with write access to the
folder and the database can rewrite the whole chain with fresh hashes and a matching ``run.json``.
With a key, the run's end signs ``{schema, run_id, key_id, record_count, chain_head, status,
exit_code}`` (RFC 8785 canonical JSON, ``warden.run_signature/2``), so such a rewrite — or a forged
outcome in ``run.json`` — no longer verifies under ``warden evidence verify --public-key PEM`` unless
the rewriter also holds the private key. The opening ``run_record`` names the key id the run is to
be signed with, so a signature stripped from ``run.json`` is a problem even without the public key.
Runs signed before (``signature_schema`` absent) carry ``warden.run_signature/1``: run id, chain
head and record count only; they still verify.

Keys are PEM files: PKCS#8 private key (mode 0600) and SubjectPublicKeyInfo public key. The key id
is the first 16 hex digits of SHA-256 over the raw 32-byte public key.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from evidence.canonical import canonical_bytes
from evidence.runfolder import RunInfo
from kernel.errors import EvidenceUnavailable, UsageError

SIGNATURE_SCHEMA = "warden.run_signature/2"
LEGACY_SIGNATURE_SCHEMA = "warden.run_signature/1"
ENV_KEY = "WARDEN_SIGNING_KEY"


def signed_payload(run_id: str, chain_head: str, record_count: int) -> bytes:
    """The bytes of a legacy (``warden.run_signature/1``) signature: run id, head and count only."""
    return canonical_bytes(
        {"schema": LEGACY_SIGNATURE_SCHEMA, "run_id": run_id, "chain_head": chain_head, "record_count": record_count}
    )


def run_payload(info: RunInfo, key: str) -> bytes:
    """The exact bytes signed at a run's end: canonical JSON, so any JCS library can rebuild them."""
    return canonical_bytes(
        {
            "schema": SIGNATURE_SCHEMA,
            "run_id": info.run_id,
            "key_id": key,
            "record_count": info.record_count,
            "chain_head": info.chain_head,
            "status": info.status,
            "exit_code": info.exit_code,
        }
    )


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class Signer:
    private_key: Ed25519PrivateKey

    @property
    def key_id(self) -> str:
        return key_id(self.private_key.public_key())

    def sign_info(self, info: RunInfo) -> RunInfo:
        """``info`` with ``signed``, ``signature`` (base64), ``signing_key_id`` and ``signature_schema``
        set for its head, count, status and exit code."""
        sig = self.private_key.sign(run_payload(info, self.key_id))
        return info.model_copy(
            update={
                "signed": True, "signature": base64.b64encode(sig).decode("ascii"), "signing_key_id": self.key_id,
                "signature_schema": SIGNATURE_SCHEMA,
            }
        )

    def sign(self, data: bytes) -> bytes:
        return self.private_key.sign(data)


def load_private_key(path: Path | str) -> Signer:
    """``EvidenceUnavailable`` when the key cannot be read or is not an Ed25519 private key."""
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as e:
        raise EvidenceUnavailable(f"signing key {path} cannot be loaded ({type(e).__name__})") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise EvidenceUnavailable(f"signing key {path} is not an Ed25519 private key")
    return Signer(key)


def signer_from_env(environ: Mapping[str, str]) -> Signer | None:
    """The signer named by ``WARDEN_SIGNING_KEY``, None when unset. A set but unusable key fails closed."""
    path = environ.get(ENV_KEY, "").strip()
    return load_private_key(path) if path else None


def key_id_from_env(environ: Mapping[str, str]) -> str | None:
    """The key id of ``WARDEN_SIGNING_KEY`` (named in a run's opening run_record), None when unset.

    ``EvidenceUnavailable`` when set but unusable, as ``signer_from_env``.
    """
    signer = signer_from_env(environ)
    return None if signer is None else signer.key_id


def load_public_key(path: Path | str) -> Ed25519PublicKey:
    """A public key PEM (a private key PEM is accepted too: its public half is used)."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise UsageError(f"public key {path} cannot be read: {e.strerror or e}") from e
    try:
        pub = serialization.load_pem_public_key(data)
    except ValueError:
        try:
            priv = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as e:
            raise UsageError(f"{path} is not a PEM public key") from e
        pub = priv.public_key()
    if not isinstance(pub, Ed25519PublicKey):
        raise UsageError(f"{path} is not an Ed25519 key")
    return pub


def check_signature(info: RunInfo, public_key: Ed25519PublicKey) -> str | None:
    """None when ``run.json``'s signature is valid for its head under ``public_key``; else the problem."""
    if not info.signed or not info.signature:
        return "run.json: not signed, but a public key was given — signature missing or stripped"
    expected = key_id(public_key)
    if info.signing_key_id != expected:
        return f"run.json: signed by key {info.signing_key_id}, not by the given key {expected}"
    if info.signature_schema is None:
        payload, what = signed_payload(info.run_id, info.chain_head, info.record_count), "run_id, chain head and count"
    elif info.signature_schema == SIGNATURE_SCHEMA:
        payload, what = run_payload(info, expected), "run_id, key id, chain head, count, status and exit code"
    else:
        return f"run.json: unknown signature_schema {info.signature_schema!r}"
    try:
        sig = base64.b64decode(info.signature, validate=True)
        public_key.verify(sig, payload)
    except (InvalidSignature, ValueError):
        return f"run.json: signature does not match its {what} — run rewritten, re-headed or its outcome forged"
    return None


def keygen(path: Path | str) -> tuple[Path, Path]:
    """Write a new keypair: ``PATH`` (private, PKCS#8 PEM, 0600) and ``PATH.pub``; never overwrites."""
    private_path = Path(path)
    public_path = private_path.with_name(private_path.name + ".pub")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for target in (private_path, public_path):
        if target.exists():
            raise UsageError(f"{target} already exists: not overwritten")
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, private_pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(private_path, 0o600)  # umask cannot widen it, but be explicit
    public_path.write_bytes(public_pem)
    return private_path, public_path
