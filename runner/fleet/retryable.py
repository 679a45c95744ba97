"""Did a run act? The line between an automatic retry and at-most-once, read from the run's records.

A retry is safe only when nothing with a side effect was attempted. From the evidence: a run whose
only action was its first ``goto``, failed with a network error (``UNREACHABLE``: no connection
opened), may be retried; anything else that failed is final. The time of
the first ``action_record`` intent is also the "first browser action" the fleet benchmark measures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Chromium's errors for a connection that never opened: no request reached the site. (A reset or a
# timeout after connecting may have delivered the request: not retried.)
UNREACHABLE = frozenset({
    "net::ERR_CONNECTION_REFUSED", "net::ERR_NAME_NOT_RESOLVED", "net::ERR_ADDRESS_UNREACHABLE",
    "net::ERR_CONNECTION_TIMED_OUT", "net::ERR_NETWORK_UNREACHABLE", "net::ERR_INTERNET_DISCONNECTED",
})


@dataclass(frozen=True)
class FirstAction:
    acted: bool  # an action was attempted beyond a navigation that never reached the site
    first_intent_time: str | None  # RFC 3339, of the first action_record intent
    retry_why: str | None  # why a retry is safe, when it is


def _records(folder: Path) -> list[dict[str, Any]]:
    try:
        raw = (folder / "records.jsonl").read_bytes()
    except OSError:
        return []
    out = []
    for line in raw.split(b"\n"):
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError:
                break  # a torn last line: what came before is what happened
    return out


def first_action_state(folder: Path) -> FirstAction:
    actions = [r for r in _records(folder) if r.get("type") == "action_record"]
    intents = [r for r in actions if r.get("phase") == "intent"]
    first = str(intents[0].get("time")) if intents else None
    if len(intents) != 1 or intents[0].get("kind") != "goto":
        return FirstAction(bool(intents), first, None)
    outcomes = [r for r in actions if r.get("phase") == "outcome" and r.get("intent_id") == intents[0].get("record_id")]
    error = str(outcomes[0].get("error") or "") if outcomes else ""
    codes = [c for c in UNREACHABLE if c in error]
    if outcomes and outcomes[0].get("outcome") == "failed" and codes:
        return FirstAction(False, first, f"the site was unreachable at the first goto ({codes[0]})")
    return FirstAction(True, first, None)
