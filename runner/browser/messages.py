"""Playwright's error messages cut down to what Warden shows and records.

A Playwright error carries a multi-line call log (and sometimes a stack); the step loop, the
evidence and the terminal want one short line, so every driver module reports through here.
"""

from __future__ import annotations

MAX_MESSAGE = 300


def short_message(exc: BaseException) -> str:
    """The first line of a Playwright message: no call log, no stack, at most ``MAX_MESSAGE`` characters."""
    text = str(getattr(exc, "message", None) or exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 1] + "…"
