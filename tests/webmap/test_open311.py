"""Open311 GeoReport v2 under /open311/v2, on the small test hierarchy.

Every JSON answer is validated against the GeoReport v2 schemas published by the Open311
project (tests/webmap/open311_schemas, see its README); XML answers are parsed with
xml.etree and their fields checked. The module's world has the Open311 client's account
(``app``, an acceptor), staff to walk cases through the workflow, and three seeded Open311
cases from 2019 for the date filters:

- S1: E0102 in grid 320213001001002 (west street), 2019-05-10, closed;
- S2: E0708 in grid 320213002002004 (east street), 2019-05-12, reported (routed to the market
  bureau);
- S3: E0102 in grid 320213002002004, 2019-08-20, not accepted;

and, in the same window, cases the public does not see in full (see "What is public" in
docs/OPEN311.md):

- H1: E0102 from the 12345 hotline, 2019-05-11; G1: E0102 from a grid worker, 2019-05-13
  (internal sources: never shown);
- P1: E0603 邻里纠纷 through Open311, 2019-05-14 (a sensitive class: not listed; by id without
  text or position).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4
from sqlalchemy import Engine, text

from gis import open311 as o311
from gis.accounts import User, create_user, issue_token, load_user, revoke_token
from gis.boundaries import activate, create_generation
from gis.catalogues import load_classes
from gis.database import get_engine
from gis.deadlines import load_rules
from gis.incidents import report_incident
from gis.workflow import Actor, Workflow
from tests.factories import lattice, small_hierarchy, small_organisation
from webmap import auth, create_app
from webmap.open311 import disclosure_of

SCHEMAS = Path(__file__).parent / "open311_schemas"
BASE = "/open311/v2"
CST = ZoneInfo("Asia/Shanghai")
PASSWORD = "correct horse 42"
GRID_WEST, GRID_WEST_2, GRID_EAST = "320213001001001", "320213001001002", "320213002002004"
CELLS = {GRID_WEST: (0, 3), GRID_WEST_2: (1, 3), GRID_EAST: (3, 0)}
PHONE, MASKED_PHONE = "13812345678", "138****5678"
ID_NUMBER, MASKED_ID = "32021119900101123X", "320211********123X"
W3C = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)")
CAEB, MSB = "综合行政执法局", "市场监督管理局"
#: username: role, department code, grids
STAFF = {"app": ("acceptor", None, ()), "acceptor": ("acceptor", None, ()),
         "shift_leader": ("shift_leader", None, ()), "dispatcher": ("dispatcher", None, ()),
         "supervisor": ("supervisor", None, ()), "viewer": ("viewer", None, ()),
         "handler_west": ("handler", "squadron_320213001", ()),
         "handler_east": ("handler", "squadron_320213002", ()),
         "grid_worker": ("grid_worker", None, (GRID_WEST,))}
PATH = ("accept", "file", "dispatch", "sign", "feedback", "verify_pass", "close", "evaluate")
ACTOR_OF = {"accept": "acceptor", "reject": "acceptor", "file": "shift_leader",
            "dispatch": "dispatcher", "verify_pass": "supervisor", "close": "shift_leader",
            "evaluate": "shift_leader"}


def point_in(grid: str) -> tuple[float, float]:
    """(lon, lat) inside the grid."""
    x, y = lattice(*CELLS[grid])
    return x + 0.001, y + 0.001


# -- schemas --------------------------------------------------------------------------------------
@cache
def _registry() -> Registry:
    resources = [(path.relative_to(SCHEMAS).as_posix(),
                  Resource.from_contents(json.loads(path.read_text("utf-8")),
                                         default_specification=DRAFT4))
                 for path in SCHEMAS.rglob("*.json")]
    return Registry().with_resources(resources)


def validate(instance: Any, schema: str) -> None:
    """Validate against a vendored schema file (``request.json``) or a swagger definition
    (``#RequestResponse``, nulls dropped: Swagger 2.0 has no null)."""
    if schema.startswith("#"):
        instance = [{k: v for k, v in item.items() if v is not None} for item in instance]
        ref = {"type": "array", "items": {
            "$ref": f"swagger-definitions.json#/definitions/{schema[1:]}"}}
    else:
        ref = {"$ref": schema}
    Draft4Validator(ref, registry=_registry(),
                    format_checker=Draft4Validator.FORMAT_CHECKER).validate(instance)


# -- the world ------------------------------------------------------------------------------------
@dataclass
class World:
    app: Flask
    engine: Engine
    workflow: Workflow
    departments: dict[str, int]
    users: dict[str, User]
    keys: dict[str, str]
    seeds: dict[str, str] = field(default_factory=dict)

    def client(self):
        return self.app.test_client()

    def get(self, path: str, **kwargs: Any):
        return self.client().get(f"{BASE}/{path}", **kwargs)

    def post(self, fmt: str = "json", key: str | None = "app", **fields: Any):
        data = {"api_key": self.keys[key]} if key else {}
        data.update({name: value for name, value in fields.items() if value is not None})
        return self.client().post(f"{BASE}/requests.{fmt}", data=data)

    def file(self, grid: str = GRID_WEST, **fields: Any) -> str:
        """A request posted through Open311; its service_request_id."""
        lon, lat = point_in(grid)
        form = {"service_code": "E0102", "lat": lat, "long": lon,
                "attribute[severity]": "serious", "description": "路边有暴露垃圾", **fields}
        response = self.post(**form)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.json[0]["service_request_id"]

    def case(self, number: str) -> dict:
        with self.engine.connect() as conn:
            return dict(conn.execute(text("SELECT * FROM case_file WHERE number = :n"),
                                     {"n": number}).mappings().one())

    def act(self, number: str, action: str, at: datetime, note: str = "", **details) -> None:
        case = self.case(number)
        with self.engine.begin() as conn:
            self.workflow.act(conn, case["id"], action, self._actor(case, action), at=at,
                              note=note, **details)

    def _actor(self, case: dict, action: str) -> Actor:
        if action in ACTOR_OF:
            return self.users[ACTOR_OF[action]].actor()
        handler = next(u for u in self.users.values()
                       if u.role == "handler" and u.department_id == case["handler_id"])
        return handler.actor()

    def walk(self, number: str, until: str, start: datetime) -> datetime:
        """Take the case along the main path up to ``until``; the time of the last step."""
        at = start
        for action in PATH[:PATH.index(until) + 1]:
            at += timedelta(minutes=10)
            note = f"已清理，联系电话{PHONE}" if action == "feedback" else ""
            self.act(number, action, at, note, **({"score": 90} if action == "evaluate" else {}))
        return at


def _add_users(conn, departments: dict[str, int]) -> dict[str, User]:
    users = {}
    for username, (role, department, grids) in STAFF.items():
        staff_id = None
        if grids:
            staff_id = conn.execute(text(
                "INSERT INTO staff (code, name, post) VALUES (:c, :n, :p) RETURNING id"),
                {"c": username, "n": username, "p": role}).scalar_one()
            conn.execute(text("INSERT INTO staff_grid VALUES (:s, :g, 'worker')"),
                         [{"s": staff_id, "g": grid} for grid in grids])
        user_id = create_user(conn, username, PASSWORD, role, staff_id=staff_id,
                              department_id=departments[department] if department else None)
        users[username] = load_user(conn, user_id)
    return users


def _keys(conn, users: dict[str, User]) -> dict[str, str]:
    keys = {name: issue_token(conn, user.id, "open311") for name, user in users.items()}
    keys["expired"] = issue_token(conn, users["app"].id, "expired",
                                  datetime.now(UTC) - timedelta(days=1))
    keys["revoked"] = issue_token(conn, users["app"].id, "revoked")
    token_id = conn.execute(text("SELECT id FROM api_token WHERE name = 'revoked'")).scalar_one()
    revoke_token(conn, token_id, datetime.now(UTC))
    return keys


def _seed(world: World) -> None:
    seeds = {"S1": (GRID_WEST_2, "E0102", datetime(2019, 5, 10, 9, 0, tzinfo=CST), "open311"),
             "S2": (GRID_EAST, "E0708", datetime(2019, 5, 12, 10, 0, tzinfo=CST), "open311"),
             "S3": (GRID_EAST, "E0102", datetime(2019, 8, 20, 10, 0, tzinfo=CST), "open311"),
             "H1": (GRID_WEST_2, "E0102", datetime(2019, 5, 11, 9, 0, tzinfo=CST), "hotline"),
             "G1": (GRID_EAST, "E0102", datetime(2019, 5, 13, 9, 0, tzinfo=CST), "grid_worker"),
             "P1": (GRID_WEST_2, "E0603", datetime(2019, 5, 14, 9, 0, tzinfo=CST), "open311")}
    for name, (grid, code, at, source) in seeds.items():
        x, y = point_in(grid)
        with world.engine.begin() as conn:
            incident = report_incident(conn, source=source, class_code=code, reported_at=at,
                                       x=x, y=y, description=f"市民{PHONE}反映，身份证{ID_NUMBER}")
            case = world.workflow.open_case(conn, incident.id, incident.reported_at,
                                            world.users["acceptor"].actor())
        world.seeds[name] = case.number
    world.walk(world.seeds["S1"], "close", seeds["S1"][2])
    world.act(world.seeds["S3"], "reject", seeds["S3"][2] + timedelta(hours=1), "不属于受理范围")


def build_world(url: str) -> World:
    engine = get_engine(url)
    load_classes(engine)
    load_rules(engine)
    activate(engine, create_generation(engine, small_hierarchy(), name="small"))
    with engine.begin() as conn:
        departments = small_organisation(conn)
        workflow = Workflow.load(conn)
        users = _add_users(conn, departments)
        keys = _keys(conn, users)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "test", "TESTING": True,
                      "RATELIMIT_ENABLED": False})
    world = World(app, engine, workflow, departments, users, keys)
    _seed(world)
    return world


