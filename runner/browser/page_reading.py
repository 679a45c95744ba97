"""Reading the main page without acting on it: the element an action would hit (danger zones,
approvals) and the visible text (the PII scan). The scripts and their decoding are ``page_scripts``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import secrets
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from playwright.sync_api import CDPSession, ElementHandle, Page
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from guards.observed import ElementInfo, TextBlock
from runner.browser.driver import ActionFailed
from runner.browser.messages import short_message
from runner.browser.page_scripts import (
    FRAME_SEP,
    ISOLATED_RESOLVE_JS,
    MARK_AND_RESOLVE_JS,
    MARK_ATTR,
    MAX_SCAN_MS,
    MAX_TEXT_BLOCKS,
    MAX_TEXT_CHARS,
    TEXT_BLOCKS_IMPL,
    TOO_BIG,
    decode_blocks,
    element_info,
    kept,
    merge_views,
)
from runner.browser.targets import forget_judged, has_target, is_judged, locate_target, remember_judged

_FRAME_TAGS = ("iframe", "frame", "object", "embed")
# One CDP session per page, kept (opening one costs ~80 ms; a read through it ~10 ms).
_SESSIONS: weakref.WeakKeyDictionary[Page, CDPSession] = weakref.WeakKeyDictionary()
_WORLDS: weakref.WeakKeyDictionary[Page, int] = weakref.WeakKeyDictionary()  # page -> isolated context id
_FRAMES: weakref.WeakKeyDictionary[Page, str] = weakref.WeakKeyDictionary()  # page -> its main frame's CDP id
# page -> (nonce, blocks) of its last reading answered in full and complete (``read_text_blocks``)
_LAST_TEXT: weakref.WeakKeyDictionary[Page, tuple[str, tuple[TextBlock, ...]]] = weakref.WeakKeyDictionary()
# The text read (page_scripts.TEXT_BLOCKS_IMPL), answered {same: o.prev} instead of the JSON when that
# is byte for byte the text of the reading this world last answered in full under the nonce ``o.prev``
# (kept in the isolated world, which the page cannot reach; a new document has a new world, so nothing
# kept). The page is read whole every time: only the answer's transfer and decoding are saved.
TEXT_BLOCKS_SINCE_JS = (
    "(lim) => {\n  const text = " + kept(TEXT_BLOCKS_IMPL) + "(lim);\n"
    "  const last = globalThis.__wardenLastText;\n"
    "  if (lim.prev && last && last.nonce === lim.prev && last.text === text) return {same: lim.prev};\n"
    "  globalThis.__wardenLastText = {nonce: lim.nonce, text};\n"
    "  return text;\n}"
)
WORLD_NAME = "warden-read"  # the isolated world Warden's page scan runs in (one per document, reused)


class PageTooBig(ActionFailed):
    """The page did not fit in the scan's budget: the scan cannot decide (never a pass)."""


def find_target_element(
    page: Page, kind: str, args: Mapping[str, Any], timeout_s: float
) -> ElementHandle | ElementInfo:
    """The element ``kind`` would act on (the focused one for a ``press`` without target).

    An ``ElementInfo`` instead when there is nothing to describe (no target, or the page body has
    the focus). Raises ``ActionFailed`` when the action would fail to find it: none within the
    timeout, or several.
    """
    ms = max(1.0, float(timeout_s) * 1000.0)
    handle: ElementHandle | None
    forget_judged(page)  # a new judgement: whatever was judged before is not what this step acts on
    try:
        if has_target(args):
            # element_handle() is strict and waits like the action does: none within the
            # timeout, or several, fails here exactly as the click would.
            handle = locate_target(page, args).element_handle(timeout=ms)
        elif kind == "press":
            handle = page.evaluate_handle("() => document.activeElement").as_element()
            if handle is None:
                return ElementInfo(found=True, tag="body")
        else:
            return ElementInfo(found=False, error="the action has no target")
    except PlaywrightTimeoutError as exc:
        raise ActionFailed(f"target not found: {short_message(exc)}") from None
    except PlaywrightError as exc:
        raise ActionFailed(short_message(exc)) from None
    remember_judged(page, kind, args, handle)  # the action acts on this very element (targets.py)
    return handle


