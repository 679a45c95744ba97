"""The evidence writer: envelope, chain, redaction, fail-closed writes, one line per record."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from evidence.index import EvidenceIndex
from evidence.records import (
    GENESIS_HASH,
    RECORD_TYPES,
    ActionRecord,
    Actor,
    ApprovalRecord,
    ExceptionRecord,
    parse_record,
)
from evidence.redact import SecretRedactor
from evidence.runfolder import RunFolder, new_run_id
from evidence.verify import verify_run
from evidence.writer import MAX_STRING, EvidenceWriter
from kernel.errors import EvidenceUnavailable
from tests.evidence.conftest import make_read_only

RUNNER = Actor(type="runner", id="warden")
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
SECRET = "hunter2-S3cr3t!"


def _lines(folder: RunFolder) -> list[bytes]:
    return folder.records.read_bytes().splitlines(keepends=True)


def _exc(writer: EvidenceWriter, message: str = "boom") -> Any:
    return writer.append(ExceptionRecord, actor=RUNNER, category="step_failed", error_type="Timeout",
                         message=message, mitigation="recorded")


def test_envelope_seq_chain_and_time(make_run: Any) -> None:
    h = make_run(steps=10)
    records = [json.loads(x) for x in _lines(h.folder)]
    assert len(records) == 2 + 3 * 10
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    prev = GENESIS_HASH
    for r in records:
        assert r["prev_hash"] == prev
        assert r["run_id"] == h.run_id
        assert TIME_RE.match(r["time"]), r["time"]
        assert r["schema"] == RECORD_TYPES[r["type"]].schema_id()  # warden.<type>/<its SCHEMA_VERSION>
        uuid.UUID(r["record_id"])
        parse_record(r)
        prev = r["hash"]
    assert len({r["record_id"] for r in records}) == len(records)
    assert h.info.chain_head == prev
    assert h.info.record_count == len(records)


def test_hash_equals_independent_recomputation(make_run: Any) -> None:
    h = make_run(steps=3)
    for raw in _lines(h.folder):
        rec = json.loads(raw)
        body = {k: v for k, v in rec.items() if k != "hash"}
        assert rec["hash"] == hashlib.sha256(rfc8785.dumps(body)).hexdigest()


def test_next_seq_and_head_track_writes(start_run: Any) -> None:
    h = start_run()
    w = h.writer
    assert w.next_seq == 2
    assert w.count == 1
    rec = _exc(w)
    assert rec.seq == 2
    assert w.head == rec.hash
    assert w.next_seq == 3
    assert h.index.head(h.run_id) == rec.hash


def test_secrets_never_reach_records_or_index(evidence_dir: Path, start_run: Any) -> None:
    h = start_run(redactor=SecretRedactor({"PORTAL_PASSWORD": SECRET}))
    w = h.writer
    w.append(ActionRecord, actor=Actor(type="human", id=f"user-{SECRET}"), phase="intent", step=1, kind="fill",
             target={"label": "Password", SECRET: [SECRET, {"nested": f"x{SECRET}y"}]},
             call=f"fill('{SECRET}')", url_before=f"https://portal.example.com/?p={SECRET}")
    w.append(ApprovalRecord, actor=RUNNER, approval_id="a1", decision="denied", os_user="alice",
             reason=f"url-encoded {SECRET.replace('!', '%21')}", channel="deny", action_digest="a" * 64,
             rule="payment", answered_at="2026-11-21T00:00:00.000Z")
    text = h.folder.records.read_text()
    assert "«secret:PORTAL_PASSWORD»" in text
    h.finish()
    h.index.close()
    for path in evidence_dir.rglob("*"):  # records, run.json, warden.db and its WAL
        if path.is_file():
            data = path.read_bytes()
            assert SECRET.encode() not in data, path
            assert SECRET.replace("!", "%21").encode() not in data, path


def test_redactor_failure_writes_nothing_and_disables_writer(start_run: Any) -> None:
    class Broken:
        calls = 0

        def redact(self, text: str) -> str:
            Broken.calls += 1
            if text == "trigger":
                raise RuntimeError(f"scanner crashed on {text}")
            return text

    h = start_run(redactor=Broken())
    before = h.folder.records.read_bytes()
    with pytest.raises(EvidenceUnavailable) as err:
        _exc(h.writer, "trigger")
    assert err.value.exit_code == 5
    assert "trigger" not in str(err.value)
    assert h.folder.records.read_bytes() == before
    with pytest.raises(EvidenceUnavailable):
        _exc(h.writer, "fine")
    assert h.folder.records.read_bytes() == before
    assert not h.writer.usable


def test_partial_write_is_truncated_and_disables_writer(start_run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    h = start_run()
    _exc(h.writer)
    good = h.folder.records.read_bytes()
    real_write = os.write
    fd = h.writer._fd

    def half_then_fail(f: int, data: Any) -> int:
        if f == fd:
            real_write(f, bytes(data)[: len(data) // 2])
            raise OSError(28, "No space left on device")
        return real_write(f, data)

    monkeypatch.setattr(os, "write", half_then_fail)
    with pytest.raises(EvidenceUnavailable, match="No space left"):
        _exc(h.writer, "x" * 500)
    monkeypatch.undo()
    assert h.folder.records.read_bytes() == good  # the half line is gone
    with pytest.raises(EvidenceUnavailable):
        _exc(h.writer)
    report = verify_run(h.folder.root, h.index)
    assert report.ok, report.problems
    assert report.status == "interrupted"
    assert report.record_count == 2


def test_fsync_failure_rolls_back(start_run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    h = start_run()
    good = h.folder.records.read_bytes()
    real_fsync = os.fsync
    calls: list[int] = []

    def failing_fsync(f: int) -> None:
        calls.append(f)
        if len(calls) == 1:
            raise OSError(5, "Input/output error")
        real_fsync(f)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(EvidenceUnavailable, match="Input/output error"):
        _exc(h.writer)
    monkeypatch.undo()
    assert h.folder.records.read_bytes() == good
    assert verify_run(h.folder.root, h.index).ok


def test_keyboard_interrupt_mid_write_keeps_writer_usable(start_run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    h = start_run()
    good = h.folder.records.read_bytes()
    real_write = os.write
    fd = h.writer._fd

    def interrupted(f: int, data: Any) -> int:
        if f == fd:
            real_write(f, bytes(data)[:10])
            raise KeyboardInterrupt
        return real_write(f, data)

    monkeypatch.setattr(os, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _exc(h.writer)
    monkeypatch.undo()
    assert h.folder.records.read_bytes() == good
    rec = _exc(h.writer, "after ctrl-c")  # the interrupted record was never written: seq is reused
    assert rec.seq == 2
    h.finish(status="interrupted", exit_code=130)
    assert verify_run(h.folder.root, h.index).ok


def test_read_only_run_folder_fails_closed(start_run: Any) -> None:
    h = start_run()
    h.writer.close()
    undo = make_read_only(h.folder.root)
    try:
        with pytest.raises(EvidenceUnavailable):
            EvidenceWriter(h.folder, h.run_id, SecretRedactor())
    finally:
        undo()


def test_read_only_filesystem_fails_closed(tmp_path: Path) -> None:
    """Works for root too: /proc/self is not writable by anyone."""
    folder = RunFolder(Path("/proc/self"))
    with pytest.raises(EvidenceUnavailable):
        EvidenceWriter(folder, "x", SecretRedactor())


def test_invalid_fields_write_nothing_and_keep_writer(start_run: Any) -> None:
    h = start_run()
    before = h.folder.records.read_bytes()
    with pytest.raises(ValidationError):
        h.writer.append(ExceptionRecord, actor=RUNNER, category="x", error_type="y", message="z",
                        mitigation="ignored-on-purpose")
    with pytest.raises(TypeError, match="envelope"):
        h.writer.append(ExceptionRecord, actor=RUNNER, seq=99, category="x", error_type="y", message="z",
                        mitigation="recorded")
    assert h.folder.records.read_bytes() == before
    assert _exc(h.writer).seq == 2


def test_long_strings_are_capped_with_marker(start_run: Any) -> None:
    h = start_run()
    rec = _exc(h.writer, "A" * (MAX_STRING * 4))
    assert rec.message.startswith("A" * MAX_STRING)
    assert rec.message.endswith(f"…[truncated {MAX_STRING * 3} chars]")
    assert len(_lines(h.folder)[-1]) < MAX_STRING + 2000


def test_secret_cut_by_cap_is_still_redacted(start_run: Any) -> None:
    """Redaction runs before the cap, so a secret straddling the cut leaves no clear prefix."""
    h = start_run(redactor=SecretRedactor({"S": SECRET}))
    rec = _exc(h.writer, "A" * (MAX_STRING - 5) + SECRET)
    assert rec.message.startswith("A" * (MAX_STRING - 5) + "«secr")
    assert SECRET[:5].encode() not in h.folder.records.read_bytes()


def test_second_writer_on_same_folder_is_refused(start_run: Any) -> None:
    h = start_run()
    with pytest.raises(EvidenceUnavailable, match="locked"):
        EvidenceWriter(h.folder, h.run_id, SecretRedactor())


def test_attachments(start_run: Any) -> None:
    h = start_run()
    att = h.writer.attach_bytes(b"png-bytes", "screenshots/0002-step01-before.png", "image/png")
    assert att.sha256 == hashlib.sha256(b"png-bytes").hexdigest()
    assert (h.folder.root / att.path).read_bytes() == b"png-bytes"
    with pytest.raises(ValueError, match="inside the run folder"):
        h.writer.attach_bytes(b"x", "../escape.png", "image/png")
    with pytest.raises(ValueError, match="inside the run folder"):
        h.writer.attach_bytes(b"x", "/etc/passwd", "image/png")
    with pytest.raises(EvidenceUnavailable):  # never overwrite evidence
        h.writer.attach_bytes(b"other", att.path, "image/png")
    assert (h.folder.root / att.path).read_bytes() == b"png-bytes"


def test_closed_writer_refuses(start_run: Any) -> None:
    h = start_run()
    h.writer.close()
    with pytest.raises(EvidenceUnavailable, match="closed"):
        _exc(h.writer)


def test_indexing_cost_is_small(start_run: Any) -> None:
    h = start_run()
    t0 = time.perf_counter()
    for n in range(1, 21):  # a 20-step run: ~80 records with screenshots
        h.step(n)
    elapsed = time.perf_counter() - t0
    assert h.writer.count == 61
    assert h.index.head(h.run_id) == h.writer.head
    assert elapsed < 10, f"20 steps took {elapsed:.2f}s"


def test_concurrent_runs_share_one_sqlite_index(evidence_dir: Path, index: EvidenceIndex) -> None:
    script = r"""
