"""The REST API for incidents, cases and indicators, on the small test hierarchy.

Every answer goes through :class:`ContractClient`, so it is also checked against the OpenAPI
document. The module's world (also used by test_api_roles) has one user per role plus a second
grid worker and handler in the east street, and four seeded cases reported in May 2019:

- A: grid 320213001001001 (west), E0102, fed back (handled by the west squadron);
- B: grid 320213001001002 (west), E0102, reported;
- C: grid 320213002002004 (east), E0708, dispatched to the market bureau;
- D: grid 320213002002004 (east), E0102, closed (by the east squadron);
- and one hotline incident outside the district, with no case.

Tests that add data do so after May 2019, so the seeded figures stay exact.
"""

from __future__ import annotations

import io
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from PIL import Image
from sqlalchemy import Engine, text

from gis.accounts import User, create_user, issue_token, load_user
from gis.boundaries import activate, create_generation
from gis.catalogues import load_classes
from gis.database import get_engine
from gis.deadlines import load_rules
from gis.incidents import report_incident
from gis.indicators import INDICATORS
from gis.workflow import Actor, Workflow
from tests.factories import lattice, small_hierarchy, small_organisation
from tests.webmap.test_openapi_contract import ContractClient
from webmap import create_app

CST = ZoneInfo("Asia/Shanghai")
SEED_AT = datetime(2019, 5, 10, 9, 0, tzinfo=CST)
LATER = datetime(2019, 7, 5, 9, 0, tzinfo=CST)
PASSWORD = "correct horse 42"
GRID_WEST, GRID_WEST_2, GRID_EAST = "320213001001001", "320213001001002", "320213002002004"
CELLS = {GRID_WEST: (0, 3), GRID_WEST_2: (1, 3), GRID_EAST: (3, 0)}
PHONE = "13812345678"
MASKED_PHONE = "138****5678"
STAFF_PHONE = "13900001111"

#: username: (role, display name, grids, department code)
USERS: dict[str, tuple[str, str, tuple[str, ...], str | None]] = {
    "admin": ("admin", "管理员", (), None),
    "acceptor": ("acceptor", "李晓芳", (), None),
    "shift_leader": ("shift_leader", "王建国", (), None),
    "dispatcher": ("dispatcher", "赵海燕", (), None),
    "handler": ("handler", "钱进", (), "squadron_320213001"),
    "grid_leader": ("grid_leader", "孙丽华", (GRID_WEST, GRID_WEST_2), None),
    "grid_worker": ("grid_worker", "周小明", (GRID_WEST,), None),
    "supervisor": ("supervisor", "吴敏", (), None),
    "viewer": ("viewer", "郑洁", (), None),
    "grid_worker_east": ("grid_worker", "冯强", (GRID_EAST,), None),
    "handler_east": ("handler", "陈刚", (), "squadron_320213002"),
}
#: The main path, and who takes each step (``handler``: the user of the handling department).
PATH = ("accept", "file", "dispatch", "sign", "feedback", "verify_pass", "close", "evaluate")
STEP_ACTOR = {"accept": "acceptor", "file": "shift_leader", "dispatch": "dispatcher",
              "sign": "handler", "feedback": "handler", "verify_pass": "supervisor",
              "close": "shift_leader", "evaluate": "shift_leader"}
LAST_STEP = {"reported": None, "accepted": "accept", "filed": "file", "dispatched": "dispatch",
             "handling": "sign", "fed_back": "feedback", "verified": "verify_pass",
             "closed": "close", "evaluated": "evaluate"}


def point_in(grid: str) -> tuple[float, float]:
    x, y = lattice(*CELLS[grid])
    return x + 0.001, y + 0.001


# -- the world ------------------------------------------------------------------------------------
class Session:
    """Requests as one user: a signed-in cookie session (CSRF header on writes) or a token."""

    def __init__(self, app: Flask, headers: dict[str, str] | None = None,
                 csrf: str | None = None) -> None:
        self.client = app.test_client()
        self.headers = headers or {}
        self.csrf = csrf

    def get(self, path: str, **kwargs: Any):
        return self.client.get(path, headers=self.headers, **kwargs)

    def post(self, path: str, json: Any = None, csrf: bool = True, **kwargs: Any):
        headers = dict(self.headers)
        if csrf and self.csrf:
            headers["X-CSRFToken"] = self.csrf
        return self.client.post(path, json=json, headers=headers, **kwargs)


