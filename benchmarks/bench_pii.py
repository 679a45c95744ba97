"""PII scan benchmark: Warden's scanner vs a raw Presidio AnalyzerEngine on a 50 KB page.

    .venv/bin/python benchmarks/bench_pii.py [--runs N]

Raw = AnalyzerEngine(no_op NLP engine, default recognizers).analyze(whole text, all entities).
Warden = PiiScanner with the SPEC example entities (no PERSON: no model), page given as blocks.
Targets (issue 4): first scan ≤ 0.2x raw; unchanged rescan ≤ 2 ms. Also prints recall per entity.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from guards.pii.engine import prepare_environment  # noqa: E402
from tests.guards.canaries import CANARIES, ENTITIES  # noqa: E402

_FILLER = (
    "the quarterly report covers revenue churn retention across regions and teams while the board reviews "
    "forecasts budgets hiring plans product roadmap customer feedback support tickets and release notes for "
    "next year with a focus on reliability performance security and cost"
)
WORDS = _FILLER.split(" ")


def page_blocks(target: int = 50_000, seed: int = 7) -> list[str]:
    """English-ish filler blocks (menus, paragraphs, table rows with numbers), canaries sprinkled in."""
    rng = random.Random(seed)
    blocks: list[str] = []
    canaries = list(CANARIES)
    size = 0
    i = 0
    while size < target:
        kind = i % 10
        if kind in (0, 5):
            b = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5))).title()  # nav / heading
        elif kind in (3, 8):
            b = f"Order {rng.randint(1000, 9999)} shipped on {rng.randint(1, 28)}/{rng.randint(1, 12)}/2024 " \
                f"total ${rng.randint(10, 999)}.{rng.randint(10, 99)} qty {rng.randint(1, 9)}"  # a table row
        else:
            b = " ".join(rng.choice(WORDS) for _ in range(rng.randint(25, 60))).capitalize() + "."
        if canaries and i % 4 == 2:
            c = canaries.pop(0)
            b += f" {c.label} {c.value}."
        blocks.append(b)
        size += len(b) + 1
        i += 1
    return blocks


def median_ms(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args()
    prepare_environment()
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NoOpNlpEngine

    from guards.pii.scanner import PiiScanner
    from missions.model import PiiPolicy

    blocks = page_blocks()
    text = "\n".join(blocks)
    print(f"page: {len(text)} chars in {len(blocks)} blocks, {len(CANARIES)} canaries ({', '.join(ENTITIES)})")

    nlp = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "no_op"}])
    nlp.load()
    raw = AnalyzerEngine(nlp_engine=nlp)
    raw_ms = median_ms(lambda: raw.analyze(text=text, language="en"), args.runs)

    policy = PiiPolicy(entities=ENTITIES, threshold=0.5)
    scanner = PiiScanner(policy, b"\x01" * 32)

    def first() -> None:
        scanner._cache.clear()
        scanner.forget_page("bench")
        scanner.scan_page("bench", blocks)

    first_ms = median_ms(first, args.runs)
    scanner.scan_page("bench", blocks)
    calls = scanner.analyzer_calls
    rescan_ms = median_ms(lambda: scanner.scan_page("bench", blocks), max(args.runs, 50))
    assert scanner.analyzer_calls == calls, "unchanged rescan called the analyzer"

    all_policy = PiiPolicy(threshold=0.5)  # every supported entity, like raw
    all_scanner = PiiScanner(all_policy, b"\x01" * 32)

    def first_all() -> None:
        all_scanner._cache.clear()
        all_scanner.forget_page("bench")
        all_scanner.scan_page("bench", blocks)

    all_ms = median_ms(first_all, args.runs)
    def whole() -> None:
        scanner._cache.clear()
        scanner.scan_text(text, "page")

    whole_ms = median_ms(whole, args.runs)

    print(f"raw Presidio analyze (no_op, default recognizers, all entities): {raw_ms:8.1f} ms")
    print(f"Warden scan_page, first scan ({len(ENTITIES)} entities):           {first_ms:8.1f} ms  "
          f"ratio {first_ms / raw_ms:.3f}  (target <= 0.2)")
    print(f"Warden scan_page, unchanged rescan:                          {rescan_ms:8.3f} ms  (target <= 2 ms)")
    print(f"Warden scan_page, first scan, ALL supported entities:        {all_ms:8.1f} ms  ratio {all_ms / raw_ms:.3f}")
    print(f"Warden scan_text, whole page as one block ({len(ENTITIES)} entities):  {whole_ms:8.1f} ms  "
          f"ratio {whole_ms / raw_ms:.3f}")

    # Recall on the canary corpus: with its label (context word), and bare.
    print("\nrecall (threshold 0.5): entity            labelled   bare   in-page")
    found = scanner.scan_page("recall-page", blocks)
    page_values = {(f.entity_type, f.value.strip()) for f in found}
    for entity in ENTITIES:
        cs = [c for c in CANARIES if c.entity_type == entity]

        def hit(text: str, c: object) -> bool:
            return any(f.entity_type == c.entity_type and f.value.strip() == c.value  # type: ignore[attr-defined]
                       for f in scanner.scan_text(text, "page"))

        lab = sum(hit(f"{c.label} {c.value}.", c) for c in cs)
        bare = sum(hit(f"Ref {c.value} here", c) for c in cs)
        inp = sum((c.entity_type, c.value) in page_values for c in cs)
        print(f"  {entity:<18} {lab:>3}/{len(cs):<3}    {bare:>3}/{len(cs):<3} {inp:>3}/{len(cs):<3}")


if __name__ == "__main__":
    main()
