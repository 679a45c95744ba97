"""The demo portal and the bundled demo mission, driven by plain Playwright on Debian Chromium.

Why: `warden demo` is the first thing a user runs, so the site must work in a real browser, stay
entirely local, and the demo mission must both validate and actually fit the site's pages.
"""

from __future__ import annotations

import http.client
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

import pytest
import yaml
from playwright.sync_api import Locator, Page, Route, expect, sync_playwright

from missions.demo_site import DEMO_HOST, DemoSite
from missions.model import TARGET_FIELDS, Mission, Step

CHROMIUM = "/usr/lib/chromium/chromium"
MISSION_FILE = Path(__file__).resolve().parents[2] / "missions" / "demo" / "expense-report.yaml"
DEMO_PASSWORD = "demo-password-not-a-secret"

T = TypeVar("T")


def in_own_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run a Playwright flow on a fresh thread.

    pytest-playwright's session fixtures (used by other test modules) leave an event loop on the main
    thread, and the sync API refuses to start where one exists; a worker thread has none.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result()


@dataclass
class Traffic:
    """What the browser asked for: every URL, and any request refused for leaving the allowed host."""

    urls: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


@contextmanager
def browser_page(allowed_host: str) -> Iterator[tuple[Page, Traffic]]:
    """Headless Debian Chromium that can reach only ``allowed_host``; every request is observed."""
    traffic = Traffic()
    lock = threading.Lock()

    def route(r: Route) -> None:
        url = r.request.url
        host = urlsplit(url).hostname or ""
        with lock:
            traffic.urls.append(url)
            if host != allowed_host:
                traffic.refused.append(url)
        if host == allowed_host:
            r.continue_()
        else:
            r.abort("blockedbyclient")

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            # Belt and braces: even a request that escaped the route could not resolve another host.
            args=[f"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE {allowed_host}"],
        )
        try:
            context = browser.new_context(service_workers="block", viewport={"width": 1280, "height": 800})
            context.route("**/*", route)
            page = context.new_page()
            page.set_default_timeout(10_000)
            yield page, traffic
            context.close()
        finally:
            browser.close()


def posts(site: DemoSite) -> list[str]:
    return [r.path for r in site.requests if r.method == "POST"]


# ------------------------------------------------------------------------ the real flow


def drive_flow(base_url: str) -> tuple[str, Traffic]:
    with browser_page(DEMO_HOST) as (page, traffic):
        page.goto(f"{base_url}/")
        expect(page).to_have_url(f"{base_url}/login")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.get_by_label("Username").fill("demo.employee")
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Sign in").click()

        expect(page).to_have_url(f"{base_url}/expenses/new")
        expect(page.get_by_role("heading", name="New expense")).to_be_visible()
        page.get_by_label("Employee name").fill("Jane Demo-Sample")
        page.get_by_label("Email").fill("jane.demo-sample@example.com")
        page.get_by_label("Phone").fill("+1 202 555 0147")
        page.get_by_test_id("iban").fill("GB82 WEST 1234 5698 7654 32")
        page.locator("#amount").fill("1200")
        expect(page.locator("#total")).to_have_text("EUR 1200.00")  # the page's own JS runs (CSP 'self')
        page.get_by_label("Category").select_option("travel")
        page.get_by_label("Description").fill("SYNTHETIC DEMO: train tickets")
        page.get_by_text("Expense policy").hover()
        expect(page.get_by_role("tooltip")).to_be_visible()
        page.get_by_label("I confirm this is accurate").check()
        page.get_by_role("button", name="Submit payment").click()

        expect(page.get_by_role("heading", name="Payment received")).to_be_visible()
        expect(page).to_have_url(re.compile(r"/expenses/EXP-\d{4}-0042/confirmation$"))
        confirmation = page.locator(".confirmation-id").inner_text().strip()
        expect(page.locator("#status")).to_have_text("Paid")
        page.locator("#archive").click()
        expect(page.locator("#status")).to_have_text("Archived")
        expect(page.locator("#archive")).to_have_count(0)
        return confirmation, traffic


