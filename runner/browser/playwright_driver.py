"""``Driver`` implemented with Playwright's sync API on a fresh, ephemeral Chromium context.

Sandbox layers installed here (see ``chromium.py`` for the launch switches):

* a new browser per run and ``browser.new_context()`` (an in-memory profile: nothing from a user
  profile, nothing survives the run), ``service_workers="block"``, no permission grants and every
  prompt denied, downloads refused unless ``downloads_dir`` is set, no video/HAR/tracing;
* when ``request_gate`` is set, every request the context routes (and every WebSocket) goes
  through it; refused ones are aborted with ``blockedbyclient`` and reported via ``on_event``.
  Redirect hops and keepalive/unload fetches are *not* shown to routes by Playwright: they are
  held by the resolver allowlist, and a hop that fails there is reported from ``requestfailed``.

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
import json
import os
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from playwright.sync_api import (
    Browser,
    BrowserContext,
    Dialog,
    Download,
    ElementHandle,
    Locator,
    Page,
    Playwright,
    Request,
    Route,
    WebSocketRoute,
    expect,
    sync_playwright,
)
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from guards.observed import ElementInfo, RequestInfo, RequestKind, TextBlock
from kernel.errors import SandboxUnavailable
from runner.browser.chromium import check_no_proxy, host_matches, launch_args
from runner.browser.driver import (
    ActionFailed,
    DriverError,
    GateVerdict,
    NavigationBlocked,
    SandboxConfig,
    StepOutcome,
    TransientFailure,
)
from runner.browser.page_scripts import MAX_TEXT_BLOCKS, OUTLINE_CSS, RESOLVE_JS, TEXT_BLOCKS_JS, element_info

# The colour painted over masked elements in screenshots (Playwright's ``mask_color``).
MASK_COLOR = "#000000"
SCREENSHOT_TIMEOUT_S = 15.0

# on_event names
EVENT_POPUP = "popup"
EVENT_REQUEST_REFUSED = "request_refused"
EVENT_WEBSOCKET_REFUSED = "websocket_refused"
EVENT_DOWNLOAD_REFUSED = "download_refused"
EVENT_DOWNLOAD_SAVED = "download_saved"
EVENT_DOWNLOAD_FAILED = "download_failed"
EVENT_DIALOG = "dialog"
EVENT_PAGE_CRASHED = "page_crashed"
EVENT_GATE_ERROR = "gate_error"

# Kinds whose timeout is worth a retry (reads); a timeout on click/fill/... is a failed step.
_TIMEOUT_IS_TRANSIENT = frozenset({"goto", "wait_for", "extract", "assert_text"})
_TARGET_KEYS = ("selector", "text", "role", "label", "placeholder", "test_id")
_FORM_FIELDS = frozenset({"input", "textarea", "select"})
_MAX_MESSAGE = 300
_ERROR_PAGE_SETTLE_MS = 1000.0




def _q(value: object) -> str:
    """A string literal for the call text (double quotes, like Playwright's codegen)."""
    return json.dumps(str(value), ensure_ascii=False)


def _short(exc: BaseException) -> str:
    """The first line of a Playwright message: no call log, no stack."""
    text = str(getattr(exc, "message", None) or exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= _MAX_MESSAGE else line[: _MAX_MESSAGE - 1] + "…"


def _host_of(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


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
        self._pages: list[Page] = []
        self._navigated: set[int] = set()  # id() of pages whose first navigation was seen
        self._refusals: dict[str, str] = {}  # url -> reason, for NavigationBlocked messages
        self._failed_nav: str | None = None  # last main-frame navigation that failed to resolve
        self._deferred: BaseException | None = None  # raised by a callback; re-raised after perform
        self._download_seq = 0
        self._lock = threading.Lock()
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
            if config.downloads_dir is not None:
                config.downloads_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            width, height = config.viewport
            context = browser.new_context(
                viewport={"width": width, "height": height},
                service_workers="block",
                accept_downloads=config.downloads_dir is not None,
                permissions=[],
                ignore_https_errors=False,
                bypass_csp=False,
            )
            self._context = context
            context.on("page", self._on_page)
            context.on("requestfailed", self._on_request_failed)
            if config.request_gate is not None:
                context.route("**/*", self._on_route)
                context.route_web_socket(re.compile(r".*"), self._on_websocket)
            self._page = context.new_page()
        except SandboxUnavailable:
            self.close()
            raise
        except Exception as exc:
            self.close()
            raise SandboxUnavailable(f"cannot launch Chromium: {_short(exc)}") from None
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
        context, pw, browser = self._context, self._pw, self._browser
        self._context = self._page = self._pw = self._browser = None
        if context is not None:
            browser = context.browser or browser
            # Each step is best effort: a dead driver or browser has nothing left to close.
            with contextlib.suppress(Exception):
                context.close()
        _close_browser(browser, pw)

    # ------------------------------------------------------------------ Driver protocol

    @property
    def page(self) -> Page:
        """The main page (tests and the loop's helpers may read it; actions go through ``perform``)."""
        if self._closed or self._page is None:
            raise ActionFailed("the browser is closed")
        return self._page

    @property
    def popups(self) -> list[Page]:
        return [p for p in self._pages if p is not self._page]

    def page_url(self) -> str:
        try:
            return self.page.url
        except PlaywrightError as exc:
            raise ActionFailed(_short(exc)) from None

    def describe(self, kind: str, args: Mapping[str, Any]) -> str:
        if kind == "goto":
            return f'page.goto({_q(args["url"])}, wait_until="load")'
        if kind in ("click", "hover", "check", "uncheck"):
            return f"{self._target_text(args)}.{kind}()"
        if kind == "fill":
            return f"{self._target_text(args)}.fill({_q(args['value'])})"
        if kind == "select":
            if args.get("value") is not None:
                return f"{self._target_text(args)}.select_option(value={_q(args['value'])})"
            return f"{self._target_text(args)}.select_option(label={_q(args['option_label'])})"
        if kind == "press":
            if self._has_target(args):
                return f"{self._target_text(args)}.press({_q(args['key'])})"
            return f"page.keyboard.press({_q(args['key'])})"
        if kind == "wait_for":
            if args.get("text") is not None:
                return f"page.get_by_text({_q(args['text'])}).first.wait_for()"
            if args.get("selector") is not None:
                return f"page.locator({_q(args['selector'])}).first.wait_for()"
            if args.get("url") is not None:
                return f"page.wait_for_url({_q(args['url'])})"
            if args.get("load_state") is not None:
                return f"page.wait_for_load_state({_q(args['load_state'])})"
            if args.get("seconds") is not None:
                return f"page.wait_for_timeout({round(float(args['seconds']) * 1000)})"
            raise ActionFailed("wait_for needs one of text, selector, url, load_state, seconds")
        if kind == "screenshot":
            return f"page.screenshot(full_page={bool(args.get('full_page', False))})"
        if kind == "extract":
            if args.get("attribute") is not None:
                return f"{self._target_text(args)}.get_attribute({_q(args['attribute'])})"
            return f"{self._target_text(args)}.inner_text()"
        if kind == "assert_text":
            scope = self._target_text(args, skip_text=True) if self._has_target(args, True) else 'page.locator("body")'
            return f"expect({scope}).to_contain_text({_q(args['text'])})"
        raise ActionFailed(f"unknown action kind {kind!r}")

    def perform(self, kind: str, args: Mapping[str, Any], timeout_s: float) -> StepOutcome:
        call = self.describe(kind, args)
        page = self.page
        ms = max(1.0, float(timeout_s) * 1000.0)
        value: str | None = None
        try:
            value, call = self._do(page, kind, args, ms, call)
        except DriverError:
            raise
        except AssertionError as exc:
            raise ActionFailed(self._assert_message(args, timeout_s, exc)) from None
        except PlaywrightTimeoutError as exc:
            if kind in _TIMEOUT_IS_TRANSIENT:
                raise TransientFailure(_short(exc)) from None
            raise ActionFailed(_short(exc)) from None
        except PlaywrightError as exc:
            if kind == "goto":
                raise self._goto_error(str(args["url"]), exc) from None
            raise ActionFailed(_short(exc)) from None
        finally:
            self._raise_deferred()
        return StepOutcome(call=call, url_after=page.url, value=value)

    def screenshot(
        self, *, full_page: bool = False, mask_selectors: Sequence[str] = (), outline: Sequence[str] = ()
    ) -> bytes:
        page = self.page
        # The outline is a stylesheet Playwright injects for the capture only (``style``): nothing
        # is added to the page's DOM, so the page cannot react to being photographed.
        style = "".join(f"{sel} {{{OUTLINE_CSS}}}\n" for sel in outline if sel and "{" not in sel and "}" not in sel)
        if style:  # the approver must see the target: bring it into the viewport (the action would too)
            with contextlib.suppress(PlaywrightError):
                target = page.locator(outline[0]).first
                target.scroll_into_view_if_needed(timeout=2000)
                # A strict CSP blocks the injected outline stylesheet; Playwright's highlight overlay
                # (the same mechanism as masks) is drawn whatever the page's CSP says.
                target.highlight()
        try:
            return page.screenshot(
                type="png",
                full_page=full_page,
                mask=[page.locator(s) for s in mask_selectors],
                mask_color=MASK_COLOR,
                animations="disabled",
                caret="hide",
                timeout=SCREENSHOT_TIMEOUT_S * 1000,
                style=style or None,
            )
        except PlaywrightError as exc:
            raise ActionFailed(f"screenshot failed: {_short(exc)}") from None
        finally:
            if style:
                with contextlib.suppress(PlaywrightError):
                    page.hide_highlight()

    def page_text_blocks(self) -> list[TextBlock]:
        """Visible text grouped by block element, plus form fields holding a value (see ``TEXT_BLOCKS_JS``).

        A page that is navigating (its execution context destroyed mid-read) is read again once it
        has a document; a page that still cannot be read raises ``ActionFailed``.
        """
        page = self.page
        last: PlaywrightError | None = None
        for _ in range(3):
            try:
                raw = page.evaluate(TEXT_BLOCKS_JS, MAX_TEXT_BLOCKS)
                return [
                    TextBlock(text=str(b[0]), selector=str(b[1]), kind="input" if b[2] else "text", password=bool(b[3]))
                    for b in raw
                ]
            except PlaywrightError as exc:
                last = exc
                with contextlib.suppress(PlaywrightError):
                    page.wait_for_load_state("domcontentloaded", timeout=5000)
        raise ActionFailed(f"page text could not be read: {_short(last) if last else 'unknown error'}")

    def resolve(
        self, kind: str, args: Mapping[str, Any], timeout_s: float, *, selectors: Sequence[str] = ()
    ) -> ElementInfo:
        """The element the action will hit, as the page describes it now (see ``Driver.resolve``)."""
        page = self.page
        ms = max(1.0, float(timeout_s) * 1000.0)
        handle: ElementHandle | None
        try:
            if self._has_target(args):
                # element_handle() is strict and waits like the action does: none within the
                # timeout, or several, fails here exactly as the click would.
                handle = self._target(page, args).element_handle(timeout=ms)
            elif kind == "press":
                handle = page.evaluate_handle("() => document.activeElement").as_element()
                if handle is None:
                    return ElementInfo(found=True, tag="body")
            else:
                return ElementInfo(found=False, error="the action has no target")
        except PlaywrightTimeoutError as exc:
            raise ActionFailed(f"target not found: {_short(exc)}") from None
        except PlaywrightError as exc:
            raise ActionFailed(_short(exc)) from None
        finally:
            self._raise_deferred()
        try:
            data = handle.evaluate(RESOLVE_JS, {"selectors": list(selectors)})
        except PlaywrightError as exc:  # detached, navigated away, ...: cannot say what it is
            return ElementInfo(found=False, error=f"cannot describe the target: {_short(exc)}")
        finally:
            with contextlib.suppress(PlaywrightError):
                handle.dispose()
        if not isinstance(data, dict):
            return ElementInfo(found=False, error="cannot describe the target")
        if not self._has_target(args) and data.get("tag") in ("iframe", "frame", "object", "embed"):
            frame = data.get("tag")
            return ElementInfo(found=False, error=f"the focus is inside an <{frame}>: its element cannot be seen")
        return element_info(data)

    # ------------------------------------------------------------------ actions

    def _do(
        self, page: Page, kind: str, args: Mapping[str, Any], ms: float, call: str
    ) -> tuple[str | None, str]:
        if kind == "goto":
            self._failed_nav = None
            try:
                page.goto(str(args["url"]), wait_until="load", timeout=ms)
            except PlaywrightError as exc:
                if "net::ERR_" in str(exc) and "net::ERR_ABORTED" not in str(exc):
                    self._settle_error_page(page)
                raise
        elif kind == "click":
            self._target(page, args).click(timeout=ms)
        elif kind == "hover":
            self._target(page, args).hover(timeout=ms)
        elif kind == "check":
            self._target(page, args).check(timeout=ms)
        elif kind == "uncheck":
            self._target(page, args).uncheck(timeout=ms)
        elif kind == "fill":
            self._target(page, args).fill(str(args["value"]), timeout=ms)
        elif kind == "select":
            loc = self._target(page, args)
            if args.get("value") is not None:
                loc.select_option(value=str(args["value"]), timeout=ms)
            else:
                loc.select_option(label=str(args["option_label"]), timeout=ms)
        elif kind == "press":
            if self._has_target(args):
                self._target(page, args).press(str(args["key"]), timeout=ms)
            else:
                page.keyboard.press(str(args["key"]))
        elif kind == "wait_for":
            self._wait_for(page, args, ms)
        elif kind == "screenshot":
            pass  # the loop takes the image with screenshot(); the step itself does nothing
        elif kind == "extract":
            return self._extract(page, args, ms)
        elif kind == "assert_text":
            scope = self._target(page, args, skip_text=True) if self._has_target(args, True) else page.locator("body")
            expect(scope).to_contain_text(str(args["text"]), timeout=ms, use_inner_text=True)
        else:  # describe() already refused unknown kinds
            raise ActionFailed(f"unknown action kind {kind!r}")
        return None, call

    @staticmethod
    def _settle_error_page(page: Page) -> None:
        """Wait (briefly) for the error page Chromium commits *after* goto has already failed.

        Without this the next goto races with that commit and fails with "interrupted by another
        navigation to chrome-error://chromewebdata/" although it actually succeeds.
        """
        with contextlib.suppress(PlaywrightError):
            page.wait_for_url(lambda u: u.startswith("chrome-error://"), timeout=_ERROR_PAGE_SETTLE_MS)

    def _wait_for(self, page: Page, args: Mapping[str, Any], ms: float) -> None:
        if args.get("text") is not None:
            page.get_by_text(str(args["text"])).first.wait_for(state="visible", timeout=ms)
        elif args.get("selector") is not None:
            page.locator(str(args["selector"])).first.wait_for(state="visible", timeout=ms)
        elif args.get("url") is not None:
            page.wait_for_url(str(args["url"]), timeout=ms)
        elif args.get("load_state") is not None:
            state = cast(Literal["domcontentloaded", "load", "networkidle"], args["load_state"])
            page.wait_for_load_state(state, timeout=ms)
        elif args.get("seconds") is not None:
            page.wait_for_timeout(float(args["seconds"]) * 1000.0)

    def _extract(self, page: Page, args: Mapping[str, Any], ms: float) -> tuple[str | None, str]:
        loc = self._target(page, args)
        target = self._target_text(args)
        attribute = args.get("attribute")
        if attribute is not None:
            value = loc.get_attribute(str(attribute), timeout=ms)
            if value is None:
                raise ActionFailed(f"the element has no attribute {attribute!r}")
            return value, f"{target}.get_attribute({_q(attribute)})"
        tag = str(loc.evaluate("e => e.tagName.toLowerCase()", timeout=ms))
        if tag in _FORM_FIELDS:
            return loc.input_value(timeout=ms), f"{target}.input_value()"
        return loc.inner_text(timeout=ms), f"{target}.inner_text()"

    # ------------------------------------------------------------------ targets

    @staticmethod
    def _has_target(args: Mapping[str, Any], skip_text: bool = False) -> bool:
        return any(args.get(k) is not None for k in _TARGET_KEYS if not (skip_text and k == "text"))

    @staticmethod
    def _target_text(args: Mapping[str, Any], skip_text: bool = False) -> str:
        exact = ", exact=True" if args.get("exact") else ""
        if args.get("selector") is not None:
            return f"page.locator({_q(args['selector'])})"
        if not skip_text and args.get("text") is not None:
            return f"page.get_by_text({_q(args['text'])}{exact})"
        if args.get("role") is not None:
            name = f", name={_q(args['name'])}{exact}" if args.get("name") is not None else ""
            return f"page.get_by_role({_q(args['role'])}{name})"
        if args.get("label") is not None:
            return f"page.get_by_label({_q(args['label'])}{exact})"
        if args.get("placeholder") is not None:
            return f"page.get_by_placeholder({_q(args['placeholder'])}{exact})"
        if args.get("test_id") is not None:
            return f"page.get_by_test_id({_q(args['test_id'])})"
        raise ActionFailed("no target: give one of " + ", ".join(_TARGET_KEYS))

    @staticmethod
    def _target(page: Page, args: Mapping[str, Any], skip_text: bool = False) -> Locator:
        exact = bool(args.get("exact", False))
        if args.get("selector") is not None:
            return page.locator(str(args["selector"]))
        if not skip_text and args.get("text") is not None:
            return page.get_by_text(str(args["text"]), exact=exact)
        if args.get("role") is not None:
            name = args.get("name")
            role = cast(Any, str(args["role"]))  # an unknown role fails in Playwright: ActionFailed
            if name is None:
                return page.get_by_role(role)
            return page.get_by_role(role, name=str(name), exact=exact)
        if args.get("label") is not None:
            return page.get_by_label(str(args["label"]), exact=exact)
        if args.get("placeholder") is not None:
            return page.get_by_placeholder(str(args["placeholder"]), exact=exact)
        if args.get("test_id") is not None:
            return page.get_by_test_id(str(args["test_id"]))
        raise ActionFailed("no target: give one of " + ", ".join(_TARGET_KEYS))

    # ------------------------------------------------------------------ errors

    def _goto_error(self, url: str, exc: PlaywrightError) -> DriverError:
        message = _short(exc)
        if "net::ERR_BLOCKED_BY_CLIENT" in message:
            reason = self._refusals.get(url) or next(iter(self._refusals.values()), "refused by the request gate")
            return NavigationBlocked(f"navigation refused: {reason}", url)
        if "net::ERR_NAME_NOT_RESOLVED" in message:
            failed = self._failed_nav or url
            if not host_matches(_host_of(failed), self._config.resolvable_hosts):
                return NavigationBlocked(f"navigation refused: {_host_of(failed)!r} is not an allowed host", failed)
            return TransientFailure(message)
        if "net::ERR_" in message:
            return TransientFailure(message)
        return ActionFailed(message)

    @staticmethod
    def _assert_message(args: Mapping[str, Any], timeout_s: float, exc: AssertionError) -> str:
        first = _short(exc)
        if "not found" in first.lower() and "element" in first.lower():
            return f"assert_text: the scope element was not found within {timeout_s:g}s"
        return f"assert_text: text {_q(args.get('text'))} not found within {timeout_s:g}s"

    def _raise_deferred(self) -> None:
        with self._lock:
            err, self._deferred = self._deferred, None
        if err is not None:
            raise err

    def _defer(self, exc: BaseException) -> None:
        with self._lock:
            if self._deferred is None:
                self._deferred = exc

    def _emit(self, name: str, data: Mapping[str, Any]) -> None:
        if self._config.on_event is None:
            return
        try:
            self._config.on_event(name, data)
        except BaseException as exc:  # e.g. EvidenceUnavailable: surfaces after the current action
            self._defer(exc)

    # ------------------------------------------------------------------ browser events

    def _on_page(self, page: Page) -> None:
        self._pages.append(page)
        page.on("download", self._on_download)
        page.on("dialog", self._on_dialog)
        page.on("crash", lambda p: self._emit(EVENT_PAGE_CRASHED, {"url": p.url}))
        if self._page is None and len(self._pages) == 1:
            return  # the main page, being created by open_driver
        opener: Page | None = None
        try:
            opener = page.opener()
        except PlaywrightError:
            opener = None
        self._emit(EVENT_POPUP, {"url": page.url, "opener_url": opener.url if opener is not None else None})

    def _on_dialog(self, dialog: Dialog) -> None:
        self._emit(EVENT_DIALOG, {"type": dialog.type, "message": dialog.message[:200]})
        with contextlib.suppress(PlaywrightError):
            dialog.dismiss()

    def _on_download(self, download: Download) -> None:
        data = {"url": download.url, "suggested_filename": download.suggested_filename}
        target_dir = self._config.downloads_dir
        if target_dir is None:
            self._emit(EVENT_DOWNLOAD_REFUSED, {**data, "reason": "downloads are denied"})
            return
        self._download_seq += 1
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", Path(download.suggested_filename).name).lstrip(".")[:100]
        path = target_dir / f"{self._download_seq:03d}-{safe or 'download'}"
        try:
            download.save_as(path)
        except PlaywrightError as exc:
            self._emit(EVENT_DOWNLOAD_FAILED, {**data, "reason": _short(exc)})
            return
        self._emit(EVENT_DOWNLOAD_SAVED, {**data, "path": str(path)})

    def _request_kind(self, request: Request) -> tuple[RequestKind, str | None]:
        if request.redirected_from is not None:
            kind: RequestKind = "redirect"
        else:
            kind = "subresource"
        try:
            frame = request.frame
        except PlaywrightError:
            # No frame: a (service) worker's request, or the first navigation of a new page
            # (a popup), which Chromium issues before Playwright knows the page.
            if kind == "redirect":
                return kind, None
            return ("popup" if request.is_navigation_request() else "worker"), None
        frame_url = frame.url
        if kind == "redirect" or not request.is_navigation_request() or frame.parent_frame is not None:
            return kind, frame_url
        try:
            page = frame.page
        except PlaywrightError:
            return "navigation", frame_url
        if page is not self._page and self._page is not None and id(page) not in self._navigated:
            self._navigated.add(id(page))
            return "popup", frame_url
        return "navigation", frame_url

    def _on_route(self, route: Route) -> None:
        request = route.request
        gate = self._config.request_gate
        verdict: GateVerdict
        info: RequestInfo | None = None
        try:
            kind, frame_url = self._request_kind(request)
            info = RequestInfo(
                url=request.url,
                method=request.method,
                kind=kind,
                resource_type=request.resource_type,
                is_navigation=request.is_navigation_request(),
                frame_url=frame_url,
                headers=dict(request.headers),
                body=request.post_data_buffer,
            )
            verdict = gate(info) if gate is not None else GateVerdict(True)
        except BaseException as exc:  # fail closed: a gate that cannot decide refuses
            verdict = GateVerdict(False, f"request gate error: {type(exc).__name__}")
            self._emit(EVENT_GATE_ERROR, {"url": request.url, "error": type(exc).__name__})
            self._defer(exc)
        try:
            if verdict.allow:
                route.continue_()
                return
            route.abort("blockedbyclient")
        except PlaywrightError:
            return  # the page went away meanwhile
        reason = verdict.reason or "refused by the request gate"
        with self._lock:
            self._refusals[request.url] = reason
        self._emit(
            EVENT_REQUEST_REFUSED,
            {
                "url": request.url,
                "method": request.method,
                "kind": info.kind if info is not None else "other",
                "resource_type": request.resource_type,
                "frame_url": info.frame_url if info is not None else None,
                "reason": reason,
                "layer": "gate",  # already decided (and recorded) by the request gate
            },
        )

    def _on_websocket(self, ws: WebSocketRoute) -> None:
        gate = self._config.request_gate
        info = RequestInfo(
            url=ws.url, method="GET", kind="websocket", resource_type="websocket", is_navigation=False, frame_url=None
        )
        try:
            verdict = gate(info) if gate is not None else GateVerdict(True)
        except BaseException as exc:
            verdict = GateVerdict(False, f"request gate error: {type(exc).__name__}")
            self._defer(exc)
        try:
            if verdict.allow:
                ws.connect_to_server()
                return
            ws.close(code=1008, reason="refused")
        except PlaywrightError:
            return
        self._emit(EVENT_WEBSOCKET_REFUSED, {"url": ws.url, "kind": "websocket", "reason": verdict.reason})

    def _on_request_failed(self, request: Request) -> None:
        failure = request.failure or ""
        if "net::ERR_NAME_NOT_RESOLVED" not in failure:
            return
        try:
            kind, frame_url = self._request_kind(request)
        except PlaywrightError:
            kind, frame_url = "other", None
        try:
            is_main_nav = request.is_navigation_request() and request.frame.parent_frame is None
            if is_main_nav and request.frame.page is self._page:
                self._failed_nav = request.url
        except PlaywrightError:
            pass
        host = _host_of(request.url)
        if host_matches(host, self._config.resolvable_hosts):
            return  # an allowed host whose name really did not resolve: not a refusal
        self._emit(
            EVENT_REQUEST_REFUSED,
            {
                "url": request.url,
                "method": request.method,
                "kind": kind,
                "resource_type": request.resource_type,
                "frame_url": frame_url,
                "reason": f"{host!r} is not in the resolver allowlist",
                "layer": "resolver",  # the route never saw it (a redirect hop, a frameless request)
            },
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
    with its routes): ``run.py`` launches it while the PII engine is built, before the evidence
    opens. Bound to the thread that launched it, like every sync Playwright object. ``close()`` is
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
        raise SandboxUnavailable(f"cannot build the sandbox's launch switches: {_short(exc)}") from None
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # good: no event loop (and so no other sync Playwright) is running on this thread
    else:
        raise SandboxUnavailable(
            "another Playwright session or asyncio loop is running on this thread: "
            "open one driver per thread at a time"
        )
    try:
        pw = sync_playwright().start()
    except Exception as exc:
        raise SandboxUnavailable(f"cannot start the Playwright driver: {_short(exc)}") from None
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
            raise SandboxUnavailable(f"cannot launch Chromium: {_short(exc)}") from None
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
    "EVENT_DIALOG",
    "EVENT_DOWNLOAD_FAILED",
    "EVENT_DOWNLOAD_REFUSED",
    "EVENT_DOWNLOAD_SAVED",
    "EVENT_GATE_ERROR",
    "EVENT_PAGE_CRASHED",
    "EVENT_POPUP",
    "EVENT_REQUEST_REFUSED",
    "EVENT_WEBSOCKET_REFUSED",
    "MASK_COLOR",
    "LaunchedBrowser",
    "PlaywrightDriver",
    "launch_browser",
    "open_driver",
]
