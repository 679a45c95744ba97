"""``warden demo``: serve the bundled expense portal on 127.0.0.1 and run the demo mission against it."""

from __future__ import annotations

import os
from pathlib import Path

import missions
from runner.demo_site import DemoSite
from runner.progress import Reporter
from runner.run import RunOptions, run_mission

DEMO_MISSION = Path(missions.__file__).parent / "demo" / "expense-report.yaml"
# A throwaway password for the local demo portal; the mission reads it as ${secrets.PORTAL_PASSWORD}.
DEMO_PASSWORD = "demo-Passw0rd-not-secret"  # noqa: S105


def run_demo(evidence_dir: Path, reporter: Reporter) -> int:
    environ = dict(os.environ)
    environ.setdefault("PORTAL_PASSWORD", DEMO_PASSWORD)
    with DemoSite() as site:
        opts = RunOptions(
            mission_path=DEMO_MISSION,
            evidence_dir=evidence_dir,
            cli_vars={"base_url": site.base_url},
            started_by="warden demo",
            environ=environ,
        )
        result = run_mission(opts, reporter)
    if result.folder is not None:
        reporter.event(
            "demo_finished",
            evidence=str(result.folder),
            verify=f"warden evidence verify {result.run_id} --evidence-dir {evidence_dir}",
        )
    return result.exit_code
