"""Hostile input over HTTP: injection strings, formula cells, path traversal, the role × page
matrix of the HTML pages, and a double tap with one idempotency key.

The REST API's role × endpoint matrix is ``tests/webmap/test_api_roles.py`` (every role, cookie
and bearer, every operation); this module covers the pages (``/``, ``/command/…``, ``/m/…``,
``/maps/…``, ``/photos/…``) the same way, and who may file through Open311 (its api_key
handling, CSRF exemption and replays are ``tests/webmap/test_open311.py``).
"""

from __future__ import annotations

import csv
import io
import threading
import uuid
from datetime import datetime
from urllib.parse import quote

import pytest
from openpyxl import load_workbook
from PIL import Image
from sqlalchemy import text

from gis.incidents import report_incident
from gis.open311 import FILING_ROLES
from gis.workflow import ROLES
from tests.reliability.test_import_faults import HOSTILE_TEXT
from tests.webmap.test_api_cases import (
    GRID_EAST,
    GRID_WEST,
    ApiWorld,
    build_world,
    point_in,
    report_body,
)

#: Strings an attacker puts in query parameters and path segments.
HOSTILE_PARAMS = (
    "' OR 1=1 --", "1; DROP TABLE incident", "%' AND pg_sleep(5) --", "\u0000", "%00",
    "../../etc/passwd", "<svg onload=alert(1)>", "9" * 40, "-1", "NaN", "1e309", "[]", "{}",
    "2019-13", "2019-02-30..2018-01-01", "E01' --", "320213' OR '1'='1", "true'", "\u202e",
)
#: GET endpoints and the parameters each reads.
QUERY_ENDPOINTS = {
    "/api/units": ("level", "generation"),
    "/api/incidents": ("class", "status", "source", "period", "unit", "bbox", "limit", "offset",
                       "format"),
    "/api/cases": ("state", "class", "department", "unit", "period", "overdue", "sort", "limit",
                   "offset", "format"),
    "/api/cases/summary": ("period",),
    "/api/indicators": ("level", "period", "compare", "indicator"),
    "/command/cases": ("state", "class", "unit", "department", "source", "period", "overdue",
                       "sort", "dir", "page"),
    "/command/dashboard": ("level", "period", "compare", "sort", "dir", "within"),
    "/command/dashboard.csv": ("level", "period", "within"),
    "/command/map": ("layer", "period", "state", "class"),
    "/command/map/points.json": ("layer", "period", "state", "class", "unit"),
    "/maps/indicator": ("indicator", "level", "period", "compare", "scheme", "k", "base",
                        "class", "source", "heat", "show_heat"),
    "/open311/v2/requests.json": ("service_request_id", "service_code", "start_date",
                                  "end_date", "status"),
    "/open311/v2/requests.xml": ("service_request_id", "service_code", "status"),
}
PATH_TEMPLATES = ("/api/point/{}/120.305,31.575", "/api/point/4326/{}", "/api/units/{}",
                  "/api/incidents/{}", "/api/cases/{}", "/command/cases/{}", "/m/cases/{}",
                  "/photos/{}", "/open311/v2/requests/{}.json", "/open311/v2/services/{}.xml",
                  "/open311/v2/tokens/{}.json", "/open311/v2/{}")


@pytest.fixture(scope="module")
def world(database_factory, template_name, tmp_path_factory) -> ApiWorld:
    url = database_factory.create("hostile", template=template_name)
    yield build_world(url, tmp_path_factory.mktemp("uploads"))
    database_factory.drop(url)


def _no_server_error(response, what: str) -> None:
    body = response.get_data(as_text=True)
    assert response.status_code < 500, (what, response.status_code, body[:300])
    assert "Traceback" not in body and "psycopg" not in body, what


# -- injection strings ----------------------------------------------------------------------------
@pytest.mark.parametrize("value", HOSTILE_PARAMS)
def test_hostile_query_parameters_never_break_a_page_or_endpoint(world, value):
    session = world.session("dispatcher")
    for path, names in QUERY_ENDPOINTS.items():
        for name in names:
            _no_server_error(session.get(path, query_string={name: value}), f"{path}?{name}")
    for template in PATH_TEMPLATES:
        path = template.format(quote(value, safe=""))
        _no_server_error(session.get(path), path)


