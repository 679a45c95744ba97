"""Benchmark: `warden run` against plain Playwright on the same 20-step flow, alternating, in one run.

Why: Warden puts every action through guards and writes evidence; this measures what that costs
against the same steps and screenshots done the plain way. One command:

    .venv/bin/python benchmarks/bench_run.py [--reps 5] [--warmup 1] [--variant plain|pii]
        [--parallel 8] [--rss] [--cpu [N]] [--json]

It serves benchmarks/site/ (``bench_site.py``; ``--variant pii``: the same pages with a ~50 KB
customer table each, and ``bench_mission_pii.yaml``) on 127.0.0.1, then alternates, as subprocesses
(the order flips each repetition so neither always runs second on a warm cache),
``warden run <mission> ... --quiet --json`` and ``benchmarks/raw_playwright_steps.py``, and prints
the medians of total wall time (spawn to exit) and of time-to-first-action (spawn to the end of
step 1), for both, and the ratios. ``--parallel N``: then N warden runs at once, wall time ÷ (N × the
median single run), with the N runs' CPU (sampled from /proc) and how busy the machine was: on a
saturated machine the ratio cannot go below their CPU ÷ (cores × N × one run), so it says whether
the N wait on something or only need less CPU; then N raw Playwright scripts at once, the same way
(the peer's own ratio, in the same run). ``--rss``: then one more run of each with its
process tree's peak PSS sampled (Python, the Playwright driver and every Chromium process).
``--cpu [N]``: then N more runs of each (alternating; medians by kind) with their CPU seconds by
process kind (Python, node driver, Chromium's browser, renderer, GPU, utility processes), sampled
from /proc while they live (``proctree.CpuSampler``; Chromium's processes are not all reaped into
``getrusage``). ``--json``: ``{"rows": [...]}``.

Warden's first action comes from its ``--json`` event stream: ``{"event": "step_finished", "step": 1,
"t": <epoch>}`` minus the spawn epoch. The raw script reports the same interval itself, from the
spawn epoch passed to it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench_site import serve_site
from proctree import CpuSampler, PeakSampler, machine_cpu

HERE = Path(__file__).resolve().parent
MISSIONS = {"plain": HERE / "bench_mission.yaml", "pii": HERE / "bench_mission_pii.yaml"}
RAW_SCRIPT = HERE / "raw_playwright_steps.py"
STEPS = 20
RUN_TIMEOUT = 600


@dataclass
class Sample:
    total_s: float
    first_action_s: float
    peak_mb: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)


class BenchError(Exception):
    """A run failed: the benchmark stops, showing why."""


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


def _spawn(cmd: list[str], rss: bool, cpu: bool = False) -> tuple[subprocess.CompletedProcess[str], float, Sample]:
    """Run ``cmd``; returns (completed process, spawn epoch, a Sample with only its peak PSS in MB
    (``rss``) and CPU seconds by process kind (``cpu``) filled in)."""
    spawn = time.time()
    extra = Sample(0.0, 0.0)
    if not (rss or cpu):
        proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=RUN_TIMEOUT,
                              check=False)
        return proc, spawn, extra
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                          text=True) as p:
        sampler: PeakSampler | CpuSampler = PeakSampler(p.pid) if rss else CpuSampler(p.pid)
        with sampler:
            out, err = p.communicate(timeout=RUN_TIMEOUT)
    if isinstance(sampler, PeakSampler):
        extra.peak_mb = sampler.peak_mb
    else:
        extra.cpu = sampler.by_kind
    return subprocess.CompletedProcess(cmd, p.returncode, out, err), spawn, extra


def warden_cmd(warden: str, mission: Path, base_url: str, evidence_dir: Path) -> list[str]:
    return [warden, "run", str(mission), "--var", f"base_url={base_url}", "--evidence-dir", str(evidence_dir),
            "--approval", "deny", "--quiet", "--json"]


def check_warden(proc: subprocess.CompletedProcess[str], spawn: float) -> float:
    """The run's time to first action, after checking it ran every step; BenchError otherwise."""
    events = []
    for line in proc.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    if proc.returncode != 0:
        raise BenchError(f"warden run exited {proc.returncode}\n$ {' '.join(proc.args)}\n"
                         f"stdout:\n{_tail(proc.stdout)}\nstderr:\n{_tail(proc.stderr)}")
    finished = [e for e in events if isinstance(e, dict) and e.get("event") == "step_finished"]
    first = next((e for e in finished if e.get("step") == 1 and "t" in e), None)
    if first is None:
        raise BenchError("warden's --json stream has no step_finished event for step 1 with a 't'\n"
                         f"stdout:\n{_tail(proc.stdout)}")
    if len(finished) != STEPS:
        raise BenchError(f"expected {STEPS} step_finished events, got {len(finished)}")
    return _epoch(first["t"]) - spawn


