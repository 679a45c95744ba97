"""The demo portal's parts that are not request handling: its state and its page templates.

Why apart: ``demo_site`` is the HTTP handler; what it keeps (sessions, claims, the request log the
tests read) and how it fills the bundled templates are plain data and functions, read on their own.
"""

from __future__ import annotations

import html
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def site_dir() -> Path:
    """The bundled site folder (templates and static files), next to this module."""
    return Path(__file__).resolve().parent / "demo" / "site"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it. ``form`` is the decoded urlencoded body (POST) or query (GET)."""

    method: str
    path: str
    host: str
    form: Mapping[str, str] = field(default_factory=dict)
    cookies: Mapping[str, str] = field(default_factory=dict)
    status: int = 0


@dataclass
class Expense:
    """A submitted claim, kept in memory for the confirmation page."""

    expense_id: str
    fields: Mapping[str, str]
    archived: bool = False


class DemoState:
    """Sessions, expenses and the request log, shared by the handler threads under one lock."""

    def __init__(self, password: str | None, first_number: int) -> None:
        self.password = password
        self.lock = threading.Lock()
        self.log: list[RecordedRequest] = []
        self.errors: list[str] = []
        self.sessions: dict[str, str] = {}
        self.expenses: dict[str, Expense] = {}
        self.next_number = first_number

    def new_expense(self, fields: Mapping[str, str]) -> Expense:
        with self.lock:
            expense_id = f"EXP-{time.gmtime().tm_year}-{self.next_number:04d}"
            self.next_number += 1
            expense = Expense(expense_id, dict(fields))
            self.expenses[expense_id] = expense
            return expense


def render(name: str, values: Mapping[str, str], raw: frozenset[str] = frozenset()) -> str:
    """Fill ``{{key}}`` placeholders; every value is HTML-escaped unless its key is in ``raw``."""
    template = site_dir().joinpath(name).read_text(encoding="utf-8")

    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        value = values.get(key, "")
        return value if key in raw else html.escape(value)

    return _PLACEHOLDER.sub(sub, template)


def page(title: str, content: str, user: str = "") -> str:
    return render("layout.html", {"title": title, "content": content, "user": user}, raw=frozenset({"content"}))


def alert(message: str) -> str:
    return f'<div class="alert error" role="alert">{html.escape(message)}</div>' if message else ""


def mask_iban(iban: str) -> str:
    compact = iban.replace(" ", "")
    return f"{compact[:4]} •••• {compact[-4:]}" if len(compact) > 8 else "••••"
