"""Evidence record schemas (SPEC §5): typed, frozen, versioned.

Every record shares the envelope (``schema``, ``record_id``, ``run_id``, ``seq``, ``type``, ``time``,
``actor``, ``prev_hash``, ``hash``, ``attachments``). ``hash`` is SHA-256 over the RFC 8785
canonical JSON of the record without ``hash``. A record's ``schema`` is ``warden.<type>/<version>``;
change a model's fields and you must bump its ``SCHEMA_VERSION`` (a test compares against the
JSON Schemas kept in ``evidence/schemas``).

Records are built only by the evidence writer, which fills the envelope and passes every string
through the redactor first. Nothing else constructs them for writing.
"""

from __future__ import annotations

import functools
import types
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, JsonValue

Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
GENESIS_HASH = "0" * 64


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Actor(Frozen):
    type: Literal["human", "runner", "policy", "page", "agent"]  # agent: an MCP client / Python framework (#14)
    id: str


class Attachment(Frozen):
    path: str  # relative to the run folder, POSIX separators
    sha256: Sha256Hex
    media_type: str


class Record(Frozen):
    """The envelope shared by every record type."""

    TYPE: ClassVar[str] = "record"
    SCHEMA_VERSION: ClassVar[int] = 2  # v2 (every type): actor kind "agent"; older versions still parse

    schema_: str = Field(alias="schema")
    record_id: str
    run_id: str
    seq: Annotated[int, Field(ge=1)]
    type: str
    time: str  # UTC, RFC 3339 with milliseconds, e.g. 2026-11-21T19:50:12.345Z
    actor: Actor
    prev_hash: Sha256Hex
    hash: Sha256Hex
    attachments: list[Attachment] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @classmethod
    def schema_id(cls) -> str:
        return f"warden.{cls.TYPE}/{cls.SCHEMA_VERSION}"


class GuardCheck(Frozen):
    guard: str
    decision: Literal["allow", "deny", "require_approval"]
    reason: str
    rule: str = ""


class RunRecord(Record):
    """Opens (phase=start) and closes (phase=end) a run: the request context and the outcome.

    Version 2 added ``signing_key_id``: the key (evidence.signing) the run is to be signed with at
    its end, named at its start so a stripped signature is a problem. Version 1 records still parse.
    """

    TYPE: ClassVar[str] = "run_record"
    SCHEMA_VERSION: ClassVar[int] = 3  # v3: actor kind "agent"
    phase: Literal["start", "end"]
    initiator: dict[str, str]  # user, host, (uid)
    started_by: str  # "warden run", "warden demo", ...
    mission_id: str
    mission_version: str
    mission_sha256: Sha256Hex
    policy_sha256: Sha256Hex | None = None
    versions: dict[str, str] = Field(default_factory=dict)  # warden, playwright, chromium, python, presidio
    variables: list[str] = Field(default_factory=list)  # names only, never values
    started_at: str
    ended_at: str | None = None
    outcome: str | None = None  # completed | stopped | failed | evidence_error | interrupted
    exit_code: int | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    signing_key_id: str | None = None  # start: the key id the run will be signed with (None: unsigned)


class DecisionRecord(Record):
    TYPE: ClassVar[str] = "decision_record"
    guard: str  # "chain" for a step's combined verdict, else the guard's name
    decision: Literal["allow", "deny", "require_approval"]
    rationale: str
    rule: str = ""
    step: int | None = None
    kind: str | None = None  # the action kind, for step decisions
    subject: dict[str, JsonValue] = Field(default_factory=dict)  # what was checked (host, request kind...)
    checks: list[GuardCheck] = Field(default_factory=list)
    count: Annotated[int, Field(ge=1)] = 1  # repeated identical refusals are counted, not repeated


class ApprovalRequest(Record):
    TYPE: ClassVar[str] = "approval_request"
    approval_id: str
    step: int
    kind: str
    action_digest: Sha256Hex
    zone: str
    rule: str
    reason: str
    risk_score: int | None = None
    page_url: str
    target: dict[str, JsonValue] = Field(default_factory=dict)
    channel: Literal["prompt", "deny", "queue"]
    expires_at: str


