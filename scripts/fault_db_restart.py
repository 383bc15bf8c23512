"""Restart the database under a loaded server; measure the outage as the clients see it.

    python scripts/fault_db_restart.py --workers 10 --duration 40 --outage-at 10 --outage 8

Everything runs on this machine: a throwaway embedded PostGIS (its own folder and port, so
the project's server is never touched) with the Liangxi generation and the catalogues,
``gridgov serve`` on 127.0.0.1 against it, and the load of ``bench/load_report.py`` (reports
with idempotency keys, point lookups, the map page). ``--outage-at`` seconds in, the database
is stopped (``pg_ctl stop -m fast``: open transactions are cut off), and ``--outage`` seconds
later started again; the server is left alone throughout.

Then every report that never got a 2xx answer is sent again with its key, as the phones'
offline queue does, and the database is checked as in the load report (each accepted key
stored exactly once with the id it was answered with, nothing half-written).

Printed: the answers per second (status counts), the figures below, and one JSON line:

- ``answers_during_outage``: statuses while the database was down (expected: 503 only);
- ``server_errors``: 5xx other than 503 over the whole run (expected: 0);
- ``first_503_after_stop_s`` / ``first_success_after_restart_s``: how fast the service noticed
  and how fast it answered again after the database was started (no restart of the app);
- the exactly-once check after the retries.

Exit status 0 when the service answered only 503 while the database was away, recovered by
itself, and no accepted report was lost, duplicated or half-written.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import urllib3

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from bench.load_report import (  # noqa: E402
    LOOPBACK,
    Load,
    Sample,
    _incident_id,
    create_workers,
    district_box,
    parse_mix,
    prepare_database,
    run_load,
    served,
    summarise,
    table,
    verify,
    warm_up,
)
from gis.config import Settings, find_pg_bin  # noqa: E402
from gis.embedded import EmbeddedPostgres  # noqa: E402

DEFAULT_PORT = 55490


def resend_unanswered(load: Load) -> Counter:
    """Send every report that got no 2xx again with its key; the statuses of those answers."""
    tokens = {w.user_id: w.token for w in load.workers}
    pool = urllib3.HTTPConnectionPool(LOOPBACK, load.port, retries=False, timeout=30)
    statuses: Counter = Counter()
    for user_id, key in load.reports.unanswered():
        body = load.reports.bodies[(user_id, key)]
        response = pool.request("POST", "/api/incidents", body=body, headers={
            "Authorization": f"Bearer {tokens[user_id]}", "Content-Type": "application/json"})
        statuses[response.status] += 1
        load.reports.add(user_id, key, response.status, _incident_id(response), body)
    pool.close()
    return statuses


def timeline(samples: list[Sample]) -> dict[int, Counter]:
    per_second: dict[int, Counter] = defaultdict(Counter)
    for s in samples:
        per_second[int(s.at)][s.status] += 1
    return dict(sorted(per_second.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=10)
    parser.add_argument("--duration", type=float, default=40, help="seconds of load in all")
    parser.add_argument("--outage-at", type=float, default=10, help="stop the database at")
    parser.add_argument("--outage", type=float, default=8, help="seconds the database is down")
    parser.add_argument("--max-requests", type=int, default=100_000)
    parser.add_argument("--mix", type=parse_mix, default=parse_mix(
        "report=0.6,lookup=0.3,map=0.1"))
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help="first port tried for the throwaway database")
    args = parser.parse_args(argv)
    if args.duration > 300 or not 0 < args.outage_at < args.duration:
        parser.error("--duration up to 300 s, with --outage-at inside it")

    root = Path(tempfile.mkdtemp(prefix="gridgov-fault-"))
    server = EmbeddedPostgres(Settings(database_url=None, home=root / "home",
                                       pg_port=args.port, pg_bin=find_pg_bin()))
    try:
        print("starting a throwaway PostGIS and preparing it …", file=sys.stderr)
        server.start()
        url = server.url()
        engine = prepare_database(url)
        workers = create_workers(engine, args.workers, args.seed)
        box = district_box(engine)
        with served(url) as port:
            warm_up(port)
            load = Load(port, workers, box, args.duration, args.max_requests, args.mix,
                        retry_share=0.0, seed=args.seed)
            wall: list[float] = []
            runner = threading.Thread(target=lambda: wall.append(run_load(load)))
            runner.start()
            time.sleep(args.outage_at)
            stopped_at = time.perf_counter() - load.started
            print(f"{stopped_at:5.1f} s: stopping the database", file=sys.stderr)
            server.stop()
            down_at = time.perf_counter() - load.started  # pg_ctl stop has returned
            time.sleep(args.outage)
            restart_at = time.perf_counter() - load.started  # the server may accept from now
            server.start()
            started_at = time.perf_counter() - load.started
            print(f"{started_at:5.1f} s: database started again", file=sys.stderr)
            runner.join()
            retried = resend_unanswered(load)
        check = verify(engine, load.reports, [w.user_id for w in workers])
    finally:
        server.stop()
        shutil.rmtree(server.data_dir.parent, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)

    samples = load.samples
    # a request belongs to the outage when it started after the server had stopped and
    # ended before it was asked to start again
    during = Counter(s.status for s in samples
                     if s.at >= down_at and s.at + s.seconds <= restart_at)
    succeeded_while_down = [
        {"op": s.op, "status": s.status, "start_s": round(s.at, 3),
         "end_s": round(s.at + s.seconds, 3)}
        for s in samples if s.at >= down_at and s.at + s.seconds <= restart_at
        and s.status != 503]
    first_503 = min((s.at + s.seconds for s in samples if s.status == 503
                     and s.at + s.seconds >= stopped_at), default=None)
    first_ok = min((s.at + s.seconds for s in samples if 200 <= s.status < 300
                    and s.at >= restart_at), default=None)
    server_errors = sum(1 for s in samples if s.status >= 500 and s.status != 503)
    no_answer = sum(1 for s in samples if s.status == 0)
    figures = summarise(samples, wall[0])
    result = {
        "workers": args.workers, "duration_s": round(wall[0], 1),
        "outage": {"stopped_at_s": round(stopped_at, 2), "down_at_s": round(down_at, 2),
                   "restart_at_s": round(restart_at, 2), "started_at_s": round(started_at, 2)},
        "answers_during_outage": {str(k): v for k, v in sorted(during.items())},
        "not_503_during_outage": succeeded_while_down,
        "server_errors": server_errors, "no_answer": no_answer,
        "first_503_after_stop_s": None if first_503 is None else round(
            first_503 - stopped_at, 2),
        "database_start_s": round(started_at - restart_at, 2),
        "first_success_after_restart_s": None if first_ok is None else round(
            first_ok - restart_at, 2),
        "resent_after_run": {str(k): v for k, v in sorted(retried.items())},
        "figures": figures, "check": check,
    }
    print("second  answers (status: count)")
    for second, counts in timeline(samples).items():
        marker = " down" if stopped_at <= second + 1 and second < started_at else ""
        print(f"{second:>6}  " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
              + marker)
    print(table(figures))
    ok = (set(during) <= {503} and server_errors == 0 and no_answer == 0
          and first_ok is not None and check["exactly_once"] and check["lost"] == 0)
    print(f"during the outage: {dict(during)}; other 5xx: {server_errors}; back "
          f"{result['first_success_after_restart_s']} s after `pg_ctl start` (which took "
          f"{result['database_start_s']} s to return); reports "
          f"{'exactly once' if check['exactly_once'] else 'NOT exactly once'} "
          f"({check['keys_accepted']:,} accepted, lost {check['lost']}, duplicated "
          f"{check['duplicated']}, half-written {check['half_written']})")
    print(json.dumps(result, ensure_ascii=False))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
