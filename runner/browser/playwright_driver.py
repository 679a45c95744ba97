"""``Driver`` implemented with Playwright's sync API on a fresh, ephemeral Chromium context.

This module starts things (Playwright, Chromium, the context and its main page) and assembles the
driver; each concern lives in its own module under ``runner.browser``:

* ``chromium``: the launch switches (resolver allowlist, disabled phone-home features, no proxy);
* ``context_hooks``: the request gate on every request and WebSocket, popups, downloads, dialogs;
* ``actions`` and ``targets``: what a step does and the call text that describes it;
* ``page_reading``: the element an action would hit, the page's visible text;
* ``screenshots``: PNGs with masks and the target outlined.

Sandbox layers installed here: a new browser per run and ``browser.new_context()`` (an in-memory
profile: nothing from a user profile, nothing survives the run), ``service_workers="block"``, no
permission grants and every prompt denied, downloads refused unless ``downloads_dir`` is set, no
video/HAR/tracing; the routes of ``context_hooks`` when ``request_gate`` is set, and behind them
the browser-level ``Fetch`` layer of ``browser_fetch`` (unload beacons and keepalive fetches).

Ctrl-C: the browser is launched with ``handle_sigint=False``. Measured: with Playwright's default
(True) a terminal SIGINT reaches the node driver (same process group), which closes every browser
and exits 130, so after ``KeyboardInterrupt`` every call fails with "connection closed". With
False, run-driver's own no-op SIGINT handler keeps node alive, and Chromium is in its own process
group (Playwright spawns it ``detached``), so after ``KeyboardInterrupt`` the page still answers and
``close()`` shuts everything down cleanly. ``close()`` also tolerates an already-dead driver.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from guards.observed import ElementInfo, TextBlock
from kernel.errors import SandboxUnavailable
from runner.browser.actions import describe_action, perform_action
from runner.browser.browser_fetch import BrowserFetch
from runner.browser.chromium import check_no_proxy, launch_args
from runner.browser.context_hooks import ContextHooks
from runner.browser.driver import ActionFailed, AriaSnapshot, SandboxConfig, StepOutcome
from runner.browser.last_words import JudgedRequests, send_away
from runner.browser.messages import short_message
from runner.browser.node_cache import use_compile_cache
from runner.browser.page_reading import describe_element, find_target_element, in_main_frame, read_text_blocks
from runner.browser.screenshots import MASK_COLOR, take_screenshot, warm_painter
from runner.browser.targets import has_target

# Closing: each page is first sent to about:blank, so what its pagehide/unload handlers send (a
# keepalive fetch, a beacon) is paused, judged and recorded while Playwright still delivers events.
LAST_WORDS_MS = 2000


class PlaywrightDriver:
    """One sandboxed browser, one main page. Use ``open_driver`` to make one."""

    def __init__(
        self, config: SandboxConfig, extra_args: Sequence[str] = (), launched: LaunchedBrowser | None = None
    ) -> None:
        self._config = config
        self._closed = False
        self._pw: Playwright | None = None
        self._browser: Browser | None = None
        self._context: BrowserContext | None = None
        self._page: Page | None = None
        # What the gate judged, by URL: the close waits for a page's last words on it (``last_words``).
        self._judged = JudgedRequests()
        watched = dataclasses.replace(
            config, request_gate=None if config.request_gate is None else self._judged.gate(config.request_gate),
            on_event=self._judged.on_event(config.on_event),
        )
        self._hooks = ContextHooks(watched, lambda: self._page)
        self._fetch_layer = BrowserFetch(watched, self._hooks.frames, self._hooks.emit, self._hooks.defer)
        self._start(extra_args, launched)

    # ------------------------------------------------------------------ lifecycle

    def _start(self, extra_args: Sequence[str], launched: LaunchedBrowser | None) -> None:
        config = self._config
        if launched is None:
            launched = launch_browser(config, extra_args=extra_args)
        else:
            try:
                same = launched.args == launch_args(config, extra_args) and launched.matches(config)
            except Exception:
                same = False
            if not same:  # the switches in force must be the ones this config asks for
                launched.close()
                raise SandboxUnavailable("the launched browser does not match the sandbox config: not used")
        self._pw, browser = launched.take()
        self._browser = browser
        try:
            if config.request_gate is not None:  # second layer: what the context route cannot see
                self._fetch_layer.install(browser)
            self._context = _new_sandbox_context(browser, config)
            self._hooks.install(self._context)
            self._page = self._context.new_page()
            warm_painter()  # Pillow imported in the painter thread while the first step begins
        except SandboxUnavailable:
            self.close()
            raise
        except Exception as exc:
            self.close()
            raise SandboxUnavailable(f"cannot launch Chromium: {short_message(exc)}") from None
        except BaseException:  # Ctrl-C while the context opens: nothing is left running
            self.close()
            raise

    def __enter__(self) -> PlaywrightDriver:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close context, browser and driver. Idempotent; never raises (the driver may already be dead)."""
        if self._closed:
            return
        self._closed = True
        self.close_context()
        pw, browser = self._pw, self._browser
        self._pw = self._browser = None
        _close_browser(browser, pw)

    def close_context(self) -> None:
        """The pages' last words, then the context closed: no request, download or event after this.

        The browser and the Playwright driver stay up until ``close`` (their teardown is only
        waiting: the run closes its evidence meanwhile). Idempotent; never raises."""
        context, self._context, self._page = self._context, None, None
        if context is None:
            return
        if context.browser is not None:
            self._browser = context.browser
        # Each step is best effort: a dead driver or browser has nothing left to close.
        for page in list(context.pages):  # a page's last words (pagehide) reach the gate before the end
            with contextlib.suppress(Exception):
                send_away(page, self._judged, timeout_ms=LAST_WORDS_MS)
        with contextlib.suppress(Exception):
            context.close()

    # ------------------------------------------------------------------ Driver protocol

    @property
    def config(self) -> SandboxConfig:
        """The sandbox this driver was opened with."""
        return self._config

    @property
    def page(self) -> Page:
        """The main page (tests and the loop's helpers may read it; actions go through ``perform``)."""
        if self._closed or self._page is None:
            raise ActionFailed("the browser is closed")
        return self._page

    @property
    def popups(self) -> list[Page]:
        return [p for p in self._hooks.pages if p is not self._page]

    def page_url(self) -> str:
        try:
            return self.page.url
        except PlaywrightError as exc:
            raise ActionFailed(short_message(exc)) from None

    def describe(self, kind: str, args: Mapping[str, Any]) -> str:
        return describe_action(kind, args)

    def perform(self, kind: str, args: Mapping[str, Any], timeout_s: float) -> StepOutcome:
        call = describe_action(kind, args)
        page = self.page
        if kind == "goto":
            self._hooks.failed_navigation = None  # a resolver refusal seen from here on is this goto's
        try:
            return perform_action(page, kind, args, timeout_s, call, goto_failure=self._hooks.navigation_failure)
        finally:
            self._hooks.raise_deferred()

    def screenshot(
        self, *, full_page: bool = False, mask_selectors: Sequence[str] = (), outline: Sequence[str] = ()
    ) -> bytes:
        return take_screenshot(self.page, full_page=full_page, mask_selectors=mask_selectors, outline=outline)

    def page_text_blocks(self) -> list[TextBlock]:
        """The main page's visible text and filled-in form fields (see ``page_reading.read_text_blocks``)."""
        return read_text_blocks(self.page)

    def aria_snapshot(self) -> AriaSnapshot:
        from runner.browser.aria import aria_snapshot

        return aria_snapshot(self.page)

    def document_token(self) -> str:
        from runner.browser.aria import document_token

        return document_token(self.page)

    def pump(self, seconds: float) -> None:
        from runner.browser.aria import pump

        if not self._closed and self._page is not None:
            pump(self._page, seconds)

    def history_back_url(self) -> str | None:
        from runner.browser.aria import history_back_url

        return history_back_url(self.page)

    def tabs(self) -> tuple[list[str], int]:
        from runner.browser.tabs import open_pages

        pages = open_pages(self._hooks.pages)
        return [p.url for p in pages], pages.index(self.page) if self.page in pages else -1

    def select_tab(self, index: int, *, new: bool = False, close: bool = False) -> None:
        from runner.browser import tabs

        current = self.page
        if new:
            assert self._context is not None
            self._page = tabs.new_tab(self._context)
        elif close:
            self._page = tabs.close_tab(self._hooks.pages, index, current)
        else:
            self._page = tabs.pick(self._hooks.pages, index)
        tabs.front(self._page)

    def resolve(
        self, kind: str, args: Mapping[str, Any], timeout_s: float, *, selectors: Sequence[str] = ()
    ) -> ElementInfo:
        """The element the action will hit, as the page describes it now (see ``Driver.resolve``)."""
        page = self.page
        try:
            found = find_target_element(page, kind, args, timeout_s)
        finally:
            self._hooks.raise_deferred()
        if isinstance(found, ElementInfo):
            return found
        return describe_element(found, focused=not has_target(args), selectors=selectors,
                                main_frame=page if in_main_frame(args) else None)


