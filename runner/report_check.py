"""``warden check``: the mission's shape and risk, as a reviewer wants to read them before approving it."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from guards.risk import Factor, RiskAssessment, RiskDecision, assess
from missions.loader import LoadedMission
from missions.model import Mission
from runner.step_targets import target_summary

_DECISION_STYLE: dict[str, str] = {"allow": "green", "allow with approvals": "yellow", "deny": "bold red"}


def print_shape(loaded: LoadedMission, console: Console) -> RiskDecision:
    """Print the mission's boundaries, steps and risk; return the policy decision."""
    m = loaded.mission
    b = m.boundaries
    console.print(
        f"[green]valid[/] {escape(str(loaded.path))}: mission [bold]{escape(m.mission)}[/] "
        f"v{escape(str(m.version))}" + (f" — {escape(m.description)}" if m.description else "")
    )
    if m.owner:
        console.print(f"  owner: {escape(m.owner)}")
    console.print(f"  data classes: {', '.join(m.data_classes) or 'none declared'}")
    resources = f"; resources also from {', '.join(b.allowed_resource_domains)}" if b.allowed_resource_domains else ""
    console.print(f"  allowed domains: {escape(', '.join(b.allowed_domains) + resources)}")
    console.print(f"  allowed actions: {', '.join(b.allowed_actions)}")
    console.print(
        f"  limits: {b.max_steps} steps, {b.timeout:g} s; plain http {'allowed' if b.allow_http else 'refused'};"
        f" downloads {b.downloads}"
    )
    console.print(f"  danger zones: {escape(_zones_line(m))}")
    console.print(
        f"  pii: page={m.pii.on_page}, input={m.pii.on_input}, request={m.pii.on_request}, "
        f"threshold {m.pii.threshold:g}" + (f", handles {', '.join(m.pii.allow)}" if m.pii.allow else "")
    )
    if m.secrets:
        console.print(
            "  secrets: "
            + ", ".join(
                f"{escape(k)} (env {escape(v.env)}, only to {escape(', '.join(v.domains))})"
                for k, v in m.secrets.items()
            )
        )
    table = Table(show_edge=False, box=None, pad_edge=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("action")
    table.add_column("target / argument")
    table.add_column("", style="yellow")
    for i, step in enumerate(m.steps, start=1):
        target = target_summary(step.kind, step.args.model_dump(exclude_none=True))
        text = ", ".join(f"{k}={_shown(k, v)}" for k, v in target.items())
        table.add_row(str(i), step.kind, escape(text), "approve" if step.needs_approval else "")
    console.print(table)
    risk = assess(m)
    print_risk(risk, console)
    return risk.decision


def _zones_line(m: Mission) -> str:
    """One line: which zones are in force, and how approvals are answered."""
    zones = [z.name for z in m.danger_zones]
    if m.danger_zones_defaults:
        zones.append("built-in set")
    what = ", ".join(zones) if zones else "none (built-in set removed)"
    a = m.approvals
    policy = f"approvals time out after {a.timeout:g} s"
    if a.approvers is not None:
        policy += f", approvers {', '.join(a.approvers)}"
    if a.four_eyes:
        policy += ", four eyes"
    return f"{what}; {policy}"


def _factors(items: tuple[Factor, ...], fmt: str) -> str:
    parts = [fmt.format(label=escape(f.label), n=f.points) for f in items if f.points]
    return "; ".join(parts) or "none"


def print_risk(risk: RiskAssessment, console: Console) -> None:
    console.print("[bold]risk[/] (formula: docs/risk.md)")
    console.print(f"  data sensitivity: {risk.sensitivity}/100  ({_factors(risk.sensitivity_factors, '{label} +{n}')})")
    console.print(f"  autonomy:         {risk.autonomy}/100  ({_factors(risk.autonomy_factors, '{label} +{n}')})")
    console.print("  agent-driven:     no: scripted steps (every mission is scripted today)")
    console.print(f"  mitigations:      -{risk.credit}%  ({_factors(risk.mitigations, '{label} -{n}%')})")
    console.print(
        f"  score:            {risk.score}/100  (inherent (S + A) / 2 = {risk.inherent}, "
        f"x (100 - {risk.credit}) / 100)"
    )
    style = _DECISION_STYLE[risk.decision]
    console.print(f"  decision:         [{style}]{risk.decision}[/]")
    for reason in risk.reasons:
        console.print(f"    - {escape(reason)}")


def _shown(key: str, value: object) -> str:
    """Typed values may be PII (check loads no PII engine to tell): templates are shown, literals by size."""
    text = str(value)
    if key != "value" or (text.startswith("${") and text.endswith("}")):
        return text
    return f"<{len(text)} chars>"

