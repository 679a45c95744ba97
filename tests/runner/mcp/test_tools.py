"""The tool table: Playwright MCP's names and arguments, grants from allowed_actions, strict arguments."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runner.agent_session import tools as t
from runner.agent_session.masking import mask, masked_line

READ_ONLY = ["browser_snapshot", "browser_tabs", "browser_close"]


@pytest.mark.parametrize(("actions", "extra"), [
    ([], []),
    (["goto"], ["browser_navigate", "browser_navigate_back"]),
    (["click", "fill"], ["browser_click", "browser_type", "browser_fill_form"]),
    (["select", "press", "hover"], ["browser_select_option", "browser_press_key", "browser_hover"]),
    (["wait_for", "screenshot"], ["browser_wait_for", "browser_take_screenshot"]),
    (["extract", "assert_text", "check"], []),  # no tool of their own
])
def test_listed_tools_follow_the_grants(actions: list[str], extra: list[str]) -> None:
    assert sorted(s.name for s in t.granted(actions)) == sorted(READ_ONLY + extra)


def test_no_evaluate_and_no_approve_tool_ever() -> None:
    every = t.granted(["goto", "click", "fill", "select", "press", "check", "uncheck", "hover", "wait_for",
                       "screenshot", "extract", "assert_text"])
    names = " ".join(s.name for s in every)
    assert "evaluate" not in names and "run_code" not in names and "approv" not in names and "confirm" not in names


@pytest.mark.parametrize(("tool", "args", "message"), [
    ("browser_navigate", {}, "url: Field required"),
    ("browser_navigate", {"url": 5}, "url: Input should be a valid string"),
    ("browser_navigate", {"url": "https://a", "extra": 1}, "extra: Extra inputs are not permitted"),
    ("browser_click", {"ref": "e1", "doubleClick": "true"}, "doubleClick: Input should be a valid boolean"),
    ("browser_click", {"ref": "button"}, "a ref looks like"),
    ("browser_click", {"ref": "e1", "target": "e2"}, "name different elements"),
    ("browser_click", {}, "give the element's ref"),
    ("browser_type", {"ref": "e1", "text": ["a"]}, "text: Input should be a valid string"),
    ("browser_fill_form", {"fields": []}, "fields: List should have at least 1 item"),
    ("browser_fill_form", {"fields": [{"name": "a", "type": "password", "ref": "e1", "value": "x"}]},
     "fields.0.type"),
    ("browser_select_option", {"ref": "e1", "values": "red"}, "values: Input should be a valid list"),
    ("browser_wait_for", {}, "give one of 'text', 'textGone' or 'time'"),
    ("browser_wait_for", {"time": -1}, "time: Input should be greater than or equal to 0"),
])
def test_bad_arguments_are_named(tool: str, args: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="invalid arguments") as exc:
        t.parse_args(t.BY_NAME[tool], args)
    assert message in str(exc.value) and str(exc.value).startswith(f"{tool}: ")


@pytest.mark.parametrize(("args", "ref"), [({"ref": "e5"}, "e5"), ({"target": "f2e11"}, "f2e11"),
                                          ({"ref": "e5", "target": "e5"}, "e5")])
def test_ref_or_target(args: dict[str, Any], ref: str) -> None:
    parsed = t.parse_args(t.BY_NAME["browser_hover"], args)
    assert isinstance(parsed, t.Element) and parsed.the_ref == ref


def test_kinds_a_call_needs() -> None:
    typed = t.parse_args(t.BY_NAME["browser_type"], {"ref": "e1", "text": "x", "submit": True})
    assert t.BY_NAME["browser_type"].kinds(typed) == ("fill", "press")  # submit presses Enter: needs press
    form = t.parse_args(t.BY_NAME["browser_fill_form"], {"fields": [
        {"name": "a", "type": "textbox", "ref": "e1", "value": "x"},
        {"name": "b", "type": "checkbox", "ref": "e2", "value": "false"},
        {"name": "c", "type": "combobox", "ref": "e3", "value": "Red"},
    ]})
    assert t.BY_NAME["browser_fill_form"].kinds(form) == ("check", "fill", "select", "uncheck")


def test_listed_schemas_are_json_schema_objects() -> None:
    for spec in t.TOOLS:
        schema = t.input_schema(spec)
        assert schema["type"] == "object" and schema.get("additionalProperties") is False


@given(st.dictionaries(st.sampled_from(["url", "ref", "target", "text", "fields", "key", "time", "values", "x"]),
                       st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8),
                                 st.lists(st.text(max_size=3), max_size=2))))
def test_parsing_never_fails_other_than_with_a_value_error(args: dict[str, Any]) -> None:
    for spec in t.TOOLS:
        message = ""
        try:
            t.parse_args(spec, args)
        except ValueError as exc:
            message = str(exc)
        assert message == "" or message.startswith(f"{spec.name}: invalid arguments: ")


def test_mask_counts_what_it_masked_not_what_the_page_already_said() -> None:
    def redact(s: str) -> str:
        return s.replace("bob@example.com", "«pii:EMAIL_ADDRESS»").replace("hunter2", "«secret:PW»")

    masked, counts = mask("mail bob@example.com pw hunter2, literal «pii:EMAIL_ADDRESS»", redact)
    assert "bob@" not in masked and "hunter2" not in masked
    assert counts == {"EMAIL_ADDRESS": 1, "secret:PW": 1}
    assert masked_line(counts) == "Masked: EMAIL_ADDRESS ×1, secret:PW ×1"
    assert masked_line({}) == "Masked: none"
