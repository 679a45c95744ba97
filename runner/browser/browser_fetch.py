"""Where the request gate judges every http(s) request: a browser-level CDP ``Fetch`` handler.

Why here and not in Playwright's context route: one protocol round trip per request. The route cost
~1.1-1.5 ms of CPU per request (Playwright's Route and Request objects, in node and in Python)
against the gate's own 0.28 ms; a paused ``Fetch.requestPaused`` event answered with
``Fetch.continueRequest`` costs about half as much (benchmarks/bench_network.py). And this layer sees
what the route never sees: a beacon or keepalive fetch sent while a page unloads (``pagehide``/
``unload``) is issued after the page's target is gone (measured: ``Ping`` for a beacon, ``XHR`` for
a keepalive fetch, no ``networkId``), and every hop of a redirect (the same ``networkId`` again).

What it does: each paused request becomes a ``RequestInfo`` and goes through the ``request_gate``;
a refusal fails it with ``BlockedByClient`` (reported as ``request_refused``, layer ``gate``), a
handler error fails it too (fail closed). Kind and frame, as the route told them: a ``Document`` in
a page's main frame (Chromium gives it the page target's id; pages are known from
``Target.targetCreated``) is a ``navigation``, or a ``popup`` for the first document of a page that
is not the run's first; a document in another frame is a ``subresource``; a hop is a ``redirect``
for documents, beacons and fetches (navigation rules), its own kind otherwise; ``frame_url`` is the
last document allowed in that frame. A host outside the resolver allowlist that the gate allowed
(a gate sidestepped), a redirect hop or an unload request to such a host, is failed here and
reported as a resolver refusal, since a request paused here is reported to Playwright as
``ERR_ABORTED``, not as the resolver's ``ERR_NAME_NOT_RESOLVED``. There is no context route: this
layer pauses every URL the route could see (and what it held unseen, an image written into an
``about:blank`` popup), so each request is judged once, here.

Like the route, this handler runs only while a Playwright call is in progress on the run's thread
(the sync API's dispatcher), so a page's request waits for Warden's next browser call, and the step
loop makes one after every action (its page scan and screenshot).
"""

from __future__ import annotations

import base64
import inspect
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from playwright.sync_api import Browser, CDPSession

from guards.observed import RequestInfo, RequestKind
from runner.browser.chromium import host_matches, host_of
from runner.browser.driver import EVENT_GATE_ERROR, EVENT_REQUEST_REFUSED, GateVerdict, SandboxConfig

# Every request of every target that Chromium lets this layer see, at the request stage: this layer
# is where the gate judges them, once each. Measured: that is every http(s) request and the other
# schemes Playwright's context route saw (``ftp:``, ``filesystem:``); ``data:``, ``blob:``, ``file:``
# and ``chrome:`` reach neither (they never touch the network). No context route is installed: with
# one, Playwright paused every request a second time at each page (twice the protocol messages).
PATTERNS = [{"urlPattern": "*", "requestStage": "Request"}]
# Kinds whose redirect hops are judged as ``redirect`` (navigation rules), as before this layer took
# every request: an unload beacon's or fetch's hop. A hop of an image or script keeps its own kind.
PAUSED_TYPES = ("Ping", "XHR", "Fetch")
CACHE_CAP = 4096
# An http(s) URL whose authority is a plain lower-case host and port: its host is that text, as
# ``host_of`` (urlsplit) reads it. Anything else (userinfo, %, IPv6, capitals, a tab) goes to host_of.
_PLAIN_URL = re.compile(r"https?://([a-z0-9.-]+)(?::[0-9]{1,5})?(?=[/?#]|\Z)")


def plain_host(url: str) -> str:
    """``host_of(url)`` without a parse for the URLs a page sends most (tests: equal for any URL)."""
    m = _PLAIN_URL.match(url)
    return m.group(1) if m else host_of(url)


def _resource_type(cdp_type: str, headers: Mapping[str, Any]) -> str:
    """Playwright's name for it (Chromium's, lower-cased). Measured: this layer reports an
    ``EventSource`` as ``XHR``; its ``Accept: text/event-stream`` tells it apart (a label only)."""
    if cdp_type == "XHR" and any(k.lower() == "accept" and v == "text/event-stream" for k, v in headers.items()):
        return "eventsource"
    return cdp_type.lower()


