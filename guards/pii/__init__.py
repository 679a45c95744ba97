"""PII guard core: offline Presidio scanning, keyed HMACs, masked previews and evidence redaction.

Importing this package must stay cheap: Presidio (≈1 s of imports) is only loaded when an analyzer
is built (``guards.pii.engine.build_analyzer``), so commands that never scan never pay for it.
Names are re-exported lazily for the same reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from guards.pii.errors import EvidenceKeyError, PiiEngineUnavailable, PiiEntityUnsupported, PiiError, PiiScanError

if TYPE_CHECKING:
    from guards.pii.finding import Finding
    from guards.pii.keyed import EvidenceKey, key_id, load_evidence_key, masked_preview, value_hmac
    from guards.pii.redactor import KnownValueRedactor, PiiRedactor
    from guards.pii.scanner import PiiScanner

_LAZY = {
    "EvidenceKey": "guards.pii.keyed",
    "key_id": "guards.pii.keyed",
    "load_evidence_key": "guards.pii.keyed",
    "masked_preview": "guards.pii.keyed",
    "value_hmac": "guards.pii.keyed",
    "KnownValueRedactor": "guards.pii.redactor",
    "PiiRedactor": "guards.pii.redactor",
    "Finding": "guards.pii.finding",
    "PiiScanner": "guards.pii.scanner",
}

__all__ = [
    "EvidenceKey",
    "EvidenceKeyError",
    "Finding",
    "KnownValueRedactor",
    "PiiEngineUnavailable",
    "PiiEntityUnsupported",
    "PiiError",
    "PiiRedactor",
    "PiiScanError",
    "PiiScanner",
    "key_id",
    "load_evidence_key",
    "masked_preview",
    "value_hmac",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(module), name)
