"""The approval queue's persistence: table ``approvals`` in the evidence database (SPEC §3 ``--approval queue``).

The table has its own SQLAlchemy metadata (``ApprovalsBase``) and lives on the evidence index's
engine, so ``warden approvals`` in another terminal sees what the waiting runner wrote.

Invariants:

- **Exactly one answer wins.** An answer is one conditional ``UPDATE ... WHERE status='pending'
  AND expires_ts > now``; the writer whose ``rowcount`` is 1 won; every other writer (a second
  approver, the runner expiring it, a late answer) is told what happened instead.
- **Never approved by default.** A request whose expiry passed, or whose waiting runner is gone
  (same host, its pid dead, a zombie, or reused by another process), becomes ``expired`` at the
  next ``reap`` (the runner's next start, any ``warden`` command on the evidence dir, ``approvals
  list``). Nothing turns ``pending`` into ``approved`` except an eligible approver's answer.
- **Policy is enforced when the answer is given.** The request carries the mission's
  ``approvals.approvers`` and ``four_eyes`` and the initiator; ``policy_refusal`` is checked before
  an answer is written (the request stays pending, the refusal is appended to ``refusals``).
- **Nothing sensitive in a column.** What the runner writes went through the run's redactor
  (``submit(..., redact=)``; the gate asks with redacted text already): the target (button text,
  accessible name), the zone and its reason; the page URL is stored redacted *and* without its
  query and fragment. What an approver types from another terminal (``warden approvals`` has no PII
  engine) — the reason, the claimed name, refusals — is rewritten through the run's redactor by the
  runner as soon as it has read the answer (``scrub``), together with the initiator and the
  approver list, which matter only while the request is pending. Ids, hashes, times and paths are
  Warden's own and stored verbatim.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import Engine, create_engine, inspect, select, update
from sqlalchemy.orm import Session

from evidence.index_sqlite import url_for
from evidence.redact import redact_tree
from evidence.runfolder import utc_timestamp
from kernel.errors import UsageError
from runner.approvals.base import ApprovalAsk
from runner.approvals.common import parse_utc
from runner.approvals.rows import AnswerResult, ApprovalRow, ApprovalsBase

Status = Literal["pending", "approved", "denied", "expired"]
Redact = Callable[[str], str]


def _as_is(text: str) -> str:
    return text


class _Redactor:
    """A ``Redact`` callable as the ``Redactor`` protocol ``redact_tree`` takes."""

    def __init__(self, redact: Redact) -> None:
        self.redact = redact


def url_without_query(url: str) -> str:
    """``scheme://host/path`` of a page URL: query and fragment (where forms put typed values) dropped;
    ``?…`` says there was a query."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if not parts.scheme and not parts.netloc:
        return url.split("?", 1)[0].split("#", 1)[0]
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return base + ("?…" if parts.query else "")


def _proc_start(pid: int) -> str | None:
    """The start time of ``pid`` (clock ticks since boot, from /proc), or None where /proc is absent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def _proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[0] if fields else None


def owner_alive(pid: int, start: str | None) -> bool:
    """Is the process that wrote a request (on this host) still the same, running process?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if _proc_state(pid) in ("Z", "X"):
        return False
    if start is not None:
        now = _proc_start(pid)
        if now is not None and now != start:
            return False  # the pid was reused
    return True


def _ts(epoch: float) -> str:
    return utc_timestamp(datetime.fromtimestamp(epoch, UTC))