def _new_sandbox_context(browser: Browser, config: SandboxConfig) -> BrowserContext:
    """An in-memory profile: no service workers, no permissions, downloads only to ``downloads_dir``."""
    if config.downloads_dir is not None:
        config.downloads_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    width, height = config.viewport
    return browser.new_context(
        viewport={"width": width, "height": height},
        service_workers="block",
        accept_downloads=config.downloads_dir is not None,
        permissions=[],
        ignore_https_errors=False,
        bypass_csp=False,
    )


def _close_browser(browser: Browser | None, pw: Playwright | None) -> None:
    """Best effort: a dead driver or browser has nothing left to close."""
    if browser is not None:
        with contextlib.suppress(Exception):
            browser.close()
    if pw is not None:
        with contextlib.suppress(Exception):
            pw.stop()


class LaunchedBrowser:
    """Chromium launched with the sandbox's switches, and nothing else: no context, no page.

    Nothing can navigate from here (a page only exists once ``open_driver`` has made the context,
    with its routes): ``runner/launch.py`` launches it while the PII engine is built, before the
    evidence opens. Bound to the thread that launched it, like every sync Playwright object. ``close()`` is
    idempotent; once ``open_driver`` has taken it, the driver owns (and closes) the browser.
    """

    def __init__(self, pw: Playwright, browser: Browser, config: SandboxConfig, args: list[str]) -> None:
        self._pw: Playwright | None = pw
        self._browser: Browser | None = browser
        self._key = (config.executable, config.headless, config.chromium_sandbox)
        self.args = args

    def matches(self, config: SandboxConfig) -> bool:
        return self._browser is not None and self._key == (config.executable, config.headless, config.chromium_sandbox)

    def take(self) -> tuple[Playwright, Browser]:
        pw, browser = self._pw, self._browser
        self._pw = self._browser = None
        if pw is None or browser is None:
            raise SandboxUnavailable("the launched browser was already used or closed")
        return pw, browser

    def close(self) -> None:
        pw, browser = self._pw, self._browser
        self._pw = self._browser = None
        _close_browser(browser, pw)


