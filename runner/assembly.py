"""Assembling a run from its mission, in two steps, each returning a complete frozen value.

``assemble`` builds what must exist before the evidence writer (the domain policy, the PII
machinery, the redactor the writer needs): a ``PreparedRun``. ``complete`` builds, once the writer
and its recorder exist, everything that writes records — the step chain, the request gate, the
approval desk — and returns the ``RunServices`` the run loop uses; nothing is mutated after.
One function per concern, in chain order: adding a guard means adding it here; the step loop and
the run do not change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from evidence.redact import RedactorChain, SecretRedactor
from guards.base import Guard, StepChain
from guards.least_privilege import least_privilege_guards
from guards.urlmatch import DomainPolicy
from missions.loader import LoadedMission

if TYPE_CHECKING:
    from guards.base import RequestGuard
    from runner.approvals.human import ApprovalOptions
    from runner.approvals.seam import Approvals
    from runner.network import ApprovalView, NetworkGate
    from runner.pii_runtime import PiiRuntime
    from runner.recorder import RunRecorder


@dataclass(frozen=True)
class PreparedRun:
    """What exists before the evidence writer: the policy, the PII machinery, the writer's redactor."""

    policy: DomainPolicy
    redactor: RedactorChain
    pii: PiiRuntime | None  # the PII scanner, evidence key, known values, secret bindings (build_pii)


@dataclass(frozen=True)
class RunServices:
    """Everything the step loop needs beyond the driver, built complete by ``complete``."""

    policy: DomainPolicy
    redactor: RedactorChain
    pii: PiiRuntime | None
    chain: StepChain
    request_gate: NetworkGate
    approvals: Approvals


def domain_policy(loaded: LoadedMission) -> DomainPolicy:
    b = loaded.mission.boundaries
    return DomainPolicy(b.allowed_domains, b.allowed_resource_domains, allow_http=b.allow_http)


def build_pii(loaded: LoadedMission, environ: Mapping[str, str], evidence_dir: Path | None = None) -> PiiRuntime:
    """The run's PII machinery, built once before the evidence opens (docs/pii.md).

    One offline Presidio analyzer (no model download, ever) holding the recognizers of the mission's
    entities (``pii.entities``, default ``engine.default_entities``) and of the redaction set; the
    evidence key (``WARDEN_EVIDENCE_KEY``, else ``.warden-key`` mode 0600 in the evidence dir root);
    the known-value redactor pre-fed with every value the mission's steps type. Errors: an engine
    that cannot be built offline (model missing, entity needing a model) or a bad key is exit 2, an
    evidence dir where the key file cannot be created is exit 5 — all before anything runs.
    """
    from guards.pii.engine import TECHNICAL_ENTITIES, build_analyzer, default_entities
    from guards.pii.keyed import load_evidence_key
    from guards.pii.redactor import KnownValueRedactor
    from guards.pii.scanner import PiiScanner
    from guards.pii_guards import registrable, typed_values
    from guards.secrets import SecretSet
    from kernel.errors import EvidenceUnavailable
    from missions.interpolate import InterpolationError, interpolate_args
    from runner.pii_runtime import PiiRuntime

    pii = loaded.mission.pii
    entities = list(pii.entities) if pii.entities is not None else default_entities(pii.nlp_model)
    redact_entities = sorted(set(default_entities(pii.nlp_model)) | (set(entities) - TECHNICAL_ENTITIES))
    analyzer = build_analyzer(sorted(set(entities) | set(redact_entities)), pii.nlp_model)
    directory = evidence_dir or Path(environ.get("WARDEN_EVIDENCE_DIR", "warden-evidence"))
    try:
        key = load_evidence_key(directory, environ)
    except OSError as exc:
        raise EvidenceUnavailable(f"evidence key file cannot be created in {directory}: {exc.strerror}") from exc
    scanner = PiiScanner(pii.model_copy(update={"entities": entities}), key.key, analyzer=analyzer, offload_phone=True)
    redaction = PiiScanner(pii.model_copy(update={"entities": redact_entities}), key.key, analyzer=analyzer)
    secrets = SecretSet({
        name: (value, list(loaded.mission.secrets[name].domains))
        for name, value in loaded.secret_values.items() if name in loaded.mission.secrets
    })
    runtime = PiiRuntime(scanner.policy, scanner, key, KnownValueRedactor(), secrets, redaction_scanner=redaction)
    for step in loaded.mission.steps:  # typed values are known before the first record (mission.yaml too)
        raw = step.args.model_dump(exclude_none=True, by_alias=False)
        try:
            args, _ = interpolate_args(raw, loaded.cli_vars, loaded.secret_values)
        except InterpolationError:
            continue  # built from a value extracted at run time: registered when typed
        for field_name, value in typed_values(step.kind, args):
            if registrable(step.kind, field_name, value):
                runtime.register_typed(value)
    return runtime


def build_redactor(
    loaded: LoadedMission, environ: Mapping[str, str], pii: PiiRuntime | None = None
) -> RedactorChain:
    """The writer's one choke point: secrets first (exact values), then anything detected as PII
    (``PiiRedactor``: detection, plus the run's known values — everything typed or detected)."""
    chain = RedactorChain([SecretRedactor(loaded.secret_values)])
    if pii is not None:
        from guards.pii.redactor import PiiRedactor

        chain.add(PiiRedactor(pii.redaction_scanner or pii.scanner, pii.known))
    return chain


