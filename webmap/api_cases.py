"""The REST API for incidents, cases and indicators, under ``/api`` beside :mod:`webmap.api`.

Every endpoint needs a signed-in user (session cookie, with ``X-CSRFToken`` on writes) or a
bearer token. The rules are in ``gis``: who may report (:mod:`gis.reporting`), which action a
role may take in which state and on which case (:mod:`gis.workflow`), whose grids a user works
in and which cases it may see (:meth:`gis.accounts.User.case_scope`), and the reads themselves
(:mod:`gis.case_queries`); this module maps HTTP to those calls and back. What a user sees
follows the same scope as what it may do: grid staff their grids' incidents and cases, handlers
the cases routed to their department (and their incidents), everyone else the whole district;
district-wide figures (indicators, case summary) are for the roles without such a scope.

Errors use the format of :mod:`webmap.api`: ``{"error": {"status": 400, "message": "…"}}``;
an unknown parameter or field, or a bad value, is a 400 whose message starts with its name.
Lists are paged with ``limit`` (at most 500) and ``offset``, answer the ``total`` and a ``next``
link, and come as GeoJSON with ``format=geojson``. The OpenAPI document is
:mod:`webmap.openapi`, served at ``/api/openapi.json``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from flask import Blueprint, Response, current_app, g, jsonify, request, url_for
from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from gis import case_queries, photos
from gis.accounts import DEPARTMENT_ROLES, GRID_ROLES, User
from gis.case_queries import CaseQuery, IncidentQuery, RowPage
from gis.case_summary import summarise_cases
from gis.command_centre import case_trail
from gis.crs import normalise_crs
from gis.incidents import IncidentError
from gis.indicators import INDICATORS, LEVELS, compare_periods, pass_rate, unit_indicators
from gis.models import LOCATION_STATUSES, SOURCES
from gis.periods import Period, parse_period
from gis.reporting import ReportResult, submit_report
from gis.workflow import ROLES, STATES, TRANSITIONS, Workflow, WorkflowError, allowed_actions
from webmap import current_store, openapi, serializers
from webmap.api import GEOJSON, ApiError, error_response
from webmap.auth import roles_required, user

bp = Blueprint("api_cases", __name__, url_prefix="/api")
bp.register_blueprint(openapi.bp)

#: Who may report, and the source each role's reports are stored under (tokens: ``api``).
REPORT_SOURCES = {"grid_worker": "grid_worker", "grid_leader": "grid_worker",
                  "supervisor": "grid_worker", "acceptor": "hotline", "shift_leader": "hotline",
                  "admin": "api"}
REPORTING_ROLES = tuple(REPORT_SOURCES)
#: Roles that take part in the workflow (whether an action is allowed is the workflow's call).
ACTING_ROLES = tuple(role for role in ROLES
                     if any(role in t.roles for t in TRANSITIONS.values()))
READING_ROLES = ROLES
#: Roles without a grid or department scope: they may read district-wide figures.
DISTRICT_ROLES = tuple(role for role in ROLES
                       if role not in GRID_ROLES and role not in DEPARTMENT_ROLES)

MAX_LIMIT, DEFAULT_LIMIT = 500, 50
PAGE_ARGS = ("limit", "offset", "format")
CASE_SORTS = case_queries.CASE_SORTS
DETAIL_TYPES: dict[str, tuple[type, ...]] = {
    "duplicate_of": (int,), "department_id": (int,), "handler_id": (int,),
    "score": (int, float), "work_hours": (int, float), "reason": (str,)}
UNIT_CODE = re.compile(r"\d{6,15}")
CLASS_PREFIX = re.compile(r"[CE](\d{2}){0,2}")
WORKFLOW = "gridgov.workflow"


def _fail(status: int, message: str) -> NoReturn:
    raise ApiError(status, message)


def _now() -> datetime:
    return datetime.now(UTC)


def _me() -> User:
    me = user()
    assert me is not None  # every view is behind roles_required
    return me


def _engine():
    return current_store().engine


def _workflow(conn: Connection) -> Workflow:
    """The app's workflow (calendar and deadline book), loaded on first use."""
    workflow = current_app.extensions.get(WORKFLOW)
    if workflow is None:
        workflow = current_app.extensions[WORKFLOW] = Workflow.load(conn)
    return workflow


