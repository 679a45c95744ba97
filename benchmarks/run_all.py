"""`make bench`: every benchmark, then ONE table of issue 13's figures, each measured against its raw
baseline (plain Playwright, raw Presidio, enforcement off) in the same run, alternating.

Each benchmark is a subprocess printing ``{"rows": [{"figure", "value", "unit", "goal", ...}]}``
with ``--json``; one that does not support the flag is run as it is and its output printed under
the table. Before each benchmark it waits (up to a minute) for the CPUs to go quiet, and each row
says how busy they were when it started. The machine (cores, load average before and after) is
printed with it: the figures move with other work on the CPUs, so read the spread in each row's detail.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TIMEOUT = 30 * 60
SETTLE_MAX_S = 60.0  # how long to wait for the CPUs to go quiet before a benchmark
QUIET_BUSY = 0.10  # "quiet": at most this share of the CPUs busy over one second
RUNS: list[tuple[str, list[str]]] = [
    ("warden run vs plain Playwright (20 steps), 8 in parallel, peak memory",
     ["bench_run.py", "--reps", "5", "--warmup", "1", "--parallel", "8", "--rss", "--cpu", "3"]),
    ("the same on 50 KB PII-heavy pages", ["bench_run.py", "--variant", "pii", "--reps", "1", "--warmup", "0"]),
    ("enforcement on vs off, 200 subresources", ["bench_network.py", "--reps", "7"]),
    ("PII scan vs raw Presidio, 50 KB page", ["bench_pii.py", "--runs", "15"]),
    ("evidence: append, verify, query (its default, full sizes)", ["bench_evidence.py"]),
]


def machine() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "?")
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, load average {load}"


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat's first line."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_share(interval: float = 1.0) -> float:
    """The share of the CPUs busy over the next ``interval`` seconds (0..1)."""
    b0, t0 = _cpu_times()
    time.sleep(interval)
    b1, t1 = _cpu_times()
    return (b1 - b0) / max(1, t1 - t0)


def settle() -> str:
    """Wait (at most SETTLE_MAX_S) until the CPUs are quiet, so one benchmark's leftovers (browsers
    shutting down, page cache writeback) do not land in the next one's figures. The load average
    is no guide: it is a one-minute decaying mean and still shows the last benchmark long after
    the CPUs went idle. Returns what it saw, for the table."""
    started = time.monotonic()
    share = busy_share()
    while share > QUIET_BUSY and time.monotonic() - started < SETTLE_MAX_S:
        share = busy_share()
    return f"CPUs {share:.0%} busy after {time.monotonic() - started:.0f} s of settling"


def supports_json(script: Path) -> bool:
    helptext = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, check=False)
    return "--json" in helptext.stdout


def run(title: str, argv: list[str]) -> tuple[list[dict[str, Any]], str | None]:
    """(rows, text printed by a benchmark without --json, or an error)."""
    script = HERE / argv[0]
    as_json = supports_json(script)
    cmd = [sys.executable, str(script), *argv[1:], *(["--json"] if as_json else [])]
    print(f"=== {title}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None if as_json else subprocess.STDOUT,
                              text=True, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return [{"figure": title, "value": float("nan"), "unit": "", "goal": "",
                 "detail": f"did not finish within {TIMEOUT // 60} min"}], None
    took = f"{time.monotonic() - started:.0f} s"
    if not as_json:
        return [], f"--- {title} ({took}, no --json: its own output) ---\n{proc.stdout}"
    lines = [line for line in proc.stdout.splitlines() if line.startswith('{"rows"')]
    if proc.returncode != 0 or not lines:
        return [{"figure": title, "value": float("nan"), "unit": "", "goal": "",
                 "detail": f"failed (exit {proc.returncode}): {proc.stdout.strip()[-300:]}"}], None
    rows: list[dict[str, Any]] = json.loads(lines[-1])["rows"]
    return rows, None


def table(rows: list[dict[str, Any]]) -> str:
    width = max(len(r["figure"]) for r in rows)
    out = [f"| {'figure':<{width}} | {'value':>10} | goal |", f"|{'-' * (width + 2)}|{'-' * 12}|------|"]
    for r in rows:
        v = r["value"]
        shown = "—" if v != v else f"{v:.3f} {r['unit']}" if v < 10 else f"{v:.0f} {r['unit']}"
        out.append(f"| {r['figure']:<{width}} | {shown:>10} | {r.get('goal') or ''} |")
    out.append("")
    out += [f"* {r['figure'].strip()}: {r['detail']}" for r in rows if r.get("detail")]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description="every benchmark, one table of ratios against the raw baselines")
    ap.add_argument("--only", default="", help="comma-separated benchmark scripts to run (default: all)")
    args = ap.parse_args()
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    before = machine()
    rows: list[dict[str, Any]] = []
    texts: list[str] = []
    for title, argv in RUNS:
        if only and argv[0] not in only:
            continue
        quiet = settle()
        print(f"    ({quiet})", file=sys.stderr, flush=True)
        got, text = run(title, argv)
        for row in got:
            row["detail"] = f"{row['detail']}; {quiet}" if row.get("detail") else quiet
        rows += got
        if text:
            texts.append(text)
    print(f"\nmachine: {before}; at the end: load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}\n")
    print(table(rows))
    for text in texts:
        print("\n" + text)
    return 1 if any(r["value"] != r["value"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
