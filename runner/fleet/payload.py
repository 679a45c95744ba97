"""What a mission job carries in the queue, and how ``--var`` values travel sealed.

The job holds the mission's text (a worker on another machine has no copy of the file), its sha256,
the run id ``warden submit`` printed, and the submitter. ``--var`` values are never in the queue in
clear: they are sealed with ``WARDEN_FLEET_KEY`` (a Fernet key the submitter and the workers share),
and ``warden submit`` refuses ``--var`` without it. Only the names are readable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

from evidence.runfolder import check_run_id
from kernel.errors import UsageError

KEY_ENV = "WARDEN_FLEET_KEY"
MAX_RETRIES = 5


class JobPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    mission_file: str  # the file name as submitted (the worker writes the text under this name)
    mission_text: str
    mission_sha256: str
    mission_id: str
    run_id: str  # the first attempt's run id (a retry gets a new one, recorded in fleet_attempts)
    var_names: tuple[str, ...] = ()
    vars_sealed: str | None = None
    retries: int = Field(default=2, ge=0, le=MAX_RETRIES)  # automatic retries before the first action
    submitted_by: str
    submitted_host: str
    submitted_at: str

    @field_validator("run_id")
    @classmethod
    def _a_run_id(cls, value: str) -> str:
        return check_run_id(value)  # it names folders on the worker: never a path


def _fernet(environ: Mapping[str, str]) -> object:
    from cryptography.fernet import Fernet

    key = environ.get(KEY_ENV, "").strip()
    if not key:
        raise UsageError(f"{KEY_ENV} is not set: --var values travel sealed with it (the same key on every worker); "
                         "make one with: python -c 'from cryptography.fernet import Fernet; "
                         "print(Fernet.generate_key().decode())'")
    try:
        return Fernet(key.encode())
    except ValueError:
        raise UsageError(f"{KEY_ENV} is not a Fernet key (32 url-safe base64-encoded bytes)") from None


def seal(values: Mapping[str, str], environ: Mapping[str, str]) -> str | None:
    if not values:
        return None
    from cryptography.fernet import Fernet

    fernet = _fernet(environ)
    assert isinstance(fernet, Fernet)
    return fernet.encrypt(json.dumps(dict(values), sort_keys=True).encode()).decode()


def unseal(payload: JobPayload, environ: Mapping[str, str]) -> dict[str, str]:
    if payload.vars_sealed is None:
        return {}
    from cryptography.fernet import Fernet, InvalidToken

    fernet = _fernet(environ)
    assert isinstance(fernet, Fernet)
    try:
        loaded = json.loads(fernet.decrypt(payload.vars_sealed.encode()))
    except InvalidToken:
        raise UsageError(f"this worker's {KEY_ENV} does not open the job's --var values (not the submitter's key)"
                         ) from None
    if not isinstance(loaded, dict) or sorted(loaded) != sorted(payload.var_names):
        raise UsageError("the job's sealed --var values do not match its variable names")
    return {str(k): str(v) for k, v in loaded.items()}
