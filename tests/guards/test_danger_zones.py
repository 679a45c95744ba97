"""Danger-zone matching (pure, no browser): every zone kind blocks its target and allows others."""

from __future__ import annotations

from typing import Any

import pytest

from guards.base import ActionRequest, GuardContext
from guards.danger_zones import (
    DEFAULT_ZONES,
    DangerZoneGuard,
    DangerZones,
    activating_key,
    canonical_page_url,
    parse_number,
    submitted_form_action,
    url_matches,
)
from guards.observed import ElementInfo, RequestContext, RequestInfo
from guards.state_change import ApprovedScope, StateChangeGuard, ZoneView
from missions.model import Mission
from missions.patterns import compile_text

PAGE = "https://portal.example.com/basket"


def button(text: str, **kw: Any) -> ElementInfo:
    return ElementInfo(found=True, tag="button", role="button", accessible_name=text, text=text, **kw)


def field(name: str, **kw: Any) -> ElementInfo:
    return ElementInfo(found=True, tag="input", role="textbox", accessible_name=name, input_type="text",
                       text_entry=True, **kw)


def mission(
    zones: list[dict[str, Any]] | None = None, defaults: bool = True, steps: list[Any] | None = None
) -> Mission:
    return Mission.model_validate({
        "mission": "m", "version": 1,
        "boundaries": {"allowed_domains": ["portal.example.com"], "allowed_actions": ["click", "press", "fill"]},
        "danger_zones_defaults": defaults, "danger_zones": zones or [],
        "steps": steps or [{"click": {"selector": "#x"}}],
    })


def decide(m: Mission, kind: str, args: dict[str, Any], el: ElementInfo | None, page: str = PAGE,
           approve: bool = False) -> Any:
    step = m.steps[0].model_copy(update={"approve": approve})
    action = ActionRequest(step_no=1, kind=kind, step=step, args=args, element=el)
    return DangerZoneGuard(DangerZones.from_mission(m)).check(action, GuardContext(m, "run", page))


# ----------------------------------------------------------------------------- defaults

@pytest.mark.parametrize("text", ["Delete account", "Remove item", "Pay now", "Submit payment", "Purchase", "Buy",
                                  "Submit order", "Place your order", "Transfer funds", "Send", "Confirm",
                                  "Checkout", "Close my account", "WITHDRAW"])
def test_default_zones_gate_irreversible_words(text: str) -> None:
    d = decide(mission(), "click", {"selector": "#x"}, button(text))
    assert d.verdict == "require_approval"
    assert d.rule.startswith("danger_zone.default.")


@pytest.mark.parametrize("text", ["Next", "Save draft", "Payday calendar", "Resend code", "Display", "Order history",
                                  "Sender", "Unconfirmable", "Archive"])
def test_default_zones_respect_word_boundaries(text: str) -> None:
    d = decide(mission(), "click", {"selector": "#x"}, button(text))
    assert d.verdict == "allow", d.reason


def test_defaults_off_removes_them() -> None:
    assert decide(mission(defaults=False), "click", {"selector": "#x"}, button("Delete")).verdict == "allow"
    assert len(DEFAULT_ZONES) >= 10


def test_defaults_match_the_accessible_name_when_the_visible_text_is_harmless() -> None:
    el = ElementInfo(found=True, tag="button", role="button", accessible_name="Delete everything", text="Go")
    assert decide(mission(), "click", {"selector": "#x"}, el).rule == "danger_zone.default.delete"


def test_a_click_on_a_span_inside_a_danger_button_is_gated() -> None:
    el = ElementInfo(found=True, tag="span", text="Now", accessible_name="Now", activator=button("Pay now"))
    assert decide(mission(), "click", {"selector": "#x"}, el).rule == "danger_zone.default.pay"


def test_defaults_do_not_apply_to_checkboxes_but_mission_zones_do() -> None:
    box = ElementInfo(found=True, tag="input", role="checkbox", accessible_name="I confirm this is accurate")
    assert decide(mission(), "check", {"selector": "#x"}, box).verdict == "allow"
    m = mission([{"name": "consent", "text": "/confirm/i"}])
    assert decide(m, "check", {"selector": "#x"}, box).rule == "danger_zone.consent"


