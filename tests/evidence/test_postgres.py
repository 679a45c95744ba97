"""The evidence index on a real PostgreSQL: a real mission, then query, export, reindex and report.

``make test`` starts Debian's PostgreSQL (scripts/setup-postgres.sh) and exports WARDEN_TEST_PG_URL.
Under CI (``CI`` set) a missing URL is a failure, never a silent skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from evidence.index import Base, EvidenceIndex
from evidence.reindex import reindex
from evidence.verify import verify_run
from runner.cli import cli
from tests.evidence.test_query import assert_query_semantics, build_mix

PG_URL = os.environ.get("WARDEN_TEST_PG_URL")
HOW = ("WARDEN_TEST_PG_URL is not set: run `export WARDEN_TEST_PG_URL=$(scripts/setup-postgres.sh)` "
       "(installs and starts Debian's PostgreSQL, creates role and database warden_test), or use `make test`")


@pytest.fixture
def pg_url() -> str:
    if not PG_URL:
        if os.environ.get("CI"):
            pytest.fail(HOW)
        pytest.skip(HOW)
    index = EvidenceIndex(PG_URL)
    Base.metadata.drop_all(index.engine)  # a clean index per test (the database is dedicated to tests)
    index.close()
    return PG_URL


def test_query_semantics_postgres(tmp_path: Path, pg_url: str) -> None:
    index = EvidenceIndex(pg_url)
    assert index.engine.dialect.name == "postgresql"
    assert_query_semantics(index, build_mix(tmp_path / "ev", index, tag="pg"))
    # reindex into PostgreSQL from the folders gives the same answers
    Base.metadata.drop_all(index.engine)
    index.close()
    fresh = EvidenceIndex(pg_url)
    report = reindex(tmp_path / "ev", fresh)
    assert report.ok and report.runs == 3
    mix = build_mix(tmp_path / "ev2", fresh, tag="pg2")
    assert_query_semantics(fresh, mix)
    with fresh.engine.connect() as conn:
        names = {r[0] for r in conn.execute(text("select indexname from pg_indexes where tablename = 'records'"))}
    assert {"ix_records_type_decision_time", "ix_records_mission_time"} <= names
    fresh.close()


@pytest.mark.browser
def test_real_mission_on_postgres(tmp_path: Path, pg_url: str) -> None:
    evidence_dir = tmp_path / "ev"
    code = (
        "import sys; from pathlib import Path; from runner.demo import *; from missions.demo_site import DemoSite\n"
        "from runner.progress import JsonReporter; from runner.run import RunOptions, run_mission\n"
        "import os; env = dict(os.environ); env.setdefault('PORTAL_PASSWORD', DEMO_PASSWORD)\n"
        "with DemoSite() as site:\n"
        "    r = run_mission(RunOptions(mission_path=DEMO_MISSION, evidence_dir=Path(sys.argv[1]),"
        " cli_vars={'base_url': site.base_url}, started_by='warden demo', environ=env, db_url=sys.argv[2]),"
        " JsonReporter())\n"
        "sys.exit(r.exit_code)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(evidence_dir), pg_url], capture_output=True, text=True,
                          timeout=300, check=False)
    # Without an approver the demo's payment approval is denied: the run stops there (exit 3).
    assert done.returncode in (0, 3), done.stdout[-2000:] + done.stderr[-2000:]
    assert not (evidence_dir / "warden.db").exists()  # everything went to PostgreSQL
    index = EvidenceIndex(pg_url)
    (run,) = index.list_runs()
    assert run.status == {0: "completed", 3: "stopped"}[done.returncode] and run.record_count > 30
    assert verify_run(run.folder, index).ok
    runner = CliRunner()
    base = ["--evidence-dir", str(evidence_dir), "--db", pg_url.replace("postgresql+psycopg://", "postgresql://")]
    res = runner.invoke(cli, ["evidence", "query", "--type", "decision_record", "--where", "decision=allow",
                              "--mission", run.mission_id, "--outcome", run.status, "--format", "jsonl", *base])
    assert res.exit_code == 0, res.output
    decisions = [json.loads(x) for x in res.stdout.splitlines()]
    steps = {d["step"] for d in decisions}
    assert len(steps) >= 10 and all(d["run_id"] == run.run_id for d in decisions)
    res = runner.invoke(cli, ["evidence", "query", "--where", "actor.type=runner", "--where", "phase=outcome",
                              "--where", "outcome=ok", "--format", "csv", *base])
    assert res.exit_code == 0 and len(res.stdout.splitlines()) - 1 == len(steps)
    if run.status == "stopped":  # the SPEC's example, on PostgreSQL: the denied payment approval
        res = runner.invoke(cli, ["evidence", "query", "--type", "approval_record", "--where", "decision=denied",
                                  "--since", run.started_at[:10], "--format", "jsonl", *base])
        (denied,) = [json.loads(x) for x in res.stdout.splitlines()]
        assert denied["run_id"] == run.run_id and denied["channel"] == "deny"
    res = runner.invoke(cli, ["evidence", "export", run.run_id[:24], "--format", "ocsf", *base])
    assert res.exit_code == 0, res.output
    events = [json.loads(x) for x in res.stdout.splitlines()]
    assert len(events) == run.record_count and {e["metadata"]["version"] for e in events} == {"1.3.0"}
    api = [e for e in events if e["class_uid"] == 6003]
    assert api and all(e["api"]["operation"] and e["actor"] and e["src_endpoint"] for e in api)
    report = Path(run.folder) / "report.html"
    first = report.read_text()  # written by the run itself
    assert ">INTACT<" in first and f"Mission {run.mission_id}" in first
    report.unlink()
    res = runner.invoke(cli, ["evidence", "report", run.run_id, *base])
    assert res.exit_code == 0 and ">INTACT<" in report.read_text()
    res = runner.invoke(cli, ["evidence", "reindex", *base])
    assert res.exit_code == 0 and "indexed 1 run(s)" in res.stdout, res.output
    index.close()
