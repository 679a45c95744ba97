"""The page scan's packed selectors (each head sent once) come back exactly as they were, both ways."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from guards.observed import TextBlock
from runner.browser.mask_marks import pack_selectors
from runner.browser.page_scripts import decode_blocks

_STEPS = st.sampled_from(["html", "#a", "#b\\:c", "td:nth-of-type(3)", "tr:nth-of-type(12)", " > ", " |> ", ">", " ",
                          "p", "iframe#pay |> #card", ""])
SELECTORS = st.lists(st.lists(_STEPS, max_size=6).map("".join), max_size=30)


def _unpack(heads: list[str], tails: list[tuple[int, str]]) -> list[str]:
    """What MARK_JS rebuilds: head + ' > ' + step, or the step alone."""
    return [heads[h] + " > " + t if h >= 0 else t for h, t in tails]


@given(SELECTORS)
def test_packed_mask_selectors_unpack_to_the_same_selectors(selectors: list[str]) -> None:
    heads, tails = pack_selectors(selectors)
    assert _unpack(heads, tails) == selectors
    assert len(heads) == len(set(heads))


def test_a_row_of_cells_sends_its_path_once() -> None:
    row = "#customers > table:nth-of-type(1) > tbody:nth-of-type(1) > tr:nth-of-type(7)"
    heads, tails = pack_selectors([f"{row} > td:nth-of-type({i})" for i in range(1, 8)] + ["#solo"])
    assert heads == [row]
    assert tails[-1] == (-1, "#solo")


@given(SELECTORS)
def test_decoded_blocks_rebuild_each_selector(selectors: list[str]) -> None:
    # As TEXT_BLOCKS_JS packs them: [text, head index or -1, last step, is_input, password].
    heads, tails = pack_selectors(selectors)
    raw = json.dumps({"complete": True, "reason": "", "heads": heads,
                      "blocks": [[f"t{i}", h, t, i % 2, 0] for i, (h, t) in enumerate(tails)]})
    data = decode_blocks(raw)
    assert data is not None and data["complete"]
    assert [b.selector for b in data["blocks"]] == selectors
    assert [b.kind for b in data["blocks"]] == ["input" if i % 2 else "text" for i in range(len(selectors))]


def test_a_password_field_stays_one() -> None:
    data = decode_blocks(json.dumps({"complete": True, "heads": ["form"], "blocks": [["pw x", 0, "input", 1, 1]]}))
    assert data is not None
    assert data["blocks"] == [TextBlock(text="pw x", selector="form > input", kind="input", password=True)]


def test_an_answer_that_is_not_the_scripts_is_unreadable_not_empty() -> None:
    # read_text_blocks turns None into "page text could not be read" (fail closed), never into no blocks.
    answers: list[object] = [None, 3, {"blocks": []}, "not json", "[]",
                             json.dumps({"complete": True, "heads": [], "blocks": [["x", 4, "p", 0, 0]]})]
    for raw in answers:
        assert decode_blocks(raw) is None, raw
    over = decode_blocks(json.dumps({"complete": False, "reason": "more than 5000 text blocks", "blocks": []}))
    assert over is not None and not over["complete"] and over["reason"] == "more than 5000 text blocks"
