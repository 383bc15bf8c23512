"""Phone pages for grid workers, grid leaders and supervisors, under ``/m/``.

- ``/m/``: my grids on a map (the active generation, Leaflet served locally), my counts;
- ``/m/report``: report an incident (class, description, GPS or a tap on the map, photos);
- ``/m/tasks``: cases waiting for my on-site verification, and my own reports;
- ``/m/cases/<id>``: one case with its trail (other people's names masked).

The pages post JSON to ``/api/mobile/…`` (``/api`` so an expired session answers 401 JSON, not
the sign-in page); every write goes through :mod:`gis` (``submit_report``, ``Workflow.act``),
which also enforces the grid scope. ``/m/sw.js`` is the service worker (scope ``/m/``) that
keeps the app shell for use without network; reports made offline wait in the browser's
IndexedDB and are sent later with the idempotency key they were given when filled in.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import shapely
from flask import Blueprint, Response, abort, jsonify, render_template, request, url_for
from flask_wtf.csrf import generate_csrf
from sqlalchemy import Connection, text

from gis import photos
from gis.accounts import User
from gis.crs import to_cgcs2000
from gis.incidents import IncidentError
from gis.masking import mask_name
from gis.periods import SHANGHAI
from gis.reporting import ReportResult, submit_report
from gis.workflow import Workflow, WorkflowError, allowed_actions
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
def _my_key_prefix(account: User) -> str:
    return f"{account.id}:"  # gis.reporting scopes idempotency keys as "<user id>:<key>"


def my_reports(conn: Connection, account: User, limit: int = 50) -> list[dict]:
    """The user's own reports from these pages, newest first, with their case's state."""
    rows = conn.execute(text(
        """
        SELECT i.id AS incident_id, i.reported_at, i.location_status, i.description,
               c.id AS case_id, c.number, c.state, k.minor_name AS class_name,
               g.code AS grid_code, g.name AS grid_name
        FROM incident_key ik
        JOIN incident i ON i.id = ik.incident_id AND i.reported_at = ik.reported_at
        JOIN incident_class k ON k.code = i.class_code
        LEFT JOIN case_file c ON c.incident_id = i.id AND c.incident_reported_at = i.reported_at
        LEFT JOIN unit g ON g.id = i.grid_id
        WHERE ik.source = :source AND starts_with(ik.source_key, :prefix)
        ORDER BY i.reported_at DESC LIMIT :limit
        """), {"source": SOURCE, "prefix": _my_key_prefix(account), "limit": limit})
    return [dict(row._mapping, when=_local(row.reported_at),
                 state_label=STATE_LABELS.get(row.state, row.location_status))
            for row in rows]


def verification_tasks(conn: Connection, account: User, limit: int = 100) -> list[dict]:
    """Cases fed back and waiting for on-site verification: in my grids for grid staff,
    everywhere for supervisors."""
    scoped = account.grid_scoped
    rows = conn.execute(text(
        f"""
        SELECT c.id AS case_id, c.number, c.state, c.handled_at, c.node_due_at,
               c.rework_count, k.minor_name AS class_name, g.code AS grid_code,
               g.name AS grid_name
        FROM case_file c
        JOIN incident_class k ON k.code = c.class_code
        JOIN unit g ON g.id = c.grid_id
        WHERE c.state = 'fed_back' {"AND g.code = ANY(:codes)" if scoped else ""}
        ORDER BY c.node_due_at NULLS LAST, c.id LIMIT :limit
        """), {"codes": sorted(account.grid_codes), "limit": limit})
    return [dict(row._mapping, handled=_local(row.handled_at), due=_local(row.node_due_at))
            for row in rows]


def _reported_by(conn: Connection, account: User, case: dict) -> bool:
    return conn.execute(text(
        """SELECT 1 FROM incident_key WHERE source = :s AND starts_with(source_key, :prefix)
           AND incident_id = :i AND reported_at = :at"""),
        {"s": SOURCE, "prefix": _my_key_prefix(account), "i": case["incident_id"],
         "at": case["incident_reported_at"]}).first() is not None


def case_detail(conn: Connection, account: User, case_id: int) -> dict | None:
    """A case with its units and trail, or None when the user may not see it."""
    case = conn.execute(text(
        """
        SELECT c.id, c.number, c.state, c.incident_id, c.incident_reported_at,
               c.reported_at, c.node_due_at, c.due_at, c.rework_count, i.description,
               k.major_name, k.minor_name, g.code AS grid_code, g.name AS grid_name,
               cm.name AS community_name, s.name AS street_name
        FROM case_file c
        JOIN incident i ON i.id = c.incident_id AND i.reported_at = c.incident_reported_at
        JOIN incident_class k ON k.code = c.class_code
        LEFT JOIN unit g ON g.id = c.grid_id
        LEFT JOIN unit cm ON cm.id = c.community_id
        LEFT JOIN unit s ON s.id = c.street_id
        WHERE c.id = :id
        """), {"id": case_id}).mappings().first()
    if case is None:
        return None
    case = dict(case)
    if account.grid_scoped and case["grid_code"] not in account.grid_codes and not (
            _reported_by(conn, account, case)):
        return None
    events = conn.execute(text(
        """SELECT seq, action, from_state, to_state, actor_staff_id, actor_name, actor_role,
                  at, note, photos, overdue
           FROM case_event WHERE case_id = :id ORDER BY seq"""), {"id": case_id}).mappings()
    case["trail"] = [_trail_entry(dict(event), account) for event in events]
    case["state_label"] = STATE_LABELS.get(case["state"], case["state"])
    case["reported"] = _local(case["reported_at"])
    case["due"] = _local(case["node_due_at"])
    in_scope = not account.grid_scoped or case["grid_code"] in account.grid_codes
    case["can_verify"] = in_scope and "verify_pass" in allowed_actions(case["state"],
                                                                       account.role)
    return case


def _trail_entry(event: dict, account: User) -> dict:
    own = event["actor_staff_id"] is not None and event["actor_staff_id"] == account.staff_id
    return {
        "action": ACTION_LABELS.get(event["action"], event["action"]),
        "state": STATE_LABELS.get(event["to_state"], event["to_state"]),
        "when": _local(event["at"]),
        "who": event["actor_name"] if own else mask_name(event["actor_name"]),
        "role": ROLE_LABELS.get(event["actor_role"], event["actor_role"]),
        "note": event["note"],
        "overdue": event["overdue"],
        "photo_ids": [p["photo_id"] for p in event["photos"] or []
                      if isinstance(p, dict) and isinstance(p.get("photo_id"), int)],
    }


def incident_classes(conn: Connection) -> list[dict]:
    rows = conn.execute(text(
        "SELECT code, kind, major_name, minor_name FROM incident_class ORDER BY code"))
    groups: dict[str, dict] = {}
    for row in rows:
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
    row = conn.execute(text(
        """SELECT g.code AS grid_code, g.name AS grid_name, c.code AS community_code,
                  c.name AS community_name, s.code AS street_code, s.name AS street_name
           FROM incident i
           LEFT JOIN unit g ON g.id = i.grid_id
           LEFT JOIN unit c ON c.id = i.community_id
           LEFT JOIN unit s ON s.id = i.street_id
           WHERE i.id = :id AND i.reported_at = :at"""),
        {"id": incident.id, "at": incident.reported_at}).mappings().one()
    units = {level: {"code": row[f"{level}_code"], "name": row[f"{level}_name"]}
             if row[f"{level}_code"] else None for level in ("grid", "community", "street")}
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
