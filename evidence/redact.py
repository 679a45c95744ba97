"""Redaction: every string the evidence writer writes passes through one ``Redactor`` first.

Redactors compose (``RedactorChain``): the secret redactor replaces each resolved secret value by
``«secret:NAME»``; the PII redactor (guards.pii) replaces detected PII by a masked form.
A redactor that fails must raise: the writer then refuses to write (fail closed), never writes raw.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol


class Redactor(Protocol):
    def redact(self, text: str) -> str: ...


class SecretRedactor:
    """Replaces every occurrence of each secret value (and its common encodings) by «secret:NAME»."""

    def __init__(self, secrets: Mapping[str, str] | None = None) -> None:
        self._secrets: dict[str, str] = {}
        for name, value in (secrets or {}).items():
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        if value:
            self._secrets[name] = value

    def redact(self, text: str) -> str:
        # Longest first, so a secret that contains another is replaced whole.
        for name, value in sorted(self._secrets.items(), key=lambda kv: -len(kv[1])):
            for form in _encodings(value):
                if form in text:
                    text = text.replace(form, f"«secret:{name}»")
        return text


def _encodings(value: str) -> Iterable[str]:
    from urllib.parse import quote, quote_plus

    seen: set[str] = set()
    for form in (value, quote(value, safe=""), quote_plus(value), value.replace('"', '\\"')):
        if form and form not in seen:
            seen.add(form)
            yield form


class RedactorChain:
    def __init__(self, redactors: Sequence[Redactor] = ()) -> None:
        self.redactors: list[Redactor] = list(redactors)

    def add(self, redactor: Redactor) -> None:
        self.redactors.append(redactor)

    def redact(self, text: str) -> str:
        for r in self.redactors:
            text = r.redact(text)
        return text


def redact_tree(value: Any, redactor: Redactor) -> Any:
    """Redact every string (keys included) of a JSON-like tree; returns a new tree, input untouched."""
    if isinstance(value, str):
        return redactor.redact(value)
    if isinstance(value, Mapping):
        return {redactor.redact(str(k)): redact_tree(v, redactor) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_tree(v, redactor) for v in value]
    return value
