"""The context's open pages as an agent's tabs (``browser_tabs``): list, select, new, close.

Every page of the sandboxed context is behind the same request gate (the context's route), so a
tab changes which page the actions, scans and screenshots are about — never what is allowed. A
new tab is blank (a navigation in it is a ``goto`` like any other); closing a tab skips its
``beforeunload`` prompt, and whatever its unload handlers send is judged by the gate.
"""

from __future__ import annotations

from collections.abc import Sequence

from playwright.sync_api import BrowserContext, Page
from playwright.sync_api import Error as PlaywrightError

from runner.browser.driver import ActionFailed
from runner.browser.messages import short_message


def open_pages(pages: Sequence[Page]) -> list[Page]:
    """The pages still open, in the order they were opened."""
    return [p for p in pages if not p.is_closed()]


def tab_urls(pages: Sequence[Page]) -> list[str]:
    return [p.url for p in open_pages(pages)]


def pick(pages: Sequence[Page], index: int) -> Page:
    tabs = open_pages(pages)
    if not 0 <= index < len(tabs):
        raise ActionFailed(f"there is no tab {index}: {len(tabs)} open (0 to {len(tabs) - 1})")
    return tabs[index]


def new_tab(context: BrowserContext) -> Page:
    try:
        page = context.new_page()
    except PlaywrightError as exc:
        raise ActionFailed(short_message(exc)) from None
    return page


def close_tab(pages: Sequence[Page], index: int, current: Page) -> Page:
    """Close tab ``index``; the page that is current afterwards (the last one left if it was current)."""
    page = pick(pages, index)
    if len(open_pages(pages)) == 1:
        raise ActionFailed("this is the last tab: browser_close closes the browser and ends the session")
    try:
        page.close(run_before_unload=False)
    except PlaywrightError as exc:
        raise ActionFailed(short_message(exc)) from None
    return current if page is not current else open_pages(pages)[-1]


def front(page: Page) -> Page:
    try:
        page.bring_to_front()
    except PlaywrightError as exc:
        raise ActionFailed(short_message(exc)) from None
    return page
