"""Typed helpers that turn run events into evidence records, all through the one writer.

The step loop says *what happened* (a decision, an intent, an outcome, an exception); this module
says *which record* that is. Every record goes through ``EvidenceWriter.append`` and so through its
redactor, its hash chain and its fsync.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from evidence.records import (
    ActionRecord,
    Actor,
    Attachment,
    DecisionRecord,
    ExceptionRecord,
    GuardCheck,
    Record,
)
from evidence.writer import EvidenceWriter
from guards.base import ChainResult, Decision


class RunRecorder:
    def __init__(self, writer: EvidenceWriter, runner_actor: Actor) -> None:
        self.writer = writer
        self.runner = runner_actor
        self.policy = Actor(type="policy", id="guard-chain")
        self.counts: Counter[str] = Counter()

    def _append(self, cls: type[Record], actor: Actor, attachments: Sequence[Attachment] = (), **f: Any) -> Record:
        record = self.writer.append(cls, actor=actor, attachments=attachments, **f)
        self.counts[cls.TYPE] += 1
        return record

    def record(self, cls: type[Record], actor: Actor, attachments: Sequence[Attachment] = (), **f: Any) -> Record:
        """Any record type (approval_request, approval_record, ...), counted like the others."""
        return self._append(cls, actor, attachments, **f)

    def record_soon(self, cls: type[Record], actor: Actor, **f: Any) -> None:
        """A record that gates nothing, written in the writer's own thread while the caller goes on
        (``EvidenceWriter.append_soon``): a page's ``pii_finding`` while the screenshot is taken.
        The next record waits for it: order kept, and its failure stops the run there."""
        self.writer.append_soon(cls, actor=actor, **f)
        self.counts[cls.TYPE] += 1

    def record_many(self, items: Sequence[tuple[type[Record], Actor, Sequence[Attachment], Mapping[str, Any]]]) -> list[
        Record
    ]:
        """Several records as one group commit (``EvidenceWriter.append_many``): one batch of
        redaction, one write, one fsync when any of them gates an action — e.g. a step's allow
        decision and its intent, made durable together before the action runs."""
        records = self.writer.append_many(items)
        for r in records:
            self.counts[r.type] += 1
        return records

    def step_decision(self, step: int, kind: str, result: ChainResult, subject: Mapping[str, Any]) -> Record:
        deciding = result.deciding
        return self._append(
            DecisionRecord,
            self.policy,
            guard="chain",
            decision=result.verdict,
            rationale=deciding.reason,
            rule=deciding.rule,
            step=step,
            kind=kind,
            subject=dict(subject),
            checks=[
                GuardCheck(guard=d.guard, decision=d.verdict, reason=d.reason, rule=d.rule) for d in result.decisions
            ],
        )

    def guard_decision(
        self, decision: Decision, *, step: int | None, subject: Mapping[str, Any], count: int = 1
    ) -> Record:
        return self._append(
            DecisionRecord,
            self.policy,
            guard=decision.guard,
            decision=decision.verdict,
            rationale=decision.reason,
            rule=decision.rule,
            step=step,
            subject=dict(subject),
            count=count,
        )

    def intent(self, step: int, kind: str, target: Mapping[str, Any], call: str, url_before: str | None) -> Record:
        return self._append(
            ActionRecord,
            self.runner,
            phase="intent",
            step=step,
            kind=kind,
            target=dict(target),
            call=call,
            url_before=url_before,
        )

    def outcome(
        self,
        intent: Record,
        *,
        outcome: str,
        url_after: str | None,
        duration_ms: float,
        retries: int,
        error: str | None = None,
        attachments: Sequence[Attachment] = (),
    ) -> Record:
        assert isinstance(intent, ActionRecord)
        return self._append(
            ActionRecord,
            self.runner,
            attachments,
            phase="outcome",
            step=intent.step,
            kind=intent.kind,
            target=intent.target,
            call=intent.call,
            url_before=intent.url_before,
            url_after=url_after,
            intent_id=intent.record_id,
            outcome=outcome,
            duration_ms=round(duration_ms, 1),
            retries=retries,
            error=error,
        )

    def exception(
        self,
        *,
        category: str,
        error_type: str,
        message: str,
        mitigation: str,
        step: int | None = None,
        attempt: int | None = None,
    ) -> Record:
        return self._append(
            ExceptionRecord,
            self.runner,
            category=category,
            error_type=error_type,
            message=message,
            mitigation=mitigation,
            step=step,
            attempt=attempt,
        )
