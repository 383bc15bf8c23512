"""Working-time arithmetic for case deadlines: working hours and days, China holiday calendar.

Deadlines (DOMAIN.md §4–§5) are counted in working hours or working days. A day is a *working
day* when it is a weekday that is not a holiday, or a weekend day declared worked (调休上班).
Inside a working day only the schedule's periods count (default 08:30–12:00 and 13:30–17:30,
from ``data/catalogues/worktime.toml``); a round-the-clock schedule works every minute of every
day. All arithmetic runs on Asia/Shanghai wall-clock time (no DST since 1991); every datetime
passed in must be timezone-aware (naive ones raise ``ValueError``) and every result is aware in
Asia/Shanghai.

Rules:

- Working time is the set of half-open intervals ``[period start, period end)`` of working days.
- ``add(start, n, "work_hours")`` is the earliest instant at which *n* hours of working time have
  elapsed since *start*. A start outside working time therefore rolls to the next period's start
  (``n = 0`` returns that rolled start), and a deadline that uses up a period exactly is that
  period's end (11:00 + 1 h is 12:00, not 13:30).
- ``add(start, n, "work_days")`` is ``n`` times the working-day length in working hours. For a
  start inside working time this is the same clock time *n* working days later (Friday 10:00 +
  2 days = Tuesday 10:00); a start outside working time rolls first, and since the earliest
  instant wins, Friday 18:00 + 1 day is Monday 17:30 (the end of Monday), not Tuesday 08:30.
  Fractional days are fractions of the day length (0.5 day = 3 h 45 min by default).
- ``"hours"`` and ``"days"`` are plain elapsed time (calendar hours and days).
- ``elapsed(a, b, unit)`` measures the same units between two instants; it is the inverse of
  ``add`` (``elapsed(s, add(s, n, u), u) == n``) and negative when ``b`` is before ``a``.
- ``overdue(start, due, now)`` is ``now > due`` in real time; ``remaining(now, due)`` is the signed
  working time left (negative once overdue). Between a deadline at a period end and the next
  period's start a case is already overdue while ``remaining`` is still zero.
- Years the holiday file does not cover fall back to plain Monday–Friday weeks and log a warning
  once per year and calendar: a command centre would rather see a warning than a crash.

The holiday file ``data/catalogues/holidays.csv`` has columns ``date,kind,name``:

- ``holiday``: every day of an announced holiday period (放假调休), weekend days included; where a
  notice says "与周末连休" the period includes that adjoining weekend.
- ``workday``: a Saturday or Sunday declared a working day (调休上班); never a weekday.
- A year is covered when its 1 January is listed (元旦 is always off).

Its dates are those of the State Council General Office notices (国务院办公厅关于…年部分节假日
安排的通知), checked against their published texts:

- 2018: 国办发明电〔2017〕12号 (2017-11-30).
- 2019: 国办发明电〔2018〕15号 (2018-12-04), with 劳动节 changed by 国办发明电〔2019〕3号
  (2019-03-22: May 1–4 off, Apr 28 and May 5 worked).
- 2020: 国办发明电〔2019〕16号 (2019-11-21), with 春节 extended to Feb 2 by 国办发明电〔2020〕1号
  (2020-01-27), which also cancels the Feb 1 make-up Saturday. Jiangsu's later delay for
  enterprises (not before Feb 9) did not apply to government offices and is not included.
- 2021: 国办发明电〔2020〕27号 (2020-11-25).
"""

from __future__ import annotations

import csv
import logging
import math
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal, NamedTuple, cast, get_args
from zoneinfo import ZoneInfo

from gis.config import DATA_DIR

log = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEFAULT_HOLIDAYS = DATA_DIR / "catalogues" / "holidays.csv"
WORKTIME_TOML = DATA_DIR / "catalogues" / "worktime.toml"
HOLIDAY_FIELDS = ("date", "kind", "name")

Unit = Literal["work_hours", "work_days", "hours", "days"]
UNITS: tuple[str, ...] = get_args(Unit)
Kind = Literal["holiday", "workday"]

_DAY = timedelta(days=1)
_HOUR = timedelta(hours=1)
_SATURDAY = 5