def in_main_frame(args: Mapping[str, Any]) -> bool:
    """Whether the element ``locate_target(page, args)`` finds is in ``page``'s main frame, by its
    selector alone: only Playwright's ``internal:control=enter-frame`` engine (a ``frame_locator``, or
    written into a raw selector) leads into a frame; ``get_by_*`` locators stay in the page's frame.
    Unsure (a raw selector naming that engine, or a text that merely quotes it): False."""
    if not has_target(args):
        return False
    return not any("enter-frame" in str(args[k]) for k in ("selector", "text", "role", "name", "label",
                                                             "placeholder", "test_id") if args.get(k) is not None)


def describe_element(
    handle: ElementHandle, *, focused: bool, selectors: Sequence[str], main_frame: Page | None = None
) -> ElementInfo:
    """What ``handle`` is, as the page shows it now (``RESOLVE_JS``, in the page's world and again in
    Warden's isolated world); the handle is disposed, unless it is the judged element the action will
    act on (``targets.remember_judged``).

    ``focused``: the element has the focus rather than being named by the step; inside a frame its
    element cannot be seen, so it is reported as not found. ``main_frame``: the page whose main
    frame the handle is known to be in (``in_main_frame``): its frame is not asked for again.

    Four round trips: the page-world reading and the mark (``MARK_AND_RESOLVE_JS``), the mark's check,
    the element's frame, the isolated reading, which takes the mark off; only when it could not, is the
    mark taken off again from the page's world (a fifth).
    """
    nonce = secrets.token_hex(16)
    unmarked = False  # the isolated reading took the mark off the element
    try:
        data = handle.evaluate(MARK_AND_RESOLVE_JS, {"selectors": list(selectors), "attr": MARK_ATTR, "nonce": nonce})
        if not isinstance(data, dict):
            return ElementInfo(found=False, error="cannot describe the target")
        if focused and data.get("tag") in _FRAME_TAGS:
            frame = data.get("tag")
            return ElementInfo(found=False, error=f"the focus is inside an <{frame}>: its element cannot be seen")
        isolated = _read_isolated(handle, nonce, selectors, main_frame)
        unmarked = isinstance(isolated, ElementInfo)
    except PlaywrightError as exc:  # detached, navigated away, ...: cannot say what it is
        return ElementInfo(found=False, error=f"cannot describe the target: {short_message(exc)}")
    finally:
        if not unmarked:
            with contextlib.suppress(PlaywrightError):
                handle.evaluate("(el, a) => Element.prototype.removeAttribute.call(el, a)", MARK_ATTR)
        if not is_judged(handle):
            with contextlib.suppress(PlaywrightError):
                handle.dispose()
    if isinstance(isolated, str):
        return ElementInfo(found=False, error=f"cannot read the target in Warden's isolated world: {isolated}")
    return merge_views(isolated, element_info(data))


def _read_isolated(
    handle: ElementHandle, nonce: str, selectors: Sequence[str], main_frame: Page | None
) -> ElementInfo | str:
    """``RESOLVE_JS`` on the same element, run in Warden's isolated world (the page's scripts cannot
    redefine what it reads), or why it cannot be (a string: the caller fails closed).

    The isolated world is handed the element through the DOM: a one-time random mark attribute,
    set from the page's world (whose ``setAttribute`` the page may have redefined; ``describe_element``
    set it with the page-world reading) and checked here on the handle by Playwright's
    ``get_attribute`` (its utility world, out of the page's reach): the isolated reading describes the
    element carrying the mark only when the handle carries it, the handle is in the main frame (the
    isolated world's) and exactly one element does, i.e. the very element the action acts on. The
    isolated reading takes the mark off every element it finds carrying it.
    """
    if handle.get_attribute(MARK_ATTR) != nonce:
        return "the page did not let the element be marked"
    if main_frame is None:  # not known from how it was found: ask (a round trip)
        frame = handle.owner_frame()
        if frame is None or frame.parent_frame is not None:
            return "the element is not in the main frame"
        main_frame = frame.page
    raw = evaluate_isolated(main_frame, ISOLATED_RESOLVE_JS,
                            {"attr": MARK_ATTR, "nonce": nonce, "selectors": list(selectors)})
    if not isinstance(raw, dict) or raw.get("error") or not raw.get("tag"):
        return str(raw.get("error") if isinstance(raw, dict) else "no description") or "no description"
    return element_info(raw)


