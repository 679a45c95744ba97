"""Approval gates: who answers a danger-zone approval request, and how the answer is recorded."""
