"""The Acme Expenses demo portal that `warden demo` and the tests run missions against.

Why it exists: Warden needs a realistic, fully local target (sign-in, a form with personal and payment
fields, a "Submit payment" button, a confirmation page) so that the demo and the tests never touch the
internet. It is standard library only (``http.server``), binds 127.0.0.1 on a free port and answers for
any Host header, so Chromium can reach it as ``http://portal.localhost:<port>`` (every ``*.localhost``
name resolves to the loopback address). Every request is kept in an in-memory log, so tests can assert
exactly what arrived; nothing is printed (the form bodies hold PII and the password).
"""

from __future__ import annotations

import html
import re
import secrets
import sys
import threading
from collections.abc import Mapping
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import MappingProxyType, TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from missions.demo_parts import DemoState, Expense, RecordedRequest, alert, mask_iban, page, render, site_dir

DEMO_HOST = "portal.localhost"
SESSION_COOKIE = "acme_session"
CATEGORIES: Mapping[str, str] = MappingProxyType({
    "travel": "Travel", "meals": "Meals", "software": "Software", "equipment": "Equipment", "training": "Training",
})
_STATIC: Mapping[str, str] = MappingProxyType({
    "style.css": "text/css; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
})
_EXPENSE_PATH = re.compile(r"^/expenses/(EXP-\d{4}-\d{4,})/(confirmation|archive)$")
_MAX_BODY = 64 * 1024
_RAW_ERR = frozenset({"error"})  # templates whose {{error}} is an already-escaped alert
# Same-origin only: the page itself proves the demo needs no external resource.
_CSP = "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; form-action 'self'"


class _DemoServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Keep handler crashes for the tests (``DemoSite.errors``) instead of printing them."""
        exc = sys.exc_info()[1]
        with self.state.lock:
            self.state.errors.append(repr(exc))

    def __init__(self, state: DemoState) -> None:
        self.state = state
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _DemoServer
    server_version = "AcmeExpenses/1.0"
    sys_version = ""
    _form: Mapping[str, str] = MappingProxyType({})  # the decoded body/query of the current request

    # -------------------------------------------------------------- plumbing

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: request lines and bodies may carry PII or the password."""

    def _record(self, form: Mapping[str, str], status: int) -> None:
        """Log the request *before* its response goes out, so a client that got a reply always finds it logged."""
        state = self.server.state
        entry = RecordedRequest(
            method=self.command,
            path=urlsplit(self.path).path,
            host=self.headers.get("Host", ""),
            form=dict(form),
            cookies=self._cookies(),
            status=int(status),
        )
        with state.lock:
            state.log.append(entry)

    def _cookies(self) -> dict[str, str]:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(self.headers.get("Cookie", ""))
        except CookieError:
            return {}
        return {k: m.value for k, m in jar.items()}

    def _user(self) -> str | None:
        token = self._cookies().get(SESSION_COOKIE)
        if token is None:
            return None
        with self.server.state.lock:
            return self.server.state.sessions.get(token)

    def _send(self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None) -> None:
        self._record(self._form, status)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", _CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _html(self, status: int, title: str, content: str, user: str = "",
              headers: Mapping[str, str] | None = None) -> int:
        self._send(status, page(title, content, user).encode("utf-8"), "text/html; charset=utf-8", headers)
        return status

    def _redirect(self, location: str, headers: Mapping[str, str] | None = None) -> int:
        self._send(HTTPStatus.SEE_OTHER, b"", "text/plain; charset=utf-8", {"Location": location, **(headers or {})})
        return HTTPStatus.SEE_OTHER

    def _not_found(self) -> int:
        return self._html(HTTPStatus.NOT_FOUND, "Not found", render("not_found.html", {}))

    def _read_form(self) -> dict[str, str] | None:
        """The urlencoded body as a flat dict (last value wins); None when it is too large or malformed."""
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return None
        if length < 0 or length > _MAX_BODY:
            return None
        raw = self.rfile.read(length).decode("utf-8", errors="replace")
        return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}

    # -------------------------------------------------------------- verbs

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        self._form = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        self._get(parts.path)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        form = self._read_form()
        if form is None:
            self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b"", "text/plain; charset=utf-8")
            return
        self._form = form
        self._post(path, form)

    # -------------------------------------------------------------- routes

    def _get(self, path: str) -> int:
        if path in ("/", ""):
            return self._redirect("/expenses/new" if self._user() else "/login")
        if path == "/favicon.ico":
            return self._redirect("/static/favicon.svg")
        if path.startswith("/static/"):
            name = path.removeprefix("/static/")
            if name not in _STATIC:  # a fixed list: no path traversal possible
                return self._not_found()
            body = site_dir().joinpath("static", name).read_bytes()
            self._send(HTTPStatus.OK, body, _STATIC[name])
            return HTTPStatus.OK
        if path == "/login":
            return self._login_page(HTTPStatus.OK, "")
        user = self._user()
        if path == "/expenses/new":
            if user is None:
                return self._redirect("/login")
            return self._html(HTTPStatus.OK, "New expense", render("new_expense.html", {"error": ""}, raw=_RAW_ERR),
                              user)
        m = _EXPENSE_PATH.match(path)
        if m and m.group(2) == "confirmation":
            if user is None:
                return self._redirect("/login")
            return self._confirmation(m.group(1), user)
        return self._not_found()

    def _post(self, path: str, form: Mapping[str, str]) -> int:
        if path == "/login":
            return self._login(form)
        user = self._user()
        if user is None:
            return self._redirect("/login")
        if path == "/expenses":
            return self._submit(form, user)
        m = _EXPENSE_PATH.match(path)
        if m and m.group(2) == "archive":
            with self.server.state.lock:
                expense = self.server.state.expenses.get(m.group(1))
                if expense is not None:
                    expense.archived = True
            if expense is None:
                return self._not_found()
            return self._redirect(f"/expenses/{expense.expense_id}/confirmation")
        return self._not_found()

    def _login_page(self, status: int, error: str) -> int:
        return self._html(status, "Sign in", render("login.html", {"error": alert(error)}, raw=_RAW_ERR))

    def _login(self, form: Mapping[str, str]) -> int:
        username = form.get("username", "").strip()
        password = form.get("password", "")
        expected = self.server.state.password
        ok = bool(username) and bool(password) and (
            expected is None or secrets.compare_digest(password.encode(), expected.encode()))
        if not ok:
            return self._login_page(HTTPStatus.UNAUTHORIZED, "Wrong username or password.")
        token = secrets.token_urlsafe(24)
        with self.server.state.lock:
            self.server.state.sessions[token] = username
        cookie = f"{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax"
        return self._redirect("/expenses/new", {"Set-Cookie": cookie})

    def _submit(self, form: Mapping[str, str], user: str) -> int:
        missing = [label for key, label in (
            ("employee_name", "employee name"), ("email", "email"), ("iban", "IBAN"), ("amount", "amount"),
        ) if not form.get(key, "").strip()]
        problems = [f"Please fill in: {', '.join(missing)}."] if missing else []
        try:
            amount = float(form.get("amount", "").replace(",", "."))
            if not 0 < amount < 1_000_000:
                raise ValueError
        except ValueError:
            if "amount" not in missing:
                problems.append("The amount must be a number above zero.")
        if form.get("category") not in CATEGORIES:
            problems.append("Choose a category.")
        if form.get("confirm") != "on":
            problems.append("Please confirm the claim is accurate.")
        if problems:
            content = render("new_expense.html", {"error": alert(" ".join(problems))}, raw=_RAW_ERR)
            return self._html(HTTPStatus.BAD_REQUEST, "New expense", content, user)
        expense = self.server.state.new_expense(form)
        return self._redirect(f"/expenses/{expense.expense_id}/confirmation")

    def _confirmation(self, expense_id: str, user: str) -> int:
        with self.server.state.lock:
            expense = self.server.state.expenses.get(expense_id)
            archived = expense.archived if expense else False
        if expense is None:
            return self._not_found()
        f = expense.fields
        archive_form = "" if archived else (
            f'<form method="post" action="/expenses/{html.escape(expense_id)}/archive">'
            '<button type="submit" id="archive" class="secondary">Archive</button></form>'
        )
        content = render("confirmation.html", {
            "expense_id": expense_id,
            "employee_name": f.get("employee_name", ""),
            "amount": f"EUR {float(f.get('amount', '0').replace(',', '.')):,.2f}",
            "category": CATEGORIES.get(f.get("category", ""), ""),
            "iban_masked": mask_iban(f.get("iban", "")),
            "status": "Archived" if archived else "Paid",
            "status_class": "archived" if archived else "paid",
            "archive_form": archive_form,
        }, raw=frozenset({"archive_form"}))
        return self._html(HTTPStatus.OK, "Confirmation", content, user)


