"""Reads of incidents and cases inside a reader's scope (REST API, phone pages), on PostGIS.

The world: the small hierarchy, its organisation, and four cases:

- ``mine``: reported by the grid worker in their grid (cell 0,3), walked to ``fed_back``
  (dispatched to the squadron of street 1, copied to the market bureau);
- ``near``: a hotline report (class E0708) in the neighbouring grid of street 1 (cell 1,3),
  just reported;
- ``far``: a hotline report in street 2 (cell 2,3), dispatched to the squadron of street 2;
- ``south``: a hotline report in the south of street 1 (cell 0,1), closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import text

from gis import case_queries as q
from gis.accounts import CaseScope, User, create_user, load_user
from gis.case_queries import CaseQuery, IncidentQuery
from gis.periods import parse_period
from gis.reporting import submit_report
from tests.casekit import FRIDAY, run_to
from tests.factories import lattice

GOOD = "correct horse 42"
MY_GRID, NEAR_GRID, FAR_GRID = "320213001001001", "320213001001002", "320213002001001"
SOUTH_GRID = "320213001002001"
LATER = FRIDAY + timedelta(days=400)  # every open case is overdue by then


@dataclass
class World:
    engine: object
    users: dict[str, User]
    cases: dict[str, int]
    incidents: dict[str, int]
    departments: dict[str, int]


def _staff(conn, code: str, grids: dict[str, str]) -> int:
    staff_id = conn.execute(text(
        "INSERT INTO staff (code, name, post) VALUES (:c, :c, 'grid_worker') RETURNING id"),
        {"c": code}).scalar()
    for grid, role in grids.items():
        conn.execute(text("INSERT INTO staff_grid VALUES (:s, :g, :r)"),
                     {"s": staff_id, "g": grid, "r": role})
    return staff_id


def _report(engine, workflow, user, cell, source, at, key=None, class_code="E0102"):
    x, y = lattice(*cell)
    with engine.begin() as conn:
        return submit_report(conn, workflow, user, source=source, class_code=class_code,
                             x=x + 0.001, y=y + 0.001, crs="wgs84", reported_at=at,
                             idempotency_key=key, description=f"report in {cell}")


@pytest.fixture
def site(world) -> World:
    engine, workflow, departments = world
    with engine.begin() as conn:
        worker = _staff(conn, "W1", {MY_GRID: "worker"})
        leader = _staff(conn, "L1", {MY_GRID: "leader", NEAR_GRID: "leader"})
        ids = {
            "worker": create_user(conn, "worker", GOOD, "grid_worker", staff_id=worker),
            "leader": create_user(conn, "leader", GOOD, "grid_leader", staff_id=leader),
            "handler1": create_user(conn, "h1", GOOD, "handler",
                                    department_id=departments["squadron_320213001"]),
            "handler2": create_user(conn, "h2", GOOD, "handler",
                                    department_id=departments["squadron_320213002"]),
            "supervisor": create_user(conn, "sup", GOOD, "supervisor"),
            "acceptor": create_user(conn, "acc", GOOD, "acceptor"),
        }
        users = {name: load_user(conn, user_id) for name, user_id in ids.items()}
    acceptor = users["acceptor"]
    reports = {
        "mine": _report(engine, workflow, users["worker"], (0, 3), "grid_worker", FRIDAY,
                        key="k-1"),
        "near": _report(engine, workflow, acceptor, (1, 3), "hotline",
                        FRIDAY + timedelta(hours=1), class_code="E0708"),
        "far": _report(engine, workflow, acceptor, (2, 3), "hotline",
                       FRIDAY + timedelta(hours=2)),
        "south": _report(engine, workflow, acceptor, (0, 1), "hotline",
                         FRIDAY + timedelta(hours=3)),
    }
    run_to(engine, workflow, departments, reports["mine"].case, "feedback")
    far = run_to(engine, workflow, departments, reports["far"].case, "dispatch",
                 start=FRIDAY + timedelta(hours=2))[0]
    assert far.state == "dispatched"
    run_to(engine, workflow, departments, reports["south"].case, "close",
           start=FRIDAY + timedelta(hours=3))
    return World(engine, users, {name: r.case.id for name, r in reports.items()},
                 {name: r.incident.id for name, r in reports.items()}, departments)


def _scope(site: World, name: str) -> CaseScope:
    return site.users[name].case_scope()


def _case_ids(site: World, name: str, query: CaseQuery | None = None, now=FRIDAY
              ) -> list[str]:
    by_id = {case_id: key for key, case_id in site.cases.items()}
    with site.engine.connect() as conn:
        page = q.list_cases(conn, _scope(site, name), query or CaseQuery(), now=now, limit=50)
    assert page.total == len(page.rows)
    return [by_id[row["id"]] for row in page.rows]


# -- the scope rule in SQL and in Python ----------------------------------------------------------
def test_the_scope_in_sql_agrees_with_the_scope_on_one_case(site):
    scopes = {name: _scope(site, name) for name in site.users}
    scopes["handler without a department"] = CaseScope(department_scoped=True)
    scopes["no grids"] = CaseScope(grid_codes=frozenset())
    with site.engine.connect() as conn:
        cases = conn.execute(text(
            """SELECT c.id, g.code, c.department_id, c.handler_id FROM case_file c
               LEFT JOIN unit g ON g.id = c.grid_id""")).all()
        for name, scope in scopes.items():
            condition, params = scope.sql()
            in_sql = set(conn.execute(text(
                f"SELECT c.id FROM case_file c LEFT JOIN unit g ON g.id = c.grid_id "
                f"WHERE {condition}"), params).scalars())
            in_python = {row.id for row in cases if scope.allows(*row[1:])}
            assert in_sql == in_python, name


def test_who_sees_which_case(site):
    assert _case_ids(site, "worker") == ["mine"]
    assert _case_ids(site, "leader") == ["near", "mine"]
    assert _case_ids(site, "handler1") == ["south", "mine"]  # dispatched to street 1's squadron
    assert _case_ids(site, "handler2") == ["far"]
    assert _case_ids(site, "supervisor") == ["south", "far", "near", "mine"]


def test_one_case_or_incident_only_inside_the_scope(site):
    with site.engine.connect() as conn:
        worker, handler = _scope(site, "worker"), _scope(site, "handler2")
        assert q.get_case(conn, worker, site.cases["mine"])["grid_code"] == MY_GRID
        assert q.get_case(conn, worker, site.cases["far"]) is None
        assert q.get_case(conn, handler, site.cases["far"])["street_code"] == "320213002"
        assert q.get_case(conn, handler, 10**9) is None
        incident = q.get_incident(conn, worker, site.incidents["mine"])
        assert (incident["case_id"], incident["case_state"]) == (site.cases["mine"], "fed_back")
        assert q.get_incident(conn, worker, site.incidents["near"]) is None
        assert q.get_incident(conn, handler, site.incidents["far"])["grid_code"] == FAR_GRID
        assert q.get_incident(conn, handler, site.incidents["near"]) is None


# -- case list filters ----------------------------------------------------------------------------
def test_case_filters(site):
    everyone = "supervisor"
    assert _case_ids(site, everyone, CaseQuery(states=("fed_back", "dispatched"))) == [
        "far", "mine"]
    assert _case_ids(site, everyone, CaseQuery(class_prefix="E07")) == ["near"]
    assert _case_ids(site, everyone, CaseQuery(unit="320213001")) == ["south", "near", "mine"]
    assert _case_ids(site, everyone, CaseQuery(unit=MY_GRID)) == ["mine"]
    squadron = site.departments["squadron_320213002"]
    assert _case_ids(site, everyone, CaseQuery(department_id=squadron)) == ["far"]
    assert _case_ids(site, everyone, CaseQuery(period=parse_period("2019-05"))) == [
        "south", "far", "near", "mine"]
    assert _case_ids(site, everyone, CaseQuery(period=parse_period("2019-06"))) == []
    # by LATER every open case is past its node deadline; the closed one never is
    assert _case_ids(site, everyone, CaseQuery(overdue=True), LATER) == ["far", "near", "mine"]
    assert _case_ids(site, everyone, CaseQuery(overdue=False), LATER) == ["south"]
    assert _case_ids(site, everyone, CaseQuery(overdue=True), FRIDAY) == []


def test_case_order_and_pages(site):
    assert _case_ids(site, "supervisor", CaseQuery(sort="reported_at")) == [
        "mine", "near", "far", "south"]
    by_due = _case_ids(site, "supervisor", CaseQuery(sort="node_due_at"))
    assert by_due[-1] == "south"  # closed: no node deadline, last either way
    assert _case_ids(site, "supervisor", CaseQuery(sort="-node_due_at"))[-1] == "south"
    with site.engine.connect() as conn:
        page = q.list_cases(conn, _scope(site, "supervisor"), CaseQuery(), now=FRIDAY,
                            limit=2, offset=1)
        assert page.total == 4 and [r["id"] for r in page.rows] == [site.cases["far"],
                                                                  site.cases["near"]]
        with pytest.raises(ValueError, match="sort"):
            q.list_cases(conn, _scope(site, "supervisor"), CaseQuery(sort="number"),
                         now=FRIDAY, limit=2)


def test_case_rows_carry_what_the_api_shows(site):
    with site.engine.connect() as conn:
        row = q.get_case(conn, _scope(site, "supervisor"), site.cases["far"])
        copies = q.case_copies(conn, site.cases["far"])
    assert row["department_name"] == "综合行政执法局"
    assert row["handler_name"] == "320213002中队" and row["class_name"]
    assert row["description"] == "report in (2, 3)" and row["lon"] and row["lat"]
    assert [(c["department_id"], c["department_name"], c["reason"]) for c in copies] == [
        (site.departments["msb"], "市场监督管理局", "routing rule")]


# -- incident list --------------------------------------------------------------------------------
def test_incident_filters_and_scope(site):
    def ids(name: str, query: IncidentQuery | None = None) -> list[int]:
        with site.engine.connect() as conn:
            page = q.list_incidents(conn, _scope(site, name), query or IncidentQuery(), limit=50)
        assert page.total == len(page.rows)
        return [row["id"] for row in page.rows]

    inc = site.incidents
    assert ids("supervisor") == [inc["south"], inc["far"], inc["near"], inc["mine"]]
    assert ids("leader") == [inc["near"], inc["mine"]]
    assert ids("handler2") == [inc["far"]]
    assert ids("supervisor", IncidentQuery(source="grid_worker")) == [inc["mine"]]
    assert ids("supervisor", IncidentQuery(status="assigned", class_prefix="E0708")) == [
        inc["near"]]
    assert ids("supervisor", IncidentQuery(status="outside")) == []
    x0, y0 = lattice(2, 3)
    x1, y1 = lattice(3, 4)
    assert ids("supervisor", IncidentQuery(bbox=(x0, y0, x1, y1))) == [inc["far"]]
    assert ids("leader", IncidentQuery(bbox=(x0, y0, x1, y1))) == []


# -- the phone pages ------------------------------------------------------------------------------
def test_own_reports_are_the_users_own(site):
    with site.engine.connect() as conn:
        mine = q.own_reports(conn, site.users["worker"], "grid_worker")
        assert [r.incident_id for r in mine] == [site.incidents["mine"]]
        assert (mine[0].state, mine[0].grid_code) == ("fed_back", MY_GRID)
        assert q.own_reports(conn, site.users["leader"], "grid_worker") == []
        assert q.own_reports(conn, site.users["worker"], "hotline") == []


def test_verification_tasks_in_scope(site):
    with site.engine.connect() as conn:
        tasks = {name: [t.case_id for t in q.verification_tasks(conn, user)]
                 for name, user in site.users.items()}
    assert tasks["worker"] == tasks["leader"] == tasks["supervisor"] == [site.cases["mine"]]
    assert tasks["handler2"] == []


def test_field_case_in_scope_or_own_report(site):
    worker, leader = site.users["worker"], site.users["leader"]
    with site.engine.begin() as conn:
        case = q.field_case(conn, worker, site.cases["mine"], "grid_worker")
        assert case.in_scope and case.can_verify and case.grid_code == MY_GRID
        assert [e.action for e in case.trail] == [
            "report", "accept", "file", "dispatch", "sign", "feedback"]
        assert case.trail[0].actor_staff_id == worker.staff_id
        assert q.field_case(conn, worker, site.cases["near"], "grid_worker") is None
        assert q.field_case(conn, leader, site.cases["near"], "grid_worker").in_scope
        assert q.field_case(conn, worker, 10**9, "grid_worker") is None
        # the worker moves to another grid: their own report stays visible, but not theirs
        # to verify any more
        conn.execute(text("UPDATE staff_grid SET grid_code = :g WHERE staff_id = :s"),
                     {"g": FAR_GRID, "s": worker.staff_id})
        moved = load_user(conn, worker.id)
        case = q.field_case(conn, moved, site.cases["mine"], "grid_worker")
        assert case is not None and not case.in_scope and not case.can_verify
        assert q.field_case(conn, moved, site.cases["mine"], "hotline") is None


def test_incident_units_and_classes(site):
    with site.engine.connect() as conn:
        units = q.incident_units(conn, site.incidents["far"], FRIDAY + timedelta(hours=2))
        classes = q.incident_classes(conn)
    assert units["grid"] == q.UnitRef(FAR_GRID, "网格1")
    assert units["community"].code == "320213002001" and units["street"].code == "320213002"
    assert [c.code for c in classes] == sorted(c.code for c in classes)
    assert {c.kind for c in classes} == {"component", "event"}
    assert all((c.kind == "component") == c.code.startswith("C") for c in classes)
