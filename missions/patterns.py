"""The text patterns a mission writes in danger zones: ``/regex/flags`` or exact text (spaces folded, any case).

Compiled here, at load time, so a bad regex is a mission error (exit 2), not a run failure.
"""

from __future__ import annotations

import re

_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE, "u": 0}
_SPACES = re.compile(r"\s+")


def compile_text(pattern: str) -> re.Pattern[str] | str:
    """``/regex/flags`` → a compiled regex; anything else → the exact text, normalised.

    Raises ``ValueError`` for a bad regex or an unknown flag (flags: i, m, s, x, u).
    """
    if len(pattern) >= 2 and pattern.startswith("/") and pattern.rfind("/") > 0:
        end = pattern.rfind("/")
        body, flags = pattern[1:end], pattern[end + 1 :]
        bits = 0
        for f in flags:
            if f not in _FLAGS:
                raise ValueError(f"unknown regex flag {f!r} in {pattern!r} (use i, m, s, x)")
            bits |= _FLAGS[f]
        try:
            return re.compile(body, bits)
        except re.error as exc:
            raise ValueError(f"invalid regex {pattern!r}: {exc}") from None
    return normalise(pattern).casefold()


def normalise(text: str) -> str:
    return _SPACES.sub(" ", text).strip()