def csrf_token(session: Session) -> str:
    page = session.client.get("/login").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page)[1]


@dataclass
class ApiWorld:
    app: Flask
    engine: Engine
    workflow: Workflow
    departments: dict[str, int]
    users: dict[str, User]
    tokens: dict[str, str]
    cases: dict[str, int] = field(default_factory=dict)
    incidents: dict[str, int] = field(default_factory=dict)
    _sessions: dict[tuple[str, str], Session] = field(default_factory=dict)

    def session(self, username: str | None, auth: str = "cookie") -> Session:
        """A (cached) session of ``username``; None is an anonymous one."""
        key = (username or "", auth)
        if key not in self._sessions:
            self._sessions[key] = self._new_session(username, auth)
        return self._sessions[key]

    def _new_session(self, username: str | None, auth: str) -> Session:
        if auth == "bearer":
            return Session(self.app, {"Authorization": f"Bearer {self.tokens[username]}"})
        session = Session(self.app)
        session.csrf = csrf_token(session)
        if username is not None:
            signed_in = session.client.post("/login", data={
                "username": username, "password": PASSWORD, "csrf_token": session.csrf})
            assert signed_in.status_code == 302, username
            session.csrf = csrf_token(session)
        return session

    # .. cases through gis .......................................................................
    def open_case(self, grid: str = GRID_WEST, class_code: str = "E0102",
                  at: datetime = LATER, description: str = "") -> int:
        x, y = point_in(grid)
        reporter = self.users["grid_worker_east" if grid == GRID_EAST else "grid_leader"]
        with self.engine.begin() as conn:
            incident = report_incident(conn, source="grid_worker", class_code=class_code,
                                       reported_at=at, x=x, y=y, description=description)
            return self.workflow.open_case(conn, incident.id, incident.reported_at,
                                           reporter.actor()).id

    def case_in(self, state: str, grid: str = GRID_WEST, class_code: str = "E0102",
                at: datetime = LATER, description: str = "") -> int:
        """A new case taken along the main path until it is in ``state``."""
        case_id = self.open_case(grid, class_code, at, description)
        last = LAST_STEP[state]
        for action in PATH[:PATH.index(last) + 1] if last else ():
            at += timedelta(minutes=10)
            self.act(case_id, action, at)
        return case_id

    def act(self, case_id: int, action: str, at: datetime) -> None:
        details: dict[str, Any] = {"score": 90} if action == "evaluate" else {}
        note = f"已处理，联系电话{PHONE}" if action == "feedback" else ""
        with self.engine.begin() as conn:
            self.workflow.act(conn, case_id, action, self._actor(conn, case_id, action), at=at,
                              note=note, **details)

    def _actor(self, conn, case_id: int, action: str) -> Actor:
        role = STEP_ACTOR[action]
        if role != "handler":
            return self.users[role].actor()
        department = conn.execute(text("SELECT handler_id FROM case_file WHERE id = :id"),
                                  {"id": case_id}).scalar()
        for account in self.users.values():
            if account.role == "handler" and account.department_id == department:
                return account.actor()
        return Actor("handler", "某队员", department_id=department)

    def incident_of(self, case_id: int) -> int:
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT incident_id FROM case_file WHERE id = :id"),
                                {"id": case_id}).scalar_one()

    def department(self, code: str) -> int:
        return self.departments[code]


def _add_users(conn, departments: dict[str, int]) -> dict[str, User]:
    users = {}
    for username, (role, name, grids, department) in USERS.items():
        staff_id = None
        if grids:
            staff_id = conn.execute(text(
                "INSERT INTO staff (code, name, post, phone) VALUES (:c, :n, :p, :ph) "
                "RETURNING id"), {"c": username, "n": name, "p": role, "ph": STAFF_PHONE}
            ).scalar_one()
            conn.execute(text("INSERT INTO staff_grid VALUES (:s, :g, :r)"), [
                {"s": staff_id, "g": grid, "r": role.removeprefix("grid_")} for grid in grids])
        user_id = create_user(conn, username, PASSWORD, role, display_name=name,
                              staff_id=staff_id,
                              department_id=departments[department] if department else None)
        users[username] = load_user(conn, user_id)
    return users