# -- query-string parameters ----------------------------------------------------------------------
class Args:
    """The query string, checked: unknown or repeated parameters and bad values are 400s."""

    def __init__(self, allowed: Iterable[str]) -> None:
        allowed = tuple(allowed)
        for name in request.args:
            if name not in allowed:
                _fail(400, f"{name}: unknown parameter (use {', '.join(allowed) or 'none'})")
            if len(request.args.getlist(name)) > 1:
                _fail(400, f"{name}: given more than once")

    @staticmethod
    def text(name: str) -> str | None:
        value = request.args.get(name, "").strip()
        return value or None

    def choice(self, name: str, choices: Iterable[str], default: str | None = None
               ) -> str | None:
        value, choices = self.text(name), tuple(choices)
        if value is not None and value not in choices:
            _fail(400, f"{name}: {value!r} is not one of {', '.join(choices)}")
        return value or default

    def choices(self, name: str, choices: Iterable[str]) -> list[str] | None:
        """A comma-separated list of choices."""
        value, choices = self.text(name), tuple(choices)
        if value is None:
            return None
        values = [part.strip() for part in value.split(",")]
        for part in values:
            if part not in choices:
                _fail(400, f"{name}: {part!r} is not one of {', '.join(choices)}")
        return values

    def integer(self, name: str, low: int, high: int | None = None,
                default: int | None = None) -> int | None:
        value = self.text(name)
        if value is None:
            return default
        bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
        if not re.fullmatch(r"-?\d{1,18}", value) or int(value) < low or (
                high is not None and int(value) > high):
            _fail(400, f"{name}: must be a whole number {bounds}, not {value!r}")
        return int(value)

    def boolean(self, name: str) -> bool | None:
        value = self.text(name)
        if value is None:
            return None
        if value.lower() not in ("true", "false", "1", "0"):
            _fail(400, f"{name}: must be true or false, not {value!r}")
        return value.lower() in ("true", "1")

    def period(self, name: str, required: bool = False) -> Period | None:
        value = self.text(name)
        if value is None:
            if required:
                _fail(400, f"{name}: required (e.g. 2019, 2019Q2, 2019-05)")
            return None
        try:
            return parse_period(value)
        except ValueError as exc:
            _fail(400, f"{name}: {exc}")

    def pattern(self, name: str, pattern: re.Pattern, meaning: str) -> str | None:
        value = self.text(name)
        if value is not None and not pattern.fullmatch(value):
            _fail(400, f"{name}: {value!r} is not {meaning}")
        return value

    def bbox(self, name: str) -> tuple[float, float, float, float] | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            box = tuple(float(part) for part in value.split(","))
        except ValueError:
            box = ()
        if len(box) != 4 or not all(map(math.isfinite, box)) or not (
                box[0] < box[2] and box[1] < box[3]):
            _fail(400, f"{name}: use min_lon,min_lat,max_lon,max_lat, not {value!r}")
        return box  # type: ignore[return-value]


