"""Helpers for the PII integration tests: canary pages, missions, in-process runs, the evidence sweep."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from kernel.errors import WardenError
from runner.progress import JsonReporter
from runner.run import RunOptions, RunResult, run_mission
from tests.guards.canaries import by_entity, scan_bytes_for_canaries
from tests.png import decode_png, pixel  # noqa: F401 - re-exported for PII tests
from tests.server import TestServer

EMAIL = by_entity("EMAIL_ADDRESS")
PHONE = by_entity("PHONE_NUMBER")
CARD = by_entity("CREDIT_CARD")
SSN = by_entity("US_SSN")
IBAN = by_entity("IBAN_CODE")
IP = by_entity("IP_ADDRESS")

BOX = "position:absolute;left:20px;width:600px;height:40px;margin:0;font:20px sans-serif;"


def canary_page() -> str:
    """Canaries in visible text (fixed boxes, to check mask pixels), attributes and a prefilled input."""
    return f"""<!doctype html><html><head><title>Customer record</title></head>
<body style="margin:0;background:#ffffff">
<p id="email" style="{BOX}top:20px">Email: {EMAIL[0].value}</p>
<p id="phone" style="{BOX}top:70px">Phone: {PHONE[0].value}</p>
<div id="card" style="{BOX}top:120px">Card number: {CARD[1].value}</div>
<div id="ids" style="{BOX}top:170px">SSN: {SSN[0].value} IBAN: {IBAN[0].value} IP address: {IP[0].value}</div>
<span id="attrs" style="{BOX}top:220px" title="{SSN[1].value}" data-iban="{IBAN[1].value}"
      aria-label="{EMAIL[1].value}">hover me</span>
<input id="prefilled" style="{BOX}top:270px" value="{EMAIL[2].value}">
<form id="f" method="post" action="/submit" style="{BOX}top:330px">
  <label for="q">Reference</label><input id="q" name="q" style="width:300px;height:30px">
  <label for="pw">Password</label><input id="pw" name="pw" type="password">
  <button id="go" type="submit">Send</button>
</form>
<div id="plain" style="{BOX}top:400px">Nothing to see here</div>
</body></html>"""


def plain_page(extra: str = "") -> str:
    return f"""<!doctype html><html><body style="margin:0;background:#ffffff">
<div id="plain" style="{BOX}top:20px">Nothing to see here</div>
<form id="f" method="post" action="/submit">
  <label for="q" style="position:absolute;left:20px;top:100px">Reference</label>
  <input id="q" name="q" style="position:absolute;left:20px;top:150px;width:300px;height:30px">
  <button id="go" type="submit" style="position:absolute;left:20px;top:220px">Send</button>
</form>{extra}</body></html>"""


def serve(server: TestServer) -> None:
    server.set_content("/page", canary_page())
    server.set_content("/plain", plain_page())
    server.set_content("/done", "<html><body><p>done</p></body></html>")
    server.set_content("/submit", "<html><body><p>received</p></body></html>")
    server.set_content("/api", "{}", content_type="application/json")
    server.set_content("/beacon", "")
    server.set_content("/search", "<html><body><p>results</p></body></html>")


def mission(
    steps: list[str], *, pii: str = "", secrets: str = "", domains: tuple[str, ...] = ("allowed.localhost",),
    actions: str = "[goto, fill, click, press, select, wait_for, screenshot, extract, assert_text]",
) -> str:
    body = "\n".join(f"  - {s}" for s in steps)
    doms = ", ".join(domains)
    return f"""mission: pii-check
version: 1
data_classes: [pii]
boundaries:
  allowed_domains: [{doms}]
  allow_http: true
  allowed_actions: {actions}
  timeout: 60
danger_zones_defaults: false
{pii}{secrets}steps:
{body}
"""


def pii_block(**kw: Any) -> str:
    lines = ["pii:"] + [f"  {k}: {json.dumps(v)}" for k, v in kw.items()]
    return "\n".join(lines) + "\n"


def run(
    tmp: Path, text: str, evidence: Path, *, environ: dict[str, str] | None = None, **kw: Any
) -> tuple[int, RunResult | None, list[dict[str, Any]], str]:
    """Run in-process with the JSON reporter; (exit code, result, records, terminal output)."""
    path = tmp / "mission.yaml"
    path.write_text(text)
    out = _Capture()
    env = {"PATH": "/usr/bin:/bin", **(environ or {})}
    kw.setdefault("approval", "deny")
    try:
        result = run_mission(RunOptions(mission_path=path, evidence_dir=evidence, environ=env, **kw), JsonReporter(out))  # type: ignore[arg-type]
    except WardenError as exc:
        return exc.exit_code, None, [], str(exc)
    return result.exit_code, result, records(result.folder) if result.folder else [], out.text


class _Capture:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, s: str) -> int:
        self.parts.append(s)
        return len(s)

    def flush(self) -> None:
        return None

    @property
    def text(self) -> str:
        return "".join(self.parts)


def records(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines() if line.strip()]


_RANK = {"allowed": 0, "recorded": 1, "approval_required": 2, "blocked": 3}


def finding_records(recs: list[dict[str, Any]], where: str | None = None) -> list[dict[str, Any]]:
    """The ``pii_finding`` records (one per scan), each checked for the v2 shape: its entity counts
    are its values', its action the strongest of theirs, its values keyed fingerprints."""
    out = [r for r in recs if r["type"] == "pii_finding" and (where is None or r["where"] == where)]
    for r in out:
        assert r["schema"] == "warden.pii_finding/3", r["schema"]
        assert r["values"], r
        assert r["counts"] == dict(Counter(v["entity_type"] for v in r["values"])), r
        assert r["action"] == max((v["action"] for v in r["values"]), key=_RANK.__getitem__), r
        assert all(len(v["value_hmac"]) == 64 and "value" not in v for v in r["values"]), r
        assert len({(v["entity_type"], v["value_hmac"], v["action"]) for v in r["values"]}) == len(r["values"]), r
    return out


def findings(recs: list[dict[str, Any]], where: str | None = None) -> list[dict[str, Any]]:
    """Every value found, flattened out of its scan's record: entity, score, preview, action, and the
    location as the record's place plus the value's own (selector, source), with where/step/policy."""
    return [
        {**v, "location": {**r["location"], **v["location"]}, "where": r["where"], "step": r["step"],
         "policy": r["policy"], "key_id": r["key_id"], "record_id": r["record_id"]}
        for r in finding_records(recs, where) for v in r["values"]
    ]


def assert_no_canaries(path: Path, *also: str) -> None:
    """Every byte under ``path``: no canary in any form; nor any of ``also`` (e.g. a secret) raw."""
    hits = scan_bytes_for_canaries(path)
    assert hits == [], "\n".join(f"{h.path} [{h.chunk}] {h.canary_id} as {h.form} @{h.offset}" for h in hits[:20])
    for f in (p for p in Path(path).rglob("*") if p.is_file()):
        data = f.read_bytes()
        for s in also:
            assert s.encode() not in data, f"{s!r} found in {f}"


