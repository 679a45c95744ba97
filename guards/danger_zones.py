"""Danger zones (SPEC §2, §4): which actions pause for a recorded human decision.

Pure matching, no browser: the step loop resolves the element the action will really hit
(``ElementInfo``, from the driver, just before acting) and puts it on the ``ActionRequest``; this
guard matches it against the mission's zones and the built-in defaults and returns
``require_approval`` (with the zone, its reason and a rule id) or ``allow``. It never denies: the
approval gate asks, and a missing answer is the deny.

What is matched, per action kind (see docs/danger-zones.md):

* ``click`` — the element, and the interactive ancestor the click lands on (a ``<span>`` inside a
  ``<button>``): text zones against accessible name and visible text, selector zones against the
  element or any ancestor (``Element.closest``, computed in the page by the driver).
* ``press`` — selector zones against the target (or the focused element); text zones when the key
  activates it (``activating_key``: every spelling of Enter or Space, with any modifiers, on a
  button, link, checkbox, ...); Enter in a form field (implicit submission): the form's submit
  button (the form itself when it has none), i.e. the form submit it causes.
* ``check`` / ``uncheck`` / ``select`` / ``hover`` — the mission's own text and selector zones (not
  the built-in defaults: "I confirm" checkboxes are everywhere, and a toggle is reversible).
* ``fill`` — field zones: the field matches ``field`` and the value is a number above ``above``.
* ``url`` zones — any side-effecting action (click, press, fill, select, check, uncheck) on a page
  whose canonical (normalized) URL matches the glob, and a click or press that submits a form to a
  URL the glob matches. The network backstop for all of this is ``guards/state_change.py``.
* ``approve: true`` — that step, whatever its kind.

Fail closed: a kind that needs its target evaluated but whose target is unknown (not resolved,
or resolved to something the driver cannot describe, e.g. focus inside an iframe) requires
approval; so does a fill of a danger field with a value that is not a number.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from guards.base import ActionRequest, Decision, GuardContext
from guards.observed import ElementInfo
from guards.state_change import canonical_page_url as canonical_page_url  # re-exported: digest, tests
from guards.state_change import url_matches as url_matches
from missions.model import SIDE_EFFECT_KINDS, DangerZone, Mission  # SIDE_EFFECT_KINDS: what a url zone gates
from missions.patterns import compile_text, normalise

GUARD = "danger_zones"

# Kinds whose target is matched against text and selector zones (all zones / the mission's own).
ACTIVATION_KINDS = frozenset({"click", "press"})
TOGGLE_KINDS = frozenset({"check", "uncheck", "select", "hover"})
# Keys that activate the focused element (or submit its form), as ``activating_key`` names them.
ACTIVATING_KEYS = frozenset({"enter", "space"})
ENTER_KEYS = frozenset({"enter"})
# Every spelling Playwright accepts for them (key names and codes; "\n"/"\r" are Enter, " " Space).
_KEY_SPELLINGS = {"enter": "enter", "numpadenter": "enter", "\n": "enter", "\r": "enter", "\r\n": "enter",
                  "return": "enter", "space": "space", " ": "space", "spacebar": "space"}


def activating_key(key: str) -> str | None:
    """``"enter"``/``"space"`` when ``key`` (with any modifiers: ``Shift+Enter``) activates, else None.

    Judged on the key the spelling produces, never on its whitespace: ``" "`` is Space, ``"\n"`` Enter.
    """
    if key in _KEY_SPELLINGS:
        return _KEY_SPELLINGS[key]
    last = key if key == "+" else (key.rsplit("+", 1)[-1] or "+")
    if key.endswith("++"):
        last = "+"
    return _KEY_SPELLINGS.get(last) or _KEY_SPELLINGS.get(last.strip().casefold())

# The built-in zones: (word, regex). Case-insensitive, on word boundaries, against the accessible
# name and the visible text of the element an activation hits. Documented in docs/danger-zones.md.
DEFAULT_ZONES: tuple[tuple[str, str], ...] = (
    ("delete", r"\bdelet(?:e|es|ed|ing|ion)\b"),
    ("remove", r"\bremov(?:e|es|ed|ing|al)\b"),
    ("destroy", r"\b(?:destroy|erase|wipe|purge)\b"),
    ("pay", r"\bpay(?:s|ing|ment|ments)?\b"),
    ("purchase", r"\bpurchas(?:e|es|ed|ing)\b"),
    ("buy", r"\bbuy(?:s|ing)?\b"),
    ("order", r"\b(?:submit|place|confirm|complete)\s+(?:(?:my|your|the|this)\s+)?order\b"),
    ("checkout", r"\bcheck\s?-?out\b"),
    ("transfer", r"\btransfer(?:s|red|ring)?\b"),
    ("send", r"\bsend(?:s|ing)?\b"),
    ("withdraw", r"\bwithdraw(?:s|al|n)?\b"),
    ("confirm", r"\bconfirm(?:s|ed|ation)?\b"),
    ("close-account", r"\b(?:close|cancel|terminate|deactivate)\s+(?:(?:my|your|the|this)\s+)?"
                      r"(?:account|subscription|membership|contract)\b"),
    ("publish", r"\bpublish(?:es|ed|ing)?\b"),
)
DEFAULT_REASON = "built-in danger zone '{word}': the action may be irreversible"

def parse_number(value: str) -> float | None:
    """The largest plausible number a field value means, or None when it is not a number.

    Accepts grouping and decimal marks in either convention (``1,200.00``, ``1.200,00``,
    ``1 200``, ``1'200``), a currency sign or code around it, a sign, an exponent. When a single
    separator is ambiguous (``1,200`` is 1200 or 1.2) the larger reading is taken: a threshold is
    a safety limit, so the doubt goes to asking.
    """
    text = normalise(value.replace("\u00a0", " ").replace("\u202f", " ").replace("\u2009", " "))
    text = re.sub(r"^[A-Za-z]{1,3}\.?\s*|\s*[A-Za-z]{1,3}\.?$", "", text)  # a currency code: USD 1200, 1200 EUR
    text = re.sub(r"[\u0024\u00a2-\u00a5\u20a0-\u20cf]", "", text).strip()
    if not text:
        return None
    sign = -1.0 if text.startswith("-") or text.startswith("\u2212") else 1.0
    text = text.lstrip("+-\u2212").strip()
    try:
        if re.fullmatch(r"\d+(?:\.\d+)?[eE][-+]?\d+", text):
            return _finite(sign * float(text))
    except ValueError:
        return None
    text = re.sub(r"[ ']", "", text)
    if not re.fullmatch(r"[\d.,]*\d[\d.,]*", text):
        return None
    readings: list[float] = []
    dots, commas = text.count("."), text.count(",")
    if dots and commas:
        decimal = "." if text.rfind(".") > text.rfind(",") else ","
        group = "," if decimal == "." else "."
        if text.count(decimal) > 1:
            return None
        readings.append(float(text.replace(group, "").replace(decimal, ".")))
    elif dots or commas:
        sep = "." if dots else ","
        parts = text.split(sep)
        if len(parts) > 2:  # only grouping: 1.200.000
            if all(len(p) == 3 for p in parts[1:]):
                readings.append(float("".join(parts)))
            else:
                return None
        else:
            whole, frac = parts
            if frac:
                readings.append(float(f"{whole or 0}.{frac}"))  # a decimal mark
            if len(frac) == 3 and whole:
                readings.append(float(whole + frac))  # or a thousands mark
            if not readings:
                readings.append(float(whole))
    else:
        readings.append(float(text))
    return _finite(sign * (max(readings) if sign > 0 else min(readings)))


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


@dataclass(frozen=True)
class ZoneMatch:
    zone: str
    rule: str
    reason: str
    matched: str  # what matched, for the rationale


@dataclass(frozen=True)
class _TextZone:
    zone: DangerZone | None
    word: str
    pattern: re.Pattern[str] | str

    @property
    def default(self) -> bool:
        return self.zone is None

    def hit(self, texts: Iterable[str]) -> str | None:
        for text in texts:
            if not text:
                continue
            if isinstance(self.pattern, str):
                if normalise(text).casefold() == self.pattern:
                    return text
            elif self.pattern.search(text):
                return text
        return None

    def match(self, how: str) -> ZoneMatch:
        if self.zone is None:
            return ZoneMatch(
                f"default:{self.word}", f"danger_zone.default.{self.word}", DEFAULT_REASON.format(word=self.word), how
            )
        return ZoneMatch(self.zone.name, f"danger_zone.{self.zone.name}", self.zone.reason or "danger zone", how)


class DangerZones:
    """A mission's zones, compiled once; ``evaluate`` is pure."""

    def __init__(self, zones: Sequence[DangerZone], defaults: bool = True) -> None:
        self.zones = tuple(zones)
        self.defaults = defaults
        texts: list[_TextZone] = []
        for z in self.zones:
            if z.text is not None:
                texts.append(_TextZone(z, z.name, compile_text(z.text)))
        self.mission_texts = tuple(texts)
        self.default_texts = (
            tuple(_TextZone(None, w, re.compile(rx, re.IGNORECASE)) for w, rx in DEFAULT_ZONES) if defaults else ()
        )
        self.selector_zones = tuple(z for z in self.zones if z.selector is not None)
        self.url_zones = tuple(z for z in self.zones if z.url is not None)
        self.field_zones = tuple(z for z in self.zones if z.field is not None)

    @classmethod
    def from_mission(cls, mission: Mission) -> DangerZones:
        return cls(mission.danger_zones, mission.danger_zones_defaults)

    # -- what the driver must compute ------------------------------------------------------------
    def selectors(self) -> tuple[str, ...]:
        """Selectors the driver tests the resolved element against (zone selectors and danger fields)."""
        out = [z.selector for z in self.selector_zones if z.selector] + [z.field for z in self.field_zones if z.field]
        return tuple(dict.fromkeys(out))

    def needs_element(self, kind: str, approve: bool = False, has_target: bool = True) -> bool:
        """Must the target be resolved before this action is decided?"""
        if approve and has_target:
            return True  # the approval binds to the target
        if kind in ACTIVATION_KINDS:
            return bool(self.mission_texts or self.default_texts or self.selector_zones or self.url_zones)
        if kind in TOGGLE_KINDS:  # the defaults: to know whether its form's submit is gated (the backstop)
            return bool(self.mission_texts or self.selector_zones or (self.default_texts and kind != "hover"))
        if kind == "fill":
            return bool(self.field_zones)
        return False

    # -- matching --------------------------------------------------------------------------------
    def evaluate(
        self,
        kind: str,
        args: Mapping[str, Any],
        page_url: str | None,
        element: ElementInfo | None,
        *,
        approve: bool = False,
    ) -> tuple[list[ZoneMatch], str | None]:
        """(matches, unresolved): the zones this action is in, and why its target is unknown (or None)."""
        matches: list[ZoneMatch] = []
        if approve:
            matches.append(ZoneMatch("step", "step.approve", "this step is marked approve: true", "approve: true"))
        if kind in SIDE_EFFECT_KINDS and page_url:
            for z in self.url_zones:
                if z.url is not None and url_matches(z.url, page_url):
                    how = f"page {canonical_page_url(page_url)}"
                    matches.append(ZoneMatch(z.name, f"danger_zone.{z.name}", z.reason or "danger zone", how))
        if kind in ACTIVATION_KINDS and element is not None and element.found:
            posts_to = submitted_form_action(kind, args, element)
            for z in self.url_zones if posts_to else ():
                if z.url is not None and url_matches(z.url, posts_to):
                    how = f"submits a form to {canonical_page_url(posts_to)}"
                    matches.append(ZoneMatch(z.name, f"danger_zone.{z.name}", z.reason or "danger zone", how))
        unresolved: str | None = None
        if self.needs_element(kind):
            if element is None:
                unresolved = "the target was not resolved before acting"
            elif not element.found:
                unresolved = f"the target cannot be identified ({element.error or 'unknown element'})"
            else:
                matches.extend(self._element_matches(kind, args, element))
        return matches, unresolved

    def gated_form_action(self, el: ElementInfo | None) -> str:
        """The form action of ``el``'s form when submitting that form is in a zone (``""``: it is not).

        For the network backstop: a toggle or select whose page script submits a gated form.
        """
        sub = el.form_submit if el is not None and el.found else None
        if sub is None or not self._element_matches("click", {}, sub):
            return ""
        return sub.form_action or (el.form_action if el is not None else "")

    def _element_matches(self, kind: str, args: Mapping[str, Any], el: ElementInfo) -> list[ZoneMatch]:
        if kind == "fill":
            return self._field_matches(args, el)
        text_zones = self.mission_texts + (self.default_texts if kind in ACTIVATION_KINDS else ())
        selector_subjects: list[ElementInfo] = []
        text_subjects: list[ElementInfo] = []
        if kind in ("click", *TOGGLE_KINDS):
            selector_subjects.append(el)
            text_subjects.append(el)
            if el.activator is not None:
                selector_subjects.append(el.activator)
                text_subjects.append(el.activator)
        elif kind == "press":
            last = activating_key(str(args.get("key", "")))
            if el.tag not in ("body", "html", ""):
                selector_subjects.append(el)
                if last in ACTIVATING_KEYS and not el.text_entry:
                    text_subjects.append(el)
                    if el.activator is not None:
                        text_subjects.append(el.activator)
                        selector_subjects.append(el.activator)
            # Implicit submission: Enter in any field of a form (text, checkbox, radio, ...) submits it.
            if last in ENTER_KEYS and el.tag in ("input", "select") and el.form_submit is not None:
                selector_subjects.append(el.form_submit)
                text_subjects.append(el.form_submit)
        out: list[ZoneMatch] = []
        seen: set[str] = set()
        for subject in text_subjects:
            texts = (subject.accessible_name, subject.text, *subject.other_names)
            for tz in text_zones:
                hit = tz.hit(texts)
                if hit is not None and tz.word + str(tz.default) not in seen:
                    seen.add(tz.word + str(tz.default))
                    out.append(tz.match(f"{subject.tag or 'element'} {_quote(hit)}"))
        for subject in selector_subjects:
            for z in self.selector_zones:
                sel = z.selector or ""
                if sel in subject.matched_selectors and z.name not in seen:
                    seen.add(z.name)
                    how = f"selector {sel!r}"
                    if sel in subject.invalid_selectors:
                        how += " (not valid CSS in the page: treated as matching, fail closed)"
                    out.append(ZoneMatch(z.name, f"danger_zone.{z.name}", z.reason or "danger zone", how))
        return out

    def _field_matches(self, args: Mapping[str, Any], el: ElementInfo) -> list[ZoneMatch]:
        out: list[ZoneMatch] = []
        for z in self.field_zones:
            field_sel, above = z.field or "", z.above
            if above is None:
                continue
            if field_sel not in el.matched_selectors and args.get("selector") != field_sel:
                continue
            raw = str(args.get("value", ""))
            if not raw.strip():
                continue  # clearing the field is no amount
            number = parse_number(raw)
            if number is None:
                out.append(ZoneMatch(z.name, f"danger_zone.{z.name}", z.reason or "danger zone",
                                     f"field {field_sel!r}: the value is not a number (fail closed)"))
            elif number > above:
                out.append(ZoneMatch(z.name, f"danger_zone.{z.name}", z.reason or "danger zone",
                                     f"field {field_sel!r}: {number:g} is above {above:g}"))
        return out


def _submits(el: ElementInfo | None) -> bool:
    if el is None:
        return False
    if el.tag == "button":
        return str(el.attributes.get("type") or "submit").strip().lower() == "submit"
    return el.tag == "input" and el.input_type in ("submit", "image")


def submitted_form_action(kind: str, args: Mapping[str, Any], el: ElementInfo) -> str:
    """The form action this click or press submits to (``""``: it submits no form)."""
    key = activating_key(str(args.get("key", ""))) if kind == "press" else "click"
    if key is None:
        return ""
    for subject in (el, el.activator):
        if _submits(subject) and subject is not None and (kind == "click" or not el.text_entry):
            return subject.form_action
    if key == "enter" and el.tag in ("input", "select") and el.form_submit is not None:
        return el.form_submit.form_action or el.form_action
    return ""


def _quote(text: str, limit: int = 60) -> str:
    text = normalise(text)
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


class DangerZoneGuard:
    """The chain member: ``require_approval`` when the action is in a danger zone, else ``allow``."""

    name = GUARD

    def __init__(self, zones: DangerZones) -> None:
        self.zones = zones

    def check(self, action: ActionRequest, ctx: GuardContext) -> Decision:
        if ctx.phase == "preflight":
            return Decision.allow(self.name, "danger zones are evaluated just before each action", "danger_zone")
        approve = action.step.needs_approval
        matches, unresolved = self.zones.evaluate(
            action.kind, action.args, ctx.page_url, action.element, approve=approve
        )
        if matches:
            first = matches[0]
            why = "; ".join(f"{m.zone}: {m.reason} ({m.matched})" for m in matches)
            return Decision.require_approval(
                self.name, f"danger zone — {why}", first.rule,
                zone=first.zone, zones=[m.zone for m in matches], zone_reason=first.reason,
            )
        if unresolved is not None:
            return Decision.require_approval(
                self.name, f"{unresolved}: it cannot be checked against the danger zones (fail closed)",
                "danger_zone.unresolved", zone="unresolved-target", zone_reason=unresolved,
            )
        return Decision.allow(self.name, "not in a danger zone", "danger_zone")
