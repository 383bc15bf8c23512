"""The OpenAPI 3.1 document of everything under ``/api``, as data, served at ``/api/openapi.json``.

It covers the map endpoints of :mod:`webmap.api` (public), the incident, case and indicator
endpoints of :mod:`webmap.api_cases`, the photo upload of :mod:`webmap.photos_views` and the
field pages' JSON of :mod:`webmap.mobile` (signed in). Response objects are closed
(``additionalProperties: false``) and list every field as required, so the contract tests
catch a field added to an answer but not to the document. Each operation carries ``x-roles``:
the roles that get past it (``public``: anyone); an admin passes every role check but takes no
workflow action, so it is left out where one follows. Enumerations (states, sources, actions,
indicators) come from ``gis``, so they cannot drift.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from flask import Blueprint, Response, jsonify

from gis.indicators import INDICATORS, LEVELS
from gis.models import LEVELS as UNIT_LEVELS
from gis.models import LOCATION_STATUSES, SOURCES
from gis.workflow import ROLES, STATES, TRANSITIONS

bp = Blueprint("openapi", __name__)

Schema = dict[str, Any]
PUBLIC: tuple[str, ...] = ()
JSON = "application/json"
GEOJSON = "application/geo+json"


# -- schema helpers -------------------------------------------------------------------------------
def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    if "$ref" in schema or "type" not in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    kind = schema["type"]
    return {**schema, "type": [*(kind if isinstance(kind, list) else [kind]), "null"],
            **({"enum": [*schema["enum"], None]} if "enum" in schema else {})}


def closed(properties: dict[str, Schema], optional: tuple[str, ...] = (),
           description: str | None = None) -> Schema:
    """An object with exactly these properties, all required but ``optional``."""
    schema: Schema = {"type": "object", "properties": properties,
                      "required": [name for name in properties if name not in optional],
                      "additionalProperties": False}
    if description:
        schema["description"] = description
    return schema


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


STRING, INTEGER, NUMBER, BOOLEAN = ({"type": t} for t in ("string", "integer", "number",
                                                          "boolean"))
TIME = {"type": "string", "format": "date-time"}
OPT_STRING, OPT_INTEGER, OPT_NUMBER, OPT_TIME = (nullable(s) for s in (STRING, INTEGER, NUMBER,
                                                                       TIME))
CLASS_CODE = {"type": "string", "pattern": "^[CE][0-9]{4}$"}
ROLE = {"type": "string", "enum": list(ROLES)}
STATE = {"type": "string", "enum": list(STATES)}


# -- schemas --------------------------------------------------------------------------------------
def _geometry_schemas() -> dict[str, Schema]:
    return {
        "Point": closed({"type": {"const": "Point"},
                         "coordinates": {**array(NUMBER), "minItems": 2, "maxItems": 2}},
                        description="GeoJSON Point: [lon, lat] in CGCS2000 (≈ WGS84)"),
        "Geometry": {"type": "object", "required": ["type", "coordinates"],
                     "properties": {"type": {"enum": ["Polygon", "MultiPolygon"]},
                                    "coordinates": {"type": "array"}},
                     "description": "A GeoJSON Polygon or MultiPolygon (lon/lat, CGCS2000)"},
        "Error": closed({"error": closed({"status": INTEGER, "message": STRING})},
                        description="Every error: the HTTP status and a message; a bad "
                                    "parameter or field is named first (`limit: …`)."),
    }


def _map_schemas() -> dict[str, Schema]:
    unit_properties = closed({
        "code": STRING, "name": STRING, "level": {"enum": list(UNIT_LEVELS)},
        "parent_code": OPT_STRING, "area_m2": OPT_NUMBER, "grid_type": OPT_STRING,
        "dedicated_kind": OPT_STRING})
    unit_feature = {"type": {"const": "Feature"}, "id": STRING, "properties": unit_properties,
                    "geometry": ref("Geometry")}
    return {
        "PointLookup": closed({
            "lon": NUMBER, "lat": NUMBER, "inside": BOOLEAN, "generation": INTEGER,
            "units": array(closed({"level": STRING, "code": STRING, "name": STRING}))},
            description="The units covering a point, district first or grid first as "
                        "looked up (MapIt style)."),
        "UnitFeature": closed(unit_feature),
        "Unit": closed({**unit_feature, "generation": INTEGER}),
        "UnitCollection": closed({"type": {"const": "FeatureCollection"},
                                  "generation": INTEGER, "features": array(ref("UnitFeature"))}),
        "Generations": closed({"generations": array(closed({
            "id": INTEGER, "name": STRING, "source": STRING, "active": BOOLEAN,
            "created_at": TIME, "activated_at": OPT_TIME, "retired_at": OPT_TIME,
            "counts": {"type": "object", "additionalProperties": INTEGER}}))}),
    }


def _incident_properties() -> dict[str, Schema]:
    return {
        "id": INTEGER, "reported_at": TIME, "source": {"enum": list(SOURCES)},
        "class_code": CLASS_CODE, "class_name": OPT_STRING,
        "description": {"type": "string", "description": "phone numbers masked"},
        "location_status": {"enum": [*LOCATION_STATUSES, None]},
        "generation_id": OPT_INTEGER, "grid_code": OPT_STRING, "community_code": OPT_STRING,
        "street_code": OPT_STRING,
        "case": nullable(closed({"id": INTEGER, "number": STRING, "state": STATE})),
    }


def _case_properties() -> dict[str, Schema]:
    department = nullable(closed({"id": INTEGER, "name": OPT_STRING}))
    times = ("reported_at", "accepted_at", "filed_at", "dispatched_at", "handled_at",
             "verified_at", "closed_at", "evaluated_at", "node_due_at", "handle_due_at",
             "due_at")
    return {
        "id": INTEGER, "number": STRING, "state": STATE, "class_code": CLASS_CODE,
        "class_name": OPT_STRING, "area_class": {"enum": ["A", "B", "C"]},
        "grid_code": OPT_STRING, "community_code": OPT_STRING, "street_code": OPT_STRING,
        "department": department, "handler": department, "duplicate_of_id": OPT_INTEGER,
        **{name: TIME if name == "reported_at" else OPT_TIME for name in times},
        "overdue": {"type": "boolean", "description": "open past its node deadline now"},
        "rework_count": INTEGER, "return_count": INTEGER, "extension_count": INTEGER,
        "extension_pending": BOOLEAN, "supervised": BOOLEAN, "evaluation_score": OPT_NUMBER,
        "version": INTEGER,
        "incident": closed({"id": INTEGER, "reported_at": TIME, "description": STRING}),
    }


def _page(item: str, feature: str) -> dict[str, Schema]:
    meta = {"total": INTEGER, "limit": INTEGER, "offset": INTEGER,
            "next": {**OPT_STRING, "description": "the next page's URL, null on the last"}}
    return {f"{item}Page": closed({**meta, "items": array(ref(item))}),
            f"{item}Collection": closed({"type": {"const": "FeatureCollection"}, **meta,
                                         "features": array(ref(feature))})}


def _feature(properties: dict[str, Schema], id_schema: Schema) -> Schema:
    return closed({"type": {"const": "Feature"}, "id": id_schema,
                   "geometry": nullable(ref("Point")), "properties": closed(properties)})


def _case_schemas() -> dict[str, Schema]:
    incident = _incident_properties()
    case = _case_properties()
    event = closed({
        "seq": INTEGER, "action": STRING, "from_state": nullable(STATE), "to_state": STATE,
        "actor": closed({"role": ROLE, "name": {
            **OPT_STRING, "description": "full, masked (张*) or null, by the reader's role"}}),
        "at": TIME, "location": nullable(ref("Point")), "note": STRING,
        "photos": array({"type": "object"}), "details": {"type": "object"},
        "node_due_at": OPT_TIME, "overdue": BOOLEAN})
    copy = closed({"department": closed({"id": INTEGER, "name": OPT_STRING}),
                   "at": TIME, "reason": STRING})
    return {
        "Incident": closed({**incident, "location": nullable(ref("Point"))}),
        "IncidentFeature": _feature(incident, INTEGER),
        **_page("Incident", "IncidentFeature"),
        "Case": closed({**case, "location": nullable(ref("Point"))}),
        "CaseFeature": _feature(case, INTEGER),
        **_page("Case", "CaseFeature"),
        "CaseEvent": event,
        "CaseCopy": copy,
        "CaseDetail": closed({**case, "location": nullable(ref("Point")),
                              "events": array(ref("CaseEvent")),
                              "copies": array(ref("CaseCopy"))}),
        "CaseActions": closed({"case_id": INTEGER, "state": STATE, "version": INTEGER,
                               "actions": array(closed({
                                   "action": {"enum": list(TRANSITIONS)},
                                   "needs_note": BOOLEAN, "to_state": nullable(STATE)}))}),
    }


def _request_schemas() -> dict[str, Schema]:
    photo_ids = {**array({"type": "integer", "minimum": 1}), "maxItems": 20,
                 "description": "ids of photos uploaded before"}
    report = closed({
        "class_code": CLASS_CODE, "x": NUMBER, "y": NUMBER,
        "crs": {"type": "string", "default": "wgs84",
                "description": "wgs84, cgcs2000, gcj02, bd09 or EPSG:n"},
        "reported_at": {**TIME, "description": "default: now"},
        "description": {"type": "string", "maxLength": 2000},
        "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 100,
                            "description": "a retry with the same key returns the first "
                                           "report (200, Idempotent-Replayed: true)"},
        "photo_ids": photo_ids}, optional=("crs", "reported_at", "description",
                                           "idempotency_key", "photo_ids"))
    details = closed({"duplicate_of": INTEGER, "department_id": INTEGER, "handler_id": INTEGER,
                      "score": {"type": "number", "minimum": 0, "maximum": 100},
                      "work_hours": {"type": "number", "exclusiveMinimum": 0, "maximum": 480},
                      "reason": STRING},
                     optional=("duplicate_of", "department_id", "handler_id", "score",
                               "work_hours", "reason"),
                     description="what some actions need: mark_duplicate duplicate_of, "
                                 "dispatch department_id/handler_id (optional), copy_to "
                                 "department_id and reason, evaluate score, "
                                 "request_extension work_hours")
    transition = closed({
        "action": {"enum": list(TRANSITIONS)},
        "note": {"type": "string", "maxLength": 2000,
                 "description": "required by reject, void, decline_filing, return, feedback, "
                                "verify_fail, suspend, request_extension, refuse_extension, "
                                "supervise"},
        "photo_ids": photo_ids, "location": ref("Point"), "details": details},
        optional=("note", "photo_ids", "location", "details"))
    duplicate = closed({"case_id": INTEGER, "number": STRING, "state": STATE,
                        "distance_m": NUMBER})
    return {
        "ReportRequest": report,
        "ReportResult": closed({"incident": ref("Incident"),
                                "case": nullable(ref("CaseDetail")),
                                "possible_duplicates": array(duplicate)}),
        "TransitionRequest": transition,
    }


def _figure_schemas() -> dict[str, Schema]:
    value = {"type": ["number", "integer", "boolean", "null"]}
    return {
        "CaseSummary": closed({
            "period": STRING, "total": INTEGER,
            "by_state": {"type": "object", "additionalProperties": INTEGER},
            "by_department": array(closed({"department": STRING, "cases": INTEGER,
                                           "closed": INTEGER, "overdue": INTEGER,
                                           "reworked": INTEGER})),
            "overdue_open": INTEGER, "closed_late": INTEGER, "reworked": INTEGER,
            "returned": INTEGER}),
        "IndicatorTable": closed({
            "level": {"enum": list(LEVELS)}, "period": STRING, "compare": OPT_STRING,
            "indicators": array({"enum": list(INDICATORS)}),
            "columns": {**array(STRING),
                        "description": "the keys of each unit's values: the indicators, or "
                                       "<indicator>_before/_after/_change with compare"},
            "pass_rate": {**OPT_NUMBER, "description": "passing units / units (the period)"},
            "units": array(closed({"code": STRING, "name": OPT_STRING,
                                   "parent_code": OPT_STRING,
                                   "values": {"type": "object",
                                              "additionalProperties": value}}))}),
    }


def _field_schemas() -> dict[str, Schema]:
    """The field pages' JSON (webmap/mobile.py) and photo uploads (webmap/photos_views.py)."""
    unit = nullable(closed({"code": STRING, "name": STRING}))
    case = {"id": INTEGER, "number": STRING, "state": STATE, "state_label": STRING}
    location = {"lon": NUMBER, "lat": NUMBER,
                "crs": {"enum": ["wgs84", "cgcs2000"], "default": "wgs84"}}
    photo_ids = {**array(INTEGER), "maxItems": 6, "description": "your uploaded photos"}
    return {
        "Photo": closed({"id": INTEGER, "url": STRING, "width": INTEGER, "height": INTEGER,
                         "bytes": INTEGER}),
        "CsrfToken": closed({"token": STRING}),
        "MobileReportRequest": closed({
            "idempotency_key": {"type": "string", "maxLength": 100}, "class_code": STRING,
            "description": {"type": "string", "maxLength": 2000}, **location,
            "photo_ids": photo_ids, "reported_at": {**TIME, "description": "within 30 days"}},
            optional=("description", "crs", "photo_ids", "reported_at")),
        "MobileReportResult": closed({
            "replayed": BOOLEAN,
            "incident": closed({"id": INTEGER, "location_status": STRING, "grid": unit,
                                "community": unit, "street": unit}),
            "case": nullable(closed({**case, "url": STRING})),
            "possible_duplicates": array(closed({
                "case_id": INTEGER, "number": STRING, "state": STATE, "distance_m": NUMBER,
                "url": STRING}))}),
        "MobileVerifyRequest": closed({
            "result": {"enum": ["pass", "fail"]}, "note": STRING, **location,
            "photo_ids": photo_ids}, optional=("note", "lon", "lat", "crs", "photo_ids")),
        "MobileVerifyResult": closed({"case": closed(case)}),
    }


