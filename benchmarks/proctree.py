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