def _seed(world: ApiWorld) -> None:
    """The four May 2019 cases and the incident outside the district (see the docstring)."""
    world.cases["A"] = world.case_in("fed_back", GRID_WEST, at=SEED_AT,
                                     description=f"路边垃圾，报告人电话{PHONE}")
    world.cases["B"] = world.case_in("reported", GRID_WEST_2, at=SEED_AT + timedelta(hours=1))
    world.cases["C"] = world.case_in("dispatched", GRID_EAST, "E0708",
                                     at=SEED_AT + timedelta(hours=2))
    world.cases["D"] = world.case_in("closed", GRID_EAST, at=SEED_AT + timedelta(hours=3))
    for name, case_id in world.cases.items():
        world.incidents[name] = world.incident_of(case_id)
    outside = report_incident(world.engine, source="hotline", class_code="E0102",
                              reported_at=SEED_AT + timedelta(hours=4), x=0.5, y=0.5)
    world.incidents["outside"] = outside.id


def build_world(url: str, uploads: Path) -> ApiWorld:
    engine = get_engine(url)
    load_classes(engine)
    load_rules(engine)
    activate(engine, create_generation(engine, small_hierarchy(), name="small"))
    with engine.begin() as conn:
        departments = small_organisation(conn)
        workflow = Workflow.load(conn)
        users = _add_users(conn, departments)
        tokens = {name: issue_token(conn, account.id, "tests")
                  for name, account in users.items()}
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "test", "TESTING": True,
                      "RATELIMIT_ENABLED": False, "UPLOAD_DIR": str(uploads)})
    app.test_client_class = ContractClient
    world = ApiWorld(app, engine, workflow, departments, users, tokens)
    _seed(world)
    return world


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def upload_photo(session: Session) -> int:
    response = session.post("/api/photos", data={"photo": (io.BytesIO(png()), "p.png")},
                            content_type="multipart/form-data")
    assert response.status_code == 201, response.json
    return response.json["id"]


def report_body(grid: str = GRID_WEST, **changes: Any) -> dict:
    x, y = point_in(grid)
    return {"class_code": "E0102", "x": x, "y": y, "crs": "cgcs2000",
            "description": "井盖缺失", "idempotency_key": uuid.uuid4().hex, **changes}


@pytest.fixture(scope="module")
def api(database_factory, template_name, tmp_path_factory):
    url = database_factory.create("api_cases", template=template_name)
    yield build_world(url, tmp_path_factory.mktemp("uploads"))
    database_factory.drop(url)


def _error(response, status: int, starts: str = "") -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    message = response.json["error"]["message"]
    assert response.json["error"]["status"] == status
    assert message.startswith(starts), message
    return message


# -- reporting ------------------------------------------------------------------------------------
def test_a_report_creates_the_incident_and_its_case(api):
    worker = api.session("grid_worker")
    response = worker.post("/api/incidents", report_body())
    assert response.status_code == 201
    body = response.json
    incident, case = body["incident"], body["case"]
    assert response.headers["Location"] == f"/api/incidents/{incident['id']}"
    assert incident["source"] == "grid_worker" and incident["grid_code"] == GRID_WEST
    assert incident["case"] == {"id": case["id"], "number": case["number"], "state": "reported"}
    assert case["state"] == "reported" and case["events"][0]["action"] == "report"
    assert case["events"][0]["actor"] == {"role": "grid_worker", "name": "周**"}


def test_a_replay_answers_the_first_report(api):
    worker = api.session("grid_worker")
    body = report_body()
    first = worker.post("/api/incidents", body)
    again = worker.post("/api/incidents", body)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json["incident"]["id"] == first.json["incident"]["id"]
    assert again.json["case"]["id"] == first.json["case"]["id"]


@pytest.mark.parametrize(("username", "auth", "source"), [
    ("acceptor", "cookie", "hotline"), ("shift_leader", "cookie", "hotline"),
    ("supervisor", "cookie", "grid_worker"), ("grid_leader", "cookie", "grid_worker"),
    ("admin", "cookie", "api"), ("acceptor", "bearer", "api"), ("grid_worker", "bearer", "api"),
])
def test_the_source_follows_the_role_and_tokens_report_as_api(api, username, auth, source):
    response = api.session(username, auth).post("/api/incidents", report_body())
    assert response.status_code == 201 and response.json["incident"]["source"] == source


def test_a_report_outside_the_district_has_no_case(api):
    response = api.session("acceptor").post("/api/incidents", report_body(
        x=0.5, y=0.5, crs="wgs84"))
    assert response.status_code == 201
    assert response.json["incident"]["location_status"] == "outside"
    assert response.json["case"] is None


