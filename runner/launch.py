"""Starting the sandbox: Chromium launches while the PII engine builds, then the driver opens on it.

Launching is not an action, nor is opening the context and its blank page: both happen while the
PII engine builds (``start_while_building``), the context's routes already installed and bound to
a ``LateGate``, which refuses every request (fail closed) until ``open_sandbox`` binds it to the
run's request gate, once the evidence is open. Nothing navigates before then: the first
navigation is step 1's action, after its intent record is durable. The sandbox's launch fields
come from the mission's domain policy (the resolver allowlist) and ``--headed``; a mission with
quarantined downloads opens its context only once the evidence folder exists (its staging folder
is in there).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from guards.observed import RequestInfo
from guards.urlmatch import DomainPolicy, resolvable_patterns
from kernel.errors import SandboxUnavailable
from runner.browser.driver import Driver, GateVerdict, SandboxConfig

if TYPE_CHECKING:
    from runner.assembly import RunServices
    from runner.browser.playwright_driver import LaunchedBrowser, PlaywrightDriver
    from runner.network import NetworkGate

T = TypeVar("T")


SANDBOX_OFF = (
    "Chromium's own sandbox is off: Warden runs as root (uid 0), where Chromium cannot use it; "
    "run Warden as an unprivileged user to keep it"
)
"""What the terminal says (a ``warning`` event) and what the start ``run_record`` holds
(``versions["chromium_sandbox"]``) when the browser runs without its sandbox."""


def chromium_sandbox_on() -> bool:
    """Chromium's sandbox cannot run as root; everywhere else it is on (there is no option to turn it off)."""
    return os.geteuid() != 0


def sandbox_state() -> str:
    """``on``, or ``off: running as root`` — recorded in the start ``run_record``'s ``versions``."""
    return "on" if chromium_sandbox_on() else "off: running as root"


def sandbox_notice() -> str | None:
    """The warning to show when the sandbox is off (None when it is on)."""
    return None if chromium_sandbox_on() else SANDBOX_OFF


def sandbox_config(executable: Path, policy: DomainPolicy, *, headed: bool = False) -> SandboxConfig:
    """The launch fields of the sandbox (``open_sandbox`` adds the gate, events and downloads)."""
    return SandboxConfig(
        executable=executable,
        resolvable_hosts=resolvable_patterns(policy),
        headless=not headed,
        chromium_sandbox=chromium_sandbox_on(),
    )


def build_while_launching(build: Callable[[], T], launch_config: SandboxConfig) -> tuple[T, LaunchedBrowser]:
    """``build()`` in a worker thread while the browser launches in this one; the build's error first."""
    built, launched, _ = start_while_building(build, launch_config, None)
    return built, launched


class LateGate:
    """The request gate of a context opened before the run's gate exists (while the PII engine builds).

    Until ``bind``: every request is refused as a gate error (the hooks then refuse it, report it and
    raise the error after the next action: fail closed), and the events seen are kept, then handed
    to the run's gate when bound, so they are recorded as if the gate had been there. None is
    expected: the page stays blank until step 1's action.
    """

    def __init__(self) -> None:
        self._gate: NetworkGate | None = None
        self._pending: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    @property
    def bound(self) -> bool:
        return self._gate is not None

    def bind(self, gate: NetworkGate) -> None:
        with self._lock:
            if self._gate is not None:
                raise SandboxUnavailable("the sandbox's request gate is already bound")
            self._gate, pending, self._pending = gate, self._pending, []
        for name, data in pending:
            gate.on_event(name, data)

    def __call__(self, request: RequestInfo) -> GateVerdict:
        gate = self._gate
        if gate is None:
            raise SandboxUnavailable("a request before the run's request gate was open: refused")
        return gate(request)

    def on_event(self, name: str, data: Mapping[str, Any]) -> None:
        with self._lock:
            gate = self._gate
            if gate is None:
                self._pending.append((name, dict(data)))
                return
        gate.on_event(name, data)


Opened: TypeAlias = "tuple[PlaywrightDriver, LateGate] | SandboxUnavailable | None"
"""What ``start_while_building`` opened early: the driver and its gate, the error that refused it
(raised by ``open_sandbox`` once the evidence is open, so the refusal is recorded), or nothing."""


