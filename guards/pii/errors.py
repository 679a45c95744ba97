"""Errors of the PII guard. Messages never carry a scanned value (they may be printed)."""

from __future__ import annotations

from kernel.errors import UserError, WardenError


class PiiError(WardenError):
    """Base of the PII guard's errors."""


class PiiEngineUnavailable(PiiError, UserError):
    """The configured engine cannot be built offline (model not installed, entity needs a model)."""

    exit_code = 2


class PiiEntityUnsupported(PiiEngineUnavailable):
    """An entity was asked for that the configured engine cannot detect (e.g. PERSON without a model)."""


class PiiScanError(PiiError):
    """A scan failed or timed out: the caller must block the action (fail closed)."""

    exit_code = 3


class EvidenceKeyError(PiiError, UserError):
    """The evidence key is malformed, too short, or its key file is unsafe."""

    exit_code = 2
