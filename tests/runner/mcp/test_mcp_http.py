"""`warden mcp --http 0`: the same tools over streamable HTTP on 127.0.0.1 (masked text, a masked PNG as
image content); browser_close ends the run."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import mcp_types as types
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from runner.browser.playwright_driver import MASK_COLOR
from tests.guards.canaries import scan_bytes
from tests.guards.pii_support import canary_page
from tests.png import decode_png, pixel
from tests.runner.mcp.support import CLIENT, HOST, WARDEN, only_run, records, text, verify, write_mission
from tests.server import TestServer

pytestmark = pytest.mark.browser
MASK = tuple(int(MASK_COLOR[i:i + 2], 16) for i in (1, 3, 5))


def _url(proc: subprocess.Popen[str], timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if "serving http://127.0.0.1:" in line:
            return line.split("serving ", 1)[1].strip()
        assert line or proc.poll() is None, "warden mcp --http exited early"
    raise AssertionError("no serving line")


TOKEN = "test-token-0123456789abcdef"


async def _session(url: str, page: str) -> tuple[list[str], str, types.CallToolResult, str]:
    client = create_mcp_http_client(headers={"Authorization": f"Bearer {TOKEN}"})
    async with client, streamable_http_client(url, http_client=client) as (read, write), ClientSession(
        read, write, client_info=CLIENT
    ) as s:
        await s.initialize()
        names = [t.name for t in (await s.list_tools()).tools]
        nav = await s.call_tool("browser_navigate", {"url": page})
        shot = await s.call_tool("browser_take_screenshot", {})
        assert not await _second_client_admitted(url)  # one session, one run
        closed: types.CallToolResult = await s.call_tool("browser_close", {})
        return names, text(nav), shot, text(closed)


async def _second_client_admitted(url: str) -> bool:
    client = create_mcp_http_client(headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        async with client, streamable_http_client(url, http_client=client) as (read, write), ClientSession(
            read, write
        ) as other:
            await asyncio.wait_for(other.initialize(), 30)
            return True
    except Exception:  # refused by the server (the SDK raises it inside its task group)
        return False


def _env(token: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "WARDEN_MCP_TOKEN"}
    return env if token is None else {**env, "WARDEN_MCP_TOKEN": token}


def test_http_transport_serves_one_session_and_browser_close_completes_the_run(
    tmp_path: Path, test_server: TestServer
) -> None:
    test_server.set_content("/hello", canary_page())
    mission = write_mission(tmp_path, actions="goto, screenshot", name="agent-http")
    evidence = tmp_path / "evidence"
    no_token = subprocess.run([WARDEN, "mcp", str(mission), "--http", "0", "--evidence-dir", str(evidence)],
                              capture_output=True, text=True, timeout=120, env=_env(None))
    assert no_token.returncode == 2 and "WARDEN_MCP_TOKEN" in no_token.stderr and not evidence.exists()
    proc = subprocess.Popen([WARDEN, "mcp", str(mission), "--http", "0", "--evidence-dir", str(evidence)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(TOKEN))
    try:
        url = _url(proc)
        for bad in (None, "Bearer wrong-token-0123456789", f"Basic {TOKEN}"):  # refused before the SDK sees it
            request = urllib.request.Request(url, data=b"{}", method="POST", headers={
                "Content-Type": "application/json", **({"Authorization": bad} if bad else {})})
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=30)
            assert refused.value.code == 401
        names, nav, shot, closed = asyncio.run(_session(url, test_server.url(HOST, "/hello")))
        assert proc.wait(60) == 0  # the run completed: the server stops with it
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "browser_navigate" in names and "run has ended" in closed
    assert scan_bytes(nav.encode()) == [] and "«pii:EMAIL_ADDRESS»" in nav
    images = [c for c in shot.content if isinstance(c, types.ImageContent)]
    assert not shot.is_error and len(images) == 1 and images[0].mime_type == "image/png"
    png = decode_png(base64.b64decode(images[0].data))
    for y in (40, 90, 140, 190, 290):  # the canary page's PII boxes reach the client painted over
        assert pixel(png, 300, y) == MASK, y
    folder = only_run(evidence)
    assert json.loads((folder / "run.json").read_text())["status"] == "completed"
    assert verify(folder, evidence).returncode == 0
    calls = [r for r in records(folder) if r.get("guard") == "mcp.tools"]
    assert calls and calls[0]["subject"]["agent"]["name"] == CLIENT.name
