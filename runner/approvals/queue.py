"""``--approval queue``: persist the request and wait for ``warden approvals approve|deny`` from elsewhere.

The runner writes a ``pending`` row (``store.ApprovalStore``), tells the operator its id, and polls
until the row is answered or the request expires. Expiry is itself a conditional write, so an
answer arriving at the last moment and the runner giving up cannot both win. Ctrl-C (or SIGTERM)
while waiting withdraws the request as ``denied``. Any failure of the store denies (fail closed).

The approver list and ``four_eyes`` are stored with the request and enforced by the CLI when the
answer is given; the runner checks an approval against its own ``eligible`` once more when it
reads it, and denies if that disagrees.

Under ``four_eyes`` a row in the table is not enough: the runner listens on the request's approval
socket in the evidence folder (``peer.py``), accepts an approval only from another OS user as the
kernel's peer credentials show (``foureyes.py``), and does not accept an ``approved`` written into
the table any other way. Without an evidence folder for the socket, a four-eyes request is denied.

Nothing sensitive in the table: the request is stored through the run's redactor (``redactor``, or
the one the gate binds with ``bind_redactor``), and once the runner has read an answer it rewrites
what the approver typed (reason, name, refusals) through the same redactor (``ApprovalStore.scrub``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Literal

from evidence.redact import Redactor
from runner.approvals.base import ApprovalAnswer, ApprovalAsk, Channel, Eligibility
from runner.approvals.common import now_utc, os_user
from runner.approvals.foureyes import FourEyes
from runner.approvals.peer import PeerListener
from runner.approvals.rows import ApprovalRow
from runner.approvals.store import ApprovalStore

_stop_waiting: Callable[[], str | None] | None = None


def stop_waiting_when(check: Callable[[], str | None] | None) -> None:
    """For this process (a fleet job's child): when ``check`` gives a reason, a pending wait is withdrawn
    (denied, nothing acted) — a worker asked to stop does not sit out an approval's whole timeout."""
    global _stop_waiting
    _stop_waiting = check


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class QueueChannel:
    name: Channel = "queue"

    def __init__(
        self,
        store: ApprovalStore | str | Path,
        *,
        approvers: Sequence[str] | None = None,
        four_eyes: bool = False,
        poll_s: float = 0.2,
        notify: Callable[[str], None] = _stderr,
        redactor: Redactor | None = None,
        socket_dir: str | Path | None = None,
    ) -> None:
        self._store: ApprovalStore | None = store if isinstance(store, ApprovalStore) else None
        self._where: str | Path | None = None if isinstance(store, ApprovalStore) else store
        self._reaped = False
        self.approvers = None if approvers is None else tuple(approvers)
        self.four_eyes = four_eyes
        self.poll_s = poll_s
        self.notify = notify
        self.redactor = redactor
        self.socket_dir = Path(socket_dir) if socket_dir is not None else _folder_of(store)

    def bind_redactor(self, redactor: Redactor) -> None:
        """The run's redactor (the evidence writer's): every text this channel stores goes through it."""
        self.redactor = redactor

    def _redact(self, text: str) -> str:
        return text if self.redactor is None else self.redactor.redact(text)

    @property
    def store(self) -> ApprovalStore:
        if self._store is None:
            self._store = ApprovalStore(self._where if self._where is not None else "warden-evidence")
        if not self._reaped:
            self._reaped = True
            self._store.reap()  # a runner that crashed while waiting: its requests expire now, never approve
        return self._store

    def ask(self, ask: ApprovalAsk, eligible: Eligibility) -> ApprovalAnswer:
        user = os_user()
        deadline = time.monotonic() + max(0.0, ask.timeout_s)
        try:
            store = self.store
            row = store.submit(ask, approvers=self.approvers, four_eyes=self.four_eyes, redact=self._redact)
        except Exception as exc:  # the queue cannot hold the request: nobody can answer it
            return _answer("denied", None, user, f"approval queue unavailable ({type(exc).__name__})")
        listener: PeerListener | None = None
        four: FourEyes | None = None
        try:  # from here on the request exists: Ctrl-C (even while the operator is told) withdraws it
            if self.four_eyes:
                four = FourEyes(store, ask, eligible)
                if self.socket_dir is None:
                    raise _NoSocket
                listener = PeerListener(self.socket_dir, row.approval_id)
            self.notify(_how_to_answer(row, self.four_eyes, shared="://" in str(self._where or "")))
            while True:
                current = store.get(row.approval_id)
                if current is None:
                    return _answer("denied", None, user, "approval request vanished from the queue")
                if current.status != "pending":
                    answer = (four.from_table(current) if four is not None else None) or _from_row(
                        current, eligible, user, four.refusals if four is not None else ())
                    self._scrub(store, row.approval_id)
                    return answer
                stop = _stop_waiting() if _stop_waiting is not None else None
                if stop is not None and store.withdraw(row.approval_id, f"withdrawn: {stop}", user):
                    self._scrub(store, row.approval_id)
                    return _answer("denied", None, user, f"withdrawn while waiting: {stop}")
                remaining = min(deadline - time.monotonic(), current.expires_ts - time.time())
                if remaining <= 0:
                    store.expire(row.approval_id, "expired: no answer before the expiry")
                    continue  # re-read: either our expiry or an answer that won just before it
                if listener is None or four is None:
                    time.sleep(min(self.poll_s, remaining))
                    continue
                got = listener.accept(min(self.poll_s, remaining))
                if got is not None:
                    peer_answer = four.handle(*got)
                    if peer_answer is not None:
                        self._scrub(store, row.approval_id)
                        return peer_answer
        except KeyboardInterrupt:
            store.withdraw(row.approval_id, "withdrawn: the runner was interrupted while waiting (Ctrl-C)", user)
            self._scrub(store, row.approval_id)
            return _answer("denied", None, user, "interrupted while waiting for the queue (Ctrl-C)")
        except _NoSocket:
            why = "four_eyes needs the approval socket in an evidence folder; this queue has none: denied"
            store.withdraw(row.approval_id, why, user)
            return _answer("denied", None, user, why)
        except Exception as exc:
            return _answer("denied", None, user, f"approval queue failed ({type(exc).__name__})")
        finally:
            if listener is not None:
                listener.close()

    def _scrub(self, store: ApprovalStore, approval_id: str) -> None:
        """What the approver typed, through the run's redactor (best effort: the answer stands either way)."""
        if self.redactor is None:
            return
        try:
            store.scrub(approval_id, self._redact)
        except Exception:  # noqa: S110 - a failed scrub must not turn an answer into an error
            pass


def _answer(
    decision: Literal["approved", "denied", "expired"],
    approver: str | None,
    user: str,
    reason: str,
    refusals: Iterable[str] = (),
    answered_at: str | None = None,
) -> ApprovalAnswer:
    return ApprovalAnswer(
        decision=decision,
        approver=approver,
        os_user=user,
        reason=reason,
        channel="queue",
        answered_at=answered_at or now_utc(),
        refusals=tuple(refusals),
    )


class _NoSocket(Exception):
    pass


def _folder_of(store: ApprovalStore | str | Path) -> Path | None:
    """The evidence folder the approval sockets live in: the store's directory, or a ``.db`` file's."""
    if isinstance(store, ApprovalStore):
        return None
    text = str(store)
    if "://" in text:
        return None
    path = Path(text)
    return path.parent if path.suffix == ".db" else path


def _how_to_answer(row: ApprovalRow, four_eyes: bool, *, shared: bool = False) -> str:
    """How to answer; ``shared``: the rows are in a database URL (a fleet), answerable from any machine
    with ``--db`` (the URL, which holds a password, is never printed)."""
    head = f"approval {row.approval_id} pending (expires {row.expires_at}); answer from another terminal:\n"
    if shared:
        head = (f"approval {row.approval_id} pending (expires {row.expires_at}) on {row.owner_host}; answer from "
                "any machine, adding --db with this database's URL:\n")
    if four_eyes:
        head = (f"approval {row.approval_id} pending (expires {row.expires_at}); four_eyes: another OS user "
                "(not this account) must answer, on this machine:\n")
    return (
        f"{head}"
        f"  warden approvals show {row.approval_id}\n"
        f"  warden approvals approve {row.approval_id} --reason TEXT   |   deny {row.approval_id} --reason TEXT"
    )


def _from_row(
    row: ApprovalRow, eligible: Eligibility, runner_user: str, extra: Sequence[str] = ()
) -> ApprovalAnswer:
    refusals = [*extra, *(r for r in row.refusal_list() if r not in extra)]
    user = row.answered_os_user or runner_user
    reason = row.answer_reason or ""
    if row.status == "approved":
        approver = row.answered_by or ""
        why = eligible(approver)
        if why is not None:
            return _answer("denied", approver, user, f"approval refused by the run's policy: {why}", [
                *refusals, f"{approver}: {why}"])
        return ApprovalAnswer(
            decision="approved", approver=approver, os_user=user, reason=reason, channel="queue",
            answered_at=row.answered_at or now_utc(), refusals=tuple(refusals), identity_method="queue_row",
        )
    if row.status == "denied":
        return _answer("denied", row.answered_by, user, reason, refusals, row.answered_at)
    return _answer("expired", None, user, reason or "approval timed out", refusals, row.answered_at)