def open_early(launched: LaunchedBrowser, launch_config: SandboxConfig) -> tuple[PlaywrightDriver, LateGate]:
    """The driver (context, routes, blank page) on a launched browser, its gate bound later."""
    from runner.browser.playwright_driver import open_driver

    late = LateGate()
    config = replace(launch_config, request_gate=late, on_event=late.on_event)
    return open_driver(config, launched=launched), late


def start_while_building(
    build: Callable[[], T], launch_config: SandboxConfig, early: bool | None = True,
    after_launch: Callable[[T], None] | None = None,
) -> tuple[T, LaunchedBrowser, Opened]:
    """``build()`` in a worker thread while the browser launches in this one — and, with ``early``,
    while the context and its blank page open on it (``open_early``); the build's error first.

    ``after_launch(built)``: the worker's next task, once the build is done and the browser has
    launched (never when the launch failed or was interrupted): it runs beside the early open. An
    error of it is raised as the build's would be. When this function raises after the launch, it
    has waited for the worker first, so whatever ``after_launch`` made is the caller's to close.

    (Sync Playwright is bound to its thread, so the browser launches here.) A build error wins
    over a launch or open error, as when the build ran first; the browser is closed on every
    error path.
    """
    from runner.browser.playwright_driver import launch_browser

    box: dict[str, Any] = {}
    launched_ok: list[bool] = []  # the launch's outcome, decided once (the worker waits for it)
    decided = threading.Event()

    def decide(ok: bool) -> None:
        if not decided.is_set():
            launched_ok.append(ok)
            decided.set()

    def work() -> None:
        try:
            built = box["built"] = build()
            if after_launch is not None:
                decided.wait()
                if launched_ok[0]:
                    after_launch(built)
        except BaseException as exc:  # re-raised in the calling thread
            box["error"] = exc

    worker = threading.Thread(target=work, name="warden-pii-build", daemon=True)
    worker.start()
    launched: LaunchedBrowser | None = None
    opened: Opened = None
    try:
        try:
            launched = launch_browser(launch_config)
            decide(True)
            if early:
                try:
                    opened = open_early(launched, launch_config)  # closes the browser itself when it fails
                except SandboxUnavailable as exc:  # raised by open_sandbox, once the evidence records it
                    opened = exc
        except Exception:  # (Ctrl-C goes straight out, below)
            decide(False)
            worker.join()
            if "error" in box:  # the PII engine's error is reported, as when it was built first
                raise box["error"] from None
            raise
        worker.join()
        if "error" in box:
            raise box["error"]
    except BaseException:
        if not decided.is_set():
            decide(False)  # interrupted during the launch: after_launch never runs
        elif after_launch is not None and worker.is_alive():
            worker.join()  # it may be running: what it made is closed by the caller
        if isinstance(opened, tuple):
            opened[0].close()
        if launched is not None:
            launched.close()
        raise
    built: T = box["built"]
    return built, launched, opened


def open_sandbox(
    executable: Path,
    services: RunServices,
    *,
    headed: bool = False,
    downloads_dir: Path | None = None,
    launched: LaunchedBrowser | None = None,
    early: Opened = None,
) -> Driver:
    """The driver on the launched browser, every request routed through the run's request gate.

    ``early``: the driver ``start_while_building`` opened, whose ``LateGate`` is bound here to the
    run's gate (the same sandbox: no downloads folder, the resolver allowlist of this policy)."""
    from runner.browser.playwright_driver import open_driver

    gate = services.request_gate
    if gate is None:  # fail closed: no routing layer means no decisions and no records
        raise SandboxUnavailable("no request gate was built: the run cannot be contained")
    config = replace(
        sandbox_config(executable, services.policy, headed=headed),
        request_gate=gate,
        downloads_dir=downloads_dir,
        on_event=gate.on_event,
    )
    if isinstance(early, SandboxUnavailable):  # the early open failed: the run is refused, on record
        raise early
    if early is not None:
        driver, late = early
        if downloads_dir is not None or list(driver.config.resolvable_hosts) != list(config.resolvable_hosts):
            raise SandboxUnavailable("the opened browser does not match the sandbox config: not used")
        late.bind(gate)
        return driver
    return open_driver(config, launched=launched)
