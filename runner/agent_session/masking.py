"""What goes back to the model is masked like what goes into the evidence: PII and secrets.

The run's redactor (secrets by value and encodings, then PII detection plus every value typed or
found during the run) rewrites the text; each result then says how many values of each entity
were masked. Warden's own ids (run id, folder) are protected in the redactor and never masked.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping

MARK = re.compile(r"«(pii|secret):([A-Za-z0-9_]+)»")


def _marks(text: str) -> Counter[str]:
    return Counter(f"{kind}:{name}" if kind == "secret" else name for kind, name in MARK.findall(text))


def mask(text: str, redact: Callable[[str], str]) -> tuple[str, Counter[str]]:
    """``(masked text, entity -> values masked)``; marks already in the page are not counted."""
    masked = redact(text)
    counts = _marks(masked)
    counts.subtract(_marks(text))
    return masked, Counter({k: v for k, v in counts.items() if v > 0})


def masked_line(counts: Mapping[str, int]) -> str:
    """The one line every result carries: what was masked, by entity (``none`` when nothing was)."""
    if not counts:
        return "Masked: none"
    return "Masked: " + ", ".join(f"{name} ×{n}" for name, n in sorted(counts.items()))
