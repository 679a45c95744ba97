"""The scanner's warm-up pass: it runs every default recognizer, and leaves no trace a real scan sees."""

from __future__ import annotations

import pytest

from guards.pii.engine import build_analyzer, default_entities
from guards.pii.scanner import PiiScanner
from guards.pii.warm_up import WARM_UP_TEXT, wants_warm_up, warm_up
from missions.model import PiiPolicy
from tests.guards.canaries import CANARIES

KEY = bytes(range(32))
ENTITIES = default_entities(None)


def _scanner() -> PiiScanner:
    return PiiScanner(PiiPolicy(entities=ENTITIES), KEY, analyzer=build_analyzer(ENTITIES, None))


@pytest.fixture(scope="module")
def shared() -> PiiScanner:
    return _scanner()


def test_every_default_recognizer_runs_on_the_warm_up_text(shared: PiiScanner) -> None:
    """Each entity yields a result at some score: its recognizer ran (and so compiled what it uses)."""
    raws = shared._analyze([WARM_UP_TEXT], ())[0]
    assert {entity for entity, _, _, _ in raws} == set(ENTITIES)


def test_a_warmed_scanner_finds_exactly_what_a_cold_one_does() -> None:
    page = [f"Customer {c.label} {c.value}." for c in CANARIES] + ["Orders", "Contact us at the front desk."]
    cold = _scanner()
    warm = _scanner()
    warm_up(warm)
    got_cold = cold.scan_page("https://shop.example/a", page, threshold=0.0)
    got_warm = warm.scan_page("https://shop.example/a", page, threshold=0.0)
    assert got_warm == got_cold and got_cold
    # The warm-up's own text is not a page the scanner has seen: a page showing it is scanned in full.
    assert warm.scan_page("https://shop.example/b", [WARM_UP_TEXT])


@pytest.mark.parametrize(("classes", "wanted"), [
    ([], False), (["secrets"], False), (["pii"], True), (["financial"], True), (["regulated", "secrets"], True),
])
def test_only_a_mission_that_handles_such_data_is_warmed(classes: list[str], wanted: bool) -> None:
    assert wants_warm_up(classes) is wanted
