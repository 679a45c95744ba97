"""The second interception layer: a browser-level CDP ``Fetch`` handler behind the context route.

Why: a beacon or keepalive fetch sent while a page unloads (``pagehide``/``unload``) is issued by
Chromium after the page's target is gone, so Playwright's context route never sees it; to an
*allowed* host it would leave unscanned and unrecorded. Measured (Chromium 1xx, Playwright sync):
a session from ``browser.new_browser_cdp_session()`` with ``Fetch.enable`` sees them
(``resourceType`` ``Ping`` for a beacon, ``XHR`` for an unload keepalive fetch, ``POST`` with
``postData``) and can fail or continue them. Requests the route sees reach this layer too,
*after* the route continued them (they carry a ``networkId``; the unload ones carry none).

What it does: each paused request becomes a ``RequestInfo`` and goes through the same
``request_gate``; a refusal fails it with ``BlockedByClient``, a handler error fails it too (fail
closed). A request the route already judged is not judged (nor recorded) twice: the route puts
its verdict in a ``JudgedCache`` keyed by (method, URL, sha256 of the body) for a few seconds,
and this layer reuses it. A host outside the resolver allowlist (the route allowed it: a gate
sidestepped) is failed here and reported as a resolver refusal, since a request paused here is
reported to Playwright as ``ERR_ABORTED``, not as the resolver's ``ERR_NAME_NOT_RESOLVED``.
Paused: ``Ping`` (beacons), ``XHR`` and ``Fetch`` — the only kinds a document can still send while it
unloads (``keepalive``); documents, images, scripts and styles never pay for this layer. A live fetch
is paused here after the route continued it and answered from the cache: like the route itself, this
handler runs only while a Playwright call is in progress on the run's thread (the sync API's
dispatcher), so a page's request waits for Warden's next browser call — measured the same for the
route alone — and the step loop makes one after every action (its page scan and screenshot).
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from playwright.sync_api import Browser, CDPSession

from guards.observed import RequestInfo, RequestKind
from runner.browser.chromium import host_matches, host_of
from runner.browser.driver import EVENT_GATE_ERROR, EVENT_REQUEST_REFUSED, GateVerdict, SandboxConfig

# Measured: an unload beacon is ``Ping`` and an unload keepalive ``fetch`` is ``XHR``; ``Fetch`` is
# paused too, so a Chromium that reports it by its own name is not a gap.
PAUSED_TYPES = ("Ping", "XHR", "Fetch")
# Playwright's resource types (Chromium's, lower-cased) of requests this layer never pauses: the route
# keeps no verdict for them. Were one paused after all, it would be judged again, never let through.
NEVER_PAUSED = frozenset({"document", "stylesheet", "image", "media", "font", "script", "texttrack", "manifest"})
CACHE_TTL_S = 5.0
CACHE_CAP = 4096
_RESOURCE_TYPES = {"Ping": "ping", "XHR": "xhr", "Fetch": "fetch"}

Key = tuple[str, str, str]
# Forbidden request headers (a page cannot set them) that only one of the two views shows.
_BROWSER_ADDED = frozenset({"user-agent", "accept-encoding", "connection", "host", "content-length"})


def request_key(method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> Key:
    """What makes two sightings the same request: method, URL, headers and body (a keepalive fetch that
    repeats a judged one with one more header is a different request, judged again)."""
    digest = hashlib.sha256(body or b"")
    for name, value in _page_set(headers):
        digest.update(b"\0" + name.encode("utf-8", "surrogatepass") + b"\0" + value.encode("utf-8", "surrogatepass"))
    return (method.upper(), url.split("#", 1)[0], digest.hexdigest())


def _page_set(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """The headers a page can set, sorted: the two views differ only in what the browser adds itself
    (measured: the browser layer also sees ``Accept: */*``, ``User-Agent``, ``sec-ch-ua-*``). A header
    the page set and the other view lacks makes a different key: judged again, never skipped."""
    out = []
    for name, value in headers.items():
        low = name.lower()
        if low in _BROWSER_ADDED or low.startswith(("sec-", "proxy-")) or (low == "accept" and value == "*/*"):
            continue
        out.append((low, value))
    return sorted(out)


class JudgedCache:
    """Verdicts the route gave in the last ``CACHE_TTL_S`` seconds, so the browser layer reuses them."""

    def __init__(self, ttl_s: float = CACHE_TTL_S) -> None:
        self._ttl = ttl_s
        self._items: dict[Key, tuple[float, GateVerdict]] = {}
        self._lock = threading.Lock()

    def put(self, key: Key, verdict: GateVerdict) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._items) >= CACHE_CAP:
                self._items = {k: v for k, v in self._items.items() if now - v[0] < self._ttl}
                if len(self._items) >= CACHE_CAP:
                    self._items.clear()
            self._items[key] = (now, verdict)

    def get(self, key: Key) -> GateVerdict | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is None:
                return None
            if time.monotonic() - hit[0] >= self._ttl:
                del self._items[key]
                return None
            return hit[1]


