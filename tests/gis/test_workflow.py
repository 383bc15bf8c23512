"""The case workflow: every transition per role, scoping, deadlines, routing, the trail."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from gis.incidents import report_incident
from gis.workflow import (
    ROLES,
    STATES,
    TRANSITIONS,
    Actor,
    InvalidInput,
    NotAllowed,
    WorkflowError,
    allowed_actions,
    check_transition,
)
from tests.casekit import CENTRE, CST, FRIDAY, act, handler, new_case, run_to

# The matrix the workflow must implement, written out by hand (action: roles allowed).
EXPECTED_ROLES = {
    "accept": {"acceptor", "shift_leader"},
    "reject": {"acceptor", "shift_leader"},
    "mark_duplicate": {"acceptor", "shift_leader"},
    "void": {"shift_leader"},
    "file": {"shift_leader"},
    "decline_filing": {"shift_leader"},
    "dispatch": {"dispatcher", "shift_leader"},
    "sign": {"handler"},
    "return": {"handler"},
    "feedback": {"handler"},
    "verify_pass": {"grid_worker", "grid_leader", "supervisor"},
    "verify_fail": {"grid_worker", "grid_leader", "supervisor"},
    "close": {"shift_leader"},
    "evaluate": {"shift_leader"},
    "suspend": {"shift_leader"},
    "resume": {"shift_leader"},
    "request_extension": {"handler"},
    "approve_extension": {"shift_leader"},
    "refuse_extension": {"shift_leader"},
    "supervise": {"shift_leader"},
    "copy_to": {"dispatcher", "shift_leader"},
}
EXPECTED_PATH = {  # action: (from, to) on the main path
    "accept": ("reported", "accepted"), "file": ("accepted", "filed"),
    "dispatch": ("filed", "dispatched"), "sign": ("dispatched", "handling"),
    "feedback": ("handling", "fed_back"), "verify_pass": ("fed_back", "verified"),
    "close": ("verified", "closed"), "evaluate": ("closed", "evaluated"),
}


def test_role_matrix_is_exactly_the_expected_one():
    assert {a: set(t.roles) for a, t in TRANSITIONS.items()} == EXPECTED_ROLES
    for action, (source, target) in EXPECTED_PATH.items():
        assert source in TRANSITIONS[action].sources and TRANSITIONS[action].target == target


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("state", STATES)
def test_every_state_role_pair(state, role):
    allowed = set(allowed_actions(state, role))
    for action, transition in TRANSITIONS.items():
        note = "因为" if transition.needs_note else ""
        if action in allowed:
            check_transition(state, action, role, note=note)
        else:
            with pytest.raises(WorkflowError):
                check_transition(state, action, role, note=note)
    if state in ("evaluated", "not_accepted", "duplicate", "void", "not_filed"):
        assert allowed == set()
    if role == "viewer":
        assert allowed == set()


def test_notes_are_required_where_a_reason_matters():
    with pytest.raises(InvalidInput, match="note"):
        check_transition("reported", "reject", "acceptor")
    with pytest.raises(InvalidInput, match="unknown action"):
        check_transition("reported", "teleport", "admin")


# -- against the database ------------------------------------------------------------------------
def test_the_whole_path_with_routing_deadlines_and_trail(world):
    engine, workflow, departments = world
    case = new_case(engine, workflow)
    assert case.state == "reported" and case.number.startswith("20190510")
    case, _ = run_to(engine, workflow, departments, case, "evaluate")
    assert case.state == "evaluated" and case.seq == 9
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM case_file WHERE id = :id"),
                           {"id": case.id}).mappings().one()
        trail = conn.execute(text(
            "SELECT seq, action, from_state, to_state, actor_role, note, photos, "
            "ST_AsText(geom) AS at_where FROM case_event WHERE case_id = :id ORDER BY seq"),
            {"id": case.id}).mappings().all()
        copies = conn.execute(text("SELECT department_id FROM case_copy WHERE case_id = :id"),
                              {"id": case.id}).scalars().all()
    assert row["department_id"] == departments["caeb"]
    assert row["handler_id"] == departments["squadron_320213001"]  # the street's squadron
    assert copies == [departments["msb"]]
    # E0102 in area class B: 3 working hours from Friday 16:30 → Monday 10:30
    assert row["handle_due_at"] == datetime(2019, 5, 13, 10, 30, tzinfo=CST)
    assert row["due_at"] == datetime(2019, 5, 13, 16, 20, tzinfo=CST)  # 1 working day
    assert row["evaluation_score"] == 95.0 and row["closed_at"] is not None
    assert [t["action"] for t in trail] == ["report", "accept", "file", "dispatch", "sign",
                                            "feedback", "verify_pass", "close", "evaluate"]
    assert [t["seq"] for t in trail] == list(range(1, 10))
    assert trail[5]["photos"] == [{"id": "p1"}] and trail[5]["note"] == "已清理"
    assert trail[6]["at_where"] == "POINT(120.301 31.576)"


def test_trail_is_append_only(world):
    engine, workflow, _ = world
    case = new_case(engine, workflow)
    for sql in ("UPDATE case_event SET note = 'x'", "DELETE FROM case_event",
                "TRUNCATE case_event CASCADE"):
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text(sql))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM case_event WHERE case_id = :id"),
                            {"id": case.id}).scalar() == 1


def test_illegal_transitions_and_scoping(world):
    engine, workflow, departments = world
    case = new_case(engine, workflow)
    with pytest.raises(WorkflowError, match="cannot file a case that is reported"):
        act(engine, workflow, case, "file", CENTRE["shift_leader"], FRIDAY)
    with pytest.raises(NotAllowed):
        act(engine, workflow, case, "accept", Actor("grid_worker", "w"), FRIDAY)
    case, at = run_to(engine, workflow, departments, case, "dispatch")
    other_street = handler(departments, "320213002")
    with pytest.raises(NotAllowed, match="department"):
        act(engine, workflow, case, "sign", other_street, at)
    case, at = run_to(engine, workflow, departments, case, "feedback", start=at)
    outsider = Actor("grid_worker", "外网格员", grid_codes=frozenset({"320213002002004"}))
    with pytest.raises(NotAllowed, match="grids"):
        act(engine, workflow, case, "verify_pass", outsider, at)
    insider = Actor("grid_worker", "本网格员", grid_codes=frozenset({"320213001001001"}))
    assert act(engine, workflow, case, "verify_pass", insider, at).state == "verified"
    with pytest.raises(InvalidInput, match="before the case's last event"):
        act(engine, workflow, case, "close", CENTRE["shift_leader"], at - timedelta(hours=1))


def test_rework_return_and_overdue(world):
    engine, workflow, departments = world
    case = new_case(engine, workflow)
    case, at = run_to(engine, workflow, departments, case, "feedback")
    case = act(engine, workflow, case, "verify_fail", CENTRE["supervisor"], at, note="未清理干净")
    assert case.state == "handling" and case.rework_count == 1
    late = datetime(2019, 5, 14, 9, 0, tzinfo=CST)  # after Monday 10:30
    case = act(engine, workflow, case, "return", handler(departments), late, note="非本部门")
    assert case.state == "filed" and case.handler_id is None
    with engine.connect() as conn:
        overdue = conn.execute(text(
            "SELECT action, overdue FROM case_event WHERE case_id = :id ORDER BY seq"),
            {"id": case.id}).all()
        returns = conn.execute(text("SELECT return_count FROM case_file WHERE id = :id"),
                               {"id": case.id}).scalar()
    assert overdue[-1] == ("return", True) and overdue[-2] == ("verify_fail", False)
    assert returns == 1


def test_suspension_pauses_the_clock(world):
    engine, workflow, departments = world
    case = new_case(engine, workflow)
    case, at = run_to(engine, workflow, departments, case, "sign")
    before = case.node_due_at
    monday = datetime(2019, 5, 13, 8, 30, tzinfo=CST)
    case = act(engine, workflow, case, "suspend", CENTRE["shift_leader"], at, note="等待产权单位")
    assert case.state == "suspended" and case.node_due_at is None
    case = act(engine, workflow, case, "resume", CENTRE["shift_leader"], monday)
    assert case.state == "handling"
    # suspended Friday 16:40 → Monday 08:30: 50 working minutes paused
    assert case.node_due_at == before + timedelta(minutes=50)


def test_extension_request_and_approval(world):
    engine, workflow, departments = world
    case = new_case(engine, workflow)
    case, at = run_to(engine, workflow, departments, case, "sign")
    before = case.node_due_at
    with pytest.raises(WorkflowError, match="no extension"):
        act(engine, workflow, case, "approve_extension", CENTRE["shift_leader"], at)
    with pytest.raises(InvalidInput, match="work_hours"):
        act(engine, workflow, case, "request_extension", handler(departments), at,
             note="需协调")
    act(engine, workflow, case, "request_extension", handler(departments), at, note="需协调",
         work_hours=4)
    with pytest.raises(WorkflowError, match="already waiting"):
        act(engine, workflow, case, "request_extension", handler(departments), at,
             note="再延", work_hours=4)
    case = act(engine, workflow, case, "approve_extension", CENTRE["shift_leader"], at)
    assert case.node_due_at == datetime(2019, 5, 13, 16, 0, tzinfo=CST)  # 10:30 + 4 work h
    assert case.node_due_at > before


def test_fallback_queue_copy_to_duplicate_and_void(world):
    engine, workflow, departments = world
    orphan = new_case(engine, workflow, class_code="E0603")
    orphan, _ = run_to(engine, workflow, departments, orphan, "dispatch")
    assert orphan.handler_id == departments["command_centre"]
    first = new_case(engine, workflow)
    second = new_case(engine, workflow)
    with pytest.raises(InvalidInput, match="duplicate_of"):
        act(engine, workflow, second, "mark_duplicate", CENTRE["acceptor"], FRIDAY)
    dup = act(engine, workflow, second, "mark_duplicate", CENTRE["acceptor"], FRIDAY,
               duplicate_of=first.id)
    assert dup.state == "duplicate"
    act(engine, workflow, first, "copy_to", CENTRE["dispatcher"], FRIDAY,
         department_id=departments["msb"], reason="涉及食品经营")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM case_copy WHERE case_id = :id"),
                            {"id": first.id}).scalar() == 1
    voided = act(engine, workflow, first, "void", CENTRE["shift_leader"], FRIDAY, note="误报")
    assert voided.state == "void"
    with pytest.raises(WorkflowError):
        act(engine, workflow, first, "accept", CENTRE["acceptor"], FRIDAY)


def test_a_case_needs_an_assigned_incident(world):
    engine, workflow, _ = world
    with engine.begin() as conn:
        outside = report_incident(conn, source="hotline", class_code="E0102",
                                  reported_at=FRIDAY, x=0.5, y=0.5)
        with pytest.raises(InvalidInput, match="outside"):
            workflow.open_case(conn, outside.id, outside.reported_at, CENTRE["acceptor"])