# -- JSON bodies ----------------------------------------------------------------------------------
class Body:
    """The JSON object of a request, checked field by field."""

    def __init__(self, required: Iterable[str], optional: Iterable[str] = ()) -> None:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            _fail(400, "body: must be a JSON object (Content-Type: application/json)")
        allowed = (*required, *optional)
        for name in data:
            if name not in allowed:
                _fail(400, f"{name}: unknown field (use {', '.join(allowed)})")
        for name in required:
            if data.get(name) is None:
                _fail(400, f"{name}: required")
        self.data = data

    def string(self, name: str, max_length: int, default: str = "") -> str:
        value = self.data.get(name)
        if value is None:
            return default
        if not isinstance(value, str) or len(value) > max_length:
            _fail(400, f"{name}: must be text of at most {max_length} characters")
        return value

    def number(self, name: str) -> float:
        value = self.data.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
                value):
            _fail(400, f"{name}: must be a finite number")
        return float(value)

    def moment(self, name: str) -> datetime | None:
        value = self.data.get(name)
        if value is None:
            return None
        try:
            moment = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            _fail(400, f"{name}: must be an ISO 8601 time with a time zone")
        return moment

    def ids(self, name: str) -> list[int]:
        value = self.data.get(name) or []
        if not isinstance(value, list) or len(value) > 20 or not all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
            _fail(400, f"{name}: must be a list of at most 20 positive ids")
        return value

    def point(self, name: str) -> tuple[float, float] | None:
        value = self.data.get(name)
        if value is None:
            return None
        coords = value.get("coordinates") if isinstance(value, dict) else None
        valid = (isinstance(value, dict) and value.get("type") == "Point"
                 and isinstance(coords, list) and len(coords) == 2
                 and all(isinstance(c, int | float) and not isinstance(c, bool)
                         and math.isfinite(c) for c in coords)
                 and -180 <= coords[0] <= 180 and -90 <= coords[1] <= 90)
        if not valid:
            _fail(400, f"{name}: must be a GeoJSON Point [lon, lat]")
        return float(coords[0]), float(coords[1])

    def details(self, name: str) -> dict[str, Any]:
        value = self.data.get(name) or {}
        if not isinstance(value, dict):
            _fail(400, f"{name}: must be an object")
        for key, item in value.items():
            types = DETAIL_TYPES.get(key)
            if types is None:
                _fail(400, f"{name}.{key}: unknown (use {', '.join(DETAIL_TYPES)})")
            if isinstance(item, bool) or not isinstance(item, types):
                _fail(400, f"{name}.{key}: must be {' or '.join(t.__name__ for t in types)}")
        return value


def _photos(conn: Connection, me: User, photo_ids: list[int]) -> list[dict]:
    """The trail's references to the photos; a user attaches only photos it uploaded."""
    try:
        return [photos.trail_entry(p) for p in photos.owned_photos(conn, photo_ids, me)]
    except photos.PhotoError as exc:
        _fail(exc.status, f"photo_ids: {exc}")


# -- reads (gis.case_queries, inside the user's scope) --------------------------------------------
def _incident(conn: Connection, me: User, incident_id: int) -> dict:
    row = case_queries.get_incident(conn, me.case_scope(), incident_id)
    if row is None:
        _fail(404, f"there is no incident {incident_id} (or it is outside your scope)")
    return serializers.incident_json(row)


def _case(conn: Connection, me: User, case_id: int):
    """The case row; 404 when there is none the user may see."""
    row = case_queries.get_case(conn, me.case_scope(), case_id)
    if row is None:
        _fail(404, f"there is no case {case_id} (or it is outside your scope)")
    return row


def _case_detail(conn: Connection, me: User, case_id: int) -> dict:
    """A case with its trail and the departments it was copied to."""
    detail = serializers.case_json(_case(conn, me, case_id), _now())
    detail["events"] = [serializers.event_json(asdict(event), me.role)
                        for event in case_trail(conn, case_id)]
    detail["copies"] = [serializers.copy_json(row)
                        for row in case_queries.case_copies(conn, case_id)]
    return detail


# -- pages ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Page:
    limit: int
    offset: int
    geojson: bool

    @classmethod
    def from_args(cls, args: Args) -> Page:
        return cls(args.integer("limit", 1, MAX_LIMIT, DEFAULT_LIMIT) or DEFAULT_LIMIT,
                   args.integer("offset", 0, default=0) or 0,
                   args.choice("format", ("json", "geojson"), "json") == "geojson")

    def next_link(self, total: int) -> str | None:
        if self.offset + self.limit >= total:
            return None
        query = {**request.args.to_dict(), "offset": self.offset + self.limit}
        return url_for(request.endpoint, **(request.view_args or {}), **query)

    def answer(self, items: list[dict], total: int) -> Response:
        meta = {"total": total, "limit": self.limit, "offset": self.offset,
                "next": self.next_link(total)}
        if not self.geojson:
            return jsonify(**meta, items=items)
        response = jsonify(type="FeatureCollection", **meta,
                           features=[serializers.feature(item) for item in items])
        response.mimetype = GEOJSON
        return response


