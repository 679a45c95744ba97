"""The four-eyes approval socket: who is on the other end, as the kernel says (SO_PEERCRED).

While a ``four_eyes`` request waits, the runner listens on ``DIR/approvals/<id>.sock`` in the
evidence folder. ``warden approvals approve|deny ID`` connects to it and sends one JSON line
(``approval_id``, ``action_digest``, ``decision``, ``reason``, ``approver``); the runner reads the
connecting process's credentials with ``getsockopt(SO_PEERCRED)`` (struct ``3i``: pid, uid, gid)
and answers one JSON line (``ok``, ``code``, ``message``). The uid is set by the kernel at
``connect()``: a process cannot claim another one, unlike a name typed at a terminal or a row
written into the approvals table.

Who can connect: the folder ``DIR/approvals`` gets the evidence folder's group and the group bits
its owner gave the evidence folder (never "other"), the socket is ``0660``. A second OS user the
owner granted access to the evidence folder (e.g. a shared group) can therefore approve with no
other set-up; anyone else cannot even reach the socket. Out of scope: root (or anyone who can
become the approver's account) can connect as any uid — see docs/approvals.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import socket
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SOCKET_DIR = "approvals"
MAX_MESSAGE = 16384
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_CRED = struct.Struct("3i")


def socket_path(evidence_dir: str | os.PathLike[str], approval_id: str) -> Path:
    """``DIR/approvals/<id>.sock`` (an id that is not a plain token has no socket)."""
    if not _ID.match(approval_id):
        raise ValueError(f"not an approval id: {approval_id!r}")
    return Path(evidence_dir) / SOCKET_DIR / f"{approval_id}.sock"


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int
    gid: int


def peer_credentials(conn: socket.socket) -> Peer:
    """The connecting process's pid, uid and gid as the kernel recorded them at ``connect()``."""
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CRED.size)
    pid, uid, gid = _CRED.unpack(raw)
    return Peer(pid, uid, gid)


def _read_line(conn: socket.socket, timeout_s: float) -> bytes:
    conn.settimeout(timeout_s)
    buf = b""
    while b"\n" not in buf and len(buf) < MAX_MESSAGE:
        chunk = conn.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf.split(b"\n", 1)[0]


def _send(conn: socket.socket, message: dict[str, Any]) -> None:
    conn.sendall(json.dumps(message, sort_keys=True).encode("utf-8") + b"\n")


class PeerListener:
    """The runner's end: a listening socket for one approval id, removed on ``close``."""

    def __init__(self, evidence_dir: str | os.PathLike[str], approval_id: str) -> None:
        root = Path(evidence_dir)
        self.path = socket_path(root, approval_id)
        folder = self.path.parent
        folder.mkdir(mode=0o700, exist_ok=True)
        info = root.stat()
        group_bits = info.st_mode & 0o070
        with contextlib.suppress(PermissionError):  # only the folder's owner can hand it to the group
            os.chown(folder, -1, info.st_gid)
            os.chmod(folder, 0o700 | group_bits | (stat.S_ISGID if group_bits else 0))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # a stale socket of a runner that died with this id (ids are random)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.bind(str(self.path))
            with contextlib.suppress(PermissionError):
                os.chown(self.path, -1, info.st_gid)
            os.chmod(self.path, 0o600 | (0o060 if group_bits & 0o020 else 0))
            self.sock.listen(8)
        except BaseException:
            self.close()
            raise

    def accept(self, timeout_s: float) -> tuple[socket.socket, Peer, dict[str, Any]] | None:
        """The next connection within ``timeout_s``: (connection, its peer, its request); None if none.

        A request that is not one JSON object is answered ``bad request`` here and skipped.
        """
        ready, _, _ = select.select([self.sock], [], [], max(0.0, timeout_s))
        if not ready:
            return None
        conn, _ = self.sock.accept()
        try:
            peer = peer_credentials(conn)
            request = json.loads(_read_line(conn, 5.0).decode("utf-8", errors="replace") or "null")
            if not isinstance(request, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError):
            with contextlib.suppress(OSError):
                _send(conn, {"ok": False, "code": "bad_request", "message": "bad request"})
            conn.close()
            return None
        return conn, peer, request

    @staticmethod
    def reply(conn: socket.socket, ok: bool, code: str, message: str) -> None:
        with contextlib.suppress(OSError):
            _send(conn, {"ok": ok, "code": code, "message": message})
        conn.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


def send_answer(path: Path, request: dict[str, Any], timeout_s: float = 30.0) -> dict[str, Any]:
    """The approver's end: send ``request`` to the waiting runner, return its reply (raises OSError)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout_s)
        conn.connect(str(path))
        _send(conn, request)
        line = _read_line(conn, timeout_s)
    reply = json.loads(line.decode("utf-8", errors="replace") or "null")
    if not isinstance(reply, dict):
        raise OSError("the waiting runner sent no reply")
    return reply
