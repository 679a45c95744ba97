"""The fleet's pieces without a browser: URLs, sealed --var values, the retry line read from records,
and submit/cancel against real PostgreSQL (a fresh schema for this module)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from kernel.errors import UsageError
from runner.fleet.child import check_lent_secrets
from runner.fleet.db import engine_for, libpq_url, sqlalchemy_url
from runner.fleet.payload import JobPayload, seal, unseal
from runner.fleet.retryable import first_action_state
from tests.runner.fleet.support import Worker, fresh_schema, jobs, wait_for, warden

MISSION = """mission: unit-fleet
version: 1
boundaries:
  allowed_domains: [allowed.localhost]
  allow_http: true
  allowed_actions: [goto]
steps:
  - goto: "http://allowed.localhost:1/${vars.page}"
"""


@pytest.fixture(scope="module")
def fleet_db() -> Iterator[str]:
    yield from fresh_schema()


@pytest.mark.parametrize(("given", "expected"), [
    ("postgresql://u:p@h:5/d", "postgresql+psycopg://u:p@h:5/d"),
    ("postgres://u:p@h/d", "postgresql+psycopg://u:p@h/d"),
    ("postgresql+psycopg://u@h/d?options=x", "postgresql+psycopg://u@h/d?options=x"),
])
def test_urls(given: str, expected: str) -> None:
    assert sqlalchemy_url(given) == expected
    assert libpq_url(given) == "postgresql://" + expected.split("://", 1)[1]


@pytest.mark.parametrize("bad", [None, "", "sqlite:///x.db", "warden-evidence", "mysql://h/d"])
def test_the_fleet_needs_postgresql(bad: str | None) -> None:
    with pytest.raises(UsageError, match="PostgreSQL"):
        sqlalchemy_url(bad)


def _payload(sealed: str | None, names: tuple[str, ...]) -> JobPayload:
    return JobPayload(mission_file="m.yaml", mission_text="", mission_sha256="0" * 64, mission_id="m",
                      run_id="r", var_names=names, vars_sealed=sealed, submitted_by="u", submitted_host="h",
                      submitted_at="t")


def test_var_values_travel_sealed_and_open_only_with_the_key() -> None:
    key = {"WARDEN_FLEET_KEY": Fernet.generate_key().decode()}
    token = seal({"iban": "DE89370400440532013000"}, key)
    assert token is not None and "DE89" not in token
    assert unseal(_payload(token, ("iban",)), key) == {"iban": "DE89370400440532013000"}
    with pytest.raises(UsageError, match="does not open"):
        unseal(_payload(token, ("iban",)), {"WARDEN_FLEET_KEY": Fernet.generate_key().decode()})
    with pytest.raises(UsageError, match="not set"):
        unseal(_payload(token, ("iban",)), {})
    with pytest.raises(UsageError, match="do not match"):
        unseal(_payload(token, ("other",)), key)
    with pytest.raises(UsageError, match="not a Fernet key"):
        seal({"a": "b"}, {"WARDEN_FLEET_KEY": "short"})
    assert seal({}, {}) is None


def test_a_job_names_no_path() -> None:
    for bad in ("../../etc", "a/b", ".."):
        with pytest.raises(ValueError, match="invalid run id"):
            JobPayload.model_validate({**_payload(None, ()).model_dump(), "run_id": bad})


LENDING = """mission: lend
version: 1
boundaries:
  allowed_domains: [allowed.localhost]
  allowed_actions: [goto, fill]
secrets:
  TOKEN: {env: PORTAL_TOKEN, domains: [allowed.localhost]}
  HOME_KEY: {env: AWS_SECRET_ACCESS_KEY, domains: [allowed.localhost]}
steps:
  - goto: https://allowed.localhost/
