"""Periods, the case summary and duplicate suggestion."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gis.case_summary import default_period, summarise_cases
from gis.duplicates import radius_for, suggest_duplicates
from gis.periods import parse_period
from gis.workflow import Actor
from tests.casekit import CENTRE, FRIDAY, act, new_case, run_to
from tests.factories import lattice

CST = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(("text", "start", "end"), [
    ("2019", (2019, 1, 1), (2020, 1, 1)),
    ("2019Q4", (2019, 10, 1), (2020, 1, 1)),
    ("2019-q2", (2019, 4, 1), (2019, 7, 1)),
    ("2019-12", (2019, 12, 1), (2020, 1, 1)),
    ("2019-02-27..2019-03-01", (2019, 2, 27), (2019, 3, 2)),
])
def test_periods(text, start, end):
    period = parse_period(text)
    assert period.start == datetime(*start, tzinfo=CST)
    assert period.end == datetime(*end, tzinfo=CST)


@pytest.mark.parametrize("text", ["19", "2019Q5", "2019-13", "2019-03-01..2019-02-01", "soon"])
def test_bad_periods(text):
    with pytest.raises(ValueError, match="period"):
        parse_period(text)


def test_summary_counts_states_departments_overdue_and_rework(world):
    engine, workflow, departments = world
    closed = new_case(engine, workflow)
    run_to(engine, workflow, departments, closed, "close")
    reworked = new_case(engine, workflow)
    reworked, at = run_to(engine, workflow, departments, reworked, "feedback")
    act(engine, workflow, reworked, "verify_fail", CENTRE["supervisor"], at, note="返工")
    new_case(engine, workflow)  # left reported
    late_now = FRIDAY + timedelta(days=10)
    with engine.connect() as conn:
        summary = summarise_cases(conn, parse_period("2019-05"), late_now)
        empty = summarise_cases(conn, parse_period("2018"), late_now)
    assert summary.total == 3 and empty.total == 0
    assert summary.by_state == {"closed": 1, "handling": 1, "reported": 1}
    assert summary.reworked == 1
    assert summary.overdue_open == 2  # the reworked and the reported case, ten days on
    rows = {row["department"]: row for row in summary.by_department}
    assert rows["综合行政执法局"]["cases"] == 2 and rows["(not dispatched)"]["cases"] == 1


def test_default_period_is_the_last_complete_year_with_cases(world):
    engine, workflow, _ = world
    with engine.connect() as conn:  # no cases: the current year
        assert default_period(conn, datetime(2021, 3, 1, tzinfo=CST)).label == "2021"
    new_case(engine, workflow)  # May 2019
    with engine.connect() as conn:
        assert default_period(conn, datetime(2021, 3, 1, tzinfo=CST)).label == "2019"
        assert default_period(conn, datetime(2020, 1, 1, tzinfo=CST)).label == "2019"
        # the running year's cases do not count until the year is over
        assert default_period(conn, datetime(2019, 7, 1, tzinfo=CST)).label == "2019"


def test_duplicate_suggestion_by_class_and_radius(world):
    engine, workflow, _ = world
    first = new_case(engine, workflow)  # E0102 at lattice(0,3) + 0.001°
    x, y = lattice(0, 3)
    with engine.connect() as conn:
        near = suggest_duplicates(conn, "E0102", x + 0.0012, y + 0.001)  # ~19 m away
        far = suggest_duplicates(conn, "E0102", x + 0.003, y + 0.001)  # ~190 m away
        other_class = suggest_duplicates(conn, "E0404", x + 0.001, y + 0.001)
    assert [c.case_id for c in near] == [first.id] and 15 < near[0].distance_m < 25
    assert far == [] and other_class == []
    assert radius_for("C0101") < radius_for("E0102") < radius_for("E0501")
    with engine.begin() as conn:
        workflow.act(conn, first.id, "void", Actor("shift_leader", "s"), at=FRIDAY, note="x")
    with engine.connect() as conn:
        assert suggest_duplicates(conn, "E0102", x + 0.0012, y + 0.001) == []