@dataclass(frozen=True)
class Schedule:
    """The working periods of one working day, as offsets from local midnight."""

    periods: tuple[tuple[timedelta, timedelta], ...]
    every_day: bool = False

    def __post_init__(self) -> None:
        if not self.periods:
            raise ValueError("a schedule needs at least one working period")
        previous_end = timedelta(0)
        for begin, end in self.periods:
            if not previous_end <= begin < end <= _DAY:
                raise ValueError(
                    f"working periods must be ordered, disjoint and within one day: {self}"
                )
            previous_end = end

    @classmethod
    def parse(cls, periods: Iterable[Sequence[str]], every_day: bool = False) -> Schedule:
        """A schedule from ``[("08:30", "12:00"), ...]`` wall-clock pairs."""
        parsed = []
        for pair in periods:
            if len(pair) != 2:
                raise ValueError(f"a working period is a (start, end) pair, not {pair!r}")
            parsed.append((_parse_clock(pair[0]), _parse_clock(pair[1])))
        return cls(tuple(parsed), every_day)

    @property
    def day_length(self) -> timedelta:
        """Working time in one working day."""
        return sum((end - begin for begin, end in self.periods), timedelta(0))


def _parse_clock(text: str) -> timedelta:
    """``"HH:MM"`` (``"24:00"`` allowed) as an offset from midnight."""
    try:
        hours, minutes = (int(part) for part in text.split(":"))
    except (AttributeError, ValueError):
        raise ValueError(f"not an HH:MM clock time: {text!r}") from None
    offset = timedelta(hours=hours, minutes=minutes)
    if not (0 <= hours <= 24 and 0 <= minutes < 60 and offset <= _DAY):
        raise ValueError(f"not an HH:MM clock time: {text!r}")
    return offset


def load_schedules(path: Path = WORKTIME_TOML) -> tuple[dict[str, Schedule], str]:
    """The named schedules of a worktime TOML file and the name of its default."""
    with open(path, "rb") as handle:
        config = tomllib.load(handle)
    schedules = {
        name: Schedule.parse(entry["periods"], bool(entry.get("every_day", False)))
        for name, entry in config["schedules"].items()
    }
    default = config.get("default", "office")
    if default not in schedules:
        raise ValueError(f"{path}: default schedule {default!r} is not defined")
    return schedules, default


SCHEDULES, _DEFAULT_NAME = load_schedules()
DEFAULT_SCHEDULE = SCHEDULES[_DEFAULT_NAME]
ROUND_THE_CLOCK = SCHEDULES["round_the_clock"]


class HolidayRow(NamedTuple):
    date: date
    kind: Kind
    name: str


