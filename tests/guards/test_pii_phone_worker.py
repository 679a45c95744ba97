"""The phone pass in a worker process (guards/pii/phone_worker.py): the same findings as the pass done
in the scanner, and every way the worker can fail ends in the pass done here, never in a wrong answer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from faker import Faker
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guards.pii import phone_worker
from guards.pii.engine import build_analyzer, default_entities, import_presidio
from guards.pii.phone_walk import fast_phone_recognizer, phone_match_spans
from guards.pii.phone_worker import MIN_CHARS, PhoneWorker
from guards.pii.scanner import PiiScanner
from missions.model import PiiPolicy
from tests.guards.test_pii_prefilters import _PIECES

KEY = bytes(range(32))


@pytest.fixture(scope="module")
def analyzer() -> Any:
    return build_analyzer(default_entities())


def _scanners(analyzer: Any) -> tuple[PiiScanner, PiiScanner]:
    """(worker, local): the runtime's page scanner with and without the worker, on one analyzer."""
    policy = PiiPolicy(entities=default_entities(), threshold=0.5)
    return (PiiScanner(policy, KEY, analyzer=analyzer, offload_phone=True),
            PiiScanner(policy, KEY, analyzer=analyzer))


def _customer_rows(seed: int, rows: int = 150) -> list[str]:
    """A PII-heavy page's blocks: one per table cell, as the page reading gives them."""
    fk = Faker("en_US")
    fk.seed_instance(seed)
    blocks = ["Customers", "Name", "Phone", "Card", "SSN", "IBAN", "IP"]
    for _ in range(rows):
        blocks += [fk.name(), fk.phone_number(), fk.credit_card_number(), fk.ssn(), fk.iban(), fk.ipv4(),
                   f"Call {fk.msisdn()} or mail {fk.email()}"]
    return blocks


def _worker(scanner: PiiScanner) -> PhoneWorker:
    w = scanner._phone_worker
    assert w is not None, "the big page did not start the worker"
    return w


def test_spans_are_the_fast_recognizers_results_in_its_order() -> None:
    import_presidio()
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    rec = fast_phone_recognizer(PhoneRecognizer())
    page = "\n\n".join(_customer_rows(7, rows=60))
    expected = [(r.start, r.end) for r in rec.analyze(page, ["PHONE_NUMBER"])]
    assert len(expected) > 50
    assert phone_match_spans(page, tuple(rec.supported_regions), rec.leniency) == expected


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(_PIECES, min_size=1, max_size=60).map("".join), st.sampled_from([0, 1, 2, 3]))
def test_spans_equal_the_recognizer_on_phone_like_text(text: str, leniency: int) -> None:
    import_presidio()
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    rec = fast_phone_recognizer(PhoneRecognizer(leniency=leniency))
    expected = [(r.start, r.end) for r in rec.analyze(text, ["PHONE_NUMBER"])]
    assert phone_match_spans(text, tuple(rec.supported_regions), leniency) == expected


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_big_page_gives_the_same_findings_with_the_worker(analyzer: Any, seed: int) -> None:
    with_worker, here = _scanners(analyzer)
    try:
        blocks = _customer_rows(seed)
        found = with_worker.scan_page("p", blocks, threshold=0.3)  # the runtime's mask threshold: phones 0.4
        assert found == here.scan_page("p", blocks, threshold=0.3)
        assert sum(f.entity_type == "PHONE_NUMBER" for f in found) > 100
        w = _worker(with_worker)
        assert (w.passes, w.failed) == (1, None)
    finally:
        with_worker.close()


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(_PIECES, min_size=1, max_size=30).map("".join), min_size=1, max_size=40))
def test_any_split_of_the_blocks_gives_the_same_findings(
    analyzer: Any, monkeypatch: pytest.MonkeyPatch, blocks: list[str]
) -> None:
    monkeypatch.setattr("guards.pii.scanner.MIN_CHARS", 0)  # every pass goes to the worker
    with_worker, here = _scanners(analyzer)
    try:
        assert with_worker.scan_page("p", blocks) == here.scan_page("p", blocks)
        if with_worker._phone_worker is not None:
            assert with_worker._phone_worker.failed is None
    finally:
        with_worker.close()