@pytest.fixture(scope="module")
def world(database_factory, template_name):
    url = database_factory.create("open311", template=template_name)
    yield build_world(url)
    database_factory.drop(url)


# -- helpers --------------------------------------------------------------------------------------
def xml_of(response) -> ElementTree.Element:
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert response.data.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    return ElementTree.fromstring(response.data)


def json_of(response, status: int = 200) -> Any:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    return response.json


def assert_error(response, status: int, contains: str = "") -> str:
    """The spec's error array, in the format of the extension; its description."""
    assert response.status_code == status, response.get_data(as_text=True)
    if response.headers["Content-Type"].startswith("text/xml"):
        errors = xml_of(response)
        assert errors.tag == "errors" and [e.tag for e in errors] == ["error"]
        code, description = errors.find("error/code").text, errors.find("error/description").text
        assert code == str(status)
    else:
        body = json_of(response, status)
        validate(body, "from-spec/errors.json")
        assert body[0]["code"] == status
        description = body[0]["description"]
    assert contains in description, description
    return description


def one(world: World, number: str) -> dict:
    body = json_of(world.get(f"requests/{number}.json"))
    validate(body, "requests.json")
    assert len(body) == 1
    return body[0]


def ids(body: list[dict]) -> list[str]:
    return [item["service_request_id"] for item in body]