def launch_browser(config: SandboxConfig, *, extra_args: Sequence[str] = ()) -> LaunchedBrowser:
    """Start Playwright and launch Chromium with the sandbox's switches (no context, no page yet).

    Only the launch fields of ``config`` are used (executable, resolvable_hosts, headless,
    chromium_sandbox); ``open_driver(config, launched=...)`` checks they did not change.
    Raises ``SandboxUnavailable`` (fail closed), with nothing left running.
    """
    check_no_proxy(os.environ)
    if not (config.executable.is_file()):
        raise SandboxUnavailable(f"Chromium not found at {config.executable}")
    try:
        args = launch_args(config, extra_args)  # validates the host patterns first
    except SandboxUnavailable:
        raise
    except Exception as exc:  # fail closed: no switches, no browser
        raise SandboxUnavailable(f"cannot build the sandbox's launch switches: {short_message(exc)}") from None
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # good: no event loop (and so no other sync Playwright) is running on this thread
    else:
        raise SandboxUnavailable(
            "another Playwright session or asyncio loop is running on this thread: "
            "open one driver per thread at a time"
        )
    use_compile_cache()  # the driver's bundles compiled once per machine, not per run (node_cache)
    try:
        pw = sync_playwright().start()
    except Exception as exc:
        raise SandboxUnavailable(f"cannot start the Playwright driver: {short_message(exc)}") from None
    try:
        browser = pw.chromium.launch(
            executable_path=str(config.executable),
            headless=config.headless,
            chromium_sandbox=config.chromium_sandbox,
            args=args,
            handle_sigint=False,
        )
    except BaseException as exc:
        _close_browser(None, pw)
        if isinstance(exc, Exception):
            raise SandboxUnavailable(f"cannot launch Chromium: {short_message(exc)}") from None
        raise
    return LaunchedBrowser(pw, browser, config, args)


def open_driver(
    config: SandboxConfig, *, extra_args: Sequence[str] = (), launched: LaunchedBrowser | None = None
) -> PlaywrightDriver:
    """Launch the sandbox and return its driver (also a context manager: ``with open_driver(c) as d``).

    Raises ``SandboxUnavailable`` (fail closed) when a layer cannot be installed: a proxy in the
    environment, no Chromium, a host pattern that is not one, or a launch failure.
    ``extra_args`` are appended Chromium switches for diagnostics (e.g. ``--log-net-log=PATH``).
    ``launched``: a browser from ``launch_browser`` (same config) to use; it is closed on failure.
    """
    try:
        check_no_proxy(os.environ)
    except BaseException:
        if launched is not None:
            launched.close()
        raise
    return PlaywrightDriver(config, extra_args, launched)


__all__ = [
    "MASK_COLOR",
    "LaunchedBrowser",
    "PlaywrightDriver",
    "launch_browser",
    "open_driver",
]
