"""The OpenAPI document against the app: every /api route documented and nothing more, and every
answer the API tests get valid against the served document.

:class:`ContractClient` is the test client of the API tests (test_api_cases, test_api_roles and
this module): each response to an ``/api`` request is checked against ``/api/openapi.json`` as
the app serves it — the operation must exist, the status must be documented for it, the media
type must be one it lists, the body must validate against its schema (JSON Schema 2020-12,
formats checked) and documented headers must be present. Successful requests must also use only
documented query parameters and send bodies their request schema accepts.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import cache
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from openapi_spec_validator import validate as validate_spec
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from gis.boundaries import activate, create_generation
from tests.factories import lattice, small_hierarchy
from webmap import create_app

DOCUMENT_PATH = "/api/openapi.json"
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
BASE_URI = "urn:gridgov:openapi"
FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    """RFC 3339: an ISO 8601 time with its offset."""
    return not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is not None


# -- the checker ----------------------------------------------------------------------------------
def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


class Contract:
    """Checks requests and responses against one OpenAPI document."""

    def __init__(self, document: dict) -> None:
        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(BASE_URI, resource)
        self.templates = sorted(document["paths"], key=lambda p: (p.count("{"), p))

    def validate(self, instance: Any, pointer: str) -> None:
        """Validate against the schema at a JSON pointer of the document."""
        validator = Draft202012Validator({"$ref": f"{BASE_URI}#{pointer}"},
                                         registry=self.registry, format_checker=FORMATS)
        validator.validate(instance)

    def resolve(self, pointer: str) -> tuple[str, dict]:
        """The object at ``pointer``, following a ``$ref`` (and the pointer it leads to)."""
        node: Any = self.document
        for token in pointer.strip("/").split("/"):
            key = token.replace("~1", "/").replace("~0", "~")
            node = node[int(key)] if isinstance(node, list) else node[key]
        if "$ref" in node:
            return self.resolve(node["$ref"].removeprefix("#"))
        return pointer, node

    def operation(self, method: str, path: str) -> tuple[str, dict] | None:
        """The documented operation for a concrete path, most specific template first."""
        for template in self.templates:
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            if re.fullmatch(pattern, path):
                operation = self.document["paths"][template].get(method.lower())
                return (f"/paths/{_escape(template)}/{method.lower()}", operation
                        ) if operation else None
        return None

    def check(self, method: str, path: str, args: dict, sent: Any, response) -> None:
        found = self.operation(method, path)
        if found is None:
            assert response.status_code in (404, 405), f"{method} {path} is not documented"
            self.validate(response.get_json(), "/components/schemas/Error")
            return
        pointer, operation = found
        status = str(response.status_code)
        assert status in operation["responses"], f"{method} {path}: {status} not documented"
        response_pointer, spec = self.resolve(f"{pointer}/responses/{status}")
        content = spec.get("content", {})
        assert response.mimetype in content, (
            f"{method} {path} {status}: {response.mimetype} is not one of {list(content)}")
        self.validate(response.get_json(force=True),
                      f"{response_pointer}/content/{_escape(response.mimetype)}/schema")
        for header in spec.get("headers", {}):
            assert header in response.headers, f"{method} {path} {status}: no {header} header"
        if response.status_code < 300:
            self._check_request(pointer, operation, args, sent)

    def _check_request(self, pointer: str, operation: dict, args: dict, sent: Any) -> None:
        names = {self.resolve(f"{pointer}/parameters/{i}")[1]["name"]
                 for i in range(len(operation.get("parameters", [])))}
        assert set(args) <= names, f"undocumented parameters {set(args) - names}"
        if sent is not None and "requestBody" in operation:
            self.validate(sent, f"{pointer}/requestBody/content/application~1json/schema")


@cache
def _contract_for(document_text: str) -> Contract:
    import json

    return Contract(json.loads(document_text))


def served_contract(app: Flask) -> Contract:
    """The contract of the document the app serves (fetched without checking itself)."""
    response = FlaskClient(app, app.response_class).get(DOCUMENT_PATH)
    assert response.status_code == 200
    return _contract_for(response.get_data(as_text=True))


class ContractClient(FlaskClient):
    """A test client checking every /api answer against the served OpenAPI document."""

    def open(self, *args: Any, **kwargs: Any):
        response = super().open(*args, **kwargs)
        request = response.request
        if request.path.startswith("/api/"):
            served_contract(self.application).check(
                request.method, request.path, request.args.to_dict(), kwargs.get("json"),
                response)
        return response


# -- the document and the app agree ---------------------------------------------------------------
@pytest.fixture(scope="module")
def small_url(database_factory, template_name):
    from gis.database import get_engine

    url = database_factory.create("openapi", template=template_name)
    engine = get_engine(url)
    activate(engine, create_generation(engine, small_hierarchy(), name="small"))
    yield url
    database_factory.drop(url)


@pytest.fixture(scope="module")
def app(small_url):
    app = create_app({"DATABASE_URL": small_url, "SECRET_KEY": "test", "TESTING": True})
    app.test_client_class = ContractClient
    return app


def _app_routes(app: Flask) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            template = re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule.rule)
            routes |= {(template, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    return routes


def _document_routes(document: dict) -> set[tuple[str, str]]:
    return {(path, method) for path, item in document["paths"].items()
            for method in item if method in HTTP_METHODS}


def test_the_document_is_valid_openapi_3_1(app):
    document = app.test_client().get(DOCUMENT_PATH).get_json()
    assert document["openapi"].startswith("3.1")
    validate_spec(document)


def test_every_api_route_is_documented_and_nothing_else(app):
    document = app.test_client().get(DOCUMENT_PATH).get_json()
    in_app, in_document = _app_routes(app), _document_routes(document)
    assert in_app - in_document == set(), "routes missing from the document"
    assert in_document - in_app == set(), "documented operations the app does not have"


def test_path_parameters_match_the_templates(app):
    contract = served_contract(app)
    for template, item in contract.document["paths"].items():
        for method in (m for m in item if m in HTTP_METHODS):
            pointer = f"/paths/{_escape(template)}/{method}/parameters"
            parameters = [contract.resolve(f"{pointer}/{i}")[1]
                          for i in range(len(item[method].get("parameters", [])))]
            in_path = {p["name"] for p in parameters if p["in"] == "path"}
            assert in_path == set(re.findall(r"{([^}]+)}", template)), (template, method)


def test_operations_state_roles_and_security(app):
    document = served_contract(app).document
    schemes = set(document["components"]["securitySchemes"])
    assert schemes == {"bearerAuth", "sessionCookie", "csrfToken"}
    for template, item in document["paths"].items():
        for method, operation in ((m, o) for m, o in item.items() if m in HTTP_METHODS):
            roles = operation["x-roles"]
            public = roles == "public"
            assert public == (operation.get("security") == []), (template, method)
            if not public:
                assert "401" in operation["responses"], (template, method)
            if method == "post" and not public:
                assert {"sessionCookie": [], "csrfToken": []} in operation["security"]


def test_the_checker_catches_a_response_that_breaks_the_schema(app):
    contract = served_contract(app)
    response = app.response_class(
        '{"generations": [], "extra": 1}', mimetype="application/json")
    with pytest.raises(ValidationError):
        contract.check("GET", "/api/generations", {}, None, response)
    wrong_status = app.response_class('{"generations": []}', status=418,
                                      mimetype="application/json")
    with pytest.raises(AssertionError, match="418"):
        contract.check("GET", "/api/generations", {}, None, wrong_status)


# -- the map endpoints of webmap.api, answered through the contract -------------------------------
INSIDE = (lattice(0, 3)[0] + 0.001, lattice(0, 3)[1] + 0.001)


@pytest.mark.parametrize("path", [
    f"/api/point/4326/{INSIDE[0]},{INSIDE[1]}",
    "/api/point/4326/0.5,0.5",
    "/api/point/gcj02/120.30,31.57?generation=1",
    "/api/units",
    "/api/units?level=street",
    "/api/units/320213001001001",
    "/api/generations",
    DOCUMENT_PATH,
])
def test_map_endpoints_answer_as_documented(app, path):
    assert app.test_client().get(path).status_code == 200


@pytest.mark.parametrize(("path", "status"), [
    ("/api/point/9999/1,2", 400),
    ("/api/point/4326/abc", 400),
    ("/api/units?level=planet", 400),
    ("/api/units?generation=x", 400),
    ("/api/units?generation=999", 404),
    ("/api/units/000", 404),
    ("/api/nowhere", 404),
])
def test_map_errors_answer_as_documented(app, path, status):
    response = app.test_client().get(path)
    assert response.status_code == status and response.json["error"]["status"] == status


def test_a_wrong_method_is_a_json_405(app):
    response = app.test_client().delete("/api/generations")
    assert response.status_code == 405 and response.json["error"]["status"] == 405
