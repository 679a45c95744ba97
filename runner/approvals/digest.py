"""The action digest: what one approval covers (SPEC §4 "bound by a digest of the action, page URL and target").

``action_digest`` is HMAC-SHA256, keyed with the run's **evidence key** (``guards.pii.keyed``, domain
``warden-action-digest-v2``), over the RFC 8785 canonical JSON of::

    {"v": 2, "kind": ..., "args": {...}, "page_url": ..., "target": {...}}

Keyed, not a plain hash: the payload holds typed values and page text (an e-mail typed into a
field, a name on a button); a plain SHA-256 of it, recorded in the evidence and the approvals table,
would let anyone confirm a guessed value offline. Without the key the digest reveals nothing.
The gate computes it when it asks and recomputes it, with the same key, just before the action:
the binding check is unchanged. (``key=None``, for code with no evidence key, uses a random key
made once per process: still keyed, consistent within the run, never unkeyed.)

* ``args`` — the step's interpolated arguments, with every secret value replaced by
  ``«secret:NAME»`` (the digest is recorded; a secret must not be guessable from it), without the
  step options ``timeout`` and ``approve`` (they do not change what the action does);
* ``page_url`` — the canonical page URL (scheme/host lowercase, default port and fragment dropped);
* ``target`` — the resolved element's identity: tag, role, accessible name, visible text, CSS
  path, input type, form action, and the same for the button its form submits through and the
  interactive ancestor a click lands on. Its position on the screen is *not* part of it (a layout
  shift is not a different action).

Anything in that list changing between the question and the click voids the approval.
"""

from __future__ import annotations

import secrets as pysecrets
from collections.abc import Mapping
from typing import Any

from evidence.canonical import canonical_bytes
from guards.danger_zones import canonical_page_url
from guards.observed import ElementInfo
from guards.pii.keyed import ACTION_DIGEST_DOMAIN, keyed_digest

DIGEST_VERSION = 2
APPROVAL_BINDING_DOMAIN = b"warden-approval-binding-v1\x00"
_PROCESS_KEY = pysecrets.token_bytes(32)  # only when no evidence key is given (see the module docstring)
_STEP_OPTIONS = frozenset({"timeout", "approve"})


def scrub_secrets(value: Any, secrets: Mapping[str, str]) -> Any:
    """``value`` with each secret's value replaced by ``«secret:NAME»`` (longest values first)."""
    pairs = sorted(((v, k) for k, v in secrets.items() if v), key=lambda p: -len(p[0]))

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            for secret, name in pairs:
                v = v.replace(secret, f"«secret:{name}»")
            return v
        if isinstance(v, Mapping):
            return {str(k): walk(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [walk(x) for x in v]
        return v

    return walk(value)


def _identity(el: ElementInfo | None) -> dict[str, Any] | None:
    if el is None:
        return None
    if not el.found:
        return {"found": False}
    return {
        "tag": el.tag,
        "role": el.role,
        "name": el.accessible_name,
        "text": el.text,
        "selector": el.selector_hint,
        "input_type": el.input_type,
        "form_action": el.form_action,
    }


def target_identity(el: ElementInfo | None) -> dict[str, Any] | None:
    """The resolved target as the digest sees it (None: the action has no element)."""
    ident = _identity(el)
    if ident is None or el is None or not el.found:
        return ident
    ident["form_submit"] = _identity(el.form_submit)
    ident["activator"] = _identity(el.activator)
    return ident


def digest_payload(
    kind: str, args: Mapping[str, Any], page_url: str, element: ElementInfo | None, secrets: Mapping[str, str]
) -> dict[str, Any]:
    clean = {k: v for k, v in args.items() if k not in _STEP_OPTIONS}
    return {
        "v": DIGEST_VERSION,
        "kind": kind,
        "args": scrub_secrets(clean, secrets),
        "page_url": canonical_page_url(page_url),
        "target": target_identity(element),
    }


def action_digest(
    kind: str,
    args: Mapping[str, Any],
    page_url: str,
    element: ElementInfo | None,
    secrets: Mapping[str, str],
    *,
    key: bytes | None = None,
) -> str:
    """HMAC-SHA256 hex, under ``key`` (the evidence key), of the canonical payload (module docstring)."""
    payload = canonical_bytes(digest_payload(kind, args, page_url, element, secrets))
    return keyed_digest(key or _PROCESS_KEY, ACTION_DIGEST_DOMAIN, payload)


def approval_binding(key: bytes, **fields: str | int | None) -> str:
    """HMAC-SHA256 hex, under the evidence key, binding one approval to one action digest.

    Over the canonical JSON of ``fields`` (approval id, action digest, decision, approver, how the
    approver was identified, initiator, expiry): recorded as ``binding`` in the approval_record and
    recomputed, with the digest of the action about to run, just before it runs. A MAC, not a plain
    hash: without the key nobody can produce a binding for another action or another approver.
    """
    return keyed_digest(key, APPROVAL_BINDING_DOMAIN, canonical_bytes(dict(fields)))
