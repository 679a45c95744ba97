"""NetworkGate + DomainRequestGuard: unit behaviour, and end to end through ``run_mission``.

The real-run tests prove the records in records.jsonl (decision_record per refusal with canonical
host, request kind, initiating page and rule; counted repeats; exception_record on a refused step
navigation; allowed/refused counts in the end run_record) and, every time, that the evil server
(its own port) received nothing: no HTTP request and no TCP connection.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

import runner.assembly as assembly
import runner.network as network
from evidence.records import Attachment
from evidence.verify import verify_run
from guards.base import Decision
from guards.domains import DomainRequestGuard, judged_kind
from guards.observed import RequestContext, RequestInfo
from guards.urlmatch import DomainPolicy
from runner.browser.driver import GateVerdict, SandboxConfig
from runner.network import NetworkGate
from runner.recorder import RunRecorder
from tests.evidence.integrity_support import records, run, write_mission
from tests.guards.test_vectors import _serve
from tests.guards.vectors import VECTORS
from tests.server import Response, TestServer

# ----------------------------------------------------------------------------- unit


@dataclass
class FakeWriter:
    appended: list[dict[str, Any]] = field(default_factory=list)

    def append(self, cls: Any, *, actor: Any, attachments: Any = (), **f: Any) -> None:
        self.appended.append({"type": cls.TYPE, "attachments": list(attachments), **f})


@dataclass
class FakeRecorder:
    decisions: list[tuple[Decision, dict[str, Any]]] = field(default_factory=list)
    writer: FakeWriter = field(default_factory=FakeWriter)
    policy: Any = None
    counts: dict[str, int] = field(default_factory=lambda: {"decision_record": 0})

    def guard_decision(
        self, decision: Decision, *, step: int | None, subject: Mapping[str, Any], count: int = 1
    ) -> None:
        self.decisions.append((decision, {**subject, "count": count, "step": step}))


def _req(url: str, kind: str = "subresource", frame: str | None = "https://a.com/page?card=4111") -> RequestInfo:
    return RequestInfo(url, "GET", kind, "image", kind == "navigation", frame)  # type: ignore[arg-type]


POLICY = DomainPolicy(["a.com", "*.a.com"], ["cdn.net"])


def _gate(*extra: Any, attach: Any = None) -> tuple[NetworkGate, FakeRecorder]:
    rec = FakeRecorder()
    return NetworkGate([DomainRequestGuard(POLICY), *extra], cast(RunRecorder, rec), attach=attach), rec


@pytest.mark.parametrize(
    ("url", "kind", "allow", "rule"),
    [
        ("https://a.com/x", "navigation", True, "boundaries.allowed_domains"),
        ("https://sub.a.com/x", "subresource", True, "boundaries.allowed_domains"),
        ("https://evil.com/x", "subresource", False, "boundaries.allowed_domains"),
        ("https://a.com@evil.com/x", "subresource", False, "boundaries.allowed_domains"),
        ("https://cdn.net/lib.js", "subresource", True, "boundaries.allowed_resource_domains"),
        ("wss://cdn.net/s", "websocket", True, "boundaries.allowed_resource_domains"),
        ("https://cdn.net/w", "worker", True, "boundaries.allowed_resource_domains"),
        ("https://cdn.net/", "navigation", False, "boundaries.allowed_domains"),
        ("https://cdn.net/", "popup", False, "boundaries.allowed_domains"),
        ("https://cdn.net/", "redirect", False, "boundaries.allowed_domains"),
        ("https://cdn.net/f.bin", "download", False, "boundaries.allowed_domains"),
        ("https://cdn.net/", "other", False, "boundaries.allowed_domains"),  # unknown: navigation rules
        ("http://a.com/", "subresource", False, "scheme.http_not_allowed"),
        ("data:text/html,x", "navigation", False, "scheme.data_toplevel"),
    ],
)
def test_domain_guard(url: str, kind: str, allow: bool, rule: str) -> None:
    d = DomainRequestGuard(POLICY).check_request(_req(url, kind), RequestContext(1, None))
    assert (d.verdict == "allow") is allow and d.rule == rule
    assert "4111" not in d.reason and "/x" not in d.reason  # names the host, never the URL


def test_unknown_kinds_are_judged_as_navigation() -> None:
    assert judged_kind("weird") == "navigation" and judged_kind("other") == "navigation"
    assert judged_kind("subresource") == "subresource"


def test_gate_counts_allows_and_records_each_refusal_once_then_counts_repeats() -> None:
    gate, rec = _gate()
    gate.step = 2
    assert gate(_req("https://a.com/1")) == GateVerdict(True)
    for _ in range(5):
        assert not gate(_req("https://evil.com/p.gif?email=x@y.z")).allow
    gate(_req("https://evil.com/", "navigation"))
    assert gate.allowed == 1 and gate.refused == 6
    assert len(rec.decisions) == 2  # one per (page, host, kind, rule)
    first = rec.decisions[0][1]
    assert first == {
        "host": "evil.com",
        "url": "https://evil.com/p.gif",  # where it was going: never its query
        "request_kind": "subresource",
        "resource_type": "image",
        "method": "GET",
        "page_url": "https://a.com/page",
        "count": 1,
        "step": 2,  # page without its query (PII)
    }
    gate.flush()
    repeated = rec.decisions[-1]
    assert repeated[1]["count"] == 4 and repeated[1]["repeated"] is True and repeated[0].verdict == "deny"
    gate.flush()
    assert len(rec.decisions) == 3  # nothing new to flush
    gate(_req("https://evil.com/p.gif"))
    gate.flush()
    assert rec.decisions[-1][1]["count"] == 1  # a repeat after a flush is counted again
    assert gate.counts()["requests_allowed"] == 1


def test_a_guard_that_raises_denies() -> None:
    class Broken:
        name = "broken"

        def check_request(self, request: RequestInfo, ctx: RequestContext) -> Decision:
            raise RuntimeError("boom")

    gate, rec = _gate(Broken())
    assert not gate(_req("https://a.com/")).allow
    assert rec.decisions[0][0].rule == "guard.error"


def test_driver_events_become_records_without_double_counting() -> None:
    gate, rec = _gate()
    gate.on_event("request_refused", {"url": "https://evil.com/x", "kind": "subresource", "layer": "gate"})
    gate.on_event("websocket_refused", {"url": "wss://evil.com/x", "kind": "websocket"})
    assert rec.decisions == []  # the gate decided and recorded those itself
    gate.on_event(
        "request_refused",
        {"url": "https://EVIL.com./hop?t=1", "kind": "redirect", "layer": "resolver", "frame_url": "https://a.com/p"},
    )
    gate.on_event("download_refused", {"url": "https://a.com/f.bin", "reason": "downloads are denied"})
    (d1, s1), (d2, s2) = rec.decisions
    assert (d1.guard, d1.rule, s1["host"], s1["request_kind"]) == (
        "boundaries.resolver",
        "boundaries.allowed_domains",
        "evil.com",
        "redirect",
    )
    assert (d2.guard, d2.rule, s2["host"], s2["request_kind"]) == (
        "boundaries.downloads",
        "boundaries.downloads",
        "a.com",
        "download",
    )
    assert gate.counts()["requests_refused_by_resolver"] == 1
    # Where it was going is recorded, never its query (it may carry PII or secrets).
    assert (s1["url"], s2["url"]) == ("https://evil.com./hop", "https://a.com/f.bin")


def test_quarantine_keeps_a_download_as_an_attachment_and_enforces_the_cap(tmp_path: Path) -> None:
    kept: list[tuple[bytes, str]] = []

    def attach(data: bytes, rel: str, media: str) -> Attachment:
        kept.append((data, rel))
        return Attachment(path=rel, sha256="0" * 64, media_type=media)

    gate, rec = _gate(attach=attach)
    gate.quarantine_cap = 10
    small, big = tmp_path / "001-a.bin", tmp_path / "002-b.bin"
    small.write_bytes(b"12345")
    big.write_bytes(b"x" * 11)
    gate.on_event("download_saved", {"url": "https://a.com/a.bin", "path": str(small), "suggested_filename": "a.bin"})
    gate.on_event("download_saved", {"url": "https://a.com/b.bin", "path": str(big), "suggested_filename": "b.bin"})
    assert kept == [(b"12345", "quarantine/001-a.bin")]
    assert not small.exists() and not big.exists()  # staging is emptied either way
    saved = rec.writer.appended[0]
    assert (
        saved["decision"] == "allow" and saved["subject"]["bytes"] == 5 and saved["attachments"][0].path == kept[0][1]
    )
    assert rec.decisions[0][0].rule == "boundaries.downloads.size_cap"


def test_no_api_request_context_for_mission_traffic() -> None:
    """Warden never fetches outside the browser: APIRequestContext and route.fetch bypass every layer."""
    root = Path(__file__).resolve().parents[2] / "runner"
    pattern = re.compile(
        r"\.request\.(get|post|put|patch|delete|head|fetch)\b|APIRequestContext|route\.fetch|\.fetch\("
    )
    offenders = [
        f"{p.relative_to(root.parent)}:{i}"
        for p in root.rglob("*.py")
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


# ----------------------------------------------------------------------------- real runs


def _mission(
    steps: list[str],
    *,
    resources: tuple[str, ...] = (),
    actions: str = "[goto, click, wait_for, extract, screenshot]",
    extra: str = "",
) -> str:
    res = f"  allowed_resource_domains: [{', '.join(resources)}]\n" if resources else ""
    body = "\n".join(f"  - {s}" for s in steps)
    return (
        "mission: boundary-check\nversion: 1\nchangelog: test\nboundaries:\n"
        f"  allowed_domains: [allowed.localhost]\n{res}  allow_http: true\n  allowed_actions: {actions}\n"
        f"  timeout: 60\n{extra}steps:\n{body}\n"
    )


def _run(tmp_path: Path, text: str, **kw: Any) -> tuple[int, list[dict[str, Any]], Path | None]:
    code, result = run(write_mission(tmp_path, text), tmp_path / "ev", **kw)
    folder = result.folder if result is not None else None
    return code, (records(folder) if folder is not None else []), folder


def _denies(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in recs if r["type"] == "decision_record" and r["decision"] == "deny" and r.get("guard") != "chain"]


def _nothing_reached(evil: TestServer) -> None:
    assert evil.requests == [] and evil.connections == []


def _end(recs: list[dict[str, Any]]) -> dict[str, Any]:
    return next(r for r in recs if r["type"] == "run_record" and r["phase"] == "end")


REPRESENTATIVE = {  # vector -> the request kind its refusal record must carry
    "img": "subresource",
    "fetch_post": "subresource",
    "websocket": "websocket",
    "window_open": "popup",
    "meta_refresh": "navigation",
    "redirect_img": "redirect",
    "worker_fetch": "subresource",  # Playwright attributes a dedicated worker's fetch to its page
    "ip_decimal": "subresource",
}


@pytest.mark.browser
@pytest.mark.parametrize("name", sorted(REPRESENTATIVE))
def test_vectors_through_run_mission(
    name: str, tmp_path: Path, test_server: TestServer, evil_server: TestServer
) -> None:
    url = _serve(VECTORS[name], test_server, evil_server)
    end = test_server.url("allowed.localhost", "/end")
    code, recs, folder = _run(tmp_path, _mission([f"goto: {url}", "wait_for: {seconds: 1}", f"goto: {end}"]))
    assert code == 0, [r for r in recs if r["type"] == "exception_record"]
    _nothing_reached(evil_server)
    host = "127.0.0.1" if VECTORS[name].target != "evil" else "evil.localhost"
    # the PII redactor (build_redactor) masks IP literals in every record, hosts included
    mine = [r for r in _denies(recs) if r["subject"]["host"] in (host, "«pii:IP_ADDRESS»")]
    assert mine, _denies(recs)
    assert mine[0]["subject"]["request_kind"] == REPRESENTATIVE[name]
    assert mine[0]["rule"] == "boundaries.allowed_domains" and mine[0]["step"] in (1, 2)
    counts = _end(recs)["counts"]
    assert counts["requests_allowed"] >= 2 and counts["requests_refused"] >= 1
    assert folder is not None and verify_run(folder).ok


@pytest.mark.browser
def test_repeated_refusals_are_counted_not_repeated(
    tmp_path: Path, test_server: TestServer, evil_server: TestServer
) -> None:
    imgs = "".join(f'<img src="http://evil.localhost:{evil_server.port}/t{i}.gif">' for i in range(60))
    test_server.set_content("/many", imgs)
    code, recs, _ = _run(tmp_path, _mission([f"goto: {test_server.url('allowed.localhost', '/many')}"]))
    assert code == 0
    _nothing_reached(evil_server)
    mine = [r for r in _denies(recs) if r["subject"]["host"] == "evil.localhost"]
    assert sorted(r.get("count", 1) for r in mine) == [1, 59]
    assert _end(recs)["counts"]["requests_refused"] == 60


@pytest.mark.browser
def test_a_refused_step_navigation_stops_the_run_with_exit_3(
    tmp_path: Path, test_server: TestServer, evil_server: TestServer
) -> None:
    test_server.set_redirect("/out", f"http://evil.localhost:{evil_server.port}/landing")
    test_server.set_content("/next", "never")
    steps = [
        f"goto: {test_server.url('allowed.localhost', '/out')}",
        f"goto: {test_server.url('allowed.localhost', '/next')}",
    ]
    code, recs, _ = _run(tmp_path, _mission(steps))
    assert code == 3
    _nothing_reached(evil_server)
    assert "/next" not in [r.route for r in test_server.requests]
    hop = [r for r in _denies(recs) if r["subject"]["host"] == "evil.localhost"]
    assert hop and hop[0]["subject"]["request_kind"] == "redirect" and hop[0]["guard"] == "boundaries.resolver"
    exc = [r for r in recs if r["type"] == "exception_record"]
    assert exc and exc[-1]["category"] == "guardrail" and exc[-1]["mitigation"] == "blocked"
    assert "navigation refused" in exc[-1]["message"]


@pytest.mark.browser
def test_allowed_resource_domains_end_to_end(tmp_path: Path, test_server: TestServer, evil_server: TestServer) -> None:
    """cdn.localhost may serve images/scripts/fetch to the page, but is never a navigation target."""
    cdn = f"http://cdn.localhost:{evil_server.port}"
    evil_server.set_content("/logo.png", b"png", "image/png")
    evil_server.set_content("/lib.js", "document.title = 'lib loaded'", "text/javascript")
    test_server.set_content(
        "/page",
        f'<img src="{cdn}/logo.png"><script src="{cdn}/lib.js"></script><a id="nav" href="{cdn}/landing">cdn page</a>',
    )
    page = test_server.url("allowed.localhost", "/page")
    code, recs, _ = _run(
        tmp_path,
        _mission(
            [f"goto: {page}", "click: {selector: '#nav'}", "wait_for: {seconds: 0.5}"], resources=("cdn.localhost",)
        ),
    )
    assert code == 0
    assert {r.route for r in evil_server.requests} == {"/logo.png", "/lib.js"}  # subresources: allowed
    nav = [r for r in _denies(recs) if r["subject"]["host"] == "cdn.localhost"]
    assert [(r["subject"]["request_kind"], r["rule"]) for r in nav] == [("navigation", "boundaries.allowed_domains")]
    # the mission itself may not goto it: refused before the run (exit 2), nothing received
    evil_server.reset()
    (tmp_path / "b").mkdir()
    code, _, _ = _run(tmp_path / "b", _mission([f"goto: {cdn}/landing"], resources=("cdn.localhost",)))
    assert code == 2
    _nothing_reached(evil_server)


def _confusions(p: int, e: int) -> list[str]:
    return [
        f"http://allowed.localhost:{p}@evil.localhost:{e}/",  # userinfo
        f"http://allowed.localhost.evil.localhost:{e}/",  # suffix confusion
        f"http://xallowed.localhost:{e}/",  # prefix confusion
        f"http://evil.localhost:{e}\\\\@allowed.localhost:{p}/",  # backslash (YAML-escaped)
        f"http://evil.localhost.:{e}/",  # trailing dot
        f"http://EVIL.LocalHost:{e}/",  # mixed case
        f"http://127.0.0.1:{e}/",  # IP literal on the evil port
        f"http://2130706433:{e}/",  # decimal
        f"http://0x7f.1:{e}/",  # hex, short form
        f"http://0177.0.0.1:{e}/",  # octal
        f"http://[::ffff:127.0.0.1]:{e}/",  # IPv4-mapped IPv6
        f"http://%65vil.localhost:{e}/",  # percent-encoded host
    ]


@pytest.mark.browser
def test_url_confusions_as_goto_steps_are_refused_before_the_run(
    tmp_path: Path, test_server: TestServer, evil_server: TestServer
) -> None:
    for i, url in enumerate(_confusions(test_server.port, evil_server.port)):
        d = tmp_path / str(i)
        d.mkdir()
        code, recs, _ = _run(d, _mission([f'goto: "{url}"']))
        assert code == 2, url
        assert recs == []  # nothing executed, nothing written
    _nothing_reached(evil_server)
    assert test_server.requests == []


@pytest.mark.browser
@pytest.mark.parametrize("which", [0, 3, 4, 7])
def test_url_confusions_from_a_page_are_refused_at_run_time(
    which: int, tmp_path: Path, test_server: TestServer, evil_server: TestServer
) -> None:
    """The URL comes from the page (extract), so preflight cannot see it: refused at run time, exit 3."""
    url = _confusions(test_server.port, evil_server.port)[which].replace("\\\\", "\\")
    test_server.set_content("/links", f'<a id="u" href="{url}">next</a>')
    steps = [
        f"goto: {test_server.url('allowed.localhost', '/links')}",
        "extract: {selector: '#u', attribute: href, as: next}",
        'goto: "${vars.next}"',
    ]
    code, recs, _ = _run(tmp_path, _mission(steps))
    assert code == 3
    _nothing_reached(evil_server)
    step3 = [r for r in recs if r["type"] == "decision_record" and r.get("step") == 3 and r["guard"] == "chain"]
    assert step3 and step3[0]["decision"] == "deny" and step3[0]["rule"] == "boundaries.allowed_domains"


# ----------------------------------------------------------------------------- downloads


def _serve_download(server: TestServer, size: int = 13) -> str:
    server.set_content("/dl", '<a id="dl" href="/file.bin">get</a>')
    server.set_route(
        "/file.bin",
        lambda _r: Response(
            body=b"p" * size,
            content_type="application/octet-stream",
            headers={"Content-Disposition": 'attachment; filename="report.bin"'},
        ),
    )
    return server.url("allowed.localhost", "/dl")


DL_STEPS = ["click: {selector: '#dl'}", "wait_for: {seconds: 1}"]


@pytest.mark.browser
def test_downloads_are_refused_by_default(tmp_path: Path, test_server: TestServer) -> None:
    code, recs, folder = _run(tmp_path, _mission([f"goto: {_serve_download(test_server)}", *DL_STEPS]))
    assert code == 0
    dl = [r for r in _denies(recs) if r["subject"]["request_kind"] == "download"]
    assert [(r["guard"], r["rule"], r["subject"]["host"]) for r in dl] == [
        ("boundaries.downloads", "boundaries.downloads", "allowed.localhost")
    ]
    assert folder is not None and not (folder / "quarantine").exists()


@pytest.mark.browser
def test_downloads_quarantine_keeps_the_file_as_a_verified_attachment(
    tmp_path: Path, test_server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = _mission([f"goto: {_serve_download(test_server)}", *DL_STEPS], extra="  downloads: quarantine\n")
    code, recs, folder = _run(tmp_path, text)
    assert code == 0 and folder is not None
    kept = [r for r in recs if r["type"] == "decision_record" and r.get("guard") == "boundaries.downloads"]
    assert len(kept) == 1 and kept[0]["decision"] == "allow"
    att = kept[0]["attachments"][0]
    assert att["path"].startswith("quarantine/") and (folder / att["path"]).read_bytes() == b"p" * 13
    assert not (folder / "quarantine" / ".incoming").exists()
    assert verify_run(folder).ok
    assert _end(recs)["counts"]["downloads_quarantined"] == 1
    # over the cap: refused and not kept
    monkeypatch.setattr(network, "QUARANTINE_CAP_BYTES", 10)
    (tmp_path / "cap").mkdir()
    code, recs, folder = _run(tmp_path / "cap", text)
    assert code == 0 and folder is not None
    assert [r["rule"] for r in _denies(recs)] == ["boundaries.downloads.size_cap"]
    assert list((folder / "quarantine").glob("*.bin")) == []


# ----------------------------------------------------------------------------- fail closed


@pytest.mark.browser
def test_proxy_env_refuses_to_start(tmp_path: Path, test_server: TestServer) -> None:
    code, recs, _ = _run(
        tmp_path,
        _mission([f"goto: {test_server.url('allowed.localhost', '/')}"]),
        environ={"HTTPS_PROXY": "http://proxy.example:3128", "PATH": "/usr/bin"},
    )
    assert code == 3 and recs == []
    assert test_server.requests == []


def _break(monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    from playwright.sync_api import BrowserContext

    def boom(*a: Any, **k: Any) -> Any:
        raise RuntimeError(f"{target} unavailable")

    if target == "route_web_socket":
        monkeypatch.setattr(BrowserContext, target, boom)
    elif target == "browser_fetch":
        from runner.browser.browser_fetch import BrowserFetch

        monkeypatch.setattr(BrowserFetch, "install", boom)
    elif target == "launch_args":
        import runner.browser.playwright_driver as pd

        monkeypatch.setattr(pd, "launch_args", boom)
    elif target == "gate":
        monkeypatch.setattr(assembly, "build_request_gate", lambda *a: None)


@pytest.mark.browser
@pytest.mark.parametrize("layer", ["browser_fetch", "route_web_socket", "launch_args", "gate"])
def test_a_layer_that_cannot_be_installed_refuses_the_run(
    layer: str, tmp_path: Path, test_server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _break(monkeypatch, layer)
    test_server.set_content("/", "hi")
    code, recs, _ = _run(tmp_path, _mission([f"goto: {test_server.url('allowed.localhost', '/')}"]))
    assert code == 3
    assert test_server.requests == []
    if layer == "launch_args":
        # Chromium launches while Presidio builds, before the evidence opens: a launch that cannot be
        # made safe refuses the run before anything is written (like a proxy in the environment).
        assert not (tmp_path / "ev" / "runs").exists() or not any((tmp_path / "ev" / "runs").iterdir())
        return
    exc = [r for r in recs if r["type"] == "exception_record"]
    assert exc and exc[0]["error_type"] == "SandboxUnavailable" and exc[0]["mitigation"] == "aborted"
    assert not [r for r in recs if r["type"] == "action_record"]


@pytest.mark.browser
def test_about_blank_popup_write_is_judged_by_the_browser_layer(
    chromium_path: Path, test_server: TestServer, evil_server: TestServer
) -> None:
    """An img document.write()n into an about:blank popup is judged by the gate like any subresource
    (once it was held unseen by Playwright's page-level interception, which the context route kept on):
    refused by the gate, the listed host (resolvable here, so only the gate stands in the way) receives
    nothing; allowed, it arrives. The request is put to the gate either way, once."""
    from runner.browser.playwright_driver import open_driver

    v = VECTORS["open_blank_write"]
    url = _serve(v, test_server, evil_server)
    for allow_evil in (False, True):
        evil_server.reset()
        seen: list[RequestInfo] = []

        def gate(r: RequestInfo, allow_evil: bool = allow_evil, seen: list[RequestInfo] = seen) -> GateVerdict:
            seen.append(r)
            return GateVerdict(allow_evil or "evil.localhost" not in r.url, "evil refused")

        cfg = SandboxConfig(chromium_path, ["allowed.localhost", "evil.localhost"], request_gate=gate)
        with open_driver(cfg) as d:
            d.perform("goto", {"url": url}, 10)
            d.perform("wait_for", {"seconds": 1}, 5)
        reached = [r for r in evil_server.requests if r.route.startswith("/v/open_blank_write/")]
        judged = [r for r in seen if "/v/open_blank_write/" in r.url]
        assert [(r.kind, r.resource_type) for r in judged] == [("subresource", "image")]
        assert bool(reached) is allow_evil
        if not allow_evil:
            assert evil_server.requests == [] and evil_server.connections == []
