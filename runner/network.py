"""The in-browser request gate: every request the context routes passes an ordered list of request guards.

This is the second layer of domain enforcement (the first is Chromium's resolver allowlist, which
stops what the route never sees: redirect hops, keepalive, the browser's own traffic). Here each
request gets a decision; a deny aborts it in the browser and becomes a ``decision_record``
(repeated refusals of the same host on the same page are counted, not written a thousand times).
A request guard may also ask the run to stop (a PII or secret leak attempt): the step loop checks
``stop_requested`` after each action. A guard that raises denies (fail closed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from guards.base import Decision
from runner.browser.driver import GateVerdict, RequestInfo
from runner.recorder import RunRecorder


@dataclass(frozen=True)
class RequestContext:
    step: int | None  # the mission step running when the request left (None: between steps)
    page_url: str | None


class RequestGuard(Protocol):
    name: str

    def check_request(self, request: RequestInfo, ctx: RequestContext) -> Decision: ...


class NetworkGate:
    def __init__(self, guards: Sequence[RequestGuard], recorder: RunRecorder) -> None:
        self.guards = tuple(guards)
        self.recorder = recorder
        self.step: int | None = None
        self.page_url: str | None = None
        self.allowed = 0
        self.refused = 0
        self.stop_requested: Decision | None = None
        self._seen: dict[tuple[str, str, str, str], int] = {}  # (page, host, kind, rule) -> refusals not yet written

    def __call__(self, request: RequestInfo) -> GateVerdict:
        ctx = RequestContext(self.step, request.frame_url or self.page_url)
        for guard in self.guards:
            try:
                decision = guard.check_request(request, ctx)
            except Exception as exc:  # fail closed
                decision = Decision.deny(guard.name, f"request guard failed ({type(exc).__name__})", "guard.error")
            if decision.verdict != "allow":
                self._refuse(request, ctx, decision)
                return GateVerdict(False, decision.reason)
        self.allowed += 1
        return GateVerdict(True)

    def request_stop(self, decision: Decision) -> None:
        """Ask the run to stop after the current action (first request wins)."""
        if self.stop_requested is None:
            self.stop_requested = decision

    def _refuse(self, request: RequestInfo, ctx: RequestContext, decision: Decision) -> None:
        self.refused += 1
        host = str(decision.details.get("host", ""))
        key = (ctx.page_url or "", host, request.kind, decision.rule)
        if key in self._seen:
            self._seen[key] += 1
            return
        self._seen[key] = 0
        self.recorder.guard_decision(decision, step=ctx.step, subject=_subject(request, ctx, decision))

    def flush(self) -> None:
        """Write one counted record per (page, host, kind, rule) refused again since its first record."""
        for (page, host, kind, rule), extra in self._seen.items():
            if extra:
                self.recorder.guard_decision(
                    Decision.deny(
                        "boundaries.network", f"{extra} more refusal(s) of {host or 'this host'} ({kind})", rule
                    ),
                    step=self.step,
                    subject={"host": host, "request_kind": kind, "page_url": page, "repeated": True},
                    count=extra,
                )
        self._seen = {k: 0 for k in self._seen}


def _subject(request: RequestInfo, ctx: RequestContext, decision: Decision) -> dict[str, str | None]:
    # The URL's path and query may carry PII or secrets: records name the canonical host and the kind.
    return {
        "host": str(decision.details.get("host", "")) or None,
        "request_kind": request.kind,
        "resource_type": request.resource_type,
        "method": request.method,
        "page_url": ctx.page_url,
    }
