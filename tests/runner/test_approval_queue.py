"""``--approval queue`` across processes: a waiting runner (helpers/queue_ask.py) and ``warden approvals``.

Real SQLite (the evidence database, WAL), real processes: the runner helper and the CLI never
share memory, only the ``approvals`` table.
"""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.approvals.base import ApprovalAsk
from runner.approvals.store import ApprovalStore

HELPER = Path(__file__).parent / "helpers" / "queue_ask.py"
WARDEN = Path(sys.executable).parent / "warden"
ME = pwd.getpwuid(os.getuid()).pw_name


def warden(*args: str, evidence_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(WARDEN), *args, "--evidence-dir", str(evidence_dir)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"},
    )


class Runner:
    def __init__(self, evidence_dir: Path, approval_id: str, *args: str) -> None:
        self.out = evidence_dir.parent / f"{approval_id}.answer.json"
        self.proc = subprocess.Popen(
            [sys.executable, str(HELPER), "--evidence-dir", str(evidence_dir), "--out", str(self.out),
             "--id", approval_id, *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.strip() == f"PENDING {approval_id}", (line, self.proc.stderr.read() if self.proc.stderr else "")

    def answer(self) -> dict[str, Any]:
        self.proc.wait(timeout=30)
        assert self.proc.returncode == 0, self.proc.stderr.read() if self.proc.stderr else ""
        data: dict[str, Any] = json.loads(self.out.read_text())
        return data


@pytest.fixture
def evidence_dir(tmp_path: Path) -> Path:
    return tmp_path / "evidence"


@pytest.fixture
def runners() -> Iterator[list[Runner]]:
    started: list[Runner] = []
    yield started
    for r in started:
        if r.proc.poll() is None:
            r.proc.kill()
            r.proc.wait()


def _start(runners: list[Runner], evidence_dir: Path, approval_id: str, *args: str) -> Runner:
    r = Runner(evidence_dir, approval_id, *args)
    runners.append(r)
    return r


def _status(evidence_dir: Path, approval_id: str) -> str:
    store = ApprovalStore(evidence_dir)
    try:
        row = store.get(approval_id)
        assert row is not None
        return row.status
    finally:
        store.close()


# ----------------------------------------------------------------------------- answering from another process


def test_approve_from_another_terminal(evidence_dir: Path, runners: list[Runner]) -> None:
    runner = _start(runners, evidence_dir, "ap-7f3a9c01")
    listed = warden("approvals", "list", evidence_dir=evidence_dir)
    assert listed.returncode == 0
    assert "ap-7f3a9c01" in listed.stdout and "pending" in listed.stdout
    shown = warden("approvals", "show", "ap-7f3a", evidence_dir=evidence_dir)
    assert shown.returncode == 0
    assert "Irreversible money movement" in shown.stdout and "Pay now" in shown.stdout
    assert "\x1b" not in shown.stdout  # page text ("Pay \x1b[31mnow") is sanitised for the terminal too
    done = warden("approvals", "approve", "ap-7f3a", "--reason", "checked the invoice", "--approver", "bob",
                  evidence_dir=evidence_dir)
    assert done.returncode == 0, done.stderr
    assert "approved by bob" in done.stdout
    ans = runner.answer()
    assert ans["decision"] == "approved"
    assert ans["approver"] == "bob" and ans["os_user"] == ME
    assert ans["reason"] == "checked the invoice"
    assert ans["channel"] == "queue"
    assert _status(evidence_dir, "ap-7f3a9c01") == "approved"


def test_deny_from_another_terminal(evidence_dir: Path, runners: list[Runner]) -> None:
    runner = _start(runners, evidence_dir, "ap-deny0001")
    done = warden("approvals", "deny", "ap-deny", "--reason", "wrong vendor", evidence_dir=evidence_dir)
    assert done.returncode == 0, done.stderr
    ans = runner.answer()
    assert ans["decision"] == "denied" and ans["reason"] == "wrong vendor" and ans["approver"] == ME


def test_two_concurrent_answers_exactly_one_wins(evidence_dir: Path, runners: list[Runner]) -> None:
    runner = _start(runners, evidence_dir, "ap-race0001")
    procs = [
        subprocess.Popen(
            [str(WARDEN), "approvals", verb, "ap-race0001", "--reason", f"by {who}", "--approver", who,
             "--evidence-dir", str(evidence_dir)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for verb, who in (("approve", "bob"), ("deny", "carol"), ("approve", "dave"), ("deny", "erin"))
    ]
    results = [(p.wait(timeout=60), *p.communicate()) for p in procs]
    codes = [r[0] for r in results]
    assert sorted(codes) == [0, 1, 1, 1], results
    winner = ("bob", "carol", "dave", "erin")[codes.index(0)]
    for code, _out, err in results:
        if code == 1:
            assert f"already answered by {winner} at " in err
    ans = runner.answer()
    assert ans["approver"] == winner
    assert ans["decision"] == ("approved" if winner in ("bob", "dave") else "denied")


# ----------------------------------------------------------------------------- expiry and crashes


def test_no_answer_expires_and_a_late_answer_is_refused(evidence_dir: Path, runners: list[Runner]) -> None:
    runner = _start(runners, evidence_dir, "ap-late0001", "--timeout", "1")
    ans = runner.answer()
    assert ans["decision"] == "expired"
    late = warden("approvals", "approve", "ap-late", "--reason", "sorry, late", evidence_dir=evidence_dir)
    assert late.returncode == 1
    assert "already expired" in late.stderr
    assert _status(evidence_dir, "ap-late0001") == "expired"


def test_crashed_waiter_is_expired_at_the_next_command_never_approved(
    evidence_dir: Path, runners: list[Runner]
) -> None:
    runner = _start(runners, evidence_dir, "ap-crash001", "--timeout", "600")
    runner.proc.kill()  # SIGKILL: no chance to clean up
    runner.proc.wait()
    assert _status(evidence_dir, "ap-crash001") == "pending"  # nothing touched it yet
    other = warden("evidence", "recover", evidence_dir=evidence_dir)  # the explicit recovery step
    assert other.returncode == 0, other.stderr
    store = ApprovalStore(evidence_dir)
    row = store.get("ap-crash001")
    assert row is not None and row.status == "expired"
    assert "is gone" in (row.answer_reason or "") and row.answered_by is None
    store.close()
    after = warden("approvals", "approve", "ap-crash", "--reason", "too late", evidence_dir=evidence_dir)
    assert after.returncode == 1 and "already expired" in after.stderr


def test_approvals_list_expires_abandoned_requests(evidence_dir: Path, runners: list[Runner]) -> None:
    runner = _start(runners, evidence_dir, "ap-crash002", "--timeout", "600")
    runner.proc.kill()
    runner.proc.wait()
    listed = warden("approvals", "list", "--all", evidence_dir=evidence_dir)
    assert listed.returncode == 0
    assert "ap-crash002" in listed.stdout and "expired" in listed.stdout
    assert "no pending" in warden("approvals", "list", evidence_dir=evidence_dir).stdout


def test_interrupted_runner_withdraws_its_request(evidence_dir: Path, runners: list[Runner]) -> None:
    runner = _start(runners, evidence_dir, "ap-intr0001", "--timeout", "600")
    runner.proc.send_signal(signal.SIGINT)
    ans = runner.answer()
    assert ans["decision"] == "denied" and "Ctrl-C" in ans["reason"]
    assert _status(evidence_dir, "ap-intr0001") == "denied"


# ----------------------------------------------------------------------------- policy at answer time


def test_four_eyes_refuses_the_initiator_under_any_name_and_the_request_stays_pending(
    evidence_dir: Path, runners: list[Runner]
) -> None:
    # the runner and this CLI run as the same OS user: the kernel says so, whatever name is typed
    runner = _start(runners, evidence_dir, "ap-eyes0001", "--initiator", "alice", "--four-eyes", "--timeout", "600")
    for name in ("alice", "bob"):
        refused = warden("approvals", "approve", "ap-eyes", "--reason", "mine", "--approver", name,
                         evidence_dir=evidence_dir)
        assert refused.returncode == 3, refused.stderr
        assert "four_eyes" in refused.stderr and "stays pending" in refused.stderr
        assert f"OS user '{ME}'" in refused.stderr and "so_peercred" in refused.stderr
        assert _status(evidence_dir, "ap-eyes0001") == "pending"
    # denying stays open to the initiator too (over the socket): it is the safe outcome
    denied = warden("approvals", "deny", "ap-eyes", "--reason", "never mind", evidence_dir=evidence_dir)
    assert denied.returncode == 0, denied.stderr
    ans = runner.answer()
    assert ans["decision"] == "denied" and ans["identity_method"] == "so_peercred"
    assert [r.split(" ", 1)[0] for r in ans["refusals"]] == ["alice", "bob"]


def test_four_eyes_checks_the_os_account_not_just_the_claimed_name(
    evidence_dir: Path, runners: list[Runner]
) -> None:
    runner = _start(runners, evidence_dir, "ap-eyes0002", "--initiator", ME, "--four-eyes")
    refused = warden("approvals", "approve", "ap-eyes0002", "--reason", "x", "--approver", "someone-else",
                     evidence_dir=evidence_dir)
    assert refused.returncode == 3 and f"OS user '{ME}'" in refused.stderr
    # denying stays open to anyone: it is the safe outcome
    denied = warden("approvals", "deny", "ap-eyes0002", "--reason", "withdrawn", evidence_dir=evidence_dir)
    assert denied.returncode == 0, denied.stderr
    ans = runner.answer()
    assert ans["decision"] == "denied" and ans["refusals"][0].startswith("someone-else (OS user")


def test_approver_not_in_the_list_is_refused(evidence_dir: Path, runners: list[Runner]) -> None:
    runner = _start(runners, evidence_dir, "ap-list0001", "--approvers", "alice,bob")
    refused = warden("approvals", "approve", "ap-list", "--reason", "x", "--approver", "carol",
                     evidence_dir=evidence_dir)
    assert refused.returncode == 3 and "not in approvals.approvers" in refused.stderr
    ok = warden("approvals", "approve", "ap-list", "--reason", "listed", "--approver", "alice",
                evidence_dir=evidence_dir)
    assert ok.returncode == 0
    assert runner.answer()["approver"] == "alice"


# ----------------------------------------------------------------------------- usage


def test_show_prints_the_screenshot_path_and_id_on_lines_of_their_own(
    evidence_dir: Path, runners: list[Runner]
) -> None:
    _start(runners, evidence_dir, "ap-show00001")
    shown = subprocess.run(
        [str(WARDEN), "approvals", "show", "ap-show", "--evidence-dir", str(evidence_dir)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "40"},
    )
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "screenshots/x.png" in lines and "ap-show00001" in lines  # not inside the panel's border


def test_usage_errors_exit_2(evidence_dir: Path, runners: list[Runner]) -> None:
    _start(runners, evidence_dir, "ap-use00001")
    _start(runners, evidence_dir, "ap-use00002")
    ambiguous = warden("approvals", "approve", "ap-use", "--reason", "x", evidence_dir=evidence_dir)
    assert ambiguous.returncode == 2 and "ambiguous" in ambiguous.stderr
    unknown = warden("approvals", "show", "nope", evidence_dir=evidence_dir)
    assert unknown.returncode == 2 and "no approval request matches" in unknown.stderr
    empty = warden("approvals", "approve", "ap-use00001", "--reason", "  ", evidence_dir=evidence_dir)
    assert empty.returncode == 2 and "--reason" in empty.stderr
    missing = warden("approvals", "approve", "ap-use00001", evidence_dir=evidence_dir)
    assert missing.returncode == 2
    assert _status(evidence_dir, "ap-use00001") == "pending"
    nodb = warden("approvals", "list", evidence_dir=evidence_dir.parent / "elsewhere")
    assert nodb.returncode == 2 and not (evidence_dir.parent / "elsewhere").exists()


# ----------------------------------------------------------------------------- the store's one deciding write


def _ask(approval_id: str, timeout: float = 60.0) -> ApprovalAsk:
    return ApprovalAsk(
        approval_id=approval_id, run_id="r", mission_id="m", step=1, total_steps=1, kind="click",
        target={}, page_url="https://x.example/", zone="z", rule="r", reason="", risk_score=None, screenshot=None,
        action_digest="0" * 64, expires_at="2099-01-01T00:00:00.000Z", timeout_s=timeout, initiator="alice",
    )


def test_store_answer_after_expiry_loses_and_reap_never_approves(tmp_path: Path) -> None:
    store = ApprovalStore(tmp_path)
    t0 = time.time()
    store.submit(_ask("s1", timeout=10), approvers=None, four_eyes=False, now=t0)
    late = store.answer("s1", "approved", "bob", "bob", "late", now=t0 + 11)
    assert not late.won and late.row.status == "pending"
    assert store.reap(now=t0 + 11) == ["s1"]
    row = store.get("s1")
    assert row is not None and row.status == "expired" and row.answered_by is None
    assert not store.answer("s1", "approved", "bob", "bob", "later", now=t0 + 12).won
    store.close()


# ----------------------------------------------------------------------------- nothing sensitive in a column

def _mask(text: str) -> str:
    """A stand-in for the run's redactor: what it would detect here is the e-mail and the phone."""
    return text.replace("canary.alice.7f3k@example.com", "«pii:EMAIL_ADDRESS»").replace(
        "(212) 555-0143", "«pii:PHONE_NUMBER»")


def _row_values(evidence_dir: Path) -> list[str]:
    import sqlite3

    with sqlite3.connect(evidence_dir / "warden.db") as db:
        return [str(v) for row in db.execute("SELECT * FROM approvals") for v in row]


def test_store_writes_page_text_redacted_and_the_url_without_its_query(tmp_path: Path) -> None:
    store = ApprovalStore(tmp_path)
    ask = ApprovalAsk(
        approval_id="ap-0123456789abcdef", run_id="r", mission_id="m", step=1, total_steps=1, kind="click",
        target={"text": "Pay canary.alice.7f3k@example.com", "step_target": {"name": "Call (212) 555-0143"}},
        page_url="https://x.example/pay/canary.alice.7f3k@example.com?email=canary.alice.7f3k%40example.com#f",
        zone="payments", rule="danger_zones.pay", reason="pays (212) 555-0143", risk_score=None, screenshot=None,
        action_digest="0" * 64, expires_at="2099-01-01T00:00:00.000Z", timeout_s=60, initiator="alice",
    )
    store.submit(ask, approvers=None, four_eyes=False, redact=_mask)
    row = store.get(ask.approval_id)
    assert row is not None
    assert row.target_dict() == {"text": "Pay «pii:EMAIL_ADDRESS»", "step_target": {"name": "Call «pii:PHONE_NUMBER»"}}
    assert row.page_url == "https://x.example/pay/«pii:EMAIL_ADDRESS»?…"
    assert row.reason == "pays «pii:PHONE_NUMBER»"
    values = " ".join(_row_values(tmp_path))
    assert "canary.alice" not in values and "555-0143" not in values and "%40" not in values
    store.close()


def test_scrub_rewrites_what_the_approver_typed_once_answered_only(tmp_path: Path) -> None:
    store = ApprovalStore(tmp_path)
    store.submit(_ask("ap-scrub0001"), approvers=["canary.alice.7f3k@example.com", "bob"], four_eyes=False)
    store.add_refusal("ap-scrub0001", "mallory: called (212) 555-0143")
    assert not store.scrub("ap-scrub0001", _mask)  # pending: its policy is still needed, untouched
    assert "(212) 555-0143" in " ".join(_row_values(tmp_path))
    won = store.answer("ap-scrub0001", "approved", "canary.alice.7f3k@example.com", "alice",
                       "called (212) 555-0143 to confirm")
    assert won.won
    assert store.scrub("ap-scrub0001", _mask)
    row = store.get("ap-scrub0001")
    assert row is not None and row.status == "approved"
    assert row.answer_reason == "called «pii:PHONE_NUMBER» to confirm"
    assert row.answered_by == "«pii:EMAIL_ADDRESS»"
    assert row.refusal_list() == ["mallory: called «pii:PHONE_NUMBER»"]
    assert row.approver_list() == ["«pii:EMAIL_ADDRESS»", "bob"]
    values = " ".join(_row_values(tmp_path))
    assert "canary.alice" not in values and "555-0143" not in values
    store.close()


def test_queue_channel_stores_redacted_and_scrubs_the_answer(tmp_path: Path) -> None:
    """In one process: the channel's store write and its scrub after reading go through the bound redactor."""
    import threading

    from runner.approvals.queue import QueueChannel

    class Masker:
        def redact(self, text: str) -> str:
            return _mask(text)

    store = ApprovalStore(tmp_path)
    channel = QueueChannel(store, poll_s=0.05, notify=lambda _m: None)
    channel.bind_redactor(Masker())
    ask = ApprovalAsk(
        approval_id="ap-chan00000001", run_id="r", mission_id="m", step=1, total_steps=1, kind="click",
        target={"text": "Pay canary.alice.7f3k@example.com"}, page_url="https://x.example/?p=(212) 555-0143",
        zone="z", rule="r", reason="", risk_score=None, screenshot=None, action_digest="0" * 64,
        expires_at="2099-01-01T00:00:00.000Z", timeout_s=30, initiator="alice",
    )

    def approve_when_pending() -> None:
        for _ in range(200):
            if store.get(ask.approval_id) is not None:
                store.answer(ask.approval_id, "approved", "bob", "bob", "ok for canary.alice.7f3k@example.com")
                return
            time.sleep(0.05)

    t = threading.Thread(target=approve_when_pending)
    t.start()
    answer = channel.ask(ask, lambda _a: None)
    t.join(10)
    assert answer.decision == "approved" and answer.reason == "ok for canary.alice.7f3k@example.com"  # to the gate
    values = " ".join(_row_values(tmp_path))
    assert "canary.alice" not in values and "555-0143" not in values
    row = store.get(ask.approval_id)
    assert row is not None and row.answer_reason == "ok for «pii:EMAIL_ADDRESS»" and row.page_url == "https://x.example/?…"
    store.close()