class DemoSite:
    """Serve the demo portal on 127.0.0.1 in a background thread.

    ``start()`` returns the base URL ``http://portal.localhost:<port>``; ``stop()`` shuts it down.
    Usable as a context manager (``with DemoSite() as site: site.base_url``). ``password``: when set,
    only that password signs in; when None any non-empty one does. Expense numbers start at
    ``first_number`` (so the first id is e.g. ``EXP-2026-0042``).
    """

    def __init__(self, *, password: str | None = None, host: str = DEMO_HOST, first_number: int = 42) -> None:
        self.host = host
        self._state = DemoState(password, first_number)
        self._server: _DemoServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        """Bind a free port on 127.0.0.1, start serving, and return the base URL."""
        if self._server is not None:
            raise RuntimeError("DemoSite is already running")
        server = _DemoServer(self._state)
        thread = threading.Thread(target=server.serve_forever, name="warden-demo-site", daemon=True)
        thread.start()
        self._server, self._thread = server, thread
        return self.base_url

    def stop(self) -> None:
        """Stop serving and release the port. Safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("DemoSite is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://portal.localhost:<port>``: the URL the browser uses (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    @property
    def loopback_url(self) -> str:
        """``http://127.0.0.1:<port>``: for clients that do not resolve ``*.localhost`` themselves."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, in arrival order."""
        with self._state.lock:
            return list(self._state.log)

    @property
    def errors(self) -> list[str]:
        """Exceptions raised while handling requests (kept here, never printed); empty when all is well."""
        with self._state.lock:
            return list(self._state.errors)

    def clear_requests(self) -> None:
        with self._state.lock:
            self._state.log.clear()

    @property
    def expenses(self) -> dict[str, Expense]:
        """A snapshot of the submitted expenses by id."""
        with self._state.lock:
            return dict(self._state.expenses)

    def __enter__(self) -> DemoSite:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
