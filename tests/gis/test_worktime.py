"""Working-time deadlines: schedule, holiday calendar, arithmetic and the holiday file itself."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gis.worktime import (
    DEFAULT_HOLIDAYS,
    DEFAULT_SCHEDULE,
    ROUND_THE_CLOCK,
    SHANGHAI,
    WORKTIME_TOML,
    Schedule,
    WorkCalendar,
    default_calendar,
    load_schedules,
    read_holidays,
)

CAL = default_calendar()
FESTIVALS = {"元旦", "春节", "春节(延长)", "清明节", "劳动节", "端午节", "中秋节", "国庆节",
             "国庆节、中秋节"}


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


# -- schedule -----------------------------------------------------------------------------


def test_default_schedule_comes_from_the_toml_file() -> None:
    schedules, default = load_schedules(WORKTIME_TOML)
    assert default == "office"
    assert schedules["office"] == DEFAULT_SCHEDULE
    office = Schedule.parse([("08:30", "12:00"), ("13:30", "17:30")])
    assert office == DEFAULT_SCHEDULE
    assert DEFAULT_SCHEDULE.day_length == timedelta(hours=7, minutes=30)
    assert ROUND_THE_CLOCK.every_day and ROUND_THE_CLOCK.day_length == timedelta(days=1)


@pytest.mark.parametrize(
    "periods",
    [
        [],
        [("12:00", "08:30")],
        [("08:30", "12:00"), ("11:00", "17:30")],
        [("13:30", "17:30"), ("08:30", "12:00")],
        [("08:30", "24:30")],
        [("8h30", "12:00")],
        [("08:30",)],
    ],
)
def test_bad_schedules_are_rejected(periods: list[tuple[str, ...]]) -> None:
    with pytest.raises(ValueError):
        Schedule.parse(periods)


def test_schedule_overridden_in_code() -> None:
    summer = CAL.with_schedule(Schedule.parse([("08:00", "12:00"), ("14:00", "18:00")]))
    assert summer.add(at(2019, 7, 1, 11), 2, "work_hours") == at(2019, 7, 1, 15)
    assert summer.holidays == CAL.holidays


# -- working days -------------------------------------------------------------------------


def test_holidays_and_make_up_workdays() -> None:
    assert not CAL.is_workday(date(2019, 5, 1))  # 劳动节 May 1–4 (adjusted notice)
    assert not CAL.is_workday(date(2019, 5, 3))
    assert CAL.is_workday(date(2019, 4, 28))  # Sunday worked
    assert CAL.is_workday(date(2019, 5, 5))  # Sunday worked
    assert not CAL.is_workday(date(2019, 10, 7))  # 国庆 Monday off
    assert CAL.is_workday(date(2019, 9, 29)) and CAL.is_workday(date(2019, 10, 12))
    assert not CAL.is_workday(date(2019, 10, 13))  # plain Sunday
    assert CAL.is_workday(date(2019, 10, 8))  # plain Tuesday
    assert not CAL.is_workday(date(2020, 1, 31))  # 春节 extended
    assert not CAL.is_workday(date(2020, 2, 1))  # make-up Saturday cancelled
    assert CAL.is_workday(date(2020, 2, 3))


def test_is_workday_takes_aware_datetimes_at_their_shanghai_date() -> None:
    # 2019-09-30 17:00 UTC is 1 October 01:00 in Shanghai.
    assert not CAL.is_workday(datetime(2019, 9, 30, 17, tzinfo=UTC))
    assert CAL.is_workday(datetime(2019, 9, 30, 15, tzinfo=UTC))


def test_years_outside_the_calendar_fall_back_to_weekends_and_warn_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calendar = WorkCalendar.from_csv()
    assert calendar.years == {2018, 2019, 2020, 2021}
    with caplog.at_level(logging.WARNING, logger="gis.worktime"):
        assert calendar.is_workday(date(2030, 10, 1))  # a Tuesday: no holiday data
        assert not calendar.is_workday(date(2030, 10, 5))
        assert calendar.add(at(2030, 10, 4, 17), 1, "work_hours") == at(2030, 10, 7, 9)
    warnings = [r for r in caplog.records if "2030" in r.getMessage()]
    assert len(warnings) == 1


def test_round_the_clock_works_every_day() -> None:
    post = CAL.with_schedule(ROUND_THE_CLOCK)
    assert post.is_workday(date(2019, 10, 1))
    assert post.add(at(2019, 10, 5, 23), 2, "work_hours") == at(2019, 10, 6, 1)
    assert post.add(at(2019, 2, 4, 10), 1, "work_days") == at(2019, 2, 5, 10)
    assert post.elapsed(at(2019, 2, 4), at(2019, 2, 11), "work_hours") == 168


# -- add: working hours -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "hours", "due"),
    [
        (at(2019, 3, 4, 11), 2, at(2019, 3, 4, 14, 30)),  # across lunch
        (at(2019, 3, 4, 17), 1, at(2019, 3, 5, 9)),  # across the evening
        (at(2019, 3, 8, 16, 30), 2, at(2019, 3, 11, 9, 30)),  # across the weekend
        (at(2019, 3, 4, 11), 1, at(2019, 3, 4, 12)),  # a period used up ends at its end
        (at(2019, 3, 4, 8, 30), 7.5, at(2019, 3, 4, 17, 30)),
        (at(2019, 3, 4, 8, 30), 0.25, at(2019, 3, 4, 8, 45)),  # fractional
        (at(2019, 3, 4, 11), 1.5, at(2019, 3, 4, 14)),
        (at(2019, 3, 4, 7), 1, at(2019, 3, 4, 9, 30)),  # before work: rolls to 08:30
        (at(2019, 3, 4, 12, 30), 1, at(2019, 3, 4, 14, 30)),  # lunch: rolls to 13:30
        (at(2019, 3, 4, 20), 1, at(2019, 3, 5, 9, 30)),  # evening: rolls to next morning
        (at(2019, 3, 9, 10), 1, at(2019, 3, 11, 9, 30)),  # Saturday: rolls to Monday
        (at(2019, 3, 4, 10), 0, at(2019, 3, 4, 10)),  # zero inside working hours
        (at(2019, 3, 4, 7), 0, at(2019, 3, 4, 8, 30)),  # zero outside: the rolled start
        (at(2019, 3, 4, 12), 0, at(2019, 3, 4, 13, 30)),
        (at(2019, 3, 4, 17, 30), 0, at(2019, 3, 5, 8, 30)),
    ],
)
def test_add_work_hours(start: datetime, hours: float, due: datetime) -> None:
    assert CAL.add(start, hours, "work_hours") == due


def test_spring_festival_2019_skips_the_week_and_works_the_make_up_weekend() -> None:
    # Friday 16:00 + 4 h: 1.5 h on Friday, then Saturday 2 February is worked.
    assert CAL.add(at(2019, 2, 1, 16), 4, "work_hours") == at(2019, 2, 2, 11)
    # Sunday 3 February (worked) 17:00 + 1 h: half an hour, then nothing until 11 February.
    assert CAL.add(at(2019, 2, 3, 17), 1, "work_hours") == at(2019, 2, 11, 9)
    assert CAL.add(at(2019, 2, 5, 10), 0, "work_hours") == at(2019, 2, 11, 8, 30)


def test_national_day_2019_week_with_make_up_days() -> None:
    # Friday 27 September 17:00 + 1 h: Saturday off, Sunday 29 September worked.
    assert CAL.add(at(2019, 9, 27, 17), 1, "work_hours") == at(2019, 9, 29, 9)
    # Monday 30 September 17:00 + 1 h: 1–7 October off.
    assert CAL.add(at(2019, 9, 30, 17), 1, "work_hours") == at(2019, 10, 8, 9)
    # Friday 11 October 17:00 + 1 h: Saturday 12 October is worked.
    assert CAL.add(at(2019, 10, 11, 17), 1, "work_hours") == at(2019, 10, 12, 9)


# -- add: working days and plain units ----------------------------------------------------


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        (at(2019, 3, 8, 10), 2, at(2019, 3, 12, 10)),  # Friday 10:00 -> Tuesday 10:00
        (at(2019, 3, 8, 18), 1, at(2019, 3, 11, 17, 30)),  # evening: the end of Monday
        (at(2019, 3, 9, 10), 1, at(2019, 3, 11, 17, 30)),  # Saturday: the end of Monday
        (at(2019, 3, 4, 8, 30), 0.5, at(2019, 3, 4, 13, 45)),  # half a day: 3 h 45 min
        (at(2019, 9, 30, 17), 1, at(2019, 10, 8, 17)),
        (at(2019, 9, 30, 17), 5, at(2019, 10, 12, 17)),  # make-up Saturday counts
        (at(2019, 9, 30, 17), 6, at(2019, 10, 14, 17)),
        (at(2019, 9, 2, 9), 20, at(2019, 9, 30, 9)),  # 中秋 off, Sunday 29 Sep worked
        (at(2019, 1, 28, 10), 20, at(2019, 2, 28, 10)),  # across Spring Festival
        (at(2019, 3, 4, 10), 0, at(2019, 3, 4, 10)),
    ],
)
def test_add_work_days(start: datetime, days: float, due: datetime) -> None:
    assert CAL.add(start, days, "work_days") == due


def test_plain_hours_and_days_ignore_the_calendar() -> None:
    assert CAL.add(at(2019, 10, 1, 10), 5, "hours") == at(2019, 10, 1, 15)
    assert CAL.add(at(2019, 10, 1, 10), 2, "days") == at(2019, 10, 3, 10)


def test_results_are_aware_in_shanghai_whatever_the_input_zone() -> None:
    due = CAL.add(datetime(2019, 3, 4, 3, tzinfo=UTC), 2, "work_hours")  # 11:00 local
    assert due == at(2019, 3, 4, 14, 30)
    assert due.tzinfo == SHANGHAI


@pytest.mark.parametrize("amount", [-1, float("nan"), float("inf")])
def test_bad_amounts_are_rejected(amount: float) -> None:
    with pytest.raises(ValueError):
        CAL.add(at(2019, 3, 4, 10), amount, "work_hours")


def test_unknown_units_are_rejected() -> None:
    with pytest.raises(ValueError, match="unit"):
        CAL.add(at(2019, 3, 4, 10), 1, "minutes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unit"):
        CAL.elapsed(at(2019, 3, 4, 10), at(2019, 3, 4, 11), "weeks")  # type: ignore[arg-type]


def test_naive_datetimes_are_rejected() -> None:
    naive, aware = datetime(2019, 3, 4, 10), at(2019, 3, 4, 10)
    with pytest.raises(ValueError, match="naive"):
        CAL.add(naive, 1, "work_hours")
    with pytest.raises(ValueError, match="naive"):
        CAL.add(naive, 1, "hours")
    with pytest.raises(ValueError, match="naive"):
        CAL.elapsed(aware, naive, "work_hours")
    with pytest.raises(ValueError, match="naive"):
        CAL.overdue(aware, aware, naive)
    with pytest.raises(ValueError, match="naive"):
        CAL.remaining(naive, aware)
    with pytest.raises(ValueError, match="naive"):
        CAL.is_workday(naive)


# -- elapsed, overdue, remaining ----------------------------------------------------------


def test_elapsed_across_national_day() -> None:
    start, end = at(2019, 9, 27, 16), at(2019, 10, 8, 10)
    # Friday 1.5 h + Sunday 29 Sep 7.5 h + Monday 30 Sep 7.5 h + Tuesday 8 Oct 1.5 h.
    assert CAL.elapsed(start, end, "work_hours") == 18
    assert CAL.elapsed(start, end, "work_days") == pytest.approx(2.4)
    assert CAL.elapsed(end, start, "work_hours") == -18
    assert CAL.elapsed(start, end, "hours") == 258
    assert CAL.elapsed(start, end, "days") == pytest.approx(10.75)


def test_elapsed_outside_working_time_is_zero() -> None:
    assert CAL.elapsed(at(2019, 3, 4, 12), at(2019, 3, 4, 13, 30), "work_hours") == 0
    assert CAL.elapsed(at(2019, 10, 1, 9), at(2019, 10, 7, 17), "work_hours") == 0


def test_overdue_and_remaining() -> None:
    start = at(2019, 3, 4, 10)
    due = CAL.add(start, 3, "work_hours")
    assert due == at(2019, 3, 4, 14, 30)
    assert not CAL.overdue(start, due, at(2019, 3, 4, 14, 30))
    assert CAL.overdue(start, due, at(2019, 3, 4, 14, 31))
    assert CAL.remaining(at(2019, 3, 4, 11), due) == timedelta(hours=2)
    assert CAL.remaining(at(2019, 3, 5, 9), due) == -timedelta(hours=3, minutes=30)
    with pytest.raises(ValueError):
        CAL.overdue(due, start, due)


def test_overdue_during_a_break_with_nothing_remaining() -> None:
    start = at(2019, 3, 4, 11)
    due = CAL.add(start, 1, "work_hours")
    assert due == at(2019, 3, 4, 12)
    assert CAL.overdue(start, due, at(2019, 3, 4, 12, 30))
    assert CAL.remaining(at(2019, 3, 4, 12, 30), due) == timedelta(0)


# -- properties ---------------------------------------------------------------------------

starts = st.datetimes(
    min_value=datetime(2018, 1, 1), max_value=datetime(2021, 11, 30),
    timezones=st.sampled_from([SHANGHAI, UTC]),
)


@given(start=starts, hours=st.floats(min_value=0, max_value=400))
def test_elapsed_inverts_add_in_work_hours(start: datetime, hours: float) -> None:
    due = CAL.add(start, hours, "work_hours")
    assert due >= start
    assert CAL.elapsed(start, due, "work_hours") == pytest.approx(hours, abs=1e-9)


@given(start=starts, days=st.floats(min_value=0, max_value=40))
def test_elapsed_inverts_add_in_work_days(start: datetime, days: float) -> None:
    due = CAL.add(start, days, "work_days")
    assert CAL.elapsed(start, due, "work_days") == pytest.approx(days, abs=1e-9)


@given(start=starts, days=st.integers(min_value=1, max_value=30))
def test_whole_work_days_keep_the_clock_time_inside_working_hours(
    start: datetime, days: int
) -> None:
    local = start.astimezone(SHANGHAI)
    moment = local - datetime.combine(local.date(), datetime.min.time(), SHANGHAI)
    inside = CAL.is_workday(local.date()) and any(
        begin <= moment < end for begin, end in DEFAULT_SCHEDULE.periods
    )
    due = CAL.add(start, days, "work_days")
    if inside:
        assert due.time() == local.time()
        assert CAL.is_workday(due.date())
        between = [local.date() + timedelta(n) for n in range(1, (due.date() - local.date()).days)]
        assert sum(CAL.is_workday(d) for d in between) == days - 1


@given(start=starts, end=starts)
def test_add_of_elapsed_reaches_end_without_passing_working_time(
    start: datetime, end: datetime
) -> None:
    if end < start:
        start, end = end, start
    reached = CAL.add(start, CAL.elapsed(start, end, "work_hours"), "work_hours")
    assert abs(CAL.elapsed(reached, end, "work_hours")) < 1e-9


# -- the holiday file ---------------------------------------------------------------------

ROWS = read_holidays(DEFAULT_HOLIDAYS)


def test_holiday_file_is_sorted_with_unique_dates_and_known_names() -> None:
    dates = [row.date for row in ROWS]
    assert dates == sorted(dates)
    assert len(set(dates)) == len(dates)  # so no date is both holiday and workday
    assert {row.name for row in ROWS} <= FESTIVALS
    assert {row.kind for row in ROWS} == {"holiday", "workday"}


def test_workdays_are_weekend_days_and_holiday_periods_hold_weekdays() -> None:
    assert all(r.date.weekday() >= 5 for r in ROWS if r.kind == "workday")
    for period in _holiday_periods():
        assert any(day.weekday() < 5 for day in period)


def test_holiday_periods_are_contiguous_and_each_year_has_every_festival() -> None:
    periods = _holiday_periods()
    for period in periods:
        assert (period[-1] - period[0]).days == len(period) - 1
    for year in (2018, 2019, 2020, 2021):
        names = {ROWS_BY_DATE[p[-1]].name for p in periods if p[-1].year == year}
        assert {"元旦", "春节", "清明节", "劳动节", "端午节"} <= names
        assert {"国庆节", "中秋节"} <= names or "国庆节、中秋节" in names


def test_make_up_workdays_lie_next_to_their_festival() -> None:
    periods = _holiday_periods()
    for row in (r for r in ROWS if r.kind == "workday"):
        own = [p for p in periods if ROWS_BY_DATE[p[0]].name == row.name]
        assert min(_distance(row.date, p) for p in own) <= 7, row


def test_weekday_days_off_balance_make_up_days_plus_statutory_days() -> None:
    """调休 swaps days: weekday holidays - worked weekend days = 11 statutory days a year.

    2020 is two more: the epidemic extension added Friday 31 January and cancelled the
    make-up Saturday 1 February.
    """
    weekday_off = Counter(r.date.year for r in ROWS if r.kind == "holiday" and r.date.weekday() < 5)
    worked = Counter(r.date.year for r in ROWS if r.kind == "workday")
    balance = {year: weekday_off[year] - worked[year] for year in (2018, 2019, 2020, 2021)}
    assert balance == {2018: 11, 2019: 11, 2020: 13, 2021: 11}


def test_official_2019_examples() -> None:
    by_date = ROWS_BY_DATE
    may_day = [by_date[date(2019, 5, d)].kind for d in (1, 2, 3, 4, 5)]
    assert may_day == ["holiday"] * 4 + ["workday"]
    assert by_date[date(2019, 4, 28)].kind == "workday"
    assert all(by_date[date(2019, 10, d)].kind == "holiday" for d in range(1, 8))
    assert by_date[date(2019, 9, 29)].kind == by_date[date(2019, 10, 12)].kind == "workday"
    assert all(by_date[date(2019, 2, d)].kind == "holiday" for d in range(4, 11))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("date,kind,name\n2019-10-01,holiday,国庆节\n2019-10-01,holiday,国庆节\n", "twice"),
        ("date,kind,name\n2019-10-08,workday,国庆节\n", "Saturday or Sunday"),
        ("date,kind,name\n2019-10-01,off,国庆节\n", "kind"),
        ("date,kind,name\n2019-10-01,holiday,\n", "name"),
        ("date,kind,name\n2019/10/01,holiday,国庆节\n", "line 2"),
        ("day,kind,name\n2019-10-01,holiday,国庆节\n", "columns"),
    ],
)
def test_bad_holiday_files_are_rejected(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "holidays.csv"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        read_holidays(path)


def test_constructor_rejects_a_date_both_off_and_worked() -> None:
    with pytest.raises(ValueError, match="both"):
        WorkCalendar(holidays={date(2019, 10, 12)}, workdays={date(2019, 10, 12)})


ROWS_BY_DATE = {row.date: row for row in ROWS}


def _holiday_periods() -> list[list[date]]:
    """Holiday rows grouped into runs of consecutive days with the same name."""
    periods: list[list[date]] = []
    for row in (r for r in ROWS if r.kind == "holiday"):
        last = periods[-1][-1] if periods else None
        if last and row.date - last == timedelta(1) and ROWS_BY_DATE[last].name == row.name:
            periods[-1].append(row.date)
        else:
            periods.append([row.date])
    return periods


def _distance(day: date, period: list[date]) -> int:
    return min(abs((day - period[0]).days), abs((day - period[-1]).days))