def schemas() -> dict[str, Schema]:
    return {**_geometry_schemas(), **_map_schemas(), **_case_schemas(), **_request_schemas(),
            **_figure_schemas(), **_field_schemas()}


# -- parameters and responses ---------------------------------------------------------------------
def query(name: str, schema: Schema, description: str, required: bool = False) -> Schema:
    return {"name": name, "in": "query", "required": required, "schema": schema,
            "description": description}


def path(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": schema,
            "description": description}


def param(name: str) -> Schema:
    return {"$ref": f"#/components/parameters/{name}"}


PARAMETERS: dict[str, Schema] = {
    "generation": query("generation", INTEGER, "a generation id; default the active one"),
    "limit": query("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
                   "page size"),
    "offset": query("offset", {"type": "integer", "minimum": 0, "default": 0},
                    "rows to skip (follow `next` instead of counting)"),
    "format": query("format", {"enum": ["json", "geojson"], "default": "json"},
                    "geojson: a FeatureCollection (application/geo+json)"),
    "period": query("period", STRING, "2019, 2019Q2, 2019-05 or 2019-01-01..2019-03-31 "
                                      "(Asia/Shanghai), on reported_at"),
    "unit": query("unit", {"type": "string", "pattern": "^[0-9]{6,15}$"},
                  "a unit code of any level: prefix match on the grid code"),
    "class": query("class", {"type": "string", "pattern": "^[CE]([0-9]{2}){0,2}$"},
                   "class code or prefix (E, E01, E0102)"),
    "incident_id": path("incident_id", INTEGER, "incident id"),
    "case_id": path("case_id", INTEGER, "case id"),
}

