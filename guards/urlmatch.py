"""The one canonical URL matcher: mission validation, the navigation guard and the request gate use it.

Pure module (no Playwright). A URL is judged by its *canonical host*, computed the way Chromium
computes it, never by string tests on the raw URL (vectors 12-18 of the peers' notes are all string
tests gone wrong). Canonicalisation, and why each step exists:

1. **Parse with ada** (a WHATWG URL parser, the standard Chromium's parser follows). It strips
   leading/trailing C0 controls and spaces and removes tabs/newlines anywhere (``ev\\til.com`` is
   ``evil.com``), reads ``\\`` as ``/`` in special schemes (``https://evil.com\\@allowed.com`` is
   evil.com with path ``/@allowed.com``), ignores userinfo (``https://allowed.com@evil.com`` is
   evil.com), percent-decodes the host (``%61llowed.com`` is allowed.com; ``allowed.com%40evil.com``
   decodes to a forbidden ``@`` and fails), lowercases, applies UTS 46 (IDN to punycode, so the
   Cyrillic ``аllowed.com`` is ``xn--llowed-2nf.com`` and fullwidth dots/digits fold), parses IPv4 in
   every spelling (``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1`` are all ``127.0.0.1``) and
   compresses IPv6 (``[0:0::1]`` is ``[::1]``). Whatever the browser would connect to, we compare.
   Anything the parser rejects is *unparseable* and refused: if we cannot say where it goes, it
   does not go. The test corpus is compared with Chromium's own ``new URL()``; the one known
   divergence is Chromium accepting a space in a host (``a%20b.com``), which ada refuses: stricter.
2. **Strip one trailing dot.** ``allowed.com.`` is the same DNS name as ``allowed.com`` (a
   fully-qualified spelling); WHATWG keeps the dot, so a naive compare would either over-block or,
   for a denylist, under-block (vector 15). Only one dot: ``allowed.com..`` keeps an empty label
   and matches nothing.
3. **Match whole labels.** ``host`` is exact, ``*.host`` is strict subdomains (label boundary: the
   candidate ends with ``"." + host``), so ``allowed.com.evil.com`` and ``xallowed.com`` never match.
   IP literals match only an exactly listed IP literal (v4 and v6 are different hosts, as in WHATWG:
   ``[::ffff:7f00:1]`` is not ``127.0.0.1``). Only the host is matched, never the path, query or
   fragment, so ``evil.com/?u=allowed.com`` is evil.com.

Allowlist entries go through the same parser (``HostPattern.parse``), so an entry and a URL can only
be equal when the browser would treat them as the same host.

Scheme rules (SPEC §4): ``https`` to allowed hosts; ``http`` only with ``allow_http``; ``wss`` to
allowed hosts; ``ws`` is plain text like ``http`` and therefore also needs ``allow_http``. ws/wss are
request schemes, not navigations. ``data:`` and ``blob:`` are refused as top-level documents
(navigation, redirect, popup, download — a classic phishing/smuggling carrier) but allowed as
subresources, where they never leave the machine. ``about:blank`` is allowed as the first page only
(and as a popup's initial document); ``about:blank``/``about:srcdoc`` frames are allowed as
subresources (no request). Every other scheme (``file:``, ``javascript:``, ``chrome:``,
``view-source:``, ``filesystem:``, ``ftp:``, ...) is refused. Nothing is allowed implicitly.

Rule ids: ``boundaries.allowed_domains``, ``boundaries.allowed_resource_domains`` (allow or deny by
host), ``scheme.http_not_allowed``, ``scheme.refused``, ``scheme.data_toplevel``,
``scheme.blob_toplevel``, ``scheme.local_subresource``, ``scheme.about_frame``,
``scheme.about_blank_first``, ``scheme.about_not_first``, ``url.unparseable``. Verdict reasons name the
canonical host and scheme only, never the URL: a query can carry PII.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal, get_args
from urllib.parse import urlsplit

import ada_url

__all__ = [
    "DomainPolicy",
    "HostPattern",
    "RequestKind",
    "UnparseableURL",
    "UrlVerdict",
    "canonical_host",
    "page_without_query",
    "resolvable_patterns",
]

RequestKind = Literal["navigation", "redirect", "subresource", "websocket", "popup", "download", "worker", "other"]
REQUEST_KINDS: Final[frozenset[str]] = frozenset(get_args(RequestKind))
#: Kinds that put a document on screen (or a file on disk): only ``allowed_domains`` apply.
NAVIGATION_KINDS: Final[frozenset[str]] = frozenset({"navigation", "redirect", "popup", "download"})

_DEFAULT_PORTS: Final[dict[str, int]] = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_SPECIAL: Final[frozenset[str]] = frozenset({"http", "https", "ws", "wss", "ftp", "file"})  # WHATWG special
_PLAINTEXT: Final[frozenset[str]] = frozenset({"http", "ws"})
_SOCKET_SCHEMES: Final[frozenset[str]] = frozenset({"ws", "wss"})
_HOST_TYPE_DOMAIN: Final = 0  # ada HostType.DEFAULT; 1 = IPv4, 2 = IPv6

# An entry is host[:port] or *.host[:port]: no scheme, path, userinfo, query, escapes or spaces.
_ENTRY_FORBIDDEN = re.compile(r"[\s/\\@?#%*]|[\x00-\x1f\x7f]")
_PORT = re.compile(r"[0-9]{1,5}")

RULE_ALLOWED = "boundaries.allowed_domains"
RULE_RESOURCE = "boundaries.allowed_resource_domains"


class UnparseableURL(ValueError):
    """The URL cannot be parsed (WHATWG failure) or has no host: the matcher refuses it."""


@dataclass(frozen=True)
class _Parsed:
    scheme: str  # without the colon, lowercase
    host: str | None  # canonical (see module docstring); None for host-less schemes
    is_ip: bool
    port: int | None  # effective port (explicit or scheme default); None if host-less
    path: str


def _parse(url: str) -> _Parsed:
    try:
        u = ada_url.URL(url)
    except ValueError:
        raise UnparseableURL("unparseable URL (WHATWG parse failure)") from None
    scheme = str(u.protocol).removesuffix(":")
    raw_host = str(u.hostname)
    if not raw_host or scheme not in _SPECIAL:  # an opaque host (chrome://x) is not canonicalised: no host
        return _Parsed(scheme, None, False, None, str(u.pathname))
    host = raw_host[:-1] if raw_host.endswith(".") else raw_host
    if not host:
        raise UnparseableURL("unparseable URL (empty host)")
    explicit = str(u.port)
    port = int(explicit) if explicit else _DEFAULT_PORTS.get(scheme)
    return _Parsed(scheme, host, int(u.host_type) != _HOST_TYPE_DOMAIN, port, str(u.pathname))


_HOST_MEMO_SCHEMES = frozenset({"http", "https", "ws", "wss"})
_PLAIN_AUTHORITY = re.compile(r"[a-z0-9.-]+(?::[0-9]{1,5})?")  # no userinfo, %, \\, IPv6, whitespace, capitals
_AUTHORITY_END = re.compile(r"[/?#]")
_host_memo: dict[tuple[str, str], str] = {}
_HOST_MEMO_SIZE = 4096


def canonical_host(url: str) -> str:
    """The host Chromium would connect to, canonical: lowercase, punycode, IPs normalised, no trailing dot.

    Raises ``UnparseableURL`` for garbage and for URLs without a host (``data:``, ``about:blank``).
    Kept per (scheme, authority) when the authority is plain (lower-case letters, digits, dots,
    hyphens, an optional port, ended by ``/``, ``?``, ``#`` or the URL's end): for a special scheme
    the host depends on nothing else, so a page's 200 requests to 4 hosts cost 4 parses. Anything
    else (a backslash, userinfo, escapes, IPv6, capitals, spaces, other schemes) is parsed each time.
    """
    scheme, sep, rest = url.partition("://")
    key = None
    if sep and scheme in _HOST_MEMO_SCHEMES:
        authority = _AUTHORITY_END.split(rest, maxsplit=1)[0]
        if _PLAIN_AUTHORITY.fullmatch(authority):
            key = (scheme, authority)
            host = _host_memo.get(key)
            if host is not None:
                return host
    parsed = _parse(url)
    if parsed.host is None:
        raise UnparseableURL(f"{parsed.scheme}: URL has no host")
    if key is not None:
        if len(_host_memo) >= _HOST_MEMO_SIZE:
            _host_memo.clear()
        _host_memo[key] = parsed.host
    return parsed.host


@dataclass(frozen=True)
class HostPattern:
    """One allowlist entry: ``host``, ``*.host`` (strict subdomains), optional ``:port``."""

    host: str  # canonical host (IPv6 with brackets)
    wildcard: bool = False
    port: int | None = None  # None: any port
    is_ip: bool = False

    @classmethod
    def parse(cls, entry: str) -> HostPattern:
        """Parse and canonicalise an entry; ``ValueError`` with a clear message if it is not one."""
        if not isinstance(entry, str):
            raise ValueError(f"allowlist entry must be a string, got {type(entry).__name__}")
        text = entry.strip()
        wildcard = text.startswith("*.")
        if wildcard:
            text = text[2:]
        if not text:
            raise ValueError(f"invalid allowlist entry {entry!r}: empty host")
        bad = _ENTRY_FORBIDDEN.search(text)
        if bad:
            if "://" in text:
                hint = "give a host, not a URL (no scheme)"
            elif bad.group() == "*":
                hint = "'*' is only allowed as a leading '*.' (strict subdomains)"
            else:
                hint = f"character {bad.group()!r} is not allowed (host[:port] or *.host[:port] only)"
            raise ValueError(f"invalid allowlist entry {entry!r}: {hint}")
        host_text, port = _split_port(entry, text)
        try:
            u = ada_url.URL(f"https://{host_text}/")
        except ValueError:
            raise ValueError(f"invalid allowlist entry {entry!r}: not a valid host name or IP address") from None
        host = str(u.hostname).removesuffix(".")
        if not host or ".." in host or host.startswith(".") or str(u.pathname) != "/" or str(u.port):
            raise ValueError(f"invalid allowlist entry {entry!r}: not a valid host name or IP address")
        is_ip = int(u.host_type) != _HOST_TYPE_DOMAIN
        if wildcard and is_ip:
            raise ValueError(f"invalid allowlist entry {entry!r}: '*.' cannot prefix an IP address")
        return cls(host, wildcard, port, is_ip)

    def matches_host(self, host: str, *, is_ip: bool) -> bool:
        if host.startswith(".") or ".." in host:  # an empty label is no DNS name we listed
            return False
        if is_ip or self.is_ip:
            return not self.wildcard and is_ip == self.is_ip and host == self.host
        if self.wildcard:
            return host.endswith("." + self.host)
        return host == self.host

    def matches(self, host: str, port: int | None, *, is_ip: bool) -> bool:
        return (self.port is None or self.port == port) and self.matches_host(host, is_ip=is_ip)

    @property
    def host_pattern(self) -> str:
        """The entry without its port (``*.cdn.example.com``, ``[::1]``)."""
        return f"*.{self.host}" if self.wildcard else self.host

    def __str__(self) -> str:
        return self.host_pattern if self.port is None else f"{self.host_pattern}:{self.port}"


def _split_port(entry: str, text: str) -> tuple[str, int | None]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"invalid allowlist entry {entry!r}: unclosed '[' in IPv6 address")
        host, rest = text[: end + 1], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"invalid allowlist entry {entry!r}: unexpected text after ']'")
        port_text = rest[1:] if rest else None
    elif text.count(":") > 1:
        raise ValueError(f"invalid allowlist entry {entry!r}: IPv6 addresses must be in brackets, e.g. [::1]")
    elif ":" in text:
        host, port_text = text.split(":")
    else:
        host, port_text = text, None
    if port_text is None:
        return host, None
    if not _PORT.fullmatch(port_text) or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"invalid allowlist entry {entry!r}: port must be a number from 1 to 65535")
    return host, int(port_text)


@dataclass(frozen=True)
class UrlVerdict:
    allowed: bool
    host: str | None  # canonical host, None when the URL has none (or is unparseable)
    rule: str  # stable rule id, e.g. "boundaries.allowed_domains", "scheme.refused"
    reason: str  # human-readable; names host and scheme, never the URL


def _to_patterns(entries: Iterable[str | HostPattern]) -> tuple[HostPattern, ...]:
    if isinstance(entries, str):  # a lone string would iterate per character
        raise TypeError("allowlist must be a list of entries, not a string")
    return tuple(e if isinstance(e, HostPattern) else HostPattern.parse(e) for e in entries)


class DomainPolicy:
    """The mission's domain boundaries; every check returns a ``UrlVerdict`` and never raises for a URL."""

    def __init__(
        self,
        allowed_domains: Iterable[str | HostPattern],
        allowed_resource_domains: Iterable[str | HostPattern] = (),
        allow_http: bool = False,
    ) -> None:
        self.allowed_domains = _to_patterns(allowed_domains)
        self.allowed_resource_domains = _to_patterns(allowed_resource_domains)
        self.allow_http = allow_http

    def __repr__(self) -> str:
        nav = [str(p) for p in self.allowed_domains]
        res = [str(p) for p in self.allowed_resource_domains]
        return f"DomainPolicy({nav!r}, {res!r}, allow_http={self.allow_http})"

    def check_navigation(self, url: str, *, first_page: bool = False) -> UrlVerdict:
        """A top-level navigation (a ``goto`` step, or the page navigating itself)."""
        return self._check(url, "navigation", first_page=first_page)

    def check_request(self, url: str, kind: RequestKind) -> UrlVerdict:
        """Any request the browser is about to make; ``kind`` selects navigation vs resource rules.

        ``redirect`` is a hop of a *navigation* (navigation rules). A redirect hop of a subresource,
        WebSocket or worker request is checked with that request's own kind.
        """
        if kind not in REQUEST_KINDS:
            raise ValueError(f"unknown request kind {kind!r}; expected one of {sorted(REQUEST_KINDS)}")
        return self._check(url, kind, first_page=False)

    def _check(self, url: str, kind: str, *, first_page: bool) -> UrlVerdict:
        try:
            p = _parse(url)
        except UnparseableURL as exc:
            return UrlVerdict(False, None, "url.unparseable", f"{kind} refused: {exc}")
        top_level = kind in NAVIGATION_KINDS
        if p.host is None:
            return self._check_hostless(p, kind, top_level=top_level, first_page=first_page)
        where = f"{kind} to {p.host} ({p.scheme})"
        if p.scheme not in _DEFAULT_PORTS:
            return UrlVerdict(False, p.host, "scheme.refused", f"{where} refused: scheme {p.scheme}: is never allowed")
        if p.scheme in _SOCKET_SCHEMES and top_level:
            return UrlVerdict(False, p.host, "scheme.refused", f"{where} refused: {p.scheme}: is not a document")
        if p.scheme in _PLAINTEXT and not self.allow_http:
            return UrlVerdict(
                False, p.host, "scheme.http_not_allowed", f"{where} refused: plain-text {p.scheme}: needs allow_http"
            )
        if any(pat.matches(p.host, p.port, is_ip=p.is_ip) for pat in self.allowed_domains):
            return UrlVerdict(True, p.host, RULE_ALLOWED, f"{where}: host is in allowed_domains")
        if not top_level and any(pat.matches(p.host, p.port, is_ip=p.is_ip) for pat in self.allowed_resource_domains):
            return UrlVerdict(True, p.host, RULE_RESOURCE, f"{where}: host is in allowed_resource_domains")
        listed = "allowed_domains" if top_level else "allowed_domains or allowed_resource_domains"
        if p.port != _DEFAULT_PORTS[p.scheme]:
            where += f" port {p.port}"
        return UrlVerdict(False, p.host, RULE_ALLOWED, f"{where} refused: host/port not in {listed}")

    @staticmethod
    def _check_hostless(p: _Parsed, kind: str, *, top_level: bool, first_page: bool) -> UrlVerdict:
        if p.scheme == "about" and p.path in ("blank", "srcdoc"):
            if not top_level:
                return UrlVerdict(True, None, "scheme.about_frame", f"{kind} about:{p.path}: makes no request")
            if p.path == "blank" and (first_page or kind == "popup"):
                return UrlVerdict(True, None, "scheme.about_blank_first", f"{kind} about:blank as the first page")
            return UrlVerdict(
                False, None, "scheme.about_not_first", f"{kind} to about:{p.path} refused: only as the first page"
            )
        if p.scheme in ("data", "blob"):
            if top_level:
                return UrlVerdict(
                    False, None, f"scheme.{p.scheme}_toplevel", f"{kind} to {p.scheme}: refused as a top-level document"
                )
            return UrlVerdict(True, None, "scheme.local_subresource", f"{kind} {p.scheme}: stays on the machine")
        if p.scheme in _DEFAULT_PORTS:  # WHATWG never yields these without a host; be explicit anyway
            return UrlVerdict(False, None, "url.unparseable", f"{kind} refused: {p.scheme}: URL without a host")
        return UrlVerdict(False, None, "scheme.refused", f"{kind} refused: scheme {p.scheme}: is never allowed")


def resolvable_patterns(policy: DomainPolicy) -> list[str]:
    """Host patterns Chromium's resolver must let through (``--host-resolver-rules`` EXCLUDE entries).

    Every navigation and resource pattern, without ports, deduplicated in order. Measured on Debian
    Chromium: ``MAP * ~NOTFOUND`` also refuses IP literals, so listed IPs are included, and an IPv6
    EXCLUDE only matches when written *without* brackets (``::1``), so that is how it is returned.
    A URL spelt with a trailing dot (``allowed.com.``) reaches the resolver with the dot and is not
    matched by ``EXCLUDE allowed.com``: the launch lists each pattern with its dot as well
    (``runner/browser/chromium.py``), so the resolver agrees with the guard on ``host.``.
    """
    out: list[str] = []
    for pat in (*policy.allowed_domains, *policy.allowed_resource_domains):
        text = pat.host_pattern.removeprefix("[").removesuffix("]")
        if text not in out:
            out.append(text)
    return out


def page_without_query(url: str | None) -> str | None:
    """A page URL fit for a record: scheme, host, port and path — never the query or fragment (they
    may carry PII or secrets), and only the scheme of an opaque URL (``data:``, ``about:``)."""
    if not url:
        return None
    try:
        p = urlsplit(url)
        if not p.scheme:
            return None
        port = f":{p.port}" if p.port else ""
    except ValueError:
        return None
    return f"{p.scheme}://{p.hostname or ''}{port}{p.path}" if p.netloc else f"{p.scheme}:"
