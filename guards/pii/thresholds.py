"""The two PII thresholds: one decides what the policy gates, the other what Warden may write in clear.

* the policy threshold (``pii.threshold``, default 0.5): a page, typed value or request holding a
  value scored at or above it is a finding — recorded, and gated per ``pii.on_*``;
* the redaction threshold, min(policy threshold, 0.4): everything Warden writes (records, progress
  lines, screenshots) hides what scores at or above it, and the run learns it as a known value.
  A phone number without a context word scores 0.4: gating a run on it is the policy's call,
  writing it to disk is not.
"""

from __future__ import annotations

REDACTION_CEILING = 0.4


def redaction_threshold(policy_threshold: float) -> float:
    """The score from which a value is never written in clear (records redacted, screenshots masked)."""
    return min(policy_threshold, REDACTION_CEILING)
