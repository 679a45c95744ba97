"""Helpers the channels share: who is answering (never from an environment variable), and when."""

from __future__ import annotations

import os
import pwd
from collections.abc import Sequence
from datetime import UTC, datetime

from evidence.runfolder import utc_timestamp
from runner.approvals.base import Eligibility


def user_of_uid(uid: int) -> str:
    """The passwd name of ``uid`` (``uid:N`` when it has none, e.g. in a container)."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid:{uid}"


def os_user(tty_fd: int | None = None) -> str:
    """The OS user answering: the owner of the terminal when one is open, else this process's uid.

    Never ``$USER``/``$LOGNAME``: the mission's process can set those, it cannot change who owns
    the terminal or which uid it runs as.
    """
    if tty_fd is not None:
        try:
            return user_of_uid(os.fstat(tty_fd).st_uid)
        except OSError:
            pass
    return user_of_uid(os.getuid())


def now_utc() -> str:
    return utc_timestamp()


def parse_utc(text: str) -> datetime:
    """An RFC 3339 timestamp (``Z`` or an offset) as an aware UTC datetime."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def policy_eligibility(approvers: Sequence[str] | None, four_eyes: bool, initiator: str) -> Eligibility:
    """The mission's approval policy as an ``Eligibility``: ``approvals.approvers`` and ``four_eyes``."""
    allowed = None if approvers is None else tuple(approvers)

    def eligible(approver: str) -> str | None:
        if allowed is not None and approver not in allowed:
            return f"{approver!r} is not in approvals.approvers ({', '.join(allowed)})"
        if four_eyes and approver == initiator:
            return f"four_eyes: {approver!r} started this run and may not approve its own action"
        return None

    return eligible
