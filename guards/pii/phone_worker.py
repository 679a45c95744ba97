"""The phone pass of a big scan in a worker process: a second core for the page scan.

Why: on a PII-heavy page the phone pass is half the scan (phonenumbers parses every card, SSN,
IBAN and IP of the rows for 8 regions), and Presidio's and phonenumbers' regexes hold the GIL, so
a thread beside the other entities' passes gains nothing (measured in session 11). A process does:
the parent sends the candidate blocks, runs every other entity meanwhile, then reads the spans.

The worker is started on the first scan that is worth it (``MIN_CHARS`` of phone candidates), not
at launch: it imports phonenumbers only (~0.1 s of CPU, ~20 MB), never Presidio, through
``phone_walk.phone_match_spans`` — the spans ``FastPhoneRecognizer`` returns, proved equal by
tests. It runs isolated (``python -I``, an environment with nothing but ``PATH``: no key, no
secret), ignores Ctrl-C (the run stops it), and exits when its stdin closes, so it dies with the
run however the run ends. It writes nothing anywhere; its stderr goes to /dev/null.

Fail safe, never open: a worker that cannot start, answers late (``TIMEOUT_S``), dies, or answers
something malformed is stopped for good and that pass is computed in the caller (the same result,
only slower). Frames: 4-byte big-endian length, then JSON (parent → worker: the pass's number and
its texts) or ``K`` + int32s (the pass's number, then per text its length as read, its count and pairs) / ``E`` + an
error type (worker → parent).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import struct
import subprocess
import sys
import time
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple

from guards.pii.joined import Hit, joined_pass

MIN_CHARS = 4096  # phone candidates' text below which the hand-off costs more than it saves
# The worker's share of a pass (by text): the caller runs every other entity, then the rest of the
# phone pass, while the worker runs this (a PII-heavy page: the other entities ~65 ms, phone ~160).
WORKER_SHARE = 0.7
TIMEOUT_S = 3.0  # an answer later than this: the worker is stopped and the pass done here
_HEADER = struct.Struct(">I")
_MAX_FRAME = 64 * 1024 * 1024
_ROOT = str(Path(__file__).resolve().parents[2])  # the directory holding the guards package


def worker_for(analyzer: Any) -> PhoneWorker | None:
    """A worker for this analyzer's phone passes, or None where the worker would not find exactly
    what the analyzer does: more than one phone recognizer, or one that is not Warden's own."""
    from guards.pii.engine import LANGUAGE
    from guards.pii.phone_walk import is_fast_phone_recognizer

    recognizers = analyzer.registry.get_recognizers(language=LANGUAGE, entities=["PHONE_NUMBER"])
    if len(recognizers) != 1 or not is_fast_phone_recognizer(recognizers[0]):
        return None
    return PhoneWorker(recognizers[0])


def worker_share(sizes: Sequence[int]) -> int:
    """How many of a pass's blocks, from the first, make ``WORKER_SHARE`` of its text. A block's hits
    are its own whichever joined pass reads it (a hit crossing into the next block is dropped and
    those blocks read alone), so any split gives the same hits (tests: hypothesis)."""
    n, share, goal = 0, 0, sum(sizes) * WORKER_SHARE
    while n < len(sizes) and share < goal:
        share += sizes[n]
        n += 1
    return n


class Ticket(NamedTuple):
    """A pass sent: when its answer is due, and its number (the answer must carry it)."""

    deadline: float
    number: int
    lengths: tuple[int, ...]  # of the texts sent: every span the answer gives must lie inside its text