import sys
from evidence.index import EvidenceIndex
from evidence.records import Actor, ExceptionRecord, RunRecord
from evidence.redact import SecretRedactor
from evidence.runfolder import RunFolder, RunInfo, new_run_id, utc_timestamp
from evidence.writer import EvidenceWriter
d = sys.argv[1]
idx = EvidenceIndex(d)
rid = new_run_id("m" + sys.argv[2])
f = RunFolder.create(d, rid)
sha = "a" * 64
info = RunInfo(run_id=rid, mission_id="m", mission_version="1", mission_sha256=sha, started_at=utc_timestamp())
f.write_run_info(info)
idx.upsert_run_info(info, f.root)
a = Actor(type="runner", id="warden")
w = EvidenceWriter(f, rid, SecretRedactor(), idx)
w.append(RunRecord, actor=a, phase="start", initiator={}, started_by="t", mission_id="m", mission_version="1",
         mission_sha256=sha, started_at=info.started_at)
for i in range(40):
    w.append(ExceptionRecord, actor=a, category="x", error_type="y", message=str(i), mitigation="recorded")
w.append(RunRecord, actor=a, phase="end", initiator={}, started_by="t", mission_id="m", mission_version="1",
         mission_sha256=sha, started_at=info.started_at, outcome="completed", exit_code=0)