ERRORS = {400: "bad parameter, field or value", 401: "not signed in",
          403: "the role or scope does not allow it", 404: "no such resource (in your scope)",
          409: "the case is not in a state for this action",
          413: "the upload is too large",
          507: "the photo store is full; nothing was stored",
          503: "no active generation, or the database is unreachable"}


def body(schema: str, media: str = JSON) -> Schema:
    return {"content": {media: {"schema": ref(schema)}}}


def responses(ok: dict[int, Schema], *errors: int) -> dict[str, Schema]:
    """The answers of an operation; every one may meet a database outage (503)."""
    out = {str(status): spec for status, spec in ok.items()}
    for status in sorted({*errors, 503}):
        out[str(status)] = {"$ref": f"#/components/responses/E{status}"}
    return out


def ok(schema: str, description: str, geojson: str | None = None) -> Schema:
    content = body(schema)["content"]
    if geojson:
        content[GEOJSON] = {"schema": ref(geojson)}
    return {"description": description, "content": content}


# -- operations -----------------------------------------------------------------------------------
def operation(operation_id: str, summary: str, tag: str, roles: tuple[str, ...],
              response_map: dict[str, Schema], parameters: list[Schema] | None = None,
              request: str | None = None, write: bool = False,
              request_body: Schema | None = None) -> Schema:
    spec: Schema = {"operationId": operation_id, "summary": summary, "tags": [tag],
                    "x-roles": list(roles) if roles else "public",
                    "parameters": parameters or [], "responses": response_map}
    if request:
        spec["requestBody"] = {"required": True, **body(request)}
    if request_body:
        spec["requestBody"] = request_body
    if not roles:
        spec["security"] = []
    elif write:
        spec["security"] = [{"bearerAuth": []}, {"sessionCookie": [], "csrfToken": []}]
    return spec