# -- discovery and services -----------------------------------------------------------------------
def test_discovery_in_both_formats(world):
    body = json_of(world.get("discovery.json"))
    validate(body, "from-spec/discovery.json")
    endpoint = body["endpoints"][0]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"] == f"http://localhost{BASE}" and endpoint["type"] == "production"
    assert endpoint["formats"] == ["text/xml", "application/json"]
    assert body["changeset"] == endpoint["changeset"] == o311.CHANGESET
    root = xml_of(world.get("discovery.xml"))
    assert root.tag == "discovery" and root.find("key_service").text == body["key_service"]
    assert [f.text for f in root.find("endpoints/endpoint/formats")] == endpoint["formats"]


def test_services_are_the_incident_classes(world):
    body = json_of(world.get("services.json"))
    validate(body, "services.json")
    with world.engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM incident_class")).scalar_one()
    assert len(body) == count
    service = next(s for s in body if s["service_code"] == "E0102")
    assert service == {"service_code": "E0102", "service_name": "暴露垃圾",
                       "description": "市容环境类事件：暴露垃圾", "metadata": True,
                       "type": "realtime", "keywords": "事件, 市容环境, urban_management",
                       "group": "市容环境"}


def test_services_in_xml(world):
    root = xml_of(world.get("services.xml"))
    assert root.tag == "services" and {child.tag for child in root} == {"service"}
    service = next(s for s in root if s.findtext("service_code") == "C0101")
    assert [child.tag for child in service] == ["service_code", "service_name", "description",
                                                "metadata", "type", "keywords", "group"]
    assert service.findtext("service_name") == "上水井盖"
    assert service.findtext("metadata") == "true" and service.findtext("type") == "realtime"


@pytest.mark.parametrize(("code", "first"), [("E0102", "severity"), ("C0101", "condition")])
def test_service_definitions_depend_on_the_class_kind(world, code, first):
    body = json_of(world.get(f"services/{code}.json"))
    validate(body, "service-definition.json")
    assert body["service_code"] == code
    codes = [a["code"] for a in body["attributes"]]
    assert codes == [first, "landmark"]
    listed = body["attributes"][0]
    assert listed["datatype"] == "singlevaluelist" and listed["required"] is True
    assert listed["order"] == 1 and listed["variable"] is True and listed["values"]
    landmark = body["attributes"][1]
    assert landmark["datatype"] == "string" and landmark["required"] is False
    assert landmark["values"] == []


def test_service_definition_in_xml(world):
    root = xml_of(world.get("services/E0102.xml"))
    assert root.tag == "service_definition" and root.findtext("service_code") == "E0102"
    attribute = root.find("attributes/attribute")
    assert attribute.findtext("code") == "severity"
    assert attribute.findtext("required") == "true"
    keys = [value.findtext("key") for value in attribute.find("values")]
    assert keys == ["minor", "moderate", "serious"]
    assert attribute.find("datatype_description").text is None  # null: an empty element


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_an_unknown_service_is_404(world, fmt):
    assert_error(world.get(f"services/E9999.{fmt}"), 404, "E9999")


# -- filing ---------------------------------------------------------------------------------------
def test_a_request_becomes_an_incident_in_its_grid_and_a_routed_case(world):
    lon, lat = point_in(GRID_WEST)
    response = world.post(service_code="E0102", lat=lat, long=lon, description="路边有暴露垃圾",
                          media_url="https://example.org/p/1.jpg",
                          **{"attribute[severity]": "serious", "attribute[landmark]": "公交站旁"})
    body = json_of(response)
    validate(body, "#RequestResponse")
    assert list(body[0]) == ["service_request_id", "service_notice", "account_id"]
    assert body[0]["account_id"] is None and "Idempotent-Replayed" not in response.headers
    number = body[0]["service_request_id"]
    assert body[0]["service_notice"] == f"已登记，由{CAEB}负责处理"
    case = world.case(number)
    with world.engine.connect() as conn:
        incident = conn.execute(text(
            """SELECT i.source, i.location_status, g.code AS grid, i.description
               FROM incident i JOIN unit g ON g.id = i.grid_id
               WHERE i.id = :id"""), {"id": case["incident_id"]}).mappings().one()
    assert incident["source"] == "open311" and incident["location_status"] == "assigned"
    assert incident["grid"] == GRID_WEST and case["state"] == "reported"
    assert incident["description"] == "路边有暴露垃圾\n【严重程度：严重；参照物：公交站旁】"


