"""How a step names the element it acts on: the Playwright locator, and the same call as text.

The intent record shows the call ``perform`` makes, so the locator and its text must agree: both
are built here, from the same target keys taken in the same order (the first one given wins).

Act on what was judged: the element the danger zones and the approver judged (resolved once by
``page_reading.find_target_element``) is remembered here, per page, with the step's kind and
arguments; ``actions.perform_action`` takes it and acts on *that handle* (frame-scoped), never on
a fresh query that a page could have swapped in between. A judged element that is gone by then
fails the step (nothing is done to whatever replaced it).
"""

from __future__ import annotations

import contextlib
import json
import weakref
from collections.abc import Mapping
from typing import Any, cast

from playwright.sync_api import ElementHandle, Locator, Page
from playwright.sync_api import Error as PlaywrightError

from runner.browser.driver import ActionFailed

TARGET_KEYS = ("selector", "text", "role", "label", "placeholder", "test_id")


def quote(value: object) -> str:
    """A string literal for the call text (double quotes, like Playwright's codegen)."""
    return json.dumps(str(value), ensure_ascii=False)


def has_target(args: Mapping[str, Any], skip_text: bool = False) -> bool:
    """Whether the step names an element (``skip_text``: ``text`` is the step's value, not a target)."""
    return any(args.get(k) is not None for k in TARGET_KEYS if not (skip_text and k == "text"))


def target_call_text(args: Mapping[str, Any], skip_text: bool = False) -> str:
    """The locator ``locate_target`` builds, as call text (``page.get_by_role("button", name="Pay")``)."""
    exact = ", exact=True" if args.get("exact") else ""
    if args.get("selector") is not None:
        return f"page.locator({quote(args['selector'])})"
    if not skip_text and args.get("text") is not None:
        return f"page.get_by_text({quote(args['text'])}{exact})"
    if args.get("role") is not None:
        name = f", name={quote(args['name'])}{exact}" if args.get("name") is not None else ""
        return f"page.get_by_role({quote(args['role'])}{name})"
    if args.get("label") is not None:
        return f"page.get_by_label({quote(args['label'])}{exact})"
    if args.get("placeholder") is not None:
        return f"page.get_by_placeholder({quote(args['placeholder'])}{exact})"
    if args.get("test_id") is not None:
        return f"page.get_by_test_id({quote(args['test_id'])})"
    raise ActionFailed("no target: give one of " + ", ".join(TARGET_KEYS))


def locate_target(page: Page, args: Mapping[str, Any], skip_text: bool = False) -> Locator:
    """The Playwright locator for the step's target (strict: it fails on several matches when used)."""
    exact = bool(args.get("exact", False))
    if args.get("selector") is not None:
        return page.locator(str(args["selector"]))
    if not skip_text and args.get("text") is not None:
        return page.get_by_text(str(args["text"]), exact=exact)
    if args.get("role") is not None:
        name = args.get("name")
        role = cast(Any, str(args["role"]))  # an unknown role fails in Playwright: ActionFailed
        if name is None:
            return page.get_by_role(role)
        return page.get_by_role(role, name=str(name), exact=exact)
    if args.get("label") is not None:
        return page.get_by_label(str(args["label"]), exact=exact)
    if args.get("placeholder") is not None:
        return page.get_by_placeholder(str(args["placeholder"]), exact=exact)
    if args.get("test_id") is not None:
        return page.get_by_test_id(str(args["test_id"]))
    raise ActionFailed("no target: give one of " + ", ".join(TARGET_KEYS))


# page -> (the step's kind and arguments, the judged element): at most one per page, taken once.
_JUDGED: weakref.WeakKeyDictionary[Page, tuple[str, ElementHandle]] = weakref.WeakKeyDictionary()


def _key(kind: str, args: Mapping[str, Any]) -> str:
    return json.dumps([kind, {k: args[k] for k in sorted(args)}], default=str, ensure_ascii=False)


def remember_judged(page: Page, kind: str, args: Mapping[str, Any], handle: ElementHandle) -> None:
    """The element this step was judged on (a later judgement of the page replaces it)."""
    forget_judged(page)
    _JUDGED[page] = (_key(kind, args), handle)


def is_judged(handle: ElementHandle) -> bool:
    """Whether ``handle`` is kept to be acted on (so it must not be disposed yet)."""
    return any(entry[1] is handle for entry in list(_JUDGED.values()))


def take_judged(page: Page, kind: str, args: Mapping[str, Any]) -> ElementHandle | None:
    """The judged element for exactly this step (kind and arguments), once; any other is dropped."""
    entry = _JUDGED.pop(page, None)
    if entry is None:
        return None
    if entry[0] == _key(kind, args):
        return entry[1]
    _dispose(entry[1])
    return None


def forget_judged(page: Page) -> None:
    entry = _JUDGED.pop(page, None)
    if entry is not None:
        _dispose(entry[1])


def _dispose(handle: ElementHandle) -> None:
    with contextlib.suppress(PlaywrightError):
        handle.dispose()