class ApprovalRecord(Record):
    TYPE: ClassVar[str] = "approval_record"
    SCHEMA_VERSION: ClassVar[int] = 3  # v2: initiator, identity_method, approver_uid, expires_at, binding; v3: agent
    approval_id: str
    decision: Literal["approved", "denied", "expired"]
    approver: str | None = None
    os_user: str
    reason: str
    channel: Literal["prompt", "deny", "queue"]
    action_digest: Sha256Hex
    rule: str
    answered_at: str
    initiator: str | None = None  # the OS user who started the run
    # how the approver's identity was established: so_peercred | tty_owner | queue_row | none
    identity_method: Literal["so_peercred", "tty_owner", "queue_row", "none"] | None = None
    approver_uid: int | None = None  # the uid the kernel vouched for (so_peercred)
    expires_at: str | None = None
    binding: Sha256Hex | None = None  # HMAC under the evidence key: this approval ↔ this action digest


class ActionRecord(Record):
    TYPE: ClassVar[str] = "action_record"
    phase: Literal["intent", "outcome"]
    step: int
    kind: str
    target: dict[str, JsonValue] = Field(default_factory=dict)
    call: str  # the Playwright call, as text
    url_before: str | None = None
    url_after: str | None = None
    intent_id: str | None = None  # outcome -> the record_id of its intent
    outcome: Literal["ok", "failed", "blocked"] | None = None
    duration_ms: float | None = None
    retries: int = 0
    error: str | None = None


class ExceptionRecord(Record):
    TYPE: ClassVar[str] = "exception_record"
    step: int | None = None
    category: str  # step_failed | transient | guardrail | evidence | sandbox | interrupted | crash_recovery
    error_type: str
    message: str
    mitigation: Literal["retried", "blocked", "aborted", "masked", "recorded", "expired"]
    attempt: int | None = None


FindingAction = Literal["recorded", "approval_required", "blocked", "allowed"]
ACTION_RANK: dict[str, int] = {"allowed": 0, "recorded": 1, "approval_required": 2, "blocked": 3}
"""A scan's ``action`` is the strongest of its values' (blocked > approval_required > recorded > allowed)."""


class FoundValue(Frozen):
    """One distinct value a scan found: its keyed fingerprint and masked preview, never the value."""

    entity_type: str
    score: float
    value_hmac: Sha256Hex  # HMAC-SHA256(evidence key, value): never the value, never a plain hash
    preview: str  # masked, e.g. "j***@e***.com"
    action: FindingAction
    occurrences: Annotated[int, Field(ge=1)] = 1  # times this scan met the value (e.g. in several blocks)
    location: dict[str, JsonValue] = Field(default_factory=dict)  # where in the scan: selector, element, source


class PiiFinding(Record):
    """What one scan found (a page scan, a typed value, a request): one record, however many values.

    Version 2 (issue 13): one record per scan with entity ``counts`` and one ``FoundValue`` per
    distinct value; version 1 was one record per value (``PiiFindingV1``, still verified).
    """

    TYPE: ClassVar[str] = "pii_finding"
    SCHEMA_VERSION: ClassVar[int] = 3  # v3: actor kind "agent"
    step: int | None = None
    where: Literal["page", "input", "request"]
    location: dict[str, JsonValue] = Field(default_factory=dict)  # the scan's place: page url / request host / field
    key_id: str  # the evidence key every value_hmac is keyed with
    policy: Literal["record", "approve", "block"]
    action: FindingAction  # the strongest of the values' actions
    counts: dict[str, Annotated[int, Field(ge=1)]]  # entity type -> distinct values found
    values: Annotated[list[FoundValue], Field(min_length=1)]


