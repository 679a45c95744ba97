"""``warden mcp --http PORT``: the same server over streamable HTTP, bound to 127.0.0.1 only.

One MCP session, one run, as on stdio: the SDK's session manager admits one session at a time
(``max_sessions=1``) and Warden ends the run — and the server — when that session is terminated
(the client's ``DELETE``), after ``browser_close``, at the mission's timeout, or when the process is
stopped (Ctrl-C / SIGTERM: interrupted). DNS-rebinding protection is the SDK's localhost default
(Host and Origin must be 127.0.0.1/localhost). Any local process can reach a loopback port, so
every request must bear ``Authorization: Bearer $WARDEN_MCP_TOKEN`` (set by the user, 16+
characters; the server refuses to start without it). Prefer stdio where the client can spawn it.
"""

from __future__ import annotations

import hmac
import socket
import sys
import threading
import time
from typing import Any

import uvicorn

from kernel.errors import UsageError
from runner.agent_session.live import SessionOptions, load_for_session
from runner.agent_session.session import GuardedSession
from runner.mcp.server import SessionWorker, build_server, instructions_for
from runner.progress import JsonReporter

PATH = "/mcp"

ASGIApp = Any


AUTH_ENV = "WARDEN_MCP_TOKEN"


class _Guarded:
    """ASGI wrapper: every request bears ``Authorization: Bearer $WARDEN_MCP_TOKEN`` (401 otherwise,
    before the SDK sees it); once the client terminated its session (``DELETE /mcp``), the server stops."""

    def __init__(self, app: ASGIApp, stop: threading.Event, token: str) -> None:
        self.app, self.stop = app, stop
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self._expected):
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Bearer")]})
                await send({"type": "http.response.body", "body": b"a bearer token is required\n"})
                return
        await self.app(scope, receive, send)
        if scope.get("type") == "http" and scope.get("method") == "DELETE" and scope.get("path") == PATH:
            self.stop.set()


def serve_http(opts: SessionOptions, port: int) -> int:
    """Serve one MCP session on http://127.0.0.1:PORT/mcp; the run's exit code when it ends."""
    token = opts.env().get(AUTH_ENV, "")
    if len(token) < 16:  # fail closed: a loopback port is open to every local process
        raise UsageError(f"--http needs {AUTH_ENV} (16+ characters) in the environment: clients send it as "
                         "'Authorization: Bearer TOKEN'")
    loaded = load_for_session(opts)  # exit 2 before anything listens
    session = GuardedSession(opts, loaded=loaded, reporter=JsonReporter(sys.stderr))
    worker = SessionWorker(session)
    try:
        worker.run_sync(session.start)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(16)  # connections wait in the backlog until uvicorn accepts them
        stop = threading.Event()
        server = build_server(worker, instructions_for(loaded), on_end=stop.set)
        app = _Guarded(server.streamable_http_app(streamable_http_path=PATH, host="127.0.0.1", max_sessions=1),
                       stop, token)
        uv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        threading.Thread(target=_watch, args=(worker, stop, uv), daemon=True).start()
        print(f"warden mcp: serving http://127.0.0.1:{sock.getsockname()[1]}{PATH}", file=sys.stderr, flush=True)
        uv.run(sockets=[sock])  # Ctrl-C / SIGTERM: uvicorn stops gracefully, then the run closes below
        why = "the client ended its session" if stop.is_set() else "the HTTP server was stopped"
        end = worker.run_sync(session.close, "interrupted", why)
    except BaseException:
        worker.run_sync(session.close, "interrupted", "the MCP server failed")
        raise
    finally:
        worker.shutdown()
    return end[0]


def _watch(worker: SessionWorker, stop: threading.Event, uv: uvicorn.Server) -> None:
    """Stop serving when the session ended or the run did (browser_close, timeout, a guard)."""
    while not stop.is_set():
        remaining = worker.run_sync(worker.session.remaining)
        if remaining is None or worker.run_sync(worker.session.expire):
            break
        stop.wait(min(remaining, 1.0) + 0.05)
    time.sleep(0.2)  # let the last response reach the client
    uv.should_exit = True
