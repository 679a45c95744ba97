"""One step, start to finish: guard chain → decision record → intent → action → screenshot → outcome.

Order matters and is the product's promise: the decision and the ``intent`` record are durable
before the browser is touched; if either cannot be written the action does not run. Only
idempotent actions are retried (``runner/retries.py``: bounded by attempts and by the run's
deadline), and each retry is an exception record; clicks, fills and other side effects are never
retried blindly. The browser is a ``Driver`` (``runner/browser/driver.py``); approvals are an
``Approvals`` (``runner/approvals/seam.py``); the PII runtime joins through ``StepHooks``.
"""

from __future__ import annotations

import functools
import gc
import time
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from evidence.records import ActionRecord, Attachment, DecisionRecord, GuardCheck, Record
from guards.base import ActionRequest, ChainResult, Decision, GuardContext, StepChain
from guards.observed import ElementInfo
from kernel.errors import GuardrailStop, StepFailed
from missions.interpolate import InterpolationError, interpolate_args
from missions.model import Mission, Step
from runner.approvals.seam import ApprovalContext, ApprovalNotGranted, Approvals
from runner.browser.driver import ActionFailed, Driver, DriverError, NavigationBlocked, StepOutcome
from runner.launch import sandbox_notice
from runner.progress import Reporter
from runner.recorder import RunRecorder
from runner.retries import perform_with_retries
from runner.step_targets import file_safe, short_target, target_summary

DEFAULT_STEP_TIMEOUT = 30.0


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


class StepHooks(Protocol):
    """The PII runtime's part of the step loop (``runner/pii_runtime.PiiRuntime``)."""

    def before_screenshot(self, step: int, driver: Driver) -> None:
        """Scan the page (incrementally) and remember where PII is, before each screenshot."""
        ...

    def screenshot_masks(self, url: str) -> list[str] | None:
        """CSS selectors to paint over; None: the page could not be scanned, take no screenshot."""
        ...

    def pending_stop(self) -> Decision | None:
        """A stop asked for during the action (PII on the page, a refused PII/secret request)."""
        ...