def _paged(read: Callable[..., RowPage], page: Page, to_json: Callable[[Any], dict],
           **query: Any) -> Response:
    with _engine().connect() as conn:
        found = read(conn, _me().case_scope(), limit=page.limit, offset=page.offset, **query)
    return page.answer([to_json(row) for row in found.rows], found.total)


# -- incidents ------------------------------------------------------------------------------------
def _crs(name: str) -> str:
    try:
        return normalise_crs(name)
    except ValueError as exc:
        _fail(400, f"crs: {exc}")


def _report_source(me: User) -> str:
    return "api" if g.get("token_auth") else REPORT_SOURCES[me.role]


def _report_answer(conn: Connection, me: User, result: ReportResult) -> Response:
    payload = {
        "incident": _incident(conn, me, result.incident.id),
        "case": _case_detail(conn, me, result.case.id) if result.case else None,
        "possible_duplicates": [
            {"case_id": c.case_id, "number": c.number, "state": c.state,
             "distance_m": round(c.distance_m, 1)} for c in result.possible_duplicates],
    }
    response = jsonify(payload)
    response.status_code = 200 if result.replayed else 201
    response.headers["Location"] = url_for(".incident", incident_id=result.incident.id)
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.post("/incidents")
@roles_required(*REPORTING_ROLES)
def report() -> Response:
    """Report an incident: store it, open its case (a retry with the same key replays)."""
    Args(())
    body = Body(("class_code", "x", "y"),
                ("crs", "reported_at", "description", "idempotency_key", "photo_ids"))
    me = _me()
    values = {
        "class_code": body.string("class_code", 5), "x": body.number("x"),
        "y": body.number("y"), "crs": _crs(body.string("crs", 32, "wgs84")),
        "reported_at": body.moment("reported_at") or _now(),
        "description": body.string("description", 2000),
        "idempotency_key": body.string("idempotency_key", 100) or None}
    with _engine().begin() as conn:
        attached = _photos(conn, me, body.ids("photo_ids"))
        result = submit_report(conn, _workflow(conn), me, source=_report_source(me),
                               photos=attached, **values)
        return _report_answer(conn, me, result)


@bp.get("/incidents")
@roles_required(*READING_ROLES)
def incidents() -> Response:
    """Incidents in the user's scope, newest first, filtered and paged."""
    args = Args(("class", "status", "source", "period", "unit", "bbox", *PAGE_ARGS))
    page = Page.from_args(args)
    query = IncidentQuery(**_common_args(args), status=args.choice("status", LOCATION_STATUSES),
                          source=args.choice("source", SOURCES), bbox=args.bbox("bbox"))
    return _paged(case_queries.list_incidents, page, serializers.incident_json, query=query)


def _common_args(args: Args) -> dict[str, Any]:
    """``class`` (code prefix), ``unit`` (code prefix, any level) and ``period``."""
    return {"class_prefix": args.pattern("class", CLASS_PREFIX,
                                         "a class code or prefix (E, E01, E0102)"),
            "unit": args.pattern("unit", UNIT_CODE, "a unit code (6 to 15 digits)"),
            "period": args.period("period")}


@bp.get("/incidents/<int:incident_id>")
@roles_required(*READING_ROLES)
def incident(incident_id: int) -> Response:
    """One incident in the user's scope."""
    Args(())
    with _engine().connect() as conn:
        return jsonify(_incident(conn, _me(), incident_id))


# -- cases ----------------------------------------------------------------------------------------
@bp.get("/cases")
@roles_required(*READING_ROLES)
def cases() -> Response:
    """Cases in the user's scope, filtered, sorted and paged."""
    args = Args(("state", "class", "department", "unit", "period", "overdue", "sort",
                 *PAGE_ARGS))
    page, now = Page.from_args(args), _now()
    common = _common_args(args)
    states = args.choices("state", STATES)
    query = CaseQuery(
        **common, states=tuple(states) if states else None,
        department_id=args.integer("department", 1), overdue=args.boolean("overdue"),
        sort=args.choice("sort", [*CASE_SORTS, *(f"-{key}" for key in CASE_SORTS)],
                         "-reported_at") or "-reported_at")
    return _paged(case_queries.list_cases, page, lambda row: serializers.case_json(row, now),
                  query=query, now=now)


