"""Who may call what: the role × endpoint matrix of every /api operation, scoping and CSRF.

:data:`MATRIX` is the specification: for each operation, the roles that get a 2xx answer
(``PUBLIC``: anyone, signed in or not). Every role is tried on every operation, signed in with
a session cookie and with a bearer token: allowed → 2xx, refused → 403; anonymous → 401 unless
public. Refusals come from the endpoint's role check or, for workflow actions, from the
workflow itself (an admin passes every role check but takes no part in the workflow). The
matrix must also agree with the ``x-roles`` the OpenAPI document states.
"""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest

from gis.workflow import ROLES
from tests.webmap.test_api_cases import (
    GRID_EAST,
    GRID_WEST,
    ApiWorld,
    build_world,
    png,
    point_in,
    report_body,
)
from tests.webmap.test_openapi_contract import HTTP_METHODS, served_contract

PUBLIC = "public"
ALL = frozenset(ROLES)
DISTRICT = frozenset({"admin", "acceptor", "shift_leader", "dispatcher", "supervisor",
                      "viewer"})
FIELD = frozenset({"grid_worker", "grid_leader", "supervisor"})
REPORTERS = frozenset({"admin", "acceptor", "shift_leader", "grid_leader", "grid_worker",
                       "supervisor"})
ACTORS = frozenset({"acceptor", "shift_leader", "dispatcher", "handler", "grid_leader",
                    "grid_worker", "supervisor"})

MATRIX: dict[tuple[str, str], frozenset[str] | str] = {
    ("get", "/api/point/{srid}/{coords}"): PUBLIC,
    ("get", "/api/units"): PUBLIC,
    ("get", "/api/units/{code}"): PUBLIC,
    ("get", "/api/generations"): PUBLIC,
    ("get", "/api/openapi.json"): PUBLIC,
    ("post", "/api/incidents"): REPORTERS,
    ("get", "/api/incidents"): ALL,
    ("get", "/api/incidents/{incident_id}"): ALL,
    ("get", "/api/cases"): ALL,
    ("get", "/api/cases/summary"): DISTRICT,
    ("get", "/api/cases/{case_id}"): ALL,
    ("get", "/api/cases/{case_id}/actions"): ALL,
    ("post", "/api/cases/{case_id}/transitions"): ACTORS,
    ("get", "/api/indicators"): DISTRICT,
    ("post", "/api/photos"): ALL,
    ("get", "/api/mobile/csrf"): FIELD | {"admin"},
    ("post", "/api/mobile/reports"): FIELD | {"admin"},
    ("post", "/api/mobile/cases/{case_id}/verify"): FIELD,
}

#: For the transition endpoint: the state a role's case is put in and the action it takes.
ROLE_ACTION = {"dispatcher": ("filed", "dispatch"), "handler": ("dispatched", "sign"),
               **{role: ("fed_back", "verify_pass") for role in FIELD}}
QUERIES = {"/api/cases/summary": "?period=2019-05", "/api/indicators": "?period=2019-05"}


@pytest.fixture(scope="module")
def api(database_factory, template_name, tmp_path_factory):
    url = database_factory.create("api_roles", template=template_name)
    yield build_world(url, tmp_path_factory.mktemp("uploads"))
    database_factory.drop(url)


def _case_for(api: ApiWorld, template: str, role: str | None) -> tuple[int, str]:
    """A case (and the action to try) for a role on an endpoint with a case in its path."""
    if template.endswith("/transitions"):
        state, action = ROLE_ACTION.get(role or "", ("reported", "accept"))
        return api.case_in(state), action
    if template.endswith("/verify"):
        return api.case_in("fed_back"), "verify_pass"
    return api.cases["A"], ""


def _request(api: ApiWorld, method: str, template: str, role: str | None
             ) -> tuple[str, dict[str, Any]]:
    """The concrete path and the request arguments for one cell of the matrix."""
    case_id, action = (_case_for(api, template, role) if "{case_id}" in template
                       else (0, ""))
    x, y = point_in(GRID_WEST)
    path = template.format(srid="4326", coords=f"{x},{y}", code=GRID_WEST, case_id=case_id,
                           incident_id=api.incidents["A"]) + QUERIES.get(template, "")
    if method == "get":
        return path, {}
    bodies: dict[str, dict[str, Any]] = {
        "/api/incidents": {"json": report_body()},
        "/api/cases/{case_id}/transitions": {"json": {"action": action}},
        "/api/photos": {"data": {"photo": (io.BytesIO(png()), "p.png")},
                        "content_type": "multipart/form-data"},
        "/api/mobile/reports": {"json": {"idempotency_key": uuid.uuid4().hex,
                                         "class_code": "E0102", "lon": x, "lat": y}},
        "/api/mobile/cases/{case_id}/verify": {"json": {"result": "pass"}},
    }
    return path, bodies[template]


def _call(api: ApiWorld, role: str | None, auth: str, method: str, template: str):
    path, kwargs = _request(api, method, template, role)
    session = api.session(role, auth)
    return session.get(path) if method == "get" else session.post(path, **kwargs)


# -- the matrix -----------------------------------------------------------------------------------
@pytest.mark.parametrize("auth", ["cookie", "bearer"])
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "template"), list(MATRIX))
def test_role_matrix(api, method, template, role, auth):
    allowed = MATRIX[(method, template)]
    response = _call(api, role, auth, method, template)
    if allowed == PUBLIC or role in allowed:
        assert 200 <= response.status_code < 300, response.get_data(as_text=True)
    else:
        assert response.status_code == 403, response.get_data(as_text=True)
        assert response.json["error"]["status"] == 403