def _map_paths() -> dict[str, Schema]:
    return {
        "/api/point/{srid}/{coords}": {"get": operation(
            "lookupPoint", "The units covering a point", "map", PUBLIC, responses(
                {200: ok("PointLookup", "the units, grid to district")}, 400, 404, 503),
            [path("srid", STRING, "4326, 4490, 4549, wgs84, cgcs2000, gcj02 or bd09"),
             path("coords", STRING, "x,y"), param("generation")])},
        "/api/units": {"get": operation(
            "listUnits", "The units of a level as GeoJSON", "map", PUBLIC, responses(
                {200: {"description": "units", "content": {
                    GEOJSON: {"schema": ref("UnitCollection")}}}}, 400, 404, 503),
            [query("level", {"enum": list(UNIT_LEVELS)}, "one level; default all"),
             param("generation")])},
        "/api/units/{code}": {"get": operation(
            "getUnit", "One unit by code as a GeoJSON Feature", "map", PUBLIC, responses(
                {200: {"description": "the unit", "content": {
                    GEOJSON: {"schema": ref("Unit")}}}}, 400, 404, 503),
            [path("code", STRING, "unit code"), param("generation")])},
        "/api/generations": {"get": operation(
            "listGenerations", "Boundary generations", "map", PUBLIC,
            responses({200: ok("Generations", "every generation")}, 503))},
        "/api/openapi.json": {"get": operation(
            "getOpenApi", "This document", "meta", PUBLIC,
            {"200": {"description": "the OpenAPI 3.1 document",
                     "content": {JSON: {"schema": {"type": "object"}}}}})},
    }


