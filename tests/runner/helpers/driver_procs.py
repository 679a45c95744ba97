"""This test process's Playwright node drivers, read from /proc (whether one was started, and with what)."""

from __future__ import annotations

import os
from pathlib import Path


def driver_pids() -> set[int]:
    """This process's children that are Playwright's node driver."""
    pids = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat_line = Path(entry.path, "stat").read_text()
            cmdline = Path(entry.path, "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat_line.rsplit(")", 1)[1].split()[1]) == os.getpid() and b"run-driver" in cmdline:
            pids.add(int(entry.name))
    return pids