def test_a_report_lists_nearby_open_cases_of_the_class(api):
    body = report_body(GRID_WEST_2)
    response = api.session("acceptor").post("/api/incidents", body)
    nearby = response.json["possible_duplicates"]
    assert api.cases["B"] in [candidate["case_id"] for candidate in nearby]


@pytest.mark.parametrize(("changes", "starts"), [
    ({"class_code": None}, "class_code: required"),
    ({"class_code": "E9999"}, "class_code"),
    ({"x": "east"}, "x:"),
    ({"crs": "mars"}, "crs:"),
    ({"reported_at": "2019-05-10T09:00:00"}, "reported_at:"),
    ({"reported_at": "yesterday"}, "reported_at:"),
    ({"idempotency_key": "k" * 101}, "idempotency_key:"),
    ({"photo_ids": ["one"]}, "photo_ids:"),
    ({"photo_ids": [999999]}, "photo_ids:"),
    ({"colour": "red"}, "colour: unknown field"),
])
def test_bad_reports_are_400_naming_the_field(api, changes, starts):
    body = {key: value for key, value in {**report_body(), **changes}.items()
            if value is not None}
    _error(api.session("acceptor").post("/api/incidents", body), 400, starts)


def test_a_report_body_must_be_a_json_object(api):
    session = api.session("acceptor")
    _error(session.post("/api/incidents", [1, 2]), 400, "body:")
    response = session.client.post("/api/incidents", data="x=1",
                                   headers={"X-CSRFToken": session.csrf})
    _error(response, 400, "body:")


def test_grid_staff_report_only_in_their_grids(api):
    _error(api.session("grid_worker").post("/api/incidents", report_body(GRID_EAST)), 403)


# -- listing incidents ----------------------------------------------------------------------------
def _ids(response, key: str = "items") -> list[int]:
    assert response.status_code == 200, response.json
    return [item["id"] for item in response.json[key]]


@pytest.mark.parametrize(("query", "expected"), [
    ("", ["outside", "D", "C", "B", "A"]),
    ("&class=E07", ["C"]),
    ("&class=E", ["outside", "D", "C", "B", "A"]),
    ("&status=outside", ["outside"]),
    ("&status=assigned&source=grid_worker", ["D", "C", "B", "A"]),
    ("&source=hotline", ["outside"]),
    ("&unit=320213002", ["D", "C"]),
    ("&unit=320213001001", ["B", "A"]),
    ("&unit=320213001001001", ["A"]),
    ("&unit=320213", ["D", "C", "B", "A"]),
    ("&bbox=120.300,31.575,120.305,31.580", ["A"]),
])
def test_incident_filters(api, query, expected):
    response = api.session("admin").get(f"/api/incidents?period=2019-05{query}")
    assert _ids(response) == [api.incidents[name] for name in expected]
    assert response.json["total"] == len(expected)


def test_incident_pages_follow_the_next_link(api):
    session = api.session("dispatcher")
    url, seen, totals = "/api/incidents?period=2019-05&limit=2", [], set()
    while url:
        response = session.get(url)
        seen += _ids(response)
        totals.add(response.json["total"])
        assert response.json["limit"] == 2
        url = response.json["next"]
    assert totals == {5}
    assert seen == [api.incidents[name] for name in ("outside", "D", "C", "B", "A")]
    last = session.get("/api/incidents?period=2019-05&limit=2&offset=4").json
    assert last["next"] is None and len(last["items"]) == 1


def test_incidents_as_geojson(api):
    response = api.session("admin").get("/api/incidents?period=2019-05&format=geojson&unit="
                                        f"{GRID_WEST}")
    assert response.mimetype == "application/geo+json"
    collection = response.json
    assert collection["type"] == "FeatureCollection" and collection["total"] == 1
    (feature,) = collection["features"]
    assert feature["id"] == api.incidents["A"] and feature["geometry"]["type"] == "Point"
    lon, lat = feature["geometry"]["coordinates"]
    assert (lon, lat) == pytest.approx(point_in(GRID_WEST))
    assert feature["properties"]["case"]["id"] == api.cases["A"]


