"""Reads of incidents and cases for one reader, inside the reader's scope: what the REST API
lists and shows, and what the phone pages show (my reports, cases to verify, one case).

The scope is :meth:`gis.accounts.User.case_scope` (grid staff their grids, handlers their
department's cases, everyone else the district); an incident is seen when its grid is in scope
(and, for handlers, when its case is their department's). A grid worker also sees the cases
behind their own reports wherever they lie. Nothing here writes; nothing here formats for a
screen: rows come back as mappings or small dataclasses, and the front ends shape them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, text

from gis.accounts import CaseScope, User
from gis.command_centre import OVERDUE, TrailEvent, case_trail
from gis.periods import Period
from gis.reporting import own_key_prefix
from gis.workflow import allowed_actions

#: Sort keys of the case list (a leading ``-`` sorts descending) → SQL expression.
CASE_SORTS = {"reported_at": "c.reported_at", "node_due_at": "c.node_due_at"}

UNIT_JOINS = """
    LEFT JOIN unit g ON g.id = {a}.grid_id
    LEFT JOIN unit cm ON cm.id = {a}.community_id
    LEFT JOIN unit s ON s.id = {a}.street_id
    LEFT JOIN incident_class k ON k.code = {a}.class_code"""
UNIT_COLUMNS = ("g.code AS grid_code, cm.code AS community_code, s.code AS street_code, "
                "k.minor_name AS class_name")
INCIDENT_FROM = """
    FROM incident i
    LEFT JOIN case_file c ON c.incident_id = i.id AND c.incident_reported_at = i.reported_at
""" + UNIT_JOINS.format(a="i")
INCIDENT_COLUMNS = f"""
    i.id, i.reported_at, i.source, i.class_code, i.description, i.location_status,
    ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat, i.generation_id, {UNIT_COLUMNS},
    c.id AS case_id, c.number AS case_number, c.state AS case_state"""
CASE_FROM = """
    FROM case_file c
    JOIN incident i ON i.id = c.incident_id AND i.reported_at = c.incident_reported_at
    LEFT JOIN department d ON d.id = c.department_id
    LEFT JOIN department h ON h.id = c.handler_id
""" + UNIT_JOINS.format(a="c")
CASE_COLUMNS = f"""
    c.*, {UNIT_COLUMNS}, d.name AS department_name, h.name AS handler_name,
    i.description, ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat"""


# -- conditions -----------------------------------------------------------------------------------
@dataclass
class Filters:
    """WHERE clauses and their parameters, built up one filter at a time."""

    clauses: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def within(cls, scope: CaseScope) -> Filters:
        """Start from the reader's scope (on ``g``, the grid, and ``c``, the case)."""
        clauses, params = scope.where()
        return cls(clauses, params)

    def add(self, clause: str, **params: Any) -> None:
        self.clauses.append(clause)
        self.params.update(params)

    @property
    def where(self) -> str:
        return " AND ".join(self.clauses) or "TRUE"

    def common(self, alias: str, class_prefix: str | None, unit: str | None,
               period: Period | None) -> None:
        """Class code prefix, unit code prefix (any level: on the grid's code) and period, on
        the incident (``i``) or the case (``c``)."""
        if class_prefix:
            self.add(f"{alias}.class_code LIKE :class_prefix", class_prefix=f"{class_prefix}%")
        if unit:
            self.add("g.code LIKE :unit_prefix", unit_prefix=f"{unit}%")
        if period is not None:
            self.add(f"{alias}.reported_at >= :start AND {alias}.reported_at < :end",
                     start=period.start, end=period.end)


@dataclass(frozen=True)
class IncidentQuery:
    """What the incident list shows; every field optional. ``bbox`` is
    ``(min_lon, min_lat, max_lon, max_lat)`` in CGCS2000."""

    class_prefix: str | None = None
    unit: str | None = None
    period: Period | None = None
    status: str | None = None
    source: str | None = None
    bbox: tuple[float, float, float, float] | None = None

    def filters(self, scope: CaseScope) -> Filters:
        filters = Filters.within(scope)
        filters.common("i", self.class_prefix, self.unit, self.period)
        if self.status:
            filters.add("i.location_status = :status", status=self.status)
        if self.source:
            filters.add("i.source = :source", source=self.source)
        if self.bbox:
            filters.add("i.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490)",
                        **dict(zip(("x0", "y0", "x1", "y1"), self.bbox, strict=True)))
        return filters