@functools.cache
def _taking_json(script: str) -> str:
    """``script`` (a one-argument JS function's source) as a function of its argument's JSON text."""
    return f"function (json) {{ return ({script}).call(this, JSON.parse(json)); }}"


def evaluate_isolated(page: Page, script: str, arg: Any, *, await_promise: bool = False) -> Any:
    """``script(arg)`` (a JS function's source) in an isolated world of the main frame, by value
    (``await_promise``: the value its promise resolves to).

    The page's scripts live in the main world: whatever they redefine there (``Node.prototype``
    getters, ``Element.prototype.getAttribute``, ``Array.prototype.map``, ``checkVisibility`` ...)
    is not what this script calls. Playwright-python has no isolated-world evaluate, so this goes
    through CDP (``Page.createIsolatedWorld``, reused by name per document; ``Runtime.callFunctionOn``,
    the argument as a value).
    The world's execution context id is kept per page (one round trip per read instead of three):
    Chromium never reuses a context id, so once the document is gone the kept id fails (it cannot
    reach another document's world) and the world is looked up again. The session's
    ``Page.frameNavigated`` events (a new main-frame document) drop the kept id and give the main
    frame's id before the next read, so a read after a navigation does not first fail on the old
    id nor ask for the frame tree (two round trips per new document); an event that comes late
    changes nothing (the old id fails as before). Raises ``PlaywrightError`` when the script
    cannot run or throws.
    """
    # The function's source is the same on every call (the argument travels as a value), so V8's
    # compilation cache compiles each script once per renderer, not once per read. The argument
    # goes as ONE JSON string, parsed by the isolated world's own ``JSON`` (the page cannot reach
    # it): Playwright walks a structured CDP parameter item by item (``to_impl``: ~94k calls for a
    # PII-heavy run's ~1,550 mask selectors a capture), a string in one step.
    arguments = [{"value": json.dumps(arg, allow_nan=False)}]
    script = _taking_json(script)
    reopened = False
    while True:
        session = _SESSIONS.get(page)
        if session is None:
            _WORLDS.pop(page, None)
            _FRAMES.pop(page, None)
            session = _SESSIONS[page] = _open_session(page)
        kept = _WORLDS.get(page)
        frame = _FRAMES.get(page)
        try:
            context_id = kept if kept is not None else _isolated_world(page, session, frame)
            res = session.send("Runtime.callFunctionOn", {
                "functionDeclaration": script, "arguments": arguments, "executionContextId": context_id,
                "returnByValue": True, "awaitPromise": await_promise,
            })
            _WORLDS[page] = context_id
            break
        except PlaywrightError:
            _WORLDS.pop(page, None)
            if kept is not None:
                continue  # the kept world's document is gone: look the world up again, same session
            if frame is not None:
                _FRAMES.pop(page, None)
                continue  # the kept frame id is not the main frame's any more: ask for the frame tree
            _SESSIONS.pop(page, None)  # a detached session is opened again once; a page error is raised
            with contextlib.suppress(PlaywrightError):
                session.detach()
            if reopened:
                raise
            reopened = True
    if res.get("exceptionDetails"):
        raise PlaywrightError("the page scan script failed in its isolated world")
    return res.get("result", {}).get("value")


