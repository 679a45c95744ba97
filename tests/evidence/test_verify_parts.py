"""The ranges scanned side by side (evidence.verify_parallel) must not share a record id: a worker
hands its ids back as a list, and a whole chain rewritten so that only an id repeats across two
ranges is still refused, with the same problems as one process finds."""

from __future__ import annotations

import json
from typing import Any

import pytest

import evidence.verify_parallel as vp
from evidence.verify import verify_run
from tests.evidence.conftest import Tamper


@pytest.mark.parametrize("first", [0, 1])  # the id first seen in the first or the second range
def test_an_id_repeated_in_a_later_range_is_refused(make_run: Any, monkeypatch: pytest.MonkeyPatch,
                                                     first: int) -> None:
    monkeypatch.setattr(vp, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(vp, "HEAD_START", 0)
    h = make_run(steps=20)
    cuts = [a for a, _ in vp.ranges(str(h.folder.records), 3)]
    assert len(cuts) == 3
    raw = h.folder.records.read_bytes()
    in_range = [raw[:c].count(b"\n") + 2 for c in cuts]  # a record index inside each range
    t = Tamper(h.folder)
    recs = t.lines()
    recs[in_range[2]]["record_id"] = recs[in_range[first]]["record_id"]
    recs = t.rechain(recs)
    t.write(recs)
    info = json.loads(h.folder.run_json.read_text())
    info.update(chain_head=recs[-1]["hash"], record_count=len(recs))
    h.folder.run_json.write_text(json.dumps(info, indent=2))

    def problems(cores: int) -> list[str]:
        monkeypatch.setattr(vp, "_spare_cores", lambda: cores)
        return list(verify_run(h.folder.root).problems)

    parallel, single = problems(3), problems(1)
    assert parallel and parallel == single, (parallel, single)
    assert any("record_id" in p or "duplicate" in p for p in parallel), parallel


def test_the_collector_is_paused_only_while_a_range_is_scanned(make_run: Any) -> None:
    import gc

    from evidence.verify_stream import Fallback, scan_range

    h = make_run(steps=2)
    assert gc.isenabled()
    scan_range(str(h.folder.records), h.run_id)
    assert gc.isenabled()
    with pytest.raises(Fallback):
        scan_range(str(h.folder.records), "another-run")  # every line names another run
    assert gc.isenabled()
    gc.disable()
    try:
        scan_range(str(h.folder.records), h.run_id)
        assert not gc.isenabled()  # a caller's own pause is left as it was
    finally:
        gc.enable()
