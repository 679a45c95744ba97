"""The step actions on the main page: the call each one makes (as text, for the intent record),
making it, and the error class its failure becomes (retried, failed, or a guardrail stop).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any, Literal, cast

from playwright.sync_api import ElementHandle, Locator, Page, expect
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from runner.browser.driver import ActionFailed, DriverError, StepOutcome, TransientFailure
from runner.browser.messages import short_message
from runner.browser.targets import has_target, locate_target, quote, take_judged, target_call_text

# Kinds whose timeout is worth a retry (reads); a timeout on click/fill/... is a failed step.
TIMEOUT_IS_TRANSIENT = frozenset({"goto", "wait_for", "extract", "assert_text"})
_FORM_FIELDS = frozenset({"input", "textarea", "select"})
_ERROR_PAGE_SETTLE_MS = 1000.0
_Modifier = Literal["Alt", "Control", "ControlOrMeta", "Meta", "Shift"]

# Why a goto failed with this (short) message: the request gate's or the resolver's refusal, or a
# network failure (see ``ContextHooks.navigation_failure``).
GotoFailure = Callable[[str, str], DriverError]


def describe_action(kind: str, args: Mapping[str, Any]) -> str:
    """The Playwright call ``perform_action`` makes for this step, as text."""
    if kind == "goto":
        if args.get("back"):
            return f'page.go_back(wait_until="load")  # to {quote(args["url"])}'
        return f'page.goto({quote(args["url"])}, wait_until="load")'
    if kind == "click":
        return f"{target_call_text(args)}.{'dblclick' if args.get('double') else 'click'}({_click_text(args)})"
    if kind in ("hover", "check", "uncheck"):
        return f"{target_call_text(args)}.{kind}()"
    if kind == "fill":
        if args.get("slowly"):
            return f"{target_call_text(args)}.press_sequentially({quote(args['value'])})"
        return f"{target_call_text(args)}.fill({quote(args['value'])})"
    if kind == "select":
        if args.get("values") is not None:
            return f"{target_call_text(args)}.select_option({[str(v) for v in args['values']]!r})"
        if args.get("value") is not None:
            return f"{target_call_text(args)}.select_option(value={quote(args['value'])})"
        return f"{target_call_text(args)}.select_option(label={quote(args['option_label'])})"
    if kind == "press":
        if has_target(args):
            return f"{target_call_text(args)}.press({quote(args['key'])})"
        return f"page.keyboard.press({quote(args['key'])})"
    if kind == "wait_for":
        if args.get("text") is not None:
            return f"page.get_by_text({quote(args['text'])}).first.wait_for()"
        if args.get("text_gone") is not None:
            return f"page.get_by_text({quote(args['text_gone'])}).first.wait_for(state=\"hidden\")"
        if args.get("selector") is not None:
            return f"page.locator({quote(args['selector'])}).first.wait_for()"
        if args.get("url") is not None:
            return f"page.wait_for_url({quote(args['url'])})"
        if args.get("load_state") is not None:
            return f"page.wait_for_load_state({quote(args['load_state'])})"
        if args.get("seconds") is not None:
            return f"page.wait_for_timeout({round(float(args['seconds']) * 1000)})"
        raise ActionFailed("wait_for needs one of text, selector, url, load_state, seconds")
    if kind == "screenshot":
        return f"page.screenshot(full_page={bool(args.get('full_page', False))})"
    if kind == "extract":
        if args.get("attribute") is not None:
            return f"{target_call_text(args)}.get_attribute({quote(args['attribute'])})"
        return f"{target_call_text(args)}.inner_text()"
    if kind == "assert_text":
        scope = target_call_text(args, skip_text=True) if has_target(args, True) else 'page.locator("body")'
        return f"expect({scope}).to_contain_text({quote(args['text'])})"
    raise ActionFailed(f"unknown action kind {kind!r}")


def perform_action(
    page: Page, kind: str, args: Mapping[str, Any], timeout_s: float, call: str, *, goto_failure: GotoFailure
) -> StepOutcome:
    """Make the call ``describe_action`` gave as ``call``; Playwright's errors become ``DriverError``s."""
    ms = max(1.0, float(timeout_s) * 1000.0)
    value: str | None = None
    try:
        value, call = _act(page, kind, args, ms, call)
    except DriverError:
        raise
    except AssertionError as exc:
        raise ActionFailed(_assert_text_message(args, timeout_s, exc)) from None
    except PlaywrightTimeoutError as exc:
        if kind in TIMEOUT_IS_TRANSIENT:
            raise TransientFailure(short_message(exc)) from None
        raise ActionFailed(short_message(exc)) from None
    except PlaywrightError as exc:
        if kind == "goto":
            raise goto_failure(str(args["url"]), short_message(exc)) from None
        raise ActionFailed(short_message(exc)) from None
    return StepOutcome(call=call, url_after=page.url, value=value)


