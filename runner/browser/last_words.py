"""A page's last words at the close: what its pagehide/unload handlers send is judged before the end.

Why: closing sends each page to about:blank first, so the requests its leaving document starts (a
keepalive fetch, a beacon) are paused by the browser-level ``Fetch`` layer, judged and recorded
while Playwright still delivers events. A fixed pause after the commit (it was 50 ms) was a guess:
under load the paused request reached the gate after the context had closed, and its refusal was
not recorded. Here the wait is a condition: just before the page leaves, Warden's isolated world
(out of the page's reach) adds the last ``unload`` listener (``pagehide`` when the page's
permissions policy forbids unload handlers), which sends a beacon to a one-time URL of the page's
own origin. Every listener the page added before runs first, so its requests are started before
the sentinel; the close waits, at most ``timeout_ms``, until the gate has been asked about the
sentinel. The gate never sees it (``JudgedRequests.gate`` refuses it, nothing is sent and
nothing is recorded: its refusal event is dropped). A probe (a fetch to the same origin, refused
the same way) first proves the sentinel can reach the gate from this page: where it cannot (no
http(s) origin, a CSP forbidding it, no isolated world) the close keeps the old short pause.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page

from guards.observed import RequestInfo
from runner.browser.driver import EVENT_REQUEST_REFUSED, GateVerdict, RequestGate
from runner.browser.page_reading import evaluate_isolated

POLL_MS = 5  # events are delivered while Playwright waits: the condition is looked at this often
PROBE_MS = 1000  # at most this long for the probe (a request to the page's origin) to be judged
GRACE_MS = 50  # where no sentinel can be sent: the fixed pause there was before
SENTINEL_PATH = "/.warden-last-words/"
# In the isolated world: the last listener of the leaving document sends the sentinel beacon.
LAST_LISTENER_JS = r"""
async (o) => {
  const url = o.url;  // the one expected: anything else would reach the gate as the page's own request
  if (!/^https?:$/.test(location.protocol) || location.origin + o.path !== url) return '';
  // The probe: does a request to the page's own origin reach the gate here (a CSP may forbid it)?
  const probe = fetch(url + '-probe', {method: 'POST', body: '', cache: 'no-store'}).catch(() => 0);
  await Promise.race([probe, new Promise((r) => setTimeout(r, o.probeMs))]);
  const fp = document.featurePolicy;
  const ev = fp && fp.allowsFeature && !fp.allowsFeature('unload') ? 'pagehide' : 'unload';
  addEventListener(ev, () => { try { navigator.sendBeacon(url, ''); } catch (e) {} });
  return url;
}
"""


class JudgedRequests:
    """The close's sentinels: refused before the gate is asked, their refusal never reported."""

    def __init__(self) -> None:
        self._waiting: set[str] = set()
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def expect(self, url: str) -> None:
        with self._lock:
            self._waiting.add(url)

    def seen(self, url: str) -> bool:
        with self._lock:
            return url in self._seen

    def _is_sentinel(self, url: str) -> bool:
        with self._lock:
            if url in self._waiting:
                self._seen.add(url)
                return True
            return False

    def gate(self, inner: RequestGate) -> RequestGate:
        """``inner``, except for a sentinel: refused (never sent) without asking it."""

        def judged(info: RequestInfo) -> GateVerdict:
            if self._is_sentinel(info.url):
                return GateVerdict(False, "Warden's own last-words sentinel")
            return inner(info)

        return judged

    def on_event(
        self, inner: Callable[[str, Mapping[str, Any]], None] | None
    ) -> Callable[[str, Mapping[str, Any]], None]:
        """``inner``, without the refusals of the sentinels (Warden's own request, not the page's),
        whichever layer refused them (the gate's wrapper, or the resolver rules before the gate)."""

        def event(name: str, data: Mapping[str, Any]) -> None:
            if name == EVENT_REQUEST_REFUSED and self._is_sentinel(str(data.get("url", ""))):
                return
            if inner is not None:
                inner(name, data)

        return event


def send_away(page: Page, judged: JudgedRequests, *, timeout_ms: float) -> None:
    """``page`` to about:blank, then wait until its last listener's sentinel reached the gate (at most
    ``timeout_ms`` in all). Raises ``PlaywrightError`` when the page cannot be navigated."""
    deadline = time.monotonic() + timeout_ms / 1000.0
    path = SENTINEL_PATH + secrets.token_hex(16)
    sentinel = ""
    if page.url.startswith(("http:", "https:")):
        origin = page.url.split("/", 3)
        expected = f"{origin[0]}//{origin[2]}{path}"
        judged.expect(expected)
        judged.expect(expected + "-probe")
        try:
            found = evaluate_isolated(page, LAST_LISTENER_JS, {"url": expected, "path": path, "probeMs": PROBE_MS},
                                      await_promise=True)
            sentinel = expected if found == expected and judged.seen(expected + "-probe") else ""
        except PlaywrightError:
            sentinel = ""  # no isolated world (a closed or crashed page): the navigation only
    page.goto("about:blank", wait_until="commit", timeout=max(1.0, (deadline - time.monotonic()) * 1000.0))
    if not sentinel:  # no sentinel can arrive (no http(s) origin, a CSP, no isolated world): a short grace
        page.wait_for_timeout(GRACE_MS)
        return
    while not judged.seen(sentinel) and time.monotonic() < deadline:
        page.wait_for_timeout(POLL_MS)
