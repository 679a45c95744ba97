"""Benchmark: the worker fleet's throughput with 1 and 2 workers, and its queue latency.

Why: issue 15 asks for missions per minute with 1 and 2 workers on this machine (same mission set,
one run), and the latency from `warden submit` to the first browser action. One command:

    WARDEN_TEST_PG_URL=$(scripts/setup-postgres.sh) .venv/bin/python benchmarks/bench_fleet.py \
        [--missions 8] [--idle 5] [--db URL] [--json]

Each phase gets a fresh PostgreSQL schema (dropped after) and a local site on 127.0.0.1. For W in
1, 2: start W `warden worker` processes (one slot each), wait until they are ready, submit the same
N four-step missions (in this process, back to back), wait for every job to be done; throughput is
N ÷ (last run's end − first submit). Latency is the first ``action_record`` intent's time (from the
run's records) minus the moment its submit returned: in a batch it includes the wait for a free
slot; ``--idle`` missions are then submitted one at a time to an idle worker (pickup + the run's own
start-up: Presidio, Chromium, first navigation). Not in ``run_all.py``: it needs PostgreSQL.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import secrets
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from runner.fleet.db import engine_for, sqlalchemy_url  # noqa: E402
from runner.fleet.jobs import list_jobs  # noqa: E402
from runner.fleet.retryable import first_action_state  # noqa: E402
from runner.fleet.submit import submit  # noqa: E402

WARDEN = str(Path(sys.executable).parent / "warden")
HOST = "allowed.localhost"


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = (f"<html><body><h1>page {self.path}</h1><p>{'lorem ipsum ' * 40}</p>"
                "<a id='next' href='/c'>next page</a></body></html>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def serve() -> int:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Page)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return int(server.server_address[1])


def mission(folder: Path, port: int, i: int) -> Path:
    path = folder / f"bench-{i}.yaml"
    path.write_text(f"""mission: bench-fleet-{i}
version: 1
boundaries:
  allowed_domains: [{HOST}]
  allow_http: true
  allowed_actions: [goto, click, screenshot]
  timeout: 120
steps:
  - goto: http://{HOST}:{port}/a?m={i}
  - goto: http://{HOST}:{port}/b?m={i}
  - click: {{selector: '#next', timeout: 10}}
  - screenshot: {{name: end}}
""")
    return path


def epoch(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


class Schema:
    def __init__(self, base: str) -> None:
        self.name = f"bench_{secrets.token_hex(4)}"
        self.engine = create_engine(sqlalchemy_url(base))
        with self.engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {self.name}"))
        self.url = f"{sqlalchemy_url(base)}{'&' if '?' in base else '?'}options=-csearch_path%3D{self.name}"

    def drop(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {self.name} CASCADE"))
        self.engine.dispose()


def start_workers(db: str, n: int, tmp: Path) -> list[tuple[subprocess.Popen[bytes], Path]]:
    workers = []
    for w in range(n):
        log = tmp / f"worker-{w}.log"
        proc = subprocess.Popen([WARDEN, "worker", "--db", db, "--evidence-dir", str(tmp / f"ev-{w}"),
                                 "--concurrency", "1"], stdout=subprocess.DEVNULL, stderr=log.open("w"))
        workers.append((proc, log))
    deadline = time.monotonic() + 120
    while not all("ready:" in log.read_text() for _, log in workers):
        if time.monotonic() > deadline or any(p.poll() is not None for p, _ in workers):
            raise SystemExit("a worker did not start: " + " | ".join(log.read_text() for _, log in workers))
        time.sleep(0.1)
    return workers


def stop_workers(workers: list[tuple[subprocess.Popen[bytes], Path]]) -> None:
    for proc, _ in workers:
        proc.terminate()
    for proc, _ in workers:
        proc.wait(timeout=120)


def wait_done(db: str, job_ids: set[int], timeout: float = 1800) -> dict[int, Any]:
    engine = engine_for(db)
    deadline = time.monotonic() + timeout
    try:
        while True:
            views = {v.job_id: v for v in list_jobs(engine, limit=10000) if v.job_id in job_ids}
            if len(views) == len(job_ids) and all(v.state in ("done", "failed", "cancelled") for v in views.values()):
                bad = [v for v in views.values() if v.state != "done"]
                if bad:
                    why = [(v.job_id, v.state, v.last and v.last.message) for v in bad]
                    raise SystemExit(f"jobs did not complete: {why}")
                return views
            if time.monotonic() > deadline:
                raise SystemExit("jobs did not finish in time")
            time.sleep(0.2)
    finally:
        engine.dispose()


def pickups(views: dict[int, Any], submitted: dict[int, float]) -> list[float]:
    """Submit → a worker's slot took the job (the attempt row's start): the queue's own share."""
    return [epoch(str(v.attempts[0].started_at)) - submitted[j] for j, v in views.items()]