class PiiFindingV1(Record):
    """``warden.pii_finding/1``: one record per value (runs written before issue 13). Read, never written."""

    TYPE: ClassVar[str] = "pii_finding"
    SCHEMA_VERSION: ClassVar[int] = 1
    step: int | None = None
    entity_type: str
    score: float
    where: Literal["page", "input", "request"]
    location: dict[str, JsonValue] = Field(default_factory=dict)  # selector / request host / page url
    value_hmac: Sha256Hex
    key_id: str
    preview: str
    policy: Literal["record", "approve", "block"]
    action: FindingAction


def finding_entities(data: dict[str, Any]) -> list[str]:
    """The entity types of a ``pii_finding`` record of any version, sorted."""
    counts = data.get("counts")
    if isinstance(counts, dict):
        return sorted(str(k) for k in counts)
    return [str(data["entity_type"])] if data.get("entity_type") is not None else []


class VersionLog(Record):
    TYPE: ClassVar[str] = "version_log"
    subject: Literal["mission", "warden", "policy"]
    subject_id: str
    old_sha256: Sha256Hex | None
    new_sha256: Sha256Hex
    old_version: str | None = None
    new_version: str | None = None
    changes: list[str] = Field(default_factory=list)
    why: str = ""


RECORD_TYPES: dict[str, type[Record]] = {
    cls.TYPE: cls
    for cls in (
        RunRecord, DecisionRecord, ApprovalRequest, ApprovalRecord, ActionRecord,
        ExceptionRecord, PiiFinding, VersionLog,
    )
}


LEGACY_TYPES: dict[str, type[Record]] = {cls.schema_id(): cls for cls in (PiiFindingV1,)}
"""Record versions still read (verify, reindex, export) but no longer written, by ``schema``."""


def record_class(data: dict[str, Any]) -> type[Record] | None:
    """The model a record read back must validate against: its type's, or a legacy version's."""
    legacy = LEGACY_TYPES.get(str(data.get("schema")))
    if legacy is not None and data.get("type") == legacy.TYPE:
        return legacy
    return RECORD_TYPES.get(str(data.get("type")))


def parse_record(data: dict[str, Any]) -> Record:
    """Validate one record read back from ``records.jsonl`` into its typed model."""
    cls = record_class(data)
    if cls is None:
        raise ValueError(f"unknown record type {data.get('type')!r}")
    return cls.model_validate(data)


def _plain_type(tp: Any) -> bool:
    """Does every value of type ``tp`` dump (JSON mode) to strings, bools, nulls and lists / dicts of
    them with ASCII keys? Anything not recognised here is not (ints, floats, dicts, JsonValue...)."""
    if tp is str or tp is bool or tp is type(None):
        return True
    origin = get_origin(tp)
    if origin is Literal:
        return all(a is None or type(a) is str or type(a) is bool for a in get_args(tp))
    if origin is Annotated or origin is Union or origin is types.UnionType:
        args = get_args(tp)
        return all(_plain_type(a) for a in (args[:1] if origin is Annotated else args))
    if origin is list:
        return all(_plain_type(a) for a in get_args(tp))
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return _plain_model(tp)
    return False


def _plain_model(cls: type[BaseModel]) -> bool:
    return cls.model_config.get("extra") == "forbid" and not cls.model_computed_fields and all(
        (f.alias or name).isascii() and _plain_type(f.annotation) for name, f in cls.model_fields.items()
    )


@functools.cache
def walked_fields(cls: type[BaseModel]) -> tuple[str, ...] | None:
    """The members of ``cls``'s JSON-mode dump (by alias) whose values the canonical encoder must
    look at (``canonical.canonical_form_of``): every field whose type is not plain (``_plain_type``:
    strings, literals, bools, nulls, lists and models of those). None when a member's name is not
    ASCII or the model keeps extra fields: then the whole dump is walked."""
    if cls.model_config.get("extra") != "forbid" or cls.model_computed_fields:
        return None
    names = [(f.alias or name, f) for name, f in cls.model_fields.items()]
    if not all(alias.isascii() for alias, _ in names):
        return None
    return tuple(alias for alias, f in names if not _plain_type(f.annotation))