def test_one_incident(api):
    response = api.session("viewer").get(f"/api/incidents/{api.incidents['A']}")
    assert response.status_code == 200
    incident = response.json
    assert incident["grid_code"] == GRID_WEST and incident["community_code"] == "320213001001"
    assert incident["street_code"] == "320213001" and incident["class_name"]
    assert PHONE not in incident["description"] and MASKED_PHONE in incident["description"]
    _error(api.session("viewer").get("/api/incidents/999999999"), 404)


@pytest.mark.parametrize(("query", "starts"), [
    ("limit=0", "limit:"), ("limit=501", "limit:"), ("limit=ten", "limit:"),
    ("offset=-1", "offset:"), ("period=2019Q5", "period:"), ("status=lost", "status:"),
    ("source=pigeon", "source:"), ("unit=abc", "unit:"), ("class=X01", "class:"),
    ("bbox=1,2,3", "bbox:"), ("bbox=3,2,1,4", "bbox:"), ("format=xml", "format:"),
    ("colour=red", "colour: unknown parameter"), ("limit=1&limit=2", "limit:"),
])
def test_bad_incident_queries_are_400_naming_the_parameter(api, query, starts):
    _error(api.session("admin").get(f"/api/incidents?{query}"), 400, starts)


# -- listing cases --------------------------------------------------------------------------------
@pytest.mark.parametrize(("query", "expected"), [
    ("", ["D", "C", "B", "A"]),
    ("&state=reported,dispatched", ["C", "B"]),
    ("&overdue=true", ["C", "B", "A"]),
    ("&overdue=false", ["D"]),
    ("&class=E07", ["C"]),
    ("&unit=320213001", ["B", "A"]),
    ("&sort=reported_at", ["A", "B", "C", "D"]),
])
def test_case_filters(api, query, expected):
    response = api.session("shift_leader").get(f"/api/cases?period=2019-05{query}")
    assert _ids(response) == [api.cases[name] for name in expected]
    assert response.json["total"] == len(expected)


def test_cases_by_department(api):
    session = api.session("admin")
    market = session.get(f"/api/cases?period=2019-05&department={api.department('msb')}")
    assert _ids(market) == [api.cases["C"]]
    squadron = api.department("squadron_320213001")
    assert _ids(session.get(f"/api/cases?period=2019-05&department={squadron}")) == [
        api.cases["A"]]
    bureau = api.department("caeb")
    assert _ids(session.get(f"/api/cases?period=2019-05&department={bureau}")) == [
        api.cases["D"], api.cases["A"]]


def test_cases_sorted_by_node_deadline_put_closed_cases_last(api):
    response = api.session("admin").get("/api/cases?period=2019-05&sort=node_due_at")
    dues = [item["node_due_at"] for item in response.json["items"]]
    assert dues[-1] is None and None not in dues[:-1]
    assert dues[:-1] == sorted(dues[:-1], key=datetime.fromisoformat)
    newest_due = api.session("admin").get("/api/cases?period=2019-05&sort=-node_due_at")
    assert newest_due.json["items"][0]["node_due_at"] == dues[-2]


def test_cases_as_geojson_pages(api):
    response = api.session("admin").get("/api/cases?period=2019-05&format=geojson&limit=3")
    assert response.mimetype == "application/geo+json"
    assert response.json["total"] == 4 and len(response.json["features"]) == 3
    follow = api.session("admin").get(response.json["next"])
    assert [f["id"] for f in follow.json["features"]] == [api.cases["A"]]


@pytest.mark.parametrize(("query", "starts"), [
    ("state=lost", "state:"), ("overdue=maybe", "overdue:"), ("sort=number", "sort:"),
    ("department=zero", "department:"), ("department=0", "department:"),
    ("period=2019-13", "period:"), ("page=2", "page: unknown parameter"),
])
def test_bad_case_queries_are_400_naming_the_parameter(api, query, starts):
    _error(api.session("admin").get(f"/api/cases?{query}"), 400, starts)


# -- one case -------------------------------------------------------------------------------------
def test_case_detail_has_the_trail(api):
    response = api.session("dispatcher").get(f"/api/cases/{api.cases['A']}")
    case = response.json
    assert case["state"] == "fed_back" and case["grid_code"] == GRID_WEST
    assert case["department"]["id"] == api.department("caeb")
    assert case["handler"] == {"id": api.department("squadron_320213001"),
                               "name": "320213001中队"}
    assert [e["action"] for e in case["events"]] == [
        "report", "accept", "file", "dispatch", "sign", "feedback"]
    assert [e["seq"] for e in case["events"]] == [1, 2, 3, 4, 5, 6]
    assert case["events"][1]["actor"] == {"role": "acceptor", "name": "李晓芳"}
    assert case["events"][3]["details"]["route"]["handler_name"] == "320213001中队"
    assert [c["department"]["name"] for c in case["copies"]] == ["市场监督管理局"]
    assert case["overdue"] is True and case["location"]["type"] == "Point"


