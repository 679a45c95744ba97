"""The evidence writer: the one choke point through which every record reaches disk (SPEC §5).

Per record: redact every string, cap its length, fill the envelope, validate it against its
schema (once), hash-chain it, append ONE line to ``records.jsonl`` (one ``write``: the bytes are
in the OS when ``append`` returns), then index it. Any failure to redact or persist raises
``EvidenceUnavailable`` and leaves the writer unusable, so the runner cannot take the next action
without its evidence (fail closed). A failed append is truncated back to the last good offset, so
a torn line never sits in the file as if it were a record.

Durability (group commit): a record that gates an action or marks the run's life is fsynced
before ``append`` returns — ``action_record`` intents, ``decision_record``s of steps,
``approval_request``, ``approval_record``, ``exception_record``, ``run_record`` and
``version_log`` (see ``is_gating``). The others (action outcomes, ``pii_finding``, network
``decision_record``s without a step) are written to the OS at once and made durable by the next
fsync: the next gating record's, after at most ``sync_every`` records, or at ``sync``/``close``.
A process crash (SIGKILL) loses nothing written; a power loss can lose only non-gating records
written since the last fsync, never a gating record, and never silently before an action: the
fsync that makes an intent durable makes every record before it durable too, and if it fails the
run stops before the action.

Beside the caller (``append_soon``): a record that gates nothing can be appended in the writer's
own thread while the caller goes on (a page's ``pii_finding`` while its screenshot is taken).
Every other call waits for it first, so the chain is in call order, and its failure stops the
writer before any later record — the next intent, hence the next action, included.

Large groups (``append_many`` of ``BULK_GROUP`` or more: bulk writes, not a run's steps) are indexed
beside their building on a SQLite index: each chunk's rows go to the index's own thread as soon as
they are built (``evidence.index_bulk``), in one transaction committed only once the group's lines
are written (and, when it gates, fsynced), before ``append_many`` returns. The index is never ahead
of the chain; a crash leaves it behind by that group at most, which recovery indexes.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

from evidence import runfolder as _io
from evidence.canonical import sha256_bytes
from evidence.index import EvidenceIndex
from evidence.index_bulk import BulkInsert
from evidence.record_build import build_group, check_items, redact_group
from evidence.record_lines import (
    MAX_STRING,
    SYNC_EVERY,
    cap_string,
    is_gating,
    jsonable,
    jsonl_line,
)
from evidence.records import GENESIS_HASH, Actor, Attachment, Record
from evidence.redact import Redactor, redact_native
from evidence.runfolder import FILE_MODE, RunFolder, fsync_dir, safe_relpath, utc_timestamp, write_new_file
from evidence.writer_behind import Behind
from evidence.writer_resume import resume_point
from kernel.collector import collector_paused
from kernel.errors import EvidenceUnavailable

__all__ = ["MAX_STRING", "SYNC_EVERY", "EvidenceWriter", "cap_string", "is_gating", "jsonl_line"]

R = TypeVar("R", bound=Record)
Item = tuple[type[Record], Actor, Sequence[Attachment], Mapping[str, Any]]
"""One record for ``append_many``: its type, actor, attachments and fields."""


class EvidenceWriter:
    """Appends hash-chained records to one run folder; single writer per folder (flock)."""

    def __init__(
        self,
        folder: RunFolder,
        run_id: str,
        redactor: Redactor,
        index: EvidenceIndex | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        max_string: int = MAX_STRING,
        resume: bool = False,
        sync_every: int = SYNC_EVERY,
    ) -> None:
        self.folder = folder
        self.run_id = run_id
        self.redactor = redactor
        self.index = index
        self._clock = clock
        self._stamps = _io.SecondStamps()  # the default clock's
        self._cap = functools.partial(cap_string, limit=max_string)  # strings longer end with a marker
        self._lock = threading.RLock()
        self._seq = 0
        self._head = GENESIS_HASH
        self._offset = 0
        self._unsynced = 0  # records written since the last fsync
        self._sync_every = max(1, sync_every)
        self._failure: str | None = None
        self._closed = False
        self._actors: dict[int, tuple[Actor, Any]] = {}
        self._behind = Behind("warden-evidence")  # at most one append_soon in flight
        try:
            self._fd = os.open(folder.records, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, FILE_MODE)
        except OSError as e:
            raise EvidenceUnavailable(f"cannot open {folder.records}: {e.strerror or e}") from e
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(self._fd)
            raise EvidenceUnavailable(f"{folder.records} is locked by another writer") from e
        try:
            size = os.fstat(self._fd).st_size
            fsync_dir(folder.root)
        except OSError as e:
            os.close(self._fd)
            raise EvidenceUnavailable(f"cannot open {folder.records}: {e.strerror or e}") from e
        self.torn_bytes = 0  # bytes of a torn last line cut off by ``resume``
        if size and not resume:
            os.close(self._fd)
            raise EvidenceUnavailable(f"{folder.records} already holds records (open it with resume=True)")
        if size:
            try:
                self._resume(size)
            except BaseException:
                os.close(self._fd)
                raise

    @classmethod
    def resume(
        cls, folder: RunFolder, run_id: str, redactor: Redactor, index: EvidenceIndex | None = None
    ) -> EvidenceWriter:
        """Reopen a run whose process died: cut a torn last line, continue its seq and chain."""
        return cls(folder, run_id, redactor, index, resume=True)

    def _resume(self, size: int) -> None:
        """Pick up seq/head/offset from the last complete line; truncate bytes after it (a torn write)."""
        point = resume_point(self.folder, self._fd, size, self.run_id)
        self._offset, self.torn_bytes = point.offset, point.torn_bytes
        if point.seq is not None and point.head is not None:
            self._seq, self._head = point.seq, point.head

    # -- state ---------------------------------------------------------------------------------

    @property
    def next_seq(self) -> int:
        """The seq the next record will get (callers name attachments after it)."""
        self._settle()
        return self._seq + 1

    @property
    def head(self) -> str:
        """Hash of the last record written (64 zeros before the first)."""
        self._settle()
        return self._head

    @property
    def count(self) -> int:
        self._settle()
        return self._seq

    @property
    def usable(self) -> bool:
        with contextlib.suppress(EvidenceUnavailable):
            self._settle()
        return self._failure is None and not self._closed

    @property
    def failure(self) -> str | None:
        """Why the writer stopped accepting records, if it did."""
        with contextlib.suppress(EvidenceUnavailable):
            self._settle()
        return self._failure

    def _check_usable(self) -> None:
        if self._closed:
            raise EvidenceUnavailable("evidence writer is closed")
        if self._failure is not None:
            raise EvidenceUnavailable(f"evidence writer unusable after an earlier failure: {self._failure}")

    def _fail(self, reason: str, cause: BaseException | None = None) -> EvidenceUnavailable:
        self._failure = reason
        err = EvidenceUnavailable(reason)
        err.__cause__ = cause
        return err

    # -- records -------------------------------------------------------------------------------

    def append(
        self,
        record_cls: type[R],
        *,
        actor: Actor,
        attachments: Sequence[Attachment] = (),
        durable: bool | None = None,
        **fields: Any,
    ) -> R:
        """Redact, chain, persist and index one record; returns it as written.

        The record is fsynced before this returns when ``durable`` is True, or (``None``) when it
        gates an action (``is_gating``); otherwise it is written and fsynced with the next one.
        A ``ValidationError`` (the caller passed fields the schema refuses) writes nothing and
        leaves the writer usable; redaction or I/O failures raise ``EvidenceUnavailable``.
        """
        (record,) = self.append_many([(record_cls, actor, attachments, fields)], durable=durable)
        return record  # type: ignore[return-value]

    def append_many(self, items: Sequence[Item], *, durable: bool | None = None) -> list[Record]:
        """Append several records as one group: their strings redacted in one batch, their lines in
        one ``write``, one fsync when any of them gates an action (or ``durable``), one index
        transaction. All or nothing: a record the schema refuses writes none of them."""
        self._settle()
        return self._append_group(items, durable)

    def append_soon(
        self, record_cls: type[Record], *, actor: Actor, attachments: Sequence[Attachment] = (), **fields: Any
    ) -> None:
        """``append`` in the writer's own thread, returning at once; for a record that gates nothing
        (``is_gating``: one that does is appended here and now, durable before this returns).

        The next call on the writer (any append, ``sync``, ``close``, ``head``, ``count``, ...)
        waits for it first: records stay in call order, and a failure to write it — including a
        record the schema refuses, which ``append`` would raise to its caller — leaves the writer
        unusable and raises ``EvidenceUnavailable`` from that next call, before anything else is
        written."""
        self._settle()
        item: Item = (record_cls, actor, attachments, fields)
        check_items([item])
        if is_gating(record_cls, fields):
            self._append_group([item], None)
            return
        with self._lock:
            self._check_usable()
            self._behind.submit(lambda: self._append_group([item], None))

    def _settle(self) -> None:
        """Wait for the ``append_soon`` in flight (never from its own thread); its failure fails the writer."""
        error = self._behind.settle()
        if error is None:
            return
        if isinstance(error, EvidenceUnavailable):
            raise EvidenceUnavailable(str(error)) from error
        with self._lock:
            raise self._fail(f"a record written beside the run failed ({type(error).__name__}): not written", error)

    def _append_group(self, items: Sequence[Item], durable: bool | None) -> list[Record]:
        check_items(items)
        if not items:
            return []
        with self._lock, collector_paused(len(items) >= BULK_GROUP):
            self._check_usable()
            try:
                clean_trees = redact_group(items, self._actor_data,
                                           lambda trees: redact_native(trees, self.redactor, self._cap, jsonable))
            except Exception as e:
                # The message of a redactor failure may quote the very text it failed on: not repeated.
                raise self._fail(f"redaction failed ({type(e).__name__}): record not written", e) from e
            try:
                bulk = self.index.bulk(self.run_id) if self.index is not None and len(items) >= BULK_GROUP else None
            except Exception as e:
                raise self._fail(f"evidence index failed ({type(e).__name__}: {e})", e) from e
            try:
                return self._chain(items, clean_trees, durable, bulk)
            finally:
                if bulk is not None:
                    bulk.abort()  # nothing of the group indexed unless committed (a no-op once it is)

    def _chain(self, items: Sequence[Item], clean_trees: list[Any], durable: bool | None,
               bulk: BulkInsert | None) -> list[Record]:
        """Build, write and index a redacted group (``_append_group``, under the lock)."""
        records, lines = build_group(items, clean_trees, self._actor_data, self._now, run_id=self.run_id,
                                     seq=self._seq, head=self._head, chunks=bulk)
        sync = durable if durable is not None else any(is_gating(c, f) for c, _, _, f in items)
        sync = sync or self._unsynced + len(items) >= self._sync_every
        self._write_lines(lines, sync)
        self._seq, self._head = self._seq + len(records), records[-1].hash
        # Indexed (the run's head moving with it, in one transaction) right after the write, before
        # this returns: a failure stops the run before its next action, and a gating record is
        # indexed before anything can act on it. Never before the write: the index is never ahead.
        try:
            if bulk is not None:
                bulk.commit(self._head, self._seq)
            elif self.index is not None:
                self.index.add_records(list(zip(records, lines, strict=True)))
        except Exception as e:
            raise self._fail(f"evidence index failed ({type(e).__name__}: {e})", e) from e
        return records

    def _now(self) -> str:
        return self._stamps.now() if self._clock is None else utc_timestamp(self._clock())

    def _actor_data(self, actor: Actor) -> Any:
        """``actor.model_dump(mode="json")``, kept per actor object (frozen: its dump cannot change);
        the object itself is held, so its id is never another's. ``redact_native`` never edits a tree."""
        hit = self._actors.get(id(actor))
        if hit is None or hit[0] is not actor:
            if len(self._actors) > 256:
                self._actors.clear()
            hit = self._actors[id(actor)] = (actor, actor.model_dump(mode="json"))
        return hit[1]

    def _write_lines(self, lines: Sequence[str], sync: bool) -> None:
        data = "".join(line + "\n" for line in lines).encode("utf-8")
        try:
            _io.write_all(self._fd, data)
            if sync:
                _io.fsync_fd(self._fd)
        except BaseException as e:
            rolled_back = self._rollback()
            if isinstance(e, OSError) or not rolled_back:
                tail = "" if rolled_back else "; could not truncate the partial line"
                raise self._fail(f"cannot write {self.folder.records}: {_oserror_text(e)}{tail}", e) from e
            raise  # e.g. KeyboardInterrupt: the record is not written, the writer stays usable
        self._offset += len(data)
        self._unsynced = 0 if sync else self._unsynced + len(lines)

    def sync(self) -> None:
        """Make every record written so far durable (fsync); ``EvidenceUnavailable`` if it fails."""
        self._settle()
        with self._lock:
            self._check_usable()
            self._sync_pending()

    def _sync_pending(self) -> None:
        if self._unsynced:
            try:
                _io.fsync_fd(self._fd)
            except OSError as e:
                raise self._fail(f"cannot write {self.folder.records}: {_oserror_text(e)}", e) from e
            self._unsynced = 0

    def _rollback(self) -> bool:
        """Cut the file back to the end of the last complete record."""
        try:
            os.ftruncate(self._fd, self._offset)
        except OSError:
            return False
        with contextlib.suppress(OSError):
            os.fsync(self._fd)  # best effort: the truncation is visible to readers either way
        return True

    # -- attachments ---------------------------------------------------------------------------

    def attach_bytes(self, data: bytes, relpath: str, media_type: str) -> Attachment:
        """Write an attachment file (never overwriting one), fsync it, return its link with sha256.

        Bytes are stored as given: screenshots must be masked by the caller before this point.
        """
        rel = safe_relpath(relpath)
        with self._lock:
            self._check_usable()
            try:
                write_new_file(self.folder.root / rel, data)
            except OSError as e:
                raise self._fail(f"cannot write attachment {rel}: {_oserror_text(e)}", e) from e
            return Attachment(path=rel, sha256=sha256_bytes(data), media_type=media_type)

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Fsync what is not yet durable, release the folder lock; later appends raise. Idempotent.

        ``EvidenceUnavailable`` when that last fsync fails, or a record written beside the run
        (``append_soon``) failed (the lock is released all the same).
        """
        try:
            self._settle()
        finally:
            self._behind.close()
            self._close_file()

    def _close_file(self) -> None:
        with self._lock:
            if not self._closed:
                try:
                    if self._failure is None:
                        self._sync_pending()
                finally:
                    self._closed = True
                    with contextlib.suppress(OSError):
                        os.close(self._fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


BULK_GROUP = 64
"""Groups this large (recovery, reindexing, bulk writes; not a run's steps) pause the cyclic GC."""


def _oserror_text(e: BaseException) -> str:
    return (e.strerror or str(e) or type(e).__name__) if isinstance(e, OSError) else type(e).__name__
