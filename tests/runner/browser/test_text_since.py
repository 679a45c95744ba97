"""The page text read answers ``{same}`` only when the page reads exactly as it did at the last full
answer: every kind of change (text, a field's value that no DOM mutation announces, a stylesheet,
a shadow root, a frame, an attribute, a new document) comes back whole, and the page sees nothing
of what the isolated world keeps.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page

from runner.browser import page_reading
from runner.browser.page_reading import PageTooBig, evaluate_isolated, read_text_blocks
from runner.browser.page_scripts import (
    FRAME_SEP,
    MAX_SCAN_MS,
    MAX_TEXT_BLOCKS,
    MAX_TEXT_CHARS,
    TEXT_BLOCKS_JS,
    decode_blocks,
)

LIMITS = {"maxBlocks": MAX_TEXT_BLOCKS, "maxChars": MAX_TEXT_CHARS, "maxMs": MAX_SCAN_MS, "sep": FRAME_SEP}

PAGE = """<!doctype html><html><head><style id="s"></style></head><body>
<p id="t">Call 212 555 0100</p><label for="n">Name</label><input id="n" value="Ada Archer">
<span id="a" title="first title">x</span><p id="v">shown text</p><div id="host"></div>
<iframe id="f" srcdoc="<p id='inner'>frame text</p>"></iframe>
<script>
  document.getElementById('host').attachShadow({mode: 'open'}).innerHTML = '<p id="sh">shadow text</p>';
</script>
</body></html>"""

# Each a page script that changes what the page shows, and a text the next reading must then hold (or,
# with a leading "-", no longer hold).
CHANGES = {
    "text node": ("document.getElementById('t').firstChild.nodeValue = 'Call 212 555 0199'", "212 555 0199"),
    "field value (no mutation)": ("document.getElementById('n').value = 'Grace Hopper'", "Grace Hopper"),
    "stylesheet hides": ("document.getElementById('s').sheet.insertRule('#v { display: none }')", "-shown text"),
    "shadow root": ("document.getElementById('host').shadowRoot.getElementById('sh').textContent = 'deep one'",
                    "deep one"),
    "frame": ("document.getElementById('f').contentDocument.getElementById('inner').textContent = 'framed two'",
              "framed two"),
    "attribute": ("document.getElementById('a').title = 'second title'", "second title"),
}


def _load(page: Page, html: str = PAGE) -> None:
    page.set_content(html)
    page.frame_locator("#f").locator("#inner").wait_for()


def _answers(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What each read's script answered (the real browser's answers, recorded on the way)."""
    seen: list[Any] = []
    real = page_reading.evaluate_isolated

    def spy(page: Page, script: str, arg: Any, **kw: Any) -> Any:
        out = real(page, script, arg, **kw)
        seen.append(out)
        return out

    monkeypatch.setattr(page_reading, "evaluate_isolated", spy)
    return seen


def _full(page: Page) -> list[tuple[str, str]]:
    data = decode_blocks(evaluate_isolated(page, TEXT_BLOCKS_JS, LIMITS))
    assert data is not None
    return [(b.text, b.selector) for b in data["blocks"]]


def _texts(page: Page) -> list[tuple[str, str]]:
    return [(b.text, b.selector) for b in read_text_blocks(page)]


@pytest.mark.browser
def test_an_unchanged_page_answers_same_and_gives_the_same_blocks(page: Page, monkeypatch: pytest.MonkeyPatch) -> None:
    _load(page)
    answers = _answers(monkeypatch)
    first, second, third = _texts(page), _texts(page), _texts(page)
    assert first == second == third == _full(page)
    assert isinstance(answers[0], str)  # the first reading: the whole JSON
    assert [set(a) for a in answers[1:3]] == [{"same"}, {"same"}]  # then only the nonce


@pytest.mark.browser
@pytest.mark.parametrize("name", list(CHANGES))
def test_every_kind_of_change_is_read_whole(page: Page, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    _load(page)
    _texts(page)
    answers = _answers(monkeypatch)
    script, expect = CHANGES[name]
    page.evaluate(script)
    after = _texts(page)
    joined = " | ".join(t for t, _ in after)
    if expect.startswith("-"):
        assert expect[1:] not in joined
    else:
        assert expect in joined
    assert after == _full(page)
    assert isinstance(answers[0], str)  # sent whole, not {same}


@pytest.mark.browser
def test_a_new_document_with_the_same_text_is_read_whole(page: Page, monkeypatch: pytest.MonkeyPatch) -> None:
    _load(page)
    before = _texts(page)
    page.goto("about:blank")
    _load(page)  # the same HTML in a new document: a new isolated world, nothing kept
    answers = _answers(monkeypatch)
    assert _texts(page) == before
    assert isinstance(answers[0], str)


@pytest.mark.browser
def test_a_document_rewritten_in_the_same_world_is_read_whole(page: Page, monkeypatch: pytest.MonkeyPatch) -> None:
    # document.open()/write() (what set_content does) keeps the window and Warden's isolated world,
    # and with them the kept answer: the new content still differs from it, so it comes back whole.
    _load(page)
    _texts(page)
    answers = _answers(monkeypatch)
    page.set_content("<!doctype html><html><body><p>Call 650 555 0142</p></body></html>")
    after = _texts(page)
    assert [t for t, _ in after] == ["Call 650 555 0142"]
    assert isinstance(answers[0], str)
    assert _texts(page) == after
    assert isinstance(answers[1], dict) and set(answers[1]) == {"same"}  # then unchanged again


@pytest.mark.browser
def test_the_page_sees_nothing_kept_and_cannot_plant_an_answer(page: Page) -> None:
    _load(page)
    _texts(page)
    assert page.evaluate("typeof globalThis.__wardenLastText") == "undefined"
    # A page that plants what the isolated world keeps, in its own world, plants nothing.
    page.evaluate("globalThis.__wardenLastText = {nonce: 'x', text: '{}'}; "
                  "document.getElementById('t').textContent = 'Call 415 555 0123'")
    assert "415 555 0123" in " | ".join(t for t, _ in _texts(page))


@pytest.mark.browser
def test_a_page_over_budget_is_refused_every_time(page: Page, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(page_reading, "MAX_TEXT_BLOCKS", 3)
    _load(page)
    for _ in range(2):
        with pytest.raises(PageTooBig):
            read_text_blocks(page)
