"""OCSF 1.3.0 objects built from what a record names: endpoints and url objects.

A url object never holds a query, fragment or userinfo (they may carry PII or secrets); an
endpoint is ``ip`` for an IP literal, ``hostname`` when the name is an OCSF ``hostname_t``.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

__all__ = ["endpoint", "endpoint_of_url", "epoch_ms", "split_url", "url_object"]


_HOSTNAME = re.compile(r"^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*"
                       r"([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9])$")  # OCSF hostname_t


def epoch_ms(rfc3339: str) -> int:
    return int(datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp() * 1000)


def endpoint(host: Any, port: Any = None) -> dict[str, Any] | None:
    """An OCSF endpoint for a host: ``ip`` for an IP literal, ``hostname`` when it is one, else ``name``."""
    if not isinstance(host, str) or not host:
        return None
    host = host.strip("[]")
    ep: dict[str, Any]
    try:
        ep = {"ip": str(ipaddress.ip_address(host))}
    except ValueError:
        ep = {"hostname": host} if _HOSTNAME.match(host) else {"name": host}
    if isinstance(port, int) and not isinstance(port, bool) and 0 <= port <= 65535:
        ep["port"] = port
    return ep


def split_url(url: Any) -> tuple[str, str, int | None, str] | None:
    """(scheme, host, explicit port, path) of an absolute URL with a host; None otherwise."""
    if not isinstance(url, str) or not url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    return parts.scheme.lower(), parts.hostname, port, parts.path or "/"


def endpoint_of_url(url: Any) -> dict[str, Any] | None:
    split = split_url(url)
    return None if split is None else endpoint(split[1], split[2])


def url_object(url: Any) -> dict[str, Any] | None:
    """An OCSF url object without query, fragment or userinfo: they may carry PII or secrets."""
    split = split_url(url)
    if split is None:
        return None
    scheme, host, port, path = split
    out: dict[str, Any] = {"scheme": scheme, "path": path}
    if _HOSTNAME.match(host):
        out["hostname"] = host
    if port is not None:
        out["port"] = port
    return out
