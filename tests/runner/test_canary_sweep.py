"""The canary sweep: runs that touch every canary everywhere leave none in any evidence byte.

Canaries sit in visible text, attributes, input values, URL query strings and request bodies; the
mission extracts some (attribute and text), echoes them into later steps (assert_text, a failing
assertion's error message), types them, and posts them. After each run every byte of the evidence
dir (records, run.json, mission.yaml, warden.db + WAL, report.html, PNG metadata) is swept for every
canary in every form (value, compact, URL/JSON/HTML-escaped, base64 at any alignment, md5/sha1/sha256).
Also: ``warden demo`` leaves no IBAN, e-mail or name of its demo data in its evidence.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from runner.demo import DEMO_PASSWORD, run_demo
from runner.progress import JsonReporter
from tests.guards.canaries import CANARIES, paragraph, scan_bytes, scan_bytes_for_canaries
from tests.guards.pii_support import CARD, EMAIL, IBAN, PHONE, SSN, findings, mission, pii_block, records, run
from tests.server import TestServer

pytestmark = pytest.mark.browser

RECORD_ALL = pii_block(on_page="record", on_input="record", on_request="record")


def _sweep(path: Path, *also: str) -> None:
    hits = scan_bytes_for_canaries(path)
    assert hits == [], "\n".join(f"{h.path} [{h.chunk}] {h.canary_id} as {h.form}" for h in hits[:30])
    for f in (p for p in path.rglob("*") if p.is_file()):
        for s in also:
            assert s.encode() not in f.read_bytes(), f"{s!r} in {f}"


def _serve(server: TestServer) -> None:
    attrs = " ".join(f'data-c{i}="{c.value}"' for i, c in enumerate(CANARIES))
    server.set_content("/all", f"""<!doctype html><html><body>
<p id="all">{paragraph()}</p>
<div id="attrs" {attrs} title="{SSN[3].value}">attributes</div>
<span id="mail">{EMAIL[2].value}</span>
<input id="pre" value="{IBAN[2].value}">
<form method="post" action="/submit"><label for="q">Note</label><input id="q" name="q">
<button id="go">Send</button></form>
<script>
  fetch('/api?phone=' + encodeURIComponent({json.dumps(PHONE[5].value)}), {{method: 'POST',
        headers: {{'Content-Type': 'application/json'}}, body: JSON.stringify({{card: {json.dumps(CARD[4].value)}}})}});
  navigator.sendBeacon('/beacon', 'ssn=' + {json.dumps(SSN[4].value)});
</script></body></html>""")
    server.set_content("/submit", "<html><body><p>received</p></body></html>")
    server.set_content("/api", "{}", content_type="application/json")
    server.set_content("/beacon", "")


def test_every_canary_everywhere_leaves_no_trace(tmp_path: Path, test_server: TestServer) -> None:
    _serve(test_server)
    ev = tmp_path / "ev"
    url = test_server.url("allowed.localhost", f"/all?email={EMAIL[3].value}&iban={IBAN[1].value.replace(' ', '+')}")
    steps = [
        f"goto: {json.dumps(url)}",
        "wait_for: {seconds: 0.5}",
        "extract: {selector: '#attrs', attribute: title, as: attr_ssn}",
        "extract: {selector: '#mail', as: mail}",
        "assert_text: {text: '${vars.mail}', selector: '#mail'}",
        f"fill: {{selector: '#q', value: {json.dumps(f'{CARD[3].value} for {EMAIL[4].value} / ${{vars.attr_ssn}}')}}}",
        "screenshot: {name: everything, full_page: true}",
        "click: {selector: '#go'}",
        "wait_for: {text: received}",
        "assert_text: {text: '${vars.attr_ssn}', timeout: 1}",  # fails: its error message quotes the SSN
    ]
    code, res, recs, out = run(tmp_path, mission(steps, pii=RECORD_ALL), ev)
    assert code == 4, out  # the last assertion fails on purpose (its message is redacted)
    assert res is not None and res.folder is not None
    # Everything really happened: the server got the PII (record policy), the findings were written.
    assert test_server.wait_for_request("/submit").method == "POST"
    assert test_server.wait_for_request("/beacon") and test_server.wait_for_request("/api")
    where = {f["where"] for f in findings(recs)}
    assert where == {"page", "input", "request"}
    seen = {f["entity_type"] for f in findings(recs)}
    assert seen >= {"EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS"}
    assert (res.folder / "report.html").exists() and (ev / "warden.db").exists()
    _sweep(ev)
    assert scan_bytes(out.encode()) == []  # the terminal (JSON progress) too


def _approve_when_asked(ev: Path, stop: threading.Event) -> None:
    """Another terminal's `warden approvals approve`: answers the demo's payment approval from the queue."""
    from runner.approvals.store import ApprovalStore

    while not stop.is_set():
        if (ev / "warden.db").exists():
            store = ApprovalStore(ev)
            try:
                for row in store.requests(pending_only=True):
                    store.answer(row.approval_id, "approved", "tester", "tester", "canary sweep test")
                    return
            finally:
                getattr(store, "close", lambda: None)()
        time.sleep(0.1)


def test_demo_leaves_no_demo_data_in_its_evidence(tmp_path: Path) -> None:
    ev = tmp_path / "ev"
    out = _Capture()
    stop = threading.Event()
    approver = threading.Thread(target=_approve_when_asked, args=(ev, stop), daemon=True)
    approver.start()
    try:
        code = run_demo(ev, JsonReporter(out), approval="queue")  # type: ignore[arg-type]
    finally:
        stop.set()
        approver.join(5)
    assert code == 0, out.text[-2000:]
    demo_data = ["Jane Demo-Sample", "jane.demo-sample@example.com", "GB82 WEST 1234 5698 7654 32",
                 "GB82WEST12345698765432", "jane.demo-sample%40example.com", DEMO_PASSWORD]
    _sweep(ev, *demo_data)
    for s in demo_data:
        assert s not in out.text
    folder = next((ev / "runs").iterdir())
    recs = records(folder)
    allowed = {f["entity_type"] for f in findings(recs) if f["action"] == "allowed"}
    assert {"EMAIL_ADDRESS", "IBAN_CODE"} <= allowed  # pii.allow: recorded, not gated


class _Capture:
    def __init__(self) -> None:
        self.text = ""

    def write(self, s: str) -> int:
        self.text += s
        return len(s)

    def flush(self) -> None:
        return None
