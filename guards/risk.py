"""The mission risk score (SPEC §4): sensitivity × autonomy, reduced by the mitigations in force.

The formula (documented with a worked example in ``docs/risk.md``)::

    sensitivity S (0-100) = classes + handled entities                           (capped at 100)
    autonomy    A (0-100) = side-effecting kinds + domains + http + downloads
                            + steps + agent-driven                               (capped at 100)
    inherent    I         = round((S + A) / 2)
    credit      C (%)     = allowlist + approvals + approver list + four eyes
                            + PII policy + evidence                              (capped at 70)
    score                 = round(I × (100 − C) / 100)

    decision  deny                   score ≥ 50, or S ≥ 50 with side effects and no approval
                                     gate, or secrets bound to a non-loopback host with allow_http
              allow with approvals   otherwise, when an approval gate can trigger
              allow                  otherwise

Everything is integer arithmetic (rounding half up), so the same mission always gets the same
numbers. The score is computed from the mission file alone; nothing is fetched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from missions.model import SIDE_EFFECT_KINDS, Mission

RiskDecision = Literal["allow", "allow with approvals", "deny"]

# -- sensitivity ---------------------------------------------------------------------------------
CLASS_POINTS: dict[str, int] = {"regulated": 40, "financial": 25, "pii": 15, "secrets": 15}
# Entities a mission is declared to handle (pii.allow): identifiers that open accounts or money
# weigh more than contact details.
HIGH_RISK_ENTITIES: frozenset[str] = frozenset({
    "CREDIT_CARD", "US_SSN", "IBAN_CODE", "US_BANK_NUMBER", "US_PASSPORT", "US_DRIVER_LICENSE",
    "US_ITIN", "MEDICAL_LICENSE", "CRYPTO", "UK_NHS", "UK_NINO", "IN_AADHAAR", "IN_PAN", "AU_TFN",
    "AU_MEDICARE", "SG_NRIC_FIN", "ES_NIF", "IT_FISCAL_CODE",
})
HIGH_ENTITY_POINTS = 5
ENTITY_POINTS = 3

# -- autonomy ------------------------------------------------------------------------------------
GATED_KINDS: frozenset[str] = frozenset({"click", "press"})  # what danger zones pause (fill: via field+above)
KIND_POINTS = 7
HOST_POINTS = 5
WILDCARD_POINTS = 10
RESOURCE_HOST_POINTS = 2
RESOURCE_WILDCARD_POINTS = 5
DOMAIN_CAP = 30
HTTP_POINTS = 8
QUARANTINE_POINTS = 6
STEPS_PER_POINT = 3
STEPS_CAP = 10
AGENT_POINTS = 30  # an agent choosing its own steps; every mission is scripted today

# -- mitigations and decision --------------------------------------------------------------------
ALLOWLIST_CREDIT = 20
ALLOWLIST_WILDCARD_PENALTY = 5
ALLOWLIST_HTTP_PENALTY = 5
APPROVALS_CREDIT = 25  # danger zones over side-effecting actions
STEP_APPROVALS_CREDIT = 15  # only explicit `approve: true` steps
APPROVER_LIST_CREDIT = 5
FOUR_EYES_CREDIT = 5
PII_CREDIT_EACH = 5  # on_request: block; on_input: approve or block
EVIDENCE_CREDIT = 10
CREDIT_CAP = 70
DENY_AT = 50
SENSITIVE_AT = 50


@dataclass(frozen=True)
class Factor:
    label: str
    points: int


@dataclass(frozen=True)
class RiskAssessment:
    sensitivity: int
    sensitivity_factors: tuple[Factor, ...]
    autonomy: int
    autonomy_factors: tuple[Factor, ...]
    mitigations: tuple[Factor, ...]  # points = percent credit
    credit: int
    inherent: int
    score: int
    decision: RiskDecision
    reasons: tuple[str, ...]
    approvals_in_force: bool


def _round_div(n: int, d: int) -> int:
    """n / d rounded half up (n, d ≥ 0)."""
    return (2 * n + d) // (2 * d)


def combine(sensitivity: int, autonomy: int, credit: int) -> tuple[int, int]:
    """(inherent, score) from S, A and the mitigation credit in percent (capped at ``CREDIT_CAP``)."""
    inherent = _round_div(sensitivity + autonomy, 2)
    credit = max(0, min(credit, CREDIT_CAP))
    return inherent, _round_div(inherent * (100 - credit), 100)


def sensitivity_of(mission: Mission) -> tuple[int, tuple[Factor, ...]]:
    factors: list[Factor] = []
    classes = list(dict.fromkeys(mission.data_classes))
    for cls in classes:
        factors.append(Factor(f"data class {cls}", CLASS_POINTS[cls]))
    if mission.secrets and "secrets" not in classes:
        factors.append(Factor(f"secrets declared ({len(mission.secrets)}): class secrets", CLASS_POINTS["secrets"]))
    for entity in dict.fromkeys(mission.pii.allow):
        high = entity in HIGH_RISK_ENTITIES
        factors.append(Factor(f"handles {entity}", HIGH_ENTITY_POINTS if high else ENTITY_POINTS))
    return min(100, sum(f.points for f in factors)), tuple(factors)


def autonomy_of(mission: Mission) -> tuple[int, tuple[Factor, ...]]:
    b = mission.boundaries
    factors: list[Factor] = []
    kinds = [k for k in SIDE_EFFECT_KINDS if k in b.allowed_actions]
    if kinds:
        factors.append(Factor(f"side-effecting actions: {', '.join(kinds)}", KIND_POINTS * len(kinds)))
    wild = [d for d in b.allowed_domains if d.startswith("*.")]
    exact = [d for d in b.allowed_domains if not d.startswith("*.")]
    res_wild = [d for d in b.allowed_resource_domains if d.startswith("*.")]
    res_exact = [d for d in b.allowed_resource_domains if not d.startswith("*.")]
    domain_points = (
        HOST_POINTS * len(exact) + WILDCARD_POINTS * len(wild)
        + RESOURCE_HOST_POINTS * len(res_exact) + RESOURCE_WILDCARD_POINTS * len(res_wild)
    )
    detail = f"{len(exact)} host(s), {len(wild)} wildcard(s)"
    if b.allowed_resource_domains:
        detail += f", {len(b.allowed_resource_domains)} resource domain(s)"
    factors.append(Factor("domains: " + detail, min(DOMAIN_CAP, domain_points)))
    if b.allow_http:
        factors.append(Factor("plain http allowed", HTTP_POINTS))
    if b.downloads == "quarantine":
        factors.append(Factor("downloads kept (quarantine)", QUARANTINE_POINTS))
    factors.append(Factor(f"{len(mission.steps)} steps", min(STEPS_CAP, len(mission.steps) // STEPS_PER_POINT)))
    factors.append(Factor(f"scripted: fixed steps (an agent-driven mission would add {AGENT_POINTS})", 0))
    return min(100, sum(f.points for f in factors)), tuple(factors)


def _approval_gates(mission: Mission) -> tuple[int, str | None]:
    """(credit, description) of the approval gates that can pause this mission."""
    allowed = set(mission.boundaries.allowed_actions)
    side_effects = allowed & set(SIDE_EFFECT_KINDS)
    zones = len(mission.danger_zones)
    approve_steps = sum(1 for s in mission.steps if s.needs_approval)
    field_zones = any(z.field is not None for z in mission.danger_zones)
    zones_bite = (mission.danger_zones_defaults or zones > 0) and bool(allowed & GATED_KINDS or (
        field_zones and "fill" in allowed))
    if zones_bite and side_effects:
        parts = [f"{zones} danger zone(s)"] if zones else []
        if mission.danger_zones_defaults:
            parts.append("the built-in zones")
        if approve_steps:
            parts.append(f"{approve_steps} step(s) with approve: true")
        return APPROVALS_CREDIT, "approvals: " + " + ".join(parts)
    if approve_steps:
        return STEP_APPROVALS_CREDIT, f"approvals: {approve_steps} step(s) with approve: true only"
    return 0, None


def mitigations_of(mission: Mission) -> tuple[int, tuple[Factor, ...], bool]:
    b = mission.boundaries
    factors: list[Factor] = []
    allowlist = ALLOWLIST_CREDIT
    notes = []
    if any(d.startswith("*.") for d in (*b.allowed_domains, *b.allowed_resource_domains)):
        allowlist -= ALLOWLIST_WILDCARD_PENALTY
        notes.append("wildcards")
    if b.allow_http:
        allowlist -= ALLOWLIST_HTTP_PENALTY
        notes.append("plain http")
    factors.append(Factor("domain allowlist" + (f" (with {' and '.join(notes)})" if notes else ""), allowlist))
    gate_credit, gate_label = _approval_gates(mission)
    if gate_label is not None:
        factors.append(Factor(gate_label, gate_credit))
    if mission.approvals.approvers is not None:
        factors.append(Factor(f"approvers limited to {len(mission.approvals.approvers)}", APPROVER_LIST_CREDIT))
    if mission.approvals.four_eyes:
        factors.append(Factor("four eyes", FOUR_EYES_CREDIT))
    pii = mission.pii
    pii_parts = []
    if pii.on_request == "block":
        pii_parts.append("request=block")
    if pii.on_input in ("approve", "block"):
        pii_parts.append(f"input={pii.on_input}")
    if pii_parts:
        factors.append(Factor("PII policy " + ", ".join(pii_parts), PII_CREDIT_EACH * len(pii_parts)))
    factors.append(Factor("evidence: hash-chained records, fail closed", EVIDENCE_CREDIT))
    types_values = bool(set(b.allowed_actions) & {"fill", "select", "press"})
    pii_gates = "approve" in (pii.on_page, pii.on_request) or (pii.on_input == "approve" and types_values)
    in_force = gate_label is not None or pii_gates
    return min(CREDIT_CAP, sum(f.points for f in factors)), tuple(factors), in_force


def _loopback(pattern: str) -> bool:
    """A host pattern that can only name this machine (plain http to it never crosses a network)."""
    host = pattern.lower()
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    host = host.removeprefix("*.").rstrip(".")
    return host in ("localhost", "::1") or host.endswith(".localhost") or host.startswith("127.")


def assess(mission: Mission) -> RiskAssessment:
    s, s_factors = sensitivity_of(mission)
    a, a_factors = autonomy_of(mission)
    credit, m_factors, approvals_in_force = mitigations_of(mission)
    inherent, score = combine(s, a, credit)
    side_effects = sorted(set(mission.boundaries.allowed_actions) & set(SIDE_EFFECT_KINDS))
    gate_credit, _ = _approval_gates(mission)
    deny: list[str] = []
    if score >= DENY_AT:
        deny.append(f"residual risk {score} is at or above {DENY_AT}: narrow the mission or add mitigations")
    if s >= SENSITIVE_AT and side_effects and gate_credit == 0:
        deny.append(
            f"sensitive data (sensitivity {s}) with side-effecting actions ({', '.join(side_effects)}) and no "
            "approval gate: keep danger_zones_defaults, declare danger_zones, or mark steps approve: true"
        )
    exposed = sorted({d for spec in mission.secrets.values() for d in spec.domains if not _loopback(d)})
    if exposed and mission.boundaries.allow_http:
        deny.append(
            f"secrets go to {', '.join(exposed)} and plain http is allowed: a secret could travel in clear"
        )
    decision: RiskDecision
    if deny:
        decision, reasons = "deny", tuple(deny)
    elif approvals_in_force:
        decision = "allow with approvals"
        reasons = (
            f"residual risk {score} is below {DENY_AT}",
            "irreversible actions pause for a recorded human decision",
        )
    else:
        decision = "allow"
        reasons = (f"residual risk {score} is below {DENY_AT}", "no approval gate can trigger")
    return RiskAssessment(
        sensitivity=s, sensitivity_factors=s_factors, autonomy=a, autonomy_factors=a_factors,
        mitigations=m_factors, credit=credit, inherent=inherent, score=score, decision=decision,
        reasons=reasons, approvals_in_force=approvals_in_force,
    )
