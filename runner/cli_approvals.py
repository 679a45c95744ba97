"""``warden approvals list | show ID | approve ID --reason TEXT | deny ID --reason TEXT`` (SPEC §3).

Answers requests a runner in ``--approval queue`` mode is waiting on, from another terminal.
Exit codes of ``approve`` / ``deny``: 0 the answer was recorded; 1 the request was no longer
pending (another answer won the race, it expired, the runner gave up); 2 usage (unknown or
ambiguous id, empty reason); 3 refused by the mission's approval policy (not in
``approvals.approvers``, or the initiator under ``four_eyes``): the request stays pending.
``list`` and ``show`` first expire abandoned requests (never approving them), then only read.

A ``four_eyes`` request is answered over the waiting runner's approval socket
(``DIR/approvals/<id>.sock``, ``runner/approvals/peer.py``): the runner learns this process's uid
from the kernel (SO_PEERCRED) and records the answer itself. With no socket there, a four-eyes
approval is refused (exit 3): a row written into the table would not be accepted by the runner.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeVar

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from kernel.errors import UsageError, WardenError
from runner.approvals.base import ApprovalAsk
from runner.approvals.common import os_user
from runner.approvals.peer import send_answer, socket_path
from runner.approvals.prompt import copyable_lines, render_ask
from runner.approvals.rows import ApprovalRow, describe_outcome, policy_refusal
from runner.approvals.sanitize import sanitize
from runner.approvals.store import ApprovalStore
from runner.cli_options import db_option, evidence_dir_option

F = TypeVar("F", bound=Callable[..., Any])
out = Console(highlight=False, markup=False, emoji=False)
err = Console(stderr=True, highlight=False, markup=False, emoji=False)

EXIT_RECORDED, EXIT_NOT_PENDING, EXIT_USAGE, EXIT_REFUSED = 0, 1, 2, 3


def _where(fn: F) -> F:
    return db_option(evidence_dir_option(fn))


def _fail(exc: WardenError) -> NoReturn:
    err.print(Text("error: ", style="red") + Text(sanitize(str(exc), 500)))
    sys.exit(exc.exit_code)


def open_store(evidence_dir: Path, db_url: str | None) -> ApprovalStore:
    if db_url is None and not (evidence_dir / "warden.db").is_file():
        raise UsageError(f"no evidence database in {evidence_dir} (give --evidence-dir or --db)")
    store = ApprovalStore(db_url or evidence_dir)
    store.reap()
    return store


def _in(row: ApprovalRow) -> str:
    left = row.expires_ts - time.time()
    return f"in {left:.0f} s" if left > 0 else "passed"


@click.group()
def approvals() -> None:
    """List and answer approval requests waiting in the queue (--approval queue)."""


@approvals.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also answered and expired requests (newest 50).")
@_where
def approvals_list(show_all: bool, evidence_dir: Path, db_url: str | None) -> None:
    """Pending approval requests (abandoned ones are expired first)."""
    try:
        store = open_store(evidence_dir, db_url)
        rows = store.requests(pending_only=not show_all, limit=50 if show_all else None)
    except WardenError as exc:
        _fail(exc)
    if not rows:
        out.print("no pending approval requests" if not show_all else "no approval requests")
        return
    table = Table(show_edge=False, box=None, pad_edge=False)
    for col in ("id", "status", "mission", "step", "action", "zone", "expires", "answered by", "host"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            sanitize(r.approval_id, 60),
            r.status,
            sanitize(r.mission_id, 60),
            f"{r.step}/{r.total_steps}",
            sanitize(r.kind, 20),
            sanitize(r.zone, 40),
            f"{r.expires_at} ({_in(r)})" if r.status == "pending" else r.expires_at,
            sanitize(r.answered_by or "", 40),
            sanitize(r.owner_host, 40),  # where the runner waits (a fleet's worker host)
        )
    out.print(table)


def _as_ask(row: ApprovalRow) -> ApprovalAsk:
    return ApprovalAsk(
        approval_id=row.approval_id, run_id=row.run_id, mission_id=row.mission_id, step=row.step,
        total_steps=row.total_steps, kind=row.kind, target=row.target_dict(), page_url=row.page_url,
        zone=row.zone, rule=row.rule, reason=row.reason, risk_score=row.risk_score, screenshot=row.screenshot,
        action_digest=row.action_digest, expires_at=row.expires_at,
        timeout_s=max(0.0, round(row.expires_ts - time.time())), initiator=row.initiator,
    )


@approvals.command("show")
@click.argument("approval_ref", metavar="ID")
@_where
def approvals_show(approval_ref: str, evidence_dir: Path, db_url: str | None) -> None:
    """Everything the approver should see before answering (a unique id prefix is enough)."""
    try:
        row = open_store(evidence_dir, db_url).find(approval_ref)
    except WardenError as exc:
        _fail(exc)
    out.print(render_ask(_as_ask(row)))
    for line in copyable_lines(_as_ask(row)):
        out.print(line, soft_wrap=True)
    out.print(f"status: {row.status}" + ("" if row.status == "pending" else f" — {sanitize(describe_outcome(row))}"))
    out.print(f"initiator: {sanitize(row.initiator, 80)}; waiting runner: pid {row.owner_pid} on {row.owner_host}")
    policy = []
    if row.approver_list() is not None:
        policy.append("approvers: " + ", ".join(sanitize(a, 40) for a in row.approver_list() or []))
    if row.four_eyes:
        policy.append("four eyes")
    out.print("policy: " + ("; ".join(policy) or "anyone may approve"))
    for refusal in row.refusal_list():
        out.print("refused: " + sanitize(refusal))


def _answer(
    decision: Literal["approved", "denied"],
    approval_ref: str,
    reason: str,
    approver: str | None,
    evidence_dir: Path,
    db_url: str | None,
) -> NoReturn:
    try:
        text = sanitize(reason, 1000).strip()
        if not text:
            raise UsageError("--reason must not be empty: say why")
        store = open_store(evidence_dir, db_url)
        row = store.find(approval_ref)
    except WardenError as exc:
        _fail(exc)
    user = os_user()
    who = sanitize(approver, 80).strip() if approver is not None else user
    if not who:
        _fail(UsageError("--approver must not be empty"))
    if row.status != "pending":
        err.print(f"not recorded: approval {row.approval_id} is {sanitize(describe_outcome(row))}")
        sys.exit(EXIT_NOT_PENDING)
    if row.four_eyes:
        _four_eyes(decision, row, text, approver, evidence_dir)
    if decision == "approved":
        why = policy_refusal(row, who, user)
        if why is not None:
            store.add_refusal(row.approval_id, f"{who} (OS user {user}): {why}")
            err.print(f"refused by policy: {sanitize(why)}; the request stays pending for another approver")
            sys.exit(EXIT_REFUSED)
    result = store.answer(row.approval_id, decision, who, user, text)
    if not result.won:
        err.print(f"not recorded: approval {row.approval_id} was {sanitize(result.message)}")
        sys.exit(EXIT_NOT_PENDING)
    out.print(f"recorded: approval {row.approval_id} {decision} by {who} (OS user {user}) at {result.row.answered_at}")
    sys.exit(EXIT_RECORDED)


_CODES = {"recorded": EXIT_RECORDED, "not_pending": EXIT_NOT_PENDING, "refused": EXIT_REFUSED}


def _four_eyes(
    decision: Literal["approved", "denied"], row: ApprovalRow, reason: str, approver: str | None, evidence_dir: Path
) -> None:
    """Answer over the runner's approval socket (returns only to deny through the table when it is gone)."""
    path = socket_path(evidence_dir, row.approval_id)
    if not path.exists():
        if decision == "denied":
            return  # denying is safe: the table will do
        err.print(
            f"refused: four_eyes: no approval socket {path} — the runner is not waiting on this machine or "
            "this evidence folder is not reachable; an approval written any other way is not accepted"
        )
        sys.exit(EXIT_REFUSED)
    request = {"approval_id": row.approval_id, "action_digest": row.action_digest, "decision": decision,
               "reason": reason, "approver": approver}
    try:
        reply = send_answer(path, request)
    except (OSError, ValueError) as exc:
        err.print(f"not recorded: cannot reach the waiting runner at {path} ({sanitize(str(exc), 200)})")
        sys.exit(EXIT_NOT_PENDING)
    message = sanitize(str(reply.get("message", "")), 1000)
    code = _CODES.get(str(reply.get("code")), EXIT_USAGE)
    if reply.get("ok") is True:
        out.print(message)
    else:
        err.print(("refused by policy: " if code == EXIT_REFUSED else "not recorded: ") + message)
    sys.exit(code)


_reason = click.option("--reason", required=True, help="Why (required, recorded).")
_approver = click.option("--approver", default=None, help="Your name (default: your OS user; both are recorded).")


@approvals.command("approve")
@click.argument("approval_ref", metavar="ID")
@_reason
@_approver
@_where
def approvals_approve(
    approval_ref: str, reason: str, approver: str | None, evidence_dir: Path, db_url: str | None
) -> None:
    """Approve a pending request: exit 0 recorded, 1 not pending (lost the race), 2 usage, 3 refused."""
    _answer("approved", approval_ref, reason, approver, evidence_dir, db_url)


@approvals.command("deny")
@click.argument("approval_ref", metavar="ID")
@_reason
@_approver
@_where
def approvals_deny(
    approval_ref: str, reason: str, approver: str | None, evidence_dir: Path, db_url: str | None
) -> None:
    """Deny a pending request: exit 0 recorded, 1 not pending (lost the race), 2 usage."""
    _answer("denied", approval_ref, reason, approver, evidence_dir, db_url)
