"""The Python API: a guarded browser session from a mission, with the MCP tools as methods.

For agent frameworks that do not speak MCP (browser-use style loops, LangGraph nodes)::

    with open_session("mission.yaml", evidence_dir=Path("ev"), approval="queue") as s:
        page = s.snapshot()                     # masked accessibility snapshot with [ref=eN]
        s.click("e5", element="Submit payment")  # a danger zone waits for `warden approvals approve ID`
        print(s.run_id)

Each method is the tool of the same name (``browser_<name>``) and goes the same way as an MCP call
(``runner.agent_session.calls``): same guards, approvals, evidence and masking. A refusal is a
``ToolResult`` with ``ok=False`` (the session goes on). Leaving the ``with`` block closes the run
(``completed``; ``interrupted`` on Ctrl-C or an exception).

The same guarantees as ``warden mcp`` without the framework doing anything: the browser lives on
the session's own thread (``runner.agent_session.worker``; sync Playwright is bound to one thread),
every method runs there in turn from whichever thread calls it, and while the framework thinks
that thread judges the page's own requests and ends the run at the mission's timeout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from kernel.errors import WardenError
from missions.loader import LoadedMission
from runner.agent_session.calls import AgentInfo, Dispatcher, ToolResult
from runner.agent_session.live import LiveRun, SessionOptions, load_for_session, open_live
from runner.agent_session.tools import ToolSpec
from runner.agent_session.worker import SessionWorker
from runner.exit_codes import ExitCode
from runner.progress import QuietReporter, Reporter


class GuardedSession:
    """One run: opened by ``start`` (or ``with``), driven by tool calls, closed by ``close``."""

    def __init__(
        self,
        opts: SessionOptions,
        *,
        loaded: LoadedMission | None = None,
        reporter: Reporter | None = None,
        agent: AgentInfo | None = None,
    ) -> None:
        self.opts = opts
        self._agent = agent
        self.loaded = loaded
        self.reporter: Reporter = reporter if reporter is not None else QuietReporter()
        self._live: LiveRun | None = None
        self._calls: Dispatcher | None = None
        self.end: tuple[int, str, str] | None = None  # (exit_code, outcome, message) once closed
        self._worker: SessionWorker | None = None

    @property
    def worker(self) -> SessionWorker:
        """The session's thread, started on first use (``open_session`` alone starts nothing)."""
        if self._worker is None:
            self._worker = SessionWorker(self._idle)
        return self._worker

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> GuardedSession:
        """Check the mission (exit 2), launch, open the evidence: raises ``WardenError`` when it cannot."""
        try:
            return self.worker.run_sync(self._start)
        except BaseException:
            self.worker.shutdown()
            raise

    def _start(self) -> GuardedSession:
        loaded = self.loaded if self.loaded is not None else load_for_session(self.opts)
        self.loaded = loaded
        self._live = open_live(self.opts, loaded, self.reporter)
        self._calls = Dispatcher(self._live, self._ended)
        if self._agent is not None:
            self._calls.agent = self._agent
        return self

    def _ended(self, exit_code: int, message: str) -> None:
        if self._live is not None and self.end is None:
            self.end = self._live.close(exit_code, message)

    def _idle(self) -> None:
        """Between calls, on the session's thread: the page's own requests judged, the timeout kept."""
        calls, live = self._calls, self._live
        if calls is None or live is None or calls.ended is not None:
            return
        if not calls.expire():
            live.driver.pump(0.05)
            live.gate.flush()
            calls.expire()

    def close(self, outcome: Literal["completed", "interrupted"] = "completed", message: str = "") -> tuple[
        int, str, str
    ]:
        """End the run (idempotent): ``(exit_code, outcome, message)`` as its run_record says. Called
        from outside the session's thread, it stops that thread too."""
        try:
            return self.worker.run_sync(self._close, outcome, message)
        finally:
            if not self.worker.on_thread():
                self.worker.shutdown()

    def _close(self, outcome: Literal["completed", "interrupted"], message: str) -> tuple[int, str, str]:
        if self.end is None and self._live is not None:
            code = ExitCode.OK.value if outcome == "completed" else ExitCode.INTERRUPTED.value
            self._ended(code, message or ("the session ended" if code == 0 else "the session was interrupted"))
        return self.end if self.end is not None else (ExitCode.OK.value, "not started", "")

    def __enter__(self) -> GuardedSession:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if et is None:
            self.close("completed")
        else:
            self.close("interrupted", f"the session ended on {et.__name__}")

    @property
    def run_id(self) -> str:
        return self._need().run.run_id

    @property
    def folder(self) -> Path:
        return self._need().run.folder.root

    @property
    def goal(self) -> str:
        return self.loaded.mission.goal if self.loaded is not None else ""

    def _need(self) -> LiveRun:
        if self._live is None:
            raise WardenError("the session is not started: use `with open_session(...)` or .start()")
        return self._live

    # ------------------------------------------------------------------ the tools
    @property
    def agent(self) -> AgentInfo:
        return self._dispatch().agent

    @agent.setter
    def agent(self, info: AgentInfo) -> None:
        self._dispatch().agent = info  # read by the next call, on the session's thread

    def tool_names(self) -> list[str]:
        """The tools this mission grants (what ``warden mcp`` lists)."""
        return [s.name for s in self._dispatch().listed]

    def pump(self, seconds: float = 0.05) -> None:
        """Let the page's own requests reach the gate now (the session's thread also does it by itself)."""
        self.worker.run_sync(self._pump, seconds)

    def _pump(self, seconds: float) -> None:
        calls, live = self._calls, self._live
        if calls is None or live is None or calls.ended is not None:
            return
        live.driver.pump(seconds)
        live.gate.flush()

    def approval_requests(self) -> int:
        """How many approvals the run has asked for so far (read from any thread: a counter)."""
        return self._live.run.recorder.counts["approval_request"] if self._live is not None else 0

    def remaining(self) -> float | None:
        """Seconds left of the mission's timeout; None once the run has ended."""
        calls = self._dispatch()
        return None if calls.ended is not None else self._need().state.remaining

    def expire(self) -> bool:
        """End the run now if its timeout has passed (the session's thread checks it while idle, too)."""
        return self.worker.run_sync(self._dispatch().expire)

    def tool_specs(self) -> list[ToolSpec]:
        return list(self._dispatch().listed)

    def call(self, tool: str, arguments: Mapping[str, Any] | None = None) -> ToolResult:
        """Any tool by its MCP name; never raises for a refusal or a bad argument (an error result).
        Runs on the session's thread, one call at a time, whichever thread asks."""
        return self.worker.run_sync(self._dispatch().call, tool, arguments)

    def _dispatch(self) -> Dispatcher:
        if self._calls is None:
            raise WardenError("the session is not started: use `with open_session(...)` or .start()")
        return self._calls

    def navigate(self, url: str) -> ToolResult:
        return self.call("browser_navigate", {"url": url})

    def navigate_back(self) -> ToolResult:
        return self.call("browser_navigate_back")

    def snapshot(self) -> ToolResult:
        return self.call("browser_snapshot")

    def click(self, ref: str, element: str | None = None, *, double: bool = False,
              button: Literal["left", "right", "middle"] = "left", modifiers: Sequence[str] = ()) -> ToolResult:
        return self.call("browser_click", {**_el(ref, element), "doubleClick": double, "button": button,
                                           "modifiers": list(modifiers)})

    def type(self, ref: str, text: str, element: str | None = None, submit: bool = False,
             slowly: bool = False) -> ToolResult:
        return self.call("browser_type", {**_el(ref, element), "text": text, "submit": submit, "slowly": slowly})

    def fill_form(self, fields: Sequence[Mapping[str, str]]) -> ToolResult:
        return self.call("browser_fill_form", {"fields": [dict(f) for f in fields]})

    def select_option(self, ref: str, values: Sequence[str], element: str | None = None) -> ToolResult:
        return self.call("browser_select_option", {**_el(ref, element), "values": list(values)})

    def press_key(self, key: str) -> ToolResult:
        return self.call("browser_press_key", {"key": key})

    def hover(self, ref: str, element: str | None = None) -> ToolResult:
        return self.call("browser_hover", _el(ref, element))

    def wait_for(self, text: str | None = None, time: float | None = None, text_gone: str | None = None) -> ToolResult:
        given = (("text", text), ("time", time), ("textGone", text_gone))
        args: dict[str, Any] = {k: v for k, v in given if v is not None}
        return self.call("browser_wait_for", args)

    def take_screenshot(self, full_page: bool = False) -> ToolResult:
        return self.call("browser_take_screenshot", {"fullPage": full_page})

    def tabs(self, action: Literal["list", "new", "close", "select"] = "list", index: int | None = None) -> ToolResult:
        return self.call("browser_tabs", {"action": action, **({"index": index} if index is not None else {})})


def _el(ref: str, element: str | None) -> dict[str, Any]:
    return {"ref": ref, **({"element": element} if element is not None else {})}


def open_session(
    mission: str | Path,
    *,
    evidence_dir: str | Path = "warden-evidence",
    variables: Mapping[str, str] | None = None,
    approval: Literal["queue", "deny"] = "deny",
    approver: str | None = None,
    db_url: str | None = None,
    agent: AgentInfo | None = None,
    reporter: Reporter | None = None,
) -> GuardedSession:
    """A session to use as a context manager (``with open_session(...) as s``); nothing starts before ``with``."""
    opts = SessionOptions(Path(mission), Path(evidence_dir), dict(variables or {}), db_url, approval, approver,
                          started_by="warden session (python)")
    return GuardedSession(opts, reporter=reporter, agent=agent)
