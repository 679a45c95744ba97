"""Chromium for the sandbox: where it is, and the switches that make it an allowlisted browser.

The resolver allowlist (``--host-resolver-rules``) is the layer that holds when everything else
leaks (redirect hops, keepalive fetches, preconnects, Chromium's own Google traffic): a host that
does not match resolves to nothing, so not even a DNS lookup or a SYN leaves. See
docs/platform notes §4. Measured on Chromium 156 (Debian bookworm) with Playwright 1.65.2:

* ``EXCLUDE host`` must be the bare host. With a port (``EXCLUDE a.com:8080``) the rule never
  matches, so ports are stripped.
* ``EXCLUDE *.a.com`` matches strict subdomains only, not ``a.com`` itself (SPEC §2 semantics).
* IP literals *can* be excluded by name: ``EXCLUDE 127.0.0.1`` lets ``http://127.0.0.1:PORT/``
  through, and also ``http://2130706433:PORT/`` (the URL parser canonicalises the spelling before
  the resolver sees it). An IPv6 literal must be given without brackets (``EXCLUDE ::1``);
  ``EXCLUDE [::1]`` never matches. Every other IP literal gets ``ERR_NAME_NOT_RESOLVED``.
* ``localhost`` and ``*.localhost`` are covered by ``MAP *`` too: they resolve only when listed.
* A name spelt with a trailing dot (``http://a.com.:8080/``) reaches the resolver *with* the dot:
  ``EXCLUDE a.com`` does not match it, ``EXCLUDE a.com.`` does (and ``EXCLUDE *.a.com.`` matches
  ``sub.a.com.``). The request guard already allows ``a.com.`` (one dot is stripped before
  matching), so every listed name is excluded in both spellings: the two layers agree. Two dots
  (``a.com..``) match neither, at both layers.
* ``<a ping>``: Chromium sends hyperlink auditing pings (resource type ``ping``) through the
  context route, so they are gated and a refused one is recorded like every other request; the
  resolver still holds a ping to an unlisted host should the route ever miss it. ``--no-pings``
  is therefore not passed: it silenced the request, and with it the refusal's record.
* With a proxy the proxy resolves names, bypassing all of this: ``check_no_proxy`` refuses to
  start, and ``--no-proxy-server`` makes Chromium ignore proxy settings anyway.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import idna

from kernel.errors import SandboxUnavailable
from runner.browser.driver import SandboxConfig

DEBIAN_CHROMIUM = Path("/usr/lib/chromium/chromium")
ENV_CHROMIUM = "WARDEN_CHROMIUM"

# Playwright 1.65.2's own ``--disable-features`` list (chromiumSwitches.ts). Chromium keeps only the
# LAST ``--disable-features`` switch, so ours must repeat Playwright's list: passing only our
# additions would re-enable e.g. NetworkTimeServiceQuerying (clients2.google.com). A test checks
# this list against the installed driver, so a Playwright bump that changes it fails loudly.
PLAYWRIGHT_DISABLED_FEATURES: tuple[str, ...] = (
    "AvoidUnnecessaryBeforeUnloadCheckSync",
    "DestroyProfileOnBrowserClose",
    "HttpsUpgrades",
    "HttpsFirstBalancedModeAutoEnable",
    "LensOverlay",
    "MediaRouter",
    "PaintHolding",
    "ThirdPartyStoragePartitioning",
    "AvoidCorsURLLoaderRestartOnRedirect",
    "TcpPortRandomizationWin",
    "OptimizationHints",
    "NetworkTimeServiceQuerying",
    "AimEnabled",
    "PreconnectToSearch",
    "msForceBrowserSignIn",
    "msEdgeUpdateLaunchServicesPreferredVersion",
)
# Ours: features that phone home about the visited pages or fetch things in the background.
# Unknown feature names are ignored by Chromium, so this is safe across versions.
WARDEN_DISABLED_FEATURES: tuple[str, ...] = (
    "AutofillServerCommunication",  # form signatures of visited pages -> content-autofill.googleapis.com
    "Translate",  # page language detection / translate service
    "OptimizationGuideModelDownloading",
    "OptimizationHintsFetching",
    "InterestFeedContentSuggestions",
    "CertificateTransparencyComponentUpdater",
)
DISABLED_FEATURES: tuple[str, ...] = PLAYWRIGHT_DISABLED_FEATURES + WARDEN_DISABLED_FEATURES

# Extra privacy switches, each verified to exist in Chromium 156's binary.
PRIVACY_SWITCHES: tuple[str, ...] = (
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",  # the only thing that stops STUN to an IP literal
    "--no-proxy-server",  # ignore proxy env/settings: a proxy would resolve names itself
    # (no --no-pings: <a ping> goes through the route, so a refused ping is recorded; see above)
    "--disable-domain-reliability",  # Google domain-reliability uploads
    "--deny-permission-prompts",  # every permission prompt (geolocation, notifications...) is denied
)

_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy")
_HOST_RE = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*$")


def find_chromium(environ: Mapping[str, str]) -> Path:
    """The Chromium binary to drive: ``$WARDEN_CHROMIUM``, else Debian's, else ``chromium`` on PATH."""
    override = environ.get(ENV_CHROMIUM)
    if override:
        path = Path(override).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise SandboxUnavailable(f"{ENV_CHROMIUM}={override} is not an executable file")
        return path
    if DEBIAN_CHROMIUM.is_file() and os.access(DEBIAN_CHROMIUM, os.X_OK):
        return DEBIAN_CHROMIUM
    found = shutil.which("chromium", path=environ.get("PATH", os.defpath))
    if found:
        return Path(found).resolve()
    raise SandboxUnavailable(
        "Chromium not found: install Debian's chromium (`apt-get install chromium`, as root) "
        f"or set {ENV_CHROMIUM}"
    )


