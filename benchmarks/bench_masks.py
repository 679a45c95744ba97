"""Benchmark: a screenshot of one 50 KB PII-heavy page with every block masked, against the same
screenshot unmasked (alternating, one browser), and optionally the old per-selector locators.

The page is bench_site's PII variant of index.html (~1,800 text blocks, each holding PII). The
selectors are what the page scan returns (``read_text_blocks``), as a run masks them all.
``--old N`` also times Playwright given one locator per selector for the first N selectors (the
mask path before runner/browser/mask_marks.py; all ~1,800 took ~40 s).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable

from bench_site import serve_site
from playwright.sync_api import FrameLocator, Locator, Page, sync_playwright

from runner.browser.page_reading import read_text_blocks
from runner.browser.page_scripts import FRAME_SEP
from runner.browser.screenshots import MASK_COLOR, take_screenshot

CHROMIUM = "/usr/lib/chromium/chromium"


def _old_locator(page: Page, selector: str) -> Locator:
    *frames, css = selector.split(FRAME_SEP)
    scope: Page | FrameLocator = page
    for f in frames:
        scope = scope.frame_locator(f)
    return scope.locator(css)


def _timed(fn: Callable[[], object]) -> float:
    t = time.monotonic()
    fn()
    return time.monotonic() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--reps", type=int, default=5, help="alternating pairs (default 5)")
    ap.add_argument("--old", type=int, default=0, help="also time the old per-selector locators for N selectors")
    ap.add_argument("--json", action="store_true", help='print {"rows": [...]}')
    args = ap.parse_args()
    server, base = serve_site(pii=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(base + "/index.html")
            sels = ["input[type=password i]", *sorted({b.selector for b in read_text_blocks(page)})]
            take_screenshot(page, mask_selectors=sels)  # warm
            masked: list[float] = []
            plain: list[float] = []
            old: list[float] = []
            for _ in range(args.reps):
                plain.append(_timed(lambda: take_screenshot(page)))
                masked.append(_timed(lambda: take_screenshot(page, mask_selectors=sels)))
            if args.old:
                locs = [_old_locator(page, s) for s in sels[: args.old]]
                old.append(_timed(lambda: page.screenshot(type="png", mask=locs, mask_color=MASK_COLOR,
                                                          animations="disabled", caret="hide", timeout=120_000)))
            browser.close()
    finally:
        server.shutdown()
    m, u = statistics.median(masked), statistics.median(plain)
    detail = (f"{len(sels)} mask selectors; medians masked {m * 1000:.0f} ms / unmasked {u * 1000:.0f} ms "
              f"(masked {min(masked) * 1000:.0f}-{max(masked) * 1000:.0f}, unmasked "
              f"{min(plain) * 1000:.0f}-{max(plain) * 1000:.0f}, {args.reps} alternating pairs)")
    if old:
        detail += f"; old per-selector locators, {min(args.old, len(sels))} selectors: {old[0]:.2f} s"
    rows = [{"figure": "screenshot of a 50 KB PII-heavy page, every block masked ÷ unmasked", "value": m / u,
             "unit": "x", "goal": "", "detail": detail}]
    if args.json:
        print(json.dumps({"rows": rows}))
    else:
        print(f"{rows[0]['figure']}: {m / u:.2f}x\n  {detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