def test_the_filed_request_reads_back_with_the_spec_fields(world):
    lon, lat = point_in(GRID_WEST)
    number = world.file(media_url="https://example.org/p/2.jpg")
    request = one(world, number)
    assert list(request) == ["service_request_id", "status", "status_notes", "service_name",
                             "service_code", "description", "agency_responsible",
                             "service_notice", "requested_datetime", "updated_datetime",
                             "expected_datetime", "address", "address_id", "zipcode", "lat",
                             "long", "media_url"]
    assert request["status"] == "open" and request["status_notes"] is None
    assert request["service_code"] == "E0102" and request["service_name"] == "暴露垃圾"
    assert request["agency_responsible"] == CAEB and request["expected_datetime"] is None
    assert request["address"] == "街道1 · 社区11 · 网格1" and request["address_id"] == GRID_WEST
    assert request["zipcode"] is None and request["media_url"] == "https://example.org/p/2.jpg"
    assert (request["lat"], request["long"]) == pytest.approx((lat, lon))
    for key in ("requested_datetime", "updated_datetime"):
        assert W3C.fullmatch(request[key]) and request[key].endswith("+08:00")


def test_a_request_in_xml(world):
    lon, lat = point_in(GRID_WEST)
    root = xml_of(world.post("xml", service_code="E0102", lat=lat, long=lon,
                             **{"attribute[severity]": "minor"}))
    assert root.tag == "service_requests" and [c.tag for c in root] == ["request"]
    number = root.findtext("request/service_request_id")
    assert root.find("request/account_id").text is None
    read = xml_of(world.get(f"requests/{number}.xml"))
    request = read.find("request")
    assert request.findtext("status") == "open" and request.findtext("address_id") == GRID_WEST
    assert W3C.fullmatch(request.findtext("requested_datetime"))
    assert float(request.findtext("lat")) == pytest.approx(lat)
    assert request.find("zipcode").text is None and request.find("expected_datetime") is not None


def test_a_json_body_is_accepted_too(world):
    lon, lat = point_in(GRID_WEST)
    response = world.client().post(f"{BASE}/requests.json", json={
        "api_key": world.keys["app"], "service_code": "C0101", "lat": lat, "long": lon,
        "attribute": {"condition": "missing", "landmark": "12号门口"}})
    number = json_of(response)[0]["service_request_id"]
    assert one(world, number)["service_code"] == "C0101"


def test_an_address_string_names_a_place_or_gives_lon_lat(world):
    lon, lat = point_in(GRID_EAST)
    pair = world.file(lat=None, long=None, address_string=f"{lon},{lat}")
    assert one(world, pair)["address_id"] == GRID_EAST
    community = world.file(lat=None, long=None, address_string="测试区街道1社区12 5号楼")
    assert one(world, community)["address"].startswith("街道1 · 社区12 · ")
    grid = world.file(lat=None, long=None, address_string="社区22 网格4 东侧")
    assert one(world, grid)["address"] == "街道2 · 社区22 · 网格4"
    kept = world.file(address_string="某路12号")  # with lat/long: the text is kept
    assert one(world, kept)["description"].endswith("【严重程度：严重；地址：某路12号】")
    street = world.file(lat=None, long=None, address_string="街道2")
    assert one(world, street)["address"].startswith("街道2 · ")
    assert "位置取街道2内的代表点" in one(world, street)["description"]


def test_an_address_id_is_a_unit_code(world):
    number = world.file(lat=None, long=None, address_id=GRID_WEST_2)
    assert one(world, number)["address_id"] == GRID_WEST_2


@pytest.mark.parametrize(("fields", "contains"), [
    ({"lat": None, "long": None}, "a location is required"),
    ({"lat": None}, "lat and long"),
    ({"lat": "north"}, "lat:"),
    ({"lat": None, "long": None, "address_string": "北京市东城区"}, "could not be located"),
    ({"lat": None, "long": None, "address_id": "999"}, "address_id"),
    ({"lat": None, "long": None, "address_string": "网格1"}, "matches several places"),
    ({"lat": None, "long": None, "address_string": "31.57,120.30"}, "could not be located"),
    ({"attribute[severity]": None}, "attribute[severity]: required"),
    ({"attribute[severity]": "apocalyptic"}, "attribute[severity]: 'apocalyptic'"),
    ({"attribute[colour]": "red"}, "attribute[colour]: not an attribute"),
    ({"attribute[landmark]": "x" * 101}, "attribute[landmark]: at most 100"),
    ({"service_code": None}, "service_code: required"),
    ({"media_url": "javascript:alert(1)"}, "media_url"),
    ({"description": "x" * 4001}, "description"),
    ({"idempotency_key": "a b"}, "idempotency_key"),
])
def test_bad_input_is_400(world, fields, contains):
    lon, lat = point_in(GRID_WEST)
    form = {"service_code": "E0102", "lat": lat, "long": lon, "attribute[severity]": "minor",
            **fields}
    assert_error(world.post(**form), 400, contains)


