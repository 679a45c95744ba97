"""The PII guard end to end: real Presidio, real Chromium, the local multi-host test server.

Each policy (record | approve | block) at each scan point (on_page, on_input, on_request), secrets
bound to domains, fail closed, the evidence key. After EVERY run the whole evidence folder (records,
run.json, mission.yaml, warden.db + WAL, report.html, screenshots' metadata) is swept byte by byte
for every canary in every form (``ev`` fixture): zero hits. Blocks are proven by what the server
did NOT receive; masks by the screenshot's pixels.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from guards.pii.errors import PiiScanError
from guards.pii.keyed import key_id, parse_key
from guards.pii.scanner import PiiScanner
from runner.browser.playwright_driver import MASK_COLOR
from tests.guards.canaries import scan_bytes
from tests.guards.pii_support import (
    CARD,
    EMAIL,
    IBAN,
    PHONE,
    SSN,
    assert_no_canaries,
    decode_png,
    finding_records,
    findings,
    mission,
    pii_block,
    pixel,
    plain_page,
    run,
    serve,
)
from tests.server import Response, TestServer

pytestmark = pytest.mark.browser

MASK = tuple(int(MASK_COLOR[i:i + 2], 16) for i in (1, 3, 5))
WHITE = (255, 255, 255)
SECRET = "s3cr3t-Warden-canary-pw"  # a test secret


@pytest.fixture
def ev(tmp_path: Path) -> Iterator[Path]:
    """The evidence dir; after the test, every byte of it is swept for canaries (and the test secret)."""
    path = tmp_path / "ev"
    yield path
    if path.exists():
        assert_no_canaries(path, SECRET)


@pytest.fixture
def server(test_server: TestServer) -> TestServer:
    serve(test_server)
    return test_server


def _shots(result_folder: Path) -> list[Path]:
    return sorted((result_folder / "screenshots").glob("*.png"))


def _posted(server: TestServer, route: str) -> list[Any]:
    return [r for r in server.requests if r.route == route]


# ---------------------------------------------------------------- on_page


def test_page_record_records_every_entity_and_masks_the_screenshot(
    tmp_path: Path, ev: Path, server: TestServer
) -> None:
    code, res, recs, out = run(tmp_path, mission([f"goto: {server.url('allowed.localhost', '/page')}"]), ev)
    assert code == 0, out
    page = findings(recs, "page")
    assert {f["entity_type"] for f in page} >= {"EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN",
                                                "IBAN_CODE", "IP_ADDRESS"}
    assert all(f["action"] == "recorded" and f["policy"] == "record" for f in page)
    by_sel = {f["location"]["selector"] for f in page}
    assert {"#email", "#phone", "#card", "#ids", "#prefilled"} <= by_sel
    # One record for the page scan, however many values it found (issue 13), and no value in clear.
    (scan,) = finding_records(recs, "page")
    assert len(scan["values"]) == len(page) >= 6 and sum(scan["counts"].values()) == len(page)
    assert scan["location"] == {"page_url": server.url("allowed.localhost", "/page")}
    assert EMAIL[0].value not in json.dumps(recs) and CARD[0].value not in json.dumps(recs)
    # The keyed HMAC: the key lives in the evidence dir ROOT, mode 0600, never in a run folder or record.
    key_file = ev / ".warden-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert res is not None and res.folder is not None
    assert not list(res.folder.rglob(".warden-key"))
    kid = key_id(parse_key(key_file.read_text().strip()))
    assert {f["key_id"] for f in page} == {kid}
    assert key_file.read_text().strip().encode() not in (res.folder / "records.jsonl").read_bytes()
    # The screenshot: each PII box is the mask colour, a plain area is not.
    png = decode_png(_shots(res.folder)[-1].read_bytes())
    for y in (40, 90, 140, 190, 290):  # #email, #phone, #card, #ids, #prefilled
        assert pixel(png, 300, y) == MASK, y
    assert pixel(png, 1000, 700) == WHITE
    assert pixel(png, 300, 420) != MASK  # "Nothing to see here"
    assert scan_bytes(out.encode()) == []  # the terminal too


def test_page_block_stops_after_the_step(tmp_path: Path, ev: Path, server: TestServer) -> None:
    steps = [f"goto: {server.url('allowed.localhost', '/page')}", f"goto: {server.url('allowed.localhost', '/done')}"]
    code, _, recs, _ = run(tmp_path, mission(steps, pii=pii_block(on_page="block")), ev)
    assert code == 3
    assert _posted(server, "/done") == []  # the next step never ran
    assert {f["action"] for f in findings(recs, "page")} == {"blocked"}
    assert any(r["type"] == "exception_record" and "pii" in r["message"].lower() for r in recs)


def test_page_approve_is_a_stop_without_a_page_approval(tmp_path: Path, ev: Path, server: TestServer) -> None:
    steps = [f"goto: {server.url('allowed.localhost', '/page')}", f"goto: {server.url('allowed.localhost', '/done')}"]
    code, _, recs, _ = run(tmp_path, mission(steps, pii=pii_block(on_page="approve")), ev)
    assert code == 3
    assert _posted(server, "/done") == []
    assert {f["action"] for f in findings(recs, "page")} == {"approval_required"}


def test_page_allowed_entity_is_recorded_not_gated(tmp_path: Path, ev: Path, server: TestServer) -> None:
    server.set_content("/mail", f"<p>Email: {EMAIL[0].value}</p>")
    steps = [f"goto: {server.url('allowed.localhost', '/mail')}", f"goto: {server.url('allowed.localhost', '/done')}"]
    code, _, recs, _ = run(tmp_path, mission(steps, pii=pii_block(on_page="block", allow=["EMAIL_ADDRESS"])), ev)
    assert code == 0
    assert [f["action"] for f in findings(recs, "page")] == ["allowed"]


# ---------------------------------------------------------------- on_input


def _fill_steps(server: TestServer, value: str) -> list[str]:
    return [
        f"goto: {server.url('allowed.localhost', '/plain')}",
        f"fill: {{selector: '#q', value: {json.dumps(value)}}}",
        "screenshot: {name: filled}",
        "click: {selector: '#go'}",
        "wait_for: {text: received}",
    ]


def test_input_record_types_records_and_masks_the_field(tmp_path: Path, ev: Path, server: TestServer) -> None:
    steps = _fill_steps(server, f"ref {CARD[0].value}")
    code, res, recs, out = run(tmp_path, mission(steps, pii=pii_block(on_input="record", on_request="record")), ev)
    assert code == 0, out
    inp = findings(recs, "input")
    assert [(f["entity_type"], f["action"], f["location"]["target"]) for f in inp] == [
        ("CREDIT_CARD", "recorded", {"selector": "#q"})
    ]
    assert res is not None and res.folder is not None
    png = decode_png(next(p for p in _shots(res.folder) if "filled" in p.name).read_bytes())
    assert pixel(png, 150, 165) == MASK  # the field holding the card number
    assert pixel(png, 900, 165) == WHITE
    assert CARD[0].value.encode() in _posted(server, "/submit")[0].body  # record = allowed: it was sent


def test_input_block_never_types_the_value(tmp_path: Path, ev: Path, server: TestServer) -> None:
    steps = _fill_steps(server, SSN[0].value)
    code, _, recs, _ = run(tmp_path, mission(steps, pii=pii_block(on_input="block", on_request="record")), ev)
    assert code == 3
    assert _posted(server, "/submit") == []
    assert [f["action"] for f in findings(recs, "input")] == ["blocked"]
    deny = [r for r in recs if r["type"] == "decision_record" and r.get("step") == 2]
    assert deny[0]["decision"] == "deny" and any(c["guard"] == "pii.input" for c in deny[0]["checks"])
    assert not any(r["type"] == "action_record" and r.get("step") == 2 for r in recs)  # no intent: not typed


def test_input_approve_goes_to_the_approval_gate(tmp_path: Path, ev: Path, server: TestServer) -> None:
    steps = _fill_steps(server, f"call {PHONE[4].value}")
    code, _, recs, _ = run(tmp_path, mission(steps, pii=pii_block(on_input="approve")), ev, approval="deny")
    assert code == 3
    assert _posted(server, "/submit") == []
    assert [f["action"] for f in findings(recs, "input")] == ["approval_required"]
    decision = next(r for r in recs if r["type"] == "decision_record" and r.get("step") == 2)
    assert decision["decision"] == "require_approval"


def test_input_without_pii_is_allowed(tmp_path: Path, ev: Path, server: TestServer) -> None:
    code, _, recs, _ = run(tmp_path, mission(_fill_steps(server, "order 42"), pii=pii_block(on_input="block")), ev)
    assert code == 0
    assert findings(recs, "input") == []
    assert _posted(server, "/submit")[0].body == b"q=order+42"


# ---------------------------------------------------------------- on_request


def test_request_block_query_string_never_arrives(tmp_path: Path, ev: Path, server: TestServer) -> None:
    url = server.url("allowed.localhost", f"/search?email={EMAIL[1].value.replace('+', '%2B')}")
    code, _, recs, _ = run(tmp_path, mission([f"goto: {json.dumps(url)}"]), ev)
    assert code == 3
    assert _posted(server, "/search") == []
    req = findings(recs, "request")
    assert req and req[0]["location"]["host"] == "allowed.localhost" and req[0]["action"] == "blocked"


def test_request_record_lets_it_through(tmp_path: Path, ev: Path, server: TestServer) -> None:
    url = server.url("allowed.localhost", f"/search?iban={IBAN[0].value}")
    code, _, recs, _ = run(tmp_path, mission([f"goto: {json.dumps(url)}"], pii=pii_block(on_request="record")), ev)
    assert code == 0
    assert len(_posted(server, "/search")) == 1
    req = findings(recs, "request")
    # The navigation's query, once; Chromium's own /favicon.ico request then carries the same value in
    # its Referer (a PII-bearing header to the same host): recorded too, never blocked.
    assert [f["action"] for f in req if f["location"]["request_kind"] == "navigation"] == ["recorded"]
    assert {f["action"] for f in req} == {"recorded"}
    assert all(f["location"]["source"].startswith("header[referer]") for f in req
               if f["location"]["request_kind"] != "navigation")


def test_request_block_form_post_never_arrives(tmp_path: Path, ev: Path, server: TestServer) -> None:
    steps = _fill_steps(server, EMAIL[4].value)
    code, _, recs, _ = run(tmp_path, mission(steps, pii=pii_block(on_input="record", on_request="block")), ev)
    assert code == 3
    assert _posted(server, "/submit") == []
    assert any(f["action"] == "blocked" and f["location"]["method"] == "POST" for f in findings(recs, "request"))


def test_request_block_fetch_body_and_beacon(tmp_path: Path, ev: Path, server: TestServer) -> None:
    script = f"""<script>
    const phone = {json.dumps(PHONE[0].value)};
    window.addEventListener('load', () => navigator.sendBeacon('/beacon', 'phone=' + encodeURIComponent(phone)));
    document.getElementById('go').addEventListener('click', (e) => {{ e.preventDefault();
      fetch('/api', {{method: 'POST', headers: {{'Content-Type': 'application/json'}},
                      body: JSON.stringify({{card: {json.dumps(CARD[2].value)}}})}}); }});
    </script>"""
    server.set_content("/js", plain_page(script))
    steps = [f"goto: {server.url('allowed.localhost', '/js')}", "wait_for: {seconds: 0.5}", "click: {selector: '#go'}",
             "wait_for: {seconds: 0.5}"]
    code, _, recs, _ = run(tmp_path, mission(steps, pii=pii_block(on_request="block")), ev)
    assert code == 3
    assert _posted(server, "/beacon") == [] and _posted(server, "/api") == []
    assert "PHONE_NUMBER" in {f["entity_type"] for f in findings(recs, "request")}


def test_request_block_fetch_body_blocks_the_run(tmp_path: Path, ev: Path, server: TestServer) -> None:
    script = f"""<script>document.getElementById('go').addEventListener('click', (e) => {{ e.preventDefault();
      fetch('/api', {{method: 'POST', headers: {{'Content-Type': 'application/json'}},
                      body: JSON.stringify({{card: {json.dumps(CARD[2].value)}}})}}); }});</script>"""
    server.set_content("/js", plain_page(script))
    steps = [f"goto: {server.url('allowed.localhost', '/js')}", "click: {selector: '#go'}", "wait_for: {seconds: 1}",
             f"goto: {server.url('allowed.localhost', '/done')}"]
    code, _, recs, _ = run(tmp_path, mission(steps, pii=pii_block(on_request="block")), ev)
    assert code == 3
    assert _posted(server, "/api") == [] and _posted(server, "/done") == []
    req = findings(recs, "request")
    assert req and req[0]["entity_type"] == "CREDIT_CARD" and req[0]["location"]["source"].startswith("body")


def test_request_approve_is_a_refusal(tmp_path: Path, ev: Path, server: TestServer) -> None:
    url = server.url("allowed.localhost", f"/search?ssn={SSN[2].value}")
    code, _, recs, _ = run(tmp_path, mission([f"goto: {json.dumps(url)}"], pii=pii_block(on_request="approve")), ev)
    assert code == 3
    assert _posted(server, "/search") == []
    assert findings(recs, "request")[0]["policy"] == "approve"


def test_request_allowed_entity_goes_through(tmp_path: Path, ev: Path, server: TestServer) -> None:
    url = server.url("allowed.localhost", f"/search?email={EMAIL[0].value}")
    pii = pii_block(on_request="block", allow=["EMAIL_ADDRESS"])
    code, _, recs, _ = run(tmp_path, mission([f"goto: {json.dumps(url)}"], pii=pii), ev)
    assert code == 0
    assert len(_posted(server, "/search")) == 1
    req = findings(recs, "request")
    # The navigation's query, once; Chromium's /favicon.ico request repeats it in its Referer: allowed too.
    assert [f["action"] for f in req if f["location"]["request_kind"] == "navigation"] == ["allowed"]
    assert {f["action"] for f in req} == {"allowed"}
    assert all(f["location"]["source"].startswith("header[referer]") for f in req
               if f["location"]["request_kind"] != "navigation")


# ---------------------------------------------------------------- secrets


def _secret_mission(server: TestServer, page_host: str, extra_steps: list[str] | None = None) -> str:
    steps = [
        f"goto: {server.url(page_host, '/plain')}",
        "fill: {selector: '#q', value: '${secrets.PW}'}",
        "screenshot: {name: typed}",
        *(extra_steps or ["click: {selector: '#go'}", "wait_for: {text: received}"]),
    ]
    secrets = "secrets:\n  PW: {env: WARDEN_TEST_PW, domains: [allowed.localhost]}\n"
    return mission(steps, secrets=secrets, domains=("allowed.localhost", "other.localhost"))


def test_secret_typed_and_sent_on_its_host(tmp_path: Path, ev: Path, server: TestServer) -> None:
    code, res, _, out = run(tmp_path, _secret_mission(server, "allowed.localhost"), ev,
                            environ={"WARDEN_TEST_PW": SECRET})
    assert code == 0, out
    assert SECRET.encode() in _posted(server, "/submit")[0].body
    assert res is not None and res.folder is not None
    assert "«secret:PW»" in (res.folder / "records.jsonl").read_text()
    png = decode_png(next(p for p in _shots(res.folder) if "typed" in p.name).read_bytes())
    assert pixel(png, 150, 165) == MASK


def test_secret_never_typed_on_another_host(tmp_path: Path, ev: Path, server: TestServer) -> None:
    code, _, recs, _ = run(tmp_path, _secret_mission(server, "other.localhost"), ev, environ={"WARDEN_TEST_PW": SECRET})
    assert code == 3
    assert _posted(server, "/submit") == []
    deny = next(r for r in recs if r["type"] == "decision_record" and r.get("step") == 2)
    assert deny["decision"] == "deny" and any(c["guard"] == "secrets.input" for c in deny["checks"])


@pytest.mark.parametrize("how", ["body", "basic-auth", "query", "base64url-header", "query-preflighted"])
def test_secret_never_sent_to_another_host(tmp_path: Path, ev: Path, server: TestServer, how: str) -> None:
    other = server.url("other.localhost", "/api")
    send = {
        "body": f"fetch({json.dumps(other)}, {{method: 'POST', body: JSON.stringify({{pw: v}})}})",
        "basic-auth": f"fetch({json.dumps(other)}, {{headers: {{Authorization: 'Basic ' + btoa('bot:' + v)}}}})",
        "query": f"fetch({json.dumps(other)} + '?pw=' + encodeURIComponent(v))",
        # a harmless custom header makes Chromium send a CORS preflight first, to the same URL: its
        # query carries the secret before the request itself does
        "query-preflighted": f"fetch({json.dumps(other)} + '?pw=' + encodeURIComponent(v), "
                             "{headers: {'X-Session': '1'}})",
        # a custom header, base64url without padding, after a prefix that shifts the alignment
        "base64url-header": f"fetch({json.dumps(other)}, {{headers: {{'X-Session': "
                            "btoa('ab' + v).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '')}})",
    }[how]
    script = f"""<script>document.getElementById('go').addEventListener('click', (e) => {{ e.preventDefault();
      const v = document.getElementById('q').value; {send}; }});</script>"""
    server.set_content("/plain", plain_page(script))
    # other.localhost grants CORS to any origin and header, so a custom header's preflight succeeds and
    # Chromium does send the request itself: what stops the secret must be Warden, not the CORS check.
    cors = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, POST",
            "Access-Control-Allow-Headers": "authorization, x-session, content-type"}
    server.set_route("/api", lambda _req: Response(status=204, headers=cors))
    steps = ["click: {selector: '#go'}", "wait_for: {seconds: 1}", f"goto: {server.url('allowed.localhost', '/done')}"]
    code, _, recs, _ = run(tmp_path, _secret_mission(server, "allowed.localhost", steps), ev,
                           environ={"WARDEN_TEST_PW": SECRET})
    assert code == 3
    # Only a preflight may arrive (it names the headers, never their values); the request is refused.
    arrived = server.requests_for("other.localhost")
    assert all(r.method == "OPTIONS" and "authorization" not in r.headers and "x-session" not in r.headers
               for r in arrived)
    assert not any(SECRET.encode() in (r.path.encode() + r.body) for r in arrived)
    assert _posted(server, "/done") == []
    refusal = next(r for r in recs if r["type"] == "decision_record" and r["guard"] == "secrets.request")
    assert refusal["decision"] == "deny" and refusal["subject"]["host"] == "other.localhost"
    assert "PW" in refusal["rationale"]


# ---------------------------------------------------------------- fail closed


def _boom(*a: Any, **k: Any) -> Any:
    raise PiiScanError("PII scan exceeded its 10.0s timeout")


def test_input_scan_failure_blocks_the_action(
    tmp_path: Path, ev: Path, server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(PiiScanner, "scan_text", _boom)
    code, _, recs, _ = run(tmp_path, mission(_fill_steps(server, "order 42"), pii=pii_block(on_input="record")), ev)
    assert code == 3
    assert _posted(server, "/submit") == []
    exc = [r for r in recs if r["type"] == "exception_record"]
    assert exc and "timeout" in exc[-1]["message"] and exc[-1]["mitigation"] == "blocked"


def test_request_scan_failure_refuses_the_request(
    tmp_path: Path, ev: Path, server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(PiiScanner, "scan_request", _boom)
    code, _, recs, _ = run(tmp_path, mission([f"goto: {server.url('allowed.localhost', '/plain')}"],
                                             pii=pii_block(on_request="record")), ev)
    assert code == 3
    assert _posted(server, "/plain") == []
    assert any(r["type"] == "exception_record" and "fail closed" in r["message"] for r in recs)


def test_page_scan_failure_stops_and_takes_no_screenshot(
    tmp_path: Path, ev: Path, server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(PiiScanner, "scan_page", _boom)
    steps = [f"goto: {server.url('allowed.localhost', '/page')}", f"goto: {server.url('allowed.localhost', '/done')}"]
    code, res, recs, _ = run(tmp_path, mission(steps), ev)
    assert code == 3
    assert _posted(server, "/done") == []
    assert res is not None and res.folder is not None and _shots(res.folder) == []
    assert any(r["type"] == "exception_record" and r["category"] == "pii" for r in recs)


# ---------------------------------------------------------------- engine, key, commands


def test_person_without_a_model_is_exit_2_before_anything(tmp_path: Path, ev: Path, server: TestServer) -> None:
    text = mission([f"goto: {server.url('allowed.localhost', '/page')}"],
                   pii=pii_block(entities=["EMAIL_ADDRESS", "PERSON"]))
    code, _, _, _ = run(tmp_path, text, ev)
    assert code == 2
    assert not (ev / "runs").exists() and server.requests == []
    (tmp_path / "m.yaml").write_text(text)
    r = subprocess.run([sys.executable, "-m", "runner.cli", "check", str(tmp_path / "m.yaml")],
                       capture_output=True, text=True, check=False, cwd=Path(__file__).parents[2])
    err = " ".join(r.stderr.split())
    assert r.returncode == 2
    assert "PERSON needs an NER model" in err and "pii.nlp_model" in err


def test_a_named_model_that_is_not_installed_is_a_clear_error(tmp_path: Path, ev: Path, server: TestServer) -> None:
    text = mission([f"goto: {server.url('allowed.localhost', '/page')}"], pii=pii_block(nlp_model="en_core_web_zz"))
    code, _, _, _ = run(tmp_path, text, ev)
    assert code == 2
    (tmp_path / "m.yaml").write_text(text)
    r = subprocess.run([sys.executable, "-m", "runner.cli", "check", str(tmp_path / "m.yaml")],
                       capture_output=True, text=True, check=False, cwd=Path(__file__).parents[2])
    err = " ".join(r.stderr.split())
    assert r.returncode == 2 and "en_core_web_zz" in err and "never downloads" in err


def test_evidence_key_from_the_environment(tmp_path: Path, ev: Path, server: TestServer) -> None:
    key = os.urandom(32).hex()
    code, _, recs, _ = run(tmp_path, mission([f"goto: {server.url('allowed.localhost', '/page')}"]), ev,
                           environ={"WARDEN_EVIDENCE_KEY": key})
    assert code == 0
    assert not (ev / ".warden-key").exists()
    assert {f["key_id"] for f in findings(recs)} == {key_id(bytes.fromhex(key))}


def test_check_and_evidence_commands_do_not_import_presidio(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(mission(["goto: http://allowed.localhost/"]))
    code = (
        "import sys\nfrom runner.cli import cli\n"
        f"for args in (['check', {str(path)!r}], ['evidence', 'list', '--evidence-dir', {str(tmp_path / 'e')!r}]):\n"
        "    try:\n        cli.main(args, standalone_mode=False)\n    except SystemExit:\n        pass\n"
        "bad = [m for m in sys.modules if m.startswith(('presidio', 'spacy', 'phonenumbers'))]\n"
        "print(bad)\nsys.exit(bool(bad))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                       cwd=Path(__file__).parents[2])
    assert r.returncode == 0, r.stdout + r.stderr
