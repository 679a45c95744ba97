"""The sandbox layers: ephemeral profile, blocked service workers, refused downloads and
permissions, proxy refusal, and the resolver allowlist (also against Chromium's own traffic).

Why: these are the guarantees SPEC §4 promises ("not even a DNS lookup or a TCP connection may
reach a host outside the list"); each test would fail if its layer were missing.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

import runner.browser.chromium as chromium
from kernel.errors import SandboxUnavailable
from runner.browser.chromium import (
    DISABLED_FEATURES,
    PLAYWRIGHT_DISABLED_FEATURES,
    canonical_pattern,
    check_no_proxy,
    find_chromium,
    host_matches,
    launch_args,
    resolver_rules,
)
from runner.browser.driver import EVENT_DOWNLOAD_REFUSED, EVENT_DOWNLOAD_SAVED, NavigationBlocked, SandboxConfig
from runner.browser.playwright_driver import open_driver
from tests.server import Response, TestServer, UdpListener

Events = list[tuple[str, Mapping[str, Any]]]


# ----------------------------------------------------------------------------- pure functions


@pytest.mark.parametrize(
    ("patterns", "rules"),
    [
        ([], "MAP * ~NOTFOUND"),
        (["a.com"], "MAP * ~NOTFOUND , EXCLUDE a.com"),
        (["*.a.com"], "MAP * ~NOTFOUND , EXCLUDE *.a.com"),
        (["A.COM.", "a.com:8443", "a.com"], "MAP * ~NOTFOUND , EXCLUDE a.com"),
        (["*.cdn.a.com:443", "portal.a.com"], "MAP * ~NOTFOUND , EXCLUDE *.cdn.a.com , EXCLUDE portal.a.com"),
        (["127.0.0.1:8080"], "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"),
        (["[::1]:8080", "[::1]", "::1"], "MAP * ~NOTFOUND , EXCLUDE ::1"),
        (["bücher.de"], "MAP * ~NOTFOUND , EXCLUDE xn--bcher-kva.de"),
    ],
)
def test_resolver_rules(patterns: list[str], rules: str) -> None:
    assert resolver_rules(patterns) == rules


@pytest.mark.parametrize(
    "bad", ["a.com , EXCLUDE *", "*", "*.*.a.com", "a.com/path", "a com", "", "*.127.0.0.1", "[::1", "a..com"]
)
def test_resolver_rules_refuse_what_is_not_a_host(bad: str) -> None:
    with pytest.raises(SandboxUnavailable):
        resolver_rules([bad])


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("a.com", True),
        ("A.com.", True),
        ("x.a.com", False),  # "a.com" is exactly that host
        ("cdn.b.com", False),  # "*.cdn.b.com" is strict subdomains only
        ("x.cdn.b.com", True),
        ("y.x.cdn.b.com", True),
        ("evil-cdn.b.com", False),
        ("127.0.0.1", True),
        ("127.0.0.2", False),
    ],
)
def test_host_matches(host: str, allowed: bool) -> None:
    assert host_matches(host, ["a.com", "*.cdn.b.com", "127.0.0.1:80"]) is allowed


def test_canonical_pattern_keeps_ipv6_unbracketed() -> None:
    assert canonical_pattern("[2001:DB8::1]:443") == "2001:db8::1"


def test_launch_args_merge_playwrights_disabled_features(chromium_path: Path) -> None:
    args = launch_args(SandboxConfig(executable=chromium_path, resolvable_hosts=["a.com"]))
    assert args[0] == "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE a.com , EXCLUDE a.com."  # host. too
    disable = [a for a in args if a.startswith("--disable-features=")]
    assert len(disable) == 1
    listed = disable[0].split("=", 1)[1].split(",")
    assert set(PLAYWRIGHT_DISABLED_FEATURES) <= set(listed) and "AutofillServerCommunication" in listed
    assert "--webrtc-ip-handling-policy=disable_non_proxied_udp" in args and "--no-proxy-server" in args


def test_our_copy_of_playwrights_disabled_features_is_current() -> None:
    """A Playwright bump that changes its list must update PLAYWRIGHT_DISABLED_FEATURES."""
    import playwright

    bundle = Path(playwright.__file__).parent / "driver" / "package" / "lib" / "coreBundle.js"
    source = bundle.read_text(encoding="utf-8")
    block = re.search(r"disabledFeatures = \[(.*?)\]\.filter", source, re.DOTALL)
    assert block is not None
    theirs = set(re.findall(r'^\s*"(\w+)"', block.group(1), re.MULTILINE))
    assert theirs and theirs <= set(PLAYWRIGHT_DISABLED_FEATURES)


@pytest.mark.parametrize("var", ["HTTP_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "Http_Proxy"])
def test_proxy_env_refuses_to_start(var: str, monkeypatch: pytest.MonkeyPatch, sandbox_config: SandboxConfig) -> None:
    with pytest.raises(SandboxUnavailable, match="bypass the resolver allowlist"):
        check_no_proxy({var: "http://proxy:3128"})
    monkeypatch.setenv(var, "http://proxy:3128")
    with pytest.raises(SandboxUnavailable, match=var):
        open_driver(sandbox_config)  # refused before anything is launched


def test_no_proxy_alone_or_empty_proxy_is_fine() -> None:
    check_no_proxy({"NO_PROXY": "localhost", "no_proxy": "*", "HTTP_PROXY": "  "})


def test_find_chromium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "chrome"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert find_chromium({"WARDEN_CHROMIUM": str(fake)}) == fake
    with pytest.raises(SandboxUnavailable, match="not an executable"):
        find_chromium({"WARDEN_CHROMIUM": str(tmp_path / "missing")})
    monkeypatch.setattr(chromium, "DEBIAN_CHROMIUM", tmp_path / "no-such-chromium")
    (tmp_path / "bin").mkdir()
    with pytest.raises(SandboxUnavailable, match=r"apt-get install chromium.*WARDEN_CHROMIUM"):
        find_chromium({"PATH": str(tmp_path / "bin")})
    link = tmp_path / "bin" / "chromium"
    link.symlink_to(fake)
    assert find_chromium({"PATH": str(tmp_path / "bin")}) == fake  # resolved


# ----------------------------------------------------------------------------- in the browser


@pytest.mark.browser
def test_fresh_profile_per_run(sandbox_config: SandboxConfig, test_server: TestServer) -> None:
    test_server.set_content("/", "<h1>store</h1>", headers={"Set-Cookie": "sid=abc; Path=/"})
    url = test_server.url("allowed.localhost", "/")
    with open_driver(sandbox_config) as d:
        d.perform("goto", {"url": url}, 5)
        d.page.evaluate("localStorage.setItem('k', 'from run 1')")
        assert d.page.evaluate("localStorage.getItem('k')") == "from run 1"
    with open_driver(sandbox_config) as d:
        d.perform("goto", {"url": url}, 5)
        assert d.page.evaluate("localStorage.getItem('k')") is None
    first, second = (r for r in test_server.requests if r.route == "/")
    assert "cookie" not in first.headers and "cookie" not in second.headers  # run 2 did not send run 1's cookie


@pytest.mark.browser
def test_service_worker_registration_is_blocked(sandbox_config: SandboxConfig, test_server: TestServer) -> None:
    test_server.set_content("/", "<h1>sw</h1>")
    test_server.set_content("/sw.js", "self.addEventListener('fetch', () => {})", "text/javascript")
    with open_driver(sandbox_config) as d:
        d.perform("goto", {"url": test_server.url("allowed.localhost", "/")}, 5)
        result = d.page.evaluate(
            """async () => {
                const reg = await navigator.serviceWorker.register('/sw.js');
                await new Promise(r => setTimeout(r, 300));
                return {reg: reg === undefined ? null : 'registration',
                        all: (await navigator.serviceWorker.getRegistrations()).length};
            }"""
        )
    assert result == {"reg": None, "all": 0}
    assert "/sw.js" not in [r.route for r in test_server.requests]


DOWNLOAD_PAGE = '<a id="dl" href="/file.bin">Get the file</a>'


def _serve_download(server: TestServer) -> None:
    server.set_content("/", DOWNLOAD_PAGE)
    server.set_route(
        "/file.bin",
        lambda _req: Response(
            body=b"payload-bytes",
            content_type="application/octet-stream",
            headers={"Content-Disposition": 'attachment; filename="../evil name.bin"'},
        ),
    )


@pytest.mark.browser
def test_downloads_are_refused_and_reported(
    sandbox_config: SandboxConfig, test_server: TestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _serve_download(test_server)
    monkeypatch.chdir(tmp_path)
    events: Events = []
    config = dataclasses.replace(sandbox_config, on_event=lambda n, d: events.append((n, d)))
    with open_driver(config) as d:
        d.perform("goto", {"url": test_server.url("allowed.localhost", "/")}, 5)
        d.perform("click", {"selector": "#dl"}, 2)
        for _ in range(40):
            if events:
                break
            d.perform("wait_for", {"seconds": 0.05}, 1)
    assert [(n, d["suggested_filename"]) for n, d in events] == [(EVENT_DOWNLOAD_REFUSED, "_evil name.bin")]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.browser
def test_downloads_go_to_the_quarantine_dir_when_configured(
    sandbox_config: SandboxConfig, test_server: TestServer, tmp_path: Path
) -> None:
    _serve_download(test_server)
    events: Events = []
    quarantine = tmp_path / "quarantine"
    config = dataclasses.replace(sandbox_config, downloads_dir=quarantine, on_event=lambda n, d: events.append((n, d)))
    with open_driver(config) as d:
        d.perform("goto", {"url": test_server.url("allowed.localhost", "/")}, 5)
        d.perform("click", {"selector": "#dl"}, 2)
        for _ in range(40):
            if events:
                break
            d.perform("wait_for", {"seconds": 0.05}, 1)
    assert [n for n, _ in events] == [EVENT_DOWNLOAD_SAVED]
    saved = Path(events[0][1]["path"])
    assert saved.parent == quarantine and saved.name == "001-_evil_name.bin"
    assert saved.read_bytes() == b"payload-bytes"


@pytest.mark.browser
def test_permissions_are_denied(sandbox_config: SandboxConfig, test_server: TestServer) -> None:
    test_server.set_content("/", "<h1>perm</h1>")
    with open_driver(sandbox_config) as d:
        d.perform("goto", {"url": test_server.url("allowed.localhost", "/")}, 5)
        states = d.page.evaluate(
            """async () => {
                const q = async n => (await navigator.permissions.query({name: n})).state;
                const geo = await new Promise(r => navigator.geolocation.getCurrentPosition(
                    () => r('position'), e => r('error ' + e.code), {timeout: 2000}));
                return {geolocation: await q('geolocation'), notifications: await q('notifications'),
                        camera: await q('camera'), geo, notify: await Notification.requestPermission()};
            }"""
        )
    assert states["geo"] == "error 1"  # PERMISSION_DENIED
    assert states["notify"] == "denied"
    assert "granted" not in {states["geolocation"], states["notifications"], states["camera"]}


@pytest.mark.browser
def test_ip_literals_resolve_only_when_listed(chromium_path: Path, test_server: TestServer) -> None:
    test_server.set_content("/", "<h1>ip</h1>")
    config = SandboxConfig(executable=chromium_path, resolvable_hosts=["127.0.0.1"])
    port = test_server.port
    with open_driver(config) as d:
        d.perform("goto", {"url": f"http://127.0.0.1:{port}/"}, 5)
        d.perform("goto", {"url": f"http://2130706433:{port}/"}, 5)  # the same address, spelled as a number
        assert d.page_url() == f"http://127.0.0.1:{port}/"
        for url in (f"http://localhost:{port}/", f"http://127.0.0.2:{port}/", f"http://[::1]:{port}/"):
            with pytest.raises(NavigationBlocked):
                d.perform("goto", {"url": url}, 3)
    assert len([r for r in test_server.requests if r.route == "/"]) == 2


def _netlog(path: Path) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    text = path.read_text(encoding="utf-8")
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # a log cut off at exit: close the events array
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    names = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    return log["constants"], [(names[e["type"]], e.get("params", {})) for e in log["events"]]


@pytest.mark.browser
def test_only_allowed_hosts_ever_resolve_or_connect(
    sandbox_config: SandboxConfig, test_server: TestServer, evil_server: TestServer, tmp_path: Path
) -> None:
    """Chromium's own traffic (update checks, autofill, accounts) and the page's: the net-log shows
    no DNS at all, only allowed names at the resolver, and TCP only to the test server."""
    test_server.set_content(
        "/",
        f"""<form action="/login" method="post"><input name="email" autocomplete="email">
        <input type="password" name="pw"><button>Sign in</button></form>
        <img src="http://evil.localhost:{evil_server.port}/pixel.gif">
        <img src="https://www.google.com/favicon.ico"><link rel="preconnect" href="https://example.com">""",
    )
    netlog = tmp_path / "net.json"
    with open_driver(sandbox_config, extra_args=[f"--log-net-log={netlog}"]) as d:
        d.perform("goto", {"url": test_server.url("allowed.localhost", "/")}, 5)
        d.perform("fill", {"selector": "[name=email]", "value": "a@b.c"}, 2)
        d.perform("wait_for", {"seconds": 1.5}, 1)
    constants, events = _netlog(netlog)

    command_line = constants["clientInfo"]["command_line"]
    last_disable = re.findall(r"--disable-features=(\S+)", command_line)[-1].split(",")
    assert set(DISABLED_FEATURES) <= set(last_disable)  # ours did not replace Playwright's, or vice versa

    kinds = {k for k, _ in events}
    assert not kinds & {"DNS_TRANSACTION", "HOST_RESOLVER_DNS_TASK", "HOST_RESOLVER_SYSTEM_TASK"}
    resolved = {
        p["host"].split("//")[-1].rsplit(":", 1)[0]
        for k, p in events
        if k == "HOST_RESOLVER_MANAGER_REQUEST" and "host" in p
    }
    assert "allowed.localhost" in resolved
    assert resolved <= {"allowed.localhost", "~notfound"}
    remotes = {p["address"] for k, p in events if k == "TCP_CONNECT_ATTEMPT" and "address" in p}
    assert remotes and remotes <= {f"127.0.0.1:{test_server.port}", f"[::1]:{test_server.port}"}
    assert evil_server.connections == []


@pytest.mark.browser
def test_webrtc_sends_no_stun(
    sandbox_config: SandboxConfig, test_server: TestServer, udp_listener: UdpListener
) -> None:
    test_server.set_content("/", "<h1>rtc</h1>")
    script = f"""async () => {{
        const pc = new RTCPeerConnection({{iceServers: [{{urls: 'stun:127.0.0.1:{udp_listener.port}'}}]}});
        pc.createDataChannel('x');
        await pc.setLocalDescription(await pc.createOffer());
        await new Promise(r => setTimeout(r, 800));
        pc.close();
    }}"""
    # Control: the same page with Chromium's default policy does send STUN (the last switch wins).
    for policy, expect_stun in (("default", True), (None, False)):
        udp_listener.reset()
        extra = [f"--webrtc-ip-handling-policy={policy}"] if policy else []
        with open_driver(sandbox_config, extra_args=extra) as d:
            d.perform("goto", {"url": test_server.url("allowed.localhost", "/")}, 5)
            d.page.evaluate(script)
        assert (udp_listener.count > 0) is expect_stun, policy


# ----------------------------------------------------------------------------- pytest-playwright config


@pytest.mark.browser
def test_pytest_playwright_uses_debian_chromium_and_the_allowlist(
    page: Page, test_server: TestServer, chromium_path: Path, browser_type_launch_args: dict[str, Any]
) -> None:
    assert browser_type_launch_args["executable_path"] == str(chromium_path)
    test_server.set_content("/", "<h1>plugin</h1>")
    page.goto(test_server.url("localhost", "/"))
    assert page.inner_text("h1") == "plugin"
    assert page.evaluate("navigator.serviceWorker.register('/sw.js')") is None  # blocked by the context args
    with pytest.raises(Exception, match="ERR_NAME_NOT_RESOLVED"):
        page.goto("http://example.com/", timeout=3000)
