"""Many grid workers reporting at once: throughput, latency and exactly-once storage.

    python bench/load_report.py --workers 20 --duration 30

What it does, all on this machine (loopback only, bounded in time and in requests):

1. creates a scratch database on the server in use (``DATABASE_URL`` or the embedded PostGIS):
   schema, the shipped Liangxi generation, every catalogue (as ``gridgov catalogues load``), and
   ``--workers`` grid-worker accounts, each linked to a real staff record with its grids and
   holding an API token;
2. starts ``gridgov serve`` (waitress, 8 threads) on 127.0.0.1 at a free port against it;
3. runs ``--workers`` closed-loop clients (one thread and one keep-alive connection each, no
   think time) for ``--duration`` seconds or ``--max-requests`` requests, whichever ends first.
   Each request is one of (weights ``--mix``):

   ``report``  POST /api/incidents at a random point inside one of the worker's own grids, with
               a new idempotency key; ``--retry-share`` of the accepted ones are sent again with
               the same key (a phone that lost the answer), half of those at once from a second
               connection while the first is in flight (a double tap), half after the answer;
   ``lookup``  GET /api/point/4326/<lon>,<lat> at a random point of the district's box;
   ``map``     GET / (the map page, gzip);

4. stops the server and checks the database: every report answered 201/200 is stored exactly
   once under its key with the id it was answered with, retries of a key all got that same
   id, no report is half-written (an assigned incident without its case), and the number of
   incidents equals the number of distinct keys stored;
5. prints a table per endpoint (requests, errors, throughput, p50/p95/p99/max latency) and one
   JSON line; drops the scratch database (``--keep`` keeps it).

The client shares the machine (and its cores) with the server and PostgreSQL, so the figures
are a floor for a dedicated server, not a ceiling.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psycopg
import urllib3
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

PROJECT_ROOT = Path(__file__).resolve().parents[1]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

LOOPBACK = "127.0.0.1"
CLASS_CODES = ("E0102", "E0101", "C0101", "E0301")
POINTS_PER_GRID = 16
DEFAULT_MIX = "report=0.5,lookup=0.35,map=0.15"
REQUEST_TIMEOUT_S = 30.0
PASSWORD = "load-test 42"


# -- the scratch database -------------------------------------------------------------------------
def _admin_conninfo(url: str) -> str:
    return (
        make_url(url)
        .set(drivername="postgresql", database="postgres")
        .render_as_string(hide_password=False)
    )


@contextmanager
def scratch_database(
    server_url: str, prefix: str = "gridgov_loadrep", keep: bool = False
) -> Iterator[str]:
    """A new empty database on the server of ``server_url``; dropped afterwards."""
    from gis.database import get_engine

    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(_admin_conninfo(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        get_engine(url).dispose()
        if not keep:
            with psycopg.connect(_admin_conninfo(server_url), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def prepare_database(url: str) -> Engine:
    """Schema, the shipped Liangxi generation and every catalogue."""
    from gis.boundaries import load_shipped
    from gis.catalogues import load_catalogues
    from gis.database import get_engine, upgrade

    upgrade(url)
    engine = get_engine(url)
    load_shipped(engine)
    load_catalogues(engine)
    return engine


@dataclass
class Worker:
    """One grid worker: its account, token and report points (CGCS2000 lon/lat)."""

    user_id: int
    username: str
    token: str
    points: np.ndarray  # (k, 2)


def create_workers(engine: Engine, count: int, seed: int = 1) -> list[Worker]:
    """``count`` grid-worker accounts on staff records that have grids, with report points
    generated inside those grids (``ST_GeneratePoints``, seeded)."""
    from gis.accounts import create_user, issue_token

    with engine.begin() as conn:
        staff = conn.execute(
            text(
                """SELECT staff_id, array_agg(grid_code ORDER BY grid_code) FROM staff_grid
               GROUP BY staff_id ORDER BY staff_id LIMIT :n"""
            ),
            {"n": count},
        ).all()
        if len(staff) < count:
            raise SystemExit(f"only {len(staff)} staff records have grids; lower --workers")
        workers = []
        for i, (staff_id, grids) in enumerate(staff):
            username = f"load_gw_{i:03d}"
            user_id = create_user(conn, username, PASSWORD, "grid_worker", staff_id=staff_id)
            token = issue_token(conn, user_id, "load test")
            points = np.array(
                conn.execute(
                    text(
                        """SELECT ST_X(p.geom), ST_Y(p.geom)
                   FROM unit u JOIN generation g ON g.id = u.generation_id AND g.active,
                        LATERAL ST_Dump(ST_GeneratePoints(u.geom, :k, :seed)) AS p
                   WHERE u.level = 'grid' AND u.code = ANY(:codes)"""
                    ),
                    {"k": POINTS_PER_GRID, "seed": seed + i, "codes": list(grids)},
                ).all()
            )
            workers.append(Worker(user_id, username, token, points))
    return workers


def district_box(engine: Engine) -> tuple[float, float, float, float]:
    with engine.connect() as conn:
        row = conn.execute(
            text(
                """SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM (
                   SELECT ST_Extent(u.geom)::geometry AS b FROM unit u
                   JOIN generation g ON g.id = u.generation_id AND g.active
                   WHERE u.level = 'district') e"""
            )
        ).one()
    return tuple(float(v) for v in row)  # type: ignore[return-value]


# -- the server -----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@contextmanager
def served(database_url: str, port: int | None = None, log: Path | None = None) -> Iterator[int]:
    """``gridgov serve`` on 127.0.0.1 against ``database_url``; yields the port once the
    app answers, and stops it (SIGINT, then SIGKILL) afterwards."""
    port = port or free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "GRIDGOV_SECRET_KEY": secrets.token_urlsafe(32),
    }
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "etl.cli", "serve", "--host", LOOPBACK, "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    try:
        pool = urllib3.HTTPConnectionPool(LOOPBACK, port, retries=False, timeout=5)
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gridgov serve exited with {process.returncode}")
            try:
                if pool.request("GET", "/api/generations").status == 200:
                    break
            except urllib3.exceptions.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gridgov serve did not answer within 60 s")
            time.sleep(0.2)
        pool.close()
        yield port
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log:
            out.close()  # type: ignore[union-attr]


# -- the load -------------------------------------------------------------------------------------
@dataclass
class Sample:
    op: str
    status: int  # 0: no answer (connection error or time-out)
    seconds: float
    at: float  # since the start of the run


@dataclass
class ReportLog:
    """What the clients were told about each key: key → list of (status, incident id)."""

    answers: dict[tuple[int, str], list[tuple[int, int | None]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    bodies: dict[tuple[int, str], bytes] = field(default_factory=dict)
    retried: set[tuple[int, str]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(
        self, user_id: int, key: str, status: int, incident_id: int | None, body: bytes
    ) -> None:
        with self.lock:
            self.answers[(user_id, key)].append((status, incident_id))
            self.bodies.setdefault((user_id, key), body)

    def unanswered(self) -> list[tuple[int, str]]:
        """Keys that never got a 2xx: a client would send them again."""
        return [
            k
            for k, answers in self.answers.items()
            if not any(status in (200, 201) for status, _ in answers)
        ]


@dataclass
class Load:
    port: int
    workers: list[Worker]
    box: tuple[float, float, float, float]
    duration: float
    max_requests: int
    mix: dict[str, float]
    retry_share: float
    seed: int
    samples: list[Sample] = field(default_factory=list)
    reports: ReportLog = field(default_factory=ReportLog)
    started: float = 0.0
    _count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def take_ticket(self) -> bool:
        """One more request allowed? (bounded by count and time)"""
        with self._lock:
            if (
                self.stop.is_set()
                or self._count >= self.max_requests
                or time.perf_counter() - self.started >= self.duration
            ):
                return False
            self._count += 1
            return True

    def record(self, sample: Sample) -> None:
        with self._lock:
            self.samples.append(sample)


def parse_mix(spec: str) -> dict[str, float]:
    mix = {}
    for part in spec.split(","):
        name, _, weight = part.partition("=")
        if name.strip() not in ("report", "lookup", "map"):
            raise argparse.ArgumentTypeError(f"unknown operation {name!r} in --mix")
        mix[name.strip()] = float(weight)
    total = sum(mix.values())
    if total <= 0:
        raise argparse.ArgumentTypeError("--mix weights must add up to more than 0")
    return {name: weight / total for name, weight in mix.items()}


def _timed(
    load: Load, op: str, call: Callable[[], urllib3.BaseHTTPResponse]
) -> urllib3.BaseHTTPResponse | None:
    start = time.perf_counter()
    try:
        response = call()
    except urllib3.exceptions.HTTPError:
        response = None
    end = time.perf_counter()
    load.record(
        Sample(
            op, response.status if response is not None else 0, end - start, start - load.started
        )
    )
    return response


def _incident_id(response: urllib3.BaseHTTPResponse | None) -> int | None:
    if response is None or response.status not in (200, 201):
        return None
    return int(json.loads(response.data)["incident"]["id"])


def _client(load: Load, index: int) -> None:
    """One grid worker's closed loop."""
    worker = load.workers[index]
    rng = random.Random(load.seed * 1000 + index)
    timeout = urllib3.Timeout(connect=5, read=REQUEST_TIMEOUT_S)
    pool = urllib3.HTTPConnectionPool(
        LOOPBACK, load.port, maxsize=2, block=True, retries=False, timeout=timeout
    )
    auth = {"Authorization": f"Bearer {worker.token}", "Content-Type": "application/json"}
    ops, weights = zip(*load.mix.items(), strict=True)
    x0, y0, x1, y1 = load.box

    def post(body: bytes) -> Callable[[], urllib3.BaseHTTPResponse]:
        return lambda: pool.request("POST", "/api/incidents", body=body, headers=auth)

    while load.take_ticket():
        op = rng.choices(ops, weights)[0]
        if op == "lookup":
            path = f"/api/point/4326/{rng.uniform(x0, x1):.6f},{rng.uniform(y0, y1):.6f}"
            _timed(load, "lookup", lambda p=path: pool.request("GET", p))
            continue
        if op == "map":
            _timed(
                load,
                "map",
                lambda: pool.request(
                    "GET", "/", headers={"Accept-Encoding": "gzip"}, decode_content=False
                ),
            )
            continue
        lon, lat = worker.points[rng.randrange(len(worker.points))]
        key = uuid.UUID(int=rng.getrandbits(128)).hex
        body = json.dumps(
            {
                "class_code": rng.choice(CLASS_CODES),
                "x": float(lon),
                "y": float(lat),
                "crs": "cgcs2000",
                "idempotency_key": key,
                "description": f"压力测试 {worker.username}",
            }
        ).encode()
        retry = rng.random() < load.retry_share
        if retry and rng.random() < 0.5:  # a double tap: the same key twice at once
            twin: list[urllib3.BaseHTTPResponse | None] = []
            send = post(body)
            thread = threading.Thread(
                target=lambda out=twin, call=send: out.append(_timed(load, "report", call))
            )
            thread.start()
            first = _timed(load, "report", post(body))
            thread.join()
            load.reports.add(
                worker.user_id, key, first.status if first else 0, _incident_id(first), body
            )
            load.reports.add(
                worker.user_id, key, twin[0].status if twin[0] else 0, _incident_id(twin[0]), body
            )
            load.reports.retried.add((worker.user_id, key))
            continue
        response = _timed(load, "report", post(body))
        load.reports.add(
            worker.user_id, key, response.status if response else 0, _incident_id(response), body
        )
        if retry:  # the answer was lost: the phone sends the same report again
            again = _timed(load, "report", post(body))
            load.reports.add(
                worker.user_id, key, again.status if again else 0, _incident_id(again), body
            )
            load.reports.retried.add((worker.user_id, key))
    pool.close()


