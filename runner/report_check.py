"""``warden check``: the mission's shape, as a reviewer wants to read it before approving a mission."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from runner.mission.loader import LoadedMission
from runner.steps import target_summary


def print_shape(loaded: LoadedMission, console: Console) -> None:
    m = loaded.mission
    b = m.boundaries
    console.print(
        f"[green]valid[/] {escape(str(loaded.path))}: mission [bold]{escape(m.mission)}[/] "
        f"v{escape(str(m.version))}" + (f" — {escape(m.description)}" if m.description else "")
    )
    if m.owner:
        console.print(f"  owner: {escape(m.owner)}")
    console.print(f"  data classes: {', '.join(m.data_classes) or 'none declared'}")
    console.print(
        f"  allowed domains: {escape(', '.join(b.allowed_domains))}"
        + (
            f"; resources also from {escape(', '.join(b.allowed_resource_domains))}"
            if b.allowed_resource_domains
            else ""
        )
    )
    console.print(f"  allowed actions: {', '.join(b.allowed_actions)}")
    console.print(
        f"  limits: {b.max_steps} steps, {b.timeout:g} s; plain http {'allowed' if b.allow_http else 'refused'};"
        f" downloads {b.downloads}"
    )
    zones = len(m.danger_zones) + (1 if m.danger_zones_defaults else 0)
    console.print(
        f"  danger zones: {len(m.danger_zones)} declared"
        + (" + the built-in set" if m.danger_zones_defaults else " (built-in set removed)")
        + f"; approvals time out after {m.approvals.timeout:g} s"
        + (" (four eyes)" if m.approvals.four_eyes else "")
        if zones
        else "  danger zones: none"
    )
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
        text = ", ".join(f"{k}={v}" for k, v in target.items())
        table.add_row(str(i), step.kind, escape(text), "approve" if step.needs_approval else "")
    console.print(table)
