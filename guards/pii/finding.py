"""One detected PII value: what the scanner returns and the guards hand back to the runner."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Where = Literal["page", "input", "request"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected value. ``value`` lives in memory only: it is not in repr and never in a record."""

    entity_type: str
    score: float
    start: int
    end: int
    value: str = field(repr=False, compare=False)
    value_hmac: str
    preview: str
    where: Where
    allowed: bool = False
    block: int | None = None  # scan_page: index of the text block
    source: str = "text"  # scan_request: path | query | query[name] | body | body.form[name] | body.json[...]


def dedupe_request_findings(found: list[tuple[int, Finding]]) -> list[Finding]:
    """One finding per (entity, value); a coarse match that swallows a finer one is dropped."""
    fine_values: dict[str, list[str]] = {}
    for fine, f in found:
        if fine:
            fine_values.setdefault(f.entity_type, []).append(f.value)
    best: dict[tuple[str, str], Finding] = {}
    for fine, f in found:
        if not fine and any(v != f.value and v in f.value for v in fine_values.get(f.entity_type, ())):
            continue
        k = (f.entity_type, f.value_hmac)
        if k not in best or f.score > best[k].score:
            best[k] = f
    return list(best.values())
