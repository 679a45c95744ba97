"""The one thread a session's browser lives on, and what it does while no call is asked for.

Sync Playwright is bound to the thread that started it, and it runs its route handlers (the
request gate) only while that thread talks to the browser. So every call of a session runs on this
thread, one at a time, and between calls the thread keeps the session honest by itself: it pumps
the browser (the page's own requests are judged at once, their refusals recorded) and ends the run
when the mission's timeout has passed — whether the agent is an MCP client or a Python framework
that is busy thinking.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from runner.lifecycle import try_quietly

T = TypeVar("T")


class SessionWorker:
    """Runs submitted calls in order on its own thread; ``idle`` runs whenever none is waiting."""

    IDLE_S = 0.1

    def __init__(self, idle: Callable[[], object], name: str = "warden-session") -> None:
        self._idle = idle
        self._jobs: queue.Queue[tuple[Callable[[], Any], Future[Any]] | None] = queue.Queue()
        self._stopped = False
        self.thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=self.IDLE_S)
            except queue.Empty:
                try_quietly(self._idle)
                continue
            if job is None:
                return
            fn, future = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as exc:  # handed to the caller, like an executor
                    future.set_exception(exc)

    def on_thread(self) -> bool:
        return threading.current_thread() is self.thread

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        future: Future[T] = Future()
        if self._stopped:  # nothing would ever run it
            future.set_exception(RuntimeError("the session's thread has stopped"))
        else:
            self._jobs.put((lambda: fn(*args), future))
        return future

    def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the worker thread; directly when already on it, or once the thread has
        stopped (the run is closed then: nothing left touches the browser)."""
        if self.on_thread() or self._stopped:
            return fn(*args)
        return self.submit(fn, *args).result()

    def shutdown(self) -> None:
        """Stop after the calls already submitted; idempotent."""
        if not self._stopped:
            self._stopped = True
            self._jobs.put(None)
        if not self.on_thread():
            self.thread.join()