def test_real_flow_through_every_page_stays_local() -> None:
    with DemoSite(password=DEMO_PASSWORD) as site:
        assert re.fullmatch(r"http://portal\.localhost:\d+", site.base_url)
        confirmation, traffic = in_own_thread(drive_flow, site.base_url)
        received = site.requests
        assert site.errors == []

    assert re.fullmatch(r"EXP-\d{4}-0042", confirmation)
    # The server got the three POSTs of the flow, with the form bodies the browser sent.
    assert [r.path for r in received if r.method == "POST"] == [
        "/login", "/expenses", f"/expenses/{confirmation}/archive",
    ]
    login = next(r for r in received if r.method == "POST" and r.path == "/login")
    assert login.form == {"username": "demo.employee", "password": DEMO_PASSWORD}
    claim = next(r for r in received if r.method == "POST" and r.path == "/expenses")
    assert claim.form["amount"] == "1200.00"  # formatted by the page's script on blur
    assert claim.form["iban"] == "GB82 WEST 1234 5698 7654 32"
    assert claim.form["category"] == "travel"
    assert claim.form["confirm"] == "on"
    assert "acme_session" in claim.cookies
    assert {"/static/style.css", "/static/app.js", "/static/favicon.svg"} <= {r.path for r in received}
    # Nothing went anywhere but the demo host: not in the browser, not at the server.
    assert traffic.urls, "the route saw no traffic"
    assert traffic.refused == []
    assert {urlsplit(u).hostname for u in traffic.urls} == {DEMO_HOST}
    assert {r.host.rsplit(":", 1)[0] for r in received} == {DEMO_HOST}
    assert all(r.status < 400 for r in received), [(r.path, r.status) for r in received if r.status >= 400]


# ------------------------------------------------------------------------ the bundled mission


def load_mission() -> Mission:
    return Mission.model_validate(yaml.safe_load(MISSION_FILE.read_text(encoding="utf-8")))


def test_demo_mission_is_valid_and_least_privilege() -> None:
    mission = load_mission()
    assert mission.mission == "expense-report"
    assert mission.owner
    assert mission.description
    assert mission.changelog
    assert set(mission.data_classes) == {"pii", "financial"}
    assert mission.boundaries.allowed_domains == [DEMO_HOST]
    assert mission.boundaries.allow_http is True
    kinds = [s.kind for s in mission.steps]
    assert set(mission.boundaries.allowed_actions) == set(kinds)  # exactly the kinds it uses
    assert 14 <= len(mission.steps) <= 18
    assert mission.boundaries.max_steps >= len(mission.steps)
    assert not mission.danger_zones
    assert mission.danger_zones_defaults
    assert not any(s.needs_approval for s in mission.steps)
    assert mission.secrets["PORTAL_PASSWORD"].domains == [DEMO_HOST]
    first = mission.steps[0].goto
    assert first is not None
    assert first.url.startswith("${vars.base_url}/")
    ways = {w for s in mission.steps for w in TARGET_FIELDS if getattr(s.args, w, None) is not None}
    assert ways >= {"selector", "text", "role", "label", "placeholder", "test_id"}
    raw = MISSION_FILE.read_text(encoding="utf-8")
    assert "${secrets.PORTAL_PASSWORD}" in raw
    assert DEMO_PASSWORD not in raw


_REF = re.compile(r"\$\{(vars|secrets)\.([A-Za-z_][A-Za-z0-9_]*)\}")


def locate(page: Page, args: Any) -> Locator:
    """The Playwright locator for a mission target (the same six ways the runner supports)."""
    if args.selector is not None:
        return page.locator(args.selector)
    if args.role is not None:
        return page.get_by_role(args.role, name=args.name, exact=args.exact or None)
    if args.label is not None:
        return page.get_by_label(args.label, exact=args.exact)
    if args.placeholder is not None:
        return page.get_by_placeholder(args.placeholder, exact=args.exact)
    if args.test_id is not None:
        return page.get_by_test_id(args.test_id)
    return page.get_by_text(args.text, exact=args.exact)


def run_mission_steps(mission: Mission, base_url: str, shots: Path) -> tuple[dict[str, str], Traffic, int]:
    """A minimal stand-in for the step loop: proves every step's target fits the site (strictly: one match)."""
    variables = {"base_url": base_url}
    secrets = {"PORTAL_PASSWORD": DEMO_PASSWORD}

    def sub(value: str) -> str:
        return _REF.sub(lambda m: (variables if m.group(1) == "vars" else secrets)[m.group(2)], value)

    done = 0
    with browser_page(DEMO_HOST) as (page, traffic):
        for step in mission.steps:
            run_step(page, step, sub, variables, shots)
            done += 1
    return variables, traffic, done


