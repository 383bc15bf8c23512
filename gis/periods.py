"""Reporting periods: a year, a quarter, a month or a custom range of days, in Asia/Shanghai.

``parse_period("2019")``, ``"2019Q2"``, ``"2019-05"`` and ``"2019-01-01..2019-03-31"`` (both ends
included) give a half-open ``[start, end)`` interval of aware datetimes at local midnight.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Period:
    label: str
    start: datetime
    end: datetime  # exclusive

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400

    @property
    def months(self) -> float:
        """Length in months of 30.4375 days (for per-month rates)."""
        return self.days / 30.4375


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=SHANGHAI)


def _month_start(year: int, month: int) -> date:
    return date(year + (month - 1) // 12, (month - 1) % 12 + 1, 1)


def parse_period(text: str) -> Period:
    """Parse a period; raises ValueError with the accepted forms when it cannot."""
    value = text.strip()
    if match := re.fullmatch(r"(\d{4})", value):
        year = int(match[1])
        return Period(value, _midnight(date(year, 1, 1)), _midnight(date(year + 1, 1, 1)))
    if match := re.fullmatch(r"(\d{4})[-]?[Qq]([1-4])", value):
        year, quarter = int(match[1]), int(match[2])
        first = 3 * (quarter - 1) + 1
        return Period(f"{year}Q{quarter}", _midnight(date(year, first, 1)),
                      _midnight(_month_start(year, first + 3)))
    if match := re.fullmatch(r"(\d{4})-(\d{1,2})", value):
        year, month = int(match[1]), int(match[2])
        if 1 <= month <= 12:
            return Period(f"{year}-{month:02d}", _midnight(date(year, month, 1)),
                          _midnight(_month_start(year, month + 1)))
    if match := re.fullmatch(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})", value):
        try:
            first, last = date.fromisoformat(match[1]), date.fromisoformat(match[2])
        except ValueError as exc:
            raise ValueError(f"period {text!r}: {exc}") from None
        if last < first:
            raise ValueError(f"period {text!r}: the end is before the start")
        return Period(value, _midnight(first), _midnight(last + timedelta(days=1)))
    raise ValueError(f"period {text!r}: use 2019, 2019Q2, 2019-05 or 2019-01-01..2019-03-31")


def months_ending(period: Period, count: int = 12) -> list[Period]:
    """The ``count`` calendar months ending with the month of the period's last day, oldest
    first."""
    last = (period.end - timedelta(days=1)).date()
    months = []
    for back in range(count - 1, -1, -1):
        index = last.year * 12 + last.month - 1 - back
        months.append(parse_period(f"{index // 12}-{index % 12 + 1:02d}"))
    return months
