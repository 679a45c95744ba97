"""The index's view of a chain (evidence.index_chain): the standard-library read of a SQLite index
gives what the SQLAlchemy read gives, and a run the index does not hold is None on both."""

from __future__ import annotations

from typing import Any

from evidence.index import EvidenceIndex
from evidence.index_chain import _through_sqlalchemy, indexed_chain


def test_sqlite_read_equals_the_sqlalchemy_read(make_run: Any) -> None:
    h = make_run(steps=3)
    index: EvidenceIndex = h.index
    fast = indexed_chain(index, h.run_id)
    slow = _through_sqlalchemy(index, h.run_id)
    assert fast is not None and fast == slow
    assert fast.record_count == len(fast.hashes) == h.writer.count
    assert [s for s, _ in fast.hashes] == list(range(1, fast.record_count + 1))
    assert fast.chain_head == fast.hashes[-1][1] and fast.status == "completed"


def test_unknown_run_is_none(make_run: Any) -> None:
    h = make_run(steps=1)
    assert indexed_chain(h.index, "no-such-run") is None
    assert _through_sqlalchemy(h.index, "no-such-run") is None


def test_a_running_run_is_read_while_its_writer_holds_the_index(make_run: Any) -> None:
    h = make_run(steps=2, finish=False)
    seen = indexed_chain(h.index, h.run_id)
    assert seen is not None and seen.status == "running" and seen.record_count == h.writer.count
    h.step(3)
    again = indexed_chain(h.index, h.run_id)
    assert again is not None and again.record_count == seen.record_count + 3 == h.writer.count  # a step: 3 records
    assert again.hashes[: len(seen.hashes)] == seen.hashes and again.chain_head == h.writer.head