def test_hostile_text_in_reports_and_notes_is_stored_and_returned_verbatim(world):
    reporter = world.session("supervisor", "bearer")
    for hostile in HOSTILE_TEXT:
        key = hostile[:100]
        response = reporter.post("/api/incidents", json=report_body(
            GRID_WEST, description=hostile, idempotency_key=key))
        assert response.status_code == 201, response.get_json()
        shown = reporter.get(f"/api/incidents/{response.get_json()['incident']['id']}")
        assert shown.get_json()["description"] == hostile
        case_id = response.get_json()["case"]["id"]
        refused = world.session("acceptor", "bearer").post(
            f"/api/cases/{case_id}/transitions", json={"action": "reject", "note": hostile})
        assert refused.status_code == 200, refused.get_json()
        events = reporter.get(f"/api/cases/{case_id}").get_json()["events"]
        assert events[-1]["note"] == hostile
        replay = reporter.post("/api/incidents", json=report_body(
            GRID_WEST, description=hostile, idempotency_key=key))
        assert replay.status_code == 200  # the key itself was stored verbatim too
    for field in ("class_code", "crs", "reported_at"):
        response = reporter.post("/api/incidents", json=report_body(
            GRID_WEST, **{field: "'; DROP TABLE incident; --"}))
        assert response.status_code == 400, (field, response.get_json())
        assert response.get_json()["error"]["message"].startswith(field)
    with world.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM incident")).scalar_one() > len(
            HOSTILE_TEXT)


def test_nul_characters_are_400_wherever_they_come(world):
    """PostgreSQL text cannot hold NUL: refused up front instead of failing in a query."""
    bearer = world.session("supervisor", "bearer")
    for field in ("description", "idempotency_key", "class_code"):
        answer = bearer.post("/api/incidents", json=report_body(GRID_WEST, **{field: "a\x00"}))
        assert answer.status_code == 400 and "NUL" in answer.get_json()["error"]["message"]
    answer = world.session(None).client.post("/open311/v2/requests.json", data={
        "api_key": world.tokens["acceptor"], "service_code": "E0102", "description": "\x00"})
    assert answer.status_code == 400 and answer.get_json()[0]["code"] == 400
    cookie = world.session("dispatcher")
    answer = cookie.client.post("/command/cases/1/act", data={
        "action": "accept", "note": "\x00", "csrf_token": cookie.csrf})
    assert answer.status_code == 400


def test_hostile_html_is_escaped_in_the_pages(world):
    marker = "<script>alert('gridgov')</script>"
    response = world.session("supervisor", "bearer").post(
        "/api/incidents", json=report_body(GRID_WEST, description=marker))
    case_id = response.get_json()["case"]["id"]
    for who, path in (("dispatcher", f"/command/cases/{case_id}"),
                      ("supervisor", f"/m/cases/{case_id}")):
        page = world.session(who).get(path).get_data(as_text=True)
        assert marker not in page and "&lt;script&gt;" in page, path


# -- formula cells in exports ---------------------------------------------------------------------
FORMULA_NAME = '=HYPERLINK("http://example.invalid","点击")'
FORMULA_LEADER = "=cmd|' /C calc'!A0"


def test_exports_neutralise_formula_text(world):
    with world.engine.begin() as conn:
        conn.execute(text("UPDATE unit SET name = :n WHERE code = :c"),
                     {"n": FORMULA_NAME, "c": GRID_WEST})
        conn.execute(text("UPDATE staff SET name = :n WHERE code = 'grid_leader'"),
                     {"n": FORMULA_LEADER})
    session = world.session("dispatcher")
    query = "?level=grid&period=2019-05"
    body = session.get("/command/dashboard.csv" + query).get_data().decode("utf-8-sig")
    cells = [cell for row in csv.reader(io.StringIO(body)) for cell in row]
    assert "'" + FORMULA_NAME in cells
    risky = [c for c in cells if c[:1] in ("=", "+", "@") or (
        c.startswith("-") and not c.lstrip("-").replace(".", "").isdigit())]
    assert risky == []
    book = load_workbook(io.BytesIO(session.get("/command/dashboard.xlsx" + query).data))
    cells = [cell for row in book.active.iter_rows() for cell in row]
    assert FORMULA_NAME in [c.value for c in cells]
    assert [c.coordinate for c in cells if c.data_type == "f"] == []


