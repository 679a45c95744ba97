"""The evidence folder of a real run (SPEC §5), taken apart and checked without Warden's own code
where possible: the hash chain is recomputed here with ``rfc8785`` + ``hashlib``, screenshots are
hashed here, the index is read with ``sqlite3``. Then ``warden evidence verify`` is shown to
pass on the untouched folder and to fail, naming the problem, on an edited record or screenshot.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import rfc8785

from runner.progress import QuietReporter
from runner.run import RunOptions, run_mission
from tests.runner.missions import base, mission, only_run, posts, records, serve_site, warden
from tests.server import RecordedRequest, TestServer

pytestmark = pytest.mark.browser

GENESIS = "0" * 64
STEPS = 7
ENVELOPE = {"schema", "record_id", "run_id", "seq", "type", "time", "actor", "prev_hash", "hash", "attachments"}


@dataclass
class Run:
    ev: Path
    folder: Path
    done: subprocess.CompletedProcess[str]
    requests: list[RecordedRequest]

    @property
    def recs(self) -> list[dict[str, Any]]:
        return records(self.folder)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, test_server_session: TestServer) -> Run:
    server = test_server_session
    server.reset()
    serve_site(server)
    ev = tmp_path_factory.mktemp("evidence") / "ev"
    done = warden(
        "run", mission("evidence_run"), "--var", f"base={base(server)}", "--var", "who=Widget Co",
        "--evidence-dir", ev,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return Run(ev, only_run(ev), done, server.requests)


def by_type(recs: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [r for r in recs if r["type"] == type_]


# --------------------------------------------------------------------------- the folder


def test_folder_layout(run: Run) -> None:
    names = {p.name for p in run.folder.iterdir()}
    assert {"run.json", "mission.yaml", "records.jsonl", "screenshots"} <= names
    assert (run.folder / "screenshots").is_dir()
    assert run.folder.parent == run.ev / "runs"
    assert str(run.folder) in run.done.stdout  # the CLI said where it is


def test_run_json(run: Run) -> None:
    info = json.loads((run.folder / "run.json").read_text())
    recs = run.recs
    assert info["run_id"] == run.folder.name
    assert info["mission_id"] == "evidence-run" and "evidence-run" in info["run_id"]
    assert (info["status"], info["exit_code"]) == ("completed", 0)
    assert info["chain_head"] == recs[-1]["hash"]
    assert info["record_count"] == len(recs)
    assert info["mission_sha256"] == hashlib.sha256(mission("evidence_run").read_bytes()).hexdigest()
    assert sorted(info["variables"]) == ["base", "who"]  # names only
    assert "Widget Co" not in (run.folder / "run.json").read_text()


def test_mission_copy_is_the_file_as_given(run: Run) -> None:
    copy = run.folder / "mission.yaml"
    assert copy.read_bytes() == mission("evidence_run").read_bytes()  # ${vars.who} unresolved
    start = run.recs[0]
    assert (start["type"], start["phase"]) == ("run_record", "start")
    assert start["attachments"] == [
        {"path": "mission.yaml", "sha256": hashlib.sha256(copy.read_bytes()).hexdigest(),
         "media_type": "application/yaml"}
    ]


def test_envelope_and_gap_free_seq(run: Run) -> None:
    recs = run.recs
    assert [r["seq"] for r in recs] == list(range(1, len(recs) + 1))
    for r in recs:
        assert set(r) >= ENVELOPE, (r["seq"], ENVELOPE - set(r))
        # every type v2+ for actor kind agent; run_record/3, approval_record/3 and pii_finding/3 had a v2 before
        version = 3 if r["type"] in ("run_record", "approval_record", "pii_finding") else 2
        assert r["schema"] == f"warden.{r['type']}/{version}"
        assert r["run_id"] == run.folder.name
        assert r["time"].endswith("Z") and len(r["time"]) == len("2026-01-01T00:00:00.000Z")
    assert len({r["record_id"] for r in recs}) == len(recs)
    assert recs[-1]["type"] == "run_record" and recs[-1]["phase"] == "end" and recs[-1]["outcome"] == "completed"


def test_hash_chain_recomputes_independently(run: Run) -> None:
    prev = GENESIS
    lines = (run.folder / "records.jsonl").read_bytes().splitlines()
    for line in lines:
        rec = json.loads(line)
        assert rec["prev_hash"] == prev, rec["seq"]
        body = {k: v for k, v in rec.items() if k != "hash"}
        assert hashlib.sha256(rfc8785.dumps(body)).hexdigest() == rec["hash"], rec["seq"]
        prev = rec["hash"]
    assert prev == json.loads((run.folder / "run.json").read_text())["chain_head"]


def test_each_step_decision_then_intent_then_outcome(run: Run) -> None:
    recs = run.recs
    for step in range(1, STEPS + 1):
        mine = [r for r in recs if r.get("step") == step and r["type"] in {"decision_record", "action_record"}]
        chain = [r for r in mine if r["type"] == "decision_record" and r["guard"] == "chain"]
        assert len(chain) == 1, f"step {step}: {len(chain)} chain decisions"
        assert chain[0]["decision"] == "allow"
        actions = [r for r in mine if r["type"] == "action_record"]
        assert [a["phase"] for a in actions] == ["intent", "outcome"], step
        intent, outcome = actions
        assert chain[0]["seq"] < intent["seq"] < outcome["seq"]
        assert outcome["intent_id"] == intent["record_id"]
        assert outcome["kind"] == intent["kind"] == chain[0]["kind"]
        assert outcome["outcome"] == "ok"
    kinds = [r["kind"] for r in by_type(recs, "action_record") if r["phase"] == "outcome"]
    assert kinds == ["goto", "fill", "click", "wait_for", "extract", "screenshot", "assert_text"]


def test_one_screenshot_per_step_linked_by_sha256(run: Run) -> None:
    outs = [r for r in run.recs if r["type"] == "action_record" and r["phase"] == "outcome"]
    linked: set[str] = set()
    for out in outs:
        shots = [a for a in out["attachments"] if a["media_type"] == "image/png"]
        assert len(shots) == 1, out["step"]
        path = run.folder / shots[0]["path"]
        assert shots[0]["path"].startswith("screenshots/") and path.is_file()
        assert hashlib.sha256(path.read_bytes()).hexdigest() == shots[0]["sha256"]
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        linked.add(shots[0]["path"])
    on_disk = {f"screenshots/{p.name}" for p in (run.folder / "screenshots").iterdir()}
    assert on_disk == linked  # no orphan, no missing file
    assert any(p.endswith("receipt.png") for p in linked)  # the named screenshot step


def test_the_run_did_what_the_records_say(run: Run) -> None:
    saved = [r for r in run.requests if r.method == "POST" and r.route == "/save"]
    assert len(saved) == 1 and parse_qs(saved[0].body.decode())["name"] == ["Widget Co"]
    click = next(r for r in run.recs if r["type"] == "action_record" and r["phase"] == "outcome" and r["step"] == 3)
    assert click["url_after"].endswith("/save")


def test_sqlite_index_has_the_run_and_its_records(run: Run) -> None:
    db = run.ev / "warden.db"
    assert db.is_file()
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = con.execute(
            "select status, exit_code, chain_head, record_count, folder from runs where run_id = ?", (run.folder.name,)
        ).fetchone()
        query = "select body from records where run_id = ? order by seq"
        bodies = [b for (b,) in con.execute(query, (run.folder.name,))]
        types = Counter(t for (t,) in con.execute("select type from records where run_id = ?", (run.folder.name,)))
    finally:
        con.close()
    recs = run.recs
    assert row is not None
    assert row[:4] == ("completed", 0, recs[-1]["hash"], len(recs))
    assert Path(row[4]).resolve() == run.folder.resolve()
    assert [json.loads(b) for b in bodies] == recs
    assert types == Counter(r["type"] for r in recs)


# --------------------------------------------------------------------------- verify


def test_verify_passes_on_the_untouched_run(run: Run) -> None:
    done = warden("evidence", "verify", run.folder.name, "--evidence-dir", run.ev)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "intact" in done.stdout and run.folder.name in done.stdout
    assert f"{len(run.recs)} records" in done.stdout


@pytest.fixture
def copy(run: Run, tmp_path: Path) -> Path:
    """A copy of the whole evidence dir (folder + index) to tamper with; returns the copied run folder."""
    shutil.copytree(run.ev, tmp_path / "ev")
    return tmp_path / "ev" / "runs" / run.folder.name


def _verify_copy(folder: Path) -> subprocess.CompletedProcess[str]:
    return warden("evidence", "verify", folder, "--evidence-dir", folder.parent.parent)


def test_verify_names_an_edited_record_field(copy: Path) -> None:
    assert _verify_copy(copy).returncode == 0  # the copy itself is intact
    path = copy / "records.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    seq = next(i for i, ln in enumerate(lines, 1) if b'"phase":"outcome"' in ln and b'"kind":"click"' in ln)
    edited = lines[seq - 1].replace(b'"outcome":"ok"', b'"outcome":"failed"', 1)
    assert edited != lines[seq - 1]
    lines[seq - 1] = edited
    path.write_bytes(b"".join(lines))
    done = _verify_copy(copy)
    assert done.returncode == 1, done.stdout
    assert "ALTERED" in done.stdout
    assert f"seq {seq}" in done.stdout, done.stdout  # names the record
    assert "Traceback" not in done.stderr


def test_verify_names_a_screenshot_changed_by_one_byte(copy: Path) -> None:
    shot = sorted((copy / "screenshots").iterdir())[2]
    data = bytearray(shot.read_bytes())
    data[len(data) // 2] ^= 0x01
    shot.write_bytes(bytes(data))
    done = _verify_copy(copy)
    assert done.returncode == 1, done.stdout
    assert shot.name in done.stdout, done.stdout
    assert "ALTERED" in done.stdout


# --------------------------------------------------------------------------- secrets

SECRET = "tok-Zq8v-51x-NOT-IN-EVIDENCE"


def test_secret_value_is_nowhere_in_the_evidence(tmp_path: Path, test_server: TestServer) -> None:
    """``${secrets.X}`` stays as written in mission.yaml; the value is in no file and not in the DB."""
    serve_site(test_server)
    ev = tmp_path / "ev"
    result = run_mission(
        RunOptions(
            mission_path=mission("secret_login"),
            evidence_dir=ev,
            cli_vars={"base": base(test_server)},
            environ={**_base_environ(), "WARDEN_TEST_LOGIN_TOKEN": SECRET},
        ),
        QuietReporter(),
    )
    assert result.exit_code == 0, result
    saved = posts(test_server, "/save")
    assert len(saved) == 1 and parse_qs(saved[0].body.decode())["name"] == [SECRET]  # it was really used
    folder = only_run(ev)
    copy = (folder / "mission.yaml").read_text()
    assert "${secrets.LOGIN_TOKEN}" in copy
    assert copy == mission("secret_login").read_text()
    needles = [SECRET.encode(), SECRET.encode("utf-16-le"), json.dumps(SECRET).encode()]
    leaked = [
        str(p.relative_to(ev)) for p in ev.rglob("*") if p.is_file() and any(n in p.read_bytes() for n in needles)
    ]
    assert leaked == []
    fill = next(r for r in records(folder) if r["type"] == "action_record" and r["phase"] == "outcome"
                and r["kind"] == "fill")
    assert "«secret:LOGIN_TOKEN»" in json.dumps(fill, ensure_ascii=False)


def _base_environ() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_TEST_")}