@dataclass(frozen=True)
class CaseQuery:
    """What the case list shows; every field optional. ``department_id`` matches the
    responsible or the handling department; ``overdue`` True/False keeps only the cases that
    are / are not overdue at ``now``; ``sort`` is a key of :data:`CASE_SORTS`, ``-`` first to
    sort descending (the case id breaks ties in the same direction)."""

    class_prefix: str | None = None
    unit: str | None = None
    period: Period | None = None
    states: tuple[str, ...] | None = None
    department_id: int | None = None
    overdue: bool | None = None
    sort: str = "-reported_at"

    def filters(self, scope: CaseScope, now: datetime) -> Filters:
        filters = Filters.within(scope)
        filters.common("c", self.class_prefix, self.unit, self.period)
        if self.states:
            filters.add("c.state = ANY(:states)", states=list(self.states))
        if self.department_id is not None:
            filters.add(":department IN (c.department_id, c.handler_id)",
                        department=self.department_id)
        if self.overdue is not None:
            test = "IS TRUE" if self.overdue else "IS NOT TRUE"
            filters.add(f"{OVERDUE} {test}", now=now)
        return filters

    def order(self) -> str:
        key = self.sort.lstrip("-")
        if key not in CASE_SORTS:
            raise ValueError(f"sort: use one of {', '.join(CASE_SORTS)} (- first: descending)")
        direction = "DESC" if self.sort.startswith("-") else "ASC"
        return f"{CASE_SORTS[key]} {direction} NULLS LAST, c.id {direction}"


@dataclass(frozen=True)
class RowPage:
    """One page of rows and how many match in all."""

    rows: list[RowMapping]
    total: int


def _rows(conn: Connection, columns: str, source: str, filters: Filters, order: str,
          limit: int, offset: int) -> list[RowMapping]:
    return list(conn.execute(text(
        f"SELECT {columns} {source} WHERE {filters.where} ORDER BY {order} "
        "LIMIT :limit OFFSET :offset"),
        {**filters.params, "limit": limit, "offset": offset}).mappings())


def _page(conn: Connection, columns: str, source: str, filters: Filters, order: str,
          limit: int, offset: int) -> RowPage:
    total = conn.execute(text(f"SELECT count(*) {source} WHERE {filters.where}"),
                         filters.params).scalar_one()
    return RowPage(_rows(conn, columns, source, filters, order, limit, offset), total)


# -- incidents and cases (the REST API) -----------------------------------------------------------
def list_incidents(conn: Connection, scope: CaseScope, query: IncidentQuery, *, limit: int,
                   offset: int = 0) -> RowPage:
    """Incidents in scope matching ``query``, newest first, with their units, class name and
    case (id, number, state)."""
    return _page(conn, INCIDENT_COLUMNS, INCIDENT_FROM, query.filters(scope),
                 "i.reported_at DESC, i.id DESC", limit, offset)


def get_incident(conn: Connection, scope: CaseScope, incident_id: int) -> RowMapping | None:
    """One incident as :func:`list_incidents` gives it; None when there is none in scope."""
    filters = Filters.within(scope)
    filters.add("i.id = :incident_id", incident_id=incident_id)
    rows = _rows(conn, INCIDENT_COLUMNS, INCIDENT_FROM, filters, "1", 1, 0)
    return rows[0] if rows else None


def list_cases(conn: Connection, scope: CaseScope, query: CaseQuery, *, now: datetime,
               limit: int, offset: int = 0) -> RowPage:
    """Cases in scope matching ``query`` (every column of the case, its units, class name,
    department names, its incident's description and position), in the query's order."""
    order = query.order()
    return _page(conn, CASE_COLUMNS, CASE_FROM, query.filters(scope, now), order, limit,
                 offset)


def get_case(conn: Connection, scope: CaseScope, case_id: int) -> RowMapping | None:
    """One case as :func:`list_cases` gives it; None when there is none in scope."""
    filters = Filters.within(scope)
    filters.add("c.id = :case_id", case_id=case_id)
    rows = _rows(conn, CASE_COLUMNS, CASE_FROM, filters, "1", 1, 0)
    return rows[0] if rows else None


def case_copies(conn: Connection, case_id: int) -> list[RowMapping]:
    """The departments the case was copied to (抄告): id, name, when, why; oldest first."""
    return list(conn.execute(text(
        """SELECT cc.department_id, d.name AS department_name, cc.at, cc.reason
           FROM case_copy cc JOIN department d ON d.id = cc.department_id
           WHERE cc.case_id = :id ORDER BY cc.at, cc.department_id"""), {"id": case_id}
    ).mappings())


# -- the phone pages ------------------------------------------------------------------------------
@dataclass(frozen=True)
class OwnReport:
    """A report the user made, with its case when it has one."""

    incident_id: int
    reported_at: datetime
    location_status: str
    description: str
    case_id: int | None
    number: str | None
    state: str | None
    class_name: str
    grid_code: str | None
    grid_name: str | None