def test_a_point_outside_the_district_is_400_and_stores_nothing(world):
    with world.engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM incident")).scalar_one()
    response = world.post("xml", service_code="E0102", lat=39.9, long=116.4,
                          **{"attribute[severity]": "minor"})
    assert_error(response, 400, "outside the district")
    with world.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM incident")).scalar_one() == before


def test_an_unknown_service_code_is_404(world):
    assert_error(world.post(service_code="E9999", lat=31.5, long=120.3), 404, "E9999")


@pytest.mark.parametrize(("key", "contains"), [
    (None, "api_key is required"), ("viewer", "role viewer"),
    ("handler_west", "role handler"),
])
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_api_key_problems_are_403(world, fmt, key, contains):
    lon, lat = point_in(GRID_WEST)
    response = world.post(fmt, key=key, service_code="E0102", lat=lat, long=lon,
                          **{"attribute[severity]": "minor"})
    assert_error(response, 403, contains)


@pytest.mark.parametrize("key", ["expired", "revoked"])
def test_expired_revoked_and_unknown_keys_are_403(world, key):
    assert_error(world.post(key=key, service_code="E0102"), 403, "invalid api_key")
    response = world.client().post(f"{BASE}/requests.json",
                                   data={"api_key": "ggv_nope", "service_code": "E0102"})
    assert_error(response, 403, "invalid api_key")


def test_a_grid_workers_key_files_only_in_its_grids(world):
    lon, lat = point_in(GRID_EAST)
    response = world.post(key="grid_worker", service_code="E0102", lat=lat, long=lon,
                          **{"attribute[severity]": "minor"})
    assert_error(response, 403, "not in your grids")
    lon, lat = point_in(GRID_WEST)
    assert world.post(key="grid_worker", service_code="E0102", lat=lat, long=lon,
                      **{"attribute[severity]": "minor"}).status_code == 200


def test_the_api_key_may_come_in_the_query_string(world):
    lon, lat = point_in(GRID_WEST)
    response = world.client().post(
        f"{BASE}/requests.json?api_key={world.keys['app']}",
        data={"service_code": "E0102", "lat": lat, "long": lon, "attribute[severity]": "minor"})
    assert json_of(response)[0]["service_request_id"]


# -- idempotency and tokens -----------------------------------------------------------------------
def test_the_same_device_and_key_replay_the_first_request(world):
    key = uuid.uuid4().hex
    first = world.post(service_code="E0102", lat=31.5765, long=120.3015, device_id="dev-1",
                       idempotency_key=key, **{"attribute[severity]": "minor"})
    again = world.post(service_code="E0102", lat=31.5765, long=120.3015, device_id="dev-1",
                       idempotency_key=key, **{"attribute[severity]": "minor"})
    other = world.post(service_code="E0102", lat=31.5765, long=120.3015, device_id="dev-2",
                       idempotency_key=key, **{"attribute[severity]": "minor"})
    assert again.headers["Idempotent-Replayed"] == "true"
    assert ids(json_of(again)) == ids(json_of(first)) != ids(json_of(other))
    tokens = json_of(world.get(f"tokens/{key}.json"))
    validate(tokens, "#TokenResponse")
    assert tokens == [{"service_request_id": n, "token": key}
                      for n in (*ids(first.json), *ids(other.json))]
    root = xml_of(world.get(f"tokens/{key}.xml"))
    assert root.tag == "service_requests"
    assert [r.findtext("service_request_id") for r in root] == ids(tokens)
    assert {r.findtext("token") for r in root} == {key}


def test_the_idempotency_key_may_come_as_a_header(world):
    key = uuid.uuid4().hex
    lon, lat = point_in(GRID_WEST)
    form = {"api_key": world.keys["app"], "service_code": "E0102", "lat": lat, "long": lon,
            "attribute[severity]": "minor"}
    first = world.client().post(f"{BASE}/requests.json", data=form,
                                headers={"Idempotency-Key": key})
    again = world.client().post(f"{BASE}/requests.json", data=form,
                                headers={"Idempotency-Key": key})
    assert ids(json_of(first)) == ids(json_of(again))


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_an_unknown_token_is_404(world, fmt):
    assert_error(world.get(f"tokens/{uuid.uuid4().hex}.{fmt}"), 404, "token")


# -- reading requests -----------------------------------------------------------------------------
def test_requests_default_to_the_last_90_days(world):
    number = world.file()
    body = json_of(world.get("requests.json"))
    validate(body, "requests.json")
    assert number in ids(body) and not set(world.seeds.values()) & set(ids(body))
    times = [item["requested_datetime"] for item in body]
    assert times == sorted(times, reverse=True)


def test_requests_in_a_window_of_dates(world):
    body = json_of(world.get("requests.json", query_string={
        "start_date": "2019-05-01T00:00:00Z", "end_date": "2019-07-30T00:00:00+08:00"}))
    validate(body, "requests.json")
    assert ids(body) == [world.seeds["S2"], world.seeds["S1"]]
    start_only = json_of(world.get("requests.json", query_string={"start_date": "2019-05-11"}))
    assert ids(start_only) == [world.seeds["S2"]]  # 90 days from the start: not S3
    end_only = json_of(world.get("requests.json", query_string={"end_date": "2019-08-31"}))
    assert ids(end_only) == [world.seeds["S3"]]  # 90 days up to the end: not May