def first_action_latency(views: dict[int, Any], submitted: dict[int, float]) -> list[float]:
    out = []
    index = create_engine(sqlalchemy_url(os.environ["_BENCH_DB"]))
    try:
        for job_id, view in views.items():
            with index.connect() as conn:
                folder = conn.execute(text("SELECT folder FROM runs WHERE run_id = :r"), {"r": view.run_id}).scalar()
            first = first_action_state(Path(str(folder))).first_intent_time
            assert first is not None, view.run_id
            out.append(epoch(first) - submitted[job_id])
    finally:
        index.dispose()
    return out


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]


def phase(base: str, n_workers: int, n_missions: int, port: int, tmp: Path) -> dict[str, Any]:
    schema = Schema(base)
    os.environ["_BENCH_DB"] = schema.url
    folder = tmp / f"w{n_workers}"
    folder.mkdir()
    try:
        workers = start_workers(schema.url, n_workers, folder)
        try:
            submitted: dict[int, float] = {}
            for i in range(n_missions):
                done = submit(mission(folder, port, i), {}, db_url=schema.url, environ=os.environ)
                submitted[done.job_id] = time.time()
            views = wait_done(schema.url, set(submitted))
        finally:
            stop_workers(workers)
        ends = [epoch(str(v.last.ended_at)) for v in views.values()]
        span = max(ends) - min(submitted.values())
        lat = first_action_latency(views, submitted)
        return {"workers": n_workers, "missions": n_missions, "span_s": span, "per_min": n_missions / span * 60,
                "lat_median": statistics.median(lat), "lat_p95": p95(lat)}
    finally:
        schema.drop()


def idle_latency(base: str, n: int, port: int, tmp: Path) -> dict[str, Any]:
    schema = Schema(base)
    os.environ["_BENCH_DB"] = schema.url
    folder = tmp / "idle"
    folder.mkdir()
    lat: list[float] = []
    pick: list[float] = []
    try:
        workers = start_workers(schema.url, 1, folder)
        try:
            for i in range(n):
                done = submit(mission(folder, port, 100 + i), {}, db_url=schema.url, environ=os.environ)
                t = time.time()
                views = wait_done(schema.url, {done.job_id})
                lat += first_action_latency(views, {done.job_id: t})
                pick += pickups(views, {done.job_id: t})
        finally:
            stop_workers(workers)
    finally:
        schema.drop()
    return {"n": n, "lat_median": statistics.median(lat), "lat_p95": p95(lat), "lat": lat,
            "pickup_median": statistics.median(pick), "pickup_p95": p95(pick)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", default=os.environ.get("WARDEN_TEST_PG_URL"), help="PostgreSQL URL (a schema per phase)")
    ap.add_argument("--missions", type=int, default=8)
    ap.add_argument("--idle", type=int, default=5, help="missions submitted one at a time to an idle worker")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not args.db:
        raise SystemExit("give --db or set WARDEN_TEST_PG_URL (scripts/setup-postgres.sh prints one)")
    port = serve()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        phases = [phase(args.db, w, args.missions, port, Path(tmp)) for w in (1, 2)]
        idle = idle_latency(args.db, args.idle, port, Path(tmp)) if args.idle else None
    rows = []
    for p in phases:
        rows.append({"figure": f"fleet throughput, {p['workers']} worker(s) × 1 slot, {p['missions']} missions",
                     "value": round(p["per_min"], 2), "unit": "missions/min", "goal": "",
                     "detail": f"span {p['span_s']:.1f} s; submit→first action median {p['lat_median']:.1f} s, "
                               f"p95 {p['lat_p95']:.1f} s (includes waiting for a slot)"})
    if idle is not None:
        rows.append({"figure": f"queue latency submit→first browser action, idle worker ({idle['n']} jobs)",
                     "value": round(idle["lat_median"], 2), "unit": "s (median)", "goal": "",
                     "detail": f"p95 {idle['lat_p95']:.2f} s; all: {', '.join(f'{x:.2f}' for x in idle['lat'])}; "
                               f"of which the queue (submit → slot took it): median {idle['pickup_median']:.2f} s, "
                               f"p95 {idle['pickup_p95']:.2f} s, the rest is the run's start (Presidio, Chromium)"})
    load = f"{os.cpu_count()} cores, load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}"
    if args.json:
        print(json.dumps({"rows": rows, "machine": load}))
        return
    print(load)
    for r in rows:
        print(f"{r['figure']}: {r['value']} {r['unit']} — {r['detail']}")


if __name__ == "__main__":
    main()
