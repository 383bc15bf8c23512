"""Shared helpers for case workflow tests: actors, opening a case, walking it along."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from gis.incidents import report_incident
from gis.workflow import TRANSITIONS, Actor
from tests.factories import lattice

CST = ZoneInfo("Asia/Shanghai")
FRIDAY = datetime(2019, 5, 10, 16, 0, tzinfo=CST)  # a Friday afternoon, before a normal weekend

CENTRE = {role: Actor(role, f"{role}-1") for role in
          ("acceptor", "shift_leader", "dispatcher", "supervisor")}


def new_case(engine, workflow, class_code="E0102", at=FRIDAY, cell=(0, 3)):
    x, y = lattice(*cell)
    with engine.begin() as conn:
        incident = report_incident(conn, source="grid_worker", class_code=class_code,
                                   reported_at=at, x=x + 0.001, y=y + 0.001)
        return workflow.open_case(conn, incident.id, incident.reported_at,
                                  Actor("grid_worker", "网格员甲"))


def act(engine, workflow, case, action, actor, at, **kwargs):
    with engine.begin() as conn:
        return workflow.act(conn, case.id, action, actor, at=at, **kwargs)


def handler(departments, street="320213001"):
    return Actor("handler", "队员", department_id=departments[f"squadron_{street}"])


def run_to(engine, workflow, departments, case, last_action, start=FRIDAY):
    steps = [("accept", CENTRE["acceptor"], {}), ("file", CENTRE["shift_leader"], {}),
             ("dispatch", CENTRE["dispatcher"], {}), ("sign", handler(departments), {}),
             ("feedback", handler(departments), {"note": "已清理", "photos": [{"id": "p1"}]}),
             ("verify_pass", CENTRE["supervisor"], {"location": (120.301, 31.576)}),
             ("close", CENTRE["shift_leader"], {}),
             ("evaluate", CENTRE["shift_leader"], {"score": 95})]
    at = start
    for action, actor, kwargs in steps:
        if case.state not in TRANSITIONS[action].sources:
            continue  # already past this step
        at += timedelta(minutes=10)
        case = act(engine, workflow, case, action, actor, at, **kwargs)
        if action == last_action:
            break
    return case, at