def test_a_text_the_json_round_trip_changes_is_done_here(analyzer: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two lone surrogates side by side come back from JSON as one character: every offset after them
    would be one off. The worker says each text's length as it read it; a mismatch is done here."""
    monkeypatch.setattr("guards.pii.scanner.MIN_CHARS", 0)
    blocks = ["\ud83d" + "\ude00" + f" call 212 555 01{i:02d} now, card 4012 8888 8888 1881" for i in range(40)]
    with_worker, here = _scanners(analyzer)
    try:
        found = with_worker.scan_page("p", blocks, threshold=0.3)
        assert found == here.scan_page("p", blocks, threshold=0.3)
        assert any(f.entity_type == "PHONE_NUMBER" for f in found)
        assert _worker(with_worker).failed == "text read otherwise"
    finally:
        with_worker.close()


def test_small_pages_and_the_default_scanner_start_no_worker(analyzer: Any) -> None:
    with_worker, here = _scanners(analyzer)
    small = _customer_rows(4, rows=5)
    assert sum(len(b) for b in small) < MIN_CHARS
    with_worker.scan_page("p", small)
    here.scan_page("p", _customer_rows(4))
    assert with_worker._phone_worker is None and here._phone_worker is None


def test_the_worker_holds_no_secret_no_file_and_ignores_ctrl_c(analyzer: Any) -> None:
    with_worker, here = _scanners(analyzer)
    try:
        with_worker.scan_page("a", _customer_rows(11))
        w = _worker(with_worker)
        pid = w.pid
        assert pid is not None
        assert Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")[:-1] == [
            b"PATH=" + os.environ.get("PATH", "/usr/bin:/bin").encode()]
        fds = sorted(int(n) for n in os.listdir(f"/proc/{pid}/fd"))
        assert fds == [0, 1, 2], fds  # its two pipes and /dev/null: nothing of this process
        assert os.readlink(f"/proc/{pid}/fd/2") == "/dev/null"
        assert b"-I" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        os.kill(pid, signal.SIGINT)
        blocks = _customer_rows(12)
        assert with_worker.scan_page("b", blocks) == here.scan_page("b", blocks)
        assert (w.passes, w.failed, w.pid) == (2, None, pid)
    finally:
        with_worker.close()


def test_a_killed_worker_means_the_pass_is_done_here_for_good(analyzer: Any) -> None:
    with_worker, here = _scanners(analyzer)
    try:
        with_worker.scan_page("a", _customer_rows(21))
        w = _worker(with_worker)
        pid = w.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        for seed in (22, 23):
            blocks = _customer_rows(seed)
            assert with_worker.scan_page(f"p{seed}", blocks) == here.scan_page(f"p{seed}", blocks)
        assert w.passes == 1 and w.failed is not None and w.pid is None
        assert with_worker._phone_worker is w  # not restarted
    finally:
        with_worker.close()


_LIARS = {
    "garbage": "import sys; sys.stdin.buffer.read(8); sys.stdout.buffer.write(b'\\x00\\x00\\x00\\x05Kabcd');"
               "sys.stdout.flush(); sys.stdin.buffer.read()",
    "error": "import sys; sys.stdin.buffer.read(8); sys.stdout.buffer.write(b'\\x00\\x00\\x00\\x04EBad');"
             "sys.stdout.flush(); sys.stdin.buffer.read()",
    "huge frame": "import sys; sys.stdin.buffer.read(8); sys.stdout.buffer.write(b'\\xff\\xff\\xff\\xff');"
                  "sys.stdout.flush(); sys.stdin.buffer.read()",
    "ends": "import sys; sys.stdin.buffer.read(8)",
    # a well-formed answer (no phone in any text) numbered for another pass: read as this one, it
    # would drop every phone of the worker's share
    "another pass": "import sys, json, struct, array; i = sys.stdin.buffer; n, = struct.unpack('>I', i.read(4));"
                    "r = json.loads(i.read(n));"
                    "b = b'K' + array.array('i', [r['id'] + 1] + sum(([len(t), 0] for t in r['texts']), []))"
                    ".tobytes(); sys.stdout.buffer.write(struct.pack('>I', len(b)) + b); sys.stdout.flush(); i.read()",
    "silent": "import sys; sys.stdin.buffer.read()",
    "span outside": "import sys, json, struct, array; i = sys.stdin.buffer; n, = struct.unpack('>I', i.read(4));"
                    "r = json.loads(i.read(n));"
                    "b = b'K' + array.array('i', [r['id']] + sum(([len(t), 1, 0, 9**7] for t in r['texts']), []))"
                    ".tobytes(); sys.stdout.buffer.write(struct.pack('>I', len(b)) + b); sys.stdout.flush(); i.read()",
    "not reading": "import time; time.sleep(120)",
}


