"""``warden evidence reindex``: rebuild the index from the folders, without laundering tampering."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from evidence.index import EvidenceIndex, RecordRow
from evidence.reindex import reindex
from evidence.verify import verify_run
from runner.cli import cli
from tests.evidence.test_query import assert_query_semantics, build_mix


def _bodies(index: EvidenceIndex) -> list[tuple[str, int, str, str | None]]:
    with Session(index.engine) as s:
        return [tuple(r) for r in s.execute(  # type: ignore[misc]
            select(RecordRow.run_id, RecordRow.seq, RecordRow.body, RecordRow.mission_id).order_by(
                RecordRow.run_id, RecordRow.seq))]


def test_reindex_rebuilds_an_identical_index(evidence_dir: Path, index: EvidenceIndex) -> None:
    mix = build_mix(evidence_dir, index)
    before = _bodies(index)
    heads = {r.run_id: (r.chain_head, r.record_count, r.status) for r in index.list_runs()}
    fresh = EvidenceIndex(evidence_dir / "rebuilt.db")
    report = reindex(evidence_dir, fresh)
    assert (report.runs, report.records, report.failed, report.conflicts) == (3, len(before), [], [])
    assert _bodies(fresh) == before
    assert {r.run_id: (r.chain_head, r.record_count, r.status) for r in fresh.list_runs()} == heads
    assert_query_semantics(fresh, mix)
    # again, into the same index: an upsert, nothing doubled
    again = reindex(evidence_dir, fresh)
    assert again.records == len(before) and _bodies(fresh) == before
    fresh.close()


def test_reindex_reports_broken_folders_and_keeps_going(evidence_dir: Path, index: EvidenceIndex) -> None:
    mix = build_mix(evidence_dir, index)
    path = mix.folders["B"] / "records.jsonl"
    lines = path.read_text().splitlines()
    lines[1] = lines[1][:-5]  # not JSON any more
    path.write_text("\n".join(lines) + "\n")
    (evidence_dir / "runs" / "not-a-run").mkdir()
    fresh = EvidenceIndex(evidence_dir / "rebuilt.db")
    report = reindex(evidence_dir, fresh)
    assert report.runs == 2 and not report.ok
    failed = dict(report.failed)
    assert failed[str(mix.folders["B"])] == "records.jsonl line 2: not valid JSON"
    assert failed[str(evidence_dir / "runs" / "not-a-run")] == "no records.jsonl"
    assert {r.run_id for r in fresh.list_runs()} == {mix.runs["A"], mix.runs["C"]}
    res = CliRunner().invoke(cli, ["evidence", "reindex", "--evidence-dir", str(evidence_dir), "--db",
                                   f"sqlite:///{evidence_dir / 'cli.db'}"])
    assert res.exit_code == 1
    assert "line 2: not valid JSON" in res.stdout and "indexed 2 run(s)" in res.stdout
    fresh.close()


def test_reindex_refuses_to_launder_a_cut_tail(evidence_dir: Path, index: EvidenceIndex) -> None:
    mix = build_mix(evidence_dir, index)
    run_a = mix.runs["A"]
    path = mix.folders["A"] / "records.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-3]))  # tail cut behind the index's back
    head = index.head(run_a)
    report = reindex(evidence_dir, index)
    assert [r for r, _ in report.conflicts] == [run_a] and "not in records.jsonl" in report.conflicts[0][1]
    assert index.head(run_a) == head  # the index still remembers
    assert not verify_run(mix.folders["A"], index).ok
    forced = reindex(evidence_dir, index, force=True)
    assert forced.conflicts == [] and index.head(run_a) != head


def test_reindex_handles_killed_and_live_runs(evidence_dir: Path, index: EvidenceIndex) -> None:
    mix = build_mix(evidence_dir, index)
    with open(mix.folders["C"] / "records.jsonl", "ab") as f:
        f.write(b'{"torn":')  # killed mid-write
    fresh = EvidenceIndex(evidence_dir / "rebuilt.db")
    report = reindex(evidence_dir, fresh)
    assert report.ok and report.runs == 3
    assert any("incomplete final write" in n for n in report.notes)
    assert fresh.get_run(mix.runs["C"]) is not None and fresh.get_run(mix.runs["C"]).record_count == 4  # type: ignore[union-attr]
    # a run whose writer holds the lock is left to its writer
    fd = os.open(mix.folders["A"] / "records.jsonl", os.O_WRONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        live = reindex(evidence_dir, EvidenceIndex(evidence_dir / "third.db"))
    finally:
        os.close(fd)
    assert [r for r, _ in live.skipped] == [mix.runs["A"]] and live.runs == 2


def test_reindex_rebuilds_runs_without_run_json_and_clear_drops_orphans(evidence_dir: Path,
                                                                        index: EvidenceIndex) -> None:
    mix = build_mix(evidence_dir, index)
    (mix.folders["B"] / "run.json").unlink()
    fresh = EvidenceIndex(evidence_dir / "rebuilt.db")
    report = reindex(evidence_dir, fresh)
    row = fresh.get_run(mix.runs["B"])
    assert row is not None and (row.mission_id, row.status, row.exit_code) == ("payroll", "stopped", 3)
    assert any("run.json missing" in n for n in report.notes)
    last = json.loads((mix.folders["B"] / "records.jsonl").read_text().splitlines()[-1])
    assert row.chain_head == last["hash"]
    os.rename(mix.folders["A"], evidence_dir / "elsewhere")
    assert reindex(evidence_dir, fresh).orphans == [mix.runs["A"]]
    cleared = reindex(evidence_dir, fresh, clear=True)
    assert cleared.orphans == [] and fresh.get_run(mix.runs["A"]) is None
    fresh.close()
