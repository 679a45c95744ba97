"""The terminal prompt on a real pty (pexpect), the deny channel, and sanitising page text.

Each pty test spawns ``helpers/prompt_ask.py``, whose controlling terminal is the pty: the
channel opens ``/dev/tty`` exactly as in production, and the answer comes back as JSON.
"""

from __future__ import annotations

import io
import json
import os
import pwd
import re
import shlex
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.approvals.base import ApprovalAsk
from runner.approvals.common import policy_eligibility
from runner.approvals.deny import DENY_REASON, DenyChannel
from runner.approvals.prompt import PromptChannel
from runner.approvals.sanitize import FORBIDDEN, sanitize

HELPER = Path(__file__).parent / "helpers" / "prompt_ask.py"
TOKEN_PROMPT = "Type approve or deny: "
REASON_PROMPT = r"Reason for '(approve|deny)' \(required\): "
ME = pwd.getpwuid(os.getuid()).pw_name


class Prompt:
    """One helper process on its own pty, plus everything it wrote to the terminal."""

    def __init__(
        self, out: Path, *args: str, stdin_text: str | None = None, env: dict[str, str] | None = None,
        columns: int = 120,
    ):
        self.out = out
        self.screen = io.StringIO()
        cmd = [sys.executable, str(HELPER), "--out", str(out), *args]
        if stdin_text is not None:
            line = f"printf %s {shlex.quote(stdin_text)} | {shlex.join(cmd)}"
            cmd = ["/bin/sh", "-c", line]
        self.child = pexpect.spawn(
            cmd[0], cmd[1:], encoding="utf-8", codec_errors="replace", timeout=15,
            dimensions=(50, columns), env={**os.environ, **(env or {})},
        )
        self.child.logfile_read = self.screen

    def expect(self, pattern: str) -> None:
        self.child.expect(pattern)

    def answer(self) -> dict[str, Any]:
        self.child.expect("HELPER-DONE")
        self.child.expect(pexpect.EOF)
        self.child.close()
        data: dict[str, Any] = json.loads(self.out.read_text())
        return data


@pytest.fixture
def prompt(tmp_path: Path) -> Iterator[Any]:
    spawned: list[Prompt] = []

    def start(*args: str, **kw: Any) -> Prompt:
        p = Prompt(tmp_path / f"answer{len(spawned)}.json", *args, **kw)
        spawned.append(p)
        return p

    yield start
    for p in spawned:
        if p.child.isalive():
            p.child.terminate(force=True)


# ----------------------------------------------------------------------------- the happy paths


def test_approve_with_reason_records_approver_and_os_user(prompt: Any) -> None:
    p = prompt("--approver", "bob", env={"USER": "mallory", "LOGNAME": "mallory"})
    p.expect(TOKEN_PROMPT)
    p.child.sendline("approve")
    p.expect(REASON_PROMPT)
    p.child.sendline("invoice 42 checked against the PO")
    ans = p.answer()
    assert ans["decision"] == "approved"
    assert ans["approver"] == "bob"
    assert ans["reason"] == "invoice 42 checked against the PO"
    assert ans["channel"] == "prompt"
    # the OS user is the terminal's owner, never $USER
    assert ans["os_user"] == ME != "mallory"
    assert ans["refusals"] == []


def test_panel_shows_what_will_happen(prompt: Any) -> None:
    p = prompt()
    p.expect(TOKEN_PROMPT)
    p.child.sendline("deny")
    p.expect(REASON_PROMPT)
    p.child.sendline("not today")
    p.answer()
    screen = p.screen.getvalue()
    for shown in (
        "APPROVAL REQUIRED", "demo", "6/11", "click", "Submit payment", "button", "#pay",
        "https://portal.example.com/pay", "payment", "Irreversible money movement", "18/100",
        "screenshots/0007-step06-approval.png", "ap-0001-test", "2099-01-01T00:00:00.000Z",
    ):
        assert shown in screen, shown


def test_deny_with_reason(prompt: Any) -> None:
    p = prompt()
    p.expect(TOKEN_PROMPT)
    p.child.sendline("deny")
    p.expect(REASON_PROMPT)
    p.child.sendline("wrong amount")
    ans = p.answer()
    assert ans["decision"] == "denied"
    assert ans["reason"] == "wrong amount"
    assert ans["approver"] == ME  # no --approver: the OS user answers


@pytest.mark.parametrize("wrong", ["y", "yes", "Approve", "approve ", " approve", "APPROVE", "аpprove", "approved"])
def test_anything_but_the_exact_token_asks_again(prompt: Any, wrong: str) -> None:
    p = prompt()
    p.expect(TOKEN_PROMPT)
    p.child.sendline(wrong)
    p.expect("please type exactly 'approve' or 'deny'")
    p.expect(TOKEN_PROMPT)  # asked again, nothing decided
    p.child.sendline("deny")
    p.expect(REASON_PROMPT)
    p.child.sendline("testing look-alikes")
    ans = p.answer()
    assert ans["decision"] == "denied"


