"""Phone pages for grid workers, grid leaders and supervisors, under ``/m/``.

- ``/m/``: my grids on a map (the active generation, Leaflet served locally), my counts;
- ``/m/report``: report an incident (class, description, GPS or a tap on the map, photos);
- ``/m/tasks``: cases waiting for my on-site verification, and my own reports;
- ``/m/cases/<id>``: one case with its trail (other people's names masked).

The pages post JSON to ``/api/mobile/…`` (``/api`` so an expired session answers 401 JSON, not
the sign-in page); every write goes through :mod:`gis` (``submit_report``, ``Workflow.act``),
which also enforces the grid scope, and every read through :mod:`gis.case_queries` (the same
scope, :meth:`gis.accounts.User.case_scope`); this module labels and formats. ``/m/sw.js`` is
the service worker (scope ``/m/``) that keeps the app shell for use without network; reports
made offline wait in the browser's IndexedDB and are sent later with the idempotency key they
were given when filled in.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import shapely
from flask import Blueprint, Response, abort, jsonify, render_template, request, url_for
from flask_wtf.csrf import generate_csrf
from sqlalchemy import Connection

from gis import case_queries, photos
from gis.accounts import User
from gis.command_centre import TrailEvent
from gis.crs import to_cgcs2000
from gis.incidents import IncidentError
from gis.masking import mask_name
from gis.periods import SHANGHAI
from gis.reporting import ReportResult, submit_report
from gis.workflow import Workflow, WorkflowError
from webmap import current_store
from webmap.auth import roles_required, user

bp = Blueprint("mobile", __name__, template_folder="templates")

MOBILE_ROLES = ("grid_worker", "grid_leader", "supervisor")
mobile_required = roles_required(*MOBILE_ROLES)

STATIC_DIR = Path(__file__).parent / "static"
MAX_PHOTOS = 6
MAX_DESCRIPTION = 2000
SOURCE = "grid_worker"  # every report from the field pages
LOCATION_CRS = ("wgs84", "cgcs2000")  # GPS fixes, taps on the (CGCS2000) map

STATE_LABELS = {
    "reported": "已上报", "accepted": "已受理", "filed": "已立案", "dispatched": "已派遣",
    "handling": "处置中", "fed_back": "待核查", "verified": "已核查", "closed": "已结案",
    "evaluated": "已评价", "suspended": "挂账", "not_accepted": "不受理", "duplicate": "重复",
    "void": "作废", "not_filed": "不立案",
}
ACTION_LABELS = {
    "report": "上报", "accept": "受理", "reject": "不受理", "mark_duplicate": "判重",
    "void": "作废", "file": "立案", "decline_filing": "不立案", "dispatch": "派遣",
    "sign": "签收", "return": "退回", "feedback": "处置反馈", "verify_pass": "核查通过",
    "verify_fail": "核查不通过（返工）", "close": "结案", "evaluate": "评价", "suspend": "挂账",
    "resume": "恢复", "request_extension": "申请延期", "approve_extension": "批准延期",
    "refuse_extension": "驳回延期", "supervise": "督办", "copy_to": "抄告",
}
ROLE_LABELS = {
    "admin": "管理员", "acceptor": "受理员", "shift_leader": "值班长", "dispatcher": "派遣员",
    "handler": "处置人员", "grid_leader": "网格长", "grid_worker": "网格员",
    "supervisor": "监督员", "viewer": "查看",
}


class BadRequest(ValueError):
    """Input the JSON endpoints refuse with 400."""


def _engine():
    return current_store().engine


def _me() -> User:
    account = user()
    assert account is not None  # the role decorators ran first
    return account


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify(error={"status": status, "message": message}), status


def _local(at: datetime | None) -> str:
    return at.astimezone(SHANGHAI).strftime("%m-%d %H:%M") if at else ""


# -- reading (the phone's view of cases) ----------------------------------------------------------
def my_reports(conn: Connection, account: User, limit: int = 50) -> list[dict]:
    """The user's own reports from these pages, newest first, with their case's state."""
    return [dict(asdict(row), when=_local(row.reported_at),
                 state_label=STATE_LABELS.get(row.state, row.location_status))
            for row in case_queries.own_reports(conn, account, SOURCE, limit)]


def verification_tasks(conn: Connection, account: User, limit: int = 100) -> list[dict]:
    """Cases fed back and waiting for on-site verification: in my grids for grid staff,
    everywhere for supervisors."""
    return [dict(asdict(row), handled=_local(row.handled_at), due=_local(row.node_due_at))
            for row in case_queries.verification_tasks(conn, account, limit)]


def case_detail(conn: Connection, account: User, case_id: int) -> dict | None:
    """A case with its units and trail, or None when the user may not see it."""
    found = case_queries.field_case(conn, account, case_id, SOURCE)
    if found is None:
        return None
    case = asdict(found)
    case["trail"] = [_trail_entry(event, account) for event in found.trail]
    case["state_label"] = STATE_LABELS.get(found.state, found.state)
    case["reported"] = _local(found.reported_at)
    case["due"] = _local(found.node_due_at)
    return case


def _trail_entry(event: TrailEvent, account: User) -> dict:
    own = event.actor_staff_id is not None and event.actor_staff_id == account.staff_id
    return {
        "action": ACTION_LABELS.get(event.action, event.action),
        "state": STATE_LABELS.get(event.to_state, event.to_state),
        "when": _local(event.at),
        "who": event.actor_name if own else mask_name(event.actor_name),
        "role": ROLE_LABELS.get(event.actor_role, event.actor_role),
        "note": event.note,
        "overdue": event.overdue,
        "photo_ids": [p["photo_id"] for p in event.photos or []
                      if isinstance(p, dict) and isinstance(p.get("photo_id"), int)],
    }


def incident_classes(conn: Connection) -> list[dict]:
    """The classes grouped for the report form: 部件/事件 · major class → minor classes."""
    groups: dict[str, dict] = {}
    for row in case_queries.incident_classes(conn):
        label = f"{'部件' if row.kind == 'component' else '事件'} · {row.major_name}"
        groups.setdefault(label, {"label": label, "classes": []})["classes"].append(
            {"code": row.code, "name": row.minor_name})
    return list(groups.values())


def grids_geojson(account: User) -> dict:
    """The user's grids in the active generation (the district outline if they have none)."""
    store = current_store()
    generation_id = store.active_id()
    if generation_id is None:
        return {"type": "FeatureCollection", "features": []}
    levels = store.levels(generation_id)
    grids = levels["grid"][levels["grid"]["code"].isin(account.grid_codes)]
    frame = grids if len(grids) else levels["district"]
    communities = dict(zip(levels["community"]["code"], levels["community"]["name"],
                           strict=True))
    geoms = shapely.transform(frame.geometry.array, lambda xy: xy.round(6))
    features = [
        {"type": "Feature", "id": str(row.code),
         "properties": {"code": str(row.code), "name": str(row.name),
                        "community": communities.get(row.parent_code, "")},
         "geometry": shapely.geometry.mapping(geom)}
        for row, geom in zip(frame.itertuples(index=False), geoms, strict=True)]
    return {"type": "FeatureCollection", "features": features}


