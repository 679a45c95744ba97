"""The Playwright driver (node) started at the top of ``warden run``, taken over when Chromium launches.

Why: the driver boots for ~0.4-0.5 s (node plus Playwright's bundles) before it can launch
Chromium, and ``warden run`` spends about as long importing its own modules and checking the
mission first. Started as a plain child process at the start of the command, the driver boots on
the other core while Python imports; ``launch_browser``'s ``sync_playwright().start()`` then takes
that process over instead of spawning its own (``PipeTransport.connect``, Playwright 1.65.2: the
version is pinned).

What is taken over is exactly what Playwright would start: the same executable, entry point,
arguments and environment (``get_driver_env()`` at the time of the take-over, but for variables
only Warden's Python side reads: ``PYTHON_SIDE``), a process still running, whose pipes nobody
has read or written. Anything else, and the process is stopped and Playwright starts its own, as
without this module. The early driver runs no browser and opens no page: until it is taken over it
waits for its first message. A run that stops before its launch (a mission refused: exit 2)
closes it (``discard_early_driver``; the driver also exits by itself when its stdin closes,
whatever ends this process).
"""

from __future__ import annotations

import atexit
import contextlib
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # asyncio is imported once the driver is spawned (it is on the path to the spawn)
    import asyncio

from runner.browser.node_cache import use_compile_cache

# Environment variables Warden's Python side sets for itself after the early start (the PII engine's
# tldextract, offline): node never reads them, so they do not stop the take-over.
PYTHON_SIDE = frozenset({"TLDEXTRACT_CACHE", "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS"})
_STOP_WAIT_S = 2.0


@dataclass(frozen=True)
class _Early:
    popen: subprocess.Popen[bytes]
    command: tuple[str, ...]
    env: Mapping[str, str]


_lock = threading.Lock()
_early: _Early | None = None
taken_over = 0  # how many early drivers a Playwright connection took over (tests, benchmarks)


def start_driver_early() -> None:
    """Start the driver now (one at a time); never raises: without it, Playwright starts its own."""
    global _early
    with _lock:
        if _early is not None:
            return
        try:
            use_compile_cache()  # as launch_browser does before it starts Playwright
            command, env = _driver_command()
            popen = subprocess.Popen(
                list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=_stderr(), env=env,
                close_fds=True,
            )
        except Exception:
            return
        try:
            _install()
        except Exception:  # a Playwright without the transport this knows: it starts its own driver
            _stop(popen)
            return
        _early = _Early(popen, command, dict(env))


atexit.register(lambda: discard_early_driver())  # whatever ends the run (the driver's stdin closes anyway)


@contextlib.contextmanager
def early_driver() -> Iterator[None]:
    """The driver started now and, unless the launch inside took it over, stopped at the end."""
    start_driver_early()
    try:
        yield
    finally:
        discard_early_driver()


def discard_early_driver() -> None:
    """Stop the early driver unless Playwright took it over (idempotent)."""
    global _early
    with _lock:
        early, _early = _early, None
    if early is not None:
        _stop(early.popen)


def _driver_command() -> tuple[tuple[str, ...], dict[str, str]]:
    from playwright._impl._driver import compute_driver_executable, get_driver_env

    executable, entrypoint = compute_driver_executable()
    return (executable, entrypoint, "run-driver"), get_driver_env()


def _stderr() -> int | None:
    """Where the driver's stderr goes: this process's (as Playwright's ``_get_stderr_fileno``)."""
    for stream in (sys.stderr, sys.__stderr__):
        try:
            if stream is not None and not stream.closed:
                return stream.fileno()
        except (AttributeError, OSError, ValueError):
            continue
    return None


def _stop(popen: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(Exception):
        if popen.stdin is not None:
            popen.stdin.close()  # the driver exits when its stdin closes
        try:
            popen.wait(timeout=_STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(timeout=_STOP_WAIT_S)
    with contextlib.suppress(Exception):
        if popen.stdout is not None:
            popen.stdout.close()


def _take() -> _Early | None:
    """The early driver if it is what Playwright would start now and still running, else None (stopped)."""
    global _early
    with _lock:
        early, _early = _early, None
    if early is None:
        return None
    try:
        command, env = _driver_command()
        same = command == early.command and _comparable(env) == _comparable(early.env)
    except Exception:
        same = False
    if not same or early.popen.poll() is not None:
        _stop(early.popen)
        return None
    return early


def _comparable(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in PYTHON_SIDE}


class _TakenOver:
    """What ``PipeTransport`` reads of ``asyncio.subprocess.Process``: stdin, stdout, communicate()."""

    def __init__(self, popen: subprocess.Popen[bytes], stdin: asyncio.StreamWriter, stdout: asyncio.StreamReader):
        self._popen = popen
        self.stdin = stdin
        self.stdout = stdout

    async def communicate(self) -> tuple[None, None]:
        import asyncio

        await asyncio.get_running_loop().run_in_executor(None, self._popen.wait)
        return None, None


async def _streams(popen: subprocess.Popen[bytes]) -> tuple[asyncio.StreamWriter, asyncio.StreamReader]:
    """The driver's pipes as asyncio streams on the running loop (as ``create_subprocess_exec`` makes them)."""
    import asyncio

    loop = asyncio.get_running_loop()
    assert popen.stdin is not None and popen.stdout is not None
    reader = asyncio.StreamReader(limit=32768, loop=loop)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader, loop=loop), popen.stdout)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, popen.stdin)
    return asyncio.StreamWriter(transport, protocol, None, loop), reader


_installed = False


def _install() -> None:
    """Wrap ``PipeTransport.connect`` (once): it takes the early driver over when there is one."""
    global _installed
    if _installed:
        return
    from playwright._impl.transport import PipeTransport

    original = PipeTransport.connect

    async def connect(self: Any) -> None:
        import asyncio

        global taken_over
        early = _take()
        if early is None:
            return await original(self)
        try:
            stdin, stdout = await _streams(early.popen)
        except Exception:
            _stop(early.popen)
            return await original(self)
        self._stopped_future = asyncio.Future()
        self._proc = _TakenOver(early.popen, stdin, stdout)
        self._output = stdin
        taken_over += 1

    PipeTransport.connect = connect  # type: ignore[method-assign]
    _installed = True
