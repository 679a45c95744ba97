"""Four-eyes for real: an approval counts only from another OS user, as the kernel's SO_PEERCRED shows.

End to end with real parts: ``warden run --approval queue`` drives Chromium against the local
server; answers come from ``warden approvals approve`` processes, run as this (initiator) account
or — through ``runuser`` — as a throwaway second OS user created for the test, who can reach the
evidence folder because its owner gave a shared group access to it. Every attack is proven by what
the server received (``POST /order``: never) and by the records that explain the refusal.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.approvals.peer import socket_path
from tests.evidence.integrity_support import only_run, records
from tests.runner.helpers.as_user import warden_as
from tests.runner.test_approval_e2e import HOST, of_type, posts, serve_shop, shop_mission
from tests.server import TestServer

pytestmark = pytest.mark.browser

WARDEN = str(Path(sys.executable).parent / "warden")
GROUP = "warden4eyes"
SECOND = "warden4eyes-b"
OUTSIDER = "warden4eyes-c"  # another OS user, not granted the evidence folder
ME = pwd.getpwuid(os.getuid()).pw_name
FOUR_EYES = "approvals:\n  four_eyes: true\n  timeout: 60\n"
STEPS = ["click: {role: button, name: Submit order}", "wait_for: {text: Order received}"]


@pytest.fixture(scope="module")
def second_user() -> Iterator[str]:
    """A real second OS user in a group shared with the evidence folder (created as root, removed after)."""
    if os.getuid() != 0 or not shutil.which("useradd") or not shutil.which("runuser"):
        pytest.skip("needs root with useradd and runuser to create a second OS user")
    subprocess.run(["groupadd", "-f", GROUP], check=True)
    for user, groups in ((SECOND, ["-G", GROUP]), (OUTSIDER, [])):
        subprocess.run(["userdel", user], capture_output=True)
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", *groups, user], check=True)
    try:
        yield SECOND
    finally:
        for user in (SECOND, OUTSIDER):
            subprocess.run(["userdel", user], capture_output=True)
        subprocess.run(["groupdel", GROUP], capture_output=True)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """The evidence folder, its owner (this account) granting the shared group access: setgid, rwx for the group."""
    root = Path(tempfile.mkdtemp(prefix="warden-4eyes-", dir="/tmp"))
    shutil.chown(root, group=GROUP)
    os.chmod(root, 0o2770)  # noqa: S103 - the owner grants the shared group access: the point of the test
    yield root
    shutil.rmtree(root, ignore_errors=True)


class Run:
    """``warden run --approval queue`` in the background, with the umask that keeps the group's access."""

    def __init__(self, mission: Path, evidence_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [WARDEN, "run", str(mission), "--evidence-dir", str(evidence_dir), "--approval", "queue"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True, umask=0o007,
        )
        self.evidence_dir = evidence_dir
        self.stderr: list[str] = []
        assert self.proc.stderr is not None
        while True:
            line = self.proc.stderr.readline()
            assert line, "the run ended before asking: " + "".join(self.stderr)
            self.stderr.append(line)
            found = re.search(r"approval (ap-[0-9a-f]+) pending", line)
            if found:
                self.approval_id = found.group(1)
                break
        deadline = time.monotonic() + 10
        while not socket_path(evidence_dir, self.approval_id).exists():
            assert time.monotonic() < deadline, "no approval socket"
            time.sleep(0.05)

    def wait(self) -> int:
        self.proc.communicate(timeout=120)
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture
def runs() -> Iterator[list[Run]]:
    started: list[Run] = []
    yield started
    for r in started:
        r.kill()


def approve(run: Run, *extra: str, as_user: str | None = None) -> subprocess.CompletedProcess[str]:
    prefix, env = warden_as(as_user) if as_user is not None else ([WARDEN], {**os.environ, "COLUMNS": "200"})
    cmd = [*prefix, "approvals", "approve", run.approval_id, "--evidence-dir", str(run.evidence_dir), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env, cwd="/")


def test_second_os_user_approves_and_the_record_names_both(
    tmp_path: Path, test_server: TestServer, second_user: str, shared_dir: Path, runs: list[Run]
) -> None:
    serve_shop(test_server)
    run = Run(shop_mission(tmp_path, test_server, STEPS, approvals=FOUR_EYES), shared_dir)
    runs.append(run)
    assert posts(test_server) == 0
    ok = approve(run, "--reason", "checked the basket", as_user=second_user)
    assert ok.returncode == 0, ok.stderr
    uid = pwd.getpwnam(second_user).pw_uid
    assert f"by {second_user} (uid {uid}, identity established by so_peercred)" in ok.stdout
    assert run.wait() == 0, "".join(run.stderr)
    assert posts(test_server) == 1  # the server received the order exactly once
    assert not socket_path(shared_dir, run.approval_id).exists()  # the socket goes with the request
    recs = records(only_run(shared_dir))
    (ans,) = of_type(recs, "approval_record")
    assert ans["decision"] == "approved" and ans["channel"] == "queue"
    assert ans["approver"] == second_user and ans["os_user"] == second_user
    assert ans["initiator"] == ME and ans["approver_uid"] == pwd.getpwnam(second_user).pw_uid
    assert ans["identity_method"] == "so_peercred"
    assert re.fullmatch(r"[0-9a-f]{64}", ans["binding"]) and ans["binding"] != ans["action_digest"]
    assert ans["actor"]["id"] == second_user
    allow = [r for r in of_type(recs, "decision_record") if r["guard"] == "approval_gate" and r["decision"] == "allow"]
    assert len(allow) == 1 and allow[0]["subject"]["approval_id"] == run.approval_id


def test_the_initiator_cannot_approve_by_any_route_and_nothing_reaches_the_server(
    tmp_path: Path, test_server: TestServer, second_user: str, shared_dir: Path, runs: list[Run]
) -> None:
    serve_shop(test_server)
    run = Run(shop_mission(tmp_path, test_server, STEPS, approvals=FOUR_EYES), shared_dir)
    runs.append(run)
    # 1. the same OS user at another terminal
    same = approve(run, "--reason", "looks fine")
    assert same.returncode == 3 and "so_peercred" in same.stderr and "stays pending" in same.stderr
    # 2. the initiator's account typing another person's name
    named = approve(run, "--reason", "bob said ok", "--approver", second_user)
    assert named.returncode == 3 and f"OS user '{ME}'" in named.stderr
    # (another OS user the folder's owner did not grant access cannot even reach the request)
    outsider = approve(run, "--reason", "let me", as_user=OUTSIDER)
    assert outsider.returncode != 0 and "recorded:" not in outsider.stdout
    assert posts(test_server) == 0
    # 3. the initiator writing the approvals table directly (the DB is theirs: nothing stops the write)
    with sqlite3.connect(shared_dir / "warden.db") as db:
        db.execute(
            "UPDATE approvals SET status='approved', answered_by=?, answered_os_user=?, answered_at=?, "
            "answer_reason='ok' WHERE approval_id=?",
            (second_user, second_user, "2026-01-01T00:00:00.000Z", run.approval_id),
        )
    assert run.wait() == 3, "".join(run.stderr)
    assert posts(test_server) == 0  # the server never received the order
    recs = records(only_run(shared_dir))
    (ans,) = of_type(recs, "approval_record")
    assert ans["decision"] == "denied" and ans["approver"] is None and ans["identity_method"] == "none"
    assert "did not come over the approval socket" in ans["reason"] and "not accepted" in ans["reason"]
    refused = [r for r in of_type(recs, "decision_record") if r["rule"] == "approvals.four_eyes"]
    assert len(refused) == 3
    assert all("so_peercred" in r["rationale"] or "approval socket" in r["rationale"] for r in refused)
    assert [r for r in recs if r["type"] == "action_record" and r["step"] == 2] == []
    # and the request is closed: the second user can no longer approve it
    late = approve(run, "--reason", "late", as_user=second_user)
    assert late.returncode == 1, late.stderr


def test_a_request_without_its_socket_cannot_be_approved_from_the_table_side(
    tmp_path: Path, test_server: TestServer, second_user: str, shared_dir: Path, runs: list[Run]
) -> None:
    serve_shop(test_server)
    run = Run(shop_mission(tmp_path, test_server, STEPS, approvals=FOUR_EYES), shared_dir)
    runs.append(run)
    # the initiator removes the socket so that an approver's CLI falls back to the table: it does not
    socket_path(shared_dir, run.approval_id).unlink()
    fallback = approve(run, "--reason", "ok", as_user=second_user)
    assert fallback.returncode == 3 and "no approval socket" in fallback.stderr
    deny = subprocess.run(
        [WARDEN, "approvals", "deny", run.approval_id, "--reason", "stop", "--evidence-dir", str(shared_dir)],
        capture_output=True, text=True, timeout=60,
    )
    assert deny.returncode == 0, deny.stderr  # denying stays open to anyone: it is the safe outcome
    assert run.wait() == 3 and posts(test_server) == 0
    assert HOST
