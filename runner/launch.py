"""Starting the sandbox: Chromium launches while the PII engine builds, then the driver opens on it.

Launching is not an action: no browser context and no page exist until the evidence is open
(``open_sandbox``, called by the run once its first records are durable). The sandbox's launch
fields come from the mission's domain policy (the resolver allowlist) and ``--headed``; the
request gate, the network events and the downloads folder are added when the driver opens.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from guards.urlmatch import DomainPolicy, resolvable_patterns
from kernel.errors import SandboxUnavailable
from runner.browser.driver import Driver, SandboxConfig

if TYPE_CHECKING:
    from runner.assembly import RunServices
    from runner.browser.playwright_driver import LaunchedBrowser

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
    """``build()`` in a worker thread while the browser launches in this one; the build's error first.

    (Sync Playwright is bound to its thread, so the browser launches here.) A build error wins
    over a launch error, as when the build ran first; the browser is closed on every error path.
    """
    from runner.browser.playwright_driver import launch_browser

    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["built"] = build()
        except BaseException as exc:  # re-raised in the calling thread
            box["error"] = exc

    worker = threading.Thread(target=work, name="warden-pii-build", daemon=True)
    worker.start()
    launched: LaunchedBrowser | None = None
    try:
        try:
            launched = launch_browser(launch_config)
        except Exception:  # (Ctrl-C goes straight out: the daemon worker is abandoned)
            worker.join()
            if "error" in box:  # the PII engine's error is reported, as when it was built first
                raise box["error"] from None
            raise
        worker.join()
        if "error" in box:
            raise box["error"]
    except BaseException:
        if launched is not None:
            launched.close()
        raise
    built: T = box["built"]
    return built, launched


def open_sandbox(
    executable: Path,
    services: RunServices,
    *,
    headed: bool = False,
    downloads_dir: Path | None = None,
    launched: LaunchedBrowser | None = None,
) -> Driver:
    """The driver on the launched browser, every request routed through the run's request gate."""
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
    return open_driver(config, launched=launched)
