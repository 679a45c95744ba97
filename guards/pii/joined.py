"""One recognizer call over many blocks' pieces joined, mapped back to the blocks.

Why its own module: the page scan (``scanner.PiiScanner``) and the phone pass's worker process
(``phone_worker``) both run it, and the worker must not import Presidio (its start would cost
~0.6 s of CPU instead of ~0.1). Pure: the recognizer is a callable.

A hit that crosses from one piece into the next (it spans the separator) is dropped and those
pieces are recognized again one by one, so a result never joins text of two blocks.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence

SEP = "\n\n"

Hit = tuple[str, float, int, int, str, bool]  # entity, score, start, end, recognizer id, context-enhanced
Spans = Sequence[tuple[int, int]] | tuple[int, int]


def joined_pass(texts: Sequence[str], spans: Sequence[Spans], recognize: Callable[[str], list[Hit]]) -> list[list[Hit]]:
    """The hits of ``recognize`` over the given spans of ``texts``, per text (offsets in that text)."""
    per_block: list[list[Hit]] = [[] for _ in texts]
    pieces: list[tuple[int, int, int]] = []  # (block, start in block, end in block)
    for k, sp in enumerate(spans):
        for a, b in ([sp] if isinstance(sp, tuple) else sp):
            pieces.append((k, a, b))
    if not pieces:
        return per_block
    starts, pos, chunks = [], 0, []
    for k, a, b in pieces:
        starts.append(pos)
        chunks.append(texts[k][a:b])
        pos += (b - a) + len(SEP)
    retry: set[int] = set()
    for hit in recognize(SEP.join(chunks)):
        j = bisect.bisect_right(starts, hit[2]) - 1
        k, a, b = pieces[j]
        if hit[3] > starts[j] + (b - a):  # crosses into the next piece: redo those alone
            retry.add(j)
            retry.update(i for i in range(j + 1, len(pieces)) if starts[i] < hit[3])
            continue
        per_block[k].append((hit[0], hit[1], hit[2] - starts[j] + a, hit[3] - starts[j] + a, hit[4], hit[5]))
    for j in sorted(retry):
        k, a, b = pieces[j]
        for hit in recognize(texts[k][a:b]):
            per_block[k].append((hit[0], hit[1], hit[2] + a, hit[3] + a, hit[4], hit[5]))
    return per_block
