"""Every problem at once: `warden check` and `warden run` list a mission's schema *and* semantic
problems in one go (file:line and key path each), exit 2, and nothing runs — the server hears
nothing and no run folder is made. The same mission with its problems fixed does run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runner.missions import base, run_dirs, serve_site, warden
from tests.server import TestServer

pytestmark = pytest.mark.browser

BROKEN = """\
version: 1
boundaries:
  allowed_domains: [allowed.localhost]
  allow_http: true
  allowed_actions: [goto, fill, extract]
steps:
  - goto: "{evil}/collect"
  - click: {{selector: '#a'}}
  - fill: {{selector: '#b', value: '${{secrets.TOKEN}}'}}
  - fill: {{selector: '#c', valeu: x}}
"""
# (line, key path, message fragment): a missing required key, a goto off the allowlist, a kind not
# allowed, an undeclared secret, a typo and the key it hides.
EXPECTED = [
    (1, "mission", "missing required key 'mission'"),
    (7, "steps.0.goto", "step 1 refused before the run: evil.localhost is not in allowed_domains"),
    (8, "steps.1.click", "step 2: 'click' is not in boundaries.allowed_actions"),
    (9, "steps.2.fill.value", "step 3: undeclared secret ${secrets.TOKEN}"),
    (10, "steps.3.fill.valeu", "step 4: unknown key 'valeu' (did you mean 'value'?)"),
    (10, "steps.3.fill.value", "step 4: missing required key 'value'"),
]


def _broken(tmp_path: Path, server: TestServer) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN.format(evil=server.url("evil.localhost", "").rstrip("/")), encoding="utf-8")
    return path


def _assert_all_listed(output: str, path: Path) -> None:
    lines = [ln.removeprefix("error ") for ln in output.splitlines() if str(path) in ln]
    for line, key, fragment in EXPECTED:
        prefix = f"{path}:{line}: [{key}] "
        assert any(ln.startswith(prefix) and fragment in ln for ln in lines), f"{prefix}{fragment}\n{output}"
    assert len(lines) == len(EXPECTED), output
    assert "Traceback" not in output
    assert f"{len(EXPECTED)} problem(s); nothing was executed." in output


@pytest.mark.parametrize("command", ["check", "run"])
def test_every_problem_is_listed_in_one_go_and_nothing_runs(
    tmp_path: Path, test_server: TestServer, command: str
) -> None:
    serve_site(test_server)
    path = _broken(tmp_path, test_server)
    ev = tmp_path / "ev"
    args = ["check", path] if command == "check" else ["run", path, "--evidence-dir", ev]
    done = warden(*args)
    assert done.returncode == 2, done.stdout + done.stderr
    _assert_all_listed(done.stdout + done.stderr, path)
    assert test_server.requests == []  # nothing executed: no browser, no request to either host
    assert run_dirs(ev) == []  # and nothing written


def test_the_same_mission_fixed_is_accepted_and_runs(tmp_path: Path, test_server: TestServer) -> None:
    """What the loader must allow: the fixed mission passes `check` and `run` opens its evidence.

    (Whether the page is then reached is the request guards' business, tested in their own files.)
    """
    serve_site(test_server)
    fixed = (
        "mission: fixed\nversion: 1\nboundaries:\n  allowed_domains: [allowed.localhost]\n  allow_http: true\n"
        "  allowed_actions: [goto]\nsteps:\n  - goto: \"${vars.base}/p1\"\n"
    )
    path = tmp_path / "fixed.yaml"
    path.write_text(fixed, encoding="utf-8")
    var = f"base={base(test_server)}"
    checked = warden("check", path, "--var", var)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    output = checked.stdout + checked.stderr
    assert "problem(s)" not in output and not [ln for ln in output.splitlines() if ln.startswith("error ")], output
    done = warden("run", path, "--var", var, "--evidence-dir", tmp_path / "ev", "--json")
    assert done.returncode != 2, done.stdout + done.stderr
    assert '"event": "run_started"' in done.stdout
    assert len(run_dirs(tmp_path / "ev")) == 1
