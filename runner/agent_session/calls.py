"""One tool call, start to finish: grant → arguments → call record → mission steps → masked result.

Every action a tool asks for becomes a mission ``Step`` run by ``StepExecutor`` — the same guard
chain, approvals, request gate, PII hooks and records as a YAML step. A refusal is an error
result and the session goes on; what ends the run (a PII stop, a refused PII/secret request, the
mission timeout, ``browser_close``, an evidence error) ends it for every later call too. Every
text that leaves here — results and errors — is masked with the run's redactor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from evidence.records import Actor, DecisionRecord
from guards.base import Decision
from kernel.errors import EvidenceUnavailable, GuardrailStop, StepFailed, WardenError
from missions.model import Step
from runner.agent_session import tools as t
from runner.agent_session.actor import AgentRecorder, agent_actor
from runner.agent_session.live import LiveRun
from runner.agent_session.masking import mask, masked_line
from runner.browser.driver import AriaSnapshot, DriverError
from runner.exit_codes import ExitCode

TIMEOUT_REACHED = "the mission's timeout (boundaries.timeout) is reached: the run ends"
REF_TIMEOUT_S = 5.0  # a ref names an element of the snapshot's page: it is there, or it is gone


@dataclass(frozen=True)
class AgentInfo:
    """Who drives the session: the MCP client's name and version from ``initialize``."""

    name: str = "python"
    version: str = ""

    def subject(self) -> dict[str, str]:
        return {"kind": "agent", "name": self.name, "version": self.version}

    def actor(self) -> Actor:
        return agent_actor(self.name, self.version)


@dataclass(frozen=True)
class ToolResult:
    """What the model gets back: masked text, a masked PNG for screenshots, what was masked."""

    text: str
    ok: bool = True
    image_png: bytes | None = None
    masked: Mapping[str, int] = field(default_factory=dict)
    ended: bool = False  # the session's run has ended: every later call is refused


class Refused(Exception):
    """A call refused before any step ran (bad ref, unsupported argument): an error result."""


