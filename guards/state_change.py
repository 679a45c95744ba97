"""The network backstop of the danger zones: a state-changing request no approval covers is refused.

The step guard (``guards/danger_zones.py``) judges the action a step takes; a page script, an
``onclick`` handler or a spelling nobody thought of can still make the request that action would
have made. This request guard judges the *effect*: a request that can change state — any method
but GET, HEAD and OPTIONS (a form post, ``fetch``, XHR, ``sendBeacon``) — is refused when

* it goes to a URL a url zone matches (rule ``state_change.url_zone``),
* it goes to the form action of a gated control (one the danger zones asked an approval for in
  this run; rule ``state_change.gated_form``), or
* it leaves from a page a url zone matches (rule ``state_change.zone_page``),

unless an approval of the *current* step covers it (``ApprovedScope``: the approved action's form
action, and its page when that page is in a url zone). GET stays allowed: viewing a zone's page is
not a change. The guard is pure: what was gated and approved reaches it as a frozen ``ZoneView``
snapshot through a callable the runner gives it (``runner/network.py``: ``ApprovalView``, set by
the approvals desk); a view that cannot be read is an empty one (nothing approved: fail closed).

Also here: the URL normalization url zones match on (``canonical_page_url``, ``url_matches``), so
the step guard and this backstop spell a URL alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from urllib.parse import urlsplit, urlunsplit

from guards.base import Decision
from guards.observed import RequestContext, RequestInfo
from guards.urlmatch import UnparseableURL, canonical_host

GUARD = "state_change"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _unescape_unreserved(text: str) -> str:
    """``%70ay`` → ``pay``: percent-escapes of unreserved characters decoded, the others uppercased."""
    def one(m: re.Match[str]) -> str:
        ch = chr(int(m.group(1), 16))
        return ch if ch in _UNRESERVED else m.group(0).upper()
    return re.sub(r"%([0-9A-Fa-f]{2})", one, text)


def normalize_path(path: str) -> str:
    """RFC 3986 normalization of a path: unreserved escapes decoded, repeated slashes collapsed, dot
    segments (``.``, ``..``, also spelled ``%2e``) removed. Case is kept (paths are case-sensitive)."""
    segments = re.sub(r"/{2,}", "/", _unescape_unreserved(path.replace("\\", "/")) or "/").split("/")
    out: list[str] = []
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == ".":
            if last:
                out.append("")
        elif seg == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(seg)
    joined = "/".join(out)
    return joined if joined.startswith("/") else "/" + joined


def canonical_page_url(url: str) -> str:
    """What url zones match on: scheme and host lowercase, default port and fragment dropped, the
    path normalized (``normalize_path``) and unreserved escapes in the query decoded."""
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").rstrip(".")
        port = parts.port
    except ValueError:
        return url
    if not parts.scheme or not host:
        return url.split("#", 1)[0]
    scheme = parts.scheme.lower()
    default = {"http": 80, "https": 443}.get(scheme)
    netloc = host if port is None or port == default else f"{host}:{port}"
    return urlunsplit((scheme, netloc, normalize_path(parts.path or "/"), _unescape_unreserved(parts.query), ""))


def url_matches(pattern: str, url: str) -> bool:
    """Glob match (``*`` any characters, ``?`` one) of a url zone against the canonical page URL.

    A pattern with a scheme and host is matched in parts: scheme, host (lowercase), port (any
    port when the pattern names none, like ``allowed_domains``), then path+query. The pattern's
    path is normalized like the URL's (escapes, repeated slashes), so both sides are spelled alike.
    """
    page = canonical_page_url(url)
    if "://" not in pattern:
        return fnmatchcase(page, pattern)
    scheme, _, rest = pattern.partition("://")
    authority, slash, path = rest.partition("/")
    pat_host, pat_port = authority.lower(), None
    m = re.fullmatch(r"(.*):(\d+|\*)", authority)
    if m and not authority.endswith("]"):
        pat_host, pat_port = m.group(1).lower(), m.group(2)
    try:
        p = urlsplit(page)
        host, port = (p.hostname or ""), p.port
    except ValueError:
        return False
    if not fnmatchcase(p.scheme, scheme.lower()) or not fnmatchcase(host, pat_host.rstrip(".")):
        return False
    effective = port or {"http": 80, "https": 443}.get(p.scheme)
    if pat_port not in (None, "*") and str(effective) != pat_port:
        return False
    page_path = p.path + (f"?{p.query}" if p.query else "")
    pat_path = re.sub(r"/{2,}", "/", _unescape_unreserved(slash + path)) or "/*"
    return fnmatchcase(page_path or "/", pat_path)


def endpoint(url: str) -> str:
    """The canonical URL without its query: the endpoint a request or a form action names."""
    return canonical_page_url(url).split("?", 1)[0]


@dataclass(frozen=True)
class ApprovedScope:
    """What one granted approval covers, during its step only."""

    step: int
    approval_id: str
    destinations: frozenset[str] = frozenset()  # endpoints (``endpoint``) the approved action submits to
    pages: frozenset[str] = frozenset()  # endpoints of zone pages the approved action happens on


@dataclass(frozen=True)
class ZoneView:
    """The runner's read-only snapshot: the gated form actions seen so far, and the approvals granted."""

    gated: frozenset[str] = frozenset()  # endpoints of gated controls' form actions
    approved: tuple[ApprovedScope, ...] = field(default=())

    def covering(self, step: int | None, destination: str, page: str) -> ApprovedScope | None:
        for scope in self.approved:
            if step is not None and scope.step == step and (
                destination in scope.destinations or (page and page in scope.pages)
            ):
                return scope
        return None


