"""The target reading (``page_reading.describe_element``) leaves nothing on the page: the one-time
mark it hands to the isolated world is gone afterwards, whether the isolated reading took it off
(the usual case: no extra round trip) or could not (the element is in a frame, or has the focus
inside one: the reading fails closed and the mark is taken off from the page's world); a decoy
that also carries the mark fails closed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runner.browser import page_reading
from runner.browser.driver import SandboxConfig
from runner.browser.page_scripts import MARK_ATTR
from runner.browser.playwright_driver import PlaywrightDriver, open_driver
from tests.server import TestServer

pytestmark = pytest.mark.browser

HOST = "allowed.localhost"
PAGE = """<!doctype html><html><body>
<form method="post" action="/pay"><button type="submit" id="pay">Submit payment</button></form>
<button id="decoy">Cancel</button>
<script>{script}</script></body></html>"""
# The page copies whatever Warden marks its element with onto a decoy as well.
COPY_TO_DECOY = """
  const sa = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (n, v) {
    sa.call(this, n, v); if (n.startsWith('data-warden')) sa.call(document.getElementById('decoy'), n, v); };
"""
MARKED = f"() => document.querySelectorAll('[{MARK_ATTR}]').length"
FRAMED = "document.body.insertAdjacentHTML('beforeend', '<iframe id=f srcdoc=\"<button id=in>In</button>\"></iframe>');"


@pytest.fixture
def open_page(sandbox_config: SandboxConfig, test_server: TestServer) -> Iterator[PlaywrightDriver]:
    with open_driver(sandbox_config) as driver:
        yield driver


def load(driver: PlaywrightDriver, server: TestServer, script: str = "") -> None:
    server.set_content("/pay-page", PAGE.replace("{script}", script))
    driver.perform("goto", {"url": server.url(HOST, "/pay-page")}, 10)


def test_a_read_target_is_described_from_both_worlds_and_left_unmarked(
    open_page: PlaywrightDriver, test_server: TestServer
) -> None:
    load(open_page, test_server)
    info = open_page.resolve("click", {"selector": "#pay"}, 5, selectors=["#pay"])
    assert info.found and info.tag == "button" and info.accessible_name == "Submit payment"
    assert info.form_action.endswith("/pay") and info.matched_selectors == ("#pay",)
    assert open_page.page.evaluate(MARKED) == 0


def test_a_mark_copied_to_a_decoy_fails_closed_and_is_taken_off_everywhere(
    open_page: PlaywrightDriver, test_server: TestServer
) -> None:
    load(open_page, test_server, COPY_TO_DECOY)
    info = open_page.resolve("click", {"selector": "#pay"}, 5)
    assert not info.found and "2 elements carry the mark" in (info.error or "")
    assert open_page.page.evaluate(MARKED) == 0


def test_a_focus_inside_a_frame_is_not_described_and_left_unmarked(
    open_page: PlaywrightDriver, test_server: TestServer
) -> None:
    load(open_page, test_server, FRAMED)
    open_page.page.focus("#f")
    info = open_page.resolve("press", {"key": "Enter"}, 5)
    assert not info.found and "inside an <iframe>" in (info.error or "")
    assert open_page.page.evaluate(MARKED) == 0


def test_a_target_inside_a_frame_fails_closed_and_is_left_unmarked(
    open_page: PlaywrightDriver, test_server: TestServer
) -> None:
    load(open_page, test_server, FRAMED)
    inner = open_page.page.frame_locator("#f").locator("#in")
    inner.wait_for()
    info = open_page.resolve("click", {"selector": "#f >> internal:control=enter-frame >> #in"}, 5)
    assert not info.found and "not in the main frame" in (info.error or "")
    assert inner.evaluate(MARKED.replace("() =>", "(e) =>").replace("document", "e.ownerDocument")) == 0


# ----------------------------------------------------------------------------- the isolated world's kept id

def test_a_navigation_drops_the_kept_world_and_the_next_read_is_of_the_new_document(
    open_page: PlaywrightDriver, test_server: TestServer
) -> None:
    load(open_page, test_server)
    title = "() => document.body.innerText.split('\\n')[0]"
    assert page_reading.evaluate_isolated(open_page.page, title, None) == "Submit payment"
    assert open_page.page in page_reading._WORLDS
    test_server.set_content("/next", "<!doctype html><body><p>Next page</p></body>")
    open_page.perform("goto", {"url": test_server.url(HOST, "/next")}, 10)
    assert open_page.page not in page_reading._WORLDS  # dropped by the session's Page.frameNavigated
    assert page_reading.evaluate_isolated(open_page.page, title, None) == "Next page"


def test_a_wrong_kept_frame_id_is_looked_up_again_on_the_same_session(
    open_page: PlaywrightDriver, test_server: TestServer
) -> None:
    load(open_page, test_server)
    page = open_page.page
    page_reading.evaluate_isolated(page, "() => 1", None)
    session = page_reading._SESSIONS[page]
    page_reading._WORLDS.pop(page)
    page_reading._FRAMES[page] = "0123456789ABCDEF0123456789ABCDEF"
    assert page_reading.evaluate_isolated(page, "() => document.querySelectorAll('button').length", None) == 2
    assert page_reading._SESSIONS[page] is session and page_reading._FRAMES[page] != "0123456789ABCDEF0123456789ABCDEF"