def read_holidays(path: Path = DEFAULT_HOLIDAYS) -> list[HolidayRow]:
    """Read and check the holiday file; a bad row raises ValueError naming its line."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != HOLIDAY_FIELDS:
            raise ValueError(f"{path}: columns must be {','.join(HOLIDAY_FIELDS)}")
        rows: list[HolidayRow] = []
        seen: set[date] = set()
        for number, raw in enumerate(reader, start=2):
            try:
                row = _holiday_row(raw)
            except ValueError as exc:
                raise ValueError(f"{path} line {number}: {exc}") from None
            if row.date in seen:
                raise ValueError(f"{path} line {number}: {row.date} is listed twice")
            seen.add(row.date)
            rows.append(row)
    return rows


def _holiday_row(raw: Mapping[str, str | None]) -> HolidayRow:
    day = date.fromisoformat((raw["date"] or "").strip())
    kind = (raw["kind"] or "").strip()
    name = (raw["name"] or "").strip()
    if kind not in get_args(Kind):
        raise ValueError(f"kind must be holiday or workday, not {kind!r}")
    if kind == "workday" and day.weekday() < _SATURDAY:
        raise ValueError(f"workday {day} is not a Saturday or Sunday")
    if not name:
        raise ValueError("name is empty")
    return HolidayRow(day, cast(Kind, kind), name)


class WorkCalendar:
    """Working days (holiday calendar) and working hours (schedule) for deadline arithmetic.

    *holidays* are days off and *workdays* weekend days worked, as in the holiday file. *years*
    are the years those cover; by default those whose 1 January is a holiday. Other years fall
    back to Monday–Friday weeks with one warning per year.
    """

    def __init__(
        self,
        holidays: Iterable[date] = (),
        workdays: Iterable[date] = (),
        schedule: Schedule = DEFAULT_SCHEDULE,
        years: Iterable[int] | None = None,
    ) -> None:
        self.holidays = frozenset(holidays)
        self.workdays = frozenset(workdays)
        both = self.holidays & self.workdays
        if both:
            raise ValueError(f"dates both holiday and workday: {sorted(both)}")
        self.schedule = schedule
        if years is None:
            years = (d.year for d in self.holidays if (d.month, d.day) == (1, 1))
        self.years = frozenset(years)
        self._warned: set[int] = set()

    @classmethod
    def from_csv(
        cls, path: Path = DEFAULT_HOLIDAYS, schedule: Schedule = DEFAULT_SCHEDULE
    ) -> WorkCalendar:
        """A calendar from a ``date,kind,name`` holiday file."""
        rows = read_holidays(path)
        return cls(
            holidays=frozenset(r.date for r in rows if r.kind == "holiday"),
            workdays=frozenset(r.date for r in rows if r.kind == "workday"),
            schedule=schedule,
        )

    def with_schedule(self, schedule: Schedule) -> WorkCalendar:
        """The same holidays under another schedule."""
        return WorkCalendar(self.holidays, self.workdays, schedule, self.years)

    # -- days ------------------------------------------------------------------------------

    def is_workday(self, day: date) -> bool:
        """Whether *day* is worked (an aware datetime is taken at its Shanghai date)."""
        if isinstance(day, datetime):
            day = _local(day).date()
        if self.schedule.every_day:
            return True
        self._check_covered(day.year)
        if day in self.workdays:
            return True
        return day not in self.holidays and day.weekday() < _SATURDAY

    def _check_covered(self, year: int) -> None:
        if year in self.years or year in self._warned:
            return
        self._warned.add(year)
        log.warning(
            "no holiday calendar for %d: counting Monday-Friday as working days", year
        )

    # -- deadlines -------------------------------------------------------------------------

    def add(self, start: datetime, amount: float, unit: Unit) -> datetime:
        """The deadline *amount* *unit* after *start* (see the module docstring for the rules)."""
        local = _local(start)
        _check_amount(amount)
        if unit == "hours":
            return _aware(local + timedelta(hours=amount))
        if unit == "days":
            return _aware(local + timedelta(days=amount))
        if unit == "work_hours":
            return _aware(self._add_work(local, timedelta(hours=amount)))
        if unit == "work_days":
            return _aware(self._add_work(local, self.schedule.day_length * amount))
        raise _unknown_unit(unit)

    def elapsed(self, start: datetime, end: datetime, unit: Unit) -> float:
        """Time from *start* to *end* in *unit*; negative when *end* is earlier."""
        begin, finish = _local(start), _local(end)
        if unit == "hours":
            return (finish - begin) / _HOUR
        if unit == "days":
            return (finish - begin) / _DAY
        if unit == "work_hours":
            return self._signed_work(begin, finish) / _HOUR
        if unit == "work_days":
            return self._signed_work(begin, finish) / self.schedule.day_length
        raise _unknown_unit(unit)

    def overdue(self, start: datetime, due: datetime, now: datetime) -> bool:
        """Whether *now* is past *due* (a deadline set from *start*)."""
        if _local(due) < _local(start):
            raise ValueError(f"deadline {due} is before its start {start}")
        return _local(now) > _local(due)

    def remaining(self, now: datetime, due: datetime) -> timedelta:
        """Working time left from *now* until *due*; negative once overdue."""
        return self._signed_work(_local(now), _local(due))

    # -- working periods -------------------------------------------------------------------

    def _periods_from(self, moment: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working periods (naive local) that end after *moment*, in order, without end."""
        day = datetime.combine(moment.date(), datetime.min.time())
        while True:
            if self.is_workday(day.date()):
                for begin, end in self.schedule.periods:
                    if day + end > moment:
                        yield day + begin, day + end
            day += _DAY

    def _add_work(self, moment: datetime, budget: timedelta) -> datetime:
        for begin, end in self._periods_from(moment):
            begin = max(begin, moment)
            if budget <= end - begin:
                return begin + budget
            budget -= end - begin
        raise AssertionError("unreachable: working periods never run out")

    def _signed_work(self, begin: datetime, finish: datetime) -> timedelta:
        if finish < begin:
            return -self._work_between(finish, begin)
        return self._work_between(begin, finish)

    def _work_between(self, begin: datetime, finish: datetime) -> timedelta:
        worked = timedelta(0)
        for start, end in self._periods_from(begin):
            if start >= finish:
                break
            worked += min(end, finish) - max(start, begin)
        return worked


@lru_cache(maxsize=1)
def default_calendar() -> WorkCalendar:
    """The shipped holiday calendar under the default schedule (built once)."""
    return WorkCalendar.from_csv()


def _local(moment: datetime) -> datetime:
    """*moment* as naive Asia/Shanghai wall-clock time; naive input raises ValueError."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: pass a timezone-aware one")
    return moment.astimezone(SHANGHAI).replace(tzinfo=None)


def _aware(local: datetime) -> datetime:
    return local.replace(tzinfo=SHANGHAI)


def _check_amount(amount: float) -> None:
    if not math.isfinite(amount) or amount < 0:
        raise ValueError(f"amount must be a finite number >= 0, not {amount!r}")


def _unknown_unit(unit: object) -> ValueError:
    return ValueError(f"unit must be one of {', '.join(UNITS)}, not {unit!r}")
