"""How the approval gate describes a target: what to outline, what to show, what changed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from guards.observed import ElementInfo
from missions.model import TARGET_FIELDS


def outline(kind: str, el: ElementInfo | None) -> list[str]:
    if el is None or not el.found:
        return []
    out = [el.selector_hint]
    if kind == "press" and el.text_entry and el.form_submit is not None:
        out.append(el.form_submit.selector_hint)
    return [s for s in out if s]


def target_dict(args: Mapping[str, Any], el: ElementInfo | None) -> dict[str, Any]:
    """What the approver is shown and the request records: the resolved element, and how the step named it."""
    out: dict[str, Any] = {}
    if el is not None and el.found:
        out.update({
            "tag": el.tag, "role": el.role, "name": el.accessible_name, "text": el.text,
            "selector": el.selector_hint,
        })
        if el.form_action:
            out["form_action"] = el.form_action
        if el.form_submit is not None and el.text_entry:
            out["submits_via"] = f"{el.form_submit.tag} {el.form_submit.accessible_name or el.form_submit.text!r}"
    elif el is not None:
        out["unresolved"] = el.error or "the target cannot be identified"
    step_target = {k: args[k] for k in (*TARGET_FIELDS, "name", "key") if args.get(k) is not None}
    if step_target:
        out["step_target"] = {k: str(v) for k, v in step_target.items()}
    return {k: v for k, v in out.items() if v not in ("", None)}


def what_changed(before: ElementInfo | None, after: ElementInfo | None, page_url: str) -> str:
    b = before if before is not None and before.found else None
    a = after if after is not None and after.found else None
    if b is not None and a is not None:
        for label, x, y in (
            ("text", b.text, a.text),
            ("accessible name", b.accessible_name, a.accessible_name),
            ("element", f"{b.tag}/{b.role}", f"{a.tag}/{a.role}"),
            ("position in the page", b.selector_hint, a.selector_hint),
            ("form action", b.form_action, a.form_action),
        ):
            if x != y:
                return f"the target's {label} changed ({x[:60]!r} → {y[:60]!r})"
    return f"the page or the target changed (page now {page_url[:200]})"
