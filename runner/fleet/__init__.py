"""The worker fleet (``warden submit | worker | jobs``): mission jobs on Procrastinate over PostgreSQL.

The queue, the approvals and the evidence index share one PostgreSQL database that every machine
reaches (docs/fleet.md). Each job runs in its own child process as a normal guarded run
(``runner.run.run_mission``), so a slot waiting for an approval never blocks another slot.
"""