def build_step_guards(loaded: LoadedMission, services: PreparedRun) -> list[Guard]:
    """The chain every step walks, in order: least privilege first."""
    from guards.danger_zones import DangerZoneGuard, DangerZones

    guards: list[Guard] = list(least_privilege_guards(services.policy))
    # Danger zones: require_approval for an action whose resolved target (or page, or field value)
    # is in a zone; the approval gate below answers it.
    guards.append(DangerZoneGuard(DangerZones.from_mission(loaded.mission)))
    if services.pii is not None:  # secrets typed only on their hosts; PII in typed values per pii.on_input
        from guards.pii_guards import PiiInputGuard
        from guards.secrets import SecretInputGuard

        rt = services.pii
        guards.append(SecretInputGuard(rt.secrets))
        guards.append(PiiInputGuard(rt.scanner, rt.policy.on_input, rt.secrets))
    return guards


def build_preflight_chain(loaded: LoadedMission) -> StepChain:
    """The chain walked over every step before the run (nothing is running yet: no page, no recorder)."""
    return StepChain(least_privilege_guards(domain_policy(loaded)))


def build_request_gate(
    loaded: LoadedMission, services: PreparedRun, recorder: RunRecorder, zone_view: ApprovalView | None = None
) -> NetworkGate:
    """The in-browser gate every routed request passes.

    Guards run in order; the domain guard is first (a request to a host outside the list is refused
    before any other guard reads its body). A PII or secret refusal asks the run to stop (exit 3);
    what the PII guard found is recorded by the PII runtime. Quarantined downloads become
    ``quarantine/`` attachments. Last, the danger zones' backstop (``StateChangeGuard``): a
    state-changing request into a url zone, to a gated control's form action or from a zone page
    is refused unless an approval of the current step (``zone_view``, set by the desk) covers it.
    """
    from guards.domains import DomainRequestGuard
    from guards.state_change import StateChangeGuard
    from runner.network import NetworkGate

    view = zone_view if zone_view is not None else zone_view_for(loaded)
    guards: list[RequestGuard] = [
        DomainRequestGuard(services.policy), *build_request_guards(loaded, services),
        StateChangeGuard(view.url_zones, view),
    ]
    observe = services.pii.observe if services.pii is not None else None
    return NetworkGate(guards, recorder, attach=recorder.writer.attach_bytes, observe=observe)


def build_request_guards(loaded: LoadedMission, services: PreparedRun) -> list[RequestGuard]:
    """After the domain guard: secrets (never sent off their domains), then PII (``pii.on_request``)."""
    if services.pii is None:
        return []
    from guards.pii_guards import PiiRequestGuard
    from guards.secrets import SecretRequestGuard

    rt = services.pii
    return [SecretRequestGuard(rt.secrets), PiiRequestGuard(rt.scanner, rt.policy.on_request)]


def zone_view_for(loaded: LoadedMission) -> ApprovalView:
    """The run's read-only view of gated and approved destinations (desk writes, backstop reads)."""
    from runner.network import ApprovalView

    return ApprovalView([(z.name, z.url) for z in loaded.mission.danger_zones if z.url is not None])


def build_approvals(
    loaded: LoadedMission, services: PreparedRun, recorder: RunRecorder, opts: ApprovalOptions,
    zone_view: ApprovalView | None = None,
) -> Approvals:
    """Human approvals (runner/approvals/human.py) with their channel: ``--approval prompt|deny|queue``.

    Default channel: ``prompt`` when the controlling terminal ``/dev/tty`` can be opened, else ``deny``.
    """
    from guards.risk import assess
    from runner.approvals.channels import make_channel
    from runner.approvals.human import HumanApprovals, initiator_user

    mission = loaded.mission
    channel = make_channel(
        opts.mode,
        approver=opts.approver,
        policy=mission.approvals,
        evidence_dir=opts.evidence_dir or recorder.writer.folder.root.parent.parent,
        db_url=opts.db_url,
    )
    try:
        risk: int | None = assess(mission).score
    except Exception:  # the score is shown to the approver; its absence must not stop the gate
        risk = None
    return HumanApprovals(
        recorder, channel, mission, initiator=initiator_user(), secrets=loaded.secret_values, risk_score=risk,
        digest_key=services.pii.key.key if services.pii is not None else None,  # the digest is an HMAC
        zone_view=zone_view,
    )


def assemble(loaded: LoadedMission, environ: Mapping[str, str], evidence_dir: Path | None = None) -> PreparedRun:
    """The parts that must exist before the evidence writer (policy, PII machinery, redactor)."""
    from guards.pii.warm_up import wants_warm_up, warm_up

    pii = build_pii(loaded, environ, evidence_dir)
    prepared = PreparedRun(policy=domain_policy(loaded), redactor=build_redactor(loaded, environ, pii), pii=pii)
    if wants_warm_up(loaded.mission.data_classes):  # its pages hold PII: their first scan's first-use
        warm_up(pii.scanner)  # costs paid here, while Chromium launches (guards/pii/warm_up.py)
    return prepared


def complete(
    loaded: LoadedMission, prepared: PreparedRun, recorder: RunRecorder, approval_options: ApprovalOptions
) -> RunServices:
    """The parts that write records, built once the writer and recorder exist: the whole run's services."""
    pii = prepared.pii
    if pii is None:  # fail closed: no secret/PII guard, no page scan, no masked screenshot otherwise
        from kernel.errors import SandboxUnavailable

        raise SandboxUnavailable("the run's PII runtime was not built: the run cannot be contained")
    zone_view = zone_view_for(loaded)
    gate = build_request_gate(loaded, prepared, recorder, zone_view)
    pii.bind(recorder, lambda: gate.stop_requested)
    return RunServices(
        policy=prepared.policy,
        redactor=prepared.redactor,
        pii=pii,
        chain=StepChain(build_step_guards(loaded, prepared), observe=pii.observe if pii is not None else None),
        request_gate=gate,
        approvals=build_approvals(loaded, prepared, recorder, approval_options, zone_view),
    )
