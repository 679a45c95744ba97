"""What still discards a masked capture now that the marks live only in Warden's isolated world:
a marked element, or a same-origin frame it is inside, that left its document between the two
readings. The attack no rectangle catches: the page swaps the element (or the frame) for an
identical clone, so every rectangle reads the same; the clone was never marked.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from runner.browser.mask_marks import MasksTampered
from runner.browser.mask_paint import mark_and_measure, measure_and_check

PAGE = """<!doctype html><html><body style="margin:0">
<p id="secret" style="margin:0;height:20px">Email: ada@example.com</p>
<p id="other" style="margin:0;height:20px">nothing here</p>
<iframe id="f" style="border:0;width:400px;height:60px"
  srcdoc="<p id='inner' style='margin:0'>Card 4111 1111 1111 1111</p>">
</iframe></body></html>"""

# Each a page script run between the two readings, and whether the capture must be discarded.
SWAPS = {
    "element replaced by its clone": ("const e = document.getElementById('secret'); e.replaceWith(e.cloneNode(true))",
                                      True),
    "frame replaced by its clone": ("const f = document.getElementById('f'); f.replaceWith(f.cloneNode(true))", True),
    "an unmarked element replaced": ("const e = document.getElementById('other'); e.replaceWith(e.cloneNode(true))",
                                     False),
}


@pytest.mark.browser
@pytest.mark.parametrize("name", list(SWAPS))
def test_a_marked_element_or_frame_swapped_for_a_clone_discards_the_capture(page: Page, name: str) -> None:
    page.set_content(PAGE)
    page.frame_locator("#f").locator("#inner").wait_for()
    marks, before = mark_and_measure(page, ["#secret", "#f |> #inner"], full_page=False)
    assert marks.count == 2 and before is not None and len(before.rects) == 2
    script, discarded = SWAPS[name]
    page.evaluate(f"() => {{ {script}; }}")
    if discarded:
        with pytest.raises(MasksTampered, match="lost"):
            measure_and_check(page, marks, full_page=False)
    else:
        after = measure_and_check(page, marks, full_page=False)
        assert after == before  # the rectangles alone would not have told the clones apart either
