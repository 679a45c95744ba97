"""Where a writer reopened on a run whose process died picks up: the last complete line's seq and
hash, a torn tail (a write cut short) cut off first."""

from __future__ import annotations

import json
import os
from typing import NamedTuple

from evidence import runfolder as _io
from evidence.canonical import record_hash
from evidence.runfolder import RunFolder
from kernel.errors import EvidenceUnavailable


class ResumePoint(NamedTuple):
    offset: int  # the file's size once the torn tail is cut
    torn_bytes: int  # bytes cut off
    seq: int | None  # the last record's (None: no complete record)
    head: str | None  # its hash


def resume_point(folder: RunFolder, fd: int, size: int, run_id: str) -> ResumePoint:
    """Truncate ``fd`` (``folder.records``, ``size`` bytes) after its last complete line and read
    that line's seq and hash; ``EvidenceUnavailable`` when it cannot be read, does not verify, or
    belongs to another run."""
    try:
        with open(folder.records, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise EvidenceUnavailable(f"cannot read {folder.records}: {e.strerror or e}") from e
    keep = raw.rfind(b"\n") + 1  # 0 when no complete line at all
    torn = 0
    if keep < size:
        try:
            os.ftruncate(fd, keep)
            _io.fsync_fd(fd)
        except OSError as e:
            raise EvidenceUnavailable(f"cannot truncate the torn tail of {folder.records}: {e}") from e
        torn = size - keep
    if keep == 0:
        return ResumePoint(0, torn, None, None)
    last_line = raw[:keep - 1].rsplit(b"\n", 1)[-1]
    try:
        last = json.loads(last_line.decode("utf-8"))
        seq, head = last["seq"], last["hash"]
    except (ValueError, KeyError, TypeError) as e:
        raise EvidenceUnavailable(f"cannot resume {folder.records}: its last record is unreadable") from e
    if not (isinstance(seq, int) and isinstance(head, str) and record_hash(last) == head):
        raise EvidenceUnavailable(f"cannot resume {folder.records}: its last record does not verify")
    if last.get("run_id") != run_id:
        raise EvidenceUnavailable(f"cannot resume {folder.records}: it belongs to run {last.get('run_id')!r}")
    return ResumePoint(keep, torn, seq, head)