@pytest.mark.parametrize(("query", "contains"), [
    ({"start_date": "2019-01-01T00:00:00Z", "end_date": "2019-06-01T00:00:00Z"}, "90 days"),
    ({"start_date": "2019-06-01T00:00:00Z", "end_date": "2019-05-01T00:00:00Z"}, "before"),
    ({"start_date": "yesterday"}, "start_date: 'yesterday'"),
    ({"end_date": "2019-05-01T00:00:00"}, "time zone"),
    ({"status": "open,pending"}, "status: 'pending'"),
    ({"service_code": "E0102,E9999"}, "E9999"),
])
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_bad_filters_are_400(world, fmt, query, contains):
    assert_error(world.get(f"requests.{fmt}", query_string=query), 400, contains)


def test_requests_by_service_code_and_status(world):
    window = {"start_date": "2019-05-01T00:00:00Z", "end_date": "2019-07-30T00:00:00Z"}
    by_code = json_of(world.get("requests.json", query_string={**window,
                                                               "service_code": "E0708"}))
    assert ids(by_code) == [world.seeds["S2"]]
    assert by_code[0]["agency_responsible"] == MSB and by_code[0]["status"] == "open"
    closed = json_of(world.get("requests.json", query_string={**window, "status": "closed"}))
    assert ids(closed) == [world.seeds["S1"]]
    both = json_of(world.get("requests.json", query_string={**window, "status": "open,closed",
                                                            "service_code": "E0102,E0708"}))
    assert ids(both) == [world.seeds["S2"], world.seeds["S1"]]
    empty = {"status": "", "service_code": "", "jurisdiction_id": ""}  # empty = absent
    assert ids(json_of(world.get("requests.json", query_string={**window, **empty}))) == ids(
        both)


def test_list_arguments_may_also_be_repeated(world):
    window = {"start_date": "2019-05-01T00:00:00Z", "end_date": "2019-07-30T00:00:00Z"}
    query = [*window.items(), ("status", "open"), ("status", "closed"),
             ("service_code", "E0708"), ("service_code", "E0102")]
    body = json_of(world.get("requests.json", query_string=query))
    assert ids(body) == [world.seeds["S2"], world.seeds["S1"]]


def test_xml_stays_well_formed_whatever_the_text(world):
    number = world.file(description="垃圾\x01堆\x0b在路边 <b>&amp;</b>")
    request = xml_of(world.get(f"requests/{number}.xml")).find("request")
    assert request.findtext("description").startswith("垃圾堆在路边 <b>&amp;</b>")


def test_ids_override_every_other_argument(world):
    wanted = f"{world.seeds['S3']},{world.seeds['S1']}, 404404"
    body = json_of(world.get("requests.json", query_string={
        "service_request_id": wanted, "status": "open", "service_code": "E0708"}))
    validate(body, "requests.json")
    assert sorted(ids(body)) == sorted([world.seeds["S1"], world.seeds["S3"]])


def test_requests_list_in_xml(world):
    root = xml_of(world.get("requests.xml", query_string={
        "start_date": "2019-05-01T00:00:00Z", "end_date": "2019-07-30T00:00:00Z"}))
    assert root.tag == "service_requests" and [r.tag for r in root] == ["request", "request"]
    closed = root[1]
    assert closed.findtext("service_request_id") == world.seeds["S1"]
    assert closed.findtext("status") == "closed" and closed.findtext("address_id") == GRID_WEST_2
    assert closed.findtext("agency_responsible") == CAEB
    assert MASKED_PHONE in closed.findtext("description")
    assert MASKED_PHONE in closed.findtext("status_notes")


# -- what is public -------------------------------------------------------------------------------
WINDOW = {"start_date": "2019-05-01T00:00:00Z", "end_date": "2019-07-30T00:00:00Z"}


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_cases_from_internal_sources_are_not_found(world, fmt):
    listed = json_of(world.get("requests.json", query_string={
        **WINDOW, "service_code": "E0102"}))
    assert ids(listed) == [world.seeds["S1"]]  # not H1 (hotline) nor G1 (grid worker)
    for hidden in ("H1", "G1"):
        number = world.seeds[hidden]
        unknown = assert_error(world.get(f"requests/{number}.{fmt}"), 404)
        assert unknown == f"service request {number!r} not found"  # as for an unknown id
    by_ids = json_of(world.get("requests.json", query_string={"service_request_id": ",".join(
        world.seeds[name] for name in ("H1", "G1", "S1"))}))
    assert ids(by_ids) == [world.seeds["S1"]]


def test_sensitive_requests_are_not_listed_and_come_redacted_by_id(world):
    number = world.seeds["P1"]
    for query in (WINDOW, {**WINDOW, "service_code": "E0603"}, {**WINDOW, "status": "open"}):
        assert number not in ids(json_of(world.get("requests.json", query_string=query)))
    body = json_of(world.get(f"requests/{number}.json"))
    validate(body, "requests.json")
    request = body[0]
    assert request["service_code"] == "E0603" and request["status"] == "open"
    assert request["service_notice"].startswith("已登记")
    withheld = ("description", "status_notes", "address_id", "lat", "long", "media_url")
    assert all(request[key] is None for key in withheld), request
    assert request["address"] == "街道1"  # the street only
    assert ids(json_of(world.get("requests.json", query_string={
        "service_request_id": number}))) == [number]
    xml = xml_of(world.get(f"requests/{number}.xml")).find("request")
    assert xml.findtext("description") == "" and xml.findtext("lat") == ""  # empty: null


