"""Screenshots of the main page: PII painted over (masks) and the action's target outlined, for
the evidence and the approval prompt. The outline adds nothing to the page's DOM; the masks are
found as one-time marks (``mask_marks``, one pass for thousands of PII blocks) and painted into the
image by Warden (``mask_paint``), never drawn in the page, where a hostile page could undo them.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page

from runner.browser.capture import capture_viewport, prepare, restore, shot_args
from runner.browser.driver import ActionFailed
from runner.browser.mask_marks import MasksTampered, check_marks
from runner.browser.mask_paint import mark_and_measure, measure_and_check, paint
from runner.browser.messages import short_message
from runner.browser.page_scripts import OUTLINE_CSS

# The colour Warden paints over masked elements in screenshots (runner/browser/mask_paint.py).
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
            if not mask_selectors:
                return _capture(page, full_page, style)
            try:
                return _masked(page, full_page, list(mask_selectors), style)
            except MasksTampered:
                if attempt + 1 == CAPTURE_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover
    except PlaywrightError as exc:
        raise ActionFailed(f"screenshot failed: {short_message(exc)}") from None
    finally:
        if style:
            with contextlib.suppress(PlaywrightError):
                page.hide_highlight()


def _masked(page: Page, full_page: bool, selectors: list[str], style: str) -> bytes:
    """One capture with the masks painted in by Warden (``mask_paint``); ``MasksTampered`` to retake.

    Two round trips besides the capture: the marks set and measured (the page prepared for the
    capture first, when Warden takes it: ``capture``), then measured again, checked and taken off
    (the preparation undone). The unmasked capture stays in memory and is dropped unless its masks
    are painted over it."""
    shot = shot_args() if _fast(full_page, style) else None
    undone = False
    try:
        marks, before = mark_and_measure(page, selectors, full_page=full_page, shot=shot)
        if before is None:  # nothing on the page matches: the same image as painting no rectangle, cheaper
            return _capture(page, full_page, style, prepared=shot)
        try:
            png = _capture(page, full_page, style, prepared=shot)
            # Painted while the page is measured again: the painted image is only returned once the
            # second reading matches the first (else both are dropped); the capture stays in memory.
            painted = _painter().submit(paint, png, before, MASK_COLOR, full_page=full_page)
            del png
            after = measure_and_check(page, marks, full_page=full_page, shot=shot)
            undone = True
        except PlaywrightError:
            with contextlib.suppress(PlaywrightError, ActionFailed):  # drop the marks (the isolated world's state)
                check_marks(page, marks)
            raise
    finally:
        if shot is not None and not undone:
            restore(page, shot)
    image = painted.result()  # its MasksTampered (not the page measured) is raised here
    if after != before:
        del image
        raise MasksTampered(
            f"screenshot discarded: the PII masked on the page moved during the capture ({marks.count} marked)"
        )
    return image


@functools.cache
def _painter() -> ThreadPoolExecutor:
    """The one thread masks are painted in (PNG decode and zlib release the GIL: it runs beside the
    main thread's second reading). Made on first use, never in a process that only imports this;
    its first task imports Pillow (~50 ms, off the path to the browser's launch)."""
    painter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warden-paint")
    painter.submit(_import_pillow)
    return painter


os.register_at_fork(after_in_child=_painter.cache_clear)  # a forked child makes its own (the thread is not copied)


def warm_painter() -> None:
    """Start the painter thread (and its import of Pillow) now: called once the page is open."""
    _painter()


def _import_pillow() -> None:
    from PIL import Image, ImageChops, ImageDraw  # noqa: F401


def _fast(full_page: bool, style: str) -> bool:
    """Warden's own capture (``capture``) for the viewport; Playwright's for full pages and stylesheets."""
    return not full_page and not style


def _capture(page: Page, full_page: bool, style: str, *, prepared: dict[str, Any] | None = None) -> bytes:
    """A capture of ``page``; ``prepared``: the page is already prepared for Warden's own (``capture``)."""
    if prepared is not None:
        return capture_viewport(page, timeout_s=SCREENSHOT_TIMEOUT_S)
    if _fast(full_page, style):
        shot = shot_args()
        try:
            prepare(page, shot)
            return capture_viewport(page, timeout_s=SCREENSHOT_TIMEOUT_S)
        finally:
            restore(page, shot)
    return page.screenshot(
        type="png", full_page=full_page, animations="disabled",
        caret="hide", timeout=SCREENSHOT_TIMEOUT_S * 1000, style=style or None,
    )