# ----------------------------------------------------------------------------- mission zones

def test_text_regex_and_exact() -> None:
    rx = mission([{"name": "pay", "text": "/submit payment|pay now/i", "reason": "money"}], defaults=False)
    assert decide(rx, "click", {}, button("SUBMIT PAYMENT")).rule == "danger_zone.pay"
    assert decide(rx, "click", {}, button("Submit")).verdict == "allow"
    exact = mission([{"name": "arch", "text": "Archive"}], defaults=False)
    assert decide(exact, "click", {}, button("  archive ")).rule == "danger_zone.arch"
    assert decide(exact, "click", {}, button("Archive all")).verdict == "allow"


def test_selector_zone_uses_what_the_driver_matched() -> None:
    m = mission([{"name": "del", "selector": "button.delete, [data-danger]"}], defaults=False)
    hit = button("Go", matched_selectors=("button.delete, [data-danger]",))
    assert decide(m, "click", {}, hit).rule == "danger_zone.del"
    assert decide(m, "click", {}, button("Go")).verdict == "allow"
    bad = button("Go", matched_selectors=("x",), invalid_selectors=("x",))
    m2 = mission([{"name": "odd", "selector": "x"}], defaults=False)
    assert "fail closed" in decide(m2, "click", {}, bad).reason


def test_url_zone_applies_to_side_effects_on_matching_pages() -> None:
    m = mission([{"name": "checkout", "url": "https://portal.example.com/checkout/*"}], defaults=False)
    on = "https://Portal.Example.com:443/checkout/step2?x=1#top"
    assert decide(m, "click", {}, button("Next"), page=on).rule == "danger_zone.checkout"
    assert decide(m, "fill", {"selector": "#a", "value": "x"}, field("a"), page=on).rule == "danger_zone.checkout"
    assert decide(m, "click", {}, button("Next"), page=PAGE).verdict == "allow"
    assert decide(m, "wait_for", {"text": "x"}, None, page=on).verdict == "allow"


@pytest.mark.parametrize(("value", "gated"), [("999.99", False), ("1000", False), ("1000.01", True),
                                                ("1,200.00", True), (" 1 200 ", True), ("1.200,50", True),
                                                ("$1,500", True), ("1500 EUR", True), ("-5000", False),
                                                ("", False), ("abc", True), ("1e4", True)])
def test_field_zone_threshold(value: str, gated: bool) -> None:
    m = mission([{"name": "big", "field": "#amount", "above": 1000}], defaults=False)
    el = field("Amount", matched_selectors=("#amount",))
    d = decide(m, "fill", {"selector": "#amount", "value": value}, el)
    assert (d.verdict == "require_approval") is gated, d.reason
    other = field("Note")
    assert decide(m, "fill", {"selector": "#note", "value": "5000"}, other).verdict == "allow"


def test_approve_true_gates_any_kind() -> None:
    d = decide(mission(defaults=False), "goto", {"url": PAGE}, None, approve=True)
    assert d.verdict == "require_approval" and d.rule == "step.approve"


# ----------------------------------------------------------------------------- press

def test_enter_in_a_field_is_judged_by_its_forms_submit_button() -> None:
    el = field("Quantity", form_submit=button("Submit order"))
    assert decide(mission(), "press", {"key": "Enter", "label": "Quantity"}, el).rule == "danger_zone.default.order"
    assert decide(mission(), "press", {"key": "Tab", "label": "Quantity"}, el).verdict == "allow"
    harmless = field("Quantity", form_submit=button("Search"))
    assert decide(mission(), "press", {"key": "Enter"}, harmless).verdict == "allow"


def test_enter_or_space_on_a_danger_button_is_gated_other_keys_are_not() -> None:
    for key in ("Enter", "Space", "Control+Enter"):
        assert decide(mission(), "press", {"key": key}, button("Delete")).verdict == "require_approval"
    assert decide(mission(), "press", {"key": "ArrowDown"}, button("Delete")).verdict == "allow"


def test_a_field_labelled_with_a_danger_word_is_not_gated_by_typing_keys() -> None:
    assert decide(mission(), "press", {"key": "Tab"}, field("Send to")).verdict == "allow"


# ----------------------------------------------------------------------------- fail closed

