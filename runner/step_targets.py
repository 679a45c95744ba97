"""What a step acts on, as records, the progress line and ``warden check`` show it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The step arguments that say what the step acts on (values pass the redactor before being written).
TARGET_KEYS = (
    "url",
    "selector",
    "text",
    "role",
    "name",
    "label",
    "placeholder",
    "test_id",
    "key",
    "value",
    "option_label",
    "load_state",
    "seconds",
    "as_",
    "attribute",
)


def target_summary(kind: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """What the step acts on, for records and the progress line (values pass the redactor later)."""
    return {("as" if k == "as_" else k): args[k] for k in TARGET_KEYS if k in args}


def short_target(target: Mapping[str, Any]) -> str:
    """The target on one line, without the typed value (the progress line)."""
    return ", ".join(f"{k}={v}" for k, v in target.items() if k != "value")


def file_safe(name: str) -> str:
    """A screenshot's ``when`` as a file-name part: letters, digits, ``-`` and ``_``, at most 40."""
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name)[:40]
