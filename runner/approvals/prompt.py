"""``--approval prompt``: ask the human at the controlling terminal (SPEC §4, notes (d)).

The channel opens ``/dev/tty`` itself, for reading and writing: never the mission's stdin or
stdout, so nothing piped into Warden (or printed by it) can answer. Typeahead is discarded before
the question is asked. The approver types exactly ``approve`` or ``deny`` (anything else — ``y``,
``yes``, ``Approve``, ``approve `` with a space, look-alike letters — asks again), then a non-empty
reason. Every other way out denies: end of input (Ctrl-D) → ``denied``, Ctrl-C → ``denied``, no
answer within ``timeout_s`` (measured from the ask, with ``select()`` on the terminal) →
``expired``, a terminal that cannot be opened or read → ``denied``.

Who answers: ``--approver NAME`` when given, else the OS user; the OS user (always recorded) is
the owner of the terminal, never an environment variable. When the policy refuses the approver
as they type ``approve`` (not in ``approvals.approvers``, or the initiator under ``four_eyes``),
the refusal is printed and kept in ``refusals``, and the prompt asks for another approver's name;
that person then answers at the same terminal, until the request expires. A typed name is a
claim, recorded beside the terminal's OS user: at one terminal this is acknowledgement by name,
not strong separation of duties (use ``--approval queue`` and a second terminal for that).
Anyone at the terminal may deny: denying is the safe outcome.

Under ``four_eyes`` the prompt refuses at once (``denied``): a terminal cannot prove that a second
person is answering. It shows the panel and says how to approve instead (``--approval queue``, and
``warden approvals approve ID`` run by another OS user).

The screenshot path and the approval id are printed below the panel, each value alone on its own
line and never wrapped (``soft_wrap``), so they can be copied or opened on any terminal width.

Everything shown that came from the page is passed through ``sanitize`` first and rendered as
plain text (no rich markup), so the page cannot forge prompt lines or hide text.
"""

from __future__ import annotations

import io
import os
import select
import termios
import time
from collections.abc import Iterable
from typing import Literal

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from runner.approvals.base import ApprovalAnswer, ApprovalAsk, Channel, Eligibility
from runner.approvals.common import now_utc, os_user
from runner.approvals.sanitize import had_controls, sanitize

TOKENS = ("approve", "deny")
MAX_LINE = 4096


class _Expired(Exception):
    pass


class _EndOfInput(Exception):
    pass


class PromptChannel:
    name: Channel = "prompt"

    def __init__(self, approver: str | None = None, tty_path: str = "/dev/tty", *, four_eyes: bool = False) -> None:
        self.approver = approver
        self.tty_path = tty_path
        self.four_eyes = four_eyes

    # -- the protocol ----------------------------------------------------------------------------

    def ask(self, ask: ApprovalAsk, eligible: Eligibility) -> ApprovalAnswer:
        deadline = time.monotonic() + max(0.0, ask.timeout_s)
        try:
            fd = os.open(self.tty_path, os.O_RDWR | os.O_NOCTTY)
        except OSError as exc:
            return self._answer("denied", None, os_user(), f"no terminal to ask on ({exc.strerror})")
        try:
            if not os.isatty(fd):
                return self._answer("denied", None, os_user(), f"{self.tty_path} is not a terminal")
            session = _Session(self, fd, ask, eligible, deadline)
            return session.refuse_four_eyes() if self.four_eyes else session.run()
        finally:
            os.close(fd)

    def _answer(
        self,
        decision: Literal["approved", "denied", "expired"],
        approver: str | None,
        user: str,
        reason: str,
        refusals: Iterable[str] = (),
    ) -> ApprovalAnswer:
        return ApprovalAnswer(
            decision=decision,
            approver=approver,
            os_user=user,
            reason=reason,
            channel=self.name,
            answered_at=now_utc(),
            refusals=tuple(refusals),
            identity_method="tty_owner" if approver else "none",
        )