class PhoneWorker:
    """One worker process for one scanner's phone passes; one pass in flight at a time."""

    def __init__(self, recognizer: Any) -> None:
        self.entity = str(recognizer.supported_entities[0])
        self.score = float(recognizer.SCORE)
        self.recognizer_id = str(recognizer.id)
        self._params = {"regions": list(recognizer.supported_regions), "leniency": int(recognizer.leniency)}
        self._proc: subprocess.Popen[bytes] | None = None
        self.failed: str | None = None  # why the worker was stopped for good (a type name or a reason)
        self._sent = 0  # passes sent (each answer carries its pass's number)
        self.passes = 0  # passes the worker answered (tests and benchmarks read it)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Start the process now (else the first ``submit`` does); a failure stops the worker for good."""
        if self.failed is None and self._proc is None:
            try:
                self._start()
            except Exception as exc:
                self._stop(_why(exc))

    def submit(self, texts: Sequence[str]) -> Ticket | None:
        """Send one pass; its ticket for ``result``, or None when the worker is unusable (do it here)."""
        self.start()
        if self.failed is not None:
            return None
        self._sent += 1
        try:  # lone surrogates travel as JSON escapes
            self._send(json.dumps({"id": self._sent, "texts": list(texts)}).encode("ascii"))
        except Exception as exc:
            self._stop(_why(exc))
            return None
        return Ticket(time.monotonic() + TIMEOUT_S, self._sent, tuple(len(t) for t in texts))

    def result(self, count: int, ticket: Ticket) -> list[list[Hit]] | None:
        """The pass's hits per text (as ``joined_pass`` gives them), or None (stopped: do it here).
        The answer must carry the ticket's pass number: no answer is ever read as another pass's."""
        try:
            body = self._receive(ticket.deadline)
            if body[:1] != b"K":
                raise _Broken("worker error " + body[1:80].decode("ascii", "replace"))
            ints = array("i")
            ints.frombytes(body[1:])
            if not ints or ints.pop(0) != ticket.number:
                raise _Broken("answer of another pass")
            out: list[list[Hit]] = []
            i = 0
            if count != len(ticket.lengths):
                raise _Broken("answer for another count")
            for size in ticket.lengths:
                read, n = ints[i], ints[i + 1]
                pairs = ints[i + 2:i + 2 + 2 * n]
                if read != size:  # e.g. two lone surrogates the JSON round trip joined: offsets would shift
                    raise _Broken("text read otherwise")
                if n < 0 or len(pairs) != 2 * n:
                    raise _Broken("short answer")
                if not all(0 <= pairs[j] < pairs[j + 1] <= size for j in range(0, 2 * n, 2)):
                    raise _Broken("span outside its text")
                out.append([(self.entity, self.score, pairs[j], pairs[j + 1], self.recognizer_id, False)
                            for j in range(0, 2 * n, 2)])
                i += 2 + 2 * n
            if i != len(ints):
                raise _Broken("long answer")
        except Exception as exc:
            self._stop(_why(exc))
            return None
        self.passes += 1
        return out

    def close(self) -> None:
        if self._proc is not None:
            self._stop(self.failed)

    # ---------------------------------------------------------------- the pipe
    def _start(self) -> None:
        code = f"import sys; sys.path.insert(0, {_ROOT!r}); from guards.pii.phone_worker import serve; serve()"
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, close_fds=True,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        os.set_blocking(self._proc.stdin.fileno(), False)
        os.set_blocking(self._proc.stdout.fileno(), False)
        self._send(json.dumps(self._params).encode("ascii"))

    def _send(self, payload: bytes) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        data = memoryview(_HEADER.pack(len(payload)) + payload)
        fd, deadline = self._proc.stdin.fileno(), time.monotonic() + TIMEOUT_S
        while data:
            if not select.select([], [fd], [], max(0.0, deadline - time.monotonic()))[1]:
                raise _Broken("worker not reading")
            data = data[os.write(fd, data):]

    def _receive(self, deadline: float) -> bytes:
        (size,) = _HEADER.unpack(self._read(_HEADER.size, deadline))
        if size > _MAX_FRAME:
            raise _Broken("frame too big")
        return self._read(size, deadline)

    def _read(self, n: int, deadline: float) -> bytes:
        assert self._proc is not None and self._proc.stdout is not None
        fd, chunks, got = self._proc.stdout.fileno(), [], 0
        while got < n:
            if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                raise _Broken("worker too slow")
            chunk = os.read(fd, n - got)
            if not chunk:
                raise _Broken("worker ended")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _stop(self, why: str | None) -> None:
        self.failed = why or "closed"
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        try:
            proc.wait(timeout=1.0)  # stdin closed: a healthy worker exits at once
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class _Broken(Exception):
    """The worker answered late, not at all, or not in the protocol."""


def _why(exc: BaseException) -> str:
    """Warden's own reason, or only the type of anything else (no message could quote a text)."""
    return str(exc) if isinstance(exc, _Broken) else type(exc).__name__


# -------------------------------------------------------------------- the worker's side
def serve(stdin: IO[bytes] | None = None, stdout: IO[bytes] | None = None) -> None:
    """The worker's loop: parameters, then one pass per frame, until stdin closes."""
    from guards.pii.phone_walk import phone_match_spans
    from guards.pii.pieces import phone_spans

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the run stops us
    src = stdin or sys.stdin.buffer
    dst = stdout or sys.stdout.buffer
    first = _read_frame(src)
    if first is None:
        return
    params = json.loads(first)
    regions, leniency = tuple(params["regions"]), int(params["leniency"])

    def recognize(text: str) -> list[Hit]:
        return [("", 0.0, a, b, "", False) for a, b in phone_match_spans(text, regions, leniency)]

    recognize("call +1 212 555 0123 or 020 7946 0958")  # the regions' metadata loaded before the first pass
    while (frame := _read_frame(src)) is not None:
        try:
            request = json.loads(frame)
            texts = request["texts"]
            out = array("i", [int(request["id"])])
            for text, hits in zip(texts, joined_pass(texts, [phone_spans(t) for t in texts], recognize), strict=True):
                out.extend((len(text), len(hits)))
                for h in hits:
                    out.extend((h[2], h[3]))
            body = b"K" + out.tobytes()
        except Exception as exc:  # the type only: a message could quote the text
            body = b"E" + type(exc).__name__.encode("ascii", "replace")
        dst.write(_HEADER.pack(len(body)) + body)
        dst.flush()


def _read_frame(src: IO[bytes]) -> bytes | None:
    head = src.read(_HEADER.size)
    if len(head) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(head)
    body = src.read(size)
    return body if len(body) == size else None
