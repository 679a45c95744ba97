"""The real MCP SDK client over stdio against ``warden mcp`` in a subprocess, driven synchronously.

The client runs on its own event loop in a thread, so a module-scoped fixture can share one server
session across several tests (one Chromium start, one run). Every text the client receives is kept
(``received``) so a test can prove what reached the "model".
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import mcp_types as types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.server import TestServer

T = TypeVar("T")
HOST = "allowed.localhost"
WARDEN = str(Path(sys.executable).parent / "warden")
CLIENT = types.Implementation(name="warden-test-client", version="1.2.3")


def write_mission(tmp: Path, *, actions: str, extra: str = "", max_steps: int = 100, name: str = "agent-m") -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(f"""mission: {name}
version: 1
goal: Send the contact form.
boundaries:
  allowed_domains: [{HOST}]
  allow_http: true
  allowed_actions: [{actions}]
  max_steps: {max_steps}
  timeout: 600
{extra}""")
    return path


class McpClient:
    """One ``warden mcp`` session; ``call`` returns the ``CallToolResult`` (never raises for an error result)."""

    def __init__(self, mission: Path, evidence_dir: Path, *args: str, log: Path) -> None:
        self.mission, self.evidence_dir = mission, evidence_dir
        self.received: list[str] = []
        self.logs: list[str] = []  # log notifications from the server
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._log = log.open("w")
        params = StdioServerParameters(
            command=WARDEN, args=["mcp", str(mission), "--evidence-dir", str(evidence_dir), *args],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._ready: concurrent.futures.Future[types.InitializeResult] = concurrent.futures.Future()
        self._host = asyncio.run_coroutine_threadsafe(self._serve(params), self._loop)
        self.init = self._ready.result(180)

    async def _serve(self, params: StdioServerParameters) -> None:
        """One task owns the transport and the session (anyio scopes exit in the task that entered them)."""
        self._closing = asyncio.Event()
        try:
            async with stdio_client(params, errlog=self._log) as (read, write), ClientSession(
                read, write, client_info=CLIENT, logging_callback=self._log_message
            ) as session:
                self.session = session
                self._ready.set_result(await session.initialize())
                await self._closing.wait()
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            raise

    async def _log_message(self, params: types.LoggingMessageNotificationParams) -> None:
        self.logs.append(str(params.data))

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def tools(self) -> list[str]:
        return [t.name for t in self._run(self.session.list_tools()).tools]

    def call(self, name: str, arguments: dict[str, Any] | None = None, timeout: float = 120) -> types.CallToolResult:
        result = self._run(self.session.call_tool(name, arguments or {}), timeout)
        self.received.extend(c.text for c in result.content if isinstance(c, types.TextContent))
        return result

    def close(self) -> None:
        """Disconnect (stdin closed: EOF for the server), then stop the client's loop."""
        try:
            self._loop.call_soon_threadsafe(self._closing.set)
            self._host.result(60)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._log.close()


def text(result: types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


def ref_of(result_text: str, role: str, name: str) -> str:
    """The ref of ``- role "name" [ref=eN]`` in a snapshot text."""
    for line in result_text.splitlines():
        stripped = line.strip().lstrip("- ")
        if stripped.startswith(f'{role} "{name}"') and "[ref=" in stripped:
            return stripped.split("[ref=", 1)[1].split("]", 1)[0]
    raise AssertionError(f"no {role} {name!r} in the snapshot:\n{result_text}")


def only_run(evidence_dir: Path) -> Path:
    runs = sorted((evidence_dir / "runs").iterdir())
    assert len(runs) == 1, runs
    return runs[0]


def wait_status(folder: Path, status: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    info: dict[str, Any] = {}
    while time.monotonic() < deadline:
        info = json.loads((folder / "run.json").read_text())
        if info.get("status") == status:
            return info
        time.sleep(0.1)
    raise AssertionError(f"run.json status is {info.get('status')!r}, not {status!r}")


def records(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines() if line.strip()]


def verify(folder: Path, evidence_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([WARDEN, "evidence", "verify", folder.name, "--evidence-dir", str(evidence_dir)],
                          capture_output=True, text=True, timeout=120)


def posts(server: TestServer, route: str) -> list[bytes]:
    return [r.body for r in server.requests_for(HOST) if r.method == "POST" and r.route == route]
