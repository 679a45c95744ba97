"""Run ids, run folder creation (fail closed, exit 5) and atomic run.json."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from evidence.canonical import canonical_bytes, record_hash, sha256_file
from evidence.runfolder import RunFolder, RunInfo, SecondStamps, new_run_id, utc_timestamp
from kernel.errors import EvidenceUnavailable
from tests.evidence.conftest import make_read_only

SHA = "b" * 64


def test_run_id_format() -> None:
    now = datetime(2026, 11, 21, 19, 50, 12, 345678, tzinfo=UTC)
    rid = new_run_id("Expense Report_v2", now)
    assert re.fullmatch(r"20261121T195012345Z-expense-report-v2-[0-9a-f]{6}", rid), rid
    assert new_run_id("m", now) != new_run_id("m", now)


def test_run_id_converts_to_utc() -> None:
    local = datetime(2026, 1, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    assert new_run_id("m", local).startswith("20251231T230000000Z-m-")
    assert utc_timestamp(local) == "2025-12-31T23:00:00.000Z"


def test_second_stamps_read_as_utc_timestamp_of_now() -> None:
    """The kept second's text plus the milliseconds: the same fixed-width form, between two readings."""
    stamps = SecondStamps()
    for _ in range(2000):  # across at least one millisecond (and so the kept text in use)
        before = utc_timestamp()
        now = stamps.now()
        after = utc_timestamp()
        assert before <= now <= after
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", now)


def test_create_makes_folder_tree(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        f = RunFolder.create(tmp_path / "ev", "r1")
    finally:
        os.umask(old)
    assert f.root == (tmp_path / "ev" / "runs" / "r1").absolute()
    assert f.screenshots.is_dir()
    assert stat.S_IMODE(f.root.stat().st_mode) == 0o750
    assert stat.S_IMODE(f.screenshots.stat().st_mode) == 0o750
    assert [p.name for p in f.root.iterdir()] == ["screenshots"]  # the write probe is gone


def test_create_fails_closed_when_dir_cannot_be_written(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(EvidenceUnavailable) as err:
        RunFolder.create(blocker / "ev", "r1")
    assert err.value.exit_code == 5


def test_create_fails_closed_on_read_only_dir(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    undo = make_read_only(ro)
    try:
        with pytest.raises(EvidenceUnavailable):
            RunFolder.create(ro, "r1")
    finally:
        undo()


def test_create_refuses_existing_run_and_bad_ids(tmp_path: Path) -> None:
    RunFolder.create(tmp_path, "r1")
    with pytest.raises(EvidenceUnavailable):
        RunFolder.create(tmp_path, "r1")
    for bad in ("../x", "a/b", ".hidden", ""):
        with pytest.raises(ValueError, match="invalid run id"):
            RunFolder.create(tmp_path, bad)


def _info(run_id: str = "r1", **kw: Any) -> RunInfo:
    return RunInfo(run_id=run_id, mission_id="m", mission_version="1", mission_sha256=SHA,
                   started_at=utc_timestamp(), **kw)


def test_run_json_atomic_round_trip(tmp_path: Path) -> None:
    f = RunFolder.create(tmp_path, "r1")
    info = _info(variables=["amount"], initiator={"user": "alice"})
    f.write_run_info(info)
    assert f.read_run_info() == info
    done = info.finish(status="completed", exit_code=0, chain_head="c" * 64, record_count=9)
    f.write_run_info(done)
    assert f.read_run_info() == done
    assert done.finished
    assert done.ended_at
    assert sorted(p.name for p in f.root.iterdir()) == ["run.json", "screenshots"]  # no tmp left behind


def test_run_json_failed_rename_keeps_old_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = RunFolder.create(tmp_path, "r1")
    f.write_run_info(_info())
    before = f.run_json.read_bytes()

    def fail(*_a: object, **_k: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(EvidenceUnavailable, match="No space"):
        f.write_run_info(_info().finish(status="failed", exit_code=4, chain_head="d" * 64, record_count=1))
    monkeypatch.undo()
    assert f.run_json.read_bytes() == before
    assert sorted(p.name for p in f.root.iterdir()) == ["run.json", "screenshots"]


def test_run_json_refuses_other_run(tmp_path: Path) -> None:
    f = RunFolder.create(tmp_path, "r1")
    with pytest.raises(ValueError, match="written into folder"):
        f.write_run_info(_info("r2"))


def test_canonical_known_answers(tmp_path: Path) -> None:
    assert canonical_bytes({"b": 1, "a": "é\n", "c": 1.0}) == '{"a":"é\\n","b":1,"c":1}'.encode()
    expected = hashlib.sha256(b'{"a":1}').hexdigest()
    assert record_hash({"a": 1}) == expected
    assert record_hash({"a": 1, "hash": "ignored"}) == expected
    p = tmp_path / "blob"
    p.write_bytes(b"x" * (3 << 20))
    assert sha256_file(p) == hashlib.sha256(b"x" * (3 << 20)).hexdigest()


def test_finish_sets_the_outcome(tmp_path: Path) -> None:
    from evidence.runfolder import RunInfo

    info = RunInfo(run_id="r1", mission_id="m", mission_version="1", mission_sha256="a" * 64, started_at="t")
    assert info.outcome is None
    done = info.finish(status="stopped", exit_code=3, chain_head="b" * 64, record_count=4)
    assert (done.status, done.outcome, done.exit_code) == ("stopped", "stopped", 3)


def test_lock_probe_writes_nothing(tmp_path: Path) -> None:
    from evidence.runfolder import RunFolder, RunLock

    folder = RunFolder.create(tmp_path / "ev", "run-1")
    assert RunLock.is_held(folder) is None and not folder.lock_path.exists()  # no lock file: none created
    lock = RunLock.acquire(folder)
    before = folder.lock_path.stat().st_mtime_ns
    assert RunLock.is_held(folder) is True
    lock.release()
    assert RunLock.is_held(folder) is False
    assert folder.lock_path.stat().st_mtime_ns == before
