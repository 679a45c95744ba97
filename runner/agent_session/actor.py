"""The agent as the actor of its calls: actor kind ``agent``, id ``<client name>/<version>``.

A tool call's own record (the ``mcp.tools`` decision) and the action records of the steps it
runs name the agent; the guard chain's verdicts stay the policy's, exceptions the runner's.
``AgentRecorder`` is the run's recorder (same writer, same counts) with that one difference, so
``StepExecutor`` is unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from evidence.records import ActionRecord, Actor, Attachment, Record
from runner.recorder import RunRecorder


def agent_actor(name: str, version: str) -> Actor:
    return Actor(type="agent", id=f"{name}/{version}" if version else name)


class AgentRecorder(RunRecorder):
    """The run's recorder whose action records are by the agent (every other record unchanged)."""

    def __init__(self, base: RunRecorder, actor: Actor) -> None:
        vars(self).update(vars(base))  # the same writer, runner and policy actors, the same counts object
        self.agent = actor

    def _append(self, cls: type[Record], actor: Actor, attachments: Sequence[Attachment] = (), **f: Any) -> Record:
        return super()._append(cls, self._who(cls, actor), attachments, **f)

    def record_many(self, items: Sequence[tuple[type[Record], Actor, Sequence[Attachment], Mapping[str, Any]]]) -> list[
        Record
    ]:
        return super().record_many([(cls, self._who(cls, actor), att, f) for cls, actor, att, f in items])

    def _who(self, cls: type[Record], actor: Actor) -> Actor:
        return self.agent if issubclass(cls, ActionRecord) and actor == self.runner else actor
