"""Peak memory of a process tree (a run and every process it starts: Playwright's driver, Chromium).

Why PSS, not RSS: Chromium's processes share most of their pages; summing their RSS counts those
pages once per process and inflates both sides. PSS (``/proc/PID/smaps_rollup``) divides a shared
page among the processes that map it, so the sum is the tree's real footprint. Linux only.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def tree_pss_mb(root: int) -> float:
    """The summed PSS of ``root`` and all its descendants, in MB."""
    kids = _children()
    todo, total = [root], 0
    while todo:
        pid = todo.pop()
        total += _pss_kb(pid)
        todo.extend(kids.get(pid, ()))
    return total / 1024


class PeakSampler:
    """Samples a tree's PSS every ``interval`` seconds in a thread; ``peak_mb`` is the highest seen."""

    def __init__(self, root: int, interval: float = 0.1) -> None:
        self.root, self.interval, self.peak_mb = root, interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pss-sampler", daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, tree_pss_mb(self.root))
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# ----------------------------------------------------------------------------- CPU by process kind

_TICK = os.sysconf("SC_CLK_TCK")


def process_kind(pid: int) -> str:
    """What a process of a run is: ``python``, ``node`` (Playwright's driver), or Chromium's
    ``browser``, ``renderer``, ``gpu-process``, ``zygote``, ``utility:<service>`` ("" if gone).

    Chromium rewrites its children's command line into one string, so it is split on spaces."""
    try:
        argv = [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        return ""
    if len(argv) == 1:
        argv = argv[0].split(" ")
    if not argv:
        return ""
    exe = os.path.basename(argv[0])
    if "python" in exe or exe == "warden":
        return "python"
    if exe == "node":
        return "node"
    if "chrom" in exe:
        kind = next((a.split("=", 1)[1] for a in argv if a.startswith("--type=")), "browser")
        if kind == "utility":
            sub = next((a.split("=", 1)[1] for a in argv if a.startswith("--utility-sub-type=")), "")
            return "utility:" + sub.split(".")[0]
        return kind
    return exe


def _tree_ticks(root: int) -> dict[int, int]:
    """utime + stime (clock ticks) of ``root`` and every descendant alive now."""
    out: dict[int, int] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[pid] = int(fields[11]) + int(fields[12])
            for task in os.listdir(f"/proc/{pid}/task"):
                todo.extend(int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split())
        except (OSError, ValueError, IndexError):
            continue
    return out


class CpuSampler:
    """CPU seconds of a process tree by process kind, sampled every ``interval`` s in a thread.

    Why sampled: Chromium's processes are not all reaped into the run's ``getrusage`` (about a
    third of a run's CPU was missing from it), so each process's own counters are read while it
    lives. A process's last ``interval`` before it exits is missed: ``by_kind`` is a lower bound.
    """

    def __init__(self, root: int, interval: float = 0.05, *, skip_root: bool = False) -> None:
        self.root, self.interval, self.skip_root = root, interval, skip_root
        self._last: dict[int, int] = {}
        self._kind: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cpu-sampler", daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for pid, ticks in _tree_ticks(self.root).items():
                if self.skip_root and pid == self.root:
                    continue  # e.g. the benchmark itself, sampling the runs it started
                self._last[pid] = ticks
                kind = process_kind(pid)  # re-read: a zygote's fork becomes a renderer
                if kind:
                    self._kind[pid] = kind
            self._stop.wait(self.interval)

    @property
    def by_kind(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for pid, ticks in self._last.items():
            kind = self._kind.get(pid, "?")
            out[kind] = out.get(kind, 0.0) + ticks / _TICK
        return out

    @property
    def total(self) -> float:
        return sum(self.by_kind.values())

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def machine_cpu() -> tuple[float, float]:
    """(busy, elapsed) CPU seconds of the whole machine since boot, all CPUs (``/proc/stat``).

    Why: the difference over an interval says whether the machine was saturated (busy ≈ elapsed:
    CPU-bound, nothing to gain but CPU) or waiting (busy < elapsed: something serialises)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # user..steal (guest time is already counted in user)
    return (total - idle) / _TICK, total / _TICK