info = info.finish(status="completed", exit_code=0, chain_head=w.head, record_count=w.count)
f.write_run_info(info)
idx.upsert_run_info(info, f.root)
w.close()
"""
    procs = [subprocess.Popen([sys.executable, "-c", script, str(evidence_dir), str(i)]) for i in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    runs = index.list_runs()
    assert len(runs) == 4
    for run in runs:
        assert run.record_count == 42
        assert [r.seq for r in index.records(run.run_id)] == list(range(1, 43))
        report = verify_run(Path(run.folder), index)
        assert report.ok, report.problems


ODD = st.sampled_from(["\n", "\r", "\r\n", "\u2028", "\u2029", "\x85", "\x00", "\x0b", "\x0c", "\x1c", "\"", "\\",
                       "\ufeff", "\U0001f600", "«secret:X»"])
WEIRD_TEXT = st.lists(st.one_of(st.text(max_size=20), ODD), max_size=12).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(WEIRD_TEXT, min_size=1, max_size=5))
def test_any_string_round_trips_as_exactly_one_line(tmp_path: Path, values: list[str]) -> None:
    folder = RunFolder.create(tmp_path / uuid.uuid4().hex, new_run_id("prop"))
    with EvidenceWriter(folder, folder.run_id, SecretRedactor()) as w:
        for v in values:
            w.append(ExceptionRecord, actor=RUNNER, category="x", error_type=v, message=v, mitigation="recorded")
    raw = folder.records.read_bytes()
    assert raw.count(b"\n") == len(values)
    text = raw.decode("utf-8")
    assert len(text.splitlines()) == len(values)  # str.splitlines also breaks on U+2028, NEL, VT, FF...
    for line, v in zip(text.splitlines(), values, strict=True):
        rec = json.loads(line)
        assert rec["message"] == v
        assert rec["hash"] == hashlib.sha256(rfc8785.dumps({k: x for k, x in rec.items() if k != "hash"})).hexdigest()


def test_lone_surrogates_are_replaced_not_fatal(start_run: Any) -> None:
    h = start_run()
    rec = _exc(h.writer, "a\ud800b")
    assert rec.message == "a\ufffdb"
    assert verify_run(h.folder.root, h.index).ok


def test_index_failure_fails_closed(evidence_dir: Path, index: EvidenceIndex) -> None:
    """The record is on disk (the folder is the truth), but the writer stops: the run must not go on."""
    folder = RunFolder.create(evidence_dir, new_run_id("unregistered"))
    with EvidenceWriter(folder, folder.run_id, SecretRedactor(), index) as w:
        with pytest.raises(EvidenceUnavailable, match="index"):
            _exc(w)
        assert not w.usable
        with pytest.raises(EvidenceUnavailable):
            _exc(w)
    assert folder.records.read_bytes().count(b"\n") == 1


def _outcome(step: int, **extra: Any) -> tuple[type[ActionRecord], Actor, tuple[()], dict[str, Any]]:
    return (ActionRecord, RUNNER, (), {"phase": "outcome", "step": step, "kind": "click", "call": f"click #{step}",
                                       "outcome": "ok", **extra})


def test_append_many_is_one_group_one_fsync_and_chains_like_single_appends(
    start_run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = start_run(redactor=SecretRedactor({"pw": SECRET}))
    fsyncs: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda f: (fsyncs.append(f), real_fsync(f))[1])
    intent = (ActionRecord, RUNNER, (), {"phase": "intent", "step": 1, "kind": "click", "call": f"click {SECRET}"})
    written = h.writer.append_many([_outcome(n) for n in range(1, 40)] + [intent])
    assert fsyncs.count(h.writer._fd) == 1  # the group holds an intent: durable before it returns, once
    assert [r.seq for r in written] == list(range(2, 42)) and h.writer.head == written[-1].hash
    assert h.index.head(h.run_id) == written[-1].hash  # indexed before it returns, in one transaction
    assert SECRET.encode() not in h.folder.records.read_bytes()  # redacted in the batch like one by one
    fsyncs.clear()
    h.writer.append_many([_outcome(n) for n in range(1, 5)])  # no gating record: written, fsynced later
    assert fsyncs == []
    with pytest.raises(ValidationError):  # all or nothing: one refused record writes none of the group
        h.writer.append_many([_outcome(7), _outcome(8, outcome="maybe")])
    assert h.writer.count == 45
    h.finish(status="completed", exit_code=0)
    assert verify_run(h.folder.root, h.index).ok
