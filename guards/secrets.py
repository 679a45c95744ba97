"""Secrets bound to domains (SPEC §2 ``secrets:``, §4): typed only on, and sent only to, their hosts.

A mission's secret is resolved from the environment by the loader (a missing variable is an exit-2
problem before the run). Here it is enforced twice:

* ``SecretInputGuard`` (step chain): a ``fill``/``press``/``select`` whose value contains a secret
  runs only when the current page's canonical host matches one of the secret's ``domains``;
* ``SecretRequestGuard`` (network gate): a request to a host outside a secret's ``domains`` whose URL,
  body or headers hold that secret — raw, URL-encoded, JSON/HTML-escaped or inside base64 (e.g. an
  ``Authorization: Basic`` header) — is refused, recorded, and the run is asked to stop (exit 3).
  The same holds for header values (custom ones, the cookies the browser adds), WebSocket messages
  (the driver puts each one to the gate as a request whose body is the message), and hex or base32
  spellings (any alignment); the host is compared case-insensitively (Chromium lowercases a label).

Host matching uses ``guards.urlmatch`` (canonical host: lowercase, punycode, IPs normalised, userinfo
ignored). Reasons and records name the secret and the host, never the value.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from guards.base import ActionRequest, Decision, GuardContext
from guards.observed import RequestInfo
from guards.urlmatch import HostPattern, UnparseableURL, canonical_host
from kernel import spellings

RULE = "secrets.domains"
INPUT_KINDS: dict[str, tuple[str, ...]] = {"fill": ("value",), "press": ("key",),
                                           "select": ("value", "option_label", "values")}


def input_values(kind: str, args: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(argument name, value) of everything an action types or chooses; a list (``values``) item by item."""
    out: list[tuple[str, str]] = []
    for f in INPUT_KINDS.get(kind, ()):
        given = args.get(f)
        if isinstance(given, (list, tuple)):
            out.extend((f, str(v)) for v in given)
        elif given is not None:
            out.append((f, str(given)))
    return out
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def encoded_forms(value: str) -> list[str]:
    """Spellings under which a secret can leave: raw, URL-encoded, JSON/HTML-escaped, base64 (any alignment)."""
    return spellings.encoded_forms(value, with_base64=True)


def _egress_forms(value: str) -> list[str]:
    """``encoded_forms`` plus hex and base32 (the DNS-label-safe spellings), base32 at any alignment."""
    raw = value.encode("utf-8")
    extra = [raw.hex(), raw.hex().upper()]
    for start in range(5):
        whole = (len(raw) - start) // 5 * 5
        if whole >= 5:
            extra.append(base64.b32encode(raw[start:start + whole]).decode("ascii"))
    return list(dict.fromkeys([*encoded_forms(value), *(f for f in extra if len(f) >= min(len(value), 8))]))


@dataclass(frozen=True)
class BoundSecret:
    name: str
    value: str = field(repr=False)
    domains: tuple[HostPattern, ...]
    forms: tuple[str, ...] = field(repr=False, default=())

    def allows(self, url: str) -> bool:
        """True if ``url``'s canonical host (and port) matches one of the secret's domains."""
        try:
            host = canonical_host(url)
            parts = urlsplit(url)
            port = parts.port if parts.port is not None else _DEFAULT_PORTS.get(parts.scheme.lower())
        except (UnparseableURL, ValueError):
            return False
        try:
            is_ip = True
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            is_ip = False
        return any(p.matches(host, port, is_ip=is_ip) for p in self.domains)

    def found_in(self, text: str) -> bool:
        return any(f in text for f in self.forms)

    def found_in_host(self, host: str) -> bool:
        """Case-insensitive: the browser lowercases a host label, so ``S3cr3t.evil`` arrives ``s3cr3t.evil``."""
        low = host.lower()
        return any(f.lower() in low for f in self.forms)


