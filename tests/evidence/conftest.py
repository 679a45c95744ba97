"""Fixtures for evidence tests: real run folders in tmp_path, real SQLite, a realistic record mix."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from evidence.index import EvidenceIndex
from evidence.records import (
    ActionRecord,
    Actor,
    Attachment,
    DecisionRecord,
    RunRecord,
)
from evidence.redact import Redactor, SecretRedactor
from evidence.runfolder import RunFolder, RunInfo, RunStatus, new_run_id, utc_timestamp
from evidence.writer import EvidenceWriter

RUNNER = Actor(type="runner", id="warden")
MISSION_SHA = hashlib.sha256(b"mission: expense-report\n").hexdigest()


@dataclass
class RunHandle:
    folder: RunFolder
    writer: EvidenceWriter
    info: RunInfo
    index: EvidenceIndex | None

    @property
    def run_id(self) -> str:
        return self.info.run_id

    def step(self, n: int, *, screenshot: bool = True) -> None:
        """One step's worth of records: decision, intent, (screenshot), outcome."""
        w = self.writer
        w.append(DecisionRecord, actor=Actor(type="policy", id="chain"), guard="chain", decision="allow",
                 rationale=f"step {n} allowed", step=n, kind="click")
        intent = w.append(ActionRecord, actor=RUNNER, phase="intent", step=n, kind="click",
                          target={"selector": f"#b{n}"}, call=f"locator('#b{n}').click()")
        atts: list[Attachment] = []
        if screenshot:
            seq = w.next_seq
            atts.append(w.attach_bytes(b"\x89PNG fake " + bytes([n % 256]) * 64,
                                       f"screenshots/{seq:04d}-step{n:02d}-after.png", "image/png"))
        w.append(ActionRecord, actor=RUNNER, phase="outcome", step=n, kind="click", target={"selector": f"#b{n}"},
                 call=f"locator('#b{n}').click()", intent_id=intent.record_id, outcome="ok", duration_ms=12.5,
                 url_before="https://portal.example.com/a", url_after="https://portal.example.com/b",
                 attachments=atts)

    def finish(self, status: RunStatus = "completed", exit_code: int = 0) -> None:
        w = self.writer
        ended = utc_timestamp()
        w.append(RunRecord, actor=RUNNER, phase="end", initiator={"user": "alice"}, started_by="warden run",
                 mission_id=self.info.mission_id, mission_version=self.info.mission_version,
                 mission_sha256=self.info.mission_sha256, started_at=self.info.started_at, ended_at=ended,
                 outcome=status, exit_code=exit_code)
        self.info = self.info.finish(status=status, exit_code=exit_code, chain_head=w.head,
                                     record_count=w.count, ended_at=ended)
        self.folder.write_run_info(self.info)
        if self.index is not None:
            self.index.upsert_run_info(self.info, self.folder.root)
        w.close()


StartRun = Callable[..., RunHandle]
MakeRun = Callable[..., RunHandle]


@pytest.fixture
def evidence_dir(tmp_path: Path) -> Path:
    return tmp_path / "warden-evidence"


@pytest.fixture
def index(evidence_dir: Path) -> Iterator[EvidenceIndex]:
    idx = EvidenceIndex(evidence_dir)
    yield idx
    idx.close()


@pytest.fixture
def start_run(evidence_dir: Path, index: EvidenceIndex) -> Iterator[StartRun]:
    handles: list[RunHandle] = []

    def _start(*, mission_id: str = "expense-report", redactor: Redactor | None = None,
               use_index: bool = True, run_id: str | None = None) -> RunHandle:
        rid = run_id or new_run_id(mission_id)
        folder = RunFolder.create(evidence_dir, rid)
        info = RunInfo(run_id=rid, mission_id=mission_id, mission_version="3", mission_sha256=MISSION_SHA,
                       started_at=utc_timestamp(), variables=["amount"], initiator={"user": "alice", "host": "h"},
                       warden_version="0.1.0")
        folder.write_run_info(info)
        idx = index if use_index else None
        if idx is not None:
            idx.upsert_run_info(info, folder.root)
        writer = EvidenceWriter(folder, rid, redactor or SecretRedactor(), idx)
        writer.append(RunRecord, actor=RUNNER, phase="start", initiator={"user": "alice", "host": "h"},
                      started_by="warden run", mission_id=mission_id, mission_version="3",
                      mission_sha256=MISSION_SHA, variables=["amount"], started_at=info.started_at,
                      versions={"warden": "0.1.0"})
        handle = RunHandle(folder, writer, info, idx)
        handles.append(handle)
        return handle

    yield _start
    for h in handles:
        h.writer.close()


@pytest.fixture
def make_run(start_run: StartRun) -> MakeRun:
    """A finished run of ``steps`` steps (3 records each, plus start and end), with screenshots."""

    def _make(steps: int = 5, *, finish: bool = True, **kw: Any) -> RunHandle:
        h = start_run(**kw)
        for n in range(1, steps + 1):
            h.step(n)
        if finish:
            h.finish()
        return h

    return _make


class Tamper:
    """Edits a run folder the way an attacker with file access would."""

    def __init__(self, folder: RunFolder) -> None:
        self.folder = folder

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.folder.records.read_bytes().splitlines()]

    def write(self, records: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records)
        self.folder.records.write_bytes(text.encode())

    @staticmethod
    def rehash(record: dict[str, Any]) -> dict[str, Any]:
        body = {k: v for k, v in record.items() if k != "hash"}
        return {**record, "hash": hashlib.sha256(rfc8785.dumps(body)).hexdigest()}

    def rechain(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Renumber and rehash everything: a whole-history rewrite."""
        prev = "0" * 64
        out = []
        for i, r in enumerate(records, start=1):
            r = self.rehash({**r, "seq": i, "prev_hash": prev})
            prev = r["hash"]
            out.append(r)
        return out


@pytest.fixture
def tamper() -> Callable[[RunHandle], Tamper]:
    return lambda h: Tamper(h.folder)


def make_read_only(path: Path) -> Callable[[], None]:
    """Make ``path`` (a directory) unwritable for this process, root included; returns the undo.

    Root ignores file modes, so as root the directory becomes a read-only tmpfs mount point
    holding a copy of its files; as another user, plain modes do.
    """
    import os
    import shutil
    import subprocess
    import tempfile

    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [path, *path.rglob("*")]}
        for p in modes:
            p.chmod(0o555 if p.is_dir() else 0o444)
        return lambda: [p.chmod(m) for p, m in modes.items()] and None
    saved = Path(tempfile.mkdtemp())
    shutil.copytree(path, saved / "copy")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(path)], check=True)
    shutil.copytree(saved / "copy", path, dirs_exist_ok=True)
    subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
    return lambda: subprocess.run(["umount", str(path)], check=True) and None
