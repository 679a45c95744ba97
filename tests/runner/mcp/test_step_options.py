"""The step options the agent tools need, in the mission format too: click variants, slow typing,
several values, text_gone, history back — parsed strictly, and every chosen value seen by the
input guards (secrets, PII) one by one."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from guards.pii_guards import typed_values
from guards.secrets import input_values
from missions.model import Step
from runner.browser.actions import describe_action


@pytest.mark.parametrize(("data", "call"), [
    ({"click": {"selector": "#b", "double": True}}, 'page.locator("#b").dblclick()'),
    ({"click": {"selector": "#b", "button": "right"}}, 'page.locator("#b").click(button="right")'),
    ({"click": {"selector": "#b", "modifiers": ["Shift"]}}, "page.locator(\"#b\").click(modifiers=['Shift'])"),
    ({"fill": {"selector": "#k", "value": "abc", "slowly": True}}, 'page.locator("#k").press_sequentially("abc")'),
    ({"select": {"selector": "#c", "values": ["r", "Blue"]}}, "page.locator(\"#c\").select_option(['r', 'Blue'])"),
    ({"wait_for": {"text_gone": "Loading"}}, 'page.get_by_text("Loading").first.wait_for(state="hidden")'),
    ({"goto": {"url": "http://a.localhost/", "back": True}}, 'page.go_back(wait_until="load")  # to "http://a.localhost/"'),
])
def test_step_options_parse_and_say_their_call(data: dict[str, Any], call: str) -> None:
    step = Step.model_validate(data)
    assert describe_action(step.kind, step.args.model_dump(exclude_none=True)) == call


@pytest.mark.parametrize(("data", "message"), [
    ({"click": {"selector": "#b", "button": "back"}}, "button"),
    ({"click": {"selector": "#b", "modifiers": ["Hyper"]}}, "modifiers"),
    ({"fill": {"selector": "#k", "value": "a\nb", "slowly": True}}, "control characters"),
    ({"fill": {"selector": "#k", "value": "a\tb", "slowly": True}}, "control characters"),
    ({"select": {"selector": "#c", "values": []}}, "values"),
    ({"select": {"selector": "#c", "value": "r", "values": ["g"]}}, "'value' or 'label'.*'values': several"),
    ({"wait_for": {"text": "a", "text_gone": "b"}}, "exactly one of"),
])
def test_bad_step_options_are_named(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Step.model_validate(data)


def test_a_plain_click_and_fill_are_unchanged() -> None:
    """No new key in the dumped arguments of an old step: its records and approval digests stay as they were."""
    new = {"double", "button", "modifiers", "slowly", "values", "text_gone", "back"}
    for data in ({"click": {"selector": "#b"}}, {"fill": {"selector": "#k", "value": "a\nb"}},  # fill: whole value
                 {"select": {"selector": "#c", "label": "Red"}}, {"wait_for": {"text": "x"}}, {"goto": "http://a/"}):
        assert not new & set(Step.model_validate(data).args.model_dump(exclude_none=True)), data


def test_each_of_several_values_is_seen_by_the_input_guards() -> None:
    args = Step.model_validate({"select": {"selector": "#c", "values": ["r", "hunter2-secret"]}}).args.model_dump(
        exclude_none=True)
    assert input_values("select", args) == [("values", "r"), ("values", "hunter2-secret")]
    assert typed_values("select", args) == [("values", "r"), ("values", "hunter2-secret")]
