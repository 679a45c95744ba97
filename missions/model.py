"""The mission schema (SPEC §2) as frozen pydantic models.

Unknown keys are errors everywhere (``extra="forbid"``): a typo such as ``allowed_domain:`` must
never fail open. Error locations produced by pydantic are the YAML key paths
(``steps.3.click.selector``), which the loader maps back to file:line.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from missions.patterns import compile_text
from missions.pydantic_plugins import install as _install_plugin_lookup

_install_plugin_lookup()  # before the first model below: no importlib.metadata before the launch

ActionKind = Literal[
    "goto",
    "click",
    "fill",
    "select",
    "press",
    "check",
    "uncheck",
    "hover",
    "wait_for",
    "screenshot",
    "extract",
    "assert_text",
]
ACTION_KINDS: tuple[str, ...] = get_args(ActionKind)
# Actions that only read: safe to retry after a transient failure.
IDEMPOTENT_KINDS: frozenset[str] = frozenset({"goto", "wait_for", "extract", "assert_text", "screenshot", "hover"})
# Actions that can change the page's state (every kind that is not idempotent: click, fill, select,
# press, check, uncheck): never retried, gated by url danger zones, counted by the risk score.
SIDE_EFFECT_KINDS: tuple[str, ...] = tuple(k for k in ACTION_KINDS if k not in IDEMPOTENT_KINDS)

Policy = Literal["record", "approve", "block"]
DataClass = Literal["pii", "secrets", "financial", "regulated"]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]
VarName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")]
# Numbers are strict so a YAML boolean (`timeout: yes`) is an error, not 1 second.
Seconds = Annotated[float, Field(gt=0, le=86_400, strict=True, allow_inf_nan=False)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# ----------------------------------------------------------------------------- targets

TARGET_FIELDS = ("selector", "text", "role", "label", "placeholder", "test_id")


class TargetFields(Strict):
    """One way to find an element: exactly one of selector, text, role(+name), label, placeholder, test_id."""

    selector: str | None = None
    text: str | None = None
    role: str | None = None
    name: str | None = None
    label: str | None = None
    placeholder: str | None = None
    test_id: str | None = None
    exact: bool = False

    def target_ways(self) -> list[str]:
        return [f for f in TARGET_FIELDS if getattr(self, f) is not None]

    def has_target(self) -> bool:
        return bool(self.target_ways())

    def target(self) -> dict[str, Any]:
        """The target as a plain dict (only the fields that are set)."""
        out: dict[str, Any] = {f: getattr(self, f) for f in TARGET_FIELDS if getattr(self, f) is not None}
        if self.name is not None:
            out["name"] = self.name
        if self.exact:
            out["exact"] = True
        return out

    def _check_target(self, required: bool) -> None:
        ways = self.target_ways()
        if len(ways) > 1:
            raise ValueError(f"give exactly one way to find the element, not {' and '.join(ways)}")
        if required and not ways:
            raise ValueError("a target is required: one of " + ", ".join(TARGET_FIELDS))
        if self.name is not None and self.role is None:
            raise ValueError("'name' goes with 'role' (e.g. role: button, name: Sign in)")


class StepOptions(Strict):
    """Options any mapping-shaped step may carry."""

    timeout: Seconds | None = None
    approve: bool = False


class TargetArgs(TargetFields, StepOptions):
    @model_validator(mode="after")
    def _one_target(self) -> TargetArgs:
        self._check_target(required=True)
        return self


class GotoArgs(StepOptions):
    url: str
    # back: go there through the browser's history (page.go_back), judged as a goto to ``url``; the
    # step fails unless the previous history entry is exactly ``url``
    back: bool | None = None


ClickButton = Literal["left", "right", "middle"]
Modifier = Literal["Alt", "Control", "ControlOrMeta", "Meta", "Shift"]


class ClickArgs(TargetArgs):
    """A click; ``double``, ``button`` and ``modifiers`` make it a double, right/middle or modified
    click: the same kind (``click``), so every one is judged as an activating action."""

    double: bool | None = None
    button: ClickButton | None = None
    modifiers: list[Modifier] | None = None


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class FillArgs(TargetArgs):
    value: str
    slowly: bool | None = None  # key by key (``press_sequentially``), for pages that listen to keys

    @model_validator(mode="after")
    def _plain_keys(self) -> FillArgs:
        if self.slowly and _CONTROL.search(self.value):
            # Typed key by key, \n is Enter and \t is Tab (a submit, a jump to another field): press those
            raise ValueError("a value typed slowly cannot hold control characters (Enter, Tab...): use press")
        return self


class SelectArgs(TargetFields, StepOptions):
    value: str | None = None
    option_label: str | None = Field(default=None, alias="label_text")
    values: Annotated[list[str], Field(min_length=1, max_length=100)] | None = None  # each a value or a label

    @model_validator(mode="before")
    @classmethod
    def _split_label(cls, data: Any) -> Any:
        # In `select`, `label` may name the option (SPEC: "select: TARGET + value|label") or the
        # field. When a target is already given another way, `label` is the option's label.
        if isinstance(data, dict) and "label" in data:
            other = [f for f in TARGET_FIELDS if f != "label" and data.get(f) is not None]
            if other and "label_text" not in data:
                data = dict(data)
                data["label_text"] = data.pop("label")
        return data

    @model_validator(mode="after")
    def _one_choice(self) -> SelectArgs:
        self._check_target(required=True)
        if sum(x is not None for x in (self.value, self.option_label, self.values)) != 1:
            raise ValueError("give exactly one of 'value' or 'label' for the option to select ('values': several)")
        return self


class PressArgs(TargetFields, StepOptions):
    key: str

    @model_validator(mode="after")
    def _optional_target(self) -> PressArgs:
        self._check_target(required=False)
        return self


WAIT_FOR_FIELDS = ("text", "text_gone", "selector", "url", "load_state", "seconds")


class WaitForArgs(StepOptions):
    text: str | None = None
    text_gone: str | None = None  # until no element showing this text is visible
    selector: str | None = None
    url: str | None = None
    load_state: Literal["load", "domcontentloaded", "networkidle"] | None = None
    seconds: Annotated[float, Field(ge=0, le=3600, strict=True, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> WaitForArgs:
        given = [f for f in WAIT_FOR_FIELDS if getattr(self, f) is not None]
        if len(given) != 1:
            raise ValueError("wait_for takes exactly one of " + ", ".join(WAIT_FOR_FIELDS))
        return self


class ScreenshotArgs(StepOptions):
    name: Name
    full_page: bool = False


class ExtractArgs(TargetArgs):
    as_: VarName = Field(alias="as")
    attribute: str | None = None


class AssertTextArgs(TargetFields, StepOptions):
    text: str  # required here: the text to find

    @model_validator(mode="after")
    def _optional_scope(self) -> AssertTextArgs:
        # `text` is the expected text, so the scope (if any) is given another way.
        ways = [w for w in self.target_ways() if w != "text"]
        if len(ways) > 1:
            raise ValueError(f"give at most one scope for the text, not {' and '.join(ways)}")
        if self.name is not None and self.role is None:
            raise ValueError("'name' goes with 'role'")
        return self


StepArgs = (
    GotoArgs
    | ClickArgs
    | TargetArgs
    | FillArgs
    | SelectArgs
    | PressArgs
    | WaitForArgs
    | ScreenshotArgs
    | ExtractArgs
    | AssertTextArgs
)


class Step(Strict):
    """One step: exactly one action key, plus optional step-level `timeout` and `approve`."""

    goto: GotoArgs | None = None
    click: ClickArgs | None = None
    hover: TargetArgs | None = None
    check: TargetArgs | None = None
    uncheck: TargetArgs | None = None
    fill: FillArgs | None = None
    select: SelectArgs | None = None
    press: PressArgs | None = None
    wait_for: WaitForArgs | None = None
    screenshot: ScreenshotArgs | None = None
    extract: ExtractArgs | None = None
    assert_text: AssertTextArgs | None = None
    timeout: Seconds | None = None
    approve: bool = False

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("goto"), str):
            data = {**data, "goto": {"url": data["goto"]}}
        return data

    @model_validator(mode="after")
    def _exactly_one_action(self) -> Step:
        kinds = [k for k in ACTION_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            listed = ", ".join(kinds) if kinds else "none"
            raise ValueError(f"a step has exactly one action ({', '.join(ACTION_KINDS)}); found {listed}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ACTION_KINDS if getattr(self, k) is not None)

    @property
    def args(self) -> StepArgs:
        value: StepArgs = getattr(self, self.kind)
        return value

    @property
    def effective_timeout(self) -> float | None:
        return self.args.timeout if self.args.timeout is not None else self.timeout

    @property
    def needs_approval(self) -> bool:
        return self.approve or self.args.approve


# ----------------------------------------------------------------------------- policy blocks

_DOMAIN_RE = re.compile(r"^(\*\.)?[A-Za-z0-9\u0080-\uffff_.\-\[\]:]+$")


def _check_domain_entry(v: str) -> str:
    if not v or not _DOMAIN_RE.match(v) or "/" in v or "@" in v:
        raise ValueError(f"not a host pattern: {v!r} (use 'host', '*.host' or 'host:port', no scheme or path)")
    if v.count("*") > (1 if v.startswith("*.") else 0):
        raise ValueError(f"only a leading '*.' wildcard is allowed: {v!r}")
    return v


# Checked per entry, so an error points at the bad list item (and every bad item is reported).
DomainEntry = Annotated[str, Field(min_length=1), AfterValidator(_check_domain_entry)]


class Boundaries(Strict):
    allowed_domains: list[DomainEntry] = Field(min_length=1)
    allowed_resource_domains: list[DomainEntry] = Field(default_factory=list)
    allow_http: bool = False
    allowed_actions: list[ActionKind] = Field(min_length=1)
    max_steps: Annotated[int, Field(ge=1, le=100_000, strict=True)] = 100
    timeout: Seconds = 300
    downloads: Literal["deny", "quarantine"] = "deny"


class DangerZone(Strict):
    name: Name
    text: str | None = None
    selector: str | None = None
    url: str | None = None
    field: str | None = None
    above: Annotated[float, Field(strict=True, allow_inf_nan=False)] | None = None
    reason: str = ""

    @model_validator(mode="after")
    def _one_matcher(self) -> DangerZone:
        given = [k for k in ("text", "selector", "url", "field") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a danger zone matches by exactly one of text, selector, url, field (+above)")
        if (self.field is None) != (self.above is None):
            raise ValueError("'field' and 'above' go together")
        if self.text is not None:
            compile_text(self.text)
        return self


class Approvals(Strict):
    timeout: Seconds = 300
    approvers: list[Annotated[str, Field(min_length=1)]] | None = None
    four_eyes: bool = False


class PiiPolicy(Strict):
    entities: list[Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]*$")]] | None = None
    threshold: Annotated[float, Field(ge=0, le=1, strict=True)] = 0.5
    on_page: Policy = "record"
    on_input: Policy = "approve"
    on_request: Policy = "block"
    allow: list[str] = Field(default_factory=list)
    nlp_model: str | None = None  # a spaCy model name or path (adds PERSON, LOCATION, ...); never downloaded


class SecretSpec(Strict):
    env: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    domains: list[DomainEntry] = Field(min_length=1)


class Mission(Strict):
    mission: Slug
    version: Annotated[int, Field(strict=True)] | str  # strict: `version: yes` is not version 1
    description: str = ""
    owner: str = ""
    changelog: str = ""
    data_classes: list[DataClass] = Field(default_factory=list)
    boundaries: Boundaries
    danger_zones_defaults: bool = True
    danger_zones: list[DangerZone] = Field(default_factory=list)
    approvals: Approvals = Field(default_factory=Approvals)
    pii: PiiPolicy = Field(default_factory=PiiPolicy)
    secrets: dict[VarName, SecretSpec] = Field(default_factory=dict)
    # `warden run` needs at least one step (missions.checks, require_steps); under `warden mcp` the
    # agent supplies the actions, so steps may be absent and `goal` is offered as the instructions.
    steps: list[Step] = Field(default_factory=list)
    goal: str = ""

    def policy_document(self) -> dict[str, Any]:
        """The effective policy as plain JSON data (defaults included, secret values never present)."""
        return {
            "boundaries": self.boundaries.model_dump(mode="json"),
            "danger_zones_defaults": self.danger_zones_defaults,
            "danger_zones": [z.model_dump(mode="json") for z in self.danger_zones],
            "approvals": self.approvals.model_dump(mode="json"),
            "pii": self.pii.model_dump(mode="json"),
            "secrets": {name: spec.model_dump(mode="json") for name, spec in sorted(self.secrets.items())},
        }