def test_id_numbers_in_free_text_are_masked(world):
    request = one(world, world.seeds["S2"])
    assert f"身份证{MASKED_ID}" in request["description"] and ID_NUMBER not in request[
        "description"]
    number = world.file(description=f"业主身份证号{ID_NUMBER.lower()}，电话{PHONE}")
    text_ = one(world, number)["description"]
    assert MASKED_ID.lower() in text_ and MASKED_PHONE in text_ and PHONE not in text_


def test_what_is_public_is_a_setting(world):
    app = create_app({"DATABASE_URL": world.engine.url.render_as_string(hide_password=False),
                      "SECRET_KEY": "test", "TESTING": True, "RATELIMIT_ENABLED": False,
                      "OPEN311_PUBLIC_SOURCES": "open311, hotline",
                      "OPEN311_SENSITIVE_CLASSES": []})
    body = app.test_client().get(f"{BASE}/requests.json", query_string=WINDOW).json
    assert set(ids(body)) == {world.seeds[name] for name in ("S1", "S2", "H1", "P1")}
    sensitive = next(item for item in body if item["service_request_id"] == world.seeds["P1"])
    assert sensitive["address_id"] == GRID_WEST_2 and MASKED_PHONE in sensitive["description"]
    assert disclosure_of({}) == o311.PUBLIC
    # GRIDGOV_OPEN311_PUBLIC_SOURCES='["open311", "video_patrol"]' arrives as a list
    assert disclosure_of({"OPEN311_PUBLIC_SOURCES": ["open311", "video_patrol"]}).sources == {
        "open311", "video_patrol"}
    with pytest.raises(ValueError, match="pigeon"):
        disclosure_of({"OPEN311_PUBLIC_SOURCES": "open311,pigeon"})


# -- rate limit -----------------------------------------------------------------------------------
@pytest.fixture
def limited(world):
    """The world's database behind an app whose limiter is on, at 3 posts a minute per client
    (the limiter is one per process: put it back as the module's app wants it afterwards)."""
    enabled = auth.limiter.enabled
    app = create_app({"DATABASE_URL": world.engine.url.render_as_string(hide_password=False),
                      "SECRET_KEY": "test", "TESTING": True, "RATELIMIT_ENABLED": True,
                      "OPEN311_POST_LIMIT": "3 per minute"})
    yield app.test_client()
    auth.limiter.enabled = enabled


def audit_rows(world: World) -> int:
    with world.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one()


def test_posting_is_rate_limited_per_client(world, limited):
    def post(fmt: str = "json", key: str | None = "acceptor", **headers):
        data = {"api_key": world.keys[key]} if key else {}
        return limited.post(f"{BASE}/requests.{fmt}", data=data, headers=headers)

    # without service_code: a 400 each, nothing filed; every post counts all the same
    assert [post().status_code for _ in range(3)] == [400, 400, 400]
    before = audit_rows(world)
    for fmt in ("json", "xml"):
        throttled = post(fmt)
        description = assert_error(throttled, 429, "too many requests from this client")
        assert "3 per 1 minute" in description
        assert 1 <= int(throttled.headers["Retry-After"]) <= 61  # the window, rounded
    assert audit_rows(world) == before  # a throttled flood writes nothing
    # the client is its api_key: another key, or none (then the address), has its own count
    assert post(key="shift_leader").status_code == 400
    assert post(key=None).status_code == 403
    assert limited.get(f"{BASE}/requests.json").status_code == 200  # reading is not limited


def test_at_most_1000_requests(world, monkeypatch):
    monkeypatch.setattr(o311, "MAX_REQUESTS", 2)
    for _ in range(3):
        world.file()
    assert len(json_of(world.get("requests.json"))) == 2


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_an_unknown_request_is_404(world, fmt):
    assert_error(world.get(f"requests/19990101000000.{fmt}"), 404, "19990101000000")


# -- the workflow behind a request ----------------------------------------------------------------
def test_the_request_follows_its_case_until_closed(world):
    number = world.file()
    start = datetime.now(UTC)
    world.act(number, "accept", start + timedelta(minutes=5))
    world.act(number, "file", start + timedelta(minutes=10))
    filed = one(world, number)
    due_at = world.case(number)["due_at"]
    assert due_at is not None and filed["status"] == "open"
    assert datetime.fromisoformat(filed["expected_datetime"]) == due_at.replace(microsecond=0)
    assert filed["service_notice"].startswith(f"已登记，由{CAEB}负责处理，应于")
    world.act(number, "dispatch", start + timedelta(minutes=15))
    case = world.case(number)
    assert case["department_id"] == world.departments["caeb"]
    assert one(world, number)["agency_responsible"] == CAEB
    for step, minutes in (("sign", 20), ("feedback", 25), ("verify_pass", 30)):
        world.act(number, step, start + timedelta(minutes=minutes),
                  f"已清理，联系电话{PHONE}" if step == "feedback" else "")
    before = one(world, number)
    assert before["status"] == "open"
    assert before["status_notes"] == f"已清理，联系电话{MASKED_PHONE}"
    world.act(number, "close", start + timedelta(minutes=40))
    closed = one(world, number)
    assert closed["status"] == "closed" and closed["service_notice"] == "已办结"
    closed_at = world.case(number)["closed_at"].replace(microsecond=0)
    assert datetime.fromisoformat(closed["updated_datetime"]) == closed_at
    listed = json_of(world.get("requests.json", query_string={"status": "closed"}))
    assert number in ids(listed)
    assert number not in ids(json_of(world.get("requests.json", query_string={"status": "open"})))