"""


def test_a_worker_lends_only_the_secrets_it_names(tmp_path: Path) -> None:
    path = tmp_path / "lend.yaml"
    path.write_text(LENDING)
    with pytest.raises(UsageError) as refused:
        check_lent_secrets(path, {}, ("PORTAL_TOKEN",))
    assert "secrets.HOME_KEY reads $AWS_SECRET_ACCESS_KEY" in str(refused.value)
    assert "PORTAL_TOKEN" not in str(refused.value)
    check_lent_secrets(path, {}, ("PORTAL_TOKEN", "AWS_SECRET_ACCESS_KEY"))


def _write(folder: Path, recs: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    return folder


def _intent(n: int, kind: str) -> dict[str, Any]:
    return {"type": "action_record", "phase": "intent", "step": n, "kind": kind, "record_id": f"i{n}",
            "time": f"2026-01-01T00:00:0{n}.000Z"}


def _outcome(n: int, outcome: str, error: str | None = None) -> dict[str, Any]:
    return {"type": "action_record", "phase": "outcome", "step": n, "intent_id": f"i{n}", "outcome": outcome,
            "error": error}


@pytest.mark.parametrize(("recs", "retry"), [
    ([], False),  # nothing attempted, but no sign the site was down: final
    ([_intent(1, "goto"), _outcome(1, "failed", "net::ERR_CONNECTION_REFUSED at http://x/")], True),
    ([_intent(1, "goto"), _outcome(1, "failed", "page.goto: net::ERR_NAME_NOT_RESOLVED")], True),
    ([_intent(1, "goto"), _outcome(1, "failed", "net::ERR_CONNECTION_RESET")], False),  # may have arrived
    ([_intent(1, "goto"), _outcome(1, "failed", "Timeout 30000ms exceeded")], False),
    ([_intent(1, "click"), _outcome(1, "failed", "net::ERR_CONNECTION_REFUSED")], False),  # not a navigation
    ([_intent(1, "goto"), _outcome(1, "ok"), _intent(2, "goto"),
      _outcome(2, "failed", "net::ERR_CONNECTION_REFUSED")], False),  # step 1 reached the site
    ([_intent(1, "goto")], False),  # killed mid-goto: unknown, so final
])
def test_retry_only_when_nothing_reached_the_site(tmp_path: Path, recs: list[dict[str, Any]], retry: bool) -> None:
    state = first_action_state(_write(tmp_path / "run", recs))
    assert (state.retry_why is not None) is retry
    assert state.first_intent_time == (recs[0]["time"] if recs else None)


def test_submit_refuses_before_queueing_and_cancel_tells_the_truth(tmp_path: Path, fleet_db: str) -> None:
    mission = tmp_path / "m.yaml"
    mission.write_text(MISSION)
    no_key = warden("submit", str(mission), "--db", fleet_db, "--var", "page=p1", env={"WARDEN_FLEET_KEY": ""})
    assert no_key.returncode == 2 and "WARDEN_FLEET_KEY" in no_key.stderr
    missing = warden("submit", str(mission), "--db", fleet_db)  # ${vars.page} not given
    assert missing.returncode == 2 and "m.yaml:" in missing.stderr
    sqlite = warden("submit", str(mission), "--db", f"sqlite:///{tmp_path}/x.db", "--var", "page=p")
    assert sqlite.returncode == 2 and "PostgreSQL" in sqlite.stderr
    assert jobs(fleet_db) == {}

    key = {"WARDEN_FLEET_KEY": Fernet.generate_key().decode()}
    ok = warden("submit", str(mission), "--db", fleet_db, "--var", "page=secret-page-77", "--json", "--queue",
                "nobody-listens", "--priority", "5", env=key)
    assert ok.returncode == 0, ok.stderr
    job = json.loads(ok.stdout)
    with engine_for(fleet_db).connect() as conn:
        query = text("SELECT args::text FROM procrastinate_jobs WHERE id = :i")
        raw = conn.execute(query, {"i": job["job_id"]}).scalar()
    assert "secret-page-77" not in str(raw) and '"page"' in str(raw)  # the name is readable, the value is not
    view = jobs(fleet_db)[job["job_id"]]
    assert (view["state"], view["queue"], view["priority"], view["run_id"]) == (
        "queued", "nobody-listens", 5, job["run_id"])
    shown = warden("jobs", "show", str(job["job_id"]), "--db", fleet_db)
    assert shown.returncode == 0 and "vars: page" in shown.stdout and "secret-page-77" not in shown.stdout

    cancelled = warden("jobs", "cancel", str(job["job_id"]), "--db", fleet_db)
    assert cancelled.returncode == 0 and "will not run" in cancelled.stdout
    assert jobs(fleet_db)[job["job_id"]]["state"] == "cancelled"
    again = warden("jobs", "cancel", str(job["job_id"]), "--db", fleet_db)
    assert again.returncode == 1 and "cancelled" in again.stderr
    unknown = warden("jobs", "show", "999999", "--db", fleet_db)
    assert unknown.returncode == 2 and "no mission job 999999" in unknown.stderr


def test_a_browser_that_does_not_start_is_retried_within_bounds(tmp_path: Path, fleet_db: str) -> None:
    """Chromium that cannot launch: nothing ran, so Procrastinate retries — exactly --retries times."""
    mission = tmp_path / "nobrowser.yaml"
    mission.write_text(MISSION.replace("${vars.page}", "x"))
    job = json.loads(warden("submit", str(mission), "--db", fleet_db, "--json", "--retries", "1", "--queue",
                            "nobrowser").stdout)
    worker = Worker(fleet_db, tmp_path / "ev", tmp_path / "w.log", "--queue", "nobrowser",
                    env={"WARDEN_CHROMIUM": "/bin/false"})
    try:
        done = wait_for("the job failed after its one retry",
                        lambda: (j := jobs(fleet_db)[job["job_id"]])["state"] == "failed" and j)
    finally:
        worker.stop()
    tries = done["attempts"]
    assert [t["status"] for t in tries] == ["retried", "failed"]
    assert [(t["exit_code"], t["outcome"]) for t in tries] == [(3, "not_started"), (3, "not_started")]
    assert "cannot launch Chromium" in tries[0]["message"] and tries[0]["run_id"] != tries[1]["run_id"]
    assert not (tmp_path / "ev" / "runs").exists() or not any((tmp_path / "ev" / "runs").iterdir())