def test_empty_reason_asks_again(prompt: Any) -> None:
    p = prompt()
    p.expect(TOKEN_PROMPT)
    p.child.sendline("approve")
    p.expect(REASON_PROMPT)
    p.child.sendline("")
    p.expect("a reason is required")
    p.expect(REASON_PROMPT)
    p.child.sendline("   ")
    p.expect("a reason is required")
    p.expect(REASON_PROMPT)
    p.child.sendline("ok now")
    ans = p.answer()
    assert ans["decision"] == "approved"
    assert ans["reason"] == "ok now"


# ----------------------------------------------------------------------------- default deny


def test_eof_denies(prompt: Any) -> None:
    p = prompt()
    p.expect(TOKEN_PROMPT)
    p.child.sendeof()
    ans = p.answer()
    assert ans["decision"] == "denied"
    assert "EOF" in ans["reason"]
    assert ans["approver"] is None


def test_eof_at_the_reason_denies_even_after_approve(prompt: Any) -> None:
    p = prompt()
    p.expect(TOKEN_PROMPT)
    p.child.sendline("approve")
    p.expect(REASON_PROMPT)
    p.child.sendeof()
    ans = p.answer()
    assert ans["decision"] == "denied"


def test_ctrl_c_denies(prompt: Any) -> None:
    p = prompt()
    p.expect(TOKEN_PROMPT)
    p.child.sendintr()
    ans = p.answer()
    assert ans["decision"] == "denied"
    assert "Ctrl-C" in ans["reason"]


def test_timeout_expires_measured_from_the_ask(prompt: Any) -> None:
    p = prompt("--timeout", "1.0")
    p.expect(TOKEN_PROMPT)
    started = time.monotonic()
    p.child.send("appr")  # a half-typed answer does not keep the request alive
    ans = p.answer()
    elapsed = time.monotonic() - started
    assert ans["decision"] == "expired"
    assert elapsed < 5
    assert "expired" in p.screen.getvalue()


def test_stdin_cannot_answer(prompt: Any) -> None:
    """The mission's stdin is a pipe full of 'approve': the prompt reads the terminal and times out."""
    p = prompt("--timeout", "1.5", stdin_text="approve\nok\n")
    p.expect(TOKEN_PROMPT)
    ans = p.answer()
    assert ans["decision"] == "expired"
    assert ans["reason"] == "approval timed out"


def test_typeahead_before_the_question_is_discarded(prompt: Any) -> None:
    p = prompt("--timeout", "1.5")
    p.child.send("approve\nsneaky\n")  # typed (or injected) before the panel was shown
    p.expect(TOKEN_PROMPT)
    ans = p.answer()
    assert ans["decision"] == "expired"


# ----------------------------------------------------------------------------- eligibility


def test_four_eyes_is_refused_at_the_prompt_and_it_says_how_to_approve(prompt: Any) -> None:
    # a terminal cannot prove a second person: neither the initiator's name nor another typed name counts
    p = prompt("--approver", "bob", "--initiator", "alice", "--four-eyes")
    p.expect("four_eyes: the terminal prompt cannot prove a second person")
    ans = p.answer()
    screen = " ".join(p.screen.getvalue().split())
    assert TOKEN_PROMPT not in screen  # nobody is even asked
    assert "--approval queue" in screen and "another OS user" in screen
    lines = [line.strip("\r") for line in p.screen.getvalue().split("\n")]
    assert "warden approvals approve ap-0001-test --reason TEXT --evidence-dir DIR" in lines  # copyable
    assert ans["decision"] == "denied" and ans["approver"] is None
    assert ans["identity_method"] == "none"
    assert len(ans["refusals"]) == 1 and "four_eyes" in ans["refusals"][0]


def test_panel_prints_screenshot_path_and_id_on_lines_of_their_own_on_a_narrow_terminal(prompt: Any) -> None:
    shot = "/srv/warden-evidence/runs/20260101T000000000Z-shop-order-abc123/screenshots/" + "x" * 60 + ".png"
    approval_id = "ap-" + "0123456789abcdef" * 3
    p = prompt("--screenshot", shot, "--id", approval_id, columns=40)
    p.expect(TOKEN_PROMPT)
    p.child.sendline("deny")
    p.expect(REASON_PROMPT)
    p.child.sendline("no")
    p.answer()
    lines = [line.strip("\r") for line in p.screen.getvalue().split("\n")]
    assert shot in lines and approval_id in lines  # whole, unwrapped, alone on its line
    plain = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in lines]
    assert any("│" in line for line in plain)
    assert all(len(line) <= 40 for line in plain if "│" in line or "╭" in line)  # the panel fits the width
    assert not any(shot[:30] in line for line in plain if "│" in line)  # the path is not inside the border