def warm_up(port: int) -> None:
    """One request per read endpoint before timing: the map page is built once per
    generation and then served from memory, and that first build is not what users wait for."""
    pool = urllib3.HTTPConnectionPool(LOOPBACK, port, retries=False, timeout=REQUEST_TIMEOUT_S)
    for path in ("/", "/api/point/4326/120.30,31.57"):
        pool.request("GET", path)
    pool.close()


def run_load(load: Load) -> float:
    """Run the clients; returns the wall time in seconds."""
    threads = [
        threading.Thread(target=_client, args=(load, i), daemon=True)
        for i in range(len(load.workers))
    ]
    load.started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=load.duration + 2 * REQUEST_TIMEOUT_S + 10)
    load.stop.set()
    return time.perf_counter() - load.started


# -- the check ------------------------------------------------------------------------------------
def verify(engine: Engine, reports: ReportLog, user_ids: list[int]) -> dict:
    """Compare what the clients were told with what the database holds."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                """SELECT i.source_key, array_agg(i.id), bool_and(
                          i.location_status <> 'assigned' OR EXISTS (
                              SELECT 1 FROM case_file c WHERE c.incident_id = i.id
                              AND c.incident_reported_at = i.reported_at))
               FROM incident i
               WHERE split_part(i.source_key, ':', 1) = ANY(:users)
               GROUP BY i.source_key"""
            ),
            {"users": [str(u) for u in user_ids]},
        ).all()
        incidents = conn.execute(
            text(
                "SELECT count(*) FROM incident WHERE split_part(source_key, ':', 1) = ANY(:users)"
            ),
            {"users": [str(u) for u in user_ids]},
        ).scalar_one()
    stored = {key: (ids, whole) for key, ids, whole in rows}
    accepted = lost = duplicated = inconsistent = unacknowledged = retried_ok = 0
    for (user_id, key), answers in reports.answers.items():
        ids = {i for status, i in answers if status in (200, 201)}
        in_db = stored.get(f"{user_id}:{key}")
        if len(in_db[0] if in_db else []) > 1:
            duplicated += 1
        if ids:
            accepted += 1
            if in_db is None:
                lost += 1
            elif len(ids) > 1 or set(in_db[0]) != ids:
                inconsistent += 1
            elif (user_id, key) in reports.retried:
                retried_ok += 1
        elif in_db is not None:
            unacknowledged += 1  # stored, but its answer was an error or never came
    return {
        "keys_sent": len(reports.answers),
        "keys_accepted": accepted,
        "keys_retried": len(reports.retried),
        "retried_keys_one_incident": retried_ok,
        "stored_incidents": incidents,
        "distinct_keys_stored": len(stored),
        "lost": lost,
        "duplicated": duplicated,
        "inconsistent_ids": inconsistent,
        "stored_but_unacknowledged": unacknowledged,
        "half_written": sum(1 for _, whole in stored.values() if not whole),
        "exactly_once": (
            lost == duplicated == inconsistent == 0
            and incidents == len(stored)
            and all(whole for _, whole in stored.values())
        ),
    }


# -- the report -----------------------------------------------------------------------------------
def summarise(samples: list[Sample], seconds: float) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for op in ("report", "lookup", "map", "all"):
        chosen = [s for s in samples if op == "all" or s.op == op]
        if not chosen:
            continue
        ms = np.array([s.seconds for s in chosen]) * 1000
        statuses: dict[str, int] = defaultdict(int)
        for s in chosen:
            statuses[str(s.status)] += 1
        errors = sum(n for status, n in statuses.items() if not status.startswith("2"))
        p50, p95, p99 = np.percentile(ms, [50, 95, 99])
        out[op] = {
            "requests": len(chosen),
            "errors": errors,
            "statuses": dict(statuses),
            "rps": round(len(chosen) / seconds, 1),
            "p50_ms": round(float(p50), 1),
            "p95_ms": round(float(p95), 1),
            "p99_ms": round(float(p99), 1),
            "max_ms": round(float(ms.max()), 1),
        }
    return out


def table(figures: dict[str, dict]) -> str:
    head = (
        f"{'endpoint':<10}{'requests':>10}{'errors':>8}{'req/s':>9}{'p50 ms':>9}"
        f"{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
    )
    lines = [head, "-" * len(head)]
    names = {"report": "report", "lookup": "lookup", "map": "map page", "all": "all"}
    for op, f in figures.items():
        lines.append(
            f"{names[op]:<10}{f['requests']:>10,}{f['errors']:>8,}{f['rps']:>9.1f}"
            f"{f['p50_ms']:>9.1f}{f['p95_ms']:>9.1f}{f['p99_ms']:>9.1f}"
            f"{f['max_ms']:>9.1f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=20, help="concurrent grid workers")
    parser.add_argument("--duration", type=float, default=30, help="seconds of load")
    parser.add_argument(
        "--max-requests",
        type=int,
        default=200_000,
        help="stop after this many requests even if time is left",
    )
    parser.add_argument(
        "--mix",
        type=parse_mix,
        default=parse_mix(DEFAULT_MIX),
        help=f"operation weights (default {DEFAULT_MIX})",
    )
    parser.add_argument(
        "--retry-share",
        type=float,
        default=0.1,
        help="share of reports sent again with the same key",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--server-log", type=Path, help="write the server's output here")
    args = parser.parse_args(argv)
    if not 1 <= args.workers <= 500 or args.duration <= 0 or args.duration > 600:
        parser.error("--workers 1..500 and --duration up to 600 s")

    from gis.database import database_url

    with scratch_database(database_url(), keep=args.keep) as url:
        print(f"preparing {url.rsplit('/', 1)[1]} …", file=sys.stderr)
        engine = prepare_database(url)
        workers = create_workers(engine, args.workers, args.seed)
        box = district_box(engine)
        with served(url, log=args.server_log) as port:
            print(
                f"loading 127.0.0.1:{port} with {args.workers} workers for {args.duration:g} s …",
                file=sys.stderr,
            )
            warm_up(port)
            load = Load(
                port,
                workers,
                box,
                args.duration,
                args.max_requests,
                args.mix,
                args.retry_share,
                args.seed,
            )
            seconds = run_load(load)
        check = verify(engine, load.reports, [w.user_id for w in workers])
    figures = summarise(load.samples, seconds)
    print(table(figures))
    print(
        f"reports: {check['keys_accepted']:,} keys accepted ({check['keys_retried']:,} sent "
        f"twice), {check['stored_incidents']:,} incidents stored; lost {check['lost']}, "
        f"duplicated {check['duplicated']}, half-written {check['half_written']} → "
        f"{'exactly once' if check['exactly_once'] else 'NOT exactly once'}"
    )
    print(
        json.dumps(
            {
                "workers": args.workers,
                "duration_s": round(seconds, 1),
                "mix": args.mix,
                "retry_share": args.retry_share,
                "figures": figures,
                "check": check,
            },
            ensure_ascii=False,
        )
    )
    return 0 if check["exactly_once"] else 1


if __name__ == "__main__":
    sys.exit(main())
