"""``warden mcp``: a Model Context Protocol server on stdio (official ``mcp`` SDK, low-level ``Server``).

One process, one MCP session, one run. The mission is checked before anything (exit 2, file:line,
as ``warden run``); the run opens before the first message is answered and closes when the
client closes the browser (``browser_close``: completed) or disconnects (EOF: interrupted, with its
end ``run_record``); a kill leaves a prefix that crash recovery closes as interrupted.

The session's browser lives in one worker thread (sync Playwright is bound to the thread that
started it): every tool call is handed to it in turn, so calls never interleave. Approvals are
never in the client's hands: there is no approve tool, and nothing the client sends (an
elicitation answer included) is read as an approval — a person answers with
``warden approvals approve|deny ID`` from another terminal (``--approval queue``) or nobody does.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import Future
from types import FrameType
from typing import Any, TypeVar

import anyio
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server

from kernel import __version__
from kernel.errors import WardenError
from missions.loader import LoadedMission
from runner.agent_session.calls import AgentInfo, ToolResult
from runner.agent_session.live import SessionOptions, load_for_session
from runner.agent_session.session import GuardedSession
from runner.agent_session.tools import input_schema
from runner.exit_codes import ExitCode
from runner.progress import JsonReporter

T = TypeVar("T")
DEFAULT_INSTRUCTIONS = (
    "A guarded browser: every action is checked against the mission's boundaries, danger zones wait "
    "for a person's approval out of band, and PII in what you read is masked («pii:TYPE»)."
)


class SessionWorker:
    """The MCP side of the session's own thread (``runner.agent_session.worker``): every call runs
    there in turn, and between calls that thread pumps the browser and ends the run at its timeout."""

    def __init__(self, session: GuardedSession) -> None:
        self.session = session
        self._worker = session.worker
        self._agent_set = False

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        return self._worker.submit(fn, *args)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.wrap_future(self.submit(fn, *args))

    def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        return self._worker.run_sync(fn, *args)

    def note_client(self, ctx: ServerRequestContext[Any]) -> None:
        """The client's name and version from ``initialize``: recorded with each call (actor kind agent)."""
        if self._agent_set:
            return
        params = ctx.session.client_params
        if params is not None:
            info = params.client_info
            self.session.agent = AgentInfo(name=info.name, version=info.version)
            self._agent_set = True

    def shutdown(self) -> None:
        self._worker.shutdown()


def _content(result: ToolResult) -> types.CallToolResult:
    content: list[types.TextContent | types.ImageContent] = [types.TextContent(type="text", text=result.text)]
    if result.image_png is not None:
        data = base64.b64encode(result.image_png).decode("ascii")
        content.append(types.ImageContent(type="image", data=data, mime_type="image/png"))
    return types.CallToolResult(content=list(content), is_error=not result.ok)


def instructions_for(loaded: LoadedMission) -> str:
    """The mission's ``goal:`` first (what the agent is for), then what the server is."""
    goal = loaded.mission.goal.strip()
    return f"{goal}\n\n{DEFAULT_INSTRUCTIONS}" if goal else DEFAULT_INSTRUCTIONS


def build_server(worker: SessionWorker, instructions: str, on_end: Callable[[], None] | None = None) -> Server[Any]:
    """The MCP server: the granted tools, each call through the session's worker thread."""

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        specs = await worker.run(worker.session.tool_specs)
        return types.ListToolsResult(tools=[
            types.Tool(name=s.name, description=s.description, input_schema=input_schema(s),
                       annotations=types.ToolAnnotations(read_only_hint=s.read_only))
            for s in specs
        ])

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        worker.note_client(ctx)
        arguments = params.arguments if isinstance(params.arguments, dict) else {}
        if params.arguments is not None and not isinstance(params.arguments, dict):
            return types.CallToolResult(
                content=[types.TextContent(type="text", text="arguments must be an object")], is_error=True
            )
        result = await _call_telling_of_approvals(ctx, worker, params.name, arguments)
        if result.ended and on_end is not None:
            on_end()
        return _content(result)

    return Server(
        "warden", version=__version__, instructions=instructions,
        on_list_tools=list_tools, on_call_tool=call_tool,
    )


