"""Screenshots of the main page: PII painted over (masks) and the action's target outlined, for
the evidence and the approval prompt. Neither changes the page's DOM.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import FrameLocator, Locator, Page

from runner.browser.driver import ActionFailed
from runner.browser.messages import short_message
from runner.browser.page_scripts import FRAME_SEP, OUTLINE_CSS

# The colour painted over masked elements in screenshots (Playwright's ``mask_color``).
MASK_COLOR = "#000000"
SCREENSHOT_TIMEOUT_S = 15.0


def mask_locator(page: Page, selector: str) -> Locator:
    """The locator of a page-scan selector: CSS, or frame path + CSS joined by ``FRAME_SEP``
    (each frame entered with ``frame_locator``; CSS pierces open shadow roots)."""
    *frames, css = selector.split(FRAME_SEP)
    scope: Page | FrameLocator = page
    for f in frames:
        scope = scope.frame_locator(f)
    return scope.locator(css)


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
        return page.screenshot(
            type="png",
            full_page=full_page,
            mask=[mask_locator(page, s) for s in mask_selectors],
            mask_color=MASK_COLOR,
            animations="disabled",
            caret="hide",
            timeout=SCREENSHOT_TIMEOUT_S * 1000,
            style=style or None,
        )
    except PlaywrightError as exc:
        raise ActionFailed(f"screenshot failed: {short_message(exc)}") from None
    finally:
        if style:
            with contextlib.suppress(PlaywrightError):
                page.hide_highlight()
