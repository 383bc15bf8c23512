"""Read side of the command centre: the case queue, one case with its trail, map layers, the
contacts of grids and the figures of the indicator dashboard. Nothing here writes: transitions
go through :mod:`gis.workflow`.

A case is *overdue* when it is not closed and its current node's deadline has passed (the rule
:func:`gis.case_summary.summarise_cases` counts). Units are matched by code prefix (a grid's code
starts with its community's and street's), so a case keeps showing under its unit across
boundary generations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, text

from gis.case_summary import CaseSummary, summarise_cases
from gis.indicators import comparison, evaluate
from gis.models.incidents import SOURCES
from gis.periods import Period, months_ending
from gis.workflow import STATES

#: Sort keys of the case queue → SQL expression (the case id breaks ties).
CASE_SORTS = {
    "overdue": "overdue",
    "reported": "c.reported_at",
    "due": "c.node_due_at",
    "state": "c.state",
    "class": "c.class_code",
    "unit": "g.code",
    "department": "d.name",
}
MAX_PAGE_SIZE = 200
MAP_LIMIT = 5000
_UNIT_CODE = re.compile(r"\d{6,15}")
_CLASS_PREFIX = re.compile(r"[CE]\d{0,4}")

_CASE_FROM = """
    FROM case_file c
    JOIN incident_class ic ON ic.code = c.class_code
    JOIN incident i ON i.id = c.incident_id AND i.reported_at = c.incident_reported_at
    LEFT JOIN unit g ON g.id = c.grid_id
    LEFT JOIN unit s ON s.id = c.street_id
    LEFT JOIN department d ON d.id = c.department_id
    LEFT JOIN department h ON h.id = c.handler_id
