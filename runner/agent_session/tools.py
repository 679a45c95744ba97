"""The agent's tools: Playwright MCP's names and argument names, each mapped to mission action kinds.

An agent set up for Playwright MCP works unchanged: ``browser_click {element, ref}`` and the
rest. ``ref`` is the element ref from ``browser_snapshot`` (``[ref=eN]``); ``target``, its name in
current Playwright MCP releases, is accepted too. A tool is listed (and callable) only when the
mission's ``boundaries.allowed_actions`` grant every kind it needs; the read-only tools (snapshot,
tabs, close) need none. There is no evaluate / run-code tool and no approve tool.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

_REF = re.compile(r"^(?:f[0-9]{1,9})?e[0-9]{1,9}$")


class ToolArgs(BaseModel):
    """Strict: a string is not a boolean, an unknown argument is an error (never silently dropped)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Element(ToolArgs):
    """An element by its snapshot ref; ``element`` is the model's description (recorded, not acted on)."""

    element: str | None = None
    ref: str | None = None
    target: str | None = None

    @model_validator(mode="after")
    def _one_ref(self) -> Element:
        refs = {r for r in (self.ref, self.target) if r is not None}
        if not refs:
            raise ValueError("give the element's ref (from browser_snapshot, e.g. \"e5\") as 'ref' or 'target'")
        if len(refs) > 1:
            raise ValueError("'ref' and 'target' name different elements: give one")
        if not _REF.match(refs.pop()):
            raise ValueError("a ref looks like \"e5\" (as browser_snapshot shows it: [ref=e5])")
        return self

    @property
    def the_ref(self) -> str:
        return str(self.ref if self.ref is not None else self.target)


class NoArgs(ToolArgs):
    pass


class Navigate(ToolArgs):
    url: Annotated[str, Field(min_length=1, max_length=8192)]


class Click(Element):
    doubleClick: bool = False  # Playwright MCP's argument name
    button: Literal["left", "right", "middle"] = "left"
    modifiers: list[Literal["Alt", "Control", "ControlOrMeta", "Meta", "Shift"]] = Field(default_factory=list)


class Type(Element):
    text: Annotated[str, Field(max_length=100_000)]
    submit: bool = False
    slowly: bool = False


class FormField(ToolArgs):
    name: str
    type: Literal["textbox", "checkbox", "radio", "combobox", "slider"]
    ref: str | None = None
    target: str | None = None
    value: str

    @model_validator(mode="after")
    def _ref(self) -> FormField:
        Element(ref=self.ref, target=self.target)  # the same rules as an element argument
        return self

    @property
    def the_ref(self) -> str:
        return str(self.ref if self.ref is not None else self.target)


class FillForm(ToolArgs):
    fields: Annotated[list[FormField], Field(min_length=1, max_length=200)]


class SelectOption(Element):
    values: Annotated[list[str], Field(min_length=1)]


class PressKey(ToolArgs):
    key: Annotated[str, Field(min_length=1, max_length=64)]