@pytest.mark.parametrize("liar", sorted(_LIARS))
def test_a_worker_that_misanswers_is_stopped_and_the_pass_done_here(
    analyzer: Any, monkeypatch: pytest.MonkeyPatch, liar: str
) -> None:
    """A worker that answers garbage, an error, an impossible frame, nothing, or never reads."""
    monkeypatch.setattr(phone_worker, "TIMEOUT_S", 0.5)  # bounds the silent ones' wait; no answer comes
    real = PhoneWorker._start

    def start_liar(self: PhoneWorker) -> None:
        self._proc = subprocess.Popen([sys.executable, "-c", _LIARS[liar]], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        os.set_blocking(self._proc.stdin.fileno(), False)
        os.set_blocking(self._proc.stdout.fileno(), False)

    monkeypatch.setattr(PhoneWorker, "_start", start_liar)
    with_worker, here = _scanners(analyzer)
    try:
        blocks = _customer_rows(31)
        assert with_worker.scan_page("p", blocks) == here.scan_page("p", blocks)
        w = _worker(with_worker)
        assert w.passes == 0 and w.failed is not None and w.pid is None
    finally:
        with_worker.close()
        monkeypatch.setattr(PhoneWorker, "_start", real)


def test_a_worker_not_reading_does_not_block_the_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pass bigger than the pipe's buffer to a worker that reads nothing: refused in time, not stuck."""
    monkeypatch.setattr(phone_worker, "TIMEOUT_S", 0.5)
    import_presidio()
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    w = PhoneWorker(fast_phone_recognizer(PhoneRecognizer()))
    w._proc = subprocess.Popen([sys.executable, "-c", _LIARS["not reading"]], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert w._proc.stdin is not None
    os.set_blocking(w._proc.stdin.fileno(), False)
    assert w.submit(["call 212 555 0123 now"] * 20_000) is None
    assert w.failed == "worker not reading" and w.pid is None


def test_close_ends_the_worker_and_later_scans_are_done_here(analyzer: Any) -> None:
    with_worker, here = _scanners(analyzer)
    with_worker.scan_page("a", _customer_rows(41))
    w = _worker(with_worker)
    proc = w._proc
    assert proc is not None
    with_worker.close()
    assert proc.returncode == 0  # it read the end of its input and left
    blocks = _customer_rows(42)
    assert with_worker.scan_page("b", blocks) == here.scan_page("b", blocks)
    assert w.passes == 1 and w.failed == "closed"


def test_the_worker_leaves_when_its_run_is_killed(tmp_path: Path) -> None:
    """SIGKILL of the scanning process: the worker reads the end of its input and exits."""
    script = tmp_path / "run.py"
    script.write_text(
        "import sys, time\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})\n"
        "from guards.pii.engine import import_presidio\n"
        "import_presidio()\n"
        "from presidio_analyzer.predefined_recognizers import PhoneRecognizer\n"
        "from guards.pii.phone_walk import fast_phone_recognizer\n"
        "from guards.pii.phone_worker import PhoneWorker\n"
        "w = PhoneWorker(fast_phone_recognizer(PhoneRecognizer()))\n"
        "d = w.submit(['call 212 555 0123'])\n"
        "assert w.result(1, d) is not None\n"
        "print(w.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    run = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert run.stdout is not None
    pid = int(run.stdout.readline())
    run.kill()
    run.wait()
    deadline = time.monotonic() + 20
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # an exited worker nobody reaped yet counts as gone


def test_the_warm_up_starts_the_worker_beside_the_launch(analyzer: Any) -> None:
    """A mission whose pages hold PII: the worker starts in the warm-up, and the first big page uses it."""
    from guards.pii.warm_up import warm_up

    with_worker, here = _scanners(analyzer)
    try:
        warm_up(with_worker)
        warm_up(here)
        w = _worker(with_worker)
        pid = w.pid
        assert pid is not None and here._phone_worker is None
        blocks = _customer_rows(51)
        assert with_worker.scan_page("p", blocks) == here.scan_page("p", blocks)
        assert (w.passes, w.failed, w.pid) == (1, None, pid)
    finally:
        with_worker.close()
