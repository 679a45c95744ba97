"""Every benchmark, one after the other, at sizes that finish in minutes (`make bench`).

Each prints its own figures and ratios against raw Playwright / raw Presidio measured in the same
run; see benchmarks/README.md for the full-size options (e.g. verifying 1M records).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = [
    ("warden run vs plain Playwright, 20 steps", ["bench_run.py", "--reps", "5"]),
    ("domain enforcement on vs off, 200 subresources", ["bench_network.py", "--reps", "5"]),
    ("PII scan vs raw Presidio, 50 KB page", ["bench_pii.py", "--runs", "9"]),
    ("evidence: append, verify, query", ["bench_evidence.py", "--records", "20000", "--durable-records", "2000",
                                         "--verify-records", "100000", "--query-records", "200000"]),
]


def main() -> int:
    failed = 0
    for title, argv in RUNS:
        print(f"\n=== {title} ===", flush=True)
        failed |= subprocess.run([sys.executable, str(HERE / argv[0]), *argv[1:]], check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