@pytest.mark.parametrize(("method", "template"), list(MATRIX))
def test_anonymous_callers(api, method, template):
    response = _call(api, None, "cookie", method, template)
    expected = 200 if MATRIX[(method, template)] == PUBLIC else 401
    assert response.status_code == expected, response.get_data(as_text=True)


def test_the_matrix_covers_every_operation_and_agrees_with_the_document(api):
    document = served_contract(api.app).document
    operations = {(method, path): operation for path, item in document["paths"].items()
                  for method, operation in item.items() if method in HTTP_METHODS}
    assert set(operations) == set(MATRIX)
    for key, operation in operations.items():
        stated = operation["x-roles"]
        assert (stated if stated == PUBLIC else frozenset(stated)) == MATRIX[key], key


# -- scope ----------------------------------------------------------------------------------------
def _ids(response) -> set[int]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return {item["id"] for item in response.json["items"]}


@pytest.mark.parametrize(("username", "cases"), [
    ("grid_worker", {"A"}), ("grid_leader", {"A", "B"}), ("grid_worker_east", {"C", "D"}),
    ("handler", {"A"}), ("handler_east", {"D"}), ("viewer", {"A", "B", "C", "D"}),
])
def test_users_list_only_the_cases_and_incidents_in_their_scope(api, username, cases):
    session = api.session(username)
    assert _ids(session.get("/api/cases?period=2019-05")) == {api.cases[c] for c in cases}
    incidents = _ids(session.get("/api/incidents?period=2019-05"))
    assert incidents - {api.incidents["outside"]} == {api.incidents[c] for c in cases}
    assert session.get("/api/cases?period=2019-05").json["total"] == len(cases)


def test_only_unscoped_users_see_incidents_outside_every_grid(api):
    outside = api.incidents["outside"]
    assert outside in _ids(api.session("viewer").get("/api/incidents?period=2019-05"))
    for username in ("grid_worker", "grid_leader", "handler"):
        assert outside not in _ids(api.session(username).get("/api/incidents?period=2019-05"))
        assert api.session(username).get(f"/api/incidents/{outside}").status_code == 404


def test_a_grid_worker_can_neither_see_nor_act_on_another_grid(api):
    worker = api.session("grid_worker")
    east = api.case_in("fed_back", GRID_EAST)
    assert worker.get(f"/api/cases/{east}").status_code == 404
    assert worker.get(f"/api/cases/{east}/actions").status_code == 404
    assert worker.get(f"/api/incidents/{api.incident_of(east)}").status_code == 404
    refused = worker.post(f"/api/cases/{east}/transitions", {"action": "verify_pass"})
    assert refused.status_code in (403, 404)
    assert api.session("admin").get(f"/api/cases/{east}").json["state"] == "fed_back"
    assert worker.post("/api/incidents", report_body(GRID_EAST)).status_code == 403
    east_worker = api.session("grid_worker_east")
    allowed = east_worker.post(f"/api/cases/{east}/transitions", {"action": "verify_pass"})
    assert allowed.status_code == 200 and allowed.json["state"] == "verified"


def test_a_handler_acts_only_on_its_departments_cases(api):
    west = api.case_in("dispatched", GRID_WEST)
    east = api.case_in("dispatched", GRID_EAST)
    handler = api.session("handler")
    assert handler.get(f"/api/cases/{east}").status_code == 404
    assert handler.post(f"/api/cases/{east}/transitions", {"action": "sign"}).status_code in (
        403, 404)
    assert [a["action"] for a in handler.get(f"/api/cases/{west}/actions").json["actions"]
            ] == ["sign", "return", "request_extension"]
    assert handler.post(f"/api/cases/{west}/transitions", {"action": "sign"}).status_code == 200
    market = api.case_in("dispatched", GRID_WEST, "E0708")  # to the market bureau
    assert handler.get(f"/api/cases/{market}").status_code == 404


def test_a_handler_does_not_see_cases_before_dispatch(api):
    accepted = api.case_in("accepted", GRID_WEST)
    assert api.session("handler").get(f"/api/cases/{accepted}").status_code == 404


# -- CSRF -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "body"), [
    ("/api/incidents", report_body()),
    ("/api/cases/{case_id}/transitions", {"action": "accept"}),
])
def test_a_cookie_write_without_the_csrf_header_is_refused(api, path, body):
    session = api.session("shift_leader")
    target = path.format(case_id=api.case_in("reported"))
    response = session.post(target, body, csrf=False)
    assert response.status_code == 400 and "CSRF" in response.json["error"]["message"]
    wrong = session.client.post(target, json=body, headers={"X-CSRFToken": "forged"})
    assert wrong.status_code == 400
    assert session.post(target, body).status_code in (200, 201)


def test_a_bearer_token_needs_no_csrf_and_a_bad_token_is_401(api):
    token = api.session("acceptor", "bearer")
    assert token.post("/api/incidents", report_body(), csrf=False).status_code == 201
    forged = api.app.test_client().get("/api/cases",
                                       headers={"Authorization": "Bearer ggv_forged"})
    assert forged.status_code == 401 and forged.json["error"]["status"] == 401
