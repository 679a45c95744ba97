"""``warden demo``: serve the bundled expense portal on 127.0.0.1 and run the demo mission against it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import missions
from missions.demo_site import DemoSite
from runner.exit_codes import ExitCode
from runner.progress import Reporter
from runner.run import RunOptions, run_mission

DEMO_MISSION = Path(missions.__file__).parent / "demo" / "expense-report.yaml"
# A throwaway password for the local demo portal; the mission reads it as ${secrets.PORTAL_PASSWORD}.
DEMO_PASSWORD = "demo-Passw0rd-not-secret"  # noqa: S105


def run_demo(
    evidence_dir: Path,
    reporter: Reporter,
    *,
    approval: Literal["prompt", "deny", "queue"] | None = None,
    approver: str | None = None,
) -> int:
    """Exit codes as ``warden run``: 0 when the payment was approved and every step ran; 3 when the
    payment approval was denied or expired (the default without a terminal: the deny channel).
    Both leave an evidence folder that ``warden evidence verify`` accepts; 1 when it does not."""
    environ = dict(os.environ)
    environ.setdefault("PORTAL_PASSWORD", DEMO_PASSWORD)
    with DemoSite() as site:
        opts = RunOptions(
            mission_path=DEMO_MISSION,
            evidence_dir=evidence_dir,
            cli_vars={"base_url": site.base_url},
            started_by="warden demo",
            environ=environ,
            approval=approval,
            approver=approver,
        )
        result = run_mission(opts, reporter)
    if result.exit_code == 3 and "approval" in result.message:
        reporter.event(
            "warning",
            message="the demo stopped at its danger zone (\"Submit payment\"): no approval was given, so the "
            "payment was not made (exit 3). Run `warden demo` in a terminal and type approve to complete it.",
        )
    if result.folder is not None:
        from evidence.verify import verify_run

        report = verify_run(result.folder)
        verdict = "intact" if report.ok else "ALTERED: " + "; ".join(report.problems[:3])
        reporter.event(
            "demo_finished",
            evidence=str(result.folder),
            verified=report.ok,
            verdict=f"evidence verified: {verdict} ({report.record_count} records, "
            f"{report.attachments_checked} attachments)",
            verify=f"warden evidence verify {result.run_id} --evidence-dir {evidence_dir}",
        )
        if not report.ok:
            return ExitCode.NEGATIVE  # the evidence does not verify
    return result.exit_code