def _case_paths(roles: dict[str, tuple[str, ...]]) -> dict[str, Schema]:
    page = [param("limit"), param("offset"), param("format")]
    return {
        "/api/incidents": {
            "post": operation(
                "reportIncident", "Report an incident and open its case", "incidents",
                roles["report"], responses({
                    201: {**ok("ReportResult", "stored; the case is null outside the grids"),
                          "headers": {"Location": {"schema": STRING}}},
                    200: {**ok("ReportResult", "a replay of an earlier report (same key)"),
                          "headers": {"Idempotent-Replayed": {"schema": {"const": "true"}}}}},
                    400, 401, 403), request="ReportRequest", write=True),
            "get": operation(
                "listIncidents", "Incidents in your scope, newest first", "incidents",
                roles["read"], responses({200: ok("IncidentPage", "a page",
                                                  "IncidentCollection")}, 400, 401),
                [param("class"), query("status", {"enum": list(LOCATION_STATUSES)},
                                       "location status"),
                 query("source", {"enum": list(SOURCES)}, "reporting channel"),
                 param("period"), param("unit"),
                 query("bbox", STRING, "min_lon,min_lat,max_lon,max_lat (CGCS2000)"), *page])},
        "/api/incidents/{incident_id}": {"get": operation(
            "getIncident", "One incident", "incidents", roles["read"],
            responses({200: ok("Incident", "the incident")}, 400, 401, 404),
            [param("incident_id")])},
        "/api/cases": {"get": operation(
            "listCases", "Cases in your scope", "cases", roles["read"],
            responses({200: ok("CasePage", "a page", "CaseCollection")}, 400, 401),
            [query("state", STRING, "states, comma-separated: " + ", ".join(STATES)),
             param("class"), query("department", {"type": "integer", "minimum": 1},
                                   "responsible or handling department id"),
             param("unit"), param("period"),
             query("overdue", {"enum": ["true", "false"]}, "open past the node deadline"),
             query("sort", {"enum": ["reported_at", "-reported_at", "node_due_at",
                                     "-node_due_at"], "default": "-reported_at"},
                   "order; '-' for descending"), *page])},
        "/api/cases/summary": {"get": operation(
            "summariseCases", "Counts of the period's cases", "cases", roles["district"],
            responses({200: ok("CaseSummary", "the summary")}, 400, 401, 403),
            [query("period", STRING, "the period (required)", required=True)])},
        "/api/cases/{case_id}": {"get": operation(
            "getCase", "One case with its trail", "cases", roles["read"],
            responses({200: ok("CaseDetail", "the case")}, 400, 401, 404),
            [param("case_id")])},
        "/api/cases/{case_id}/actions": {"get": operation(
            "listCaseActions", "What you may do with the case now", "cases", roles["read"],
            responses({200: ok("CaseActions", "the actions")}, 400, 401, 404),
            [param("case_id")])},
        "/api/cases/{case_id}/transitions": {"post": operation(
            "transitionCase", "Apply a workflow action", "cases", roles["act"],
            responses({200: ok("CaseDetail", "the case after the action")},
                      400, 401, 403, 404, 409),
            [param("case_id")], request="TransitionRequest", write=True)},
        "/api/indicators": {"get": operation(
            "getIndicators", "Indicators per unit", "indicators", roles["district"],
            responses({200: ok("IndicatorTable", "one row per unit")}, 400, 401, 403, 503),
            [query("level", {"enum": list(LEVELS), "default": "street"}, "unit level"),
             query("period", STRING, "the period (required)", required=True),
             query("compare", STRING, "a period to compare with (before → period)"),
             query("indicator", STRING, "indicators, comma-separated: "
                   + ", ".join(INDICATORS))])},
    }