def own_reports(conn: Connection, user: User, source: str, limit: int = 50) -> list[OwnReport]:
    """The user's own reports stored under ``source``, newest first."""
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
        """), {"source": source, "prefix": own_key_prefix(user.id), "limit": limit})
    return [OwnReport(*row) for row in rows]


@dataclass(frozen=True)
class VerificationTask:
    """A case fed back by its handler and waiting for on-site verification."""

    case_id: int
    number: str
    state: str
    handled_at: datetime | None
    node_due_at: datetime | None
    rework_count: int
    class_name: str
    grid_code: str
    grid_name: str


def verification_tasks(conn: Connection, user: User, limit: int = 100
                       ) -> list[VerificationTask]:
    """Cases in scope waiting for verification (``fed_back``), nearest deadline first."""
    scope, params = user.case_scope().sql()
    rows = conn.execute(text(
        f"""
        SELECT c.id AS case_id, c.number, c.state, c.handled_at, c.node_due_at,
               c.rework_count, k.minor_name AS class_name, g.code AS grid_code,
               g.name AS grid_name
        FROM case_file c
        JOIN incident_class k ON k.code = c.class_code
        JOIN unit g ON g.id = c.grid_id
        WHERE c.state = 'fed_back' AND {scope}
        ORDER BY c.node_due_at NULLS LAST, c.id LIMIT :limit
        """), {**params, "limit": limit})
    return [VerificationTask(*row) for row in rows]


@dataclass(frozen=True)
class FieldCase:
    """A case as the phone pages show it, with its trail. ``in_scope``: the case is in the
    reader's scope (not only visible as the reader's own report); ``can_verify``: the reader
    may verify it now."""

    id: int
    number: str
    state: str
    incident_id: int
    incident_reported_at: datetime
    reported_at: datetime
    node_due_at: datetime | None
    due_at: datetime | None
    rework_count: int
    description: str
    major_name: str
    minor_name: str
    grid_code: str | None
    grid_name: str | None
    community_name: str | None
    street_name: str | None
    in_scope: bool
    can_verify: bool = False
    trail: list[TrailEvent] = field(default_factory=list)


def field_case(conn: Connection, user: User, case_id: int, source: str) -> FieldCase | None:
    """The case with its units and trail, or None when there is none the user may see: one in
    the user's scope, or one opened from the user's own report under ``source``."""
    scope, params = user.case_scope().sql()
    row = conn.execute(text(
        f"""
        SELECT c.id, c.number, c.state, c.incident_id, c.incident_reported_at,
               c.reported_at, c.node_due_at, c.due_at, c.rework_count, i.description,
               k.major_name, k.minor_name, g.code AS grid_code, g.name AS grid_name,
               cm.name AS community_name, s.name AS street_name,
               coalesce({scope}, FALSE) AS in_scope
        FROM case_file c
        JOIN incident i ON i.id = c.incident_id AND i.reported_at = c.incident_reported_at
        JOIN incident_class k ON k.code = c.class_code
        LEFT JOIN unit g ON g.id = c.grid_id
        LEFT JOIN unit cm ON cm.id = c.community_id
        LEFT JOIN unit s ON s.id = c.street_id
        WHERE c.id = :id
        """), {**params, "id": case_id}).mappings().first()
    if row is None:
        return None
    case = FieldCase(**row)
    if not case.in_scope and not _reported_by(conn, user, source, case):
        return None
    may_verify = case.in_scope and "verify_pass" in allowed_actions(case.state, user.role)
    return replace(case, can_verify=may_verify, trail=case_trail(conn, case_id))


def _reported_by(conn: Connection, user: User, source: str, case: FieldCase) -> bool:
    return conn.execute(text(
        """SELECT 1 FROM incident_key WHERE source = :s AND starts_with(source_key, :prefix)
           AND incident_id = :i AND reported_at = :at"""),
        {"s": source, "prefix": own_key_prefix(user.id), "i": case.incident_id,
         "at": case.incident_reported_at}).first() is not None


@dataclass(frozen=True)
class UnitRef:
    code: str
    name: str


def incident_units(conn: Connection, incident_id: int, reported_at: datetime
                   ) -> dict[str, UnitRef | None]:
    """The grid, community and street an incident was assigned to (None where it has none)."""
    row = conn.execute(text(
        """SELECT g.code, g.name, c.code, c.name, s.code, s.name
           FROM incident i
           LEFT JOIN unit g ON g.id = i.grid_id
           LEFT JOIN unit c ON c.id = i.community_id
           LEFT JOIN unit s ON s.id = i.street_id
           WHERE i.id = :id AND i.reported_at = :at"""),
        {"id": incident_id, "at": reported_at}).one()
    return {level: UnitRef(row[2 * n], row[2 * n + 1]) if row[2 * n] else None
            for n, level in enumerate(("grid", "community", "street"))}


@dataclass(frozen=True)
class IncidentClass:
    code: str
    kind: str  # component (部件) or event (事件)
    major_name: str
    minor_name: str


def incident_classes(conn: Connection) -> list[IncidentClass]:
    """Every class of the catalogue, by code."""
    return [IncidentClass(*row) for row in conn.execute(text(
        "SELECT code, kind, major_name, minor_name FROM incident_class ORDER BY code"))]