class ApprovalStore:
    """The ``approvals`` table on the evidence database (an evidence dir, a ``.db`` path or a URL)."""

    def __init__(self, url_or_dir: str | Path, *, engine: Engine | None = None) -> None:
        if engine is None:
            from evidence.index import EvidenceIndex  # same engine setup as the index (WAL, busy timeout)

            engine = EvidenceIndex(url_or_dir).engine
        self.engine = engine
        for attempt in range(3):  # two processes may race on CREATE TABLE
            try:
                ApprovalsBase.metadata.create_all(engine)
                break
            except Exception:
                if attempt == 2:
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        self.engine.dispose()

    # -- the runner's side -------------------------------------------------------------------

    def submit(
        self,
        ask: ApprovalAsk,
        *,
        approvers: Sequence[str] | None,
        four_eyes: bool,
        now: float | None = None,
        redact: Redact | None = None,
    ) -> ApprovalRow:
        """Persist ``ask`` as a pending request owned by this process.

        ``redact`` (the run's redactor) is applied to every page- or mission-derived text column; the
        page URL is also reduced to ``url_without_query``.
        """
        red = redact or _as_is
        t = time.time() if now is None else now
        expires_ts = t + max(0.0, ask.timeout_s)
        try:
            expires_ts = min(expires_ts, parse_utc(ask.expires_at).timestamp())
        except ValueError:
            pass
        pid = os.getpid()
        row = ApprovalRow(
            approval_id=ask.approval_id,
            run_id=ask.run_id,
            mission_id=ask.mission_id,
            step=ask.step,
            total_steps=ask.total_steps,
            kind=ask.kind,
            target=json.dumps(redact_tree(dict(ask.target), _Redactor(red)), default=str, sort_keys=True),
            page_url=url_without_query(red(ask.page_url)),
            zone=red(ask.zone),
            rule=red(ask.rule),
            reason=red(ask.reason),
            risk_score=ask.risk_score,
            screenshot=ask.screenshot,
            action_digest=ask.action_digest,
            initiator=ask.initiator,
            approvers=None if approvers is None else json.dumps(list(approvers)),
            four_eyes=four_eyes,
            status="pending",
            requested_at=_ts(t),
            expires_at=_ts(expires_ts),
            expires_ts=expires_ts,
            owner_pid=pid,
            owner_host=socket.gethostname(),
            owner_start=_proc_start(pid),
            refusals="[]",
        )
        with Session(self.engine, expire_on_commit=False) as s, s.begin():
            s.add(row)
        return row

    def expire(self, approval_id: str, why: str, *, now: float | None = None) -> bool:
        """Mark a pending request expired; False when something else answered it first."""
        return self._close(approval_id, "expired", None, None, why, now=now, only_before_expiry=False)

    def withdraw(self, approval_id: str, why: str, os_user: str) -> bool:
        """The runner gives up waiting (Ctrl-C, SIGTERM): pending → denied by nobody."""
        return self._close(approval_id, "denied", None, os_user, why, only_before_expiry=False)

    def scrub(self, approval_id: str, redact: Redact) -> bool:
        """Rewrite what people typed or claimed (reason, approver, OS user, refusals) and the policy
        columns (initiator, approvers) of an answered request through the run's redactor.

        Only a request that is no longer pending is touched (its policy is never needed again); the
        update is conditional on the values read, so a concurrent change is never overwritten.
        True when the row was rewritten (or needed no change).
        """
        with Session(self.engine) as s, s.begin():
            row = s.get(ApprovalRow, approval_id)
            if row is None or row.status == "pending":
                return False
            def opt(text: str | None) -> str | None:
                return None if text is None else redact(text)

            approvers = row.approver_list()
            new = {
                "answer_reason": opt(row.answer_reason),
                "answered_by": opt(row.answered_by),
                "answered_os_user": opt(row.answered_os_user),
                "refusals": json.dumps([redact(r) for r in row.refusal_list()]),
                "initiator": redact(row.initiator),
                "approvers": None if approvers is None else json.dumps([redact(a) for a in approvers]),
            }
            if all(getattr(row, k) == v for k, v in new.items()):
                return True
            done = s.execute(
                update(ApprovalRow)
                .where(ApprovalRow.approval_id == approval_id, ApprovalRow.status == row.status,
                       ApprovalRow.answered_at == row.answered_at)
                .values(**new)
                .execution_options(synchronize_session=False)
            )
            scrubbed = getattr(done, "rowcount", 0) == 1
        if scrubbed:
            self._truncate_wal()
        return scrubbed

    def _truncate_wal(self) -> None:
        """SQLite keeps the row as it was before ``scrub`` in earlier WAL frames: checkpoint them into
        the database (whose freed space ``secure_delete`` zeroes) and truncate the WAL. Best effort:
        a reader holding an old snapshot lets the checkpoint finish only partly."""
        if self.engine.dialect.name != "sqlite":
            return
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        except Exception:  # noqa: S110 - the scrub itself is committed; this only shortens the WAL
            pass

    # -- the approver's side -----------------------------------------------------------------

    def answer(
        self,
        approval_id: str,
        decision: Literal["approved", "denied"],
        approver: str,
        os_user: str,
        reason: str,
        *,
        now: float | None = None,
    ) -> AnswerResult:
        won = self._close(approval_id, decision, approver, os_user, reason, now=now, only_before_expiry=True)
        row = self.get(approval_id)
        if row is None:  # pragma: no cover - rows are never deleted
            raise UsageError(f"no approval {approval_id!r}")
        return AnswerResult(won, row)

    def add_refusal(self, approval_id: str, refusal: str) -> None:
        """Append a policy refusal to a pending request (best kept: the runner reports them)."""
        with Session(self.engine) as s, s.begin():
            row = s.get(ApprovalRow, approval_id)
            if row is None or row.status != "pending":
                return
            row.refusals = json.dumps([*row.refusal_list(), refusal])

    # -- reads -------------------------------------------------------------------------------

    def get(self, approval_id: str) -> ApprovalRow | None:
        with Session(self.engine, expire_on_commit=False) as s:
            return s.get(ApprovalRow, approval_id)

    def find(self, prefix: str) -> ApprovalRow:
        """The request whose id is ``prefix`` or uniquely starts with it; ``UsageError`` otherwise."""
        prefix = prefix.strip()
        if not prefix:
            raise UsageError("empty approval id")
        exact = self.get(prefix)
        if exact is not None:
            return exact
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = (
            select(ApprovalRow)
            .where(ApprovalRow.approval_id.like(escaped + "%", escape="\\"))
            .order_by(ApprovalRow.approval_id)
            .limit(6)
        )
        with Session(self.engine, expire_on_commit=False) as s:
            found = list(s.scalars(stmt))
        if not found:
            raise UsageError(f"no approval request matches {prefix!r}")
        if len(found) > 1:
            names = ", ".join(r.approval_id for r in found[:5]) + (", ..." if len(found) > 5 else "")
            raise UsageError(f"approval id {prefix!r} is ambiguous: {names}")
        return found[0]

    def requests(self, *, pending_only: bool = True, limit: int | None = None) -> list[ApprovalRow]:
        stmt = select(ApprovalRow).order_by(ApprovalRow.requested_at.desc(), ApprovalRow.approval_id)
        if pending_only:
            stmt = stmt.where(ApprovalRow.status == "pending")
        if limit is not None:
            stmt = stmt.limit(limit)
        with Session(self.engine, expire_on_commit=False) as s:
            return list(s.scalars(stmt))

    # -- crash recovery ----------------------------------------------------------------------

    def reap(self, *, now: float | None = None) -> list[str]:
        """Expire pending requests past their expiry or whose waiting runner is gone. Never approves."""
        t = time.time() if now is None else now
        host = socket.gethostname()
        reaped: list[str] = []
        for row in self.requests(pending_only=True):
            if row.expires_ts <= t:
                why = "expired: no answer before the expiry"
            elif row.owner_host == host and not owner_alive(row.owner_pid, row.owner_start):
                why = f"expired: the waiting runner (pid {row.owner_pid} on {host}) is gone"
            else:
                continue
            if self._close(row.approval_id, "expired", None, None, why, now=t, only_before_expiry=False):
                reaped.append(row.approval_id)
        return reaped

    # -- the one write that decides ----------------------------------------------------------

    def _close(
        self,
        approval_id: str,
        status: Status,
        approver: str | None,
        os_user: str | None,
        reason: str,
        *,
        only_before_expiry: bool,
        now: float | None = None,
    ) -> bool:
        t = time.time() if now is None else now
        stmt = (
            update(ApprovalRow)
            .where(ApprovalRow.approval_id == approval_id, ApprovalRow.status == "pending")
            .values(
                status=status,
                answered_by=approver,
                answered_os_user=os_user,
                answered_at=_ts(t),
                answer_reason=reason,
            )
            .execution_options(synchronize_session=False)
        )
        if only_before_expiry:
            stmt = stmt.where(ApprovalRow.expires_ts > t)
        with Session(self.engine) as s, s.begin():
            done = s.execute(stmt)
            return getattr(done, "rowcount", 0) == 1


def reap_existing(evidence_dir: Path | str, db_url: str | None = None) -> list[str]:
    """Best-effort reap at the start of a command: touches nothing unless the table already exists."""
    url = db_url or url_for(evidence_dir)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return []
    engine = create_engine(url, connect_args={"timeout": 15} if url.startswith("sqlite") else {})
    try:
        if not inspect(engine).has_table(ApprovalRow.__tablename__):
            return []
        return ApprovalStore(url, engine=engine).reap()
    finally:
        engine.dispose()