# -- pages ----------------------------------------------------------------------------------------
@bp.get("/m/")
@mobile_required
def home() -> str:
    account = _me()
    with _engine().connect() as conn:
        tasks = verification_tasks(conn, account)
        reports = my_reports(conn, account)
    open_reports = [r for r in reports if r["state"] not in (None, "closed", "evaluated")]
    return render_template("mobile/home.html", grids=grids_geojson(account),
                           task_count=len(tasks), report_count=len(reports),
                           open_report_count=len(open_reports), page="home")


@bp.get("/m/report")
@mobile_required
def report() -> str:
    account = _me()
    with _engine().connect() as conn:
        classes = incident_classes(conn)
    return render_template("mobile/report.html", classes=classes, grids=grids_geojson(account),
                           page="report")


@bp.get("/m/tasks")
@mobile_required
def tasks() -> str:
    account = _me()
    with _engine().connect() as conn:
        to_verify = verification_tasks(conn, account)
        reports = my_reports(conn, account)
    return render_template("mobile/tasks.html", tasks=to_verify, reports=reports, page="tasks")


@bp.get("/m/cases/<int:case_id>")
@mobile_required
def case(case_id: int) -> str:
    with _engine().connect() as conn:
        detail = case_detail(conn, _me(), case_id)
    if detail is None:
        abort(404)
    return render_template("mobile/case.html", case=detail, page="case")


