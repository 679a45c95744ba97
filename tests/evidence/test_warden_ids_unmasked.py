"""Warden's own ids, hashes and paths are never masked; PII around them still is (real Presidio).

A run id is ``<time>-<mission>-<6 hex>``; when the 6 hex happen to be digits, Presidio's phone
recognizer may take them for a phone number. The exemptions are structural (id fields by name and
exact format; registered never-redact values), never a weaker detection.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid

import pytest

from evidence.canonical import canonical_bytes
from evidence.redact import RedactorChain, SecretRedactor, protect, redact_around, redact_tree
from guards.pii.engine import build_analyzer, default_entities
from guards.pii.keyed import ACTION_DIGEST_DOMAIN
from guards.pii.redactor import PiiRedactor
from guards.pii.scanner import PiiScanner
from missions.model import PiiPolicy
from runner.approvals.digest import action_digest, digest_payload

KEY = b"k" * 32
DIGIT_RUN_ID = "20261203T141453119Z-three-pages-356578"  # its suffix reads as a phone number
PHONE = "(212) 555-0143"
CARD_LIKE_APPROVAL = "ap-4111111111111111"  # 16 hex that are a valid card number


@pytest.fixture(scope="module")
def pii() -> PiiRedactor:
    entities = default_entities()
    return PiiRedactor(PiiScanner(PiiPolicy(entities=entities), KEY, analyzer=build_analyzer(entities)))


def chain(pii: PiiRedactor, secrets: dict[str, str] | None = None) -> RedactorChain:
    return RedactorChain([SecretRedactor(secrets or {}), pii])


def test_the_digit_run_id_is_what_detection_masks_without_the_exemption(pii: PiiRedactor) -> None:
    """The premise: without an exemption this id is masked (else the tests below prove nothing)."""
    assert "«pii:PHONE_NUMBER»" in chain(pii).redact(DIGIT_RUN_ID)
    assert "«pii:CREDIT_CARD»" in chain(pii).redact(f"approval {CARD_LIKE_APPROVAL} pending")


def test_protected_values_are_kept_and_pii_around_them_is_masked(pii: PiiRedactor) -> None:
    c = chain(pii)
    folder = f"/tmp/ev/runs/{DIGIT_RUN_ID}"
    c.protect(DIGIT_RUN_ID, folder, CARD_LIKE_APPROVAL)
    text = f"run {DIGIT_RUN_ID} in {folder}: approval {CARD_LIKE_APPROVAL} for Phone: {PHONE}"
    out = c.redact(text)
    assert DIGIT_RUN_ID in out and folder in out and CARD_LIKE_APPROVAL in out
    assert PHONE not in out and "«pii:PHONE_NUMBER»" in out
    assert c.redact(PHONE) == "«pii:PHONE_NUMBER»"  # detection itself is unchanged


def test_protect_refuses_short_values_and_values_holding_a_secret(pii: PiiRedactor) -> None:
    c = chain(pii, {"PW": "hunter2-secret"})
    c.protect("ap-1", "/x/hunter2-secret/ev", DIGIT_RUN_ID)
    assert c.protected == frozenset({DIGIT_RUN_ID})
    assert c.redact("/x/hunter2-secret/ev") == "/x/«secret:PW»/ev"
    protect(object(), "ignored-by-a-redactor-without-protect")  # no-op, no error


def test_redact_around_redacts_every_piece_between_protected_values() -> None:
    out = redact_around("a-SECRET-b ID123456 c-SECRET", lambda s: s.replace("SECRET", "«x»"), ["ID123456"])
    assert out == "a-«x»-b ID123456 c-«x»"


def test_redact_tree_keeps_warden_id_fields_in_their_format_only(pii: PiiRedactor) -> None:
    c = chain(pii)
    digest = "4111111111111111" + "a" * 48
    rid = str(uuid.uuid4())
    tree = {
        "approval_id": CARD_LIKE_APPROVAL,
        "action_digest": digest,
        "intent_id": rid,
        "subject": {"approval_id": CARD_LIKE_APPROVAL, "new_digest": digest},
        "rationale": f"Phone: {PHONE}",
        "run_id": DIGIT_RUN_ID,
    }
    out = redact_tree(tree, c)
    assert out["approval_id"] == CARD_LIKE_APPROVAL and out["subject"]["approval_id"] == CARD_LIKE_APPROVAL
    assert out["action_digest"] == digest and out["subject"]["new_digest"] == digest and out["intent_id"] == rid
    assert out["run_id"] == DIGIT_RUN_ID
    assert out["rationale"] == "Phone: «pii:PHONE_NUMBER»"
    # An id field whose value is not in that id's format is just text: redacted.
    odd = redact_tree({"approval_id": f"call {PHONE}", "action_digest": PHONE}, c)
    assert PHONE not in str(odd)


def test_action_digest_is_an_hmac_under_the_key_and_still_binds() -> None:
    args = {"label": "Email", "value": "canary.alice.7f3k@example.com"}
    url = "https://shop.example/checkout"
    payload = canonical_bytes(digest_payload("fill", args, url, None, {}))
    keyed = action_digest("fill", args, url, None, {}, key=KEY)
    assert keyed == hmac.new(KEY, ACTION_DIGEST_DOMAIN + payload, hashlib.sha256).hexdigest()
    assert keyed != hashlib.sha256(payload).hexdigest()  # no longer a guessable plain hash
    assert keyed != action_digest("fill", args, url, None, {}, key=b"o" * 32)
    assert keyed == action_digest("fill", dict(args), url + "#x", None, {}, key=KEY)  # recomputed: same
    assert keyed != action_digest("fill", {**args, "value": "other@example.com"}, url, None, {}, key=KEY)
    # Without a key: keyed all the same (a per-process key), consistent, and not the plain hash.
    assert action_digest("fill", args, url, None, {}) == action_digest("fill", args, url, None, {})
    assert action_digest("fill", args, url, None, {}) != hashlib.sha256(payload).hexdigest()