def _act(page: Page, kind: str, args: Mapping[str, Any], ms: float, call: str) -> tuple[str | None, str]:
    """The Playwright call itself: (the value read, the call as made; ``extract`` refines it).

    An action on an element acts on the handle that was judged for this step (``take_judged``),
    when there is one: never a re-query the page could have answered with another element.
    """
    judged = take_judged(page, kind, args)

    def target() -> Locator | ElementHandle:
        return judged if judged is not None else locate_target(page, args)

    if kind == "goto" and args.get("back"):
        from runner.browser.aria import go_back

        go_back(page, str(args["url"]), ms)
    elif kind == "goto":
        try:
            page.goto(str(args["url"]), wait_until="load", timeout=ms)
        except PlaywrightError as exc:
            if "net::ERR_" in str(exc) and "net::ERR_ABORTED" not in str(exc):
                _settle_error_page(page)
            raise
    elif kind == "click":
        _click(target(), args, ms)
    elif kind == "hover":
        target().hover(timeout=ms)
    elif kind == "check":
        target().check(timeout=ms)
    elif kind == "uncheck":
        target().uncheck(timeout=ms)
    elif kind == "fill":
        if args.get("slowly"):
            _type_slowly(target(), str(args["value"]), ms)
        else:
            target().fill(str(args["value"]), timeout=ms)
    elif kind == "select":
        loc = target()
        if args.get("values") is not None:  # each a value or a label (as Playwright MCP's select_option)
            loc.select_option([str(v) for v in args["values"]], timeout=ms)
        elif args.get("value") is not None:
            loc.select_option(value=str(args["value"]), timeout=ms)
        else:
            loc.select_option(label=str(args["option_label"]), timeout=ms)
    elif kind == "press":
        if judged is not None:  # the named target, or the element that had the focus when judged
            judged.press(str(args["key"]), timeout=ms)
        elif has_target(args):
            locate_target(page, args).press(str(args["key"]), timeout=ms)
        else:
            page.keyboard.press(str(args["key"]))
    elif kind == "wait_for":
        _wait_for(page, args, ms)
    elif kind == "screenshot":
        pass  # the loop takes the image with screenshot(); the step itself does nothing
    elif kind == "extract":
        return _extract(page, args, ms)
    elif kind == "assert_text":
        scope = locate_target(page, args, skip_text=True) if has_target(args, True) else page.locator("body")
        expect(scope).to_contain_text(str(args["text"]), timeout=ms, use_inner_text=True)
    else:  # describe_action() already refused unknown kinds
        raise ActionFailed(f"unknown action kind {kind!r}")
    return None, call


def _settle_error_page(page: Page) -> None:
    """Wait (briefly) for the error page Chromium commits *after* goto has already failed.

    Without this the next goto races with that commit and fails with "interrupted by another
    navigation to chrome-error://chromewebdata/" although it actually succeeds.
    """
    with contextlib.suppress(PlaywrightError):
        page.wait_for_url(lambda u: u.startswith("chrome-error://"), timeout=_ERROR_PAGE_SETTLE_MS)


def _click_text(args: Mapping[str, Any]) -> str:
    parts = [f"button={quote(args['button'])}"] if args.get("button") not in (None, "left") else []
    if args.get("modifiers"):
        parts.append(f"modifiers={[str(m) for m in args['modifiers']]!r}")
    return ", ".join(parts)


def _click(el: Locator | ElementHandle, args: Mapping[str, Any], ms: float) -> None:
    """A click, double click, right/middle click, with modifiers: all on the judged element."""
    button = cast(Literal["left", "middle", "right"], args.get("button") or "left")
    modifiers = cast(list[_Modifier], list(args.get("modifiers") or []))
    if args.get("double"):
        el.dblclick(button=button, modifiers=modifiers, timeout=ms)
    else:
        el.click(button=button, modifiers=modifiers, timeout=ms)


def _type_slowly(el: Locator | ElementHandle, value: str, ms: float) -> None:
    """Key by key into the judged element (the model refused control characters: no Enter, no Tab)."""
    if isinstance(el, Locator):
        el.press_sequentially(value, timeout=ms)
    else:
        el.type(value, timeout=ms)


def _wait_for(page: Page, args: Mapping[str, Any], ms: float) -> None:
    if args.get("text") is not None:
        page.get_by_text(str(args["text"])).first.wait_for(state="visible", timeout=ms)
    elif args.get("text_gone") is not None:
        page.get_by_text(str(args["text_gone"])).first.wait_for(state="hidden", timeout=ms)
    elif args.get("selector") is not None:
        page.locator(str(args["selector"])).first.wait_for(state="visible", timeout=ms)
    elif args.get("url") is not None:
        page.wait_for_url(str(args["url"]), timeout=ms)
    elif args.get("load_state") is not None:
        state = cast(Literal["domcontentloaded", "load", "networkidle"], args["load_state"])
        page.wait_for_load_state(state, timeout=ms)
    elif args.get("seconds") is not None:
        page.wait_for_timeout(float(args["seconds"]) * 1000.0)


def _extract(page: Page, args: Mapping[str, Any], ms: float) -> tuple[str | None, str]:
    """The attribute, the form field's value or the element's text, and the call that read it."""
    loc = locate_target(page, args)
    target = target_call_text(args)
    attribute = args.get("attribute")
    if attribute is not None:
        value = loc.get_attribute(str(attribute), timeout=ms)
        if value is None:
            raise ActionFailed(f"the element has no attribute {attribute!r}")
        return value, f"{target}.get_attribute({quote(attribute)})"
    # The tag of what is there now, in one round trip (a locator's evaluate waits: three); only
    # when nothing matches yet does the read wait for the element as before.
    tags = loc.evaluate_all("els => els.map(e => e.tagName.toLowerCase())")
    tag = str(tags[0]) if isinstance(tags, list) and len(tags) == 1 else None
    if tag is None:  # none yet (or several: the strict read below fails as it always did)
        tag = str(loc.evaluate("e => e.tagName.toLowerCase()", timeout=ms))
    if tag in _FORM_FIELDS:
        return loc.input_value(timeout=ms), f"{target}.input_value()"
    return loc.inner_text(timeout=ms), f"{target}.inner_text()"


def _assert_text_message(args: Mapping[str, Any], timeout_s: float, exc: AssertionError) -> str:
    first = short_message(exc)
    if "not found" in first.lower() and "element" in first.lower():
        return f"assert_text: the scope element was not found within {timeout_s:g}s"
    return f"assert_text: text {quote(args.get('text'))} not found within {timeout_s:g}s"
