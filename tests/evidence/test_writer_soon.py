"""``EvidenceWriter.append_soon``: a record that gates nothing written beside the caller, in call
order, its failure stopping the writer at the very next call."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from evidence.records import ActionRecord, Actor, ExceptionRecord, PiiFinding
from evidence.redact import SecretRedactor
from evidence.verify import verify_run
from kernel.errors import EvidenceUnavailable

RUNNER = Actor(type="runner", id="warden")
PII = Actor(type="policy", id="pii")


def _finding(n: int) -> dict[str, Any]:
    return {"step": n, "where": "page", "location": {"page_url": "https://portal.example.com/a"}, "key_id": "k1",
            "policy": "record", "action": "recorded", "counts": {"EMAIL_ADDRESS": 1},
            "values": [{"entity_type": "EMAIL_ADDRESS", "score": 1.0, "value_hmac": "ab" * 32,
                        "preview": "j***@e***", "action": "recorded", "occurrences": 1,
                        "location": {"selector": f"#row{n}"}}]}


def _types(folder: Any) -> list[str]:
    return [json.loads(line)["type"] for line in folder.records.read_bytes().splitlines()]


class _Gate(SecretRedactor):
    """A redactor that holds every call until ``open`` is set, then redacts as the secret redactor."""

    def __init__(self) -> None:
        super().__init__()
        self.open = threading.Event()
        self.entered = threading.Event()

    def redact(self, text: str) -> str:
        self.entered.set()
        assert self.open.wait(30), "the test never opened the gate"
        return super().redact(text)


def test_records_keep_call_order_and_the_chain_verifies(start_run: Any) -> None:
    h = start_run()
    for n in range(1, 4):
        h.writer.append_soon(PiiFinding, actor=PII, **_finding(n))
        h.writer.append(ExceptionRecord, actor=RUNNER, category="step_failed", error_type="Timeout",
                        message=f"step {n}", mitigation="recorded")
    h.writer.close()
    assert _types(h.folder) == ["run_record"] + ["pii_finding", "exception_record"] * 3
    report = verify_run(h.folder.root)
    assert report.ok, report


def test_the_caller_goes_on_while_it_is_written_and_the_next_call_waits(start_run: Any) -> None:
    gate = _Gate()
    gate.open.set()
    h = start_run(redactor=gate)  # the run record passes the open gate
    gate.open.clear()
    gate.entered.clear()
    before = h.writer.count
    h.writer.append_soon(PiiFinding, actor=PII, **_finding(1))  # returns with the redactor still held
    assert gate.entered.wait(30)
    assert _types(h.folder) == ["run_record"]  # not written yet: the caller went on
    gate.open.set()
    assert h.writer.count == before + 1  # the next call waited for it
    assert _types(h.folder) == ["run_record", "pii_finding"]


def test_a_record_that_gates_an_action_is_written_at_once(start_run: Any) -> None:
    h = start_run()
    h.writer.append_soon(ActionRecord, actor=RUNNER, phase="intent", step=1, kind="click",
                         target={"selector": "#b1"}, call="locator('#b1').click()")
    # Read straight from the file, without a call on the writer (which would wait for a record in flight).
    assert _types(h.folder) == ["run_record", "action_record"]


def test_a_refused_record_stops_the_writer_at_the_next_call(start_run: Any) -> None:
    h = start_run()
    bad = {**_finding(1), "policy": "not-a-policy"}  # the schema refuses it, in the writer's thread
    h.writer.append_soon(PiiFinding, actor=PII, **bad)
    with pytest.raises(EvidenceUnavailable, match="written beside the run failed"):
        h.writer.append(ExceptionRecord, actor=RUNNER, category="step_failed", error_type="Timeout",
                        message="after", mitigation="recorded")
    assert not h.writer.usable
    with pytest.raises(EvidenceUnavailable):
        h.writer.append(ExceptionRecord, actor=RUNNER, category="step_failed", error_type="Timeout",
                        message="later", mitigation="recorded")
    assert _types(h.folder) == ["run_record"]  # nothing after the failed one


def test_a_redaction_failure_beside_the_run_surfaces_without_the_text(start_run: Any) -> None:
    class Broken(SecretRedactor):
        armed = False

        def redact(self, text: str) -> str:
            if self.armed:
                raise ValueError(f"cannot redact {text}")
            return super().redact(text)

    broken = Broken()
    h = start_run(redactor=broken)
    broken.armed = True
    h.writer.append_soon(PiiFinding, actor=PII, **_finding(1))
    with pytest.raises(EvidenceUnavailable) as info:
        h.writer.sync()
    assert "redaction failed (ValueError)" in str(info.value)
    assert "j***" not in str(info.value) and "#row1" not in str(info.value)


def test_close_waits_for_it(start_run: Any) -> None:
    h = start_run()
    h.writer.append_soon(PiiFinding, actor=PII, **_finding(1))
    h.writer.close()
    assert _types(h.folder) == ["run_record", "pii_finding"]


def test_a_wrong_record_type_is_refused_in_the_callers_thread(start_run: Any) -> None:
    h = start_run()
    with pytest.raises(TypeError, match="envelope fields"):
        h.writer.append_soon(PiiFinding, actor=PII, seq=5, **_finding(1))
    assert h.writer.usable


def test_behind_runs_one_call_at_a_time_and_hands_back_its_error() -> None:
    from evidence.writer_behind import Behind

    behind = Behind("test-behind")
    inner: list[BaseException | None] = []

    def work() -> None:
        inner.append(behind.settle())  # from its own thread: nothing to wait for, no deadlock
        raise ValueError("boom")

    behind.submit(work)
    with pytest.raises(RuntimeError, match="not settled"):
        behind.submit(lambda: None)
    error = behind.settle()
    assert isinstance(error, ValueError) and inner == [None]
    assert behind.settle() is None  # settled: nothing in flight
    behind.submit(lambda: None)
    assert behind.settle() is None
    behind.close()
