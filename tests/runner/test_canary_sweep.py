"""The canary sweep: runs that touch every canary everywhere leave none in any evidence byte.

Canaries sit in visible text, attributes, input values, URL query strings and request bodies; the
mission extracts some (attribute and text), echoes them into later steps (assert_text, a failing
assertion's error message), types them, and posts them. After each run every byte of the evidence
dir (records, run.json, mission.yaml, warden.db + WAL, report.html, PNG metadata) is swept for every
canary in every form (value, compact, URL/JSON/HTML-escaped, base64 at any alignment, md5/sha1/sha256).
Also: ``warden demo`` leaves no IBAN, e-mail or name of its demo data in its evidence; and a run whose
page, URL and approval target hold canaries, approved through the queue with a reason and an approver
name holding canaries, leaves none in any file nor in any column of any table of ``warden.db``
(read with sqlite3), neither while the request is pending nor once it is answered.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from runner.demo import DEMO_PASSWORD, run_demo
from runner.progress import JsonReporter
from tests.guards.canaries import (
    CANARIES,
    paragraph,
    scan_bytes,
    scan_bytes_for_canaries,
    scan_sqlite_for_canaries,
    sqlite_tables,
)
from tests.guards.pii_support import CARD, EMAIL, IBAN, PHONE, SSN, findings, mission, pii_block, records, run
from tests.server import TestServer

pytestmark = pytest.mark.browser

RECORD_ALL = pii_block(on_page="record", on_input="record", on_request="record")


def _sweep(path: Path, *also: str) -> None:
    hits = scan_bytes_for_canaries(path)
    if (path / "warden.db").exists():
        hits += scan_sqlite_for_canaries(path / "warden.db")
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


def test_a_queue_approval_of_a_pii_target_leaves_no_trace_in_any_file_or_table(
    tmp_path: Path, test_server: TestServer
) -> None:
    from runner.approvals.store import ApprovalStore

    button = f"Pay {EMAIL[0].value} Phone: {PHONE[0].value}"
    test_server.set_content("/pay", f"""<!doctype html><html><body>
<p>{paragraph([EMAIL[1], CARD[0], IBAN[0]])}</p>
<form method="post" action="/paid?iban={IBAN[1].value.replace(' ', '+')}">
  <button id="pay" type="submit" title="{SSN[0].value}">{button}</button>
</form></body></html>""")
    test_server.set_content("/paid", "<html><body><p>paid</p></body></html>")
    ev = tmp_path / "ev"
    url = test_server.url("allowed.localhost", f"/pay?email={EMAIL[2].value}&phone={PHONE[1].value}")
    seen: dict[str, object] = {}
    stop = threading.Event()

    def approver() -> None:  # another terminal: sweep the table while pending, then answer with PII
        while not stop.is_set():
            if (ev / "warden.db").exists():
                store = ApprovalStore(ev)
                try:
                    for row in store.requests(pending_only=True):
                        seen["pending"] = scan_sqlite_for_canaries(ev / "warden.db")
                        seen["pending_target"] = row.target_dict()
                        seen["answer"] = store.answer(
                            row.approval_id, "approved", EMAIL[3].value, "tester",
                            f"checked with {EMAIL[4].value}, {PHONE[2].value}",
                        ).won
                        return
                finally:
                    store.close()
            time.sleep(0.1)

    thread = threading.Thread(target=approver, daemon=True)
    thread.start()
    try:
        steps = [f"goto: {json.dumps(url)}", "click: {selector: '#pay', approve: true}", "wait_for: {text: paid}"]
        code, _res, recs, out = run(tmp_path, mission(steps, pii=RECORD_ALL), ev, approval="queue")
    finally:
        stop.set()
        thread.join(10)
    assert code == 0, out
    assert seen.get("answer") is True and seen.get("pending") == [], seen.get("pending")
    assert "«pii:EMAIL_ADDRESS»" in str(seen["pending_target"])  # the row was written, redacted
    assert test_server.wait_for_request("/paid").method == "POST"  # the approved click really happened
    (req,) = [r for r in recs if r["type"] == "approval_request"]
    (ans,) = [r for r in recs if r["type"] == "approval_record"]
    assert ans["decision"] == "approved" and ans["action_digest"] == req["action_digest"]
    tables = sqlite_tables(ev / "warden.db")
    assert tables.get("approvals") == 1 and tables.get("records", 0) > 0 and tables.get("runs") == 1
    _sweep(ev)
    assert scan_bytes(out.encode()) == []


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