@bp.get("/m/sw.js")
def service_worker() -> Response:
    """The service worker, served from /m/ so that its scope is /m/."""
    response = Response(_service_worker_source(_precache()), mimetype="text/javascript")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Service-Worker-Allowed"] = "/m/"
    return response


def _precache() -> tuple[str, ...]:
    static = [url_for("webmap.static", filename=name) for name in ("mobile.css", "mobile.js")]
    leaflet = [url_for("webmap.asset", bundle="leaflet", filename=name) for name in (
        "leaflet.js", "leaflet.css", "images/layers.png", "images/layers-2x.png",
        "images/marker-icon.png", "images/marker-icon-2x.png", "images/marker-shadow.png")]
    pages = [url_for("mobile.home"), url_for("mobile.report"), url_for("mobile.tasks")]
    return (*static, *leaflet, *pages)


@cache
def _service_worker_source(precache: tuple[str, ...]) -> str:
    """sw.js with its precache list and a version that changes with the shell's files."""
    digest = hashlib.sha256()
    for name in ("sw.js", "mobile.js", "mobile.css"):
        digest.update((STATIC_DIR / name).read_bytes())
    digest.update("\n".join(precache).encode())
    source = (STATIC_DIR / "sw.js").read_text(encoding="utf-8")
    return (source.replace('"__VERSION__"', json.dumps(digest.hexdigest()[:12]))
            .replace('["__PRECACHE__"]', json.dumps(list(precache))))


# -- JSON -----------------------------------------------------------------------------------------
@bp.get("/api/mobile/csrf")
@mobile_required
def csrf_token() -> Response:
    """A fresh CSRF token: a page kept by the service worker may carry a stale one."""
    response = jsonify(token=generate_csrf())
    response.headers["Cache-Control"] = "no-store"
    return response


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("send a JSON object")
    return body


def _text(body: dict, name: str, limit: int, required: bool = False) -> str:
    value = body.get(name, "")
    if not isinstance(value, str) or len(value) > limit:
        raise BadRequest(f"{name}: text of at most {limit} characters")
    if required and not value.strip():
        raise BadRequest(f"{name} is required")
    return value.strip()


def _location(body: dict) -> tuple[float, float, str]:
    """``(lon, lat, crs)`` from the body: a GPS fix (WGS84) or a tap on the map (CGCS2000)."""
    lon, lat, crs = body.get("lon"), body.get("lat"), body.get("crs", "wgs84")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
               for v in (lon, lat)):
        raise BadRequest("lon and lat: the location is required (numbers)")
    if crs not in LOCATION_CRS:
        raise BadRequest(f"crs: one of {', '.join(LOCATION_CRS)}")
    return float(lon), float(lat), crs


def _photo_ids(body: dict) -> list[int]:
    ids = body.get("photo_ids", [])
    if not isinstance(ids, list) or len(ids) > MAX_PHOTOS or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise BadRequest(f"photo_ids: a list of at most {MAX_PHOTOS} photo ids")
    return ids


