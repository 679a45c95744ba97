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
