"""Make page-derived text safe to show on a terminal (SPEC §4, notes (d) 12 "channel integrity").

Text that came from a web page (an element's name, a URL, a selector built from page content)
must not be able to move the cursor, recolour or erase the prompt, set the window title, hide
text, or reorder what the approver reads. ``sanitize`` therefore removes:

- escape sequences: CSI (``ESC [`` ... and the 8-bit ``0x9B``), OSC (``ESC ]`` ... BEL/ST), DCS,
  SOS, PM and APC strings (up to ST), and any other two-byte ``ESC x`` sequence;
- every remaining C0 control (0x00–0x1F), DEL (0x7F) and every C1 control (0x80–0x9F); tabs and
  line breaks (``\\t \\n \\r``, U+2028, U+2029) become one space so a value stays on its line;
- bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069, U+200E/U+200F LRM/RLM,
  U+061C ALM) and zero-width / invisible characters (U+200B–U+200D, U+2060–U+2064, U+FEFF,
  U+180E, U+034F, U+115F/U+1160, U+3164, U+FFA0, the tag block U+E0000–U+E007F), and lone
  surrogates;

and caps the length (``…`` marks a cut). The output never contains ESC, a C0/C1 control or a
bidi control, whatever the input (a hypothesis property test holds us to it).
"""

from __future__ import annotations

import re

DEFAULT_LIMIT = 300
ELLIPSIS = "…"

# String-type sequences end at BEL or ST (ESC \ or 0x9C); an unterminated one swallows the rest.
_STRING_SEQ = r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c|$)"
_CSI_SEQ = r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
_ESC_SEQ = r"\x1b[\x20-\x2f]*[\x30-\x7e]?"
_SEQUENCES = re.compile(f"{_STRING_SEQ}|{_CSI_SEQ}|{_ESC_SEQ}")

_SPACE_LIKE = re.compile(r"[\t\n\r\v\f\u2028\u2029\x85]+")
_INVISIBLE = (
    "\x00-\x1f\x7f-\x9f"  # C0, DEL, C1
    "\u034f\u061c\u115f\u1160\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069"
    "\u3164\ufeff\uffa0"
    "\ud800-\udfff"  # lone surrogates (undecodable bytes) cannot be written to a terminal
    "\U000e0000-\U000e007f"
)
_DROP = re.compile(f"[{_INVISIBLE}]")

# What the property test checks: none of these may survive.
FORBIDDEN = re.compile(f"[{_INVISIBLE}]")


def sanitize(text: object, limit: int = DEFAULT_LIMIT) -> str:
    """``text`` (anything: it is ``str()``-ed) made terminal-safe, at most ``limit`` characters."""
    s = text if isinstance(text, str) else str(text)
    s = _SEQUENCES.sub("", s)
    s = _SPACE_LIKE.sub(" ", s)
    s = _DROP.sub("", s)
    if limit >= 1 and len(s) > limit:
        s = s[: limit - 1] + ELLIPSIS
    return s


def had_controls(text: str) -> bool:
    """True when ``sanitize`` had to remove something other than length (for a visible warning)."""
    return bool(_SEQUENCES.search(text) or _DROP.search(_SPACE_LIKE.sub(" ", text)))
