"""The redactor must never touch hashes: a digest "redacted" into «pii:PHONE_NUMBER» would corrupt the
evidence (an approval's action digest, a mission's sha256, a chain hash) while meaning nothing."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guards.pii.engine import build_analyzer, default_entities
from guards.pii.redactor import PiiRedactor
from guards.pii.scanner import PiiScanner
from missions.model import PiiPolicy

KEY = b"k" * 32


@pytest.fixture(scope="module")
def redactor() -> PiiRedactor:
    entities = default_entities(None)
    policy = PiiPolicy(entities=entities)
    return PiiRedactor(PiiScanner(policy, KEY, analyzer=build_analyzer(entities, None)))


@settings(max_examples=300, deadline=None)
@given(data=st.binary(min_size=1, max_size=64), label=st.sampled_from(["", "sha256 ", "digest=", "prev_hash: "]))
def test_hex_digests_pass_unchanged(redactor: PiiRedactor, data: bytes, label: str) -> None:
    for digest in (hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest()):  # noqa: S324
        text = f"{label}{digest}"
        assert redactor.redact(text) == text


def test_a_phone_number_next_to_a_digest_is_still_redacted(redactor: PiiRedactor) -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    out = redactor.redact(f"call +1 (415) 555-0132 about {digest}")
    assert "555-0132" not in out
    assert digest in out
