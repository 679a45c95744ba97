"""Redaction: no canary survives, encoded forms included; known values; the canary sweep itself."""

from __future__ import annotations

import json
import sqlite3
import struct
import zlib
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

from evidence.redact import RedactorChain, SecretRedactor, redact_tree
from guards.pii.errors import PiiScanError
from guards.pii.redactor import KnownValueRedactor, PiiRedactor
from guards.pii.scanner import PiiScanner
from missions.model import PiiPolicy
from tests.guards.canaries import CANARIES, ENTITIES, paragraph, scan_bytes, scan_bytes_for_canaries

KEY = bytes(range(32))


@pytest.fixture(scope="module")
def redactor() -> PiiRedactor:
    # allow=EMAIL: the mission may handle e-mails, evidence still never stores them.
    return PiiRedactor(PiiScanner(PiiPolicy(entities=ENTITIES, allow=["EMAIL_ADDRESS"]), KEY))


def test_paragraph_with_all_canaries(redactor: PiiRedactor) -> None:
    text = paragraph()
    assert scan_bytes(text.encode())  # the sweep sees them before...
    out = redactor.redact(text)
    assert scan_bytes(out.encode()) == [], out  # ...and nothing after
    assert "«pii:EMAIL_ADDRESS»" in out
    assert "«pii:CREDIT_CARD»" in out


def test_bare_values_without_labels(redactor: PiiRedactor) -> None:
    text = " ; ".join(c.value for c in CANARIES)  # phones without context score 0.4: redaction goes to 0.4
    assert scan_bytes(redactor.redact(text).encode()) == []


def test_encoded_forms_in_logged_urls(redactor: PiiRedactor) -> None:
    for c in CANARIES:
        url = "https://portal.example.com/api?" + urlencode({"v": c.value})
        assert scan_bytes(redactor.redact(f"request refused: {url}").encode()) == [], c.id
        assert scan_bytes(redactor.redact(f"path /u/{quote(c.value, safe='')}/x").encode()) == [], c.id


def test_redact_tree_and_chain(redactor: PiiRedactor) -> None:
    chain = RedactorChain([SecretRedactor({"PW": "hunter2-secret"}), redactor])
    record = {"message": f"typed {CANARIES[0].value} with hunter2-secret", "nested": [paragraph()]}
    out = redact_tree(record, chain)
    blob = json.dumps(out, ensure_ascii=False)
    assert scan_bytes(blob.encode()) == []
    assert "«secret:PW»" in blob


def test_known_values_catch_what_detection_misses(redactor: PiiRedactor) -> None:
    redactor.redact("Card number: 4012 8888 8888 1881")  # detected once...
    echoed = "error: field rejected value '4012888888881881x' (code 4012-8888-8888-1881)"
    out = redactor.redact(echoed)
    assert "4012" not in out
    assert "«pii:CREDIT_CARD»" in out


def test_known_value_redactor_forms() -> None:
    k = KnownValueRedactor()
    k.add("Jane.Q.Doe@example.com", "EMAIL_ADDRESS")
    k.add("+44 20 7946 0958", "PHONE_NUMBER")
    k.add("ab", "X")  # too short: ignored rather than shredding text
    text = "jane.q.doe%40example.com / JANE.Q.DOE@EXAMPLE.COM / 442079460958 / 44 (20) 7946-0958 / ab"
    out = k.redact(text)
    assert "jane" not in out.lower()
    assert "7946" not in out
    assert out.endswith("/ ab")


def test_redactor_fails_closed() -> None:
    from tests.guards.test_pii_scanner import _raising_recognizer

    s = PiiScanner(PiiPolicy(entities=["EMAIL_ADDRESS"]), KEY)
    s.analyzer.registry.add_recognizer(_raising_recognizer("EMAIL_ADDRESS"))
    with pytest.raises(PiiScanError):
        PiiRedactor(s).redact("x@y.com")


def test_cache_by_text_hash(redactor: PiiRedactor) -> None:
    text = "Email: someone.else@example.com"
    first = redactor.redact(text)
    calls = redactor.scanner.analyzer_calls
    assert redactor.redact(text) == first
    assert redactor.scanner.analyzer_calls == calls


def _texts() -> list[str]:
    out = [paragraph(), "", "#button-12", "locator('#b12').click()"]
    for c in CANARIES:
        out += [f"typed {c.value}", "https://portal.example.com/api?" + urlencode({"v": c.value}),
                f"path /u/{quote(c.value, safe='')}/x", f"{c.value} again: {c.value}"]
    return out


