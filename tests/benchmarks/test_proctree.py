"""benchmarks/proctree.py: the CPU split by process kind that bench_run.py --cpu reports.

Why: the split tells which process a run's CPU goes to (Python, node driver, Chromium's
processes); a sampler that missed a child, or misnamed one, would send the work to the wrong place.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from proctree import CpuSampler, process_kind

BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass\n"


def test_child_and_grandchild_cpu_counted() -> None:
    """A parent that burns 0.6 s and starts a child burning 0.6 s: both counted, as python."""
    script = BURN + f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {BURN!r}], check=True)\n"
    with subprocess.Popen([sys.executable, "-c", script]) as p, CpuSampler(p.pid, interval=0.02) as sampler:
        p.wait(timeout=60)
    assert p.returncode == 0
    assert sampler.by_kind.get("python", 0.0) >= 1.0


def test_kinds() -> None:
    assert process_kind(os.getpid()) == "python"
    assert process_kind(2**22 + 7) == ""  # no such process


@pytest.mark.parametrize(
    ("cmdline", "kind"),
    [
        (b"/usr/lib/chromium/chromium --type=renderer --lang=en-US", "renderer"),
        (b"/usr/lib/chromium/chromium --type=utility --utility-sub-type=network.mojom.NetworkService",
         "utility:network"),
        (b"/usr/lib/chromium/chromium\0--headless\0--no-sandbox\0", "browser"),
        (b"/x/driver/node\0/x/cli.js\0run-driver\0", "node"),
    ],
)
def test_kind_of_command_lines(monkeypatch: pytest.MonkeyPatch, cmdline: bytes, kind: str) -> None:
    """Chromium's children show one space-joined string; the browser and node show argv."""
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: cmdline if str(self) == "/proc/1234/cmdline" else real(self))
    assert process_kind(1234) == kind
