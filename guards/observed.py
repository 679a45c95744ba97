"""What a guard reasons about, as the browser driver observed it: a request, a target element, page text.

Guards own these types (they are the policy's vocabulary); the driver in ``runner/browser/`` fills
them in. Nothing here knows about Playwright.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from guards.urlmatch import RequestKind

__all__ = ["ElementInfo", "RequestContext", "RequestInfo", "RequestKind", "TextBlock"]


@dataclass(frozen=True)
class RequestInfo:
    """An outgoing request as the browser reports it, for the request gate."""

    url: str
    method: str
    kind: RequestKind
    resource_type: str
    is_navigation: bool
    frame_url: str | None  # the page/frame that initiated it
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass(frozen=True)
class ElementInfo:
    """The element an action will really hit, resolved just before acting (for danger zones, approvals)."""

    found: bool
    tag: str = ""
    role: str = ""
    accessible_name: str = ""
    text: str = ""  # visible text, trimmed
    selector_hint: str = ""  # a CSS path usable to find it again
    input_type: str = ""
    form_submit: ElementInfo | None = None  # for Enter in a field / a form submit: the button that submits
    attributes: Mapping[str, str] = field(default_factory=dict)
    box: tuple[float, float, float, float] | None = None  # x, y, width, height in the viewport
    form_action: str = ""  # the URL the form it submits (or belongs to) posts to
    activator: ElementInfo | None = None  # the interactive ancestor a click lands on (a span in a button)
    text_entry: bool = False  # a field one types into (Enter there submits its form)
    matched_selectors: tuple[str, ...] = ()  # the requested selectors it (or an ancestor) matches
    invalid_selectors: tuple[str, ...] = ()  # requested selectors the page could not parse (counted as matched)
    error: str = ""  # found=False: why it could not be described
    # Names and texts another reading of the same element gave (the page's own world, when it
    # disagrees with Warden's isolated one): text zones match these too, never fewer matches.
    other_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class TextBlock:
    """A piece of what the page shows, for the PII page scan: a block element's visible text, or a form
    field's current value (``kind="input"``), or an element's accessible attributes (title, alt, aria-label,
    placeholder). ``selector`` finds the element again, e.g. to mask it: CSS (piercing open shadow roots),
    prefixed for an element inside a same-origin frame by the frames' CSS selectors, each followed by
    " |> " (``runner.browser.page_scripts.FRAME_SEP``): ``#pay |> #card``."""

    text: str
    selector: str
    kind: Literal["text", "input"] = "text"
    password: bool = False


@dataclass(frozen=True)
class RequestContext:
    """Where a request left from: the mission step running (None: between steps) and the page."""

    step: int | None
    page_url: str | None