def run_step(page: Page, step: Step, sub: Callable[[str], str], variables: dict[str, str], shots: Path) -> None:
    a: Any = step.args
    kind = step.kind
    if kind == "goto":
        page.goto(sub(a.url))
    elif kind == "fill":
        locate(page, a).fill(sub(a.value))
    elif kind == "select":
        if a.value is not None:
            locate(page, a).select_option(value=sub(a.value))
        else:
            locate(page, a).select_option(label=sub(a.option_label))
    elif kind == "press":
        (locate(page, a).press if a.has_target() else page.keyboard.press)(a.key)
    elif kind in ("click", "hover", "check", "uncheck"):
        getattr(locate(page, a), kind)()
    elif kind == "wait_for":
        if a.text is not None:
            expect(page.get_by_text(sub(a.text))).to_be_visible()
        elif a.selector is not None:
            expect(page.locator(a.selector)).to_be_visible()
        else:
            raise AssertionError(f"wait_for form not used by the demo: {a}")
    elif kind == "extract":
        variables[a.as_] = locate(page, a).inner_text().strip()
    elif kind == "screenshot":
        page.screenshot(path=shots / f"{a.name}.png", full_page=a.full_page)
    elif kind == "assert_text":
        scope = locate(page, a) if [w for w in a.target_ways() if w != "text"] else page.locator("body")
        expect(scope).to_contain_text(sub(a.text))
    else:
        raise AssertionError(f"unexpected kind {kind}")


def test_demo_mission_steps_fit_the_site(tmp_path: Path) -> None:
    mission = load_mission()
    with DemoSite(password=DEMO_PASSWORD) as site:
        variables, traffic, done = in_own_thread(run_mission_steps, mission, site.base_url, tmp_path)
        expenses = site.expenses
        sent = posts(site)
        assert site.errors == []

    assert done == len(mission.steps)
    assert re.fullmatch(r"EXP-\d{4}-0042", variables["confirmation"])
    assert list(expenses) == [variables["confirmation"]]
    assert expenses[variables["confirmation"]].archived
    assert sent == ["/login", "/expenses", f"/expenses/{variables['confirmation']}/archive"]
    assert (tmp_path / "receipt.png").stat().st_size > 10_000
    assert traffic.refused == []


# ------------------------------------------------------------------------ the server itself


def call(site: DemoSite, method: str, path: str, form: dict[str, str] | None = None,
         cookie: str = "") -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=5)
    headers = {"Host": f"{DEMO_HOST}:{site.port}"}
    body = None
    if form is not None:
        body = urlencode(form)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if cookie:
        headers["Cookie"] = cookie
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


def sign_in(site: DemoSite) -> str:
    resp = call(site, "POST", "/login", {"username": "u", "password": DEMO_PASSWORD})
    assert resp.status == 303
    assert resp.getheader("Location") == "/expenses/new"
    set_cookie = resp.getheader("Set-Cookie") or ""
    assert "HttpOnly" in set_cookie
    return set_cookie.split(";", 1)[0]


def test_server_rules(capfd: pytest.CaptureFixture[str]) -> None:
    with DemoSite(password=DEMO_PASSWORD) as site:
        assert call(site, "GET", "/expenses/new").getheader("Location") == "/login"
        assert call(site, "POST", "/expenses", {"amount": "1"}).getheader("Location") == "/login"
        assert call(site, "POST", "/login", {"username": "u", "password": "wrong"}).status == 401
        assert call(site, "POST", "/login", {"username": "", "password": DEMO_PASSWORD}).status == 401
        assert call(site, "GET", "/static/../layout.html").status == 404
        assert call(site, "GET", "/static/%2e%2e/layout.html").status == 404
        resp = call(site, "GET", "/static/style.css")
        assert resp.status == 200
        assert "default-src 'self'" in (resp.getheader("Content-Security-Policy") or "")
        cookie = sign_in(site)
        assert call(site, "GET", "/expenses/new", cookie=cookie).status == 200
        assert call(site, "GET", "/expenses/EXP-2026-9999/confirmation", cookie=cookie).status == 404
        bad = {"employee_name": "A", "email": "a@example.com", "iban": "X", "amount": "-3", "category": "nope"}
        assert call(site, "POST", "/expenses", bad, cookie=cookie).status == 400
        good = {**bad, "amount": "12.50", "category": "meals", "confirm": "on"}
        resp = call(site, "POST", "/expenses", good, cookie=cookie)
        assert resp.status == 303
        assert re.fullmatch(r"/expenses/EXP-\d{4}-0042/confirmation", resp.getheader("Location") or "")
        assert len(site.requests) == 12
        assert site.errors == []
        assert site.requests[-1].form["amount"] == "12.50"
    out, err = capfd.readouterr()
    assert out == ""
    assert err == ""


def test_any_password_when_none_is_set_and_lifecycle() -> None:
    site = DemoSite()
    url = site.start()
    try:
        with pytest.raises(RuntimeError):
            site.start()
        assert url == site.base_url
        assert site.loopback_url.endswith(f":{site.port}")
        sign_in(site)
        # The log is safe under concurrent requests.
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(lambda _: call(site, "GET", "/login").status, range(40)))
        assert statuses == [200] * 40
        assert len(site.requests) == 41
        site.clear_requests()
        assert site.requests == []
    finally:
        site.stop()
    site.stop()  # twice is fine
    with pytest.raises(RuntimeError):
        _ = site.port
