"""``warden submit``: validate exactly as ``warden run`` would, then queue; a bad mission never enters.

The mission is loaded (every problem at once, file:line), preflighted and its risk decision taken
before anything touches the database; ``--var`` values are sealed (``payload.py``). Secrets are not
looked up here: they come from each worker's environment, as they would for ``warden run`` there.
"""

from __future__ import annotations

import getpass
import hashlib
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from evidence.runfolder import new_run_id, utc_timestamp
from kernel.errors import UsageError
from runner.fleet.app import DEFAULT_QUEUE, TASK_NAME, make_app
from runner.fleet.db import engine_for, ensure_schema, sqlalchemy_url
from runner.fleet.payload import JobPayload, seal


@dataclass(frozen=True)
class Submitted:
    job_id: int
    run_id: str
    queue: str


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def validated_payload(mission: Path, cli_vars: Mapping[str, str], environ: Mapping[str, str],
                      retries: int) -> JobPayload:
    from missions.loader import load_mission
    from runner.preflight import preflight, refuse_denied_risk

    try:
        blob = mission.read_bytes()
    except OSError as exc:
        raise UsageError(f"{mission}: cannot be read ({exc.strerror})") from None
    loaded = load_mission(mission, cli_vars=dict(cli_vars), environ=environ, require_secrets=False)
    preflight(loaded)
    refuse_denied_risk(loaded)
    if loaded.sha256 != hashlib.sha256(blob).hexdigest():
        raise UsageError(f"{mission}: changed while it was being submitted; submit again")
    return JobPayload(
        mission_file=mission.name, mission_text=blob.decode("utf-8"), mission_sha256=loaded.sha256,
        mission_id=loaded.mission.mission, run_id=new_run_id(loaded.mission.mission),
        var_names=tuple(sorted(cli_vars)), vars_sealed=seal(cli_vars, environ), retries=retries,
        submitted_by=_user(), submitted_host=socket.gethostname(), submitted_at=utc_timestamp(),
    )


def submit(mission: Path, cli_vars: Mapping[str, str], *, db_url: str, environ: Mapping[str, str],
           queue: str | None = None, priority: int = 0, retries: int = 2) -> Submitted:
    sqlalchemy_url(db_url)  # a --db that cannot be the fleet's is said first
    payload = validated_payload(mission, cli_vars, environ, retries)  # before the database is even opened
    ensure_schema(engine_for(db_url))
    app = make_app(db_url)
    name = queue or DEFAULT_QUEUE
    with app.open():
        job_id = app.configure_task(TASK_NAME, queue=name, priority=priority).defer(payload=payload.model_dump())
    return Submitted(job_id, payload.run_id, name)
