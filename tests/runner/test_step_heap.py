"""The step loop freezes the startup heap once per process (``steps.freeze_startup_heap``), so no
full garbage collection walks Presidio's and Playwright's objects inside a run or at exit."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from runner.steps import freeze_startup_heap
from tests.runner.test_no_fail_open import executor


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    freeze_startup_heap.cache_clear()
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfrozen")
def test_the_first_executor_freezes_what_the_process_holds() -> None:
    assert gc.get_freeze_count() == 0
    executor()
    assert gc.get_freeze_count() > 1000


@pytest.mark.usefixtures("unfrozen")
def test_a_later_executor_freezes_nothing_more() -> None:
    executor()
    frozen = gc.get_freeze_count()
    later = [[i] for i in range(5000)]  # objects of a later run: the collector still sees them
    executor()
    # a frozen object freed since leaves the count (so not ==); freezing again would add the 5,000
    assert gc.get_freeze_count() <= frozen
    assert all(gc.is_tracked(x) for x in later[:10])
