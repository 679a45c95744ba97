"""``report.html``: one self-contained page for reviewing a run (SPEC §5).

Written at the end of every run and again by ``warden evidence report RUN``. It reads the folder
(the source of truth) and states the verify verdict computed when the page was written, so a
reader knows whether what they see was intact at that moment (run ``warden evidence verify`` for
now). Self-contained: inline CSS, screenshots embedded as ``data:`` URIs, and a Content Security
Policy that forbids scripts and any network fetch.

Records carry page-derived text: every value is HTML-escaped, and control and bidi-override
characters are shown as escapes, so a page cannot inject markup or visually reorder what the
auditor reads.
"""

from __future__ import annotations

import base64
import hashlib
import string
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from evidence.index import EvidenceIndex
from evidence.report_html import (
    Escapes,
    JsonLines,
    _dict,
    _facts,
    _kv,
    _section,
    _table,
    _ts,
    badge,
    h,
    pretty_json,
    pretty_json_plain,
)
from evidence.runfolder import RunFolder, RunInfo, utc_timestamp
from evidence.timeline import finding_count, finding_summary
from evidence.verify import VerifyReport, verify_run
from kernel import __version__

_EMBEDDABLE = frozenset({"image/png", "image/jpeg", "image/webp"})
_MAX_EMBED = 8 * 1024 * 1024  # bytes per screenshot; larger ones are linked by name only
@dataclass
class _Run:
    folder: RunFolder
    info: RunInfo | None
    records: list[dict[str, Any]]
    plain: list[bool]  # per record: no float the fast pretty form writes otherwise (JsonLines)
    unreadable: int
    verify: VerifyReport
    by_step: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    def of(self, *types: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("type") in types]


