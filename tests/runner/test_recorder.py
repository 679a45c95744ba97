"""RunRecorder.record_many: a group of records is one group commit, counted like single records."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from evidence.records import ActionRecord, Actor, DecisionRecord
from evidence.redact import RedactorChain
from evidence.runfolder import RunFolder, new_run_id
from evidence.verify import verify_run
from evidence.writer import EvidenceWriter
from runner.recorder import RunRecorder

RUNNER = Actor(type="runner", id="test")


def test_a_decision_and_its_intent_are_durable_together_with_one_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = new_run_id("m")
    folder = RunFolder.create(tmp_path / "ev", run_id)
    writer = EvidenceWriter(folder, run_id, RedactorChain([]))
    recorder = RunRecorder(writer, RUNNER)
    fsyncs: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsyncs.append(fd), real(fd))[1])
    decision, intent = recorder.record_many([
        (DecisionRecord, recorder.policy, (), {"guard": "chain", "decision": "allow", "rationale": "ok", "step": 1,
                                              "kind": "click"}),
        (ActionRecord, RUNNER, (), {"phase": "intent", "step": 1, "kind": "click", "call": "click()"}),
    ])
    assert fsyncs.count(writer._fd) == 1  # both gate the action: one fsync makes both durable
    assert (decision.seq, intent.seq, intent.prev_hash) == (1, 2, decision.hash)
    assert recorder.counts == {"decision_record": 1, "action_record": 1}
    writer.close()
    problems = verify_run(folder.root).problems  # hashes and links verify; no run_record/run.json here
    assert not [p for p in problems if "run.json" not in p and "run_record" not in p], problems
