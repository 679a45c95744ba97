"""The evidence key, keyed HMACs of PII values, and masked previews.

Records never hold a PII value nor a plain hash of it (a plain hash of an e-mail or a card number is
reversed by a dictionary in seconds). They hold ``HMAC-SHA256(evidence key, normalised value)``: it
links the same value across findings and runs sharing a key, and is useless without the key.

Key source, in order:

1. ``WARDEN_EVIDENCE_KEY``: at least 32 bytes, written as hex (64+ hex digits) or base64
   (standard or URL-safe alphabet, padding optional). Use it to link findings across machines.
2. else ``DIR/.warden-key`` (DIR = the evidence directory): 32 random bytes, hex, created once with
   mode 0600 and never overwritten (written to a private temp file, then ``link``-ed into place, which
   like O_CREAT|O_EXCL fails if the file exists, so two concurrent runs agree on one complete key).
   A key file readable by group/others is refused.

``key_id`` = first 16 hex of sha256("warden-key-id" + key): names the key in records, reveals nothing.

The same key also keys other digests over data that may hold PII (``keyed_digest``, e.g. the action
digest binding an approval to one action, runner/approvals/digest.py); each use has its own domain
prefix, so a digest of one kind can never be confused with, or replayed as, another.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import ipaddress
import os
import re
import secrets
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from guards.pii.errors import EvidenceKeyError

ENV_VAR = "WARDEN_EVIDENCE_KEY"
KEY_FILE = ".warden-key"
MIN_KEY_BYTES = 32
_HMAC_DOMAIN = b"warden-pii-v1\x00"
ACTION_DIGEST_DOMAIN = b"warden-action-digest-v2\x00"


@dataclass(frozen=True)
class EvidenceKey:
    key: bytes = field(repr=False)
    key_id: str
    source: Literal["env", "file"]
    path: Path | None = None


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"warden-key-id" + key).hexdigest()[:16]


def parse_key(text: str) -> bytes:
    """Decode a key given as hex or base64; at least MIN_KEY_BYTES bytes."""
    s = text.strip()
    raw: bytes | None = None
    if re.fullmatch(r"(?:[0-9a-fA-F]{2})+", s):
        raw = bytes.fromhex(s)
    else:
        t = s.replace("-", "+").replace("_", "/")
        t += "=" * (-len(t) % 4)
        try:
            raw = base64.b64decode(t, validate=True)
        except (binascii.Error, ValueError):
            raw = None
    if raw is None:
        raise EvidenceKeyError(f"{ENV_VAR} is neither hex nor base64")
    if len(raw) < MIN_KEY_BYTES:
        raise EvidenceKeyError(f"{ENV_VAR} decodes to {len(raw)} bytes; at least {MIN_KEY_BYTES} are required")
    return raw


def load_evidence_key(directory: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> EvidenceKey:
    """The run's evidence key: from the environment, else the key file in ``directory`` (created once)."""
    env = os.environ if environ is None else environ
    value = env.get(ENV_VAR)
    if value:
        raw = parse_key(value)
        return EvidenceKey(raw, key_id(raw), "env")
    path = Path(directory) / KEY_FILE
    if not path.exists():
        _create_key_file(path)
    raw = _read_key_file(path)
    return EvidenceKey(raw, key_id(raw), "file", path)


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".warden-key.", suffix=".tmp", dir=path.parent)  # O_EXCL, 0600
    tmp_path = Path(tmp_name)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, secrets.token_hex(MIN_KEY_BYTES).encode() + b"\n")
        os.fsync(fd)
        os.close(fd)
        fd = -1
        with contextlib.suppress(FileExistsError):  # another run created it first: use theirs
            os.link(tmp_path, path)  # atomic and, unlike rename, never replaces an existing key
    finally:
        if fd >= 0:
            os.close(fd)
        tmp_path.unlink(missing_ok=True)