# -- path traversal -------------------------------------------------------------------------------
TRAVERSALS = (
    "/assets/../../../../etc/passwd",
    "/assets/leaflet/../../../../../../etc/passwd",
    "/assets/leaflet/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/assets/leaflet/..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/assets/leaflet/%252e%252e%252f%252e%252e%252fetc%252fpasswd",
    "/assets/leaflet//etc/passwd",
    "/assets/folium/../../../gis/config.py",
    "/assets/..%5c..%5c..%5cetc%5cpasswd",
    "/static/webmap/../../gis/config.py",
    "/static/webmap/..%2f..%2f..%2fgis%2fconfig.py",
    "/static/webmap/%2e%2e/__init__.py",
    "/photos/..%2f..%2f..%2fetc%2fpasswd",
    "/photos/1/../../../etc/passwd",
    "/photos/%2e%2e%2f%2e%2e%2fsecret_key",
    "/m/sw.js/../../../etc/passwd",
    "/api/units/..%2f..%2f..%2fetc%2fpasswd",
)


@pytest.mark.parametrize("path", TRAVERSALS)
def test_path_traversal_reaches_no_file(world, path):
    for who in (None, "admin"):
        response = world.session(who).get(path)
        body = response.get_data(as_text=True)
        assert response.status_code in (301, 302, 308, 400, 404), (path, response.status_code)
        assert "root:" not in body and "def get_settings" not in body
        assert "from __future__" not in body


def test_a_photo_is_only_ever_served_from_its_hash_name(world, tmp_path):
    photo_id = _upload_unique_photo(world.session("grid_worker", "bearer"))
    with world.engine.begin() as conn:
        conn.execute(text("UPDATE photo SET path = '../../etc/passwd' WHERE id = :id"),
                     {"id": photo_id})
    response = world.session("grid_worker", "bearer").get(f"/photos/{photo_id}")
    assert response.status_code == 404 and b"root:" not in response.data


# -- the role x page matrix -----------------------------------------------------------------------
PUBLIC = "public"
CENTRE = frozenset({"admin", "acceptor", "shift_leader", "dispatcher", "supervisor", "viewer"})
CENTRE_ACT = CENTRE - {"viewer"}
FIELD = frozenset({"admin", "grid_worker", "grid_leader", "supervisor"})
SIGNED_IN = frozenset(ROLES)
#: page → who gets it (2xx or a redirect inside the site); everyone else: 403 when signed in,
#: the sign-in page when not. ``{case}``: a case in the grid worker's grid; ``{photo}``: a
#: photo on that case's trail (grid staff see it in their grids; roles without grids, all).
PAGES: dict[tuple[str, str], frozenset[str] | str] = {
    ("get", "/"): PUBLIC,
    ("get", "/login"): PUBLIC,
    ("get", "/m/sw.js"): PUBLIC,
    ("get", "/command/"): CENTRE,
    ("get", "/command/cases"): CENTRE,
    ("get", "/command/cases/{case}"): CENTRE,
    ("get", "/command/map"): CENTRE,
    ("get", "/command/map/points.json"): CENTRE,
    ("get", "/command/dashboard?period=2019-05"): CENTRE,
    ("get", "/command/dashboard.csv?period=2019-05"): CENTRE,
    ("get", "/command/dashboard.xlsx?period=2019-05"): CENTRE,
    ("get", "/maps/indicator?period=2019-05"): CENTRE,  # the dashboard's figures on a map
    ("post", "/command/cases/{case}/act"): CENTRE_ACT,
    ("get", "/m/"): FIELD,
    ("get", "/m/report"): FIELD,
    ("get", "/m/tasks"): FIELD,
    ("get", "/m/cases/{case}"): FIELD,
    ("get", "/photos/{photo}"): SIGNED_IN,
}


@pytest.fixture(scope="module")
def targets(world) -> dict[str, int]:
    """A case in the grid worker's grid, reported with a photo (on its trail)."""
    reporter = world.session("supervisor", "bearer")
    photo_id = _upload_unique_photo(reporter)
    response = reporter.post("/api/incidents", json=report_body(GRID_WEST,
                                                                 photo_ids=[photo_id]))
    assert response.status_code == 201, response.get_json()
    return {"case": response.get_json()["case"]["id"], "photo": photo_id}


