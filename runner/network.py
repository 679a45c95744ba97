"""The in-browser request gate: every request the browser makes passes an ordered list of request guards.

This is the second layer of domain enforcement (the first is Chromium's resolver allowlist, which
also stops the browser's own traffic). Every http(s) request, redirect hops and the beacons and
keepalive fetches a page sends while it unloads included, reaches this gate once, from the
driver's browser-level Fetch layer (runner/browser/browser_fetch.py); WebSockets and their messages
from the context's WebSocket route. Here each request walks the ``RequestChain`` (guards/base.py:
the same loop as the step chain; a guard that raises denies); a deny aborts it in the browser and
becomes a ``decision_record`` (repeated refusals of the same host on the same page are counted,
not written a thousand times). A refusal that ``stops_run`` (a PII or secret leak attempt) also
asks the run to stop: the step loop checks ``stop_requested`` after each action. What the guards
found (PII in a request) goes to the ``observe`` callback, which records it (runner/pii_runtime.py).

The driver's ``on_event`` callback feeds ``NetworkGate.on_event``: refusals the route never saw
(a redirect hop or a popup that failed at the resolver, reported from ``requestfailed``) and
downloads (refused, or kept in the run's ``quarantine/`` folder as attachments with their sha256)
become records through the same counting path. Nothing else the browser does goes unrecorded:
a dialog (alert/confirm/prompt dismissed, beforeunload accepted so the page cannot veto a
navigation: ``deny``, rule ``boundaries.dialogs``, its text in ``subject.message`` through the
redactor), a new page (popup/tab: ``allow``, its requests judged one by one) and a
page crash (an ``exception_record``, category ``sandbox``) each become a record.

Records never hold a request's query or fragment (they carry PII and secrets far more often than
a path does). They name the canonical host, where the request was going and the initiating page as
scheme, host, port and path (through the writer's redactor, like every record field: a secret or
a detected or known PII value in a path is redacted), the request kind and the rule.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from evidence.records import Attachment, DecisionRecord
from guards.base import Decision, Observer, RequestChain, RequestGuard
from guards.domains import DOWNLOAD_GUARD, RESOLVER_GUARD, DomainRequestGuard
from guards.observed import RequestContext, RequestInfo
from guards.urlmatch import UnparseableURL, canonical_host, page_without_query
from runner.browser.driver import (
    EVENT_DIALOG,
    EVENT_DOWNLOAD_FAILED,
    EVENT_DOWNLOAD_REFUSED,
    EVENT_DOWNLOAD_SAVED,
    EVENT_PAGE_CRASHED,
    EVENT_POPUP,
    EVENT_REQUEST_REFUSED,
    GateVerdict,
)
from runner.network_views import ApprovalView, HostVerdicts
from runner.recorder import RunRecorder

__all__ = ["ApprovalView", "HostVerdicts", "NetworkGate"]

QUARANTINE_DIR = "quarantine"
QUARANTINE_CAP_BYTES = 50 * 1024 * 1024

RULE_RESOLVER = "boundaries.allowed_domains"
RULE_DOWNLOADS = "boundaries.downloads"
RULE_DOWNLOAD_CAP = "boundaries.downloads.size_cap"
RULE_DIALOGS = "boundaries.dialogs"
RULE_POPUPS = "boundaries.allowed_domains"  # a popup's documents are judged by the domain policy
DIALOG_GUARD = "browser.dialogs"
POPUP_GUARD = "browser.popups"


AttachFn = Callable[[bytes, str, str], Attachment]  # (data, relpath, media type) -> attachment


class NetworkGate:
    def __init__(
        self,
        guards: Sequence[RequestGuard],
        recorder: RunRecorder,
        *,
        attach: AttachFn | None = None,
        quarantine_cap: int | None = None,
        observe: Observer | None = None,  # what the guards found (PII in a request) -> records
    ) -> None:
        guards = [HostVerdicts(g) if isinstance(g, DomainRequestGuard) else g for g in guards]
        self.chain = RequestChain(guards, observe=observe)
        self.recorder = recorder
        self.attach = attach  # None: quarantined downloads cannot be kept (they are refused)
        self.quarantine_cap = QUARANTINE_CAP_BYTES if quarantine_cap is None else quarantine_cap
        self.step: int | None = None
        self.page_url: str | None = None
        self.allowed = 0
        self.refused = 0
        self.refused_by_resolver = 0
        self.downloads_kept = 0
        self.stop_requested: Decision | None = None
        self._seen: dict[tuple[str, str, str, str], int] = {}  # (page, host, kind, rule) -> refusals not yet written
        self._dialogs: dict[tuple[str, str, str, str], int] = {}  # (page, type, handled, message) -> repeats

    # ------------------------------------------------------------------ the browser's gate

    def __call__(self, request: RequestInfo) -> GateVerdict:
        ctx = RequestContext(self.step, request.frame_url or self.page_url)
        result = self.chain.check(request, ctx)
        if result.verdict != "allow":
            decision = result.deciding
            self.refused += 1
            if decision.stops_run:
                self.request_stop(decision)
            self._refuse(request.kind, request.resource_type, request.method, ctx, decision, request.url)
            return GateVerdict(False, decision.reason)
        self.allowed += 1
        return GateVerdict(True)

    def request_stop(self, decision: Decision) -> None:
        """Ask the run to stop after the current action (first request wins)."""
        if self.stop_requested is None:
            self.stop_requested = decision

    # ------------------------------------------------------------------ the driver's events

    def on_event(self, name: str, data: Mapping[str, Any]) -> None:
        """Turn the driver's reports into records. Refusals the gate itself decided are already recorded."""
        if name == EVENT_REQUEST_REFUSED and data.get("layer") == "resolver":
            self._resolver_refusal(data)
        elif name == EVENT_DOWNLOAD_REFUSED:
            self._download_refused(data, str(data.get("reason") or "downloads are denied"), RULE_DOWNLOADS)
        elif name == EVENT_DOWNLOAD_FAILED:
            self._download_refused(data, f"download failed: {data.get('reason') or 'unknown error'}", RULE_DOWNLOADS)
        elif name == EVENT_DOWNLOAD_SAVED:
            self._download_saved(data)
        elif name == EVENT_DIALOG:
            self._dialog(data)
        elif name == EVENT_POPUP:
            self._popup(data)
        elif name == EVENT_PAGE_CRASHED:
            self._page_crashed(data)
        # request_refused from the route and websocket_refused were decided (and recorded) in __call__.

    def _resolver_refusal(self, data: Mapping[str, Any]) -> None:
        url = str(data.get("url") or "")
        host = _host(url)
        kind = str(data.get("kind") or "other")
        self.refused += 1
        self.refused_by_resolver += 1
        decision = Decision.deny(
            RESOLVER_GUARD,
            f"{kind} to {host or '?'} refused at name resolution: host is not in the resolver allowlist",
            RULE_RESOLVER,
            host=host,
        )
        ctx = RequestContext(self.step, _str_or_none(data.get("frame_url")) or self.page_url)
        self._refuse(kind, str(data.get("resource_type") or ""), str(data.get("method") or ""), ctx, decision, url)

    def _dialog(self, data: Mapping[str, Any]) -> None:
        """A dialog the driver dismissed: a ``deny`` record; its text (page text) only in ``subject``, redacted."""
        kind = str(data.get("type") or "dialog")
        handled = str(data.get("handled") or "dismissed")
        page = page_without_query(_str_or_none(data.get("url")) or self.page_url)
        if handled == "accepted":  # beforeunload: the page may not veto the navigation
            reason = f"{kind} dialog accepted: the page cannot keep the browser from leaving"
        else:
            reason = f"{kind} dialog {handled}: the page got no answer"
        decision = Decision.deny(DIALOG_GUARD, reason, RULE_DIALOGS)
        subject: dict[str, Any] = {
            "event": "dialog",
            "dialog_type": kind,
            "message": str(data.get("message") or ""),
            "handled": handled,
            "page_url": page,
        }
        if data.get("default_value") is not None:
            subject["default_value"] = str(data.get("default_value"))
        key = (page or "", kind, handled, subject["message"])
        if key in self._dialogs:  # an alert loop is counted, not written a thousand times
            self._dialogs[key] += 1
            return
        self._dialogs[key] = 0
        self.recorder.guard_decision(decision, step=self.step, subject=subject)

    def _popup(self, data: Mapping[str, Any]) -> None:
        """A new page (popup, tab) opened: recorded; each of its requests is judged like any other."""
        url = page_without_query(_str_or_none(data.get("url")))
        opener = page_without_query(_str_or_none(data.get("opener_url")))
        by = f" by {opener}" if opener else ""
        decision = Decision.allow(POPUP_GUARD, f"new page opened{by}: its requests go through the gate", RULE_POPUPS)
        subject = {"event": "popup", "host": _host(url or "") or None, "url": url, "opener_url": opener}
        self.recorder.guard_decision(decision, step=self.step, subject=subject)

    def _page_crashed(self, data: Mapping[str, Any]) -> None:
        where = "the main page" if data.get("main") else "a page"
        url = page_without_query(_str_or_none(data.get("url"))) or "?"
        self.recorder.exception(
            category="sandbox",
            error_type="PageCrashed",
            message=f"{where} crashed (renderer gone) at {url}",
            mitigation="recorded",
            step=self.step,
        )

    def _download_refused(self, data: Mapping[str, Any], reason: str, rule: str) -> None:
        url = str(data.get("url") or "")
        host = _host(url)
        self.refused += 1
        decision = Decision.deny(DOWNLOAD_GUARD, f"download from {host or '?'} refused: {reason}", rule, host=host)
        ctx = RequestContext(self.step, self.page_url)
        self._refuse("download", "download", "GET", ctx, decision, url)

    def _download_saved(self, data: Mapping[str, Any]) -> None:
        """A download the driver saved to the staging folder: keep it in ``quarantine/`` (capped) or drop it."""
        staged = Path(str(data.get("path") or ""))
        host = _host(str(data.get("url") or ""))
        try:
            size = staged.stat().st_size
            if self.attach is None:
                self._download_refused(data, "no quarantine folder is configured", RULE_DOWNLOADS)
                return
            if size > self.quarantine_cap:
                self._download_refused(
                    data, f"{size} bytes exceeds the quarantine cap of {self.quarantine_cap} bytes", RULE_DOWNLOAD_CAP
                )
                return
            payload = staged.read_bytes()
        except OSError as exc:
            self._download_refused(data, f"staged file unreadable ({exc.strerror})", RULE_DOWNLOADS)
            return
        finally:
            with contextlib.suppress(OSError):
                if staged.is_file():
                    staged.unlink()
        name = re.sub(r"[^A-Za-z0-9._-]", "_", staged.name).lstrip(".")[:120] or "download"
        attachment = self.attach(payload, f"{QUARANTINE_DIR}/{name}", "application/octet-stream")
        self.downloads_kept += 1
        self.recorder.writer.append(
            DecisionRecord,
            actor=self.recorder.policy,
            attachments=[attachment],
            guard=DOWNLOAD_GUARD,
            decision="allow",
            rationale=f"download from {host or '?'} kept in quarantine ({size} bytes; never opened by Warden)",
            rule=RULE_DOWNLOADS,
            step=self.step,
            subject={
                "host": host or None,
                "request_kind": "download",
                "suggested_filename": str(data.get("suggested_filename") or ""),
                "bytes": size,
                "page_url": page_without_query(self.page_url),
            },
        )
        self.recorder.counts[DecisionRecord.TYPE] += 1

    # ------------------------------------------------------------------ records

    def _refuse(
        self, kind: str, resource_type: str, method: str, ctx: RequestContext, decision: Decision, url: str = ""
    ) -> None:
        host = str(decision.details.get("host", ""))
        page = page_without_query(ctx.page_url) or ""
        key = (page, host, kind, decision.rule)
        if key in self._seen:
            self._seen[key] += 1
            return
        self._seen[key] = 0
        subject: dict[str, str | None] = {
            "host": host or None,
            "url": _shown_url(url, host),  # where it was going, never its query (PII, secrets)
            "request_kind": kind,
            "resource_type": resource_type or None,
            "method": method or None,
            "page_url": page or None,
        }
        self.recorder.guard_decision(decision, step=ctx.step, subject=subject)

    def flush(self) -> None:
        """Write one counted record per (page, host, kind, rule) refused again since its first record."""
        for (page, host, kind, rule), extra in self._seen.items():
            if extra:
                self.recorder.guard_decision(
                    Decision.deny(
                        "boundaries.network", f"{extra} more refusal(s) of {host or 'this host'} ({kind})", rule
                    ),
                    step=self.step,
                    subject={"host": host or None, "request_kind": kind, "page_url": page or None, "repeated": True},
                    count=extra,
                )
        self._seen = {k: 0 for k in self._seen}
        for (page, kind, handled, message), extra in self._dialogs.items():
            if extra:
                self.recorder.guard_decision(
                    Decision.deny(DIALOG_GUARD, f"{extra} more identical {kind} dialog(s) {handled}", RULE_DIALOGS),
                    step=self.step,
                    subject={
                        "event": "dialog",
                        "dialog_type": kind,
                        "message": message,
                        "handled": handled,
                        "page_url": page or None,
                        "repeated": True,
                    },
                    count=extra,
                )
        self._dialogs = {k: 0 for k in self._dialogs}

    def counts(self) -> dict[str, int]:
        """For the end ``run_record``: requests the gate allowed and refused (resolver refusals included)."""
        return {
            "requests_allowed": self.allowed,
            "requests_refused": self.refused,
            "requests_refused_by_resolver": self.refused_by_resolver,
            "downloads_quarantined": self.downloads_kept,
        }


def _shown_url(url: str, host: str) -> str | None:
    """``page_without_query(url)`` under the host the guard named: a guard that masked a label holding
    a value (a secret or PII smuggled as ``«secret:K».evil.example``) masks it in the URL too."""
    shown = page_without_query(url)
    real = _host(url)
    if shown and host and real and host != real:
        shown = shown.replace(real, host, 1) if real in shown else None
    return shown


def _str_or_none(value: object) -> str | None:
    return str(value) if value else None


def _host(url: str) -> str:
    """The canonical host, as the matcher sees it; ``""`` when there is none."""
    try:
        return canonical_host(url)
    except (UnparseableURL, ValueError):
        return ""