def _load(folder: RunFolder, index: EvidenceIndex | None) -> _Run:
    info: RunInfo | None
    try:
        info = folder.read_run_info()
    except (OSError, ValueError):
        info = None
    records: list[dict[str, Any]] = []
    plain: list[bool] = []
    reader = JsonLines()
    unreadable = 0
    try:
        raw = folder.records.read_bytes()
    except OSError:
        raw = b""
    for chunk in raw.split(b"\n"):
        if not chunk.strip():
            continue
        try:
            data, odd = reader.loads(chunk.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            unreadable += 1
            continue
        if isinstance(data, dict):
            records.append(data)
            plain.append(not odd)
        else:
            unreadable += 1
    run = _Run(folder, info, records, plain, unreadable, verify_run(folder.root, index))
    steps: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if isinstance(r.get("step"), int):
            steps[r["step"]].append(r)
    run.by_step = dict(sorted(steps.items()))
    return run


def _image(folder: RunFolder, att: dict[str, Any]) -> str:
    rel = str(att.get("path", ""))
    media = str(att.get("media_type", ""))
    root = folder.root.resolve()
    target = (root / rel).resolve()
    caption = h(rel)
    if not rel or not target.is_relative_to(root) or not target.is_file():
        return f'<figure><div class="noshot">{caption}: missing</div></figure>'
    if media not in _EMBEDDABLE or target.stat().st_size > _MAX_EMBED:
        return f'<figure><div class="noshot">{caption} ({h(media)}): not embedded</div></figure>'
    data = target.read_bytes()
    altered = hashlib.sha256(data).hexdigest() != att.get("sha256")
    note = ' — <b style="color:var(--bad)">does not match its recorded sha256</b>' if altered else ""
    uri = f"data:{media};base64,{base64.b64encode(data).decode('ascii')}"
    return f'<figure><img src="{uri}" alt="{caption}" loading="lazy"><figcaption>{caption}{note}</figcaption></figure>'


def _header(run: _Run, written_at: str) -> str:
    info, v = run.info, run.verify
    start = next((r for r in run.records if r.get("type") == "run_record" and r.get("phase") == "start"), {})
    mission = info.mission_id if info else start.get("mission_id", "?")
    version = info.mission_version if info else start.get("mission_version", "?")
    verdict_cls = "ok" if v.ok else "bad"
    verdict = "INTACT" if v.ok else "ALTERED"
    detail = (f"{v.record_count} records, {v.attachments_checked} attachments, chain verified"
              if v.ok else f"{len(v.problems)} problem(s) found")
    return f"""
<header class="top"><div class="inner">
  <div>
    <div class="kicker">Warden evidence report</div>
    <h1>Mission {h(mission)} <span style="opacity:.7;font-weight:500">v{h(version)}</span></h1>
    <div class="sub mono">run {h(run.folder.run_id)}</div>
  </div>
  <div class="verdict {verdict_cls}" id="verdict">
    <div class="small">verify verdict at {h(written_at)}</div>
    <div class="big">{verdict}</div>
    <div class="small">{h(detail)}</div>
  </div>
</div></header>"""


def _overview(run: _Run) -> str:
    info, v = run.info, run.verify
    start: dict[str, Any] = next(
        (r for r in run.records if r.get("type") == "run_record" and r.get("phase") == "start"), {}
    )
    end: dict[str, Any] = next(
        (r for r in reversed(run.records) if r.get("type") == "run_record" and r.get("phase") == "end"), {}
    )
    initiator = info.initiator if info and info.initiator else start.get("initiator") or {}
    who = f"{initiator.get('user', '?')}@{initiator.get('host', '?')}"
    if initiator.get("uid"):
        who += f" (uid {initiator['uid']})"
    status = info.status if info else v.status
    exit_code = info.exit_code if info else end.get("exit_code")
    sha = info.mission_sha256 if info else start.get("mission_sha256", "")
    raw_versions = start.get("versions")
    versions: dict[str, Any] = raw_versions if isinstance(raw_versions, dict) else {}
    rows = [
        ("Mission", f"{h(info.mission_id if info else start.get('mission_id'))} "
                    f"v{h(info.mission_version if info else start.get('mission_version'))}"),
        ("Mission sha256", f'<span class="mono">{h(sha)}</span>'),
        ("Run", f'<span class="mono">{h(run.folder.run_id)}</span>'),
        ("Initiator", h(who)),
        ("Started by", h(start.get("started_by", "—"))),
        ("Outcome", f"{badge(status)} exit {h('—' if exit_code is None else exit_code)}"),
        ("Started", h(info.started_at if info else start.get("started_at", "—"))),
        ("Ended", h((info.ended_at if info else end.get("ended_at")) or "—")),
        ("Variables", h(", ".join(info.variables if info else start.get("variables") or []) or "—")),
        ("Versions", h(", ".join(f"{k} {val}" for k, val in versions.items()) or "—")),
        ("Records", h(f"{v.record_count}" + (f" (+{run.unreadable} unreadable lines)" if run.unreadable else ""))),
        ("Chain head", f'<span class="mono">{h(v.head)}</span>'),
    ]
    counts = Counter(str(r.get("type")) for r in run.records)
    decisions = run.of("decision_record")
    denied = sum(1 for d in decisions if d.get("decision") == "deny")
    stats = [
        ("steps", len(run.by_step)),
        ("decisions", len(decisions)),
        ("refusals", denied),
        ("approvals", counts["approval_record"]),
        ("PII findings", sum(finding_count(p) for p in run.of("pii_finding"))),
        ("exceptions", counts["exception_record"]),
        ("screenshots", sum(len(r.get("attachments") or []) for r in run.records if r.get("type") != "run_record")),
    ]
    stat_html = "".join(f'<div class="stat"><b>{n}</b>{h(label)}</div>' for label, n in stats)
    problems = "".join(f"<li>{h(p)}</li>" for p in v.problems)
    notes = "".join(f"<li>{h(n)}</li>" for n in v.notes)
    verify_html = ""
    if problems:
        verify_html += f'<h3>Integrity problems</h3><ul class="problems" id="problems">{problems}</ul>'
    if notes:
        verify_html += f'<ul class="notes">{notes}</ul>'
    return _section("Overview", _facts(rows) + f'<div class="stats">{stat_html}</div>' + verify_html, ident="overview")


def _steps(run: _Run) -> str:
    parts = []
    for n, recs in run.by_step.items():
        intent = next((r for r in recs if r.get("type") == "action_record" and r.get("phase") == "intent"), None)
        outcome = next((r for r in reversed(recs) if r.get("type") == "action_record"
                        and r.get("phase") == "outcome"), None)
        chain = next((r for r in recs if r.get("type") == "decision_record" and r.get("guard") == "chain"), None)
        decision = chain or next((r for r in recs if r.get("type") == "decision_record"), None)
        kind = (intent or outcome or decision or {}).get("kind") or "?"
        verdict = outcome.get("outcome") if outcome else ("refused" if decision and decision.get("decision") == "deny"
                                                          else "no outcome")
        if verdict == "refused":
            verdict = "blocked"
        call = (outcome or intent or {}).get("call") or ""
        details = []
        if decision is not None:
            guard, why = h(decision.get("guard")), h(decision.get("rationale"))
            details.append(f"{badge(decision.get('decision'))} {guard}: {why}")
        target = (intent or outcome or {}).get("target")
        if isinstance(target, dict) and target:
            details.append("target " + h(" ".join(f"{k}={val}" for k, val in target.items())))
        if outcome is not None:
            bits = []
            if isinstance(outcome.get("duration_ms"), int | float):
                bits.append(f"{outcome['duration_ms']:.0f} ms")
            if outcome.get("retries"):
                bits.append(f"{outcome['retries']} retries")
            if outcome.get("url_after"):
                bits.append(f"→ {outcome['url_after']}")
            if bits:
                details.append(h(" · ".join(str(b) for b in bits)))
            if outcome.get("error"):
                details.append(f'<span style="color:var(--bad)">{h(outcome["error"])}</span>')
        for r in recs:
            if r.get("type") == "approval_record" or r.get("type") == "approval_request":
                details.append(f"approval {h(r.get('approval_id'))}: {badge(r.get('decision') or 'asked')}")
            elif r.get("type") == "pii_finding":
                details.append(f"PII {badge(r.get('action'))} {h(finding_summary(r))}")
            elif r.get("type") == "exception_record":
                what = f"{h(r.get('category'))}/{h(r.get('error_type'))}"
                details.append(f"exception {what} {badge(r.get('mitigation'))}")
        shots = [
            _image(run.folder, a) for r in recs for a in (r.get("attachments") or [])
            if isinstance(a, dict)
        ]
        shots_html = "".join(shots) or '<div class="noshot">no screenshot</div>'
        time = (intent or decision or recs[0]).get("time", "")
        detail_html = "".join(f'<div class="detail">{d}</div>' for d in details)
        parts.append(
            f'<div class="step" id="step-{n}"><div class="num">{n}<small>{h(str(time)[11:23])}</small></div>'
            f'<div><div class="what">{h(kind)} {badge(verdict)}</div>'
            f'<div class="detail mono">{h(call)}</div>{detail_html}</div>'
            f'<div class="shots">{shots_html}</div></div>'
        )
    inner = "".join(parts) or '<p class="empty">No step was executed.</p>'
    return _section("Timeline of steps", inner, len(run.by_step), "steps")


def _decisions(run: _Run) -> str:
    rows = []
    for d in run.of("decision_record"):
        subject = _kv(d.get("subject"))
        count = d.get("count", 1)
        rows.append([
            _ts(d.get("time")), h(d.get("step") if d.get("step") is not None else "—"), h(d.get("guard")),
            h(d.get("kind") or "—"), badge(d.get("decision")),
            h(d.get("rationale")) + (f" <b>×{h(count)}</b>" if isinstance(count, int) and count > 1 else ""),
            h(d.get("rule") or "—"), subject,
        ])
    table = _table(["time", "step", "guard", "kind", "decision", "rationale", "rule", "subject"], rows,
                   "No decisions recorded.")
    return _section("Decisions (guard verdicts and network refusals)", table, len(rows), "decisions")


def _approvals(run: _Run) -> str:
    requests = {r.get("approval_id"): r for r in run.of("approval_request")}
    answers = {r.get("approval_id"): r for r in run.of("approval_record")}
    rows = []
    for aid in dict.fromkeys([*requests, *answers]):
        q, a = requests.get(aid, {}), answers.get(aid, {})
        who = a.get("approver") or "—"
        if a.get("os_user"):
            who = f"{who} (OS user {a.get('os_user')})"
        rows.append([
            f'<span class="mono">{h(aid)}</span>', h(q.get("step", "—")), h(q.get("kind", "—")),
            h(f"{q.get('zone', '—')} / {q.get('rule') or a.get('rule') or '—'}") + "<br>" + h(q.get("reason", "")),
            _ts(q.get("time")), badge(a.get("decision") or "pending"), h(who), _ts(a.get("answered_at")),
            h(a.get("reason") or "—"), h(a.get("channel") or q.get("channel") or "—"),
        ])
    table = _table(["approval", "step", "kind", "zone / rule — asked because", "asked", "decision", "who", "when",
                    "why", "channel"], rows, "No approval was requested.")
    return _section("Approvals", table, len(rows), "approvals")


def _pii(run: _Run) -> str:
    """One row per value found; a scan's record (v2) spreads over its values' rows.

    A PII-heavy run has thousands of rows sharing a few dozen strings (entity, action, page, element):
    the record's own cells, and its location's pairs, are escaped once per record and each repeated
    string or number once (``Escapes``); a value's location (``_kv`` of the record's merged with the
    value's own) is the record's rendered pairs with the value's pairs merged in, in the same order."""
    rows = []
    esc = Escapes()
    for p in run.of("pii_finding"):
        values = p.get("values")
        entries = values if isinstance(values, list) else [p]  # v1: the record is its one value
        time, step = _ts(p.get("time")), h(p.get("step") if p.get("step") is not None else "—")
        where_found, policy = h(p.get("where")), h(p.get("policy"))
        place = {k: esc.pair(k, x) for k, x in _dict(p.get("location")).items()}
        for v in entries:
            v = v if isinstance(v, dict) else {}
            own = _dict(v.get("location")) if v is not p else {}
            where = {**place, **{k: esc.pair(k, x) for k, x in own.items()}} if own else place
            seen = v.get("occurrences")
            rows.append([
                time, step, esc(v.get("entity_type")), esc.number(v.get("score")), where_found,
                f'<span class="mono">{h(v.get("preview"))}</span>'
                + (f" ×{h(seen)}" if isinstance(seen, int) and seen > 1 else ""),
                policy, esc.badge(v.get("action")), "<br>".join(where.values()),
            ])
    table = _table(["time", "step", "entity", "score", "where", "preview (masked)", "policy", "action", "location"],
                   rows, "No PII finding recorded.")
    return _section("PII findings (as recorded: masked, values never stored)", table, len(rows), "pii")


def _exceptions(run: _Run) -> str:
    rows = [[
        _ts(e.get("time")), h(e.get("step") if e.get("step") is not None else "—"), h(e.get("category")),
        h(e.get("error_type")), h(e.get("message")), badge(e.get("mitigation")), h(e.get("attempt") or "—"),
    ] for e in run.of("exception_record")]
    table = _table(["time", "step", "category", "error", "message", "mitigation", "attempt"], rows,
                   "No exception recorded.")
    return _section("Exceptions", table, len(rows), "exceptions")


def _versions(run: _Run) -> str:
    rows = [[
        h(v.get("subject")), h(v.get("subject_id")),
        f'<span class="mono">{h((v.get("old_sha256") or "—")[:16])} → {h(str(v.get("new_sha256"))[:16])}</span>',
        h(f"{v.get('old_version')} → {v.get('new_version')}"),
        "<br>".join(h(c) for c in v.get("changes") or []) or "—", h(v.get("why") or "—"),
    ] for v in run.of("version_log")]
    if not rows:
        return ""
    table = _table(["subject", "id", "sha256", "version", "changes", "why"], rows, "")
    return _section("Version changes", table, len(rows), "versions")


def _appendix(run: _Run) -> str:
    items = []
    for r, plain in zip(run.records, run.plain, strict=True):
        pretty = pretty_json_plain(r) if plain else pretty_json(r)
        items.append(
            f'<details class="record"><summary><span class="mono">#{h(r.get("seq"))}</span> {h(r.get("time"))} '
            f"<b>{h(r.get('type'))}</b></summary><pre>{h(pretty, keep_newlines=True)}</pre></details>"
        )
    return _section("All records (as written)", "".join(items), len(items), "records")


def render_report(folder: Path | str, index: EvidenceIndex | None = None, *, written_at: str | None = None) -> str:
    """The report's HTML for a run folder (verify runs now; ``index`` adds its chain-head check)."""
    rf = RunFolder(Path(folder).absolute())
    run = _load(rf, index)
    when = written_at or utc_timestamp()
    body = "".join([
        _header(run, when),
        "<main>",
        _overview(run), _steps(run), _decisions(run), _approvals(run), _pii(run), _exceptions(run), _versions(run),
        _appendix(run),
        f"<footer>Written by Warden {h(__version__)} at {h(when)} from its run folder. The run folder is the source "
        f"of truth: check it now with <code>warden evidence verify {h(rf.run_id)}</code>.</footer>",
        "</main>",
    ])
    templates = resources.files("evidence") / "templates"
    page = string.Template(templates.joinpath("report.html").read_text("utf-8"))
    mission = run.info.mission_id if run.info else "?"
    return page.substitute(
        title=h(f"Warden report — {mission} — {rf.run_id}"),
        css=templates.joinpath("report.css").read_text("utf-8"),
        body=body,
        warden_version=h(__version__),
    )


def write_report(folder: Path | str, index: EvidenceIndex | None = None) -> Path:
    """Write ``report.html`` into the run folder atomically; ``EvidenceUnavailable`` if it cannot be written."""
    rf = RunFolder(Path(folder).absolute())
    rf.write_file("report.html", render_report(rf.root, index).encode("utf-8"))
    return rf.report_html
