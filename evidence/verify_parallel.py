"""The streaming pass of ``verify`` on several cores: byte ranges of one ``records.jsonl`` side by side.

Each range starts at a line start and is scanned in its own process exactly as a small file is
scanned in one (evidence.verify_stream.scan_range); the caller then checks that the ranges meet:
each starts at the seq after the previous one's last, with that record's hash as its prev_hash,
and no record id appears in two of them. Workers are fresh interpreters (``python -m
evidence.verify_parallel``: never a fork of a caller that may hold threads) answering on a pipe,
started only for files large enough to pay for their start-up, and only as many as there are idle
cores (on a loaded machine they would only compete with this process): see ``_spare_cores``.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time

from evidence.verify_stream import Fallback, Part, scan_range

PARALLEL_MIN_BYTES = 96 << 20
"""Smaller files are scanned in this process: a worker costs about a second to start."""


IDLE_SAMPLE_S = 0.1
"""How long ``_spare_cores`` watches the cores (a few scheduler ticks each; 10 at 100 Hz)."""


def _idle_ticks(cpus: set[int]) -> tuple[int, int] | None:
    """(idle, total) jiffies of ``cpus`` from /proc/stat (idle + iowait count as idle), or None."""
    idle = total = 0
    try:
        with open("/proc/stat", "rb") as f:
            for line in f:
                if not line.startswith(b"cpu") or line[3:4] == b" ":
                    continue
                name, *fields = line.split()
                if int(name[3:]) not in cpus:
                    continue
                ticks = [int(x) for x in fields[:8]]  # user nice system idle iowait irq softirq steal
                idle += ticks[3] + ticks[4]
                total += sum(ticks)
    except (OSError, ValueError, IndexError):
        return None
    return (idle, total) if total else None


def _spare_cores() -> int:
    """Cores idle right now, this process's own counted as idle: on a busy machine a second process
    only competes with the first, so the file is scanned in one. Measured by a short /proc/stat
    sample over the cores this process may run on (it sleeps meanwhile), not by the 1-minute load
    average: that trails the work just done (the run or benchmark that wrote the file) and read ~1
    on an idle 2-core machine, so verify ran on one core. Without /proc: the load average, rounded."""
    try:
        cpus = set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = set(range(os.cpu_count() or 1))
    cores = len(cpus)
    if cores < 2:
        return 1
    before = _idle_ticks(cpus)
    if before is not None:
        time.sleep(IDLE_SAMPLE_S)
        after = _idle_ticks(cpus)
        if after is not None and after[1] > before[1]:
            idle = cores * (after[0] - before[0]) / (after[1] - before[1])
            return max(1, min(cores, round(idle)))
    try:
        load = os.getloadavg()[0]
    except OSError:
        return cores
    return max(1, min(cores, round(cores - load + 1)))


HEAD_START = 40 << 20
"""Bytes more for the range this process scans: a worker starts (imports) and hands its answer
back (pickle, pipe) while this process is already scanning, about 0.5-1 s (session 12, 1M records,
2 cores: 8 MB left this process waiting ~1 s for the worker, 48 MB ~0.1 s)."""


def ranges(path: str, parts: int, head_start: int = 0) -> list[tuple[int, int | None]]:
    """``parts`` byte ranges of ``path``, each starting at a line start (the last open-ended); the
    first ``head_start`` bytes longer than the others."""
    size = os.path.getsize(path)
    head_start = min(head_start, size // 2)
    cuts = [0]
    with open(path, "rb") as f:
        for k in range(1, parts):
            f.seek(max(cuts[-1], head_start + (size - head_start) * k // parts))
            f.readline()  # to the next line start
            at = f.tell()
            if at >= size:
                break
            if at > cuts[-1]:
                cuts.append(at)
    return [(a, b) for a, b in zip(cuts, [*cuts[1:], None], strict=True)]


def scan_parts(path: str, run_id: str) -> list[Part]:
    """``scan_range`` of the whole file: in this process for a small file or one core, else one
    range here and the others in worker processes; ``Fallback`` from any of them propagates. A
    worker that cannot run or dies leaves its range to this process (slower, never less checked)."""
    if os.path.getsize(path) < PARALLEL_MIN_BYTES:  # before the idle sample: it costs 0.1 s
        return [scan_range(path, run_id)]
    cores = min(_spare_cores(), 4)
    if cores < 2:
        return [scan_range(path, run_id)]
    spans = ranges(path, cores, HEAD_START)
    if len(spans) < 2:
        return [scan_range(path, run_id)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    workers: list[subprocess.Popen[bytes] | None] = []
    for a, b in spans[1:]:
        try:
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "evidence.verify_parallel", path, run_id, str(a), "" if b is None else str(b)],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
            ))
        except OSError:
            workers.append(None)
    try:
        parts = [scan_range(path, run_id, *spans[0])]
        for (a, b), proc in zip(spans[1:], workers, strict=True):
            parts.append(_result(proc, path, run_id, a, b))
        return parts
    finally:
        for proc in workers:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def _result(proc: subprocess.Popen[bytes] | None, path: str, run_id: str, a: int, b: int | None) -> Part:
    if proc is not None:
        out, _ = proc.communicate()
        if proc.returncode == 0:
            kind, value = pickle.loads(out)  # noqa: S301 - our own child's answer on its own pipe
            if kind == "fallback":
                raise Fallback
            if isinstance(value, Part):
                return value
    return scan_range(path, run_id, a, b)  # the worker could not say: this process scans it


def _main(argv: list[str]) -> int:
    path, run_id, start, end = argv
    try:
        part = scan_range(path, run_id, int(start), int(end) if end else None)
        part.ids, part.id_list = set(), list(part.ids)  # a list unpickles without rehashing every id
        answer: tuple[str, Part | None] = ("part", part)
    except Fallback:
        answer = ("fallback", None)
    sys.stdout.buffer.write(pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
