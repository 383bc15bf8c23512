"""The database goes away and comes back: during web requests and during a bulk import.

Runs on a throwaway embedded PostGIS (``restartable``) so that stopping it disturbs no other
test. While it is down every request answers 503 — JSON ``{"error": {"status": 503, …}}`` under
/api, a plain page elsewhere, never a stack trace or a 500 — and once it is back the same app
(no restart: ``pool_pre_ping`` replaces the dead pooled connections) answers normally. A report
is written whole (incident, key and case) or not at all, so a retry with the same idempotency
key after a 503 creates it exactly once. A bulk import cut off by a restart leaves nothing and
a re-run loads everything. (A ``kill -9`` of the import is
``tests/etl/test_incidents_import.py::test_sigkill_mid_import_leaves_nothing``.)
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from etl.incidents import ImportOptions, import_file
from gis.config import PROJECT_ROOT
from gis.database import get_engine
from tests.etl.test_incidents_import import _wait_for_loading, _write_big_csv
from tests.webmap.test_api_cases import (
    GRID_EAST,
    GRID_WEST,
    ApiWorld,
    build_world,
    png,
    report_body,
)

pytestmark = pytest.mark.slow

#: (method, path, who): requests that need the database, one per blueprint and kind.
JSON_REQUESTS = [
    ("get", "/api/generations", None),
    ("get", "/api/point/4326/120.305,31.575", None),
    ("get", "/api/units?level=street", None),
    ("get", "/api/incidents", "dispatcher"),
    ("get", "/api/cases?limit=5", "dispatcher"),
    ("get", "/api/indicators?period=2019-05", "dispatcher"),
    ("post", "/api/incidents", "grid_worker"),
    ("get", "/api/mobile/csrf", "grid_worker"),
    ("get", "/open311/v2/services.json", None),
    ("get", "/open311/v2/requests.json", None),
]
HTML_REQUESTS = [
    ("/", None),
    ("/command/dashboard?period=2019-05", "dispatcher"),
    ("/command/cases", "dispatcher"),
    ("/m/", "grid_worker"),
    ("/maps/indicator?period=2019-05", "dispatcher"),
]


@pytest.fixture(scope="module")
def world(restartable, tmp_path_factory) -> ApiWorld:
    world = build_world(restartable.url(), tmp_path_factory.mktemp("uploads"))
    world.app.test_client_class = FlaskClient  # contract checks are test_fuzz_api's
    return world


@pytest.fixture
def server_up(restartable) -> Iterator:
    """Whatever a test does, the server is running again afterwards."""
    yield restartable
    if not restartable.is_running():
        restartable.start()


def _call(world: ApiWorld, method: str, path: str, who: str | None, key: str | None = None):
    """A request as ``who`` (bearer token; anonymous for None); posts are reports."""
    session = world.session(who, "bearer") if who else world.session(None)
    if method == "get":
        return session.get(path)
    grid = GRID_EAST if who == "grid_worker_east" else GRID_WEST
    return session.post(path, json=report_body(grid, idempotency_key=key or uuid.uuid4().hex))


def _report_keys(world: ApiWorld) -> dict[str, int]:
    """source key → number of incidents stored under it, for the API's reports."""
    with world.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT source_key, count(*) FROM incident WHERE source_key LIKE '%:%' "
            "GROUP BY source_key")).all()
    return {key: count for key, count in rows}


def _half_written(world: ApiWorld) -> list:
    """Reports stored in part: an incident in a grid without its case, a key without its
    incident, an incident with a key not in the key table, a case without its report event."""
    with world.engine.connect() as conn:
        return conn.execute(text(
            """
            SELECT 'no case', i.id FROM incident i
             WHERE i.location_status = 'assigned' AND i.source_key IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM case_file c WHERE c.incident_id = i.id)
            UNION ALL
            SELECT 'dangling key', k.incident_id FROM incident_key k
             WHERE NOT EXISTS (SELECT 1 FROM incident i WHERE i.id = k.incident_id)
            UNION ALL
            SELECT 'unkeyed', i.id FROM incident i WHERE i.source_key IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM incident_key k WHERE k.incident_id = i.id)
            UNION ALL
            SELECT 'no trail', c.id FROM case_file c
             WHERE NOT EXISTS (SELECT 1 FROM case_event e WHERE e.case_id = c.id)
            """)).all()


def _assert_json_503(response) -> None:
    assert response.status_code == 503, (response.status_code, response.get_data(as_text=True))
    body = response.get_json()
    if isinstance(body, list):  # Open311: the spec's error array
        body = {"error": {"status": body[0]["code"], "message": body[0]["description"]}}
    assert body["error"]["status"] == 503
    assert "database" in body["error"]["message"]
    assert "Traceback" not in response.get_data(as_text=True)


def _assert_page_503(response) -> None:
    page = response.get_data(as_text=True)
    assert response.status_code == 503, (response.status_code, page[:500])
    assert response.mimetype == "text/html"
    assert "数据库" in page and "Traceback" not in page and "psycopg" not in page
    assert response.headers["Retry-After"].isdigit()


