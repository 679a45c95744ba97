"""What the request gate's guards read besides the request: the danger zones' approvals view, and the
domain guard's decisions kept per plain host (``runner/network.py`` re-exports both).

Split from ``runner/network.py`` (the gate and its records) to keep each file readable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from guards.base import Decision
from guards.danger_zones import submitted_form_action
from guards.domains import DomainRequestGuard
from guards.observed import ElementInfo, RequestContext, RequestInfo
from guards.state_change import ApprovedScope, ZoneView, endpoint, url_matches

__all__ = ["ApprovalView", "HostVerdicts"]


class ApprovalView:
    """What the danger zones gated and the approvals desk granted, for ``StateChangeGuard``.

    The desk writes it (``asked``, ``granted``); the guard only calls it and gets a frozen
    ``ZoneView`` snapshot. An approval covers the requests of its own step only.
    """

    def __init__(self, url_zones: Sequence[tuple[str, str]] = ()) -> None:
        self.url_zones = tuple(url_zones)
        self._view = ZoneView()

    def __call__(self) -> ZoneView:
        return self._view

    def gate(self, form_action: str) -> None:
        """A form whose submit is in a danger zone was seen: state changes to its action need approval."""
        if form_action:
            self._view = replace(self._view, gated=self._view.gated | {endpoint(form_action)})

    def asked(self, kind: str, args: Mapping[str, Any], element: ElementInfo | None) -> None:
        """An approval is asked for this action: its form action is a gated control's from now on."""
        gated = _submitted(kind, args, element)
        if gated:
            self._view = replace(self._view, gated=self._view.gated | gated)

    def granted(
        self, step: int, approval_id: str, kind: str, args: Mapping[str, Any], element: ElementInfo | None,
        page_url: str,
    ) -> None:
        in_zone = any(url_matches(p, page_url) for _, p in self.url_zones)
        pages = frozenset({endpoint(page_url)}) if in_zone else frozenset()
        scope = ApprovedScope(step, approval_id, _submitted(kind, args, element), pages)
        self._view = replace(self._view, approved=(*self._view.approved, scope))


def _submitted(kind: str, args: Mapping[str, Any], element: ElementInfo | None) -> frozenset[str]:
    if element is None or not element.found:
        return frozenset()
    action = submitted_form_action(kind, args, element)
    return frozenset({endpoint(action)}) if action else frozenset()


_MEMO_SCHEMES = frozenset({"http", "https", "ws", "wss"})
_PLAIN_AUTHORITY = re.compile(r"[a-z0-9.-]+(?::[0-9]{1,5})?")  # a canonical host[:port]: no userinfo, %, IP6
_MEMO_SIZE = 4096


class HostVerdicts:
    """The domain guard's decision, kept per (request kind, scheme, host[:port]): a page's 200 images
    from 4 hosts cost 4 URL parses, not 200. Only for a plain canonical authority (lower-case letters,
    digits, dots, hyphens, an optional port: what Chromium sends for an ordinary host); anything else
    (userinfo, percent-escapes, IPv6, other schemes, hostless URLs) goes to the guard every time. The
    domain guard reads nothing else of a request with a host (guards/urlmatch.py ``_check``)."""

    def __init__(self, guard: DomainRequestGuard) -> None:
        self.guard = guard
        self.name = guard.name
        self._memo: dict[tuple[str, str, str], Decision] = {}

    def check_request(self, request: RequestInfo, ctx: RequestContext) -> Decision:
        scheme, sep, rest = request.url.partition("://")
        authority = re.split(r"[/?#]", rest, maxsplit=1)[0] if sep else ""  # with a backslash: not plain
        if scheme not in _MEMO_SCHEMES or not _PLAIN_AUTHORITY.fullmatch(authority):
            return self.guard.check_request(request, ctx)
        key = (request.kind, scheme, authority)
        decision = self._memo.get(key)
        if decision is None:
            decision = self.guard.check_request(request, ctx)
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = decision
        return decision