def _put(book: OrderedDict[str, str], key: str, value: str) -> None:
    if key:
        book[key] = value
        book.move_to_end(key)
        if len(book) > CACHE_CAP:
            book.popitem(last=False)


def _plain(method: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """``method`` as a plain function whose signature is known: Playwright's sync API asks
    ``inspect.signature`` of a listener on every event (~10 % of this layer's CPU for a bound method)."""

    def listener(event: dict[str, Any]) -> None:
        method(event)

    listener.__signature__ = inspect.signature(listener)  # type: ignore[attr-defined]
    return listener


def _consume(future: Any) -> None:
    """A reply nobody waits for: its error (the request or the browser gone meanwhile) is read and dropped."""
    if not future.cancelled():
        future.exception()


class Session:
    """The browser-level CDP session as this layer uses it, below Playwright's sync API where that is safe.

    Why: through the sync API every call captures the caller's stack, opens an API zone, makes a
    task and switches greenlets twice to wait for a reply that, for ``Fetch.continueRequest`` and
    ``Fetch.failRequest``, carries nothing (``{}``); that was most of this layer's Python CPU per
    request. ``answer`` puts the command on Playwright's connection as the sync call would (same
    message, same session) and does not wait for the reply. The decision is made before it, so a
    request still leaves only once judged. Events are heard on the session's own emitter (no
    per-event signature check). Without those internals (another Playwright), the sync API as before.
    """

    def __init__(self, cdp: CDPSession) -> None:
        self.cdp = cdp
        impl = getattr(cdp, "_impl_obj", None)
        raw = getattr(getattr(impl, "_connection", None), "send_message_to_server", None)
        self._impl: Any = impl if callable(raw) and callable(getattr(impl, "on", None)) else None
        self._raw: Any = raw if self._impl is not None else None

    def on(self, event: str, method: Callable[[dict[str, Any]], None]) -> None:
        if self._impl is not None:
            self._impl.on(event, method)
        else:
            self.cdp.on(event, _plain(method))

    def send(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """A command whose reply is needed: the sync API (this waits)."""
        return self.cdp.send(method, params)

    def answer(self, method: str, params: dict[str, Any]) -> None:
        """A command whose reply carries nothing: sent now, its reply not waited for."""
        if self._raw is None:
            self.cdp.send(method, params)
            return
        for attempt in range(2):
            try:
                future = self._raw(self._impl, "send", {"method": method, "params": params},
                                   {"internal": True, "timeout": 0})
            except Exception:
                # The connection raises a listener's stored error at the next call (once) or is closed.
                if attempt:
                    raise
                continue
            future.add_done_callback(_consume)
            return


class FrameBook:
    """Which frame ids are pages' main frames, and the last document each frame was sent to.

    Chromium gives a page's main frame the id of its target, so ``Target.getTargets`` (asked only
    when a document comes from a frame not seen yet) tells a main frame from an iframe. The first
    page seen is the run's main page; another page's first document is a popup's.
    """

    def __init__(self) -> None:
        self._urls: OrderedDict[str, str] = OrderedDict()  # frame id -> last document URL allowed there
        self._committed: OrderedDict[str, str] = OrderedDict()  # frame id -> URL it shows (Page.frameNavigated)
        self._pages: dict[str, bool] = {}  # page target id -> its first document is still to come (a popup)
        self._iframes: OrderedDict[str, None] = OrderedDict()  # frame ids known not to be a main frame
        self._main: str | None = None

    def url(self, frame_id: str) -> str | None:
        """The document the frame shows, as its page reported it; else the last one sent to it. A
        document that never commits (a 204, a download) leaves a zone page a zone page."""
        if not frame_id:
            return None
        return self._committed.get(frame_id) or self._urls.get(frame_id)

    def document(self, frame_id: str, url: str) -> None:
        _put(self._urls, frame_id, url)

    def committed(self, frame_id: str, url: str) -> None:
        _put(self._committed, frame_id, url)

    def page(self, target_id: str, opened: bool) -> None:
        """A page target exists (``Target.targetCreated``, or listed by ``Target.getTargets``)."""
        if target_id not in self._pages:
            if self._main is None and not opened:
                self._main = target_id
            self._pages[target_id] = target_id != self._main

    def top(self, frame_id: str, pages: Callable[[], list[tuple[str, bool]]]) -> bool | None:
        """``None``: not a main frame; ``True``: a popup's first document; ``False``: a navigation."""
        if not frame_id:
            return False  # a document from no frame: top-level rules (the stricter ones)
        if frame_id in self._iframes:
            return None
        if frame_id not in self._pages:  # an iframe, or a page whose creation was not reported yet
            for target_id, opened in sorted(pages(), key=lambda p: p[1]):  # a page nobody opened first
                self.page(target_id, opened)
            if frame_id not in self._pages:
                self._iframes[frame_id] = None
                if len(self._iframes) > CACHE_CAP:
                    self._iframes.popitem(last=False)
                return None
        first = self._pages[frame_id]
        self._pages[frame_id] = False
        return first


class BrowserFetch:
    """Installed once per browser (``install``); reports gate errors through ``emit``/``defer``."""

    def __init__(
        self,
        config: SandboxConfig,
        frames: FrameBook,
        emit: Callable[[str, Mapping[str, Any]], None],
        defer: Callable[[BaseException], None],
    ) -> None:
        self._config = config
        self._emit = emit
        self._defer = defer
        self._cdp: Session | None = None
        self._network_ids: OrderedDict[str, None] = OrderedDict()  # seen here: a repeat is a redirect hop
        self._frames = frames  # shared with the context's hooks: they report what iframes show
        self._resolvable_hosts = tuple(config.resolvable_hosts)  # the launch's resolver rules: fixed
        self._resolvable: dict[str, bool] = {}  # host -> whether the resolver rules let it through
        self.judged = 0  # requests this layer put to the gate

    def install(self, browser: Browser) -> None:
        cdp = Session(browser.new_browser_cdp_session())
        cdp.on("Fetch.requestPaused", self._on_paused)
        cdp.on("Target.targetCreated", self._on_target)
        cdp.on("Target.targetInfoChanged", self._on_target_changed)
        cdp.send("Target.setDiscoverTargets", {"discover": True})  # pages known before their first request
        cdp.send("Fetch.enable", {"patterns": PATTERNS})
        self._cdp = cdp

    def _on_target(self, event: dict[str, Any]) -> None:
        info = event.get("targetInfo") or {}
        if info.get("type") == "page":
            self._frames.page(str(info.get("targetId")), bool(info.get("openerId")))

    def _on_target_changed(self, event: dict[str, Any]) -> None:
        """A page's URL changed: the document its main frame shows (committed; a 204 changes nothing)."""
        info = event.get("targetInfo") or {}
        if info.get("type") == "page" and info.get("url"):
            self._frames.committed(str(info.get("targetId")), str(info.get("url")))

    def _on_paused(self, event: dict[str, Any]) -> None:
        request_id = str(event.get("requestId", ""))
        try:
            allow = self._judge(event)
        except BaseException as exc:  # fail closed: a handler that cannot decide refuses
            allow = False
            self._emit(EVENT_GATE_ERROR, {"url": str(event.get("request", {}).get("url", "")),
                                          "error": type(exc).__name__})
            self._defer(exc)
        cdp = self._cdp
        if cdp is None:
            return
        try:
            if allow:
                cdp.answer("Fetch.continueRequest", {"requestId": request_id})
            else:
                cdp.answer("Fetch.failRequest", {"requestId": request_id, "errorReason": "BlockedByClient"})
        except Exception:
            return  # the request (or the browser) went away meanwhile

    def _judge(self, event: dict[str, Any]) -> bool:
        request = event["request"]
        url = str(request["url"]) + str(request.get("urlFragment") or "")
        method = str(request.get("method") or "GET")
        cdp_type = str(event.get("resourceType") or "Other")
        resource_type = _resource_type(cdp_type, request.get("headers") or {})
        hop, kind, frame_url = self._where(event, cdp_type)
        host = plain_host(url)
        resolvable = self._resolvable.get(host)
        if resolvable is None:
            resolvable = host_matches(host, self._resolvable_hosts)
            if len(self._resolvable) >= CACHE_CAP:
                self._resolvable.clear()
            self._resolvable[host] = resolvable
        refusal = {"url": url, "method": method, "kind": "redirect" if hop else kind,
                   "resource_type": resource_type, "frame_url": frame_url}
        if not resolvable and (hop or not event.get("networkId")):
            # What the route never saw (a redirect hop, an unload beacon): the resolver would refuse
            # it, but once paused here Playwright reports it as ERR_ABORTED (measured), so
            # requestfailed cannot record it: refuse it here, as the resolver would.
            self._resolver_refusal(refusal, host)
            return False
        body = self._body(event)
        headers = {str(k): str(v) for k, v in (request.get("headers") or {}).items()}
        gate = self._config.request_gate
        verdict = GateVerdict(True)
        if gate is not None:
            info = RequestInfo(
                url=url, method=method, kind=kind, resource_type=resource_type,
                is_navigation=cdp_type == "Document", frame_url=frame_url, headers=headers, body=body,
            )
            self.judged += 1
            verdict = gate(info)
        if not verdict.allow:
            self._emit(EVENT_REQUEST_REFUSED, {**refusal, "reason": verdict.reason or "refused by the request gate",
                                               "layer": "gate"})  # decided (and recorded) by the gate
            return False
        if not resolvable:  # the gate allowed a host the resolver would refuse (a gate sidestepped)
            self._resolver_refusal(refusal, host)
            return False
        if cdp_type == "Document":
            self._frames.document(str(event.get("frameId") or ""), url)
        return True

    def _resolver_refusal(self, refusal: Mapping[str, Any], host: str) -> None:
        self._emit(EVENT_REQUEST_REFUSED, {**refusal, "reason": f"{host!r} is not in the resolver allowlist",
                                           "layer": "resolver"})

    def _where(self, event: Mapping[str, Any], cdp_type: str) -> tuple[bool, RequestKind, str | None]:
        """Whether it is a redirect hop, its kind and the URL of the frame that sent it, as the route told them.

        A document in a page's main frame (Chromium: the main frame's id is its target's id) is a
        navigation, or a popup when it is the first one of a page that is not the run's first; a
        document in another frame is a subresource. A request with no frame is a worker's.
        """
        network_id = str(event.get("networkId") or "")
        frame_id = str(event.get("frameId") or "")
        hop = bool(network_id) and network_id in self._network_ids
        if network_id and not hop:
            self._network_ids[network_id] = None
            if len(self._network_ids) > CACHE_CAP:
                self._network_ids.popitem(last=False)
        frame_url = self._frames.url(frame_id)
        if hop and (cdp_type == "Document" or cdp_type in PAUSED_TYPES):
            return hop, "redirect", frame_url
        if cdp_type != "Document":
            return hop, ("subresource" if frame_id or not network_id else "worker"), frame_url
        top = self._frames.top(frame_id, self._page_targets)
        if top is None:
            return hop, "subresource", frame_url
        return hop, ("popup" if top else "navigation"), frame_url

    def _page_targets(self) -> list[tuple[str, bool]]:
        """The browser's page targets (id, opened by another page) as Chromium lists them now."""
        if self._cdp is None:
            return []
        got = self._cdp.send("Target.getTargets")
        return [(str(t.get("targetId")), bool(t.get("openerId")))
                for t in got.get("targetInfos", []) if t.get("type") == "page"]

    def _body(self, event: dict[str, Any]) -> bytes | None:
        request = event["request"]
        entries = request.get("postDataEntries")
        if entries:
            return b"".join(base64.b64decode(str(e.get("bytes", ""))) for e in entries)
        if "postData" in request:
            return str(request["postData"]).encode("utf-8", "surrogatepass")
        if request.get("hasPostData") and self._cdp is not None:
            got = self._cdp.send("Fetch.getRequestPostData", {"requestId": event["requestId"]})
            data = str(got.get("postData", ""))
            return base64.b64decode(data) if got.get("base64Encoded") else data.encode("utf-8", "surrogatepass")
        return None
