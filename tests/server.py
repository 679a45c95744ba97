"""A local multi-host test server (after playwright-python's tests/server.py).

One ``ThreadingHTTPServer`` on 127.0.0.1 (random port). Chromium resolves every ``*.localhost``
name to loopback by itself, so ``allowed.localhost``, ``evil.localhost`` and
``sub.allowed.localhost`` all reach this one port; the ``Host`` header tells them apart. Every
request is logged (host, method, path, headers, body, time) and so is every accepted TCP
connection, so a test can assert what each host received. A TCP connection carries no host name
(plain HTTP), so to prove that *no connection at all* reached a host, give that host its own
``TestServer`` (see the ``evil_server`` fixture).

Usage::

    server.set_content("/", "<h1>hi</h1>")
    server.set_route("/api", lambda req: Response(body=b"{}", content_type="application/json"))
    server.set_redirect("/go", server.url("evil.localhost", "/x"))
    page.goto(server.url("allowed.localhost", "/"))
    assert server.requests_for("evil.localhost") == []
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class RecordedRequest:
    host: str  # from the Host header, lowercase, without the port
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # keys lowercase
    body: bytes
    time: float
    client: tuple[str, int]

    @property
    def route(self) -> str:
        """The path without the query string."""
        return urlsplit(self.path).path


@dataclass(frozen=True)
class Connection:
    peer: tuple[str, int]
    time: float


@dataclass
class Response:
    status: int = 200
    body: bytes | str = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[RecordedRequest], Response]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: TestServer

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        self.owner._record_connection(addr)
        return sock, addr


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        host_header = (self.headers.get("Host") or "").strip().lower()
        host = host_header.rsplit(":", 1)[0] if not host_header.startswith("[") else host_header.split("]")[0] + "]"
        request = RecordedRequest(
            host=host,
            method=self.command,
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            time=time.time(),
            client=self.client_address[:2],
        )
        owner = self.server.owner
        owner._record_request(request)
        try:
            response = owner._respond(request)
        except Exception as exc:
            response = Response(status=500, body=f"handler error: {exc!r}", content_type="text/plain")
        payload = response.body.encode() if isinstance(response.body, str) else response.body
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle


class TestServer:
    """Start with ``TestServer().start()``; ``stop()`` shuts it down. Thread-safe."""

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._routes: dict[str, Handler] = {}
        self._requests: list[RecordedRequest] = []
        self._connections: list[Connection] = []
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle
    def start(self) -> TestServer:
        httpd = _Server(("127.0.0.1", 0), _RequestHandler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> TestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    def url(self, host: str = "allowed.localhost", path: str = "/") -> str:
        return f"http://{host}:{self.port}{path}"

    # -- routes
    def set_route(self, path: str, handler: Handler) -> None:
        with self._lock:
            self._routes[path] = handler

    def set_content(
        self,
        path: str,
        body: str | bytes,
        content_type: str = "text/html; charset=utf-8",
        headers: dict[str, str] | None = None,
        status: int = 200,
    ) -> None:
        response = Response(status=status, body=body, content_type=content_type, headers=dict(headers or {}))
        self.set_route(path, lambda _req: response)

    def set_redirect(self, path: str, to: str, status: int = 302) -> None:
        self.set_route(path, lambda _req: Response(status=status, headers={"Location": to}))

    def reset(self) -> None:
        """Forget routes and logs (between tests)."""
        with self._lock:
            self._routes.clear()
            self._requests.clear()
            self._connections.clear()

    # -- logs
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def connections(self) -> list[Connection]:
        with self._lock:
            return list(self._connections)

    def requests_for(self, host: str) -> list[RecordedRequest]:
        host = host.lower()
        with self._lock:
            return [r for r in self._requests if r.host == host]

    def wait_for_request(self, path: str, timeout: float = 5.0, host: str | None = None) -> RecordedRequest:
        """The first request (already logged or coming) whose route is ``path``; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for r in self._requests:
                    if r.route == path and (host is None or r.host == host.lower()):
                        return r
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no request for {path} within {timeout}s")
                self._lock.wait(left)

    # -- internals (called from server threads)
    def _record_connection(self, addr: Any) -> None:
        with self._lock:
            self._connections.append(Connection(peer=(str(addr[0]), int(addr[1])), time=time.time()))

    def _record_request(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()

    def _respond(self, request: RecordedRequest) -> Response:
        with self._lock:
            handler = self._routes.get(request.route)
        if handler is None:
            return Response(status=404, body="not found", content_type="text/plain")
        return handler(request)


@dataclass(frozen=True)
class Datagram:
    peer: tuple[str, int]
    data: bytes
    time: float


class UdpListener:
    """Counts UDP datagrams (e.g. STUN binding requests) sent to 127.0.0.1:``port``."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self._lock = threading.Lock()
        self._datagrams: list[Datagram] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    @property
    def datagrams(self) -> list[Datagram]:
        with self._lock:
            return list(self._datagrams)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._datagrams)

    def reset(self) -> None:
        with self._lock:
            self._datagrams.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self._sock.recvfrom(65535)
            except (TimeoutError, OSError):
                continue
            with self._lock:
                self._datagrams.append(Datagram(peer=(str(addr[0]), int(addr[1])), data=data, time=time.time()))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()

    def __enter__(self) -> UdpListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
