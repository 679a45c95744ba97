"""Engine: offline only, lazy import, clear errors for PERSON without a model and missing models."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from guards.pii import engine
from guards.pii.errors import PiiEngineUnavailable, PiiEntityUnsupported


def test_importing_guards_pii_does_not_import_presidio() -> None:
    code = ("import sys, guards.pii, guards.pii.keyed, guards.pii.errors; "
            "bad = [m for m in sys.modules if m.startswith(('presidio', 'spacy'))]; print(bad); sys.exit(bool(bad))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout + r.stderr


def test_supported_entities_without_model() -> None:
    ents = engine.supported_entities(None)
    assert {"EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS"} <= set(ents)
    assert "PERSON" not in ents
    assert "LOCATION" not in ents


def test_person_without_model_is_a_clear_error() -> None:
    with pytest.raises(PiiEntityUnsupported) as ei:
        engine.build_analyzer(["EMAIL_ADDRESS", "PERSON"], None)
    msg = str(ei.value)
    assert "PERSON" in msg
    assert "NER model" in msg
    assert "pii.nlp_model" in msg
    assert "en_core_web_sm" in msg
    assert "LOCATION" in msg  # says what a model would add


def test_unknown_entity_is_an_error() -> None:
    with pytest.raises(PiiEntityUnsupported, match="FOO_BAR"):
        engine.build_analyzer(["FOO_BAR"], None)


def test_missing_model_is_named_and_nothing_is_downloaded(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*a: object, **k: object) -> None:
        raise AssertionError("network attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    import spacy.cli

    monkeypatch.setattr(spacy.cli, "download", no_network)
    with pytest.raises(PiiEngineUnavailable) as ei:
        engine.build_analyzer(["EMAIL_ADDRESS"], "en_core_web_warden_missing")
    msg = str(ei.value)
    assert "en_core_web_warden_missing" in msg
    assert "pip install" in msg
    assert "never downloads" in msg
    with pytest.raises(PiiEngineUnavailable):
        engine.supported_entities("en_core_web_warden_missing")


def test_download_hook_is_replaced_by_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Even if the pre-check were bypassed, Presidio's download hook raises instead of downloading."""
    import spacy.cli

    monkeypatch.setattr(spacy.cli, "download", lambda *a, **k: pytest.fail("download attempted"))
    monkeypatch.setattr(engine, "_require_model", lambda name: None)
    with pytest.raises(PiiEngineUnavailable, match="not installed"):
        engine.build_analyzer(["EMAIL_ADDRESS"], "en_core_web_warden_missing")


def test_only_requested_recognizers_and_env() -> None:
    import os

    a = engine.build_analyzer(["IBAN_CODE", "CREDIT_CARD"], None)
    ents = {e for r in a.registry.recognizers for e in r.supported_entities}
    assert ents == {"IBAN_CODE", "CREDIT_CARD"}
    assert os.environ["TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS"] == ""
    assert type(a.nlp_engine).__name__ == "NoOpNlpEngine"
