"""Benchmark: known-value redaction of one 50 KB page text with 1,800 learnt values (e-mails, phone
numbers, names), as a PII-heavy run has after its first page scan; then one more value learnt and
the text redacted again (the bucketed regexes this replaced were recompiled after every new value:
that, not the matching, was ~150 s of a PII-heavy run).

``--old`` also times the former implementation (one IGNORECASE alternation of every spelling, kept
as the oracle in tests/guards/test_pii_known_values.py): it took 430 s here, hence opt-in.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "guards"))

from test_pii_known_values import _known, oracle


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--old", action="store_true", help="also time the former big alternation (minutes)")
    args = ap.parse_args()
    vals: dict[str, str] = {}
    for i in range(600):
        vals[f"cust{i:04d}.name@mail{i % 13}.example"] = "EMAIL_ADDRESS"
        vals[f"+1 555 {i:03d} {i * 7 % 10000:04d}"] = "PHONE_NUMBER"
        vals[f"Firstname{i} Lastname{i * 3}"] = "PERSON"
    text = "".join(f"<tr><td>{v}</td><td>order {i} shipped</td></tr>" for i, v in enumerate(vals))[:50_000]
    print(f"{len(vals)} values, {len(text)} chars")
    t = time.perf_counter()
    k = _known(vals)
    learn = time.perf_counter() - t
    t = time.perf_counter()
    new = k.redact(text)
    first = time.perf_counter() - t
    t = time.perf_counter()
    k.redact(text)
    warm = time.perf_counter() - t
    t = time.perf_counter()
    k.contains_known(text)
    contains = time.perf_counter() - t
    t = time.perf_counter()
    k.add("cust9999.name@mail1.example", "EMAIL_ADDRESS")
    k.redact(text)
    again = time.perf_counter() - t
    print(f"learn {len(vals)} values {learn:.3f} s; redact: first call {first:.3f} s, warm {warm:.3f} s, after one"
          f" more value {again:.3f} s; contains_known {contains * 1e3:.2f} ms")
    if args.old:
        t = time.perf_counter()
        old = oracle(vals, text)
        print(f"old big alternation: {time.perf_counter() - t:.2f} s (compile included); same output: {old == new}")


if __name__ == "__main__":
    main()