def test_unresolved_or_unidentifiable_targets_require_approval() -> None:
    for el in (None, ElementInfo(found=False, error="focus inside an iframe")):
        d = decide(mission(), "click", {"selector": "#x"}, el)
        assert d.verdict == "require_approval" and d.rule == "danger_zone.unresolved"
    # a kind with nothing to match needs no target
    assert decide(mission(), "hover", {"selector": "#x"}, None).verdict == "allow"


def test_preflight_allows() -> None:
    m = mission()
    action = ActionRequest(step_no=1, kind="click", step=m.steps[0], args={})
    assert DangerZoneGuard(DangerZones.from_mission(m)).check(action, GuardContext(m, "preflight")).verdict == "allow"


# ----------------------------------------------------------------------------- helpers

def test_parse_number() -> None:
    assert parse_number("1,200.00") == 1200.0
    assert parse_number("1200") == 1200.0
    assert parse_number(" 1 200 ") == 1200.0
    assert parse_number("1.234.567") == 1234567.0
    assert parse_number("12,5") == 12.5
    assert parse_number("1,200") == 1200.0  # ambiguous: the larger reading
    assert parse_number("1'200.5") == 1200.5
    assert parse_number("12abc34") is None and parse_number("1.2.3") is None


def test_compile_text_and_bad_patterns() -> None:
    assert compile_text("  Pay   now ") == "pay now"
    with pytest.raises(ValueError, match="invalid regex"):
        compile_text("/(/i")
    with pytest.raises(ValueError, match="unknown regex flag"):
        compile_text("/x/q")


def test_url_matching() -> None:
    assert canonical_page_url("HTTPS://A.example.com:443/x#f") == "https://a.example.com/x"
    assert url_matches("https://a.example.com/checkout/*", "https://a.example.com:8443/checkout/1")
    assert not url_matches("https://a.example.com:9000/checkout/*", "https://a.example.com:8443/checkout/1")
    assert not url_matches("https://a.example.com/checkout/*", "http://a.example.com/checkout/1")
    assert not url_matches("https://a.example.com/checkout/*", "https://evil.com/a.example.com/checkout/1")
    assert url_matches("*checkout*", "https://a.example.com/checkout")


# ----------------------------------------------------------------------------- judged by effect, not spelling

@pytest.mark.parametrize(("key", "means"), [
    (" ", "space"), ("Space", "space"), ("Shift+ ", "space"), ("\n", "enter"), ("\r", "enter"), ("Enter", "enter"),
    ("NumpadEnter", "enter"), ("Shift+Enter", "enter"), ("Control+Alt+NumpadEnter", "enter"), ("Meta+\n", "enter"),
    ("a", None), ("Tab", None), ("+", None), ("Shift++", None), ("ArrowDown", None),
])
def test_every_spelling_of_an_activating_key(key: str, means: str | None) -> None:
    assert activating_key(key) == means


@pytest.mark.parametrize("key", [" ", "\n", "\r", "Shift+Enter", "Control+NumpadEnter"])
def test_activating_spellings_are_gated_on_a_danger_button_and_in_its_form(key: str) -> None:
    assert decide(mission(), "press", {"key": key}, button("Submit order")).verdict == "require_approval"
    if activating_key(key) == "enter":
        qty = field("Quantity", form_submit=button("Submit order"))
        assert decide(mission(), "press", {"key": key}, qty).verdict == "require_approval"


def test_enter_on_a_checkbox_submits_its_form_implicitly() -> None:
    box = ElementInfo(found=True, tag="input", role="checkbox", input_type="checkbox", form_submit=button("Pay now"))
    assert decide(mission(), "press", {"key": "Enter"}, box).verdict == "require_approval"
    assert decide(mission(), "press", {"key": "a"}, box).verdict == "allow"


@pytest.mark.parametrize("kind", ["check", "select", "hover"])
def test_select_check_and_hover_are_judged_against_mission_zones(kind: str) -> None:
    m = mission([{"name": "form", "selector": "#f"}])
    el = ElementInfo(found=True, tag="select", matched_selectors=("#f",))
    assert decide(m, kind, {"selector": "#s"}, el).verdict == "require_approval"
    assert decide(m, kind, {"selector": "#s"}, ElementInfo(found=True, tag="select")).verdict == "allow"