@bp.get("/cases/<int:case_id>")
@roles_required(*READING_ROLES)
def case(case_id: int) -> Response:
    """One case with its trail."""
    Args(())
    with _engine().connect() as conn:
        return jsonify(_case_detail(conn, _me(), case_id))


@bp.get("/cases/<int:case_id>/actions")
@roles_required(*READING_ROLES)
def actions(case_id: int) -> Response:
    """The actions the user may take on the case now (its state, the user's role and scope)."""
    Args(())
    me = _me()
    with _engine().connect() as conn:
        row = _case(conn, me, case_id)
    names = allowed_actions(row["state"], me.role)
    return jsonify(case_id=case_id, state=row["state"], version=row["version"], actions=[
        {"action": name, "needs_note": TRANSITIONS[name].needs_note,
         "to_state": TRANSITIONS[name].target} for name in names])


@bp.post("/cases/<int:case_id>/transitions")
@roles_required(*ACTING_ROLES)
def transition(case_id: int) -> Response:
    """Apply a workflow action to the case as the user; answers the case after it."""
    Args(())
    body = Body(("action",), ("note", "photo_ids", "location", "details"))
    me = _me()
    action, note = body.string("action", 40), body.string("note", 2000)
    location, details = body.point("location"), body.details("details")
    with _engine().begin() as conn:
        _case(conn, me, case_id)  # 404 outside the user's scope
        attached = _photos(conn, me, body.ids("photo_ids"))
        _workflow(conn).act(conn, case_id, action, me.actor(), at=_now(), note=note,
                            photos=attached, location=location, **details)
        return jsonify(_case_detail(conn, me, case_id))


@bp.get("/cases/summary")
@roles_required(*DISTRICT_ROLES)
def summary() -> Response:
    """Counts of the period's cases per state and department, overdue, late, reworked."""
    args = Args(("period",))
    period = args.period("period", required=True)
    with _engine().connect() as conn:
        return jsonify(summarise_cases(conn, period, _now()).to_dict())


# -- indicators -----------------------------------------------------------------------------------
@bp.get("/indicators")
@roles_required(*DISTRICT_ROLES)
def indicators() -> Response:
    """The indicators of every unit of a level in a period, optionally against another."""
    args = Args(("level", "period", "compare", "indicator"))
    level = args.choice("level", LEVELS, "street") or "street"
    period = args.period("period", required=True)
    compare = args.period("compare")
    chosen = args.choices("indicator", INDICATORS) or list(INDICATORS)
    try:
        with _engine().connect() as conn:
            frame = (compare_periods(conn, level, compare, period) if compare
                     else unit_indicators(conn, level, period))
    except LookupError as exc:
        _fail(503, str(exc))
    columns = _indicator_columns(chosen) if compare else chosen
    passed = frame["passed_after"].rename("passed") if compare else frame["passed"]
    return jsonify(level=level, period=period.label,
                   compare=compare.label if compare else None, indicators=chosen,
                   columns=columns, pass_rate=serializers.plain(pass_rate(passed.to_frame())),
                   units=serializers.indicator_rows(frame, columns))


def _indicator_columns(chosen: Iterable[str]) -> list[str]:
    """The columns of a comparison: before, after and change (before and after for ``passed``)."""
    suffixes = {name: ("before", "after") if name == "passed" else ("before", "after", "change")
                for name in chosen}
    return [f"{name}_{suffix}" for name, ends in suffixes.items() for suffix in ends]


# -- errors ---------------------------------------------------------------------------------------
@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> tuple[Response, int]:
    return error_response(exc.code or 500, exc.description or exc.name)


@bp.errorhandler(WorkflowError)
def _workflow_error(exc: WorkflowError) -> tuple[Response, int]:
    """NotAllowed → 403, InvalidInput → 400, any other refusal (wrong state) → 409."""
    return error_response(exc.status, str(exc))


@bp.errorhandler(IncidentError)
def _incident_error(exc: IncidentError) -> tuple[Response, int]:
    return error_response(400, str(exc))


@bp.errorhandler(OperationalError)
def _database_down(_exc: OperationalError) -> tuple[Response, int]:
    return error_response(503, "the database is not reachable")