@pytest.mark.parametrize(("username", "acceptor_name"), [
    ("admin", "李晓芳"), ("dispatcher", "李晓芳"), ("supervisor", "李晓芳"),
    ("handler", "李**"), ("grid_worker", "李**"), ("grid_leader", "李**"), ("viewer", None),
])
def test_actor_names_are_masked_by_role_and_phones_never_appear(api, username, acceptor_name):
    response = api.session(username).get(f"/api/cases/{api.cases['A']}")
    accept = response.json["events"][1]
    assert accept["actor"] == {"role": "acceptor", "name": acceptor_name}
    raw = response.get_data(as_text=True)
    assert PHONE not in raw and STAFF_PHONE not in raw and MASKED_PHONE in raw


def test_actions_are_what_the_user_may_do_now(api):
    case_id = api.case_in("reported")
    path = f"/api/cases/{case_id}/actions"
    acceptor = api.session("acceptor").get(path).json
    assert acceptor["state"] == "reported"
    assert [a["action"] for a in acceptor["actions"]] == ["accept", "reject", "mark_duplicate"]
    reject = acceptor["actions"][1]
    assert reject == {"action": "reject", "needs_note": True, "to_state": "not_accepted"}
    assert api.session("viewer").get(path).json["actions"] == []
    assert [a["action"] for a in api.session("shift_leader").get(path).json["actions"]] == [
        "accept", "reject", "mark_duplicate", "void", "supervise", "copy_to"]
    _error(api.session("viewer").get("/api/cases/999999999/actions"), 404)


# -- the whole path through the API ---------------------------------------------------------------
def _transition(api, username: str, case_id: int, action: str, **body: Any):
    return api.session(username).post(f"/api/cases/{case_id}/transitions",
                                      {"action": action, **body})


def test_a_case_walks_the_whole_path_through_the_api(api):
    reported = api.session("grid_worker").post("/api/incidents", report_body())
    case_id = reported.json["case"]["id"]
    photo = upload_photo(api.session("handler"))
    steps = [
        ("acceptor", "accept", {}, "accepted"),
        ("shift_leader", "file", {}, "filed"),
        ("dispatcher", "dispatch", {}, "dispatched"),
        ("handler", "sign", {}, "handling"),
        ("handler", "feedback", {"note": "已清理", "photo_ids": [photo]}, "fed_back"),
        ("grid_worker", "verify_pass", {"location": {"type": "Point", "coordinates": list(
            point_in(GRID_WEST))}}, "verified"),
        ("shift_leader", "close", {}, "closed"),
        ("shift_leader", "evaluate", {"details": {"score": 95}}, "evaluated"),
    ]
    for username, action, body, state in steps:
        offered = api.session(username).get(f"/api/cases/{case_id}/actions").json["actions"]
        assert action in [a["action"] for a in offered], (username, action)
        response = _transition(api, username, case_id, action, **body)
        assert response.status_code == 200, response.json
        assert response.json["state"] == state
    case = api.session("shift_leader").get(f"/api/cases/{case_id}").json
    events = case["events"]
    assert [(e["action"], e["actor"]["role"]) for e in events] == [
        ("report", "grid_worker"), ("accept", "acceptor"), ("file", "shift_leader"),
        ("dispatch", "dispatcher"), ("sign", "handler"), ("feedback", "handler"),
        ("verify_pass", "grid_worker"), ("close", "shift_leader"),
        ("evaluate", "shift_leader")]
    assert [e["actor"]["name"] for e in events[1:4]] == ["李晓芳", "王建国", "赵海燕"]
    assert events[5]["photos"][0]["photo_id"] == photo
    assert events[6]["location"]["coordinates"] == pytest.approx(list(point_in(GRID_WEST)))
    assert case["evaluation_score"] == 95 and case["closed_at"] and not case["overdue"]
    assert case["handler"]["id"] == api.department("squadron_320213001")


