"""The accessibility snapshot an agent reads, with element refs (``[ref=eN]``), and its document token.

Playwright's ``aria_snapshot(mode="ai")`` numbers the elements it shows; ``page.locator("aria-ref=eN")``
resolves such a ref in the same document. A ref is only meaningful for the document it came
from, so the snapshot comes with a token of that document (its ``performance.timeOrigin``, read in
an isolated world the page's scripts cannot reach): a different token means the refs are stale.
"""

from __future__ import annotations

import re

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, Route

from runner.browser.driver import ActionFailed, AriaSnapshot
from runner.browser.messages import short_message
from runner.browser.page_reading import evaluate_isolated

REF = re.compile(r"\[ref=((?:f[0-9]+)?e[0-9]+)\]")
_DOCUMENT_SCRIPT = "() => String(performance.timeOrigin)"


def document_token(page: Page) -> str:
    """Changes with every new document in the main frame (a navigation, a reload)."""
    try:
        return str(evaluate_isolated(page, _DOCUMENT_SCRIPT, None))
    except PlaywrightError as exc:
        raise ActionFailed(short_message(exc)) from None


def aria_snapshot(page: Page, timeout_s: float = 10.0) -> AriaSnapshot:
    """The main frame's accessibility tree as YAML text with refs, the refs it holds, its document token."""
    try:
        token = document_token(page)
        text = page.aria_snapshot(mode="ai", timeout=max(1.0, timeout_s * 1000.0))
    except PlaywrightError as exc:
        raise ActionFailed(short_message(exc)) from None
    return AriaSnapshot(text=text, refs=frozenset(REF.findall(text)), document=token, url=page.url)


def pump(page: Page, seconds: float) -> None:
    """Let the browser's pending events run for ``seconds`` (sync Playwright runs its route handlers,
    and so the request gate, only while Python waits on it). Best effort: a closed page is idle."""
    try:
        page.wait_for_timeout(max(1.0, seconds * 1000.0))
    except PlaywrightError:
        pass


def history_back_url(page: Page) -> str | None:
    """The URL of the main page's previous history entry (what ``page.go_back`` will load), or None."""
    try:
        cdp = page.context.new_cdp_session(page)
        try:
            history = cdp.send("Page.getNavigationHistory")
        finally:
            cdp.detach()
    except PlaywrightError as exc:
        raise ActionFailed(short_message(exc)) from None
    index, entries = int(history.get("currentIndex", 0)), list(history.get("entries") or [])
    return str(entries[index - 1].get("url", "")) if 0 < index <= len(entries) else None


def go_back(page: Page, expected_url: str, ms: float) -> None:
    """History back, only to the entry that was judged (``expected_url``): else the step fails, nothing done.

    The request gate judges whatever the back navigation fetches; a page restored from the
    back/forward cache fetches nothing, which is why the destination itself is judged first."""
    previous = history_back_url(page)
    if previous is None:
        raise ActionFailed("there is no previous page in the browser's history")
    if previous != expected_url:
        raise ActionFailed("the previous page in the browser's history is not the page that was judged")
    resubmitted: list[str] = []

    def no_resubmission(route: Route) -> None:
        # Back onto a form's result page re-sends its POST (Chromium asks no one): that would be the
        # form's action again without its step (nor its approval). Refused; everything else goes on
        # to the context's route, the request gate.
        request = route.request
        if request.is_navigation_request() and request.method != "GET" and request.frame.parent_frame is None:
            resubmitted.append(request.method)
            route.abort("blockedbyclient")
        else:
            route.fallback()

    try:
        page.route("**/*", no_resubmission)
        try:
            went = page.go_back(wait_until="load", timeout=ms)
        except PlaywrightError as exc:
            if not resubmitted:
                raise ActionFailed(short_message(exc)) from None
            went = None
        finally:
            page.unroute("**/*", no_resubmission)
    except PlaywrightError as exc:
        raise ActionFailed(short_message(exc)) from None
    if resubmitted:
        raise ActionFailed(f"going back would send the previous page's form again ({resubmitted[0]}): "
                           "refused, nothing was sent; navigate to it instead")
    if went is None and page.url != expected_url:
        raise ActionFailed("the browser could not go back")
