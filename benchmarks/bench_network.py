"""Cost of in-browser enforcement: a page with 200 subresources from several allowed hosts.

    .venv/bin/python benchmarks/bench_network.py [--reps 7] [--n 200] [--server process|thread] [--json]

Two sandboxes in the same run, alternating per repetition: ``on`` = resolver allowlist + the
browser-level Fetch layer (runner/browser/browser_fetch.py) + context and WebSocket routes + the
request gate a run really gets (``runner.assembly.build_request_gate`` for a mission allowing
those hosts: the domain guard, secrets, the PII scan of every request's path, query and body with
the real scanner, the danger zones' backstop); ``off`` = the same browser switches, no
interception. Each repetition loads the page in a fresh page and waits for ``load`` (every
image fetched). Prints medians, the ratio (target <= 1.2x) and the gate's own cost per request.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from guards.observed import RequestInfo
from guards.urlmatch import resolvable_patterns
from missions.loader import load_mission
from runner.assembly import assemble, build_request_gate
from runner.browser.chromium import find_chromium
from runner.browser.driver import GateVerdict, SandboxConfig
from runner.browser.playwright_driver import PlaywrightDriver, open_driver
from runner.network import NetworkGate
from runner.recorder import RunRecorder
from tests.server import Response, TestServer

HOSTS = ["allowed.localhost", "img1.allowed.localhost", "img2.allowed.localhost", "cdn.allowed.localhost"]


MISSION = """mission: bench-network
version: 1
description: Benchmark - a page with many images from allowed hosts
owner: warden-dev
changelog: first
boundaries:
  allowed_domains: [allowed.localhost, "*.allowed.localhost"]
  allow_http: true
  allowed_actions: [goto]
steps:
  - goto: "http://allowed.localhost/page"
