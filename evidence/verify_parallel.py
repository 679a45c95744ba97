"""The streaming pass of ``verify`` on several cores: byte ranges of one ``records.jsonl`` side by side.

Each range starts at a line start and is scanned in its own process exactly as a small file is
scanned in one (evidence.verify_stream.scan_range); the caller then checks that the ranges meet:
each starts at the seq after the previous one's last, with that record's hash as its prev_hash,
and no record id appears in two of them. Workers are fresh interpreters (``python -m
evidence.verify_parallel``: never a fork of a caller that may hold threads) answering on a pipe,
started only for files large enough to pay for their start-up, and only as many as there are idle
cores (on a loaded machine they would only compete with this process).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

from evidence.verify_stream import Fallback, Part, scan_range

PARALLEL_MIN_BYTES = 96 << 20
"""Smaller files are scanned in this process: a worker costs about a second to start."""


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _spare_cores() -> int:
    """Cores free right now (1-minute load average; this process's own counted as free): on a busy
    machine a second process only competes with the first, so the file is scanned in one. Rounded,
    not truncated: the load average trails this process's own work (reading the file, the run that
    wrote it), so an idle 2-core machine reads 1.1 with only the verifier on it."""
    cores = _cores()
    try:
        load = os.getloadavg()[0]
    except OSError:
        return cores
    return max(1, min(cores, round(cores - load + 1)))


def ranges(path: str, parts: int) -> list[tuple[int, int | None]]:
    """``parts`` byte ranges of ``path``, each starting at a line start (the last open-ended)."""
    size = os.path.getsize(path)
    cuts = [0]
    with open(path, "rb") as f:
        for k in range(1, parts):
            f.seek(max(cuts[-1], size * k // parts))
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
    cores = min(_spare_cores(), 4)
    if cores < 2 or os.path.getsize(path) < PARALLEL_MIN_BYTES:
        return [scan_range(path, run_id)]
    spans = ranges(path, cores)
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
        answer: tuple[str, Part | None] = ("part", scan_range(path, run_id, int(start), int(end) if end else None))
    except Fallback:
        answer = ("fallback", None)
    sys.stdout.buffer.write(pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
