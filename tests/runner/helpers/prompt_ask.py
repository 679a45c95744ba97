"""Ask one approval on the controlling terminal with ``PromptChannel``; write the answer as JSON.

Run by the pty tests (pexpect): ``prompt_ask.py --out FILE [--timeout S] [--approver NAME]
[--initiator NAME] [--approvers a,b] [--four-eyes] [--target-text TEXT] [--page-url URL]
[--screenshot PATH] [--id ID]``. ``--four-eyes`` is the mission's policy: the channel refuses.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from runner.approvals.base import ApprovalAsk
from runner.approvals.common import policy_eligibility
from runner.approvals.prompt import PromptChannel


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("--approver")
    p.add_argument("--initiator", default="alice")
    p.add_argument("--approvers")
    p.add_argument("--four-eyes", action="store_true")
    p.add_argument("--target-text", default="Submit payment")
    p.add_argument("--page-url", default="https://portal.example.com/pay")
    p.add_argument("--tty", default="/dev/tty")
    p.add_argument("--screenshot", default="screenshots/0007-step06-approval.png")
    p.add_argument("--id", default="ap-0001-test")
    a = p.parse_args()
    ask = ApprovalAsk(
        approval_id=a.id, run_id="20260101T000000000Z-demo-abc123", mission_id="demo", step=6,
        total_steps=11, kind="click", target={"text": a.target_text, "role": "button", "selector": "#pay"},
        page_url=a.page_url, zone="payment", rule="danger_zones.payment", reason="Irreversible money movement",
        risk_score=18, screenshot=a.screenshot, action_digest="ab" * 32,
        expires_at="2099-01-01T00:00:00.000Z", timeout_s=a.timeout, initiator=a.initiator,
    )
    approvers = a.approvers.split(",") if a.approvers else None
    channel = PromptChannel(a.approver, a.tty, four_eyes=a.four_eyes)
    answer = channel.ask(ask, policy_eligibility(approvers, a.four_eyes, a.initiator))
    with open(a.out, "w", encoding="utf-8") as fh:
        json.dump(asdict(answer), fh)
    print("HELPER-DONE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