def _read_key_file(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise EvidenceKeyError(f"{path} is not a regular file")
        if st.st_mode & 0o077:
            mode = oct(st.st_mode & 0o777)
            raise EvidenceKeyError(f"{path} is accessible by group/others (mode {mode}); chmod 600 it")
        data = os.read(fd, 4096).decode("ascii", "replace").strip()
    finally:
        os.close(fd)
    try:
        raw = bytes.fromhex(data)
    except ValueError:
        raise EvidenceKeyError(f"{path} does not hold a hex key") from None
    if len(raw) < MIN_KEY_BYTES:
        raise EvidenceKeyError(f"{path} holds {len(raw)} bytes; at least {MIN_KEY_BYTES} are required")
    return raw


# --- normalisation: the same value typed differently must give the same HMAC -------------------

_DIGITS_ONLY = {"CREDIT_CARD", "US_SSN", "US_ITIN", "US_BANK_NUMBER", "UK_NHS", "US_PASSPORT"}


def normalise_value(entity_type: str, value: str) -> str:
    """Canonical spelling of a value for linking (not for display)."""
    v = " ".join(value.split())
    if entity_type == "EMAIL_ADDRESS":
        return v.replace(" ", "").lower()
    if entity_type in _DIGITS_ONLY:
        return re.sub(r"\D", "", v)
    if entity_type == "PHONE_NUMBER":
        return _normalise_phone(v)
    if entity_type == "IBAN_CODE":
        return re.sub(r"[\s-]", "", v).upper()
    if entity_type == "IP_ADDRESS":
        try:
            return ipaddress.ip_interface(v).compressed
        except ValueError:
            return v.lower()
    if entity_type in {"MAC_ADDRESS", "UUID"}:
        return re.sub(r"[^0-9a-f]", "", v.lower())
    return v.casefold()


def _normalise_phone(v: str) -> str:
    try:
        import phonenumbers

        num = phonenumbers.parse(v, "US")
        return str(phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164))
    except Exception:
        digits = re.sub(r"\D", "", v)
        return ("+" if v.lstrip().startswith(("+", "00")) else "") + digits.removeprefix("00")


def value_hmac(key: bytes, entity_type: str, value: str) -> str:
    """HMAC-SHA256 (hex) of the normalised value. The entity type only picks the normalisation, so one
    value detected as two types (a digit run as card and as bank number) still links."""
    # hmac.digest: OpenSSL's one-shot HMAC (the same bytes as hmac.new(...).digest(), half the time)
    return hmac.digest(key, _HMAC_DOMAIN + normalise_value(entity_type, value).encode("utf-8"), "sha256").hex()


def keyed_digest(key: bytes, domain: bytes, data: bytes) -> str:
    """HMAC-SHA256 (hex) of ``domain + data`` under the evidence key: a digest of data that may hold
    PII (typed values, page text) that nobody without the key can confirm a guess against."""
    if not key:
        raise EvidenceKeyError("a keyed digest needs a non-empty key")
    return hmac.digest(key, domain + data, "sha256").hex()


# --- masked previews ------------------------------------------------------------------------------


def masked_preview(entity_type: str, value: str) -> str:
    """A shape-only preview. Rule: never more than one character of the identifying part of a value;
    no digit of a number is ever shown (card last-4 and SSN last-4 are used as authentication
    factors, so they are not shown either)."""
    v = value.strip()
    if entity_type == "EMAIL_ADDRESS" and "@" in v:
        local, _, domain = v.rpartition("@")
        host, dot, tld = domain.rpartition(".")
        if not dot:
            host, tld = domain, ""
        tld_part = f".{tld}" if dot and tld.isalpha() and len(tld) <= 6 else (".***" if dot else "")
        return f"{local[:1]}***@{host[:1]}***{tld_part}"
    if entity_type == "IBAN_CODE":
        compact = re.sub(r"[\s-]", "", v)
        return compact[:2].upper() + "**" + f" <len={len(compact)}>"
    if entity_type == "IP_ADDRESS":
        return "<IPv6>" if ":" in v else "<IPv4>"
    if entity_type in _DIGITS_ONLY or entity_type == "PHONE_NUMBER":
        return re.sub(r"[0-9A-Za-z]", "*", v) if len(v) <= 40 else f"<{entity_type} len={len(v)}>"
    return f"<{entity_type} len={len(v)}>"