def test_approver_not_in_list_is_refused_until_expiry(prompt: Any) -> None:
    p = prompt("--approver", "carol", "--approvers", "alice,bob", "--timeout", "5")
    p.expect(TOKEN_PROMPT)
    p.child.sendline("approve")
    p.expect("refused: 'carol' is not in approvals.approvers")
    p.expect("Another approver's name")
    p.child.sendline("mallory")
    p.expect(TOKEN_PROMPT)
    p.child.sendline("approve")
    p.expect("refused: 'mallory'")
    ans = p.answer()  # nobody eligible answered: the request expires
    assert ans["decision"] == "expired"
    assert [r.split(":")[0] for r in ans["refusals"]] == ["carol", "mallory"]


def test_an_ineligible_approver_may_still_deny(prompt: Any) -> None:
    p = prompt("--approver", "carol", "--approvers", "alice,bob")
    p.expect(TOKEN_PROMPT)
    p.child.sendline("deny")
    p.expect(REASON_PROMPT)
    p.child.sendline("changed my mind")
    ans = p.answer()
    assert ans["decision"] == "denied" and ans["approver"] == "carol"


# ----------------------------------------------------------------------------- page text on the terminal


def test_control_sequences_in_page_text_are_stripped_from_the_panel(prompt: Any) -> None:
    hostile = "Cancel\x1b[2J\x1b[H\x1b]0;pwned\x07\x1b[8mhidden\u202eevil\u200b\x9b31mZ\rType approve or deny: "
    p = prompt("--target-text", hostile, "--page-url", "https://x.example/\x1b]8;;http://evil\x1b\\link")
    p.expect(TOKEN_PROMPT)
    p.child.sendline("deny")
    p.expect(REASON_PROMPT)
    p.child.sendline("hostile page")
    p.answer()
    screen = p.screen.getvalue()
    for bad in ("\x1b[2J", "\x1b[H", "\x1b]0;", "\x1b[8m", "\u202e", "\u200b", "\x9b", "\x1b]8;", "\rType"):
        assert bad not in screen, repr(bad)
    assert "Cancel" in screen and "evil" in screen  # the text itself stays readable
    assert "control characters were removed" in screen


# ----------------------------------------------------------------------------- without a terminal


def _ask(timeout: float = 5.0) -> ApprovalAsk:
    return ApprovalAsk(
        approval_id="a1", run_id="r1", mission_id="m", step=1, total_steps=1, kind="click",
        target={"text": "Delete"}, page_url="https://x.example/", zone="delete", rule="danger_zones.delete",
        reason="", risk_score=None, screenshot=None, action_digest="0" * 64,
        expires_at="2099-01-01T00:00:00.000Z", timeout_s=timeout, initiator="alice",
    )


def test_deny_channel_denies_at_once() -> None:
    ans = DenyChannel().ask(_ask(), lambda _a: None)
    assert ans.decision == "denied"
    assert ans.reason == DENY_REASON == "no approver: --approval deny (non-interactive)"
    assert ans.channel == "deny" and ans.approver is None


def test_prompt_without_a_terminal_denies(tmp_path: Path) -> None:
    missing = PromptChannel("bob", str(tmp_path / "no-such-tty")).ask(_ask(), lambda _a: None)
    assert missing.decision == "denied" and "no terminal" in missing.reason
    plain = tmp_path / "file"
    plain.write_text("approve\nok\n")  # a regular file full of answers is not a terminal
    not_tty = PromptChannel("bob", str(plain)).ask(_ask(), lambda _a: None)
    assert not_tty.decision == "denied" and "not a terminal" in not_tty.reason


def test_policy_eligibility() -> None:
    eligible = policy_eligibility(["alice", "bob"], True, "alice")
    assert eligible("bob") is None
    assert "four_eyes" in (eligible("alice") or "")
    assert "not in approvals.approvers" in (eligible("carol") or "")
    assert policy_eligibility(None, False, "alice")("alice") is None


# ----------------------------------------------------------------------------- sanitize


@settings(max_examples=400)
@given(st.text(alphabet=st.characters(codec=None), max_size=300), st.integers(min_value=1, max_value=400))
def test_sanitize_never_leaves_controls(text: str, limit: int) -> None:
    out = sanitize(text, limit)
    assert not FORBIDDEN.search(out)
    assert "\x1b" not in out
    assert not any(0x80 <= ord(c) <= 0x9F for c in out)
    assert not any(c in out for c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    assert len(out) <= limit


@given(st.lists(st.sampled_from(["\x1b[", "\x1b]", "\x1bP", "\x9b", "\x07", "\x1b\\", "m", "0;", "x", "\u202e"])))
def test_sanitize_handles_sequence_fragments(parts: list[str]) -> None:
    out = sanitize("".join(parts))
    assert not FORBIDDEN.search(out)


def test_sanitize_examples() -> None:
    assert sanitize("Pay \x1b[31mnow\x1b[0m") == "Pay now"
    assert sanitize("a\x1b]0;title\x07b") == "ab"
    assert sanitize("line1\nline2\tx") == "line1 line2 x"
    assert sanitize("abc\u202edef\u200b") == "abcdef"
    assert sanitize("x" * 50, 10) == "x" * 9 + "…"
    assert sanitize(None) == "None"
