"""The one seam between Warden and the browser.

The step loop sees only this module's types, and the guards only the observations the driver
fills in (``guards.observed``: the element an action will hit, a request, page text).
``playwright_driver`` implements ``Driver`` with Playwright (from the modules beside it); nothing
outside ``runner.browser`` imports Playwright (tests of the seam may).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from guards.observed import ElementInfo, RequestInfo, TextBlock


class DriverError(Exception):
    """An action could not be performed. ``transient`` marks failures worth retrying for idempotent steps."""

    transient: bool = False


class ActionFailed(DriverError):
    """Element not found, timeout, assertion failed: the step failed."""


class TransientFailure(DriverError):
    """A network hiccup or navigation timeout: an idempotent action may be retried."""

    transient = True


class NavigationBlocked(DriverError):
    """The sandbox refused the navigation (allowlist): a guardrail stop, never retried."""

    def __init__(self, message: str, url: str) -> None:
        super().__init__(message)
        self.url = url


@dataclass(frozen=True)
class GateVerdict:
    allow: bool
    reason: str = ""


RequestGate = Callable[[RequestInfo], GateVerdict]

# The names ``on_event`` is called with. Defined here, on the Playwright-free side of the seam, so
# the network gate can tell them apart without importing Playwright.
EVENT_POPUP = "popup"
EVENT_REQUEST_REFUSED = "request_refused"
EVENT_WEBSOCKET_REFUSED = "websocket_refused"
EVENT_DOWNLOAD_REFUSED = "download_refused"
EVENT_DOWNLOAD_SAVED = "download_saved"
EVENT_DOWNLOAD_FAILED = "download_failed"
EVENT_DIALOG = "dialog"
EVENT_PAGE_CRASHED = "page_crashed"
EVENT_GATE_ERROR = "gate_error"


@dataclass(frozen=True)
class SandboxConfig:
    """How to launch the sandbox. ``resolvable_hosts`` feeds Chromium's host-resolver allowlist."""

    executable: Path
    resolvable_hosts: Sequence[str]  # host patterns ("a.com", "*.a.com"); everything else resolves to nothing
    headless: bool = True
    chromium_sandbox: bool = False  # Chromium's own sandbox (on for non-root users, e.g. in the Docker image)
    downloads_dir: Path | None = None  # None: downloads refused
    viewport: tuple[int, int] = (1280, 800)
    request_gate: RequestGate | None = None  # every request the context routes goes through it
    on_event: Callable[[str, Mapping[str, Any]], None] | None = None  # popups, downloads, refusals


@dataclass(frozen=True)
class StepOutcome:
    call: str  # the Playwright call made, as text
    url_after: str
    value: str | None = None  # extract: the value read


@dataclass(frozen=True)
class AriaSnapshot:
    """The accessibility tree an agent reads (``[ref=eN]`` marks), its refs, and its document's token."""

    text: str
    refs: frozenset[str]
    document: str  # changes with each new main-frame document: refs of another token are stale
    url: str


class Driver(Protocol):
    def page_url(self) -> str: ...

    def describe(self, kind: str, args: Mapping[str, Any]) -> str:
        """The Playwright call that ``perform`` would make, as text (for the intent record)."""
        ...

    def perform(self, kind: str, args: Mapping[str, Any], timeout_s: float) -> StepOutcome: ...

    def screenshot(
        self, *, full_page: bool = False, mask_selectors: Sequence[str] = (), outline: Sequence[str] = ()
    ) -> bytes:
        """A PNG of the page; ``mask_selectors`` painted over, ``outline`` (CSS selectors) outlined in red."""
        ...

    def resolve(
        self, kind: str, args: Mapping[str, Any], timeout_s: float, *, selectors: Sequence[str] = ()
    ) -> ElementInfo:
        """The element ``perform(kind, args)`` would hit, described now (danger zones, approvals).

        Raises ``ActionFailed`` when the action would fail to find it (none within the timeout, or
        several); returns ``found=False`` when it exists but cannot be described. ``selectors`` are
        tested against it (and its ancestors) in the page: see ``ElementInfo.matched_selectors``.
        """
        ...

    def page_text_blocks(self) -> list[TextBlock]:
        """The main page's visible text as blocks, and the form fields holding a value (PII page scan)."""
        ...

    def aria_snapshot(self) -> AriaSnapshot:
        """The page's accessibility snapshot with element refs (``runner/browser/aria.py``)."""
        ...

    def document_token(self) -> str:
        """A token of the main frame's current document (compare with ``AriaSnapshot.document``)."""
        ...

    def pump(self, seconds: float) -> None:
        """Let pending browser events (routed requests: the gate) run while no action is asked for."""
        ...

    def history_back_url(self) -> str | None:
        """The URL ``goto`` with ``back`` would return to (the previous history entry), or None."""
        ...

    def tabs(self) -> tuple[list[str], int]:
        """The open pages' URLs (popups too, in opening order) and the index of the current one."""
        ...

    def select_tab(self, index: int, *, new: bool = False, close: bool = False) -> None:
        """Make tab ``index`` current; ``new``: open a blank tab and make it current; ``close``: close
        tab ``index`` (the current one stays, or the last left). The gate covers every tab alike."""
        ...

    def close(self) -> None: ...