def run_warden(warden: str, mission: Path, base_url: str, evidence_dir: Path, rss: bool = False,
               cpu: bool = False) -> Sample:
    proc, spawn, extra = _spawn(warden_cmd(warden, mission, base_url, evidence_dir), rss, cpu)
    total = time.time() - spawn
    return Sample(total, check_warden(proc, spawn), extra.peak_mb, extra.cpu)


def run_raw(base_url: str, rss: bool = False, cpu: bool = False) -> Sample:
    proc, spawn, extra = _spawn(raw_cmd(base_url), rss, cpu)
    total = time.time() - spawn
    result = check_raw(proc)
    return Sample(total, float(result["first_action_s"]), extra.peak_mb, extra.cpu)


@dataclass
class Parallel:
    """N runs at once: their wall time, their CPU by process kind, and how busy the machine was."""

    n: int
    wall_s: float
    load: str
    cpu: dict[str, float] = field(default_factory=dict)  # summed over the N runs' process trees
    busy_s: float = 0.0  # the whole machine's busy CPU seconds during the N (others' work included)
    cores: int = 1


def run_parallel(cmd: list[str], n: int, check: Any) -> Parallel:
    """``n`` copies of ``cmd`` started together (warden's share one evidence folder, as a fleet shares
    it), their CPU sampled from /proc (every process they start; this process itself left out);
    ``check(completed, spawn)`` raises BenchError for a run that did not do the whole flow."""
    load = _load()
    busy0, _ = machine_cpu()
    spawn = time.time()
    with CpuSampler(os.getpid(), interval=0.1, skip_root=True) as sampler:
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                  text=True) for _ in range(n)]
        done = []
        for p in procs:
            out, err = p.communicate(timeout=RUN_TIMEOUT * 2)
            done.append(subprocess.CompletedProcess(cmd, p.returncode, out, err))
        wall = time.time() - spawn
    busy1, _ = machine_cpu()
    for proc in done:
        check(proc, spawn)
    return Parallel(n, wall, load, sampler.by_kind, busy1 - busy0, os.cpu_count() or 1)


def raw_cmd(base_url: str) -> list[str]:
    return [sys.executable, str(RAW_SCRIPT), "--base-url", base_url, "--start-epoch", repr(time.time())]