class BrowserFetch:
    """Installed once per browser (``install``); reports gate errors through ``emit``/``defer``."""

    def __init__(
        self,
        config: SandboxConfig,
        cache: JudgedCache,
        emit: Callable[[str, Mapping[str, Any]], None],
        defer: Callable[[BaseException], None],
    ) -> None:
        self._config = config
        self._cache = cache
        self._emit = emit
        self._defer = defer
        self._cdp: CDPSession | None = None
        self._network_ids: OrderedDict[str, None] = OrderedDict()  # seen here: a repeat is a redirect hop
        self.judged = 0  # requests this layer judged itself (the route had not)
        self.reused = 0  # requests the route had judged: its verdict reused, nothing recorded again

    def install(self, browser: Browser) -> None:
        cdp = browser.new_browser_cdp_session()
        cdp.on("Fetch.requestPaused", self._on_paused)
        patterns = [{"urlPattern": "*", "resourceType": t, "requestStage": "Request"} for t in PAUSED_TYPES]
        cdp.send("Fetch.enable", {"patterns": patterns})
        self._cdp = cdp

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
                cdp.send("Fetch.continueRequest", {"requestId": request_id})
            else:
                cdp.send("Fetch.failRequest", {"requestId": request_id, "errorReason": "BlockedByClient"})
        except Exception:
            return  # the request (or the browser) went away meanwhile

    def _judge(self, event: dict[str, Any]) -> bool:
        request = event["request"]
        url = str(request["url"]) + str(request.get("urlFragment") or "")
        method = str(request.get("method") or "GET")
        host = host_of(url)
        kind = self._kind(event)
        if not host_matches(host, self._config.resolvable_hosts):
            # The resolver would refuse it, but once paused here Playwright reports it as ERR_ABORTED
            # (measured), so requestfailed cannot record it: refuse it here, as the resolver would.
            self._emit(EVENT_REQUEST_REFUSED, {
                "url": url, "method": method, "kind": kind,
                "resource_type": _RESOURCE_TYPES.get(str(event.get("resourceType")), "other"), "frame_url": None,
                "reason": f"{host!r} is not in the resolver allowlist", "layer": "resolver",
            })
            return False
        body = self._body(event)
        headers = {str(k): str(v) for k, v in (request.get("headers") or {}).items()}
        known = self._cache.get(request_key(method, url, headers, body))
        if known is not None:
            self.reused += 1
            return known.allow  # the route judged (and recorded) it already
        gate = self._config.request_gate
        if gate is None:
            return True
        info = RequestInfo(
            url=url,
            method=method,
            kind=kind,
            resource_type=_RESOURCE_TYPES.get(str(event.get("resourceType")), "other"),
            is_navigation=False,
            frame_url=None,  # the page is gone: the gate uses the page the run was on
            headers=headers,
            body=body,
        )
        self.judged += 1
        return gate(info).allow

    def _kind(self, event: Mapping[str, Any]) -> RequestKind:
        """A hop of a redirect chain (measured: it keeps the first request's ``networkId``; the route does
        not see a fetch's redirects) or a request of its own."""
        network_id = str(event.get("networkId") or "")
        if not network_id:
            return "subresource"
        if network_id in self._network_ids:
            return "redirect"
        self._network_ids[network_id] = None
        if len(self._network_ids) > CACHE_CAP:
            self._network_ids.popitem(last=False)
        return "subresource"

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