"""


class NullRecorder:
    """Nothing is refused or found in this benchmark: any record is a benchmark error."""

    def __getattr__(self, name: str) -> Any:
        def refuse(*a: Any, **k: Any) -> None:
            raise AssertionError(f"the benchmark's gate wrote a record ({name})")
        return refuse

    @property
    def writer(self) -> Any:
        return self


class TimedGate:
    """Wraps the gate to measure the Python decision cost inside the route handler."""

    def __init__(self, gate: NetworkGate) -> None:
        self.gate = gate
        self.seconds = 0.0
        self.calls = 0

    def __call__(self, request: RequestInfo) -> GateVerdict:
        t = time.perf_counter()
        try:
            return self.gate(request)
        finally:
            self.seconds += time.perf_counter() - t
            self.calls += 1


def _page(server: TestServer, n: int) -> str:
    imgs = "".join(
        f'<img src="{server.url(HOSTS[i % len(HOSTS)], f"/i/{i}.gif")}?r=RUN" width="4" height="4">' for i in range(n)
    )
    return f"<!doctype html><title>bench</title>{imgs}"


class _Site:
    """The benchmark's web site: a ``TestServer`` in a child process (``--server process``, the default),
    as a real site is not in Warden's process, or in this process's threads (``--server thread``, as
    before: its 200 responses then compete with the gate's handler for this process's GIL, which
    only the ``on`` side pays, and its CPU counts as Warden's)."""

    def __init__(self, n: int, where: str) -> None:
        self._proc: Any = None
        self._server: TestServer | None = None
        if where == "thread":
            self._server = _serve(n)
            self.port = self._server.port
            return
        ctx = multiprocessing.get_context("fork")
        parent, child = ctx.Pipe()
        self._pipe = parent
        self._proc = ctx.Process(target=_serve_in_child, args=(n, child), daemon=True)
        self._proc.start()
        self.port = int(parent.recv())

    def url(self, host: str, path: str) -> str:
        return f"http://{host}:{self.port}{path}"

    def pids(self) -> set[int]:
        return {self._proc.pid} if self._proc is not None else set()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        if self._proc is not None:
            self._pipe.send("stop")
            self._proc.join(10)


def _serve(n: int) -> TestServer:
    gif = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")
    server = TestServer().start()
    server.set_route("/page", lambda r: Response(body=_page(server, n).replace("RUN", r.path.split("=")[-1])))
    for i in range(n):
        server.set_content(f"/i/{i}.gif", gif, "image/gif")
    return server


def _serve_in_child(n: int, pipe: Any) -> None:
    server = _serve(n)
    pipe.send(server.port)
    pipe.recv()
    server.stop()


def _load(d: PlaywrightDriver, url: str) -> tuple[float, float]:
    """Wall seconds of the load, and the CPU seconds it took in this process, node and Chromium."""
    c, t = _cpu_s(), time.perf_counter()
    d.page.goto(url, wait_until="load", timeout=60_000)
    return time.perf_counter() - t, _cpu_s() - c


_NOT_WARDEN: set[int] = set()  # the site's process: not counted


def _cpu_s() -> float:
    """User + system CPU of this process and every descendant (Playwright's node, Chromium), from /proc;
    the site's own process (``--server process``) left out."""
    parent: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parent[int(name)], ticks[int(name)] = int(fields[1]), int(fields[11]) + int(fields[12])
    mine, todo = set(), [os.getpid()]
    while todo:
        pid = todo.pop()
        mine.add(pid)
        todo.extend(c for c, p in parent.items() if p == pid and c not in mine and c not in _NOT_WARDEN)
    return sum(ticks.get(p, 0) for p in mine) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--json", action="store_true", help='print {"rows": [...]} instead of the text')
    ap.add_argument("--server", choices=("process", "thread"), default="process",
                    help="the site in a child process (default) or in this process's threads (as before)")
    args = ap.parse_args()
    server = _Site(args.n, args.server)  # forked first: before any thread or browser of this process
    _NOT_WARDEN.update(server.pids())
    work = Path(tempfile.mkdtemp(prefix="warden-bench-net-"))
    (work / "m.yaml").write_text(MISSION)
    loaded = load_mission(work / "m.yaml", cli_vars={}, environ=os.environ)
    prepared = assemble(loaded, os.environ, evidence_dir=work)
    recorder = cast(RunRecorder, NullRecorder())
    gate: NetworkGate = build_request_gate(loaded, prepared, recorder)
    assert prepared.pii is not None
    prepared.pii.bind(recorder, lambda: gate.stop_requested)
    policy = prepared.policy
    exe = find_chromium(os.environ)
    timed = TimedGate(gate)
    results: dict[str, list[float]] = {"on": [], "off": []}
    cpu: dict[str, list[float]] = {"on": [], "off": []}
    route_s: list[float] = []
    for rep in range(args.reps + 1):  # rep 0 warms up both
        for mode in ("on", "off") if rep % 2 else ("off", "on"):
            config = SandboxConfig(
                executable=exe,
                resolvable_hosts=resolvable_patterns(policy),
                request_gate=timed if mode == "on" else None,
            )
            with open_driver(config) as d:
                before_s, before_calls = timed.seconds, timed.calls
                t_total = time.perf_counter()
                elapsed, cpu_s = _load(d, server.url("allowed.localhost", f"/page?r={rep}{mode}"))
                t_total = time.perf_counter() - t_total
                if mode == "on":
                    calls = timed.calls - before_calls
                    assert calls == args.n + 1, calls
                    route_s.append((timed.seconds - before_s) / calls)
            if rep:
                results[mode].append(elapsed)
                cpu[mode].append(cpu_s)
    server.stop()
    shutil.rmtree(work, ignore_errors=True)
    on, off = statistics.median(results["on"]), statistics.median(results["off"])
    per_req_wall = (on - off) / (args.n + 1)
    ms_off = [round(x * 1000) for x in results["off"]]
    ms_on = [round(x * 1000) for x in results["on"]]
    pairs = statistics.median(a / b for a, b in zip(results["on"], results["off"], strict=True))
    cpu_on, cpu_off = statistics.median(cpu["on"]), statistics.median(cpu["off"])
    extra_ms = (cpu_on - cpu_off) / (args.n + 1) * 1000
    cpu_line = (f"CPU (this process + node + Chromium) per load: on {cpu_on * 1000:.0f} ms, "
                f"off {cpu_off * 1000:.0f} ms, ratio {cpu_on / cpu_off:.2f}x, {extra_ms:.2f} ms/request extra")
    if args.json:
        print(json.dumps({"rows": [{
            "figure": f"page with {args.n} subresources, enforcement on ÷ off", "value": on / off, "unit": "x",
            "goal": "≤ 1.2",
            "detail": f"site: {args.server}; medians {on * 1000:.0f} / {off * 1000:.0f} ms of {args.reps} alternating "
                      f"reps (on {ms_on}, "
                      f"off {ms_off}); median of the pairs' ratios {pairs:.2f}; {per_req_wall * 1000:.2f} ms/request "
                      f"extra, of which the gate's decision {statistics.median(route_s) * 1000:.3f} ms; {cpu_line}",
        }]}))
        return 0
    print(f"page: {args.n} images from {len(HOSTS)} allowed hosts; {args.reps} reps alternating; load event; "
          f"site in a {'child process' if args.server == 'process' else 'thread of this process'}")
    print(f"enforcement off (resolver rules, no route): median {off * 1000:8.1f} ms  {ms_off}")
    print(f"enforcement on  (rules + Fetch layer + gate): median {on * 1000:8.1f} ms  {ms_on}")
    print(f"ratio on/off: {on / off:.2f}x (target <= 1.2x); median of the pairs' ratios {pairs:.2f}x")
    print(f"interception, extra wall time per request: {per_req_wall * 1000:.3f} ms/request")
    print(
        f"  of which the gate's Python decision (the run's request chain + NetworkGate): "
        f"{statistics.median(route_s) * 1000:.4f} ms/request"
    )
    print(cpu_line)
    print(f"load average: {Path('/proc/loadavg').read_text().strip()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