def check_raw(proc: subprocess.CompletedProcess[str], spawn: float = 0.0) -> dict[str, Any]:
    """The raw script's result line, after checking it took every screenshot; BenchError otherwise."""
    if proc.returncode != 0:
        raise BenchError(f"raw Playwright script exited {proc.returncode}\nstderr:\n{_tail(proc.stderr)}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    if result.get("screenshots") != STEPS:
        raise BenchError(f"raw script took {result.get('screenshots')} screenshots, expected {STEPS}")
    return result


def _load() -> str:
    """The 1-minute load average, as /proc/loadavg gives it ("?" where there is none)."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except (OSError, IndexError):
        return "?"


def _med(samples: list[Sample], attr: str) -> float:
    return float(statistics.median(getattr(s, attr) for s in samples))


def _spread(samples: list[Sample], attr: str) -> str:
    vals = [getattr(s, attr) for s in samples]
    return f"{min(vals):.2f}–{max(vals):.2f} s"


def median_cpu(samples: list[Sample]) -> Sample:
    """One Sample whose CPU is the median of each process kind's (a kind missing from a run counts 0)."""
    kinds = {k for s in samples for k in s.cpu}
    return Sample(_med(samples, "total_s"), _med(samples, "first_action_s"),
                  cpu={k: float(statistics.median(s.cpu.get(k, 0.0) for s in samples)) for k in kinds})


def rows(variant: str, warden: list[Sample], raw: list[Sample], parallel: Parallel | None,
         rss: tuple[Sample, Sample] | None, cpu: tuple[Sample, Sample] | None = None,
         raw_parallel: Parallel | None = None) -> list[dict[str, Any]]:
    """The figures of issue 13 this run measured, as {figure, value, unit, goal, detail}."""
    tag = "" if variant == "plain" else " (50 KB PII-heavy pages, pii.on_page: record)"
    out: list[dict[str, Any]] = []
    if warden and raw:
        w, r = _med(warden, "total_s"), _med(raw, "total_s")
        out.append({"figure": f"warden run ÷ raw Playwright, 20 steps + screenshots{tag}", "value": w / r,
                    "unit": "x", "goal": "≤ 1.15" if variant == "plain" else "≤ 1.5",
                    "detail": f"medians {w:.2f} s / {r:.2f} s of {len(raw)} alternating reps; "
                              f"warden {_spread(warden, 'total_s')}, raw {_spread(raw, 'total_s')}"})
        if variant == "plain":
            wf, rf = _med(warden, "first_action_s"), _med(raw, "first_action_s")
            out.append({"figure": "time to first action ÷ raw Playwright's", "value": wf / rf, "unit": "x",
                        "goal": "≤ 1.3", "detail": f"medians {wf:.2f} s / {rf:.2f} s; warden "
                        f"{_spread(warden, 'first_action_s')}, raw {_spread(raw, 'first_action_s')}"})
    if parallel is not None and warden:
        one = _med(warden, "total_s")
        out.append(parallel_row(parallel, one, tag))
        if raw_parallel is not None and raw:
            out[-1]["detail"] += "; " + raw_parallel_detail(raw_parallel, _med(raw, "total_s"))
    if rss is not None:
        ws, rs = rss
        out.append({"figure": f"peak memory of a run (PSS of its process tree){tag}", "value": ws.peak_mb,
                    "unit": "MB", "goal": f"≤ raw + 150 = {rs.peak_mb + 150:.0f}",
                    "detail": f"raw Playwright {rs.peak_mb:.0f} MB; warden − raw = {ws.peak_mb - rs.peak_mb:+.0f} MB"})
    if cpu is not None:
        wc, rc = cpu
        wt, rt = sum(wc.cpu.values()), sum(rc.cpu.values())
        kinds = sorted(set(wc.cpu) | set(rc.cpu), key=lambda k: -(wc.cpu.get(k, 0.0) + rc.cpu.get(k, 0.0)))
        split = ", ".join(f"{k} {wc.cpu.get(k, 0.0):.2f}/{rc.cpu.get(k, 0.0):.2f}" for k in kinds)
        out.append({"figure": f"CPU of a run, all its processes, ÷ raw Playwright's{tag}",  # medians by kind
                    "value": wt / rt if rt else 0.0, "unit": "x", "goal": "(report)",
                    "detail": f"{wt:.2f} s / {rt:.2f} s, warden/raw by process: {split}"})
    return out


def parallel_row(par: Parallel, one: float, tag: str = "") -> dict[str, Any]:
    """The N-at-once row, with what bounds it: when the machine was busy throughout, the N runs'
    CPU ÷ the cores is the least wall time they could take, so ratio ≥ their CPU ÷ (cores × N × one)."""
    n, wall = par.n, par.wall_s
    cpu = sum(par.cpu.values())
    kinds = ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(par.cpu.items(), key=lambda kv: -kv[1]) if v / n >= 0.05)
    busy = par.busy_s / (par.cores * wall) if wall else 0.0
    floor = cpu / (par.cores * n * one) if one else 0.0
    return {"figure": f"{n} missions in parallel ÷ {n} × one{tag}", "value": wall / (n * one), "unit": "x",
            "goal": "≤ 0.6", "detail": f"{wall:.2f} s for {n} at once; one run {one:.2f} s (median); their CPU "
            f"{cpu:.1f} s = {cpu / n:.2f} s per run ({kinds}), ÷ {par.cores} cores = {cpu / par.cores:.1f} s: "
            f"this ratio cannot go below {floor:.2f} without less CPU per run; machine busy {100 * busy:.0f} % "
            f"of its {par.cores} CPUs meanwhile ({'CPU-bound' if busy >= 0.95 else 'not saturated: look for waits'}); "
            f"1-min load before them {par.load} (others' load flatters this ratio: the {n} get more of the cores "
            "than one run did; take it on an idle machine)"}


def raw_parallel_detail(par: Parallel, one: float) -> str:
    """The same N-at-once measure for raw Playwright, in the same run: the peer's own ratio and floor."""
    cpu = sum(par.cpu.values())
    floor = cpu / (par.cores * par.n * one) if one else 0.0
    return (f"raw Playwright, {par.n} at once right after: {par.wall_s:.2f} s ÷ ({par.n} × {one:.2f} s) = "
            f"{par.wall_s / (par.n * one):.2f}× (its CPU {cpu:.1f} s = {cpu / par.n:.2f} s per run; "
            f"its floor {floor:.2f})")


def print_table(table: list[dict[str, Any]], warden: list[Sample], raw: list[Sample]) -> None:
    for row in table:
        print(f"  {row['figure']:<72} {row['value']:8.2f} {row['unit']:<3} (goal {row['goal']})")
        print(f"      {row['detail']}")
    print("  samples (total / first action, s):")
    for name, samples in (("warden", warden), ("raw", raw)):
        if samples:
            print(f"    {name:7} " + "  ".join(f"{s.total_s:.2f}/{s.first_action_s:.2f}" for s in samples))


