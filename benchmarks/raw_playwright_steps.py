"""The benchmark's baseline: bench_mission.yaml's 20 steps done with plain Playwright, no Warden.

Why: Warden's overhead is only meaningful against the same work done the plain way, so this script
does the same steps with the same locators, and a viewport screenshot after each step (Warden takes
one per step for its evidence). It prints one JSON line:
``{"total_s": ..., "first_action_s": ..., "steps": 20, "screenshots": 20}``.

``first_action_s`` runs from the process start to the end of step 1 (its screenshot included, as
Warden's ``step_finished`` event comes after the step's screenshot). Pass ``--start-epoch`` (the
parent's ``time.time()`` just before spawning) so interpreter start-up counts, as it does for
``warden run``; without it, the clock starts when this module is first executed.

    python benchmarks/raw_playwright_steps.py --base-url http://bench.localhost:PORT [--start-epoch T]
"""

from __future__ import annotations

import time

_MODULE_START = time.time()  # before the heavy imports

import argparse  # noqa: E402 - the clock above must start first
import json  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

from playwright.sync_api import Error as PlaywrightError  # noqa: E402
from playwright.sync_api import Page, sync_playwright  # noqa: E402

CHROMIUM = os.environ.get("WARDEN_CHROMIUM", "/usr/lib/chromium/chromium")
VIEWPORT = {"width": 1280, "height": 800}


def steps(base_url: str, vars_: dict[str, str]) -> list[Callable[[Page], object]]:
    """The 20 steps of bench_mission.yaml, one callable each, in order."""
    return [
        lambda p: p.goto(f"{base_url}/index.html"),                                  # 1
        lambda p: p.get_by_role("link", name="Start order").click(),                 # 2
        lambda p: p.get_by_label("Full name").fill("Bench Tester"),                  # 3
        lambda p: p.get_by_label("Company").fill("Example Ltd"),                     # 4
        lambda p: p.get_by_label("Plan").select_option(value="team"),                # 5
        lambda p: p.locator("#seats").fill("12"),                                    # 6
        lambda p: p.get_by_label("Accept the terms").check(),                        # 7
        lambda p: p.get_by_role("button", name="Continue").click(),                  # 8
        lambda p: p.locator("#shipping-form").wait_for(state="visible"),             # 9
        lambda p: p.get_by_label("Street").fill("1 Example Road"),                   # 10
        lambda p: p.get_by_label("City").fill("Testville"),                          # 11
        lambda p: p.get_by_placeholder("Postcode").fill("00000"),                    # 12
        lambda p: p.get_by_label("Country").select_option(value="nl"),               # 13
        lambda p: p.locator("#postcode").press("Tab"),                               # 14
        lambda p: p.get_by_role("button", name="Review order").click(),              # 15
        lambda p: p.get_by_text("Review your order").wait_for(state="visible"),      # 16
        lambda p: vars_.__setitem__("ref", p.locator("#order-ref").inner_text()),    # 17
        lambda p: _assert_text(p, "#summary", vars_["ref"]),                         # 18
        lambda p: p.get_by_role("button", name="Save order").click(),                # 19
        lambda p: p.get_by_text("Order placed").wait_for(state="visible"),           # 20
    ]


def _screenshot(page: Page, path: Path) -> None:
    """A viewport PNG. Right after a click that navigates, Chromium can refuse the capture ("Unable to
    capture screenshot", seen under heavy CPU load): let the new page load and try once more."""
    try:
        page.screenshot(path=path, type="png")
    except PlaywrightError:
        page.wait_for_load_state("load")
        page.screenshot(path=path, type="png")


def _assert_text(page: Page, selector: str, text: str) -> None:
    if text not in page.locator(selector).inner_text():
        raise AssertionError(f"{text!r} not in {selector}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--start-epoch", type=float, default=None, help="time.time() when the parent spawned us")
    ap.add_argument("--headed", action="store_true")
    args = ap.parse_args()
    start = args.start_epoch if args.start_epoch is not None else _MODULE_START

    first_action_s = None
    shots = 0
    vars_: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="raw-bench-") as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=not args.headed)
        context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
        page = context.new_page()
        for n, step in enumerate(steps(args.base_url.rstrip("/"), vars_), start=1):
            step(page)
            _screenshot(page, Path(tmp) / f"{n:02d}.png")
            shots += 1
            if n == 1:
                first_action_s = time.time() - start
        context.close()
        browser.close()
    total_s = time.time() - start
    print(json.dumps({"total_s": round(total_s, 4), "first_action_s": round(first_action_s or 0.0, 4),
                      "steps": len(steps("", {})), "screenshots": shots}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