"""
#: A case is overdue now (``:now``): not closed, its current node's deadline passed.
OVERDUE = "(c.closed_at IS NULL AND c.node_due_at < :now)"


@dataclass(frozen=True)
class CaseFilter:
    """What the queue and the map show; every field optional. ``unit`` is a unit code (every
    case in it and below), ``class_code`` a class code or a prefix of one (``E01``)."""

    state: str | None = None
    class_code: str | None = None
    unit: str | None = None
    department_id: int | None = None
    source: str | None = None
    period: Period | None = None
    overdue: bool = False

    def check(self) -> CaseFilter:
        """Return the filter, or raise ``ValueError`` naming the bad field."""
        if self.state and self.state not in STATES:
            raise ValueError(f"state: {self.state!r} is not a case state")
        if self.class_code and not _CLASS_PREFIX.fullmatch(self.class_code):
            raise ValueError(f"class: {self.class_code!r} is not a class code or prefix")
        if self.unit and not _UNIT_CODE.fullmatch(self.unit):
            raise ValueError(f"unit: {self.unit!r} is not a unit code")
        if self.source and self.source not in SOURCES:
            raise ValueError(f"source: {self.source!r} is not one of {', '.join(SOURCES)}")
        return self

    def where(self, case_alias: str | None = "c") -> tuple[list[str], dict[str, Any]]:
        """SQL conditions and parameters, for cases (``c``) or incidents (``None``)."""
        conditions: list[str] = []
        params: dict[str, Any] = {}
        time = "c.reported_at" if case_alias else "i.reported_at"
        klass = "c.class_code" if case_alias else "i.class_code"
        if self.period is not None:
            conditions.append(f"{time} >= :start AND {time} < :end")
            params.update(start=self.period.start, end=self.period.end)
        if self.class_code:
            conditions.append(f"{klass} LIKE :class_prefix")
            params["class_prefix"] = self.class_code + "%"
        if self.unit:
            conditions.append("g.code LIKE :unit_prefix")
            params["unit_prefix"] = self.unit + "%"
        if self.source:
            conditions.append("i.source = :source")
            params["source"] = self.source
        if case_alias:
            if self.state:
                conditions.append("c.state = :state")
                params["state"] = self.state
            if self.department_id is not None:
                conditions.append("(c.department_id = :department OR c.handler_id = :department)")
                params["department"] = self.department_id
            if self.overdue:
                conditions.append(OVERDUE)
        return conditions, params


# -- the queue ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CaseRow:
    id: int
    number: str
    state: str
    class_code: str
    class_name: str
    grid_code: str | None
    grid_name: str | None
    street_name: str | None
    department: str | None
    handler: str | None
    source: str
    reported_at: datetime
    node_due_at: datetime | None
    due_at: datetime | None
    overdue: bool
    supervised: bool


@dataclass(frozen=True)
class CasePage:
    rows: list[CaseRow]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def list_cases(conn: Connection, filters: CaseFilter, *, now: datetime, sort: str = "overdue",
               descending: bool = True, page: int = 1, per_page: int = 50) -> CasePage:
    """One page of the case queue. The default order puts overdue cases first, then the
    nearest node deadline; any other sort key still breaks ties by newest report."""
    if sort not in CASE_SORTS:
        raise ValueError(f"sort: use one of {', '.join(CASE_SORTS)}")
    per_page = max(1, min(per_page, MAX_PAGE_SIZE))
    page = max(1, page)
    conditions, params = filters.check().where()
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    params["now"] = now
    direction = "DESC" if descending else "ASC"
    order = f"{CASE_SORTS[sort]} {direction} NULLS LAST"
    if sort == "overdue":
        order += ", c.node_due_at ASC NULLS LAST"
    total = conn.execute(text(f"SELECT count(*) {_CASE_FROM} {where}"), params).scalar_one()
    rows = conn.execute(text(
        f"""SELECT c.id, c.number, c.state, c.class_code, ic.minor_name, g.code, g.name, s.name,
                   d.name, h.name, i.source, c.reported_at, c.node_due_at, c.due_at,
                   {OVERDUE} AS overdue, c.supervised
            {_CASE_FROM} {where}
            ORDER BY {order}, c.reported_at DESC, c.id DESC
            LIMIT :limit OFFSET :offset"""),
        {**params, "limit": per_page, "offset": (page - 1) * per_page}).all()
    return CasePage([CaseRow(*row) for row in rows], total, page, per_page)


# -- one case -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CaseCopyInfo:
    department: str
    at: datetime
    reason: str


@dataclass(frozen=True)
class CaseFile:
    """A case with everything the case page shows besides its trail."""

    id: int
    number: str
    state: str
    suspended_from: str | None
    class_code: str
    class_kind: str
    class_major: str
    class_name: str
    area_class: str
    description: str
    source: str
    lon: float | None
    lat: float | None
    grid_code: str | None
    grid_name: str | None
    community_name: str | None
    street_code: str | None
    street_name: str | None
    department_id: int | None
    department: str | None
    handler_id: int | None
    handler: str | None
    duplicate_of_id: int | None
    duplicate_of_number: str | None
    reported_at: datetime
    filed_at: datetime | None
    dispatched_at: datetime | None
    closed_at: datetime | None
    node_due_at: datetime | None
    handle_due_at: datetime | None
    due_at: datetime | None
    rework_count: int
    return_count: int
    extension_count: int
    extension_pending: bool
    supervised: bool
    evaluation_score: float | None
    version: int
    overdue: bool
    copies: list[CaseCopyInfo] = field(default_factory=list)


def get_case(conn: Connection, case_id: int, *, now: datetime) -> CaseFile | None:
    """The case with its class, place, departments and copies; None if there is none."""
    row = conn.execute(text(
        f"""SELECT c.id, c.number, c.state, c.suspended_from, c.class_code, ic.kind,
                   ic.major_name, ic.minor_name, c.area_class, i.description, i.source,
                   ST_X(i.geom), ST_Y(i.geom), g.code, g.name, cm.name, s.code, s.name,
                   c.department_id, d.name, c.handler_id, h.name, c.duplicate_of_id, dup.number,
                   c.reported_at, c.filed_at, c.dispatched_at, c.closed_at, c.node_due_at,
                   c.handle_due_at, c.due_at, c.rework_count, c.return_count, c.extension_count,
                   c.extension_pending, c.supervised, c.evaluation_score, c.version,
                   {OVERDUE}
            {_CASE_FROM}
            LEFT JOIN unit cm ON cm.id = c.community_id
            LEFT JOIN case_file dup ON dup.id = c.duplicate_of_id
            WHERE c.id = :id"""), {"id": case_id, "now": now}).first()
    if row is None:
        return None
    copies = [CaseCopyInfo(*r) for r in conn.execute(text(
        """SELECT d.name, cc.at, cc.reason FROM case_copy cc
           JOIN department d ON d.id = cc.department_id
           WHERE cc.case_id = :id ORDER BY cc.at, d.name"""), {"id": case_id})]
    return CaseFile(*row, copies=copies)


@dataclass(frozen=True)
class TrailEvent:
    """One step of the trail: who (and, when known, the staff member), when, where, what."""

    seq: int
    action: str
    from_state: str | None
    to_state: str
    actor_name: str
    actor_role: str
    at: datetime
    lon: float | None
    lat: float | None
    note: str
    photos: list[dict]
    details: dict
    node_due_at: datetime | None
    overdue: bool
    actor_staff_id: int | None = None


def case_trail(conn: Connection, case_id: int) -> list[TrailEvent]:
    """Every event of the case, oldest first."""
    rows = conn.execute(text(
        """SELECT seq, action, from_state, to_state, actor_name, actor_role, at, ST_X(geom),
                  ST_Y(geom), note, photos, details, node_due_at, overdue, actor_staff_id
           FROM case_event WHERE case_id = :id ORDER BY seq"""), {"id": case_id}).all()
    return [TrailEvent(*row) for row in rows]


# -- choices for forms ----------------------------------------------------------------------------
@dataclass(frozen=True)
class DepartmentChoice:
    id: int
    code: str
    name: str
    kind: str
    street_code: str | None


def departments(conn: Connection) -> list[DepartmentChoice]:
    """Every department, bureaus first, then teams, squadrons and offices by name."""
    rows = conn.execute(text(
        """SELECT id, code, name, kind, street_code FROM department
           ORDER BY array_position(ARRAY['command_centre', 'bureau', 'professional_team',
                    'enforcement_team', 'squadron', 'street_office']::varchar[], kind), name""")
    ).all()
    return [DepartmentChoice(*row) for row in rows]


def incident_classes(conn: Connection) -> list[tuple[str, str, str]]:
    """(code, major name, minor name) of every class, by code."""
    return [tuple(row) for row in conn.execute(text(
        "SELECT code, major_name, minor_name FROM incident_class ORDER BY code"))]


# -- map layers -----------------------------------------------------------------------------------
def _feature(lon: float, lat: float, properties: dict) -> dict:
    return {"type": "Feature", "properties": properties,
            "geometry": {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]}}


def case_points(conn: Connection, filters: CaseFilter, *, now: datetime,
                limit: int = MAP_LIMIT) -> dict:
    """Cases as a GeoJSON FeatureCollection of points, newest first, at most ``limit``
    (``truncated`` says whether more matched)."""
    conditions, params = filters.check().where()
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = conn.execute(text(
        f"""SELECT c.id, c.number, c.state, c.class_code, ic.minor_name, ST_X(i.geom),
                   ST_Y(i.geom), {OVERDUE}
            {_CASE_FROM} {where}
            ORDER BY c.reported_at DESC, c.id DESC LIMIT :limit"""),
        {**params, "now": now, "limit": limit + 1}).all()
    features = [_feature(r[5], r[6], {"id": r[0], "number": r[1], "state": r[2],
                                      "class_code": r[3], "class_name": r[4], "overdue": r[7]})
                for r in rows[:limit]]
    return {"type": "FeatureCollection", "features": features, "truncated": len(rows) > limit}


def incident_points(conn: Connection, filters: CaseFilter, *, limit: int = MAP_LIMIT) -> dict:
    """Assigned incidents (every source) as GeoJSON points, newest first, at most ``limit``.
    Only the filter's period, class, source and unit apply."""
    conditions, params = filters.check().where(case_alias=None)
    conditions.insert(0, "i.location_status = 'assigned'")
    rows = conn.execute(text(
        f"""SELECT i.id, i.class_code, ic.minor_name, i.source, i.reported_at, ST_X(i.geom),
                   ST_Y(i.geom), c.id
            FROM incident i
            JOIN incident_class ic ON ic.code = i.class_code
            LEFT JOIN unit g ON g.id = i.grid_id
            LEFT JOIN case_file c ON c.incident_id = i.id
                                 AND c.incident_reported_at = i.reported_at
            WHERE {' AND '.join(conditions)}
            ORDER BY i.reported_at DESC, i.id DESC LIMIT :limit"""),
        {**params, "limit": limit + 1}).all()
    features = [_feature(r[5], r[6], {"id": r[0], "class_code": r[1], "class_name": r[2],
                                      "source": r[3], "reported_at": r[4].isoformat(),
                                      "case_id": r[7]})
                for r in rows[:limit]]
    return {"type": "FeatureCollection", "features": features, "truncated": len(rows) > limit}