@pytest.mark.parametrize(("username", "action", "body", "status", "starts"), [
    ("acceptor", "explode", {}, 400, "unknown action"),
    ("acceptor", "reject", {}, 400, "reject needs a note"),
    ("acceptor", "mark_duplicate", {}, 400, "mark_duplicate needs duplicate_of"),
    ("acceptor", "accept", {"details": {"colour": 1}}, 400, "details.colour"),
    ("acceptor", "accept", {"details": {"score": "high"}}, 400, "details.score"),
    ("acceptor", "accept", {"location": {"type": "Point", "coordinates": [500, 1]}}, 400,
     "location:"),
    ("acceptor", "accept", {"photo_ids": [999999]}, 400, "photo_ids:"),
    ("acceptor", "accept", {"when": "now"}, 400, "when: unknown field"),
    ("acceptor", "file", {}, 403, "a acceptor may not file"),
    ("viewer", "accept", {}, 403, "your role (viewer)"),
    ("admin", "accept", {}, 403, "a admin may not accept"),
    ("shift_leader", "close", {}, 409, "cannot close a case that is reported"),
])
def test_transition_errors(api, username, action, body, status, starts):
    case_id = api.case_in("reported")
    _error(_transition(api, username, case_id, action, **body), status, starts)
    assert api.session("admin").get(f"/api/cases/{case_id}").json["state"] == "reported"


def test_an_action_twice_is_a_conflict(api):
    case_id = api.case_in("reported")
    assert _transition(api, "acceptor", case_id, "accept").status_code == 200
    _error(_transition(api, "acceptor", case_id, "accept"), 409, "cannot accept")


def test_unknown_cases_are_404(api):
    _error(api.session("admin").get("/api/cases/999999999"), 404, "there is no case")
    _error(_transition(api, "acceptor", 999999999, "accept"), 404, "there is no case")


def test_transition_body_must_be_json_with_an_action(api):
    case_id = api.case_in("reported")
    _error(api.session("acceptor").post(f"/api/cases/{case_id}/transitions", {}), 400,
           "action: required")
    _error(api.session("acceptor").post(f"/api/cases/{case_id}/transitions", "accept"), 400,
           "body:")


# -- figures --------------------------------------------------------------------------------------
def test_indicators_per_street(api):
    response = api.session("viewer").get("/api/indicators?level=street&period=2019-05")
    table = response.json
    assert table["level"] == "street" and table["period"] == "2019-05"
    assert table["indicators"] == list(INDICATORS) == table["columns"]
    rows = {row["code"]: row["values"] for row in table["units"]}
    assert set(rows) == {"320213001", "320213002"}
    assert (rows["320213001"]["cases"], rows["320213002"]["cases"]) == (2, 2)
    assert rows["320213002"]["closed"] == 1 and rows["320213001"]["closure_rate"] == 0.0
    assert rows["320213001"]["rework_rate"] == 0.0
    assert 0 <= table["pass_rate"] <= 1


def test_indicators_compared_with_another_period(api):
    response = api.session("supervisor").get(
        "/api/indicators?level=district&period=2019-05&compare=2019-04"
        "&indicator=cases,closed")
    table = response.json
    assert table["compare"] == "2019-04" and table["indicators"] == ["cases", "closed"]
    assert table["columns"] == ["cases_before", "cases_after", "cases_change",
                                "closed_before", "closed_after", "closed_change"]
    (district,) = table["units"]
    assert district["code"] == "320213"
    assert district["values"] == {"cases_before": 0, "cases_after": 4, "cases_change": 4,
                                  "closed_before": 0, "closed_after": 1, "closed_change": 1}


@pytest.mark.parametrize(("query", "starts"), [
    ("period=2019&level=planet", "level:"), ("level=street", "period: required"),
    ("period=2019&indicator=happiness", "indicator:"), ("period=2019&compare=last", "compare:"),
    ("period=2019&unit=320213", "unit: unknown parameter"),
])
def test_bad_indicator_queries_are_400(api, query, starts):
    _error(api.session("admin").get(f"/api/indicators?{query}"), 400, starts)


def test_case_summary(api):
    summary = api.session("shift_leader").get("/api/cases/summary?period=2019-05").json
    assert summary["period"] == "2019-05" and summary["total"] == 4
    assert summary["by_state"] == {"fed_back": 1, "reported": 1, "dispatched": 1, "closed": 1}
    assert summary["overdue_open"] == 3
    _error(api.session("shift_leader").get("/api/cases/summary"), 400, "period: required")
