"""At most one piece of work in flight beside its caller, in one thread of its own, settled in order.

Why: a record that gates nothing (a page's ``pii_finding``: redaction of ~1,500 values) can be
written while the step loop waits on the browser for the screenshot, instead of before it. The
writer (``EvidenceWriter.append_soon``) settles this before every other call, so what is written
stays in call order and a failure is seen before anything is written after it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class Behind:
    """One worker thread (started on first use) running one submitted call at a time."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._pool: ThreadPoolExecutor | None = None
        self._future: Future[Any] | None = None
        self._worker: int | None = None  # the worker thread's ident
        self._lock = threading.Lock()

    def submit(self, work: Callable[[], Any]) -> None:
        """Run ``work`` in the worker; the previous submission must be settled (``settle``) first."""
        with self._lock:
            if self._future is not None:
                raise RuntimeError("the previous submission is not settled")
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._name,
                                                initializer=self._note_worker)
            self._future = self._pool.submit(work)

    def _note_worker(self) -> None:
        self._worker = threading.get_ident()

    def settle(self) -> BaseException | None:
        """Wait for the submission in flight; its exception (None when it succeeded or there is none).
        From the worker thread itself: nothing to wait for (it is what runs)."""
        future = self._future
        if future is None or threading.get_ident() == self._worker:
            return None
        # Waits. Forgotten only once finished: a caller interrupted here (Ctrl-C) leaves it in
        # flight, and the next call waits for it again, so nothing is written before it.
        error = future.exception()
        with self._lock:
            if self._future is future:
                self._future = None
        return error

    def close(self) -> None:
        """Stop the worker once what is in flight has finished."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