def canonical_pattern(pattern: str) -> str:
    """A host pattern as the resolver rules need it: lowercase, punycode, no port, no brackets.

    Raises ``SandboxUnavailable`` for anything that is not a host, ``*.host`` or IP literal, so a
    malformed entry can never inject a rule (``a.com , EXCLUDE *``).
    """
    raw = pattern.strip()
    wildcard = raw.startswith("*.")
    host = raw[2:] if wildcard else raw
    if host.startswith("["):  # [v6] or [v6]:port
        end = host.find("]")
        if end < 0:
            raise SandboxUnavailable(f"not a host pattern: {pattern!r}")
        host = host[1:end]
    elif host.count(":") == 1:  # host:port
        host = host.split(":", 1)[0]
    host = host.rstrip(".").lower()
    if not host:
        raise SandboxUnavailable(f"not a host pattern: {pattern!r}")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        if wildcard:
            raise SandboxUnavailable(f"a wildcard cannot apply to an IP address: {pattern!r}")
        return ip.compressed
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise SandboxUnavailable(f"not a host pattern: {pattern!r} ({exc})") from None
    if not _HOST_RE.match(host):
        raise SandboxUnavailable(f"not a host pattern: {pattern!r}")
    return f"*.{host}" if wildcard else host


def resolver_rules(host_patterns: Iterable[str], *, trailing_dot: bool = False) -> str:
    """``MAP * ~NOTFOUND , EXCLUDE h1 , EXCLUDE *.h2 ...``: only the listed hosts resolve.

    With ``trailing_dot`` (as ``launch_args`` builds them) each name is also excluded in its
    fully-qualified spelling (``EXCLUDE h1.``), which the guard allows too; an IP literal has no
    such spelling (the URL parser removes the dot of ``127.0.0.1.``).
    """
    rules = ["MAP * ~NOTFOUND"]
    seen: set[str] = set()
    for pattern in host_patterns:
        canon = canonical_pattern(pattern)
        spellings = [canon, f"{canon}."] if trailing_dot and not _is_ip(canon) else [canon]
        for spelling in spellings:
            if spelling not in seen:
                seen.add(spelling)
                rules.append(f"EXCLUDE {spelling}")
    return " , ".join(rules)


def _is_ip(canon: str) -> bool:
    try:
        ipaddress.ip_address(canon)
    except ValueError:
        return False
    return True


def host_matches(host: str, host_patterns: Iterable[str]) -> bool:
    """Whether ``host`` (as it appears in a URL) is one the resolver rules let through."""
    try:
        canon = canonical_pattern(host)
    except SandboxUnavailable:
        return False
    for pattern in host_patterns:
        try:
            p = canonical_pattern(pattern)
        except SandboxUnavailable:
            continue
        if p.startswith("*."):
            if canon.endswith(p[1:]) and canon != p[2:]:
                return True
        elif canon == p:
            return True
    return False


def host_of(url: str) -> str:
    """The host of ``url`` as ``host_matches`` takes it ("" for a URL without one or that does not parse)."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def launch_args(config: SandboxConfig, extra: Sequence[str] = ()) -> list[str]:
    """Chromium switches for the sandbox (on top of Playwright's defaults)."""
    return [
        f"--host-resolver-rules={resolver_rules(config.resolvable_hosts, trailing_dot=True)}",
        "--disable-features=" + ",".join(DISABLED_FEATURES),
        *PRIVACY_SWITCHES,
        *extra,
    ]


def check_no_proxy(environ: Mapping[str, str]) -> None:
    """Refuse to start when a proxy is configured in the environment (any case). NO_PROXY alone is fine."""
    found = sorted(k for k, v in environ.items() if k.lower() in _PROXY_VARS and v.strip())
    if found:
        raise SandboxUnavailable(
            f"{', '.join(found)} is set: a proxy would do name resolution and bypass the resolver "
            "allowlist; unset it"
        )