class WaitFor(ToolArgs):
    text: str | None = None
    textGone: str | None = None  # Playwright MCP's argument name
    time: Annotated[float, Field(ge=0, le=3600, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _something(self) -> WaitFor:
        if self.text is None and self.textGone is None and self.time is None:
            raise ValueError("give one of 'text', 'textGone' or 'time'")
        return self


class TakeScreenshot(ToolArgs):
    type: Literal["png"] = "png"
    filename: str | None = None
    element: str | None = None
    ref: str | None = None
    target: str | None = None
    fullPage: bool = False  # Playwright MCP's argument name


class Tabs(ToolArgs):
    action: Literal["list", "new", "close", "select"] = "list"
    index: Annotated[int, Field(ge=0, le=1000)] | None = None  # select: required; close: default the current tab

    @model_validator(mode="after")
    def _index(self) -> Tabs:
        if self.action == "select" and self.index is None:
            raise ValueError("select needs the tab's 'index' (as browser_tabs list shows it)")
        return self


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    args: type[ToolArgs]
    kinds: Callable[[Any], tuple[str, ...]]  # the action kinds a call with these arguments needs
    listed_kinds: tuple[str, ...]  # what must be granted for the tool to be listed at all
    read_only: bool = False


def _fixed(*kinds: str) -> Callable[[Any], tuple[str, ...]]:
    return lambda _args: kinds


def _type_kinds(args: Any) -> tuple[str, ...]:
    return ("fill", "press") if isinstance(args, Type) and args.submit else ("fill",)


_FORM_KINDS = {"textbox": "fill", "slider": "fill", "checkbox": "check", "radio": "check", "combobox": "select"}


def _form_kinds(args: Any) -> tuple[str, ...]:
    assert isinstance(args, FillForm)
    kinds = {_FORM_KINDS[f.type] for f in args.fields}
    if any(f.type == "checkbox" and f.value.strip().lower() == "false" for f in args.fields):
        kinds.add("uncheck")
    return tuple(sorted(kinds))


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec("browser_navigate", "Navigate to a URL (inside the mission's allowed domains)", Navigate,
             _fixed("goto"), ("goto",)),
    ToolSpec("browser_navigate_back", "Go back to the previous page", NoArgs, _fixed("goto"), ("goto",)),
    ToolSpec("browser_snapshot", "Accessibility snapshot of the current page with element refs; PII masked",
             NoArgs, _fixed(), (), read_only=True),
    ToolSpec("browser_click", "Click an element by its ref from the snapshot", Click, _fixed("click"), ("click",)),
    ToolSpec("browser_type", "Type text into an editable element by its ref", Type, _type_kinds, ("fill",)),
    ToolSpec("browser_fill_form", "Fill several form fields by their refs", FillForm, _form_kinds, ("fill",)),
    ToolSpec("browser_select_option", "Select an option in a dropdown by its ref", SelectOption,
             _fixed("select"), ("select",)),
    ToolSpec("browser_press_key", "Press a key on the focused element (e.g. Enter, ArrowDown)", PressKey,
             _fixed("press"), ("press",)),
    ToolSpec("browser_hover", "Hover over an element by its ref", Element, _fixed("hover"), ("hover",)),
    ToolSpec("browser_wait_for", "Wait for text to appear or a number of seconds", WaitFor,
             _fixed("wait_for"), ("wait_for",)),
    ToolSpec("browser_take_screenshot", "Screenshot of the page, PII regions masked", TakeScreenshot,
             _fixed("screenshot"), ("screenshot",)),
    ToolSpec("browser_tabs", "List, select, open (blank) or close tabs; every tab is behind the same guards", Tabs,
             _fixed(), ()),
    ToolSpec("browser_close", "Close the browser and end the session's run", NoArgs, _fixed(), ()),
)
BY_NAME: Mapping[str, ToolSpec] = {t.name: t for t in TOOLS}


def granted(allowed_actions: Iterable[str]) -> list[ToolSpec]:
    """The tools the mission's allowed actions grant, in listing order."""
    allowed = set(allowed_actions)
    return [t for t in TOOLS if set(t.listed_kinds) <= allowed]


def input_schema(spec: ToolSpec) -> dict[str, Any]:
    """The JSON Schema of a tool's arguments, as listed to the client."""
    schema = spec.args.model_json_schema()
    schema.pop("title", None)
    return schema


def parse_args(spec: ToolSpec, arguments: Mapping[str, Any] | None) -> ToolArgs:
    """Validated arguments, or ``ValueError`` naming every bad argument."""
    try:
        return spec.args.model_validate(dict(arguments or {}))
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e["loc"]) or "arguments"
            problems.append(f"{where}: {e['msg']}")
        raise ValueError(f"{spec.name}: invalid arguments: " + "; ".join(problems)) from None


__all__ = ["BY_NAME", "TOOLS", "ToolArgs", "ToolSpec", "granted", "input_schema", "parse_args"]