def test_outage_answers_503_and_the_app_recovers_by_itself(world, server_up):
    before = [_call(world, "post", "/api/incidents", "grid_worker")
              for _ in range(3)]
    assert all(r.status_code == 201 for r in before)
    accepted = {r.get_json()["incident"]["id"] for r in before}
    for path, who in HTML_REQUESTS:  # sign the cookie sessions in while the database is up
        assert world.session(who).get(path).status_code == 200, path
    retry_key = uuid.uuid4().hex

    server_up.stop()
    for method, path, who in JSON_REQUESTS:
        _assert_json_503(_call(world, method, path, who, key=retry_key))
    for path, who in HTML_REQUESTS:
        _assert_page_503(world.session(who).get(path))
    upload = world.session("grid_worker", "bearer").post(
        "/api/photos", data={"photo": (io.BytesIO(png()), "p.png")},
        content_type="multipart/form-data")
    _assert_json_503(upload)

    server_up.start()  # the same app, no restart
    for method, path, who in JSON_REQUESTS:
        response = _call(world, method, path, who)
        assert response.status_code in (200, 201), (path, response.get_json())
    for path, who in HTML_REQUESTS:
        assert world.session(who).get(path).status_code == 200, path
    retried = _call(world, "post", "/api/incidents", "grid_worker", key=retry_key)
    assert retried.status_code == 201  # the 503 stored nothing: this is the first write
    again = _call(world, "post", "/api/incidents", "grid_worker", key=retry_key)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["incident"]["id"] == retried.get_json()["incident"]["id"]

    with world.engine.connect() as conn:
        stored = set(conn.execute(text("SELECT id FROM incident WHERE id = ANY(:ids)"),
                                  {"ids": sorted(accepted)}).scalars())
    assert stored == accepted
    assert all(count == 1 for count in _report_keys(world).values())
    assert _half_written(world) == []


def test_reports_cut_off_by_a_restart_are_whole_or_absent(world, server_up):
    """Four reporters keep reporting while the server is restarted under them. Every answer
    is 201 or 503; afterwards every 503 is retried with its key; then each key is stored
    exactly once, each accepted id is there, and no report is half-written."""
    outcomes: dict[str, list[int]] = {}
    accepted: dict[str, int] = {}
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []

    def reporter(username: str) -> None:
        from flask.testing import FlaskClient

        client = FlaskClient(world.app)
        headers = {"Authorization": f"Bearer {world.tokens[username]}"}
        grid = GRID_EAST if username == "grid_worker_east" else GRID_WEST
        deadline = time.monotonic() + 60  # bounded whatever happens
        try:
            while not stop.is_set() and time.monotonic() < deadline:
                key = uuid.uuid4().hex
                response = client.post("/api/incidents", headers=headers,
                                       json=report_body(grid, idempotency_key=key))
                with lock:
                    outcomes.setdefault(f"{username}|{key}", []).append(response.status_code)
                    if response.status_code in (200, 201):
                        accepted[f"{username}|{key}"] = response.get_json()["incident"]["id"]
                if response.status_code == 503:
                    time.sleep(0.05)  # a client backs off while the service is unavailable
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=reporter, args=(name,))
               for name in ("grid_worker", "grid_worker_east", "grid_leader", "supervisor")]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    server_up.stop()
    time.sleep(1.0)
    server_up.start()
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join(timeout=90)
    assert not errors, errors
    statuses = {s for codes in outcomes.values() for s in codes}
    assert statuses <= {201, 503}, statuses
    assert 503 in statuses and 201 in statuses

    for name_key, codes in outcomes.items():  # a client retries every 503 with its key
        if codes[-1] == 503:
            username, key = name_key.split("|")
            grid = GRID_EAST if username == "grid_worker_east" else GRID_WEST
            response = world.session(username, "bearer").post(
                "/api/incidents", json=report_body(grid, idempotency_key=key))
            assert response.status_code in (200, 201), response.get_json()
            accepted[name_key] = response.get_json()["incident"]["id"]

    stored = _report_keys(world)
    for name_key in accepted:
        username, key = name_key.split("|")
        assert stored.get(f"{world.users[username].id}:{key}") == 1, name_key
    with world.engine.connect() as conn:
        found = set(conn.execute(text("SELECT id FROM incident WHERE id = ANY(:ids)"),
                                 {"ids": sorted(accepted.values())}).scalars())
    assert found == set(accepted.values())
    assert _half_written(world) == []


def _counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("incident", "incident_key", "import_batch", "incident_reject",
                          "incident_assignment_history")}


def test_a_restart_during_a_bulk_import_leaves_nothing_and_a_rerun_loads_all(
        world, server_up, tmp_path):
    n = 120_000
    path = tmp_path / "big.csv"
    _write_big_csv(path, n)
    before = _counts(world.engine)
    env = {**os.environ, "DATABASE_URL": server_up.url()}
    process = subprocess.Popen(
        [sys.executable, "-m", "etl.cli", "incidents", "import", str(path), "--chunk-size",
         "1000", "--quiet"], cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    try:
        _wait_for_loading(world.engine, process)
        server_up.stop()
        server_up.start()
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1, stderr.decode()
    assert "import failed, nothing was stored" in stderr.decode()
    assert "Traceback" not in stderr.decode()
    assert _counts(world.engine) == before
    assert not list(tmp_path.glob("*.rejects.csv*"))

    summary = import_file(get_engine(server_up.url()), path, ImportOptions())
    assert (summary.rows_read, summary.loaded) == (n, n)
    after = _counts(world.engine)
    assert after["incident"] == before["incident"] + n
    assert after["import_batch"] == before["import_batch"] + 1