def _field_paths(roles: dict[str, tuple[str, ...]]) -> dict[str, Schema]:
    return {
        "/api/photos": {"post": operation(
            "uploadPhoto", "Upload one photo (JPEG, PNG or WebP; cleaned and downscaled)",
            "photos", roles["read"], responses({201: ok("Photo", "stored")}, 400, 401, 413, 507),
            request_body={"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["photo"], "properties": {
                    "photo": {"type": "string", "contentMediaType": "image/*"}}}}}},
            write=True)},
        "/api/mobile/csrf": {"get": operation(
            "getMobileCsrf", "A fresh CSRF token for the field pages", "field",
            roles["field"], responses({200: ok("CsrfToken", "the token")}, 401, 403))},
        "/api/mobile/reports": {"post": operation(
            "submitMobileReport", "A report from the field pages", "field", roles["field"],
            responses({201: ok("MobileReportResult", "stored"),
                       200: ok("MobileReportResult", "a replay (same key)")},
                      400, 401, 403, 409), request="MobileReportRequest", write=True)},
        "/api/mobile/cases/{case_id}/verify": {"post": operation(
            "verifyOnSite", "On-site verification: pass or fail (rework)", "field",
            roles["field_act"], responses({200: ok("MobileVerifyResult", "the case after it")},
                                      400, 401, 403, 404, 409),
            [param("case_id")], request="MobileVerifyRequest", write=True)},
    }


def _roles() -> dict[str, tuple[str, ...]]:
    """Who gets past each endpoint: admin passes every role check but never acts in the
    workflow, so it is listed where no workflow action follows."""
    from webmap import api_cases, mobile

    return {"report": api_cases.REPORTING_ROLES, "read": api_cases.READING_ROLES,
            "act": api_cases.ACTING_ROLES, "district": api_cases.DISTRICT_ROLES,
            "field": (*mobile.MOBILE_ROLES, "admin"), "field_act": mobile.MOBILE_ROLES}


@cache
def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document."""
    roles = _roles()
    return {
        "openapi": "3.1.0",
        "info": {"title": "gridgov API", "version": "1.0.0",
                 "description": "Grid governance for Liangxi District, Wuxi: map units, "
                                "incidents, cases and their workflow, indicators. Errors are "
                                "`{\"error\": {\"status\", \"message\"}}`."},
        "tags": [{"name": name} for name in ("map", "incidents", "cases", "indicators",
                                                  "photos", "field", "meta")],
        "paths": {**_map_paths(), **_case_paths(roles), **_field_paths(roles)},
        "components": {
            "schemas": schemas(),
            "parameters": PARAMETERS,
            "responses": {f"E{status}": {"description": text, "content": {
                JSON: {"schema": ref("Error")}}} for status, text in ERRORS.items()},
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer",
                               "description": "an API token (`gridgov users token`)"},
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "session",
                                  "description": "the session of a browser sign-in (/login)"},
                "csrfToken": {"type": "apiKey", "in": "header", "name": "X-CSRFToken",
                              "description": "with a session cookie, every write needs the "
                                             "CSRF token of the signed-in page"},
            },
        },
        "security": [{"bearerAuth": []}, {"sessionCookie": []}],
    }


@bp.get("/openapi.json")
def served() -> Response:
    """The OpenAPI document."""
    return jsonify(document())
