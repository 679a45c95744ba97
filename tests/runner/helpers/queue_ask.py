"""The runner side of the queue: ask one approval with ``QueueChannel`` and write the answer as JSON.

``queue_ask.py --evidence-dir DIR --out FILE --id ID [--timeout S] [--initiator NAME]
[--approvers a,b] [--four-eyes]``. Prints ``PENDING <id>`` once the request is in the queue.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

from evidence.runfolder import utc_timestamp
from runner.approvals.base import ApprovalAsk
from runner.approvals.common import policy_eligibility
from runner.approvals.queue import QueueChannel


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--evidence-dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--id", required=True)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--initiator", default="alice")
    p.add_argument("--approvers")
    p.add_argument("--four-eyes", action="store_true")
    a = p.parse_args()
    ask = ApprovalAsk(
        approval_id=a.id, run_id="20260101T000000000Z-demo-abc123", mission_id="demo", step=6, total_steps=11,
        kind="click", target={"text": "Pay \x1b[31mnow", "selector": "#pay"}, page_url="https://portal.example.com/pay",
        zone="payment", rule="danger_zones.payment", reason="Irreversible money movement", risk_score=18,
        screenshot="screenshots/x.png", action_digest="cd" * 32,
        expires_at=utc_timestamp(datetime.now(UTC) + timedelta(seconds=a.timeout)), timeout_s=a.timeout,
        initiator=a.initiator,
    )
    approvers = a.approvers.split(",") if a.approvers else None
    channel = QueueChannel(
        a.evidence_dir, approvers=approvers, four_eyes=a.four_eyes, poll_s=0.05,
        notify=lambda _msg: print(f"PENDING {a.id}", flush=True),
    )
    answer = channel.ask(ask, policy_eligibility(approvers, a.four_eyes, a.initiator))
    with open(a.out, "w", encoding="utf-8") as fh:
        json.dump(asdict(answer), fh)
    print("HELPER-DONE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
