"""Benchmark: `warden run` against plain Playwright on the same 20-step flow (issue 2, item 10).

Why: Warden puts every action through guards and writes evidence; this measures what that costs
against the same steps and screenshots done the plain way. One command:

    .venv/bin/python benchmarks/bench_run.py [--reps 5] [--warmup 1]

It serves benchmarks/site/ on 127.0.0.1 (a free port, reached as http://bench.localhost:PORT), then
alternates, as subprocesses, ``warden run benchmarks/bench_mission.yaml ... --quiet --json`` and
``benchmarks/raw_playwright_steps.py`` (the order flips each repetition so neither always runs
second on a warm cache), and prints the medians of total wall time (spawn to exit) and of
time-to-first-action (spawn to the end of step 1), for both, and the ratios.

Warden's first action comes from its ``--json`` event stream: ``{"event": "step_finished", "step": 1,
"t": <epoch>}`` minus the spawn epoch. The raw script reports the same interval itself, from the
spawn epoch passed to it.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SITE = HERE / "site"
MISSION = HERE / "bench_mission.yaml"
RAW_SCRIPT = HERE / "raw_playwright_steps.py"
HOST = "bench.localhost"
STEPS = 20
RUN_TIMEOUT = 300


class _QuietHandler(SimpleHTTPRequestHandler):
    """Static files, no access log (the log would only add noise and I/O to the measurement)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Sample:
    total_s: float
    first_action_s: float


class BenchError(Exception):
    """A run failed: the benchmark stops, showing why."""


def serve_site() -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(SITE)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="bench-site", daemon=True).start()
    return server, f"http://{HOST}:{server.server_address[1]}"


def find_warden() -> str | None:
    """The `warden` console script of this interpreter's environment, else the one on PATH."""
    local = Path(sys.executable).parent / "warden"
    return str(local) if local.exists() else shutil.which("warden")


def _epoch(t: Any) -> float:
    if isinstance(t, int | float):
        return float(t)
    return datetime.fromisoformat(str(t).replace("Z", "+00:00")).timestamp()


def _tail(text: str, n: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def run_warden(warden: str, base_url: str, evidence_dir: Path) -> Sample:
    cmd = [warden, "run", str(MISSION), "--var", f"base_url={base_url}", "--evidence-dir", str(evidence_dir),
           "--approval", "deny", "--quiet", "--json"]
    spawn = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=RUN_TIMEOUT,
                          check=False)
    total = time.time() - spawn
    events = []
    for line in proc.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    if proc.returncode != 0:
        raise BenchError(f"warden run exited {proc.returncode}\n$ {' '.join(cmd)}\n"
                         f"stdout:\n{_tail(proc.stdout)}\nstderr:\n{_tail(proc.stderr)}")
    finished = [e for e in events if isinstance(e, dict) and e.get("event") == "step_finished"]
    first = next((e for e in finished if e.get("step") == 1 and "t" in e), None)
    if first is None:
        raise BenchError("warden's --json stream has no step_finished event for step 1 with a 't'\n"
                         f"stdout:\n{_tail(proc.stdout)}")
    if len(finished) != STEPS:
        raise BenchError(f"expected {STEPS} step_finished events, got {len(finished)}")
    return Sample(total, _epoch(first["t"]) - spawn)


def run_raw(base_url: str) -> Sample:
    spawn = time.time()
    cmd = [sys.executable, str(RAW_SCRIPT), "--base-url", base_url, "--start-epoch", repr(spawn)]
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=RUN_TIMEOUT,
                          check=False)
    total = time.time() - spawn
    if proc.returncode != 0:
        raise BenchError(f"raw Playwright script exited {proc.returncode}\nstderr:\n{_tail(proc.stderr)}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result.get("screenshots") != STEPS:
        raise BenchError(f"raw script took {result.get('screenshots')} screenshots, expected {STEPS}")
    return Sample(total, float(result["first_action_s"]))


def _med(samples: list[Sample], attr: str) -> float:
    return float(statistics.median(getattr(s, attr) for s in samples))


def report(warden: list[Sample], raw: list[Sample], as_json: bool) -> None:
    summary: dict[str, Any] = {
        "reps": len(raw),
        "raw": {"total_s": _med(raw, "total_s"), "first_action_s": _med(raw, "first_action_s")},
    }
    if warden:
        summary["warden"] = {"total_s": _med(warden, "total_s"), "first_action_s": _med(warden, "first_action_s")}
        summary["ratio"] = {k: summary["warden"][k] / summary["raw"][k] for k in ("total_s", "first_action_s")}
    if as_json:
        print(json.dumps(summary))
        return
    print(f"\n{STEPS}-step flow with a screenshot per step, {len(raw)} repetition(s), medians:")
    print(f"  {'':20} {'total wall':>12} {'first action':>14}")
    rows = [("plain Playwright", summary["raw"])]
    if warden:
        rows.insert(0, ("warden run", summary["warden"]))
    for name, m in rows:
        print(f"  {name:20} {m['total_s']:>11.3f}s {m['first_action_s']:>13.3f}s")
    if warden:
        r = summary["ratio"]
        print(f"  {'ratio warden/raw':20} {r['total_s']:>11.2f}x {r['first_action_s']:>13.2f}x")
    print("  samples (total, first):")
    for name, samples in (("warden", warden), ("raw", raw)):
        if samples:
            print(f"    {name:7} " + "  ".join(f"{s.total_s:.2f}/{s.first_action_s:.2f}" for s in samples))


def main() -> int:
    ap = argparse.ArgumentParser(description="warden run vs plain Playwright on the same 20-step flow")
    ap.add_argument("--reps", type=int, default=5, help="measured repetitions of each (default 5)")
    ap.add_argument("--warmup", type=int, default=1, help="unmeasured runs of each first (default 1)")
    ap.add_argument("--raw-only", action="store_true", help="measure only the plain Playwright side")
    ap.add_argument("--keep", action="store_true", help="keep the evidence folder and print its path")
    ap.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    args = ap.parse_args()
    if args.reps < 1 or args.warmup < 0:
        ap.error("--reps must be >= 1 and --warmup >= 0")

    warden = None if args.raw_only else find_warden()
    if not args.raw_only and warden is None:
        print("warden is not installed in this environment (pip install -e .), or use --raw-only", file=sys.stderr)
        return 2

    server, base_url = serve_site()
    evidence_dir = Path(tempfile.mkdtemp(prefix="warden-bench-"))
    warden_samples: list[Sample] = []
    raw_samples: list[Sample] = []
    try:
        for i in range(args.warmup + args.reps):
            measured = i >= args.warmup
            order = ("warden", "raw") if i % 2 == 0 else ("raw", "warden")
            for side in order:
                if side == "warden":
                    if warden is None:
                        continue
                    s = run_warden(warden, base_url, evidence_dir)
                else:
                    s = run_raw(base_url)
                if measured:
                    (warden_samples if side == "warden" else raw_samples).append(s)
                label = f"rep {i - args.warmup + 1}" if measured else "warm-up"
                print(f"  {label:8} {side:6} total {s.total_s:6.2f}s  first action {s.first_action_s:5.2f}s",
                      file=sys.stderr, flush=True)
    except (BenchError, subprocess.TimeoutExpired) as e:
        print(f"benchmark stopped: {e}", file=sys.stderr)
        return 1
    finally:
        server.shutdown()
        server.server_close()
        if args.keep:
            print(f"evidence kept in {evidence_dir}", file=sys.stderr)
        else:
            shutil.rmtree(evidence_dir, ignore_errors=True)
    report(warden_samples, raw_samples, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
