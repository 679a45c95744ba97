"""Choosing the channel for ``warden run --approval prompt|deny|queue`` (SPEC §3)."""

from __future__ import annotations

import os
from pathlib import Path

from missions.model import Approvals
from runner.approvals.base import ApprovalChannel, Channel
from runner.approvals.deny import DenyChannel
from runner.approvals.prompt import PromptChannel

TTY = "/dev/tty"


def terminal_available(tty_path: str = TTY) -> bool:
    """Can the controlling terminal be opened for reading and writing?"""
    try:
        fd = os.open(tty_path, os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    try:
        return os.isatty(fd)
    finally:
        os.close(fd)


def default_kind(tty_path: str = TTY) -> Channel:
    """``prompt`` when a terminal can be opened, else ``deny`` (CI, cron, a detached process)."""
    return "prompt" if terminal_available(tty_path) else "deny"


def make_channel(
    kind: Channel | None,
    *,
    approver: str | None,
    policy: Approvals,
    evidence_dir: Path,
    db_url: str | None = None,
    tty_path: str = TTY,
) -> ApprovalChannel:
    """The channel for ``--approval KIND`` (None: the default for this terminal)."""
    chosen = kind or default_kind(tty_path)
    if chosen == "prompt":
        return PromptChannel(approver, tty_path, four_eyes=policy.four_eyes)
    if chosen == "queue":
        from runner.approvals.queue import QueueChannel  # the queue's ORM (SQLAlchemy): only for --approval queue

        # The rows live in the database (shared by a fleet with --db); a four-eyes answer goes over the
        # approval socket in this machine's evidence dir, whichever database holds the rows.
        return QueueChannel(db_url or evidence_dir, approvers=policy.approvers, four_eyes=policy.four_eyes,
                            socket_dir=evidence_dir)
    return DenyChannel()