def main() -> int:
    ap = argparse.ArgumentParser(description="warden run vs plain Playwright on the same 20-step flow")
    ap.add_argument("--reps", type=int, default=5, help="measured repetitions of each (default 5)")
    ap.add_argument("--warmup", type=int, default=1, help="unmeasured runs of each first (default 1)")
    ap.add_argument("--variant", choices=sorted(MISSIONS), default="plain", help="plain pages or PII-heavy ones")
    ap.add_argument("--parallel", type=int, default=0, help="then N warden runs at once (0: skip)")
    ap.add_argument("--rss", action="store_true", help="then one run of each with its peak memory sampled")
    ap.add_argument("--cpu", type=int, nargs="?", const=1, default=0, metavar="N",
                    help="then N alternating runs of each (default 1) with their CPU by process sampled; medians")
    ap.add_argument("--raw-only", action="store_true", help="measure only the plain Playwright side")
    ap.add_argument("--keep", action="store_true", help="keep the evidence folder and print its path")
    ap.add_argument("--json", action="store_true", help='print {"rows": [...]} instead of the table')
    args = ap.parse_args()
    if args.reps < 1 or args.warmup < 0 or args.parallel < 0:
        ap.error("--reps must be >= 1, --warmup and --parallel >= 0")

    warden = None if args.raw_only else find_warden()
    if not args.raw_only and warden is None:
        print("warden is not installed in this environment (pip install -e .), or use --raw-only", file=sys.stderr)
        return 2
    mission = MISSIONS[args.variant]
    server, base_url = serve_site(pii=args.variant == "pii")
    evidence_dir = Path(tempfile.mkdtemp(prefix="warden-bench-"))
    warden_samples: list[Sample] = []
    raw_samples: list[Sample] = []
    parallel: Parallel | None = None
    raw_parallel: Parallel | None = None
    rss: tuple[Sample, Sample] | None = None
    cpu: tuple[Sample, Sample] | None = None
    try:
        for i in range(args.warmup + args.reps):
            measured = i >= args.warmup
            order = ("warden", "raw") if i % 2 == 0 else ("raw", "warden")
            for side in order:
                if side == "warden":
                    if warden is None:
                        continue
                    s = run_warden(warden, mission, base_url, evidence_dir)
                else:
                    s = run_raw(base_url)
                if measured:
                    (warden_samples if side == "warden" else raw_samples).append(s)
                label = f"rep {i - args.warmup + 1}" if measured else "warm-up"
                print(f"  {label:8} {side:6} total {s.total_s:6.2f}s  first action {s.first_action_s:5.2f}s",
                      file=sys.stderr, flush=True)
        if warden is not None and args.parallel:
            parallel = run_parallel(warden_cmd(warden, mission, base_url, evidence_dir), args.parallel, check_warden)
            print(f"  {args.parallel} warden runs at once: {parallel.wall_s:.2f}s, their CPU "
                  f"{sum(parallel.cpu.values()):.1f} s", file=sys.stderr, flush=True)
            raw_parallel = run_parallel(raw_cmd(base_url), args.parallel, check_raw)
            print(f"  {args.parallel} raw runs at once: {raw_parallel.wall_s:.2f}s, their CPU "
                  f"{sum(raw_parallel.cpu.values()):.1f} s", file=sys.stderr, flush=True)
        if warden is not None and args.rss:
            ws = run_warden(warden, mission, base_url, evidence_dir, rss=True)
            rs = run_raw(base_url, rss=True)
            rss = (ws, rs)
            print(f"  peak PSS: warden {ws.peak_mb:.0f} MB, raw {rs.peak_mb:.0f} MB", file=sys.stderr, flush=True)
        if warden is not None and args.cpu:
            wcs, rcs = [], []
            for i in range(args.cpu):  # alternating, the order flipped each time (as the reps above)
                for side in (("warden", "raw") if i % 2 == 0 else ("raw", "warden")):
                    if side == "warden":
                        wcs.append(run_warden(warden, mission, base_url, evidence_dir, cpu=True))
                    else:
                        rcs.append(run_raw(base_url, cpu=True))
                print(f"  CPU: warden {sum(wcs[-1].cpu.values()):.2f} s, raw {sum(rcs[-1].cpu.values()):.2f} s",
                      file=sys.stderr, flush=True)
            cpu = (median_cpu(wcs), median_cpu(rcs))
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
    table = rows(args.variant, warden_samples, raw_samples, parallel, rss, cpu, raw_parallel)
    if args.json:
        print(json.dumps({"rows": table}))
    else:
        print(f"\n{STEPS}-step flow with a screenshot per step ({args.variant} pages), {len(raw_samples)} rep(s):")
        print_table(table, warden_samples, raw_samples)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
