"""One step, start to finish: guard chain → decision record → intent → action → screenshot → outcome.

Order matters and is the product's promise: the decision and the ``intent`` record are durable
before the browser is touched; if either cannot be written the action does not run. Only
idempotent actions are retried (tenacity, bounded by attempts and by the run's deadline), and each
retry is an exception record; clicks, fills and other side effects are never retried blindly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from evidence.records import Attachment
from guards.base import ActionRequest, ChainResult, GuardChain, GuardContext
from runner.browser.driver import DriverError, NavigationBlocked, StepOutcome
from runner.errors import GuardrailStop, StepFailed
from runner.mission.interpolate import InterpolationError, interpolate_args
from runner.mission.model import IDEMPOTENT_KINDS, Mission, Step
from runner.progress import Reporter
from runner.recorder import RunRecorder

DEFAULT_STEP_TIMEOUT = 30.0
MAX_ATTEMPTS = 3


class ApprovalGate:
    """Placeholder seam for the approval gate: until it exists, every approval request is denied."""

    def request(self, action: ActionRequest, result: ChainResult) -> bool:
        return False


@dataclass
class RunState:
    """What changes as the run goes: variables, steps executed, the clock."""

    mission: Mission
    started_monotonic: float
    vars: MutableMapping[str, str]
    secrets: Mapping[str, str]
    executed: int = 0
    retries_total: int = 0
    shots: list[str] = field(default_factory=list)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started_monotonic

    @property
    def remaining(self) -> float:
        return max(0.0, self.mission.boundaries.timeout - self.elapsed)


def target_summary(kind: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """What the step acts on, for records and the progress line (values pass the redactor later)."""
    keys = (
        "url",
        "selector",
        "text",
        "role",
        "name",
        "label",
        "placeholder",
        "test_id",
        "key",
        "value",
        "option_label",
        "load_state",
        "seconds",
        "as_",
        "attribute",
    )
    return {("as" if k == "as_" else k): args[k] for k in keys if k in args}


class StepExecutor:
    def __init__(
        self,
        driver: Any,
        chain: GuardChain,
        recorder: RunRecorder,
        reporter: Reporter,
        attach_screenshot: Callable[[bytes, int, str], Attachment],
        approvals: ApprovalGate | None = None,
    ) -> None:
        self.driver = driver
        self.chain = chain
        self.recorder = recorder
        self.reporter = reporter
        self.attach_screenshot = attach_screenshot
        self.approvals = approvals or ApprovalGate()

    # ------------------------------------------------------------------ the step
    def run(self, n: int, step: Step, state: RunState) -> None:
        kind = step.kind
        raw = step.args.model_dump(exclude_none=True, by_alias=False)
        try:
            args, _secrets_used = interpolate_args(raw, state.vars, state.secrets)
        except InterpolationError as exc:
            self.recorder.exception(
                category="step_failed", error_type="InterpolationError", message=str(exc), mitigation="aborted", step=n
            )
            raise StepFailed(f"step {n}: {exc}") from exc
        target = target_summary(kind, args)
        page_url = self.driver.page_url()
        action = ActionRequest(step_no=n, kind=kind, step=step, args=args, url=args.get("url"))
        ctx = GuardContext(state.mission, "run", page_url, state.executed, state.elapsed)
        result = self.chain.check(action, ctx)
        self.recorder.step_decision(n, kind, result, {"target": target, "page_url": page_url})
        self.reporter.event(
            "decision",
            step=n,
            kind=kind,
            decision=result.verdict,
            guard=result.deciding.guard,
            reason=result.deciding.reason,
        )
        if result.verdict == "deny":
            self._stop(n, result.deciding.guard, result.deciding.rule, result.deciding.reason)
        if result.verdict == "require_approval" and not self.approvals.request(action, result):
            self._stop(
                n, result.deciding.guard, result.deciding.rule, "approval not granted: " + result.deciding.reason
            )

        intent = self.recorder.intent(n, kind, target, self.driver.describe(kind, args), page_url)
        started = time.monotonic()
        timeout = min(step.effective_timeout or DEFAULT_STEP_TIMEOUT, max(state.remaining, 0.001))
        retries = 0
        try:
            outcome, retries = self._perform(n, kind, args, timeout, state)
        except NavigationBlocked as exc:
            shot = self._shot(n, "blocked")
            self.recorder.outcome(
                intent,
                outcome="blocked",
                url_after=self.driver.page_url(),
                duration_ms=_ms(started),
                retries=retries,
                error=str(exc),
                attachments=shot,
            )
            self._stop(
                n, "boundaries.sandbox", "boundaries.allowed_domains", f"navigation refused by the sandbox: {exc}"
            )
        except DriverError as exc:
            shot = self._shot(n, "failed")
            self.recorder.outcome(
                intent,
                outcome="failed",
                url_after=self.driver.page_url(),
                duration_ms=_ms(started),
                retries=getattr(exc, "retries", 0),
                error=str(exc),
                attachments=shot,
            )
            if state.remaining <= 0:
                self._stop(n, "least_privilege.timeout", "boundaries.timeout", f"run timeout reached during step {n}")
            self.recorder.exception(
                category="step_failed", error_type=type(exc).__name__, message=str(exc), mitigation="aborted", step=n
            )
            self.reporter.event(
                "step_finished",
                step=n,
                kind=kind,
                target=_short(target),
                outcome="failed",
                duration_ms=_ms(started),
                retries=getattr(exc, "retries", 0),
            )
            raise StepFailed(f"step {n} ({kind}) failed: {exc}") from exc

        state.executed += 1
        state.retries_total += retries
        if kind == "extract" and outcome.value is not None:
            state.vars[str(args["as_"])] = outcome.value
        when = str(args["name"]) if kind == "screenshot" else "after"
        shot = self._shot(n, when, full_page=bool(args.get("full_page", False)))
        duration = _ms(started)
        self.recorder.outcome(
            intent, outcome="ok", url_after=outcome.url_after, duration_ms=duration, retries=retries, attachments=shot
        )
        self.reporter.event(
            "step_finished",
            step=n,
            kind=kind,
            target=_short(target),
            outcome="ok",
            duration_ms=duration,
            retries=retries,
        )

    # ------------------------------------------------------------------ helpers
    def _stop(self, n: int, guard: str, rule: str, reason: str) -> None:
        self.recorder.exception(
            category="guardrail", error_type="GuardrailStop", message=reason, mitigation="blocked", step=n
        )
        raise GuardrailStop(f"step {n}: {reason}", guard=guard, rule=rule)

    def _perform(
        self, n: int, kind: str, args: Mapping[str, Any], timeout: float, state: RunState
    ) -> tuple[StepOutcome, int]:
        if kind not in IDEMPOTENT_KINDS:
            return self.driver.perform(kind, args, timeout), 0

        def record_retry(rs: RetryCallState) -> None:
            exc = rs.outcome.exception() if rs.outcome else None
            self.recorder.exception(
                category="transient",
                error_type=type(exc).__name__,
                message=str(exc),
                mitigation="retried",
                step=n,
                attempt=rs.attempt_number,
            )
            self.reporter.event("retry", step=n, attempt=rs.attempt_number, error=str(exc))

        retrying = Retrying(
            stop=stop_after_attempt(MAX_ATTEMPTS) | stop_after_delay(max(state.remaining, 0.0)),
            wait=wait_exponential(multiplier=0.25, max=2.0),
            retry=retry_if_exception(lambda e: isinstance(e, DriverError) and e.transient),
            before_sleep=record_retry,
            reraise=True,
        )
        attempts = 0
        try:
            for attempt in retrying:
                with attempt:
                    attempts += 1
                    per_try = min(timeout, max(state.remaining, 0.001))
                    outcome: StepOutcome = self.driver.perform(kind, args, per_try)
        except DriverError as exc:
            exc.retries = attempts - 1  # type: ignore[attr-defined]
            raise
        return outcome, attempts - 1

    def _shot(self, n: int, when: str, full_page: bool = False) -> list[Attachment]:
        try:
            png = self.driver.screenshot(full_page=full_page)
        except DriverError as exc:
            self.recorder.exception(
                category="screenshot", error_type=type(exc).__name__, message=str(exc), mitigation="recorded", step=n
            )
            return []
        return [self.attach_screenshot(png, n, _safe(when))]


def _ms(started: float) -> float:
    return (time.monotonic() - started) * 1000.0


def _short(target: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in target.items() if k != "value")


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name)[:40]
