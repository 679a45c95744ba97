"""Evidence key, keyed HMAC (known answer, normalisation), previews."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import stat
from pathlib import Path

import pytest

from guards.pii.errors import EvidenceKeyError
from guards.pii.keyed import (
    ENV_VAR,
    KEY_FILE,
    key_id,
    load_evidence_key,
    masked_preview,
    normalise_value,
    parse_key,
    value_hmac,
)
from tests.guards.canaries import CANARIES

FIXED = bytes(range(32))


def test_known_answer() -> None:
    expected = hmac.new(FIXED, b"warden-pii-v1\x00john.smith@example.com", hashlib.sha256).hexdigest()
    assert value_hmac(FIXED, "EMAIL_ADDRESS", "John.Smith@Example.com") == expected

    assert key_id(FIXED) == hashlib.sha256(b"warden-key-id" + FIXED).hexdigest()[:16]


@pytest.mark.parametrize(("entity", "a", "b"), [
    ("EMAIL_ADDRESS", "John.Smith@Example.COM", " john.smith@example.com"),
    ("CREDIT_CARD", "4111 1111 1111 1111", "4111-1111-1111-1111"),
    ("PHONE_NUMBER", "(212) 555-0143", "+1 212 555 0143"),
    ("US_SSN", "219-09-9999", "219 09 9999"),
    ("IBAN_CODE", "GB82 WEST 1234 5698 7654 32", "gb82west12345698765432"),
    ("IP_ADDRESS", "2001:db8:0:0:0:0:0:42", "2001:DB8::42"),
])
def test_same_value_two_spellings_same_hmac(entity: str, a: str, b: str) -> None:
    assert value_hmac(FIXED, entity, a) == value_hmac(FIXED, entity, b)


def test_different_keys_different_hmacs() -> None:
    other = bytes(32)
    assert value_hmac(FIXED, "EMAIL_ADDRESS", "a@b.com") != value_hmac(other, "EMAIL_ADDRESS", "a@b.com")
    assert value_hmac(FIXED, "EMAIL_ADDRESS", "a@b.com") != hashlib.sha256(b"a@b.com").hexdigest()


def test_key_file_created_0600_and_reused(tmp_path: Path) -> None:
    k1 = load_evidence_key(tmp_path, environ={})
    path = tmp_path / KEY_FILE
    assert k1.source == "file"
    assert k1.path == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(k1.key) >= 32
    assert k1.key.hex() not in repr(k1)
    k2 = load_evidence_key(tmp_path, environ={})
    assert k2.key == k1.key
    assert k2.key_id == k1.key_id
    assert not [p for p in tmp_path.iterdir() if p.name != KEY_FILE]  # no temp file left


def test_unsafe_key_file_refused(tmp_path: Path) -> None:
    load_evidence_key(tmp_path, environ={})
    os.chmod(tmp_path / KEY_FILE, 0o644)
    with pytest.raises(EvidenceKeyError, match="chmod 600"):
        load_evidence_key(tmp_path, environ={})


def test_env_key_hex_and_base64(tmp_path: Path) -> None:
    raw = os.urandom(32)
    assert load_evidence_key(tmp_path, {ENV_VAR: raw.hex()}).key == raw
    assert load_evidence_key(tmp_path, {ENV_VAR: base64.b64encode(raw).decode()}).key == raw
    assert load_evidence_key(tmp_path, {ENV_VAR: base64.urlsafe_b64encode(raw).decode().rstrip("=")}).key == raw
    assert not (tmp_path / KEY_FILE).exists()
    with pytest.raises(EvidenceKeyError, match="at least 32"):
        parse_key(os.urandom(16).hex())
    with pytest.raises(EvidenceKeyError):
        parse_key("not a key!!")


@pytest.mark.parametrize("c", CANARIES, ids=lambda c: c.id)
def test_preview_never_reveals_the_value(c: object) -> None:
    value: str = c.value  # type: ignore[attr-defined]
    entity: str = c.entity_type  # type: ignore[attr-defined]
    p = masked_preview(entity, value)
    shape = re.sub(r"<[^>]*>", "", p)  # "<len=22>", "<IPv4>" are annotations, not value characters
    assert value not in p
    assert normalise_value(entity, value) not in p
    assert not any(ch.isdigit() for ch in shape)  # no digit of any number is shown
    if entity == "EMAIL_ADDRESS":
        assert p.count("***") == 2


def test_preview_shapes() -> None:
    assert masked_preview("EMAIL_ADDRESS", "john@example.com") == "j***@e***.com"
    assert masked_preview("CREDIT_CARD", "4111-1111-1111-1111") == "****-****-****-****"
    assert masked_preview("US_SSN", "219-09-9999") == "***-**-****"
    assert masked_preview("IP_ADDRESS", "203.0.113.47") == "<IPv4>"
    assert masked_preview("PERSON", "Jane Doe") == "<PERSON len=8>"
