"""evidence.verify_parallel: how many cores verify uses, and that ranges scanned side by side judge
a file exactly as one process does (every tamper in a later range caught, the same report)."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

import evidence.verify_parallel as vp
from evidence.verify import verify_run
from evidence.verify_stream import _scanner


def test_idle_ticks_read_the_cores_this_process_may_use() -> None:
    cpus = set(os.sched_getaffinity(0))
    ticks = vp._idle_ticks(cpus)
    assert ticks is not None
    idle, total = ticks
    assert 0 <= idle <= total and total > 0
    assert vp._idle_ticks({max(cpus) + 1000}) is None  # no such core: no answer, not zero


def _sampled(monkeypatch: pytest.MonkeyPatch, cores: int, *samples: tuple[int, int] | None) -> int:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(cores)))
    monkeypatch.setattr(time, "sleep", lambda _s: None)
    answers = iter(samples)
    monkeypatch.setattr(vp, "_idle_ticks", lambda _cpus: next(answers))
    return vp._spare_cores()


def test_spare_cores_come_from_a_short_idle_sample_not_the_trailing_load_average(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Right after a benchmark wrote the file the 1-minute load average still reads ~1 on an idle
    2-core machine; the sample says what the cores do now."""
    monkeypatch.setattr(os, "getloadavg", lambda: (1.6, 1.0, 0.5))  # would have meant one core
    assert _sampled(monkeypatch, 2, (0, 0), (20, 20)) == 2  # both idle during the sample
    assert _sampled(monkeypatch, 2, (0, 0), (10, 20)) == 1  # one core busy with something else
    assert _sampled(monkeypatch, 2, (0, 0), (0, 20)) == 1  # never fewer than this process's own
    assert _sampled(monkeypatch, 4, (0, 0), (31, 40)) == 3
    assert _sampled(monkeypatch, 1, (0, 0), (10, 10)) == 1


def test_without_proc_stat_the_load_average_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.2, 0.2))
    assert _sampled(monkeypatch, 2, None) == 2
    monkeypatch.setattr(os, "getloadavg", lambda: (3.0, 3.0, 3.0))
    assert _sampled(monkeypatch, 2, (0, 0), None) == 1


def test_the_first_range_gets_the_head_start(tmp_path: Any) -> None:
    path = tmp_path / "lines"
    path.write_bytes(b"".join(b"x" * 99 + b"\n" for _ in range(1000)))  # 100 kB
    even = vp.ranges(str(path), 2)
    ahead = vp.ranges(str(path), 2, 10_000)
    assert even[0] == (0, 50_100) and ahead[0] == (0, 55_100)  # the line start after the cut
    assert ahead[-1] == (55_100, None)
    assert vp.ranges(str(path), 2, 10**9)[0] == (0, 75_100)  # capped: never more than half to spare


def test_a_line_is_one_json_value_and_nothing_around_it() -> None:
    decode = _scanner(float, int)
    assert decode('{"a":[1,2.5]}') == {"a": [1, 2.5]}
    for text, why in ((' {"a":1}', "not JSON"), ('{"a":1} ', "data after"), ('{"a":1}{}', "data after"),
                      ("", "not JSON"), ("{", "Expecting property name")):
        with pytest.raises(ValueError, match=why):
            decode(text)


def _lines(h: Any) -> list[bytes]:
    data: bytes = h.folder.records.read_bytes()
    return data.split(b"\n")[:-1]


def _report(h: Any, monkeypatch: pytest.MonkeyPatch, cores: int) -> list[str]:
    monkeypatch.setattr(vp, "_spare_cores", lambda: cores)
    report = verify_run(h.folder.root, h.index)
    return list(report.problems)


@pytest.mark.parametrize("where", [1, 2])  # the tamper in the second or the third of three ranges
@pytest.mark.parametrize("change", ["edit", "delete", "reorder", "insert", "duplicate"])
def test_a_tamper_in_a_later_range_is_reported_as_one_process_reports_it(
    make_run: Any, monkeypatch: pytest.MonkeyPatch, change: str, where: int
) -> None:
    monkeypatch.setattr(vp, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(vp, "HEAD_START", 0)
    h = make_run(steps=20)
    good = h.folder.records.read_bytes()
    cuts = [a for a, _ in vp.ranges(str(h.folder.records), 3)]
    assert len(cuts) == 3
    at = good[:cuts[where]].count(b"\n") + 2  # a record inside that range, not at its edge
    lines = _lines(h)
    if change == "edit":
        assert b'"time":"2' in lines[at]
        lines[at] = lines[at].replace(b'"time":"2', b'"time":"3', 1)
    elif change == "delete":
        del lines[at]
    elif change == "reorder":
        lines[at], lines[at + 1] = lines[at + 1], lines[at]
    elif change == "insert":  # an earlier record's line copied in
        lines.insert(at, lines[3])
    else:  # the same line twice in a row
        lines.insert(at, lines[at])
    h.folder.records.write_bytes(b"".join(line + b"\n" for line in lines))
    parallel = _report(h, monkeypatch, 3)
    single = _report(h, monkeypatch, 1)
    assert parallel and parallel == single, (parallel, single)
    h.folder.records.write_bytes(good)
    assert _report(h, monkeypatch, 3) == [] == _report(h, monkeypatch, 1)
