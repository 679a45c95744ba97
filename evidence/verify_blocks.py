"""The lines of a byte range of ``records.jsonl``, read in large blocks (evidence.verify_stream)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

BLOCK = 4 << 20
"""Bytes read at a time: one ``split`` per block instead of a ``readline`` per line."""


def line_blocks(f: BinaryIO, start: int, end: int | None, torn: list[int], block: int = BLOCK) -> Iterator[list[bytes]]:
    """Lists of the complete lines (without their newline) that start in bytes [start, end) of
    ``f``, in order, as a ``readline`` loop from ``start`` stopping at the first line starting at or
    after ``end`` reads them (the line running over ``end`` is read whole). A last piece without
    its newline (a torn line) is not yielded: its length is appended to ``torn``."""
    f.seek(start)
    left = None if end is None else end - start  # bytes before the cut still to read
    rest = b""  # the start of a line whose newline is not read yet
    while left is None or left > 0:
        data = f.read(block if left is None else min(block, left))
        if not data:
            break
        if left is not None:
            left -= len(data)
        lines = data.split(b"\n")
        if rest:
            lines[0] = rest + lines[0]
        rest = lines.pop()  # after the block's last newline
        if lines:
            yield lines
    if rest and left == 0:  # a line that starts before the cut: read whole
        rest += f.readline()
        if rest.endswith(b"\n"):
            yield [rest[:-1]]
            rest = b""
    if rest:
        torn.append(len(rest))