def test_batch_redaction_equals_one_by_one_with_one_pass() -> None:
    """The writer redacts a record's (a group's) strings in one batch: the same text as one by one,
    never less, with a fixed number of Presidio calls instead of some per string."""
    policy = PiiPolicy(entities=ENTITIES, allow=["EMAIL_ADDRESS"])
    one, many = PiiRedactor(PiiScanner(policy, KEY)), PiiRedactor(PiiScanner(policy, KEY))
    texts = _texts()
    singles = [one.redact(t) for t in texts]
    batch = many.redact_many(texts)
    assert batch == singles
    assert all(scan_bytes(t.encode()) == [] for t in batch)
    assert many.scanner.analyzer_calls <= len(ENTITIES) + 2 < one.scanner.analyzer_calls
    calls = many.scanner.analyzer_calls
    assert many.redact_many(texts) == batch and many.scanner.analyzer_calls == calls  # cached by text hash
    # Through the writer's chain, with a protected id inside a text: pieces around it are redacted.
    chain = RedactorChain([SecretRedactor({"PW": "hunter2-secret"}), PiiRedactor(PiiScanner(policy, KEY))])
    chain.protect("20261121T000000000Z-run-4111111111111111-abcdef")
    mixed = [*texts, "run 20261121T000000000Z-run-4111111111111111-abcdef typed hunter2-secret"]
    assert chain.redact_many(mixed) == [chain.redact(t) for t in mixed]
    assert chain.redact_many(mixed)[-1] == "run 20261121T000000000Z-run-4111111111111111-abcdef typed «secret:PW»"


def test_a_value_learnt_later_is_redacted_where_detection_already_ran_without_running_it_again() -> None:
    """Detection is cached by text and never redone for a known text; the known-value pass is not."""
    r = PiiRedactor(PiiScanner(PiiPolicy(entities=ENTITIES), KEY))
    text = "order ref ZX-4471-QQ for the customer"
    assert r.redact(text) == text
    calls = r.scanner.analyzer_calls
    r.known.add("ZX-4471-QQ", "TYPED_VALUE")  # typed later in the run
    assert r.redact(text) == "order ref «pii:TYPED_VALUE» for the customer"
    assert r.redact_many([text, text]) == ["order ref «pii:TYPED_VALUE» for the customer"] * 2
    assert r.scanner.analyzer_calls == calls


# --------------------------------------------------------------------------- the sweep


def _png_with_text(tmp: Path, text: str) -> Path:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    png += chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(text.encode()))
    png += chunk(b"IEND", b"")
    p = tmp / "shot.png"
    p.write_bytes(png)
    return p


def test_sweep_finds_every_form(tmp_path: Path) -> None:
    import base64
    import hashlib

    email, card = CANARIES[0], next(c for c in CANARIES if c.entity_type == "CREDIT_CARD")
    (tmp_path / "records.jsonl").write_text(json.dumps({"m": hashlib.sha256(email.value.encode()).hexdigest()}))
    (tmp_path / "run.json").write_text(json.dumps({"b": base64.b64encode(b"xx" + card.value.encode()).decode()}))
    db = sqlite3.connect(tmp_path / "index.sqlite")
    db.execute("create table t(v text)")
    db.execute("insert into t values (?)", (quote(email.value, safe=""),))
    db.commit()
    db.close()
    _png_with_text(tmp_path, f"card {card.value}")
    hits = scan_bytes_for_canaries(tmp_path)
    forms = {(Path(h.path).name, h.canary_id, h.form.split(".")[0], h.chunk) for h in hits}
    assert ("records.jsonl", email.id, "sha256", "") in forms
    assert ("run.json", card.id, "base64", "") in forms
    assert any(f[0] == "index.sqlite" and f[1] == email.id and f[2] == "url" for f in forms)
    assert any(f[0] == "shot.png" and f[3] == "png:zTXt" for f in forms)


def test_sweep_clean_after_redaction(tmp_path: Path, redactor: PiiRedactor) -> None:
    (tmp_path / "records.jsonl").write_text(json.dumps({"text": redactor.redact(paragraph())}, ensure_ascii=False))
    assert scan_bytes_for_canaries(tmp_path) == []
