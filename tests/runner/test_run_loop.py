"""The step loop end to end: every action kind and target form, variables, and the retry policy.

Real parts only: the ``warden`` console script (or ``run_mission`` in-process where the CLI is not
the point), Debian Chromium, the local multi-host test server. Effects are proven by what the
server received (form POSTs) and by the evidence records.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from kernel.errors import WardenError
from runner.progress import QuietReporter
from runner.run import RunOptions, RunResult, run_mission
from tests.runner.missions import base, mission, only_run, posts, records, serve_site, warden
from tests.server import TestServer

pytestmark = pytest.mark.browser


def run_inprocess(name: str, server: TestServer, evidence_dir: Path, **cli_vars: str) -> RunResult:
    opts = RunOptions(
        mission_path=mission(name), evidence_dir=evidence_dir, cli_vars={"base": base(server), **cli_vars}
    )
    return run_mission(opts, QuietReporter())


def outcomes(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in recs if r["type"] == "action_record" and r["phase"] == "outcome"]


def intents(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in recs if r["type"] == "action_record" and r["phase"] == "intent"]


def retry_records(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in recs if r["type"] == "exception_record" and r["mitigation"] == "retried"]


# --------------------------------------------------------------------------- every action kind


@pytest.fixture
def all_kinds(tmp_path: Path, test_server: TestServer) -> tuple[Any, list[dict[str, Any]], TestServer]:
    serve_site(test_server)
    ev = tmp_path / "ev"
    done = warden("run", mission("all_kinds"), "--var", f"base={base(test_server)}", "--evidence-dir", ev)
    assert done.returncode == 0, done.stdout + done.stderr
    return done, records(only_run(ev)), test_server


def test_every_kind_and_target_form_reaches_the_server(all_kinds: tuple[Any, Any, TestServer]) -> None:
    _, _, server = all_kinds
    saved = posts(server, "/save")
    assert len(saved) == 1, [r.path for r in server.requests]
    form = parse_qs(saved[0].body.decode())
    assert form == {
        "name": ["Widget Co"],  # fill by label
        "city": ["Gotham"],  # fill by placeholder
        "qty": ["3"],  # fill by test_id
        "country": ["DE"],  # select by value (field found by label)
        "size": ["l"],  # select by option label "Large"
        "agree": ["yes"],  # check
        "ref": ["R-77"],
    }, form  # "newsletter" absent: unchecked
    searched = posts(server, "/search")  # press Enter on a target submits its form
    assert len(searched) == 1
    # extract (inner text) + extract (input value) used later through ${vars.X}
    assert parse_qs(searched[0].body.decode()) == {"q": ["C-4821/R-77"]}
    # extract (attribute) used in a later goto's URL
    assert [r.method for r in server.requests if r.route == "/item/C-4821"] == ["GET"]


def test_every_kind_has_an_ok_outcome_record(all_kinds: tuple[Any, list[dict[str, Any]], Any]) -> None:
    _, recs, _ = all_kinds
    outs = outcomes(recs)
    assert [o["step"] for o in outs] == list(range(1, 29))
    assert all(o["outcome"] == "ok" for o in outs), [(o["step"], o["outcome"], o.get("error")) for o in outs]
    kinds = Counter(o["kind"] for o in outs)
    assert set(kinds) == {
        "goto", "click", "fill", "select", "press", "check", "uncheck", "hover",
        "wait_for", "screenshot", "extract", "assert_text",
    }
    by_step = {o["step"]: o for o in outs}
    # every target form reached Playwright as the matching locator call (typed values may be
    # redacted in the records, so only the locator and the method are compared)
    calls = {
        5: 'page.get_by_label("Full name").fill(',
        6: 'page.get_by_placeholder("City").fill(',
        7: 'page.get_by_test_id("qty").fill(',
        8: 'page.get_by_label("Country").select_option(value=',
        9: 'page.locator("#size").select_option(label=',
        10: 'page.get_by_label("I agree").check()',
        11: 'page.get_by_test_id("newsletter").uncheck()',
        12: 'page.get_by_text("Menu", exact=True).hover()',
        13: 'expect(page.locator("#hovered")).to_contain_text(',
        14: "page.keyboard.press(",  # press without a target
        15: 'expect(page.locator("body")).to_contain_text(',
        16: 'page.locator("#ref").',
        18: 'page.get_by_role("button", name="Save draft").click()',
        20: 'page.locator(".confirmation-id").inner_text()',
        21: 'page.locator(".confirmation-id").get_attribute("data-id")',
        23: 'page.locator("#q").press(',
        26: 'expect(page.get_by_role("heading")).to_contain_text(',
    }
    wrong = {n: by_step[n]["call"] for n, start in calls.items() if not by_step[n]["call"].startswith(start)}
    assert wrong == {}
    # the click navigated (form POST), the goto built from a variable landed on its page
    assert by_step[18]["url_after"].endswith("/save")
    assert by_step[25]["url_after"].endswith("/item/C-4821")
    # the wait for networkidle / url / seconds each recorded the right call
    assert by_step[2]["call"] == 'page.wait_for_load_state("networkidle")'
    assert by_step[19]["call"] == 'page.wait_for_url("**/save")'
    assert by_step[28]["call"] == "page.wait_for_timeout(200)"
    assert by_step[28]["duration_ms"] >= 200


def test_named_and_full_page_screenshots(all_kinds: tuple[Any, list[dict[str, Any]], Any], tmp_path: Path) -> None:
    _, recs, _ = all_kinds
    by_step = {o["step"]: o for o in outcomes(recs)}
    full = by_step[17]["attachments"]
    viewport = by_step[27]["attachments"]
    assert len(full) == 1 and len(viewport) == 1
    assert full[0]["path"].endswith("-filled-form.png"), full[0]["path"]
    assert viewport[0]["path"].endswith("-item.png"), viewport[0]["path"]
    folder = only_run(tmp_path / "ev")
    full_h = _png_size(folder / full[0]["path"])[1]
    view_h = _png_size(folder / viewport[0]["path"])[1]
    assert full_h > view_h >= 600, (full_h, view_h)  # the form page is 2400 px tall: full_page captured it
    assert by_step[17]["call"] == "page.screenshot(full_page=True)"


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_cli_run_prints_each_kind_once_per_step(all_kinds: tuple[Any, Any, Any]) -> None:
    done, _, _ = all_kinds
    lines = [ln for ln in done.stdout.splitlines() if "/28 " in ln]
    assert len(lines) == 28, done.stdout
    assert all(" ok " in ln for ln in lines), done.stdout


# --------------------------------------------------------------------------- assert_text


def test_assert_text_fails_without_retry_and_stops_the_run(tmp_path: Path, test_server: TestServer) -> None:
    serve_site(test_server)
    result = run_inprocess("assert_fails", test_server, tmp_path / "ev")
    assert result.exit_code == 4, result
    recs = records(only_run(tmp_path / "ev"))
    outs = outcomes(recs)
    assert [(o["step"], o["outcome"]) for o in outs] == [(1, "ok"), (2, "ok"), (3, "failed")]
    assert "This text is not there" in outs[-1]["error"]
    # an assertion that is false is not transient: expect() already waited its timeout
    assert retry_records(recs) == []
    assert [r.route for r in test_server.requests if r.route.startswith("/p")] == ["/p1"]  # step 4 never ran


# --------------------------------------------------------------------------- retries


def test_wait_for_is_retried_after_a_transient_timeout_and_succeeds(tmp_path: Path, test_server: TestServer) -> None:
    serve_site(test_server, late_ms=2500)
    result = run_inprocess("late_wait", test_server, tmp_path / "ev")
    assert result.exit_code == 0, result
    recs = records(only_run(tmp_path / "ev"))
    out = outcomes(recs)[-1]
    assert out["kind"] == "wait_for" and out["outcome"] == "ok"
    retries = retry_records(recs)
    assert 1 <= out["retries"] <= 2
    assert len(retries) == out["retries"]
    assert all(r["step"] == 2 and r["category"] == "transient" for r in retries)
    assert [r["attempt"] for r in retries] == list(range(1, out["retries"] + 1))
    assert "Timeout" in retries[0]["message"]
    end = recs[-1]
    assert end["type"] == "run_record" and end["counts"]["retries"] == out["retries"]


def test_extract_is_retried_with_a_bounded_stop_then_fails(tmp_path: Path, test_server: TestServer) -> None:
    serve_site(test_server)
    result = run_inprocess("extract_missing", test_server, tmp_path / "ev")
    assert result.exit_code == 4
    recs = records(only_run(tmp_path / "ev"))
    out = outcomes(recs)[-1]
    assert (out["step"], out["kind"], out["outcome"]) == (2, "extract", "failed")
    assert out["retries"] == 2  # three attempts in all, then the stop
    retries = retry_records(recs)
    assert [(r["step"], r["attempt"]) for r in retries] == [(2, 1), (2, 2)]
    # one intent, one outcome: the retries are inside the one action
    assert len([r for r in intents(recs) if r["step"] == 2]) == 1
    assert "/p2" not in {r.route for r in test_server.requests}


def test_goto_to_a_down_server_is_retried_then_fails(
    tmp_path: Path, test_server: TestServer, free_port: int
) -> None:
    serve_site(test_server)
    result = run_inprocess("server_down", test_server, tmp_path / "ev", down=f"http://allowed.localhost:{free_port}")
    assert result.exit_code == 4
    recs = records(only_run(tmp_path / "ev"))
    retries = retry_records(recs)
    assert [(r["step"], r["attempt"]) for r in retries] == [(1, 1), (1, 2)]
    assert all("ERR_CONNECTION_REFUSED" in r["message"] for r in retries)
    out = outcomes(recs)[-1]
    assert (out["kind"], out["outcome"], out["retries"]) == ("goto", "failed", 2)
    assert test_server.requests == []  # step 2 (on the live server) never ran


@pytest.mark.parametrize(("name", "route"), [("late_click", "/clicked"), ("late_fill", None)])
def test_side_effects_are_never_retried(tmp_path: Path, test_server: TestServer, name: str, route: str | None) -> None:
    """The element appears ~3 s after load; the step waits 1 s. A retry would have hit it."""
    serve_site(test_server)
    result = run_inprocess(name, test_server, tmp_path / "ev")
    assert result.exit_code == 4, result
    recs = records(only_run(tmp_path / "ev"))
    assert retry_records(recs) == []
    failures = [r for r in recs if r["type"] == "exception_record"]
    assert [(r["step"], r["category"], r["mitigation"]) for r in failures] == [(2, "step_failed", "aborted")]
    # One attempt. Depending on where the missing target is noticed (resolving it for the danger
    # zones, or the action itself), step 2 has no outcome or exactly one, never more, never retried.
    step2 = [r for r in outcomes(recs) if r["step"] == 2]
    assert len(step2) <= 1
    assert all(o["outcome"] == "failed" and o["retries"] == 0 for o in step2)
    if route is not None:
        assert [r for r in test_server.requests if r.route == route] == []
    # Every step that was reached has exactly one decision record, the failing one included.
    decisions = [r["step"] for r in recs if r["type"] == "decision_record" and r.get("step") is not None]
    assert sorted(set(decisions)) == [1, 2]
    assert decisions.count(2) == 1


@pytest.fixture
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_var_from_extract_is_not_known_before_the_run(tmp_path: Path, test_server: TestServer) -> None:
    """An undefined ${vars.X} that no step extracts is a mission problem, found before anything runs."""
    text = mission("three_pages").read_text().replace("/p3", "/${vars.never_set}")
    path = tmp_path / "m.yaml"
    path.write_text(text)
    serve_site(test_server)
    with pytest.raises(WardenError) as info:
        run_mission(
            RunOptions(mission_path=path, evidence_dir=tmp_path / "ev", cli_vars={"base": base(test_server)}),
            QuietReporter(),
        )
    assert info.value.exit_code == 2
    assert "never_set" in str(getattr(info.value, "problems", info.value))
    assert test_server.requests == []
    assert not (tmp_path / "ev" / "runs").exists()