class SecretSet:
    """The run's resolved secrets with their domain bindings."""

    def __init__(self, bindings: Mapping[str, tuple[str, list[str]]]) -> None:
        """``bindings``: name -> (value, domain entries)."""
        self.secrets: tuple[BoundSecret, ...] = tuple(
            BoundSecret(name, value, tuple(HostPattern.parse(d) for d in domains), tuple(_egress_forms(value)))
            for name, (value, domains) in bindings.items()
            if value
        )

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def values(self) -> list[str]:
        return [s.value for s in self.secrets]

    def in_text(self, text: str) -> list[BoundSecret]:
        """Secrets whose raw value appears in ``text`` (typed values: no encodings needed)."""
        return [s for s in self.secrets if s.value in text]

    def strip(self, text: str) -> str:
        """``text`` with each secret replaced by «secret:NAME» (before a PII scan of a typed value)."""
        for s in sorted(self.secrets, key=lambda s: -len(s.value)):
            text = text.replace(s.value, f"«secret:{s.name}»")
        return text


def _hosts(patterns: tuple[HostPattern, ...]) -> str:
    return ", ".join(str(p) for p in patterns)


class SecretInputGuard:
    """A value holding a secret is typed only into a page whose host is one of the secret's domains."""

    name = "secrets.input"

    def __init__(self, secrets: SecretSet) -> None:
        self.secrets = secrets

    def check(self, action: ActionRequest, ctx: GuardContext) -> Decision:
        values = [v for _f, v in input_values(action.kind, action.args)]
        used = [s for v in values for s in self.secrets.in_text(v)]
        if not used:
            return Decision.allow(self.name, "no secret typed", RULE)
        page = ctx.page_url or ""
        for s in used:
            if not s.allows(page):
                host = _host_or_none(page)
                return Decision.deny(
                    self.name,
                    f"secret {s.name} may only be typed on {_hosts(s.domains)}; the page is on {host or 'no host'}",
                    RULE,
                    secret=s.name,
                    host=host or "",
                )
        names = ", ".join(sorted({s.name for s in used}))
        return Decision.allow(self.name, f"secret(s) {names} typed on an allowed host", RULE)


class SecretRequestGuard:
    """Refuses (and asks the run to stop) a request carrying a secret to a host outside its domains."""

    name = "secrets.request"

    def __init__(self, secrets: SecretSet) -> None:
        self.secrets = secrets

    def check_request(self, request: RequestInfo, ctx: object) -> Decision:
        host = _host_or_none(request.url) or ""
        outside = [s for s in self.secrets.secrets if not s.allows(request.url)]
        if not outside:
            return Decision.allow(self.name, "no secret is bound away from this host", RULE)
        body = request.body.decode("utf-8", "replace") if request.body else ""
        headers = "\n".join(f"{k}: {v}" for k, v in request.headers.items())
        places = (("url", request.url), ("body", body), ("headers", headers))
        for s in outside:
            where = [name for name, text in places if text and s.found_in(text)]
            if host and "url" not in where and s.found_in_host(host):
                where.append("host")
            if where:
                host = _masked_host(host, s)
                decision = Decision.deny(
                    self.name,
                    f"secret {s.name} found in the request {'/'.join(where)} to {host or '?'}, "
                    f"outside its domains ({_hosts(s.domains)}): refused, the run stops",
                    RULE,
                    host=host,
                    secret=s.name,
                    stop=True,
                )
                return decision  # stop=True: the request gate refuses it and the run stops
        return Decision.allow(self.name, "no secret in this request", RULE)


def _masked_host(host: str, secret: BoundSecret) -> str:
    """The host with each label that holds the secret (any case) shown as «secret:NAME»: never named."""
    masked = ".".join(f"«secret:{secret.name}»" if secret.found_in_host(label) else label for label in host.split("."))
    return masked if masked != host or not secret.found_in_host(host) else f"«secret:{secret.name}» (split over labels)"


def _host_or_none(url: str) -> str | None:
    try:
        return canonical_host(url)
    except (UnparseableURL, ValueError):
        return None
