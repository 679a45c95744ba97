"""Screenshots of the main page: PII painted over (masks) and the action's target outlined, for
the evidence and the approval prompt. The outline adds nothing to the page's DOM; the masks are
one-time attributes set for the capture only (``mask_marks``: one locator per frame, not one per
selector, so a page with thousands of PII blocks is masked in one pass).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page

from runner.browser.driver import ActionFailed
from runner.browser.mask_marks import MasksTampered, check_marks, mark_masks
from runner.browser.messages import short_message
from runner.browser.page_scripts import OUTLINE_CSS

# The colour painted over masked elements in screenshots (Playwright's ``mask_color``).
MASK_COLOR = "#000000"
SCREENSHOT_TIMEOUT_S = 15.0
CAPTURE_ATTEMPTS = 2  # a page that re-renders during the capture gets one retake; then no image


def take_screenshot(
    page: Page, *, full_page: bool = False, mask_selectors: Sequence[str] = (), outline: Sequence[str] = ()
) -> bytes:
    """A PNG of ``page``: ``mask_selectors`` painted ``MASK_COLOR``, ``outline`` (CSS selectors) outlined."""
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
        for attempt in range(CAPTURE_ATTEMPTS):
            marks = mark_masks(page, list(mask_selectors)) if mask_selectors else None
            try:
                png = _capture(page, full_page, list(marks.locators) if marks else [], style)
            except PlaywrightError:
                if marks is not None:  # take the marks off again; the failure is the one raised
                    with contextlib.suppress(PlaywrightError, ActionFailed):
                        check_marks(page, marks)
                raise
            if marks is None:
                return png
            try:
                check_marks(page, marks)
            except MasksTampered:
                if attempt + 1 == CAPTURE_ATTEMPTS:
                    raise
                continue
            return png
        raise AssertionError("unreachable")  # pragma: no cover
    except PlaywrightError as exc:
        raise ActionFailed(f"screenshot failed: {short_message(exc)}") from None
    finally:
        if style:
            with contextlib.suppress(PlaywrightError):
                page.hide_highlight()


def _capture(page: Page, full_page: bool, mask: list[Locator], style: str) -> bytes:
    return page.screenshot(
        type="png", full_page=full_page, mask=mask, mask_color=MASK_COLOR, animations="disabled",
        caret="hide", timeout=SCREENSHOT_TIMEOUT_S * 1000, style=style or None,
    )