def _reported_at(body: dict, now: datetime) -> datetime:
    """When the report was filled in (it may have waited offline); the phone's clock is not
    trusted beyond reason: a little in the future becomes now, a month back is refused."""
    raw = body.get("reported_at")
    if raw is None:
        return now
    try:
        at = datetime.fromisoformat(str(raw))
    except ValueError:
        raise BadRequest("reported_at: an ISO 8601 time with a time zone") from None
    if at.tzinfo is None:
        raise BadRequest("reported_at: a time zone is required")
    if at > now + timedelta(days=1) or at < now - timedelta(days=30):
        raise BadRequest("reported_at: check the phone's clock (within the last 30 days)")
    return min(at, now)


@bp.post("/api/mobile/reports")
@mobile_required
def submit() -> tuple[Response, int]:
    """Store a report from the page; 201 with where it landed, 200 when replayed."""
    account = _me()
    now = datetime.now(SHANGHAI)
    try:
        body = _body()
        key = _text(body, "idempotency_key", 100, required=True)
        class_code = _text(body, "class_code", 10, required=True)
        description = _text(body, "description", MAX_DESCRIPTION)
        x, y, crs = _location(body)
        photo_ids = _photo_ids(body)
        reported_at = _reported_at(body, now)
        with _engine().begin() as conn:
            attached = [photos.trail_entry(p)
                        for p in photos.owned_photos(conn, photo_ids, account)]
            result = submit_report(
                conn, Workflow.load(conn), account, source=SOURCE, class_code=class_code,
                x=x, y=y, crs=crs, reported_at=reported_at, description=description,
                idempotency_key=key, photos=attached)
            answer = _report_answer(conn, result)
    except (BadRequest, IncidentError, photos.PhotoError) as exc:
        return _error(400, str(exc))
    except WorkflowError as exc:
        message = str(exc)
        if exc.status == 403:
            message = f"该位置不在您负责的网格内，不能上报。{message}"
        return _error(exc.status, message)
    return jsonify(answer), (200 if result.replayed else 201)


def _report_answer(conn: Connection, result: ReportResult) -> dict:
    incident = result.incident
    units = {level: asdict(unit) if unit else None for level, unit in
             case_queries.incident_units(conn, incident.id, incident.reported_at).items()}
    case = result.case
    return {
        "replayed": result.replayed,
        "incident": {"id": incident.id, "location_status": incident.location_status, **units},
        "case": {"id": case.id, "number": case.number, "state": case.state,
                 "state_label": STATE_LABELS.get(case.state, case.state),
                 "url": url_for("mobile.case", case_id=case.id)} if case else None,
        "possible_duplicates": [
            {"case_id": d.case_id, "number": d.number, "state": d.state,
             "distance_m": round(d.distance_m, 1),
             "url": url_for("mobile.case", case_id=d.case_id)}
            for d in result.possible_duplicates],
    }


@bp.post("/api/mobile/cases/<int:case_id>/verify")
@mobile_required
def verify(case_id: int) -> tuple[Response, int]:
    """On-site verification: ``{"result": "pass"|"fail", "note", "lon", "lat", "photo_ids"}``."""
    account = _me()
    try:
        body = _body()
        result = body.get("result")
        if result not in ("pass", "fail"):
            raise BadRequest("result: 'pass' or 'fail'")
        note = _text(body, "note", MAX_DESCRIPTION)
        location = None
        if body.get("lon") is not None or body.get("lat") is not None:
            lon, lat = (float(v) for v in to_cgcs2000(*_location(body)))
            location = (lon, lat)
        photo_ids = _photo_ids(body)
        with _engine().begin() as conn:
            attached = [photos.trail_entry(p)
                        for p in photos.owned_photos(conn, photo_ids, account)]
            view = Workflow.load(conn).act(
                conn, case_id, f"verify_{result}", account.actor(),
                at=datetime.now(SHANGHAI), note=note, photos=attached, location=location)
    except (BadRequest, photos.PhotoError) as exc:
        return _error(400, str(exc))
    except WorkflowError as exc:
        return _error(exc.status, str(exc))
    return jsonify(case={"id": view.id, "number": view.number, "state": view.state,
                         "state_label": STATE_LABELS.get(view.state, view.state)}), 200