def test_a_request_not_accepted_is_closed_with_the_reason(world):
    number = world.file()
    world.act(number, "reject", datetime.now(UTC) + timedelta(minutes=1), f"重复来电{PHONE}")
    request = one(world, number)
    assert request["status"] == "closed" and request["service_notice"] == "不予受理"
    assert request["status_notes"] == f"重复来电{MASKED_PHONE}"


@pytest.mark.parametrize(("state", "status"), [
    ("reported", "open"), ("suspended", "open"), ("verified", "open"), ("closed", "closed"),
    ("evaluated", "closed"), ("not_accepted", "closed"), ("duplicate", "closed"),
    ("void", "closed"), ("not_filed", "closed")])
def test_status_of_every_state(state, status):
    assert o311.status_of(state) == status


# -- personal data, cookies, CSRF, audit ----------------------------------------------------------
def test_personal_data_is_neither_kept_nor_echoed(world):
    personal = {"email": "zhang.san@example.org", "first_name": "晓梅", "last_name": "欧阳",
                "phone": "13987654321", "account_id": "wx-openid-42", "device_id": "IMEI-77"}
    lon, lat = point_in(GRID_WEST)
    response = world.post(service_code="E0102", lat=lat, long=lon,
                          description=f"请联系我{PHONE}", **personal,
                          **{"attribute[severity]": "minor"})
    number = json_of(response)[0]["service_request_id"]
    answers = response.get_data(as_text=True) + world.get(f"requests/{number}.json").get_data(
        as_text=True) + world.get(f"requests/{number}.xml").get_data(as_text=True)
    assert MASKED_PHONE in answers and PHONE not in answers
    case = world.case(number)
    with world.engine.connect() as conn:
        stored = " ".join(str(v) for v in conn.execute(text(
            """SELECT i.*, e.note, e.details, e.photos FROM incident i
               JOIN case_event e ON e.case_id = :c
               WHERE i.id = :i"""), {"c": case["id"], "i": case["incident_id"]}).one())
        audit = conn.execute(text("SELECT details::text FROM audit_log")).scalars().all()
    for value in personal.values():
        assert value not in answers and value not in stored and value not in " ".join(audit)


def _signed_in(world: World, username: str):
    client = world.client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    assert client.post("/login", data={"username": username, "password": PASSWORD,
                                       "csrf_token": token}).status_code == 302
    return client


def test_a_session_cookie_is_never_honoured(world):
    client = _signed_in(world, "acceptor")  # a role that may file, but only through a key
    lon, lat = point_in(GRID_WEST)
    form = {"service_code": "E0102", "lat": lat, "long": lon, "attribute[severity]": "minor"}
    assert_error(client.post(f"{BASE}/requests.json", data=form), 403, "api_key is required")


def test_no_csrf_token_is_needed_and_the_audit_names_the_key_owner(world):
    client = _signed_in(world, "shift_leader")  # the cookie rides along, without a CSRF token
    lon, lat = point_in(GRID_WEST)
    response = client.post(f"{BASE}/requests.json", data={
        "api_key": world.keys["app"], "service_code": "E0102", "lat": lat, "long": lon,
        "attribute[severity]": "minor"})
    number = json_of(response)[0]["service_request_id"]
    with world.engine.connect() as conn:
        row = conn.execute(text(
            "SELECT username, action, status FROM audit_log WHERE target = :n"),
            {"n": number}).one()
    assert tuple(row) == ("app", "open311.create_request", 200)
    with world.engine.connect() as conn:
        actor = conn.execute(text(
            "SELECT actor_name, actor_role FROM case_event WHERE case_id = :c AND seq = 1"),
            {"c": world.case(number)["id"]}).one()
    assert tuple(actor) == ("app", "acceptor")


def test_cookie_writes_elsewhere_still_need_csrf(world):
    client = _signed_in(world, "acceptor")
    response = client.post("/api/incidents", json={"class_code": "E0102", "x": 120.3,
                                                   "y": 31.5})
    assert response.status_code == 400 and "CSRF" in response.json["error"]["message"]


# -- routing --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "status", "fmt"), [
    ("services.csv", 404, "xml"), ("nothing.json", 404, "json"), ("requests", 404, "xml"),
])
def test_unknown_resources_answer_in_the_error_format(world, path, status, fmt):
    response = world.get(path)
    assert response.headers["Content-Type"].startswith(
        "application/json" if fmt == "json" else "text/xml")
    assert_error(response, status)


def test_a_wrong_method_is_405(world):
    assert_error(world.client().post(f"{BASE}/services.json"), 405)
    assert_error(world.client().delete(f"{BASE}/requests.xml"), 405)
