"""Tamper evidence on a real run (Chromium + local server): every byte flip and every structured attack."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from evidence.index import EvidenceIndex
from evidence.signing import keygen, load_public_key
from evidence.verify import VerifyReport, verify_run
from tests.evidence.conftest import Tamper
from tests.evidence.integrity_support import mission_yaml, run, serve_pages, short_steps, write_mission
from tests.server import TestServer

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def keypair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return keygen(tmp_path_factory.mktemp("keys") / "warden.key")


@pytest.fixture(scope="module")
def pristine(
    tmp_path_factory: pytest.TempPathFactory, test_server_session: TestServer, keypair: tuple[Path, Path]
) -> Path:
    """One real, signed run (3 steps with screenshots) in its own evidence dir; copied per test."""
    test_server_session.reset()
    serve_pages(test_server_session)
    base = tmp_path_factory.mktemp("pristine")
    mission = write_mission(base, mission_yaml(test_server_session, short_steps(test_server_session)))
    code, result = run(mission, base / "ev", environ={**os.environ, "WARDEN_SIGNING_KEY": str(keypair[0])})
    assert code == 0, result
    return base / "ev"


@pytest.fixture
def ev(pristine: Path, tmp_path: Path) -> Path:
    target = tmp_path / "ev"
    shutil.copytree(pristine, target)
    return target


@pytest.fixture
def folder(ev: Path) -> Path:
    return next((ev / "runs").iterdir())


@pytest.fixture
def index(ev: Path) -> Iterator[EvidenceIndex]:
    idx = EvidenceIndex(ev)
    yield idx
    idx.close()


def _verify(folder: Path, index: EvidenceIndex | None = None, key: Path | None = None) -> VerifyReport:
    return verify_run(folder, index, load_public_key(key) if key else None)


def _tamper(folder: Path) -> Tamper:
    from evidence.runfolder import RunFolder

    return Tamper(RunFolder(folder))


def test_pristine_run_verifies_with_index_and_signature(
    folder: Path, index: EvidenceIndex, keypair: tuple[Path, Path]
) -> None:
    report = _verify(folder, index, keypair[1])
    assert report.ok, report.problems
    assert report.status == "completed"
    assert report.attachments_checked >= 4
    assert any("signature valid" in n for n in report.notes)
    info = json.loads((folder / "run.json").read_text())
    assert info["signed"] is True and info["signing_key_id"] and info["signature"]


@pytest.fixture(scope="module")
def one_step_run(tmp_path_factory: pytest.TempPathFactory, test_server_session: TestServer) -> Path:
    """A real one-step run (goto + screenshot): small, so every byte can be flipped in a few seconds."""
    test_server_session.reset()
    serve_pages(test_server_session)
    base = tmp_path_factory.mktemp("one-step")
    steps = [f"goto: {test_server_session.url('allowed.localhost', '/a')}"]
    code, result = run(write_mission(base, mission_yaml(test_server_session, steps)), base / "ev")
    assert code == 0 and result is not None and result.folder is not None
    return result.folder


@pytest.mark.parametrize("pattern", [0x01, 0x20])
def test_every_single_byte_flip_of_records_is_caught(one_step_run: Path, pattern: int) -> None:
    folder = one_step_run
    path = folder / "records.jsonl"
    original = path.read_bytes()
    missed = []
    try:
        for i in range(len(original)):
            flipped = bytearray(original)
            flipped[i] ^= pattern
            path.write_bytes(bytes(flipped))
            if verify_run(folder).ok:
                missed.append(i)
    finally:
        path.write_bytes(original)
    assert verify_run(folder).ok
    context = ", ".join(repr(original[max(0, i - 20): i + 20]) for i in missed[:3])
    assert not missed, f"{len(missed)} flips (XOR {pattern:#04x}) not caught, at bytes {missed[:5]}: {context}"


Edit = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


def _edit_field(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    recs[3]["call"] = recs[3]["call"] + " "
    return recs


def _rehash_alone(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    recs[3]["call"] = "page.goto('https://evil.example/')"
    recs[3] = Tamper.rehash(recs[3])
    return recs


def _insert(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    fake = Tamper.rehash({**recs[3], "record_id": "00000000-0000-4000-8000-000000000000", "call": "inserted"})
    return [*recs[:4], fake, *recs[4:]]


ATTACKS: dict[str, tuple[Edit, str]] = {
    "edited field": (_edit_field, "hash mismatch — record edited"),
    "deleted record": (lambda r: r[:4] + r[5:], "seq gap"),
    "duplicated record": (lambda r: [*r[:4], r[3], *r[4:]], "duplicate"),
    "reordered records": (lambda r: [*r[:3], r[4], r[3], *r[5:]], "out of order"),
    "inserted record": (_insert, "appears twice"),
    "record rehashed alone": (_rehash_alone, "prev_hash does not match"),
    "last record rehashed alone": (lambda r: [*r[:-1], Tamper.rehash({**r[-1], "outcome": "stopped"})], "chain_head"),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_structured_attacks_are_named(folder: Path, index: EvidenceIndex, attack: str) -> None:
    edit, expected = ATTACKS[attack]
    t = _tamper(folder)
    t.write(edit(t.lines()))
    report = _verify(folder, index)
    assert not report.ok
    assert any(expected in p for p in report.problems), report.problems


def _shots(folder: Path) -> list[Path]:
    return sorted((folder / "screenshots").iterdir())


def test_changed_missing_and_extra_attachments(folder: Path) -> None:
    shots = _shots(folder)
    data = bytearray(shots[0].read_bytes())
    data[len(data) // 2] ^= 0xFF
    shots[0].write_bytes(bytes(data))
    shots[1].unlink()
    (folder / "screenshots" / "9999-step99-after.png").write_bytes(b"\x89PNG planted")
    problems = _verify(folder).problems

    def rel(p: Path) -> str:
        return p.relative_to(folder).as_posix()

    assert f"{rel(shots[0])}: sha256 mismatch — attachment changed" in problems
    assert any(p.startswith(f"{rel(shots[1])}: missing") for p in problems)
    assert any(p.startswith("screenshots/9999-step99-after.png: extra attachment") for p in problems)


def test_tail_cut_with_fixed_run_json_is_caught_by_the_index_head(folder: Path, index: EvidenceIndex) -> None:
    t = _tamper(folder)
    recs = t.lines()[:-3]
    t.write(recs)
    info = json.loads((folder / "run.json").read_text())
    info.update(chain_head=recs[-1]["hash"], record_count=len(recs))
    (folder / "run.json").write_text(json.dumps(info))
    assert _verify(folder).ok is False  # the last record is no closing run_record
    report = _verify(folder, index)
    assert any("cut from the tail" in p for p in report.problems), report.problems


def test_run_json_head_mismatch(folder: Path) -> None:
    info = json.loads((folder / "run.json").read_text())
    info["chain_head"] = "ab" * 32
    (folder / "run.json").write_text(json.dumps(info))
    assert any("run.json: chain_head" in p for p in _verify(folder).problems)


def _full_rewrite(folder: Path) -> None:
    """An attacker with file access (no key): edit a record, rechain everything, fix run.json."""
    t = _tamper(folder)
    recs = t.lines()
    recs[3]["call"] = "page.goto('https://evil.example/')"
    recs = t.rechain(recs)
    t.write(recs)
    info = json.loads((folder / "run.json").read_text())
    info.update(chain_head=recs[-1]["hash"], record_count=len(recs))
    (folder / "run.json").write_text(json.dumps(info, indent=2))


def test_full_rewrite_passes_without_key_or_index_but_is_caught_by_either(
    folder: Path, index: EvidenceIndex, keypair: tuple[Path, Path]
) -> None:
    _full_rewrite(folder)
    bare = _verify(folder)
    assert bare.ok  # the documented limit: the chain alone cannot catch a whole rewrite
    assert any("signed by key" in n for n in bare.notes)
    assert not _verify(folder, index).ok
    signed = _verify(folder, None, keypair[1])
    assert not signed.ok
    assert any("signature does not match" in p for p in signed.problems), signed.problems


def test_signature_stripped_or_other_key(folder: Path, tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    _, other_pub = keygen(tmp_path / "other.key")
    assert any("signed by key" in p for p in _verify(folder, None, other_pub).problems)
    info = json.loads((folder / "run.json").read_text())
    info.update(signed=False, signature=None, signing_key_id=None)
    (folder / "run.json").write_text(json.dumps(info))
    assert any("not signed" in p for p in _verify(folder, None, keypair[1]).problems)


def test_cli_verify_all_and_public_key(ev: Path, folder: Path, keypair: tuple[Path, Path], tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "runner.cli", "evidence", "verify", "--evidence-dir", str(ev)]
    done = subprocess.run([*cmd, "--all", "--public-key", str(keypair[1])], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all 1 run(s) intact" in done.stdout
    shutil.copytree(folder, ev / "runs" / (folder.name + "-copy"))  # a second folder: its name is not its run_id
    _edit_field_file(folder)
    done = subprocess.run([*cmd, "--all"], capture_output=True, text=True)
    assert done.returncode == 1
    assert "hash mismatch" in done.stdout and "does not match the folder name" in done.stdout
    assert "2 of 2 run(s) failed verification" in done.stdout
    done = subprocess.run([*cmd], capture_output=True, text=True)
    assert done.returncode == 2  # neither RUN nor --all


def _edit_field_file(folder: Path) -> None:
    t = _tamper(folder)
    t.write(_edit_field(t.lines()))