class Dispatcher:
    """The tool calls of one session, on its ``LiveRun`` (one thread, one call at a time)."""

    def __init__(self, live: LiveRun, end: Callable[[int, str], None]) -> None:
        self.live = live
        self._end = end
        self._agent = AgentInfo()
        self._recorder = AgentRecorder(live.run.recorder, self._agent.actor())
        live.executor.recorder = self._recorder  # the steps of agent calls: action records by the agent
        self.ended: str | None = None
        self._step = 0
        self._snap: AriaSnapshot | None = None
        allowed = live.loaded.mission.boundaries.allowed_actions
        self.allowed = frozenset(allowed)
        self.listed = t.granted(allowed)

    @property
    def agent(self) -> AgentInfo:
        return self._agent

    @agent.setter
    def agent(self, info: AgentInfo) -> None:
        self._agent = info
        self._recorder.agent = info.actor()

    # ------------------------------------------------------------------ the call
    def call(self, name: str, arguments: Mapping[str, Any] | None) -> ToolResult:
        """Never raises: a refusal, a bad argument or a failure is an error result (fail closed)."""
        try:
            return self._call(name, arguments)
        except EvidenceUnavailable as exc:  # e.g. the call's own record could not be written
            self._end_run(ExitCode.EVIDENCE_UNAVAILABLE.value, str(exc))
            return self._result(f"the evidence cannot be written ({exc}): the run ends", ok=False, ended=True)
        except Exception as exc:  # a bug must not leave an action half-judged: the run ends, the server serves
            message = f"internal error ({type(exc).__name__}): the run ends"
            try:
                self.live.run.recorder.exception(category="error", error_type=type(exc).__name__, message=message,
                                                 mitigation="aborted", step=self._step or None)
            finally:
                self._end_run(ExitCode.STEP_FAILED.value, message)
            return self._result(message, ok=False, ended=True)

    def _call(self, name: str, arguments: Mapping[str, Any] | None) -> ToolResult:
        if self.ended is not None:
            return self._result(f"the session's run has ended ({self.ended}); nothing was done", ok=False, ended=True)
        n = self._step + 1
        subject = {"agent": self.agent.subject(), "tool": name, "arguments": dict(arguments or {})}
        spec = t.BY_NAME.get(name)
        if spec is None or spec not in self.listed:
            names = ", ".join(s.name for s in self.listed)
            if spec is None:
                why, rule = f"unknown tool {name!r}", "mcp.tools"
            else:
                why = f"{name} is not granted by boundaries.allowed_actions (needs {', '.join(spec.listed_kinds)})"
                rule = "boundaries.allowed_actions"
            self._record(Decision.deny("mcp.tools", why, rule), n, subject)
            return self._result(f"{why}; this session offers: {names}", ok=False)
        try:
            args = t.parse_args(spec, arguments)
        except ValueError as exc:
            self._record(Decision.deny("mcp.tools", str(exc), "mcp.arguments"), n, subject)
            return self._result(str(exc), ok=False)
        missing = sorted(set(spec.kinds(args)) - self.allowed)
        if missing:
            why = f"{name} with these arguments needs {', '.join(missing)}, not in boundaries.allowed_actions"
            self._record(Decision.deny("mcp.tools", why, "boundaries.allowed_actions"), n, subject)
            return self._result(why, ok=False)
        if self.live.state.remaining <= 0:
            return self._stop_run(TIMEOUT_REACHED)
        self._record(Decision.allow("mcp.tools", f"agent call {name}", "mcp.tools"), n, subject)
        approvals_before = self.live.run.recorder.counts["approval_request"]
        executed_before = self.live.state.executed
        try:
            text, png = self._handle(spec.name, args)
        except Refused as exc:
            return self._result(str(exc), ok=False)
        except GuardrailStop as exc:
            if self.live.executor.hooks.pending_stop() is not None or self.live.state.remaining <= 0:
                return self._stop_run(str(exc))
            asked = self.live.run.recorder.counts["approval_request"] > approvals_before
            lead = "approval not granted" if asked else f"refused by {exc.guard or 'the guards'} ({exc.rule})"
            return self._result(f"{lead}: {exc}; {_done(self.live.state.executed - executed_before)}", ok=False)
        except (StepFailed, DriverError) as exc:
            done = self.live.state.executed - executed_before
            return self._result(f"failed: {exc}" + (f"; {_done(done)}" if done else ""), ok=False)
        except EvidenceUnavailable as exc:
            self._end_run(ExitCode.EVIDENCE_UNAVAILABLE.value, str(exc))
            return self._result(f"the evidence cannot be written ({exc}): the run ends", ok=False, ended=True)
        except WardenError as exc:
            self._end_run(exc.exit_code, str(exc))
            return self._result(f"the run ends: {exc}", ok=False, ended=True)
        if self.live.run.recorder.counts["approval_request"] > approvals_before:
            text = "Approval: granted by a person (out of band)\n" + text
        return self._result(text, image=png, ended=self.ended is not None)

    def expire(self) -> bool:
        """End the run if the mission's timeout has passed (also between calls: an idle agent)."""
        if self.ended is None and self.live.state.remaining <= 0:
            self._stop_run(TIMEOUT_REACHED)
            return True
        return False

    # ------------------------------------------------------------------ the tools
    def _handle(self, name: str, a: t.ToolArgs) -> tuple[str, bytes | None]:
        if name == "browser_snapshot":
            return self._page(), None
        if isinstance(a, t.Tabs):
            return self._tabs(a), None
        if name == "browser_close":
            self._end_run(ExitCode.OK.value, "the agent closed the browser")
            return "The browser is closed and the session's run has ended.", None
        if isinstance(a, t.Navigate):
            self._run({"goto": {"url": a.url}})
        elif name == "browser_navigate_back":
            back = self.live.driver.history_back_url()
            if back is None:
                raise Refused("there is no previous page in the browser's history")
            self._run({"goto": {"url": back, "back": True}})  # judged as a goto to that page, made by history
        elif isinstance(a, t.Click):
            click: dict[str, Any] = self._target(a.the_ref)
            if a.doubleClick:
                click["double"] = True
            if a.button != "left":
                click["button"] = a.button
            if a.modifiers:
                click["modifiers"] = list(a.modifiers)
            self._run({"click": click})  # every variant is a click: the danger zones judge it as one
        elif isinstance(a, t.Type):
            target = self._target(a.the_ref)
            self._run({"fill": {**target, "value": a.text, **({"slowly": True} if a.slowly else {})}})
            if a.submit:
                self._run({"press": {**target, "key": "Enter"}})
        elif isinstance(a, t.FillForm):
            for f in a.fields:
                self._run(_form_step(f, self._target(f.the_ref)))
        elif isinstance(a, t.SelectOption):
            self._run({"select": {**self._target(a.the_ref), "values": list(a.values)}})
        elif isinstance(a, t.PressKey):
            self._run({"press": {"key": a.key}})
        elif isinstance(a, t.WaitFor):
            if a.time is not None:
                self._run({"wait_for": {"seconds": float(a.time)}})
            if a.text is not None:
                self._run({"wait_for": {"text": a.text}})
            if a.textGone is not None:
                self._run({"wait_for": {"text_gone": a.textGone}})
        elif isinstance(a, t.TakeScreenshot):
            if a.ref is not None or a.target is not None:
                raise Refused("browser_take_screenshot: element screenshots are not supported; omit ref")
            self.live.last_png = None
            self._run({"screenshot": {"name": "agent", "full_page": a.fullPage}})
            png = self.live.last_png
            if png is None:
                raise Refused("no screenshot: the page could not be scanned for PII, so no image (fail closed)")
            return f"Screenshot of {self.live.driver.page_url()} (PII regions masked)", png
        elif isinstance(a, t.Element):  # browser_hover
            self._run({"hover": self._target(a.the_ref)})
        else:  # pragma: no cover - every listed tool is handled above
            raise Refused(f"{name} is not implemented")
        return self._page(), None

    def _tabs(self, a: t.Tabs) -> str:
        """Playwright MCP's tabs. Not steps (no page action): the call record says what was asked."""
        d = self.live.driver
        if a.action == "select":
            d.select_tab(int(a.index or 0))
        elif a.action == "new":
            d.select_tab(0, new=True)
        elif a.action == "close":
            d.select_tab(d.tabs()[1] if a.index is None else a.index, close=True)
        # A round trip to the browser first: sync Playwright judges the page's own pending requests
        # (routes) only while Warden talks to it, so a page's navigation is through before we read.
        d.document_token()
        urls, current = d.tabs()
        lines = [f"- {i}: {'(current) ' if i == current else ''}{u}" for i, u in enumerate(urls)]
        listing = "### Open tabs\n" + "\n".join(lines)
        return listing if a.action == "list" else f"{listing}\n{self._page()}"

    def _target(self, ref: str) -> dict[str, Any]:
        """The step target for a snapshot ref, if that ref is of the current page's last snapshot."""
        snap = self._snap
        if snap is None or ref not in snap.refs:
            raise Refused(f"unknown ref {ref}: it is not in the last snapshot; call browser_snapshot and use its refs")
        if self.live.driver.document_token() != snap.document:
            raise Refused(f"stale ref {ref}: the page changed since the snapshot it came from; call browser_snapshot")
        return {"selector": f"aria-ref={ref}", "timeout": REF_TIMEOUT_S}

    def _run(self, data: dict[str, Any]) -> None:
        """One mission step through the executor, exactly as a YAML step (its own step number)."""
        try:
            step = Step.model_validate(data)
        except ValidationError as exc:  # e.g. a value typed slowly holding an Enter: refused, nothing done
            raise Refused("; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())) from None
        self._step += 1
        n = self._step
        live = self.live
        live.gate.step = n
        live.gate.page_url = live.driver.page_url()
        try:
            live.executor.run(n, step, live.state)
        finally:
            live.gate.flush()

    def _page(self) -> str:
        snap = self.live.driver.aria_snapshot()
        self._snap = snap
        return f"### Page\n- Page URL: {snap.url}\n### Snapshot\n```yaml\n{snap.text}\n```"

    # ------------------------------------------------------------------ results and records
    def _result(self, text: str, *, ok: bool = True, image: bytes | None = None, ended: bool = False) -> ToolResult:
        try:
            masked, counts = mask(text, self.live.redact)
        except Exception as exc:  # what cannot be masked is not given (fail closed)
            return ToolResult(f"the result is withheld: it could not be masked ({type(exc).__name__})", ok=False,
                              ended=ended)
        return ToolResult(f"{masked}\n{masked_line(counts)}", ok=ok, image_png=image, masked=dict(counts), ended=ended)

    def _record(self, decision: Decision, n: int, subject: Mapping[str, Any]) -> None:
        """The call's own record: by the agent (actor kind ``agent``), with the verdict on it."""
        self.live.run.recorder.record(DecisionRecord, self._agent.actor(), guard=decision.guard,
                                      decision=decision.verdict, rationale=decision.reason, rule=decision.rule,
                                      step=n, subject=dict(subject))

    def _stop_run(self, reason: str) -> ToolResult:
        if self.ended is None:
            self.live.run.recorder.exception(category="guardrail", error_type="GuardrailStop", message=reason,
                                             mitigation="blocked", step=self._step or None)
            self._end_run(ExitCode.GUARDRAIL.value, reason)
        return self._result(f"the run stopped: {reason}; no further actions in this session", ok=False, ended=True)

    def _end_run(self, exit_code: int, message: str) -> None:
        if self.ended is None:
            self.ended = message
            self._end(exit_code, message)


def _done(steps: int) -> str:
    """What an error result says of the call's earlier steps (``type`` + submit, ``fill_form``)."""
    return "nothing was done" if steps == 0 else f"{steps} earlier step(s) of this call were done"


def _form_step(f: t.FormField, target: dict[str, Any]) -> dict[str, Any]:
    if f.type in ("textbox", "slider"):
        return {"fill": {**target, "value": f.value}}
    if f.type == "combobox":
        return {"select": {**target, "label": f.value}}
    if f.type == "checkbox" and f.value.strip().lower() == "false":
        return {"uncheck": target}
    return {"check": target}