# -- contacts -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Contact:
    """A person in charge: personal data, to be masked wherever it is shown."""

    name: str
    phone: str | None


def grid_leaders(conn: Connection) -> dict[str, Contact]:
    """The leader of each grid that has one (the first by staff code if several)."""
    rows = conn.execute(text(
        """SELECT DISTINCT ON (sg.grid_code) sg.grid_code, s.name, s.phone
           FROM staff_grid sg JOIN staff s ON s.id = sg.staff_id
           WHERE sg.role = 'leader' AND s.active
           ORDER BY sg.grid_code, s.code""")).all()
    return {code: Contact(name, phone) for code, name, phone in rows}



# -- the indicator dashboard ----------------------------------------------------------------------
#: Months in the dashboard's trend (the district, month by month, up to the period's last month).
TREND_MONTHS = 12


@dataclass(frozen=True)
class DashboardFigures:
    """What the indicator dashboard shows for one level and period (frames as
    :func:`gis.indicators.unit_indicators` returns them)."""

    table: pd.DataFrame  # every unit of the level
    streets: pd.DataFrame  # every street: the bars
    trend: list[tuple[Period, pd.Series]]  # the district in each month of the trend
    comparison: pd.DataFrame | None  # the level in ``compare`` beside the period
    summary: CaseSummary


