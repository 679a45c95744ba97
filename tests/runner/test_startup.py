"""`warden run`'s way to the browser's launch: what it imports first, and the recovery it defers.

The CLI imports the approvals queue and the fleet only when they are named, and the run imports the
evidence stack (SQLAlchemy), the step loop and Presidio in the thread that builds the PII engine
while Chromium launches (runner/run.py ``_prepare``). The crash recovery a writing command does
first is, for `warden run`, done in that thread too: before the run's own folder exists.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from evidence.index import EvidenceIndex
from evidence.runfolder import RunFolder
from missions.loader import load_mission
from runner.assembly import assemble
from runner.cli import cli
from runner.cli_options import recovery_for
from runner.lifecycle import RunEvidence
from tests.evidence.integrity_support import mission_yaml, records, run, serve_pages, short_steps, write_mission
from tests.server import TestServer

ROOT = Path(__file__).resolve().parents[2]

# Not before the launch: the index's ORM, the PII engine, the MCP SDK, the fleet's queue.
_LATE = ("sqlalchemy", "presidio_analyzer", "spacy", "mcp", "procrastinate", "runner.lifecycle", "runner.steps",
         "runner.cli_approvals", "runner.fleet.cli")


def test_the_cli_and_the_run_module_import_nothing_heavy() -> None:
    script = textwrap.dedent(
        f"""
        import sys
        import runner.cli, runner.run
        from runner.browser import playwright_driver  # what build_while_launching imports to launch
        late = {_LATE!r}
        print(sorted(m for m in sys.modules if m.split(".")[0] in late or m in late))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", ["approvals", "submit", "worker", "jobs"])
def test_the_lazy_commands_are_listed_and_run(name: str) -> None:
    listed = CliRunner().invoke(cli, ["--help"])
    assert listed.exit_code == 0 and f"  {name} " in listed.output
    helped = CliRunner().invoke(cli, [name, "--help"])
    assert helped.exit_code == 0, helped.output
    assert f"Usage: cli {name}" in helped.output or f"Usage: warden {name}" in helped.output


def _dead_run(ev: Path, mission: Path) -> str:
    """A run whose process died after its start records: marked running, its lock free."""
    loaded = load_mission(mission, cli_vars={}, environ=os.environ)
    prepared = assemble(loaded, os.environ, evidence_dir=ev)
    dead = RunEvidence.open(loaded, prepared.redactor, evidence_dir=ev, db_url=None, environ=os.environ,
                            started_by="test")
    dead.write_start(prepared.redactor.redact)
    dead.writer.close()
    dead.index.close()
    dead.lock.release()  # as the kernel does when the process dies
    return dead.run_id


@pytest.mark.browser
def test_warden_run_recovers_a_dead_run_then_runs(tmp_path: Path, test_server: TestServer) -> None:
    serve_pages(test_server)
    ev = tmp_path / "ev"
    mission = write_mission(tmp_path, mission_yaml(test_server, short_steps(test_server)))
    dead_id = _dead_run(ev, mission)

    code, result = run(mission, ev, recover=recovery_for(ev, None, quiet=True))
    assert code == 0 and result is not None and result.run_id != dead_id

    index = EvidenceIndex(ev)
    try:
        row = index.get_run(dead_id)
        assert row is not None and row.status == "interrupted"
    finally:
        index.close()
    closed = records(RunFolder(ev / "runs" / dead_id).root)
    assert closed[-1]["type"] == "run_record" and closed[-1]["outcome"] == "interrupted"
    assert not any(r["type"] == "exception_record" and r.get("category") == "crash_recovery"
                   for r in records(ev / "runs" / str(result.run_id)))  # the new run was never a dead one


def test_the_collector_is_off_only_for_the_first_start_then_on_with_that_heap_frozen(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import gc, sys
        from pathlib import Path
        from kernel.errors import WardenError
        from runner.progress import QuietReporter
        from runner.run import RunOptions, run_mission
        opts = RunOptions(mission_path=Path(sys.argv[1]) / "missing.yaml", evidence_dir=Path(sys.argv[1]))
        counts = []
        for _ in range(2):
            try:
                run_mission(opts, QuietReporter())
            except WardenError:
                pass
            counts.append((gc.isenabled(), gc.get_freeze_count()))
        print(counts[0][0], counts[1][0], counts[0][1] > 0, counts[1][1] == counts[0][1])
        """
    )
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True", "True", "True"]