class _Session:
    """One question on one open terminal."""

    def __init__(self, channel: PromptChannel, fd: int, ask: ApprovalAsk, eligible: Eligibility, deadline: float):
        self.channel = channel
        self.fd = fd
        self.ask = ask
        self.eligible = eligible
        self.deadline = deadline
        self.user = os_user(fd)
        self.refusals: list[str] = []
        self.out = io.TextIOWrapper(
            io.FileIO(fd, "w", closefd=False), encoding="utf-8", errors="replace", write_through=True
        )
        try:
            width = min(max(os.get_terminal_size(fd).columns, 40), 120)
        except OSError:
            width = 100
        self.console = Console(
            file=self.out, width=width, force_terminal=True, color_system="standard",
            highlight=False, markup=False, emoji=False,
        )

    def show(self) -> None:
        self.console.print(render_ask(self.ask))
        for line in copyable_lines(self.ask):
            self.console.print(line, soft_wrap=True)

    def refuse_four_eyes(self) -> ApprovalAnswer:
        why = four_eyes_refusal(self.ask.approval_id)
        try:
            self.show()
        except OSError:
            pass
        self._say(f"✗ {why.split(' approves with: ')[0]}, approves with:", "bold red")
        try:
            self.console.print(Text(why.split(" approves with: ")[1]), soft_wrap=True)
        except OSError:
            pass
        return self.channel._answer("denied", None, self.user, why, [f"{self.user}: {why}"])

    def run(self) -> ApprovalAnswer:
        ch = self.channel
        approver = ch.approver if ch.approver is not None else self.user
        try:
            self.show()
            self._discard_typeahead()
            while True:
                choice = self._read_token()
                if choice == "deny":
                    break
                why = self.eligible(approver)
                if why is None:
                    break
                self.refusals.append(f"{approver}: {why}")
                self._say(f"✗ refused: {why}", "bold red")
                approver = self._read_name()
            reason = self._read_reason(choice)
        except _Expired:
            self._say(f"\nno answer within {self.ask.timeout_s:g} s: expired (the action is not taken)", "red")
            return ch._answer("expired", None, self.user, "approval timed out", self.refusals)
        except _EndOfInput:
            self._say("\nend of input: denied", "red")
            return ch._answer("denied", None, self.user, "end of input at the prompt (EOF)", self.refusals)
        except KeyboardInterrupt:
            self._say("\ninterrupted: denied", "red")
            return ch._answer("denied", None, self.user, "interrupted at the prompt (Ctrl-C)", self.refusals)
        except OSError as exc:
            return ch._answer("denied", None, self.user, f"terminal error ({exc.strerror})", self.refusals)
        decision: Literal["approved", "denied"] = "approved" if choice == "approve" else "denied"
        self._say(f"{decision} by {approver}", "bold green" if decision == "approved" else "bold red")
        return ch._answer(decision, approver, self.user, reason, self.refusals)

    # -- questions -------------------------------------------------------------------------------

    def _read_token(self) -> str:
        while True:
            self._prompt("Type approve or deny: ")
            line = self._readline()
            if line in TOKENS:
                return line
            self._say(f"  please type exactly 'approve' or 'deny' (got {sanitize(line, 40)!r})", "yellow")

    def _read_reason(self, choice: str) -> str:
        while True:
            self._prompt(f"Reason for '{choice}' (required): ")
            reason = sanitize(self._readline(), 1000).strip()
            if reason:
                return reason
            self._say("  a reason is required", "yellow")

    def _read_name(self) -> str:
        while True:
            self._prompt("Another approver's name (Ctrl-D denies): ")
            name = sanitize(self._readline(), 80).strip()
            if name:
                return name

    # -- terminal I/O ----------------------------------------------------------------------------

    def _discard_typeahead(self) -> None:
        try:
            termios.tcflush(self.fd, termios.TCIFLUSH)
        except termios.error:
            pass

    def _prompt(self, text: str) -> None:
        self.console.print(Text(text, style="bold"), end="")

    def _say(self, text: str, style: str) -> None:
        try:
            self.console.print(Text(text, style=style))
        except OSError:
            pass

    def _readline(self) -> str:
        """One line typed at the terminal (without its newline); raises on timeout or end of input."""
        buf = b""
        while b"\n" not in buf and len(buf) < MAX_LINE:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise _Expired
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if not ready:
                raise _Expired
            try:
                chunk = os.read(self.fd, MAX_LINE)
            except OSError as exc:  # EIO: the terminal hung up
                raise _EndOfInput from exc
            if not chunk:
                raise _EndOfInput
            buf += chunk
        return buf.split(b"\n", 1)[0].decode("utf-8", errors="replace")