def dashboard_figures(conn: Connection, level: str, period: Period, *, now: datetime,
                      compare: Period | None = None,
                      months: int = TREND_MONTHS) -> DashboardFigures:
    """The dashboard's indicators from one statement over the cases of all its periods (the
    period at the level and at street level, the district in each trend month, the compared
    period at the level), evaluated at ``now`` or the end of each period if earlier; and the
    case summary of the period."""
    trend = months_ending(period, months)
    requests = [(period, tuple(dict.fromkeys((level, "street")))),
                *[(month, ("district",)) for month in trend]]
    if compare is not None:
        requests.append((compare, (level,)))
    results = evaluate(conn, requests, as_of=now)
    shown = results[0]
    return DashboardFigures(
        table=shown[level], streets=shown["street"],
        trend=[(month, figures["district"].iloc[0])
               for month, figures in zip(trend, results[1:1 + months], strict=True)],
        comparison=comparison(results[-1][level], shown[level]) if compare else None,
        summary=summarise_cases(conn, period, now))


def find_case_id(conn: Connection, reference: str) -> int | None:
    """The id of the case with this number, or with this id; None if there is none."""
    value = reference.strip()
    if not value.isdigit():
        return None
    return conn.execute(text(
        "SELECT id FROM case_file WHERE number = :ref OR id = :id ORDER BY number = :ref DESC "
        "LIMIT 1"), {"ref": value, "id": int(value) if len(value) < 19 else -1}).scalar()
