"""Indicators pinned to a hand-computed fixture: seven cases in May 2019, each with a story.

All cases are 暴露垃圾 (E0102) in area class B: handling deadline 3 working hours after
dispatch, closure deadline 1 working day after filing. Monday 2019-05-06 is a working day.

    case  grid (cell)         story
    A     …001001001 (0,3)    closed on time; the problem recurs (G) → not consolidated
    B     …001001002 (1,3)    handled late (Tue), closed late (Wed)
    C     …001001003 (0,2)    failed verification once, then closed on time
    D     …001001001 (0,3)    not accepted
    E     …001001001 (0,3)    accepted, not filed
    F     …001001004 (1,2)    dispatched, never handled: overdue at the evaluation moment
    G     …001001001 (0,3)    reported 05-20 at A's spot, left waiting
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gis.indicators import change_share, compare_periods, pass_rate, unit_indicators
from gis.periods import parse_period
from gis.workflow import Actor
from tests.casekit import handler, new_case

CST = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2019, 5, 6, 9, 0, tzinfo=CST)
AS_OF = datetime(2019, 6, 15, tzinfo=CST)
MAY = parse_period("2019-05")

ACC, SHIFT, DISP = Actor("acceptor", "a"), Actor("shift_leader", "s"), Actor("dispatcher", "d")
SUP = Actor("supervisor", "v")


def _steps(engine, workflow, case, steps):
    for action, actor, at, kwargs in steps:
        with engine.begin() as conn:
            workflow.act(conn, case.id, action, actor, at=at, **kwargs)


def _front(day=MONDAY):
    return [("accept", ACC, day + timedelta(minutes=10), {}),
            ("file", SHIFT, day + timedelta(minutes=20), {}),
            ("dispatch", DISP, day + timedelta(minutes=30), {})]


@pytest.fixture
def may(world):
    engine, workflow, departments = world
    crew = handler(departments)
    note = {"note": "ok"}

    def at(h, m=0, day=0):
        return MONDAY.replace(hour=h, minute=m) + timedelta(days=day)

    a = new_case(engine, workflow, at=MONDAY, cell=(0, 3))
    _steps(engine, workflow, a, [*_front(), ("sign", crew, at(9, 40), {}),
                                 ("feedback", crew, at(10), note),
                                 ("verify_pass", SUP, at(10, 30), {}),
                                 ("close", SHIFT, at(11), {})])
    b = new_case(engine, workflow, at=MONDAY, cell=(1, 3))
    _steps(engine, workflow, b, [*_front(), ("sign", crew, at(9, 40), {}),
                                 ("feedback", crew, at(11, day=1), note),
                                 ("verify_pass", SUP, at(11, 30, day=1), {}),
                                 ("close", SHIFT, at(10, day=2), {})])
    c = new_case(engine, workflow, at=MONDAY, cell=(0, 2))
    _steps(engine, workflow, c, [*_front(), ("sign", crew, at(9, 40), {}),
                                 ("feedback", crew, at(10), note),
                                 ("verify_fail", SUP, at(10, 30), {"note": "返工"}),
                                 ("feedback", crew, at(11), note),
                                 ("verify_pass", SUP, at(11, 30), {}),
                                 ("close", SHIFT, at(11, 45), {})])
    d = new_case(engine, workflow, at=MONDAY, cell=(0, 3))
    _steps(engine, workflow, d, [("reject", ACC, at(9, 5), {"note": "无效"})])
    e = new_case(engine, workflow, at=MONDAY, cell=(0, 3))
    _steps(engine, workflow, e, [("accept", ACC, at(9, 5), {}),
                                 ("decline_filing", SHIFT, at(9, 10), {"note": "不属实"})])
    f = new_case(engine, workflow, at=MONDAY, cell=(1, 2))
    _steps(engine, workflow, f, _front())
    new_case(engine, workflow, at=datetime(2019, 5, 20, 9, 0, tzinfo=CST), cell=(0, 3))
    return engine


def _district(engine):
    with engine.connect() as conn:
        return unit_indicators(conn, "district", MAY, as_of=AS_OF).iloc[0]


def test_district_counts(may):
    row = _district(may)
    expected = {"reports": 7, "cases": 7, "valid_reports": 5, "filed": 4, "due_to_handle": 4,
                "handled": 3, "handled_on_time": 2, "due_to_close": 4, "closed": 3,
                "closed_on_time": 2, "reworked": 1, "overdue": 2, "consolidated": 2}
    assert {k: int(row[k]) for k in expected} == expected


def test_district_rates_and_score(may):
    row = _district(may)
    assert row["filing_rate"] == pytest.approx(4 / 5)
    assert row["handling_rate"] == pytest.approx(3 / 4)
    assert row["on_time_handling_rate"] == pytest.approx(2 / 4)
    assert row["closure_rate"] == pytest.approx(3 / 4)
    assert row["on_time_closure_rate"] == pytest.approx(2 / 4)
    assert row["rework_rate"] == pytest.approx(1 / 3)
    assert row["consolidation_rate"] == pytest.approx(2 / 3)
    score = 100 * (0.4 * 0.5 + 0.2 * 0.75 + 0.2 * 0.5 + 0.2 * (1 - 1 / 3))
    assert row["score"] == pytest.approx(score) and not row["passed"]
    months = 31 / 30.4375
    assert row["occurrence_per_km2_month"] == pytest.approx(4 / row["area_km2"] / months)
    assert row["occurrence_per_grid_month"] == pytest.approx(4 / 16 / months)


def test_grid_and_street_levels(may):
    with may.connect() as conn:
        grids = unit_indicators(conn, "grid", MAY, as_of=AS_OF)
        streets = unit_indicators(conn, "street", MAY, as_of=AS_OF)
    assert len(grids) == 16 and len(streets) == 2
    a_grid = grids.loc["320213001001001"]
    assert (a_grid["reports"], a_grid["valid_reports"], a_grid["filed"], a_grid["closed"]) == (
        4, 2, 1, 1)
    assert a_grid["consolidation_rate"] == 0.0 and a_grid["on_time_closure_rate"] == 1.0
    b_grid = grids.loc["320213001001002"]
    assert b_grid["overdue"] == 1 and b_grid["on_time_closure_rate"] == 0.0
    quiet = grids.loc["320213002002004"]
    assert quiet["cases"] == 0 and math.isnan(quiet["closure_rate"])
    assert quiet["score"] == 100.0 and quiet["passed"]
    assert streets.loc["320213001", "filed"] == 4 and streets.loc["320213002", "filed"] == 0
    assert pass_rate(streets) == 0.5
    # B's grid scores 100·(0.4·0 + 0.2·1 + 0.2·0 + 0.2·1) = 40; F's 100·(0.2·1) = 20 (nothing
    # handled or closed, no rework); C's 100·(0.4 + 0.2 + 0.2 + 0.2·0) = 80, just passing
    assert grids.loc["320213001001003", "score"] == pytest.approx(80.0)
    failing = set(grids.index[~grids["passed"]])
    assert failing == {"320213001001002", "320213001001004"}
    assert pass_rate(grids) == pytest.approx(14 / 16)


def test_evaluation_moment_matters(may):
    # on Monday evening F's closure deadline (Tuesday 09:20) has not passed yet
    with may.connect() as conn:
        early = unit_indicators(conn, "district", MAY,
                                as_of=MONDAY.replace(hour=18)).iloc[0]
    assert early["due_to_close"] == 2  # A and C, closed that day; B and F not yet due
    assert early["overdue"] == 0


def test_period_comparison(may):
    with may.connect() as conn:
        comparison = compare_periods(conn, "grid", parse_period("2019-04"), MAY, as_of=AS_OF)
    row = comparison.loc["320213001001001"]
    assert row["filed_before"] == 0 and row["filed_after"] == 1 and row["filed_change"] == 1
    assert change_share(comparison, "filed", "up") == pytest.approx(4 / 16)
    assert change_share(comparison, "filed", "down") == 0.0


def test_unknown_level(may):
    with may.connect() as conn, pytest.raises(ValueError, match="level"):
        unit_indicators(conn, "province", MAY)
