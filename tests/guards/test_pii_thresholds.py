"""The page scan at the redaction threshold (masks, known values) and at the policy's (findings), real Presidio.

One per-block cache serves both: it holds raw scores, so a block first scanned at the policy
threshold is reported at the lower one from the cache, without another Presidio call.
"""

from __future__ import annotations

import pytest

from guards.pii.redactor import PiiRedactor
from guards.pii.scanner import PiiScanner
from guards.pii.thresholds import REDACTION_CEILING, redaction_threshold
from missions.model import PiiPolicy

KEY = bytes(range(32))
BARE = "(212) 555-0147"  # a valid number with no context word in its block: 0.4
LABELLED = "Phone: (212) 555-0188"  # its context word in the block: 0.75


@pytest.fixture(scope="module")
def scanner() -> PiiScanner:
    return PiiScanner(PiiPolicy(entities=["PHONE_NUMBER", "EMAIL_ADDRESS"], threshold=0.5), KEY)


def test_the_redaction_threshold_is_the_policy_s_capped_at_0_4() -> None:
    assert REDACTION_CEILING == 0.4
    assert redaction_threshold(0.5) == 0.4
    assert redaction_threshold(0.9) == 0.4
    assert redaction_threshold(0.3) == 0.3


def test_scan_page_reports_from_the_given_threshold_and_the_policy_s_by_default(scanner: PiiScanner) -> None:
    texts = ["Phone", BARE, LABELLED, "Nothing to see here"]
    policy = scanner.scan_page("thr-a", texts)
    assert [(f.block, f.score) for f in policy] == [(2, 0.75)]
    low = scanner.scan_page("thr-b", texts, threshold=0.4)
    assert [(f.block, f.score) for f in low] == [(1, 0.4), (2, 0.75)]
    assert low[0].value == BARE


def test_the_block_cache_serves_either_threshold_without_rescanning(scanner: PiiScanner) -> None:
    texts = ["Call us", "(646) 555-0102", "Nothing here"]
    assert scanner.scan_page("cache-a", texts) == []  # 0.4 < 0.5: nothing at the policy threshold
    calls = scanner.analyzer_calls
    low = scanner.scan_page("cache-b", texts, threshold=0.4)  # another page, same blocks: the cache
    assert scanner.analyzer_calls == calls
    assert [(f.block, f.entity_type, f.score) for f in low] == [(1, "PHONE_NUMBER", 0.4)]


def test_the_redactor_redacts_from_the_same_threshold(scanner: PiiScanner) -> None:
    redactor = PiiRedactor(scanner)
    assert redactor.threshold == redaction_threshold(scanner.threshold)
    assert redactor.redact(BARE) == "«pii:PHONE_NUMBER»"