def send_cdp(page: Page, method: str, params: Mapping[str, Any], *, timeout_s: float) -> dict[str, Any]:
    """One CDP command on ``page``'s kept session (``evaluate_isolated``'s, opened if there is none),
    answered within ``timeout_s``; raises ``PlaywrightError`` when it fails (the session is kept:
    a detached one fails the next ``evaluate_isolated`` read, which opens another)."""
    session = _SESSIONS.get(page)
    if session is None:
        _WORLDS.pop(page, None)
        _FRAMES.pop(page, None)
        session = _SESSIONS[page] = _open_session(page)
    return dict(session.send(method, dict(params), timeout=timeout_s * 1000.0))


def _open_session(page: Page) -> CDPSession:
    """A CDP session for ``page`` whose main-frame navigations drop the kept world (``evaluate_isolated``)."""
    session = page.context.new_cdp_session(page)
    ref = weakref.ref(page)  # the session must not keep its page alive (both are weakly keyed)

    def navigated(params: dict[str, Any]) -> None:
        frame = params.get("frame") or {}
        target = ref()
        if target is None or frame.get("parentId") or not frame.get("id"):
            return
        _WORLDS.pop(target, None)
        _FRAMES[target] = str(frame["id"])

    session.on("Page.frameNavigated", navigated)
    try:
        session.send("Page.enable")
    except PlaywrightError:
        with contextlib.suppress(PlaywrightError):
            session.detach()
        raise
    return session


def _isolated_world(page: Page, session: CDPSession, frame_id: str | None) -> int:
    """The execution context id of Warden's isolated world in the main frame's current document."""
    if frame_id is None:
        frame_id = str(session.send("Page.getFrameTree")["frameTree"]["frame"]["id"])
        _FRAMES[page] = frame_id
    world = session.send("Page.createIsolatedWorld", {"frameId": frame_id, "worldName": WORLD_NAME,
                                                      "grantUniveralAccess": False})
    return int(world["executionContextId"])


def read_text_blocks(page: Page) -> list[TextBlock]:
    """Visible text grouped by block element, form fields holding a value and accessible attributes,
    across open shadow roots and same-origin frames (see ``TEXT_BLOCKS_JS``), read in an isolated world.

    The page is read whole every time; when the reading is byte for byte the one this page's world
    last answered in full (``TEXT_BLOCKS_SINCE_JS``, under that answer's one-time nonce), only
    ``{same}`` travels back and that answer's blocks are returned again (a PII-heavy page's ~120 KB
    is neither sent nor decoded on every step that leaves it unchanged).
    A page over the scan's budget raises ``PageTooBig`` (the scan cannot decide; no partial list).
    A page that is navigating (its execution context destroyed mid-read) is read again once it
    has a document; a page that still cannot be read raises ``ActionFailed``.
    """
    last: PlaywrightError | None = None
    for _ in range(3):
        kept = _LAST_TEXT.pop(page, None)
        nonce = secrets.token_hex(8)
        limits = {"maxBlocks": MAX_TEXT_BLOCKS, "maxChars": MAX_TEXT_CHARS, "maxMs": MAX_SCAN_MS, "sep": FRAME_SEP,
                  "nonce": nonce, "prev": kept[0] if kept else None}
        try:
            raw = evaluate_isolated(page, TEXT_BLOCKS_SINCE_JS, limits)
        except PlaywrightError as exc:
            last = exc
            with contextlib.suppress(PlaywrightError):
                page.wait_for_load_state("domcontentloaded", timeout=5000)
            continue
        if kept is not None and isinstance(raw, dict) and raw.get("same") == kept[0]:
            _LAST_TEXT[page] = kept
            return list(kept[1])
        data = decode_blocks(raw)
        if data is None:
            break
        if not data["complete"]:
            raise PageTooBig(f"{TOO_BIG} ({data['reason'] or 'over budget'})")
        blocks: list[TextBlock] = data["blocks"]
        _LAST_TEXT[page] = (nonce, tuple(blocks))
        return blocks
    raise ActionFailed(f"page text could not be read: {short_message(last) if last else 'unexpected result'}")
