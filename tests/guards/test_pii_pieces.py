"""The pieces a model-less recognizer reads (guards/pii/pieces.py) keep its results: a scan that
gives each recognizer only the runs its matches can lie in finds, block by block, exactly what the
same scan finds giving it whole blocks (spans, entity types, scores), and each piece boundary is
a break character or the block's edge."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guards.pii.engine import PATTERN_ENTITIES
from guards.pii.pieces import BREAKS, pieces
from guards.pii.prefilter import entities_per_block
from guards.pii.scanner import PiiScanner
from missions.model import PiiPolicy
from tests.guards.canaries import CANARIES


@pytest.fixture(scope="module")
def scanners() -> tuple[PiiScanner, PiiScanner]:
    policy = PiiPolicy(entities=list(PATTERN_ENTITIES), threshold=0.0)
    with_pieces = PiiScanner(policy, b"k" * 32, timeout_s=None)
    whole = PiiScanner(policy, b"k" * 32, timeout_s=None)
    whole._pieces = False  # the same scanner reading whole blocks: the oracle
    assert with_pieces._pieces
    return with_pieces, whole


def _raw(scanner: PiiScanner, blocks: list[str]) -> object:
    """Raw results per block, or the error a recognizer raised (Presidio's card check raises on a digit
    newer than Python's Unicode tables: both ways must fail alike, the scan then fails closed)."""
    scanner._cache.clear()
    try:
        return scanner._analyze_blocks(blocks, (), entities_per_block(scanner.entities, blocks, scanner._own_context))
    except ValueError as e:
        return type(e)


# Values (the canaries), their pieces, and what sits around values: separators of every recognizer,
# brackets, quotes, letters glued on, Unicode letters that case-fold to ASCII, non-ASCII digits.
_PIECES = st.sampled_from(
    [c.value for c in CANARIES] + [c.value[: len(c.value) // 2] for c in CANARIES] + [
        *"0123456789", *"0123456789", " ", "-", ".", "/", ":", "::", "@", "%", "+", "_", "]", "(", ")", "<",
        "'", '"', ",", "\n", "\t", "a", "Z", "T", "x", "ſ", "K", "İ", "é", "٣", "\U00011f50", "https://",
        "www.", ".com", "Jan-", "-2024", "12/5/2024", "2024-05-12T10:00Z", "9", "H12345678", "A-Z]]12",
        "bc1", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "ffff:", "fe80::1%eth0", "00:1A:2B:3C:4D:5E",
        "0123.4567.89ab", "123e4567-e89b-12d3-a456-426614174000", "Call ", "SSN ", "the report ",
    ]
)
_BLOCK = st.lists(_PIECES, min_size=1, max_size=25).map("".join)


@settings(max_examples=400, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blocks=st.lists(_BLOCK, min_size=1, max_size=4))
def test_pieces_find_what_whole_blocks_find(scanners: tuple[PiiScanner, PiiScanner], blocks: list[str]) -> None:
    with_pieces, whole = scanners
    assert _raw(with_pieces, blocks) == _raw(whole, blocks)


def test_pieces_find_what_whole_blocks_find_on_the_canaries(scanners: tuple[PiiScanner, PiiScanner]) -> None:
    with_pieces, whole = scanners
    blocks = [f"{c.label} {c.value}." for c in CANARIES] + [" ".join(c.value for c in CANARIES)]
    blocks += [f"{c.label} {c.value.replace('1', '١')}" for c in CANARIES]  # Arabic-Indic digits: \d too
    found = _raw(with_pieces, blocks)
    assert found == _raw(whole, blocks)
    assert sum(len(r) for r in found) > len(CANARIES)


@settings(max_examples=600, deadline=None, derandomize=True)
@given(block=_BLOCK, entity=st.sampled_from(sorted(BREAKS)))
def test_pieces_are_cut_at_breaks(block: str, entity: str) -> None:
    """Pieces are ordered, disjoint, and start and end at the block's edges or on a break character."""
    import regex

    brk = regex.compile(BREAKS[entity])
    found = pieces(entity, block)
    assert found == sorted(found) and all(a < b for a, b in found)
    assert all(b1 < a2 for (_, b1), (a2, _) in itertools.pairwise(found))
    for a, b in found:
        assert a == 0 or brk.fullmatch(block[a])
        assert b == len(block) or brk.fullmatch(block[b - 1])
