"""The cyclic garbage collector paused around a burst of allocations that form no cycles.

Why: Warden's long-lived heap (Presidio, spaCy, SQLAlchemy, Playwright) is large, and collections
triggered by a burst's allocations walk all of it. Used for a run's first start (then frozen out of
the collector's reach) and for bulk evidence groups.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused(pause: bool = True, *, freeze_after: bool = False) -> Iterator[None]:
    """The collector off while the block runs, back on after it (``gc.freeze`` first when
    ``freeze_after``); nothing changes when ``pause`` is false or the collector was already off."""
    if not pause or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if freeze_after:
            gc.freeze()
        gc.enable()