ZONE = "https://portal.example.com/checkout/*"


@pytest.mark.parametrize("url", [
    "https://portal.example.com/checkout/pay", "https://PORTAL.example.com:443/%63heckout/pay",
    "https://portal.example.com//checkout//pay", "https://portal.example.com/x/../checkout/pay",
    "https://portal.example.com/x/%2e%2e/checkout/./pay", "https://portal.example.com./checkout/pay#f",
])
def test_url_zones_match_the_normalized_url(url: str) -> None:
    assert url_matches(ZONE, url)
    d = decide(mission([{"name": "pay", "url": ZONE}]), "click", {"selector": "#x"}, button("Go"), page=url)
    assert d.verdict == "require_approval" and d.rule == "danger_zone.pay"


def test_url_zone_paths_keep_their_case_and_escaped_slashes() -> None:
    assert not url_matches(ZONE, "https://portal.example.com/Checkout/pay")  # paths are case-sensitive
    assert canonical_page_url("https://a.example/%2fx%7e") == "https://a.example/%2Fx~"


def test_a_submit_into_a_url_zone_is_gated_from_any_page() -> None:
    go = button("Go", form_action="https://portal.example.com/checkout/confirm", attributes={"type": "submit"})
    d = decide(mission([{"name": "pay", "url": ZONE}]), "click", {"selector": "#go"}, go)
    assert d.verdict == "require_approval" and "submits a form" in d.reason
    assert submitted_form_action("press", {"key": "a"}, go) == ""
    plain = button("Go", form_action="https://portal.example.com/checkout/confirm", attributes={"type": "button"})
    assert decide(mission([{"name": "pay", "url": ZONE}]), "click", {"selector": "#go"}, plain).verdict == "allow"


def req(url: str, method: str = "POST", frame: str | None = PAGE) -> RequestInfo:
    return RequestInfo(url=url, method=method, kind="subresource", resource_type="fetch", is_navigation=False,
                       frame_url=frame)


def backstop(view: ZoneView = ZoneView()) -> StateChangeGuard:  # noqa: B008
    return StateChangeGuard([("pay", ZONE)], lambda: view)


@pytest.mark.parametrize(("url", "frame", "rule"), [
    ("https://portal.example.com/checkout/confirm", PAGE, "state_change.url_zone"),
    ("https://portal.example.com/%63heckout//confirm", PAGE, "state_change.url_zone"),
    ("https://portal.example.com/track", "https://portal.example.com/checkout/pay", "state_change.zone_page"),
    ("https://portal.example.com/order", PAGE, "state_change.gated_form"),
])
def test_the_backstop_refuses_unapproved_state_changes(url: str, frame: str, rule: str) -> None:
    view = ZoneView(gated=frozenset({"https://portal.example.com/order"}))
    d = backstop(view).check_request(req(url, frame=frame), RequestContext(3, frame))
    assert d.verdict == "deny" and d.rule == rule and d.details["host"] == "portal.example.com"
    for method in ("PUT", "DELETE", "PATCH"):
        assert backstop(view).check_request(req(url, method, frame), RequestContext(3, frame)).verdict == "deny"
    assert backstop(view).check_request(req(url, "GET", frame), RequestContext(3, frame)).verdict == "allow"


def test_an_approval_covers_its_own_step_only() -> None:
    url = "https://portal.example.com/order"
    view = ZoneView(gated=frozenset({url}), approved=(ApprovedScope(2, "ap-1", frozenset({url})),))
    assert backstop(view).check_request(req(url), RequestContext(2, PAGE)).verdict == "allow"
    assert backstop(view).check_request(req(url), RequestContext(3, PAGE)).verdict == "deny"
    assert backstop(view).check_request(req(url), RequestContext(None, PAGE)).verdict == "deny"


def test_the_backstop_fails_closed_and_allows_the_rest() -> None:
    def broken() -> ZoneView:
        raise RuntimeError("no view")

    g = StateChangeGuard([("pay", ZONE)], broken)
    assert g.check_request(req("https://portal.example.com/checkout/x"), RequestContext(1, PAGE)).verdict == "deny"
    assert g.check_request(req("https://portal.example.com/note"), RequestContext(1, PAGE)).verdict == "allow"