class StepExecutor:
    """Runs one step at a time against the driver, through the chain, approvals and hooks."""

    def __init__(
        self,
        driver: Driver,
        chain: StepChain,
        recorder: RunRecorder,
        reporter: Reporter,
        attach_screenshot: Callable[[bytes, int, str], Attachment],
        *,
        approvals: Approvals | None,
        hooks: StepHooks | None,
    ) -> None:
        """Every part is required: a missing one is a construction error, never an allow-all.

        Without ``hooks`` no page would be scanned and no screenshot masked; without ``approvals``
        a ``require_approval`` would have nowhere to go. Pass ``NoApprovals()`` explicitly where no
        approval channel exists (it refuses every approval).
        """
        if hooks is None:
            raise ValueError("StepExecutor needs its PII hooks: without them screenshots would not be masked")
        if approvals is None:
            raise ValueError("StepExecutor needs an approval desk (NoApprovals() refuses all): none was given")
        if not isinstance(chain, StepChain):
            raise ValueError("StepExecutor needs a StepChain (at least one guard): an action must be judged")
        self.driver = driver
        self.chain = chain
        self.recorder = recorder
        self.reporter = reporter
        self.attach_screenshot = attach_screenshot
        self.approvals: Approvals = approvals
        self.hooks: StepHooks = hooks
        freeze_startup_heap()
        notice = sandbox_notice()
        if notice is not None:  # once per run, before the first step (the start run_record says it too)
            reporter.event("warning", message=notice)

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
        timeout = min(step.effective_timeout or DEFAULT_STEP_TIMEOUT, max(state.remaining, 0.001))
        element = self._resolve_target(n, step, kind, args, target, timeout, state)
        action = ActionRequest(step_no=n, kind=kind, step=step, args=args, url=args.get("url"), element=element)
        ctx = GuardContext(state.mission, "run", page_url, state.executed, state.elapsed)
        result = self.chain.check(action, ctx)
        subject = {"target": target, "page_url": page_url}
        if result.verdict == "allow":  # the decision and the intent: one group commit, durable before the action
            intent = self._decide_and_intend(n, kind, result, subject, target, self.driver.describe(kind, args))
        else:
            self.recorder.step_decision(n, kind, result, subject)
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
        if result.verdict == "require_approval":
            self._approve(n, action, result, page_url, timeout, state)
            page_url = self.driver.page_url()
            intent = self.recorder.intent(n, kind, target, self.driver.describe(kind, args), page_url)
        started = time.monotonic()
        timeout = min(step.effective_timeout or DEFAULT_STEP_TIMEOUT, max(state.remaining, 0.001))
        cut = kind == "wait_for" and float(args.get("seconds") or 0) > state.remaining
        if cut:  # a pause (which ignores step timeouts) still ends at the run's deadline
            args = {**args, "seconds": state.remaining}
        retries = 0
        try:
            outcome, retries = self._perform(n, kind, args, timeout, state)
            if cut:
                raise ActionFailed("the pause does not fit in the run's timeout")
        except NavigationBlocked as exc:
            shot, error = self._shot(n, "blocked"), str(exc)
            self._check_stop(n, lambda: self.recorder.outcome(
                intent, outcome="blocked", url_after=self.driver.page_url(), duration_ms=_ms(started),
                retries=retries, error=error, attachments=shot,
            ))
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
            self._check_stop(n)  # e.g. the form post was refused for PII: a guardrail stop, not a failure
            self.recorder.exception(
                category="step_failed", error_type=type(exc).__name__, message=str(exc), mitigation="aborted", step=n
            )
            self.reporter.event(
                "step_finished",
                step=n,
                kind=kind,
                target=short_target(target),
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
            target=short_target(target),
            outcome="ok",
            duration_ms=duration,
            retries=retries,
        )
        self._check_stop(n)  # PII on the page (pii.on_page) or a refused PII/secret request: exit 3

    # ------------------------------------------------------------------ danger zones and approvals
    def _resolve_target(
        self,
        n: int,
        step: Step,
        kind: str,
        args: Mapping[str, Any],
        target: Mapping[str, Any],
        timeout: float,
        state: RunState,
    ) -> ElementInfo | None:
        """The element the action will really hit, resolved just before acting (for the danger zones).

        A target that is not there (or not unique) fails the step here, exactly as the action
        would, and nothing is done; one that is there but cannot be described comes back
        ``found=False`` and the danger-zone guard asks for approval (fail closed).
        """
        if not self.approvals.needs_target(kind, step):
            return None
        started = time.monotonic()
        try:
            return self.approvals.resolve(self.driver, kind, args, timeout)
        except DriverError as exc:
            # Every step gets its decision record: here the chain could not judge a target that is not
            # there, so the action is refused (and the step fails, exit 4, as the action itself would).
            self.recorder.guard_decision(
                Decision.deny("danger_zones", "target not found: the action cannot be checked; nothing was done",
                              "danger_zone.unresolved"),
                step=n,
                subject={"target": dict(target), "kind": kind},
            )
            if state.remaining <= 0:
                self._stop(n, "least_privilege.timeout", "boundaries.timeout", f"run timeout reached during step {n}")
            self.recorder.exception(
                category="step_failed",
                error_type=type(exc).__name__,
                message=f"target not resolved, nothing was done: {exc}",
                mitigation="aborted",
                step=n,
            )
            self.reporter.event(
                "step_finished", step=n, kind=kind, target=short_target(target), outcome="failed",
                duration_ms=_ms(started), retries=0,
            )
            raise StepFailed(f"step {n} ({kind}) failed: {exc}") from exc

    def _approve(
        self, n: int, action: ActionRequest, result: ChainResult, page_url: str, timeout: float, state: RunState
    ) -> None:
        """Ask for approval; return only when approved and bound. Time spent waiting for a human is not run time."""
        waiting_since = time.monotonic()
        ctx = ApprovalContext(
            driver=self.driver,
            action=action,
            result=result,
            page_url=page_url,
            timeout_s=timeout,
            total_steps=len(state.mission.steps),
            shoot=lambda when, outline: self._shot(n, when, outline=outline),
        )
        try:
            self.approvals.approve(ctx)
        except ApprovalNotGranted as exc:
            self._stop(n, "approval_gate", exc.rule, f"approval not granted: {exc}")
        finally:
            # boundaries.timeout bounds the automation; approvals.timeout bounds the human.
            state.started_monotonic += time.monotonic() - waiting_since

    # ------------------------------------------------------------------ helpers
    def _decide_and_intend(
        self, n: int, kind: str, result: ChainResult, subject: Mapping[str, Any], target: Mapping[str, Any],
        call: str,
    ) -> Record:
        """The allow ``decision_record`` and the ``intent`` as one group (``RunRecorder.record_many``:
        one write, one fsync), the same fields as ``step_decision`` and ``intent`` write one by one.
        If the group cannot be written, neither is, and the action does not run."""
        rec = self.recorder
        deciding = result.deciding
        decision: dict[str, Any] = {
            "guard": "chain", "decision": result.verdict, "rationale": deciding.reason, "rule": deciding.rule,
            "step": n, "kind": kind, "subject": dict(subject),
            "checks": [GuardCheck(guard=d.guard, decision=d.verdict, reason=d.reason, rule=d.rule)
                       for d in result.decisions],
        }
        intent: dict[str, Any] = {"phase": "intent", "step": n, "kind": kind, "target": dict(target), "call": call,
                                  "url_before": subject["page_url"]}
        return rec.record_many([(DecisionRecord, rec.policy, (), decision), (ActionRecord, rec.runner, (), intent)])[1]

    def _stop(self, n: int, guard: str, rule: str, reason: str) -> None:
        self.recorder.exception(
            category="guardrail", error_type="GuardrailStop", message=reason, mitigation="blocked", step=n
        )
        raise GuardrailStop(f"step {n}: {reason}", guard=guard, rule=rule)

    def _perform(
        self, n: int, kind: str, args: Mapping[str, Any], timeout: float, state: RunState
    ) -> tuple[StepOutcome, int]:
        def record_retry(attempt: int, exc: BaseException | None) -> None:
            self.recorder.exception(
                category="transient",
                error_type=type(exc).__name__,
                message=str(exc),
                mitigation="retried",
                step=n,
                attempt=attempt,
            )
            self.reporter.event("retry", step=n, attempt=attempt, error=str(exc))

        return perform_with_retries(self.driver, kind, args, timeout, lambda: state.remaining, record_retry)

    def _check_stop(self, n: int, before: Callable[[], object] | None = None) -> None:
        """Stop (exit 3) if a guard asked for it during the action; ``before`` writes the outcome first."""
        decision = self.hooks.pending_stop()
        if decision is None:
            return
        if before is not None:
            before()
        self._stop(n, decision.guard, decision.rule, decision.reason)

    def _shot(self, n: int, when: str, full_page: bool = False, outline: Sequence[str] = ()) -> list[Attachment]:
        masks: list[str] = []
        try:
            # PII page scan first: screenshots mask what it found
            self.hooks.before_screenshot(n, self.driver)
            found = self.hooks.screenshot_masks(self.driver.page_url())
            if found is None:
                return []  # the page could not be scanned: no unmasked image (recorded by the hook)
            masks = found
            if masks:
                png = self.driver.screenshot(full_page=full_page, mask_selectors=masks, outline=outline)
            else:
                png = self.driver.screenshot(full_page=full_page, outline=outline) if outline else (
                    self.driver.screenshot(full_page=full_page)
                )
        except DriverError as exc:
            self.recorder.exception(
                category="screenshot", error_type=type(exc).__name__, message=str(exc), mitigation="recorded", step=n
            )
            return []
        return [self.attach_screenshot(png, n, file_safe(when))]


@functools.cache
def freeze_startup_heap() -> None:
    """Move what the process holds before its first step (Presidio, spaCy, SQLAlchemy, Playwright:
    millions of objects) out of the cyclic collector's reach, once per process.

    Why: otherwise a full collection walks all of it, ~70-170 ms each, once or twice inside a run's
    step loop and once more at interpreter exit. What is frozen is live, long-lived state; only the
    little cyclic garbage already there (tens of objects) stays uncollected. Later runs in the same
    process (a worker) are collected as usual.
    """
    gc.freeze()


def _ms(started: float) -> float:
    return (time.monotonic() - started) * 1000.0