def _upload_unique_photo(session) -> int:
    """A photo of this uploader's own (the same picture twice is stored once, as the first
    uploader's)."""
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), tuple(uuid.uuid4().bytes[:3])).save(buffer, "PNG")
    response = session.post("/api/photos", data={"photo": (io.BytesIO(buffer.getvalue()),
                                                           "p.png")},
                            content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def _page_request(world: ApiWorld, who: str | None, method: str, path: str):
    session = world.session(who)
    if method == "get":
        return session.get(path)
    # past the role check, an unknown action is the workflow's 400: nothing changes
    return session.client.post(path, data={"action": "no_such_action", "note": "matrix",
                                           "csrf_token": session.csrf})


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "template"), list(PAGES))
def test_role_page_matrix(world, targets, method, template, role):
    allowed = PAGES[(method, template)]
    response = _page_request(world, role, method, template.format(**targets))
    location = response.headers.get("Location", "")
    if allowed == PUBLIC or role in allowed:
        assert response.status_code < 400 or (
            method == "post" and response.status_code == 400), response.status_code
        assert "/login" not in location
    else:
        assert response.status_code in (403, 404), (role, response.status_code)


@pytest.mark.parametrize(("method", "template"), list(PAGES))
def test_anonymous_page_matrix(world, targets, method, template):
    response = _page_request(world, None, method, template.format(**targets))
    if PAGES[(method, template)] == PUBLIC:
        assert response.status_code == 200
    else:
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("role", ROLES)
def test_open311_filing_by_role(world, role):
    lon, lat = point_in(GRID_WEST)
    response = world.session(None).client.post("/open311/v2/requests.json", data={
        "api_key": world.tokens[role], "service_code": "E0102", "lat": lat, "long": lon,
        "description": "井盖缺失 ' OR 1=1 --", "attribute[severity]": "minor"})
    if role in FILING_ROLES | {"admin"}:  # an admin may file too
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json()[0]["service_request_id"]
    else:
        assert response.status_code == 403, (role, response.status_code)
        assert response.get_json()[0]["code"] == 403


def test_grid_scope_holds_on_the_pages(world, targets):
    """A grid worker of another grid sees neither the case nor its photo."""
    east = world.session("grid_worker_east")
    assert east.get(f"/m/cases/{targets['case']}").status_code == 404
    assert east.get(f"/photos/{targets['photo']}").status_code == 404
    assert world.session("grid_worker").get(f"/m/cases/{targets['case']}").status_code == 200


# -- a double tap ---------------------------------------------------------------------------------
def test_the_same_key_twice_at_once_stores_one_report(world):
    """The second request waits for the first to commit and replays it (no 500, no copy)."""
    key = f"double-{uuid.uuid4().hex}"
    at = datetime.fromisoformat("2019-07-01T09:00:00+08:00")
    report = {"source": "grid_worker", "class_code": "E0102", "reported_at": at,
              "x": 120.3025, "y": 31.5775, "crs": "cgcs2000", "source_key": key}
    results: list = []
    with world.engine.connect() as first:
        transaction = first.begin()
        stored = report_incident(first, **report)
        second = threading.Thread(target=lambda: results.append(
            report_incident(world.engine, **report)))
        second.start()
        second.join(timeout=1.0)
        assert second.is_alive()  # waiting for the first transaction
        transaction.commit()
    second.join(timeout=30)
    assert results and results[0].duplicate and results[0].id == stored.id
    with world.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM incident WHERE source_key = :k"),
                            {"k": key}).scalar_one() == 1


def test_concurrent_retries_through_the_api_are_answered_once(world):
    body = report_body(GRID_EAST, idempotency_key=uuid.uuid4().hex)
    answers: list = []

    def send() -> None:
        from flask.testing import FlaskClient

        client = FlaskClient(world.app)
        answers.append(client.post("/api/incidents", json=body, headers={
            "Authorization": f"Bearer {world.tokens['grid_worker_east']}"}))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 201]
    assert len({a.get_json()["incident"]["id"] for a in answers}) == 1
