"""benchmarks/proctree.py: the CPU split by process kind that bench_run.py --cpu reports.

Why: the split tells which process a run's CPU goes to (Python, node driver, Chromium's
processes); a sampler that missed a child, or misnamed one, would send the work to the wrong place.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from proctree import CpuSampler, machine_cpu, process_kind

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


def test_skip_root_leaves_the_sampler_out() -> None:
    """The parallel row samples the benchmark's own tree: the benchmark itself must not count."""
    burn = BURN.replace("0.6", "0.4")
    with CpuSampler(os.getpid(), interval=0.02, skip_root=True) as sampler:
        t = time.process_time()
        while time.process_time() - t < 0.4:
            pass
        subprocess.run([sys.executable, "-c", burn], check=True)
    assert 0.35 <= sampler.total < 0.75  # the child's 0.4 s, not this process's


def test_machine_cpu_moves_with_work() -> None:
    busy0, total0 = machine_cpu()
    t = time.process_time()
    while time.process_time() - t < 0.2:
        pass
    busy1, total1 = machine_cpu()
    assert busy1 - busy0 >= 0.15
    # Elapsed CPU covers busy CPU; equal on a saturated machine, so compared in whole ticks (the
    # seconds are tick counts / CLK_TCK, and two float differences of equal ticks may differ by an ulp).
    tick = os.sysconf("SC_CLK_TCK")
    assert round((total1 - total0) * tick) >= round((busy1 - busy0) * tick)


def test_parallel_row_floor() -> None:
    """8 runs of 10 s CPU on 2 cores cannot take under 40 s: with one run of 8 s, the floor is 0.62."""
    from bench_run import Parallel, parallel_row

    row = parallel_row(Parallel(8, 41.0, "0.1", {"python": 40.0, "browser": 40.0}, 81.0, 2), 8.0)
    assert abs(row["value"] - 41.0 / 64.0) < 1e-9
    assert "cannot go below 0.62" in row["detail"] and "CPU-bound" in row["detail"]


def test_raw_parallel_in_the_same_row() -> None:
    """The peer's N-at-once figures join the warden row: 8 raw runs of 6 s CPU, one raw run 4 s."""
    from bench_run import Parallel, Sample, rows

    warden = [Sample(8.0, 2.0)]
    raw = [Sample(4.0, 1.5)]
    par = Parallel(8, 41.0, "0.1", {"python": 80.0}, 81.0, 2)
    raw_par = Parallel(8, 26.0, "0.1", {"python": 8.0, "browser": 40.0}, 50.0, 2)
    row = next(r for r in rows("plain", warden, raw, par, None, None, raw_par) if "in parallel" in r["figure"])
    assert abs(row["value"] - 41.0 / 64.0) < 1e-9
    assert "26.00 s ÷ (8 × 4.00 s) = 0.81×" in row["detail"] and "its floor 0.75" in row["detail"]


def test_median_cpu_by_kind() -> None:
    """--cpu N reports each kind's median; a kind a run did not show counts 0 in it."""
    from bench_run import Sample, median_cpu

    runs = [Sample(1.0, 0.5, cpu={"python": 3.0, "gpu-process": 1.0}), Sample(2.0, 0.6, cpu={"python": 5.0}),
            Sample(3.0, 0.7, cpu={"python": 4.0, "gpu-process": 2.0})]
    med = median_cpu(runs)
    assert med.cpu == {"python": 4.0, "gpu-process": 1.0}
    assert med.total_s == 2.0
