"""The browser context's routes and listeners: what the sandbox does with traffic and page events.

* With a ``request_gate``, every request is put to it once, by the browser-level layer
  (``browser_fetch``: one protocol round trip per request, redirect hops and unload beacons
  included); the context's WebSocket route takes every WebSocket, then each message the page sends
  on it (a refused socket is closed with 1008, a refused message is dropped first). There is no
  context route: Playwright would then pause every request a second time at each page. A gate
  that raises refuses (fail closed) and its error surfaces after the current action. A name the
  resolver allowlist refused is reported from ``requestfailed``.
* Popups, downloads (refused, or saved to ``downloads_dir``), dialogs (alert/confirm/prompt
  dismissed, beforeunload accepted) and page crashes are reported through ``on_event``, under the
  ``EVENT_*`` names of ``driver``; the network gate makes each a record.

The callbacks run inside Playwright's event dispatch, where raising would be lost: an error (the
gate's, or ``on_event``'s, e.g. evidence that cannot be written) is kept and re-raised by
``raise_deferred`` once the current action returns. What the hooks learn (refusals, a main-frame
navigation the resolver refused) explains a failed ``goto`` (``navigation_failure``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, Dialog, Download, Page, Request, WebSocketRoute
from playwright.sync_api import Error as PlaywrightError

from guards.observed import RequestInfo, RequestKind
from runner.browser.browser_fetch import FrameBook
from runner.browser.chromium import host_matches, host_of
from runner.browser.driver import (
    EVENT_DIALOG,
    EVENT_DOWNLOAD_FAILED,
    EVENT_DOWNLOAD_REFUSED,
    EVENT_DOWNLOAD_SAVED,
    EVENT_PAGE_CRASHED,
    EVENT_POPUP,
    EVENT_REQUEST_REFUSED,
    EVENT_WEBSOCKET_REFUSED,
    ActionFailed,
    DriverError,
    GateVerdict,
    NavigationBlocked,
    SandboxConfig,
    TransientFailure,
)
from runner.browser.messages import short_message

# Playwright's WebSocket route replaces ``WebSocket`` in every frame (an init script), not
# ``WebSocketStream``: measured, a page's ``new WebSocketStream(url)`` reached the server and sent its
# messages unjudged. Removed in every frame the same way (fresh iframes and popups included), so a
# page has only the routed ``WebSocket``. Workers get neither script: see docs/boundaries.md.
NO_WEBSOCKET_STREAM = "delete globalThis.WebSocketStream;"
DIALOG_TEXT_CAP = 500  # characters of a dialog's message kept (the writer redacts them)


class ContextHooks:
    """Installed once on the context (``install``); reads the driver's main page through ``main_page``."""

    def __init__(
        self, config: SandboxConfig, main_page: Callable[[], Page | None], frames: FrameBook | None = None
    ) -> None:
        self._config = config
        self.frames = frames if frames is not None else FrameBook()  # shared with the browser layer
        self._main_page = main_page
        self.pages: list[Page] = []  # every page of the context, the main one first
        self.failed_navigation: str | None = None  # last main-frame navigation that failed to resolve
        self._navigated: set[int] = set()  # id() of pages whose first navigation was seen
        self._refusals: dict[str, str] = {}  # url -> reason, for NavigationBlocked messages
        self._deferred: BaseException | None = None  # raised by a callback; re-raised after the action
        self._download_seq = 0
        self._lock = threading.Lock()

    def install(self, context: BrowserContext) -> None:
        context.on("page", self._on_page)
        context.on("requestfailed", self._on_request_failed)
        if self._config.request_gate is not None:
            context.add_init_script(NO_WEBSOCKET_STREAM)
            context.route_web_socket(re.compile(r".*"), self._on_websocket)

    # ------------------------------------------------------------------ for the driver

    def raise_deferred(self) -> None:
        """Re-raise the first error a callback kept since the last call (once)."""
        with self._lock:
            err, self._deferred = self._deferred, None
        if err is not None:
            raise err

    def navigation_failure(self, url: str, message: str) -> DriverError:
        """The error a ``goto`` of ``url`` that failed with ``message`` becomes."""
        if "net::ERR_BLOCKED_BY_CLIENT" in message:
            reason = self._refusals.get(url) or next(iter(self._refusals.values()), "refused by the request gate")
            return NavigationBlocked(f"navigation refused: {reason}", url)
        if "net::ERR_NAME_NOT_RESOLVED" in message:
            failed = self.failed_navigation or url
            if not host_matches(host_of(failed), self._config.resolvable_hosts):
                return NavigationBlocked(f"navigation refused: {host_of(failed)!r} is not an allowed host", failed)
            return TransientFailure(message)
        if "net::ERR_" in message:
            return TransientFailure(message)
        return ActionFailed(message)

    # ------------------------------------------------------------------ reporting

    def defer(self, exc: BaseException) -> None:
        """Keep ``exc`` for ``raise_deferred`` (the browser layer reports through here too)."""
        self._defer(exc)

    def emit(self, name: str, data: Mapping[str, Any]) -> None:
        if name == EVENT_REQUEST_REFUSED:  # the browser layer's refusals explain a failed goto too
            with self._lock:
                self._refusals[str(data.get("url") or "")] = str(data.get("reason") or "refused by the request gate")
        self._emit(name, data)

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

    # ------------------------------------------------------------------ page events

    def _on_page(self, page: Page) -> None:
        self.pages.append(page)
        main = self._main_page() is None and len(self.pages) == 1  # before any call: open_driver may set it
        page.on("download", self._on_download)
        page.on("dialog", self._on_dialog)
        page.on("crash", lambda p: self._emit(EVENT_PAGE_CRASHED, {"url": p.url, "main": p is self._main_page()}))
        if self._config.request_gate is not None:
            self._watch_frames(page)
        if main:
            return  # the main page, being created by open_driver
        opener: Page | None = None
        try:
            opener = page.opener()
        except PlaywrightError:
            opener = None
        self._emit(EVENT_POPUP, {"url": page.url, "opener_url": opener.url if opener is not None else None})

    def _watch_frames(self, page: Page) -> None:
        """What each frame of ``page`` shows (``Page.frameNavigated``: committed), for the browser
        layer's ``frame_url``; a session that cannot be made fails the run after this action."""
        frames = self.frames

        def navigated(event: dict[str, Any]) -> None:
            frame = event.get("frame") or {}
            url = str(frame.get("url") or "") + str(frame.get("urlFragment") or "")
            frames.committed(str(frame.get("id") or ""), url)

        try:
            cdp = page.context.new_cdp_session(page)
            cdp.on("Page.frameNavigated", navigated)
            cdp.send("Page.enable")
        except PlaywrightError as exc:
            if not page.is_closed():
                self._defer(exc)

    def _on_dialog(self, dialog: Dialog) -> None:
        """Answered first (the page waits on it), then reported with what happened to it.

        alert/confirm/prompt are dismissed: the page never gets a "yes" or a typed answer. A
        beforeunload dialog is accepted ("leave"): dismissing it would let the page veto the
        mission's own navigation (every later ``goto`` aborted). The message is page text: it goes
        to ``on_event`` (a record field, redacted by the writer), never to the terminal.
        """
        leave = dialog.type == "beforeunload"
        handled = "accepted" if leave else "dismissed"
        try:
            if leave:
                dialog.accept()
            else:
                dialog.dismiss()
        except PlaywrightError:
            handled = "unanswered"  # the page (and its dialog) went away meanwhile
        try:
            url = dialog.page.url if dialog.page is not None else None
        except PlaywrightError:
            url = None
        self._emit(
            EVENT_DIALOG,
            {
                "type": dialog.type,
                "message": dialog.message[:DIALOG_TEXT_CAP],
                "default_value": dialog.default_value[:DIALOG_TEXT_CAP] if dialog.type == "prompt" else None,
                "url": url,
                "handled": handled,
            },
        )

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
            self._emit(EVENT_DOWNLOAD_FAILED, {**data, "reason": short_message(exc)})
            return
        self._emit(EVENT_DOWNLOAD_SAVED, {**data, "path": str(path)})

    # ------------------------------------------------------------------ traffic

    def _request_kind(self, request: Request) -> tuple[RequestKind, str | None]:
        """What the request is to the gate (navigation, popup, redirect, subresource, worker), and its frame's URL."""
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
        main = self._main_page()
        if page is not main and main is not None and id(page) not in self._navigated:
            self._navigated.add(id(page))
            return "popup", frame_url
        return "navigation", frame_url

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
                server = ws.connect_to_server()
                ws.on_message(lambda message: self._on_websocket_message(ws, server, message))
                return
            ws.close(code=1008, reason="refused")
        except PlaywrightError:
            return
        self._emit(EVENT_WEBSOCKET_REFUSED, {"url": ws.url, "kind": "websocket", "reason": verdict.reason})

    def _on_websocket_message(self, ws: WebSocketRoute, server: WebSocketRoute, message: str | bytes) -> None:
        """Each page-to-server message walks the gate as a request whose body is the message (egress DLP);
        a refused one is dropped and the socket closed (1008). Server-to-page messages flow untouched."""
        gate = self._config.request_gate
        text = isinstance(message, str)
        body = message.encode("utf-8", "surrogatepass") if isinstance(message, str) else message
        info = RequestInfo(
            url=ws.url, method="SEND", kind="websocket", resource_type="websocket_message", is_navigation=False,
            frame_url=None, headers={"content-type": "text/plain" if text else "application/octet-stream"}, body=body,
        )
        try:
            verdict = gate(info) if gate is not None else GateVerdict(True)
        except BaseException as exc:  # fail closed
            verdict = GateVerdict(False, f"request gate error: {type(exc).__name__}")
            self._defer(exc)
        try:
            if verdict.allow:
                server.send(message)
                return
            ws.close(code=1008, reason="refused")
            server.close(code=1008, reason="refused")
        except PlaywrightError:
            return
        self._emit(EVENT_WEBSOCKET_REFUSED, {"url": ws.url, "kind": "websocket", "reason": verdict.reason})

    def _on_request_failed(self, request: Request) -> None:
        """A name the resolver allowlist refused: recorded (the route never saw it) unless the host is allowed."""
        failure = request.failure or ""
        if "net::ERR_NAME_NOT_RESOLVED" not in failure:
            return
        try:
            kind, frame_url = self._request_kind(request)
        except PlaywrightError:
            kind, frame_url = "other", None
        try:
            is_main_nav = request.is_navigation_request() and request.frame.parent_frame is None
            if is_main_nav and request.frame.page is self._main_page():
                self.failed_navigation = request.url
        except PlaywrightError:
            pass
        host = host_of(request.url)
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