APPROVAL_NOTICE = (
    "This call waits for a person's approval (a danger zone or PII to type). It is answered out of "
    "band with `warden approvals list` and `warden approvals approve|deny ID --reason TEXT`; nothing "
    "sent through this connection can approve it."
)


async def _call_telling_of_approvals(
    ctx: ServerRequestContext[Any], worker: SessionWorker, name: str, arguments: dict[str, Any]
) -> ToolResult:
    """The call; while it waits for an approval, one log notification tells the user (never asks the model)."""
    asked = worker.session.approval_requests()
    call = asyncio.ensure_future(worker.run(worker.session.call, name, arguments))
    told = False
    while not call.done():
        await asyncio.wait({call}, timeout=0.25)
        if not told and not call.done() and worker.session.approval_requests() > asked:
            told = True
            try:
                await ctx.session.send_log_message("warning", APPROVAL_NOTICE, logger="warden.approvals",
                                                   related_request_id=ctx.request_id)
            except Exception:  # noqa: S110 - a notice the client cannot take changes nothing
                pass
    return call.result()


async def _serve(worker: SessionWorker, instructions: str) -> None:
    async with stdio_server() as (read_stream, write_stream):
        await worker.run(worker.session.start)  # fd 1 is the wire's: Chromium starts with stdout on stderr
        server = build_server(worker, instructions)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_end_at_deadline, worker)
            await server.run(read_stream, write_stream, server.create_initialization_options())
            tasks.cancel_scope.cancel()


async def _end_at_deadline(worker: SessionWorker) -> None:
    """The mission's timeout ends the run even while the agent is idle (calls check it themselves)."""
    while True:
        remaining = await worker.run(worker.session.remaining)
        if remaining is None or await worker.run(worker.session.expire):
            return
        await anyio.sleep(min(remaining, 5.0) + 0.05)


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error to report: a Warden error (its exit code) first, else the first one raised."""
    flat: list[BaseException] = []

    def walk(g: BaseExceptionGroup[BaseException]) -> None:
        for e in g.exceptions:
            walk(e) if isinstance(e, BaseExceptionGroup) else flat.append(e)

    walk(group)
    return next((e for e in flat if isinstance(e, WardenError | KeyboardInterrupt)), flat[0])


def serve_stdio(opts: SessionOptions) -> int:
    """Serve one MCP session on stdio; the run's exit code (SPEC §3) when the client has gone."""
    loaded = load_for_session(opts)  # exit 2 before the server starts: nothing is served, nothing written
    instructions = instructions_for(loaded)
    session = GuardedSession(opts, loaded=loaded, reporter=JsonReporter(sys.stderr))
    worker = SessionWorker(session)
    previous = {sig: signal.signal(sig, _closing_handler(worker)) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            anyio.run(_serve, worker, instructions)
        except BaseExceptionGroup as group:  # the transport's task group wraps what the session raised
            raise _first(group) from None
        end = worker.run_sync(session.close, "interrupted", "the client disconnected without browser_close")
    except BaseException:
        worker.run_sync(session.close, "interrupted", "the MCP server failed")
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        worker.shutdown()
    return end[0]


def _closing_handler(worker: SessionWorker) -> Callable[[int, FrameType | None], None]:
    """SIGTERM / Ctrl-C: close the run (interrupted, its end record written) and exit 130.

    Not an exception: the stdin reader is a thread no cancellation reaches, so the event loop could
    not finish. The close waits behind a running call (bounded); a run left open is closed by crash
    recovery as interrupted.
    """

    def handler(signum: int, frame: FrameType | None) -> None:
        code = ExitCode.INTERRUPTED.value
        try:
            end = worker.submit(worker.session.close, "interrupted", f"stopped by signal {signum}").result(60)
            code = end[0] if end[1] != "not started" else code
        except BaseException:  # noqa: S110 - exiting anyway: recovery closes what is left
            pass
        os._exit(code)

    return handler