def _row(table: Table, label: str, value: Text | str) -> None:
    table.add_row(Text(label, style="bold"), value if isinstance(value, Text) else Text(value))


def render_ask(ask: ApprovalAsk) -> Panel:
    """The approval panel. Every value is plain ``Text`` (no markup) and page-derived text is sanitised."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    _row(grid, "Mission", f"{sanitize(ask.mission_id)}  (run {sanitize(ask.run_id)})")
    _row(grid, "Step", f"{ask.step}/{ask.total_steps}")
    _row(grid, "Action", sanitize(ask.kind, 40))
    target = ask.target
    shown = False
    for key in ("text", "role", "name", "selector", "label", "placeholder", "test_id", "tag"):
        value = target.get(key)
        if value is not None and value != "":
            _row(grid, "Target " + key, sanitize(value, 200))
            shown = True
    if not shown:
        _row(grid, "Target", "(none: the page itself)")
    _row(grid, "Page URL", sanitize(ask.page_url, 400))
    zone = Text(sanitize(ask.zone, 80), style="bold yellow")
    if ask.reason:
        zone.append(" — " + sanitize(ask.reason, 300))
    _row(grid, "Danger zone", zone)
    if ask.rule:
        _row(grid, "Rule", sanitize(ask.rule, 200))
    _row(grid, "Risk score", "n/a" if ask.risk_score is None else f"{ask.risk_score}/100")
    _row(grid, "Screenshot", "(path below the panel)" if ask.screenshot else "(none)")
    _row(grid, "Approval id", "(below the panel)")
    _row(grid, "Digest", sanitize(ask.action_digest[:16], 16) + "…")
    _row(grid, "Expires", f"{sanitize(ask.expires_at, 40)} (in {ask.timeout_s:g} s; no answer = denied)")
    parts: list[Text | Table] = [grid]
    raw = [str(v) for v in target.values()] + [ask.page_url]
    if any(had_controls(v) for v in raw):
        parts.append(Text("⚠ control characters were removed from page-derived text", style="yellow"))
    return Panel(
        Group(*parts),
        title=Text("APPROVAL REQUIRED", style="bold red"),
        subtitle=Text("type approve or deny, then a reason"),
        border_style="red",
        expand=False,
    )


def copyable_lines(ask: ApprovalAsk) -> list[Text]:
    """Below the panel, each value alone on its own line: print with ``soft_wrap=True`` (never wrapped)."""
    out = [Text("Screenshot (open it):", style="bold")]
    out.append(Text(sanitize(ask.screenshot, 4000) if ask.screenshot else "(none)"))
    out += [Text("Approval id:", style="bold"), Text(sanitize(ask.approval_id, 100))]
    return out


def four_eyes_refusal(approval_id: str) -> str:
    return (
        "four_eyes: the terminal prompt cannot prove a second person, so it does not take four-eyes "
        "approvals. Run with --approval queue; then another OS user (not the one who started the run) "
        f"approves with: warden approvals approve {approval_id} --reason TEXT --evidence-dir DIR"
    )
