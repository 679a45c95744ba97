"""Benchmark: per-call latency of `warden mcp` against Playwright MCP, same calls, same pages, one run.

Why: an agent pays each tool call's latency; Warden's guards, evidence and masking sit on every
call. This measures that cost against the peer agents use today (goal: ≤ 1.3×). One command:

    .venv/bin/python benchmarks/bench_mcp.py [--reps 15] [--warmup 2] [--json]

Both servers run as stdio subprocesses driven by the official MCP SDK client, both open at once
on the same Debian Chromium, on the same local page (served on 127.0.0.1 as allowed.localhost):
``warden mcp`` (a mission allowing goto/click/fill, --approval deny) and
``npx @playwright/mcp --executable-path /usr/lib/chromium/chromium --headless --isolated`` (npm,
no browser download). Each repetition makes the same four calls on each — browser_navigate,
browser_snapshot, browser_type and browser_click by ref (as ``target``, the argument name of current
Playwright MCP releases, which Warden accepts beside ``ref``; the click hits a button that changes the page
without navigating) — alternating which server goes first. Reported: the median round trip of each
call (client send → result) for both, and the ratio warden / playwright. Both take a page
snapshot after each action: Warden returns it inline (masked); Playwright MCP 0.0.83 writes it to
a file in its output folder (``.playwright-mcp/`` in its cwd, a temporary dir here) and returns a
link. Warden also judges, records, scans and screenshots each action.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import mcp_types as types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

CHROMIUM = "/usr/lib/chromium/chromium"
PLAYWRIGHT_MCP = "@playwright/mcp@0.0.83"
CALLS = ("browser_navigate", "browser_snapshot", "browser_type", "browser_click")
PAGE = """<!doctype html><html><head><title>Profile</title></head><body>
<h1>Profile</h1><p>Update the display name of the account.</p>
<label for="n">Display name</label><input id="n" name="name">
<button type="button" onclick="document.getElementById('out').textContent='Saved ' + Date.now()">Keep</button>
<p id="out">Not saved</p>
<ul>""" + "".join(f"<li>Item {i}: a line of ordinary text on the page</li>" for i in range(40)) + """</ul>
</body></html>"""
REF = re.compile(r'{role} "{name}"[^\n]*?\[ref=([a-z0-9]+)\]')


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # http.server's name
        body = PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


def _ref(text: str, role: str, name: str) -> str:
    m = re.search(REF.pattern.format(role=role, name=name), text)
    if m is None:
        raise SystemExit(f"no {role} {name!r} in the snapshot:\n{text[:2000]}")
    return m.group(1)


def _text(result: types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


async def _one_round(session: ClientSession, url: str, times: dict[str, list[float]], keep: bool) -> None:
    async def timed(name: str, args: dict[str, Any]) -> str:
        start = time.perf_counter()
        result = await session.call_tool(name, args)
        elapsed = time.perf_counter() - start
        if result.is_error:
            raise SystemExit(f"{name} failed: {_text(result)[:500]}")
        if keep:
            times[name].append(elapsed)
        return _text(result)

    page = await timed("browser_navigate", {"url": url})
    snap = await timed("browser_snapshot", {})
    box = _ref(snap or page, "textbox", "Display name")
    after = await timed("browser_type", {"element": "Display name", "target": box, "text": "Ada L"})
    button = _ref(after if "[ref=" in after else snap, "button", "Keep")
    await timed("browser_click", {"element": "Keep", "target": button})


async def _bench(
    reps: int, warmup: int, url: str, warden_cmd: list[str], pw_cmd: list[str], cwd: str
) -> dict[str, Any]:
    env = {**os.environ}
    servers = {  # cwd: Playwright MCP writes its output folder (.playwright-mcp/) there
        "warden": StdioServerParameters(command=warden_cmd[0], args=warden_cmd[1:], env=env, cwd=cwd),
        "playwright": StdioServerParameters(command=pw_cmd[0], args=pw_cmd[1:], env=env, cwd=cwd),
    }
    times: dict[str, dict[str, list[float]]] = {k: {c: [] for c in CALLS} for k in servers}
    log = open(os.devnull, "w")  # noqa: SIM115 - closed below
    try:
        async with (
            stdio_client(servers["warden"], errlog=log) as (wr, ww),
            ClientSession(wr, ww) as warden,
            stdio_client(servers["playwright"], errlog=log) as (pr, pw),
            ClientSession(pr, pw) as playwright,
        ):
            await warden.initialize()
            await playwright.initialize()
            sessions = {"warden": warden, "playwright": playwright}
            for i in range(warmup + reps):
                order = ["warden", "playwright"] if i % 2 == 0 else ["playwright", "warden"]
                for name in order:
                    await _one_round(sessions[name], url, times[name], keep=i >= warmup)
    finally:
        log.close()
    rows = []
    for call in CALLS:
        w = statistics.median(times["warden"][call]) * 1000
        p = statistics.median(times["playwright"][call]) * 1000
        rows.append({"call": call, "warden_ms": round(w, 1), "playwright_ms": round(p, 1), "ratio": round(w / p, 2)})
    return {"reps": reps, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    opts = ap.parse_args()
    warden = Path(sys.executable).parent / "warden"
    npx = shutil.which("npx")
    if not warden.exists() or npx is None:
        raise SystemExit("needs the warden console script (make setup) and npx (Debian's nodejs/npm)")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://allowed.localhost:{httpd.server_address[1]}/"
    with tempfile.TemporaryDirectory(prefix="bench-mcp-") as tmp:
        mission = Path(tmp) / "mission.yaml"
        mission.write_text("""mission: bench-mcp
version: 1
boundaries:
  allowed_domains: [allowed.localhost]
  allow_http: true
  allowed_actions: [goto, click, fill]
  max_steps: 100000
  timeout: 3600
""")
        warden_cmd = [str(warden), "mcp", str(mission), "--evidence-dir", str(Path(tmp) / "evidence"),
                      "--approval", "deny"]
        pw_cmd = [npx, "-y", PLAYWRIGHT_MCP, "--executable-path", CHROMIUM, "--headless", "--isolated"]
        if os.getuid() == 0:  # as root Chromium cannot sandbox itself; Warden turns it off there too
            pw_cmd.append("--no-sandbox")
        result = asyncio.run(_bench(opts.reps, opts.warmup, url, warden_cmd, pw_cmd, tmp))
    httpd.shutdown()
    if opts.json:
        print(json.dumps(result))
        return
    print(f"per-call latency, median of {result['reps']} (ms)")
    print(f"{'call':<18}{'warden mcp':>12}{'playwright':>12}{'ratio':>8}")
    for r in result["rows"]:
        print(f"{r['call']:<18}{r['warden_ms']:>12.1f}{r['playwright_ms']:>12.1f}{r['ratio']:>7.2f}x")


if __name__ == "__main__":
    main()
