"""Fixture missions for the runner's end-to-end tests, and the pages they run against.

The YAML files here reach the test server through ``${vars.base}`` (``--var base=...``), so one
file works whatever port the session's server got. ``serve_site`` registers every page they use.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.server import RecordedRequest, TestServer

HERE = Path(__file__).resolve().parent
WARDEN = str(Path(sys.executable).parent / "warden")
HOST = "allowed.localhost"

FORM = """<!doctype html><html><head><title>Orders</title></head>
<body style="margin:0"><div style="height:2400px">
<h1>Order form</h1>
<form id="order" method="post" action="/save">
  <label for="name">Full name</label> <input id="name" name="name">
  <input name="city" placeholder="City">
  <input name="qty" data-testid="qty">
  <label for="country">Country</label>
  <select id="country" name="country"><option value="">--</option><option value="DE">Germany</option>
    <option value="FR">France</option></select>
  <select id="size" name="size"><option value="s">Small</option><option value="m">Medium</option>
    <option value="l">Large</option></select>
  <label><input type="checkbox" name="agree" value="yes"> I agree</label>
  <input type="checkbox" name="newsletter" value="yes" data-testid="newsletter" checked>
  <input id="ref" name="ref" value="R-77" readonly>
  <button type="submit">Save draft</button>
</form>
<div id="menu">Menu</div><div id="hovered"></div><div id="lastkey"></div>
</div>
<p>bottom of the form page</p>
<script>
document.getElementById('menu').addEventListener('mouseenter',
  () => { document.getElementById('hovered').textContent = 'menu opened'; });
document.addEventListener('keydown', (e) => {
  if (e.key === 'F2') document.getElementById('lastkey').textContent = 'pressed ' + e.key; });
setTimeout(() => { const d = document.createElement('div'); d.className = 'ready';
  d.textContent = 'Form ready'; document.body.appendChild(d); }, 300);
</script></body></html>"""

SAVED = """<!doctype html><html><body><h1>Saved</h1>
<p>Reference <span class="confirmation-id" data-id="C-4821">C-4821</span></p>
<form method="post" action="/search"><input id="q" name="q"></form>
</body></html>"""

SEARCHED = "<!doctype html><html><body><h1>Search done</h1></body></html>"
ITEM = "<!doctype html><html><body><h1>Item C-4821</h1><p>one widget</p></body></html>"
PLAIN = "<!doctype html><html><body><h1>Plain page {n}</h1><p>nothing to see</p></body></html>"
LATE = """<!doctype html><html><body><h1>Late page</h1>
<script>setTimeout(() => {
  const b = document.createElement('button'); b.id = 'late'; b.textContent = 'Late button';
  b.onclick = () => fetch('/clicked', {method: 'POST', body: 'clicked'});
  const i = document.createElement('input'); i.id = 'late-input'; i.name = 'late';
  const p = document.createElement('p'); p.textContent = 'Arrived late';
  document.body.append(b, i, p);
}, {delay});</script></body></html>"""
LINKS = """<!doctype html><html><body><h1>Links</h1>
<a id="out" href="{href}">elsewhere</a></body></html>"""


def serve_site(server: TestServer, *, late_ms: int = 3000) -> None:
    """Register every page the fixture missions use on ``server`` (host ``allowed.localhost``)."""
    server.set_content("/form", FORM)
    server.set_content("/save", SAVED)  # the form POSTs here; the body is in the server's log
    server.set_content("/search", SEARCHED)
    server.set_content("/item/C-4821", ITEM)
    for n in range(1, 6):
        server.set_content(f"/p{n}", PLAIN.format(n=n))
    server.set_content("/late", LATE.replace("{delay}", str(late_ms)))
    server.set_content("/clicked", "ok", content_type="text/plain")
    server.set_content("/links", LINKS.format(href=server.url("evil.localhost", "/stolen")))


def base(server: TestServer) -> str:
    return f"http://{HOST}:{server.port}"


def mission(name: str) -> Path:
    return HERE / f"{name}.yaml"


def posts(server: TestServer, route: str) -> list[RecordedRequest]:
    return [r for r in server.requests if r.method == "POST" and r.route == route]


def records(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "records.jsonl").read_bytes().splitlines() if line.strip()]


def run_dirs(evidence_dir: Path) -> list[Path]:
    runs = evidence_dir / "runs"
    return sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []


def only_run(evidence_dir: Path) -> Path:
    runs = run_dirs(evidence_dir)
    assert len(runs) == 1, runs
    return runs[0]


def _sigint_default() -> None:  # pragma: no cover - runs in the child
    # A child started from a shell without job control inherits SIGINT ignored: Python would then
    # never raise KeyboardInterrupt. Restore the default so Ctrl-C tests mean what they say.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def warden(
    *args: str | Path, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real ``warden`` console script as a subprocess (no terminal attached)."""
    environ = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    environ.pop("WARDEN_DEBUG", None)
    return subprocess.run(
        [WARDEN, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environ,
        stdin=subprocess.DEVNULL,
        preexec_fn=_sigint_default,
    )


def popen_warden(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    environ = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    environ.pop("WARDEN_DEBUG", None)
    return subprocess.Popen(
        [WARDEN, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
        stdin=subprocess.DEVNULL,
        preexec_fn=_sigint_default,
    )