class StateChangeGuard:
    """Request guard: a state-changing request into a zone, or from a zone page, needs this step's approval."""

    name = GUARD

    def __init__(self, url_zones: Iterable[tuple[str, str]], view: Callable[[], ZoneView]) -> None:
        self.url_zones = tuple(url_zones)  # (zone name, url pattern)
        self.view = view

    def check_request(self, request: RequestInfo, ctx: RequestContext) -> Decision:
        method = (request.method or "").upper()
        if method in SAFE_METHODS:
            return Decision.allow(self.name, f"{method} does not change state", "state_change")
        try:
            view = self.view()
        except Exception:  # an unreadable view approves nothing (fail closed)
            view = ZoneView()
        if not isinstance(view, ZoneView):
            view = ZoneView()
        destination = endpoint(request.url)
        origin = request.frame_url or ctx.page_url or ""
        page = endpoint(origin) if origin else ""
        why = self._why(request.url, destination, origin, view)
        if why is None:
            return Decision.allow(self.name, "not into or from a danger zone", "state_change")
        rule, what = why
        scope = view.covering(ctx.step, destination, page)
        if scope is not None:
            return Decision.allow(
                self.name, f"{method} {what}: covered by approval {scope.approval_id} of step {scope.step}",
                rule, approval_id=scope.approval_id,
            )
        step = f"step {ctx.step}" if ctx.step is not None else "between steps"
        return Decision.deny(
            self.name, f"{method} {what}: no approval of {step} covers it (refused at the request gate)",
            rule, host=_host(request.url), zone_endpoint=destination,
        )

    def _why(self, url: str, destination: str, origin: str, view: ZoneView) -> tuple[str, str] | None:
        for name, pattern in self.url_zones:
            if url_matches(pattern, url) or url_matches(pattern, destination):
                return "state_change.url_zone", f"to {destination}, in url zone {name!r}"
        if destination in view.gated:
            return "state_change.gated_form", f"to {destination}, the form action of a gated control"
        for name, pattern in self.url_zones:
            if origin and url_matches(pattern, origin):
                return "state_change.zone_page", f"from {endpoint(origin)}, a page in url zone {name!r}"
        return None


def _host(url: str) -> str:
    try:
        return canonical_host(url)
    except (UnparseableURL, ValueError):
        return ""
