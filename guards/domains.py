"""The domain request guard: every request the browser routes is judged by the canonical matcher.

This is the decision-and-record layer of domain enforcement. The hard floor is Chromium's resolver
allowlist (``runner/browser/chromium.py``): it stops what routing never sees (redirect hops,
keepalive fetches, preconnects, the browser's own traffic). Here each routed request gets a
``Decision`` naming the canonical host, the request kind and the rule, so a refusal is evidence.

Request kinds (``guards.urlmatch``):

* navigation-class — ``navigation`` (the top frame), ``redirect`` (a hop of one), ``popup`` (a new
  tab's first document), ``download``: only ``boundaries.allowed_domains`` apply;
* subresource-class — ``subresource`` (images, scripts, CSS, fonts, fetch/XHR, beacons, iframes'
  documents), ``websocket``, ``worker``: ``allowed_domains`` or ``allowed_resource_domains``.

A kind this guard does not know is judged with the navigation rules (the stricter set): an
unexpected label can only over-block, never widen the list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from guards.base import Decision
from guards.urlmatch import REQUEST_KINDS, DomainPolicy, RequestKind

if TYPE_CHECKING:
    from guards.observed import RequestContext, RequestInfo

GUARD_NAME = "boundaries.network"
RESOLVER_GUARD = "boundaries.resolver"
DOWNLOAD_GUARD = "boundaries.downloads"


class DomainRequestGuard:
    """``RequestGuard`` for ``runner.network.NetworkGate``: allow iff the canonical matcher allows."""

    name = GUARD_NAME

    def __init__(self, policy: DomainPolicy) -> None:
        self.policy = policy

    def check_request(self, request: RequestInfo, ctx: RequestContext) -> Decision:
        kind = judged_kind(request.kind)
        verdict = self.policy.check_request(request.url, kind)
        details = {"host": verdict.host or "", "request_kind": request.kind}
        if verdict.allowed:
            return Decision.allow(self.name, verdict.reason, verdict.rule, **details)
        return Decision.deny(self.name, verdict.reason, verdict.rule, **details)


def judged_kind(kind: str) -> RequestKind:
    """The kind whose rules apply: the reported kind if the matcher knows it, else ``navigation``."""
    if kind in REQUEST_KINDS and kind != "other":
        return cast(RequestKind, kind)
    return "navigation"
