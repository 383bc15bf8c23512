"""Case counts for operators: per state and per department, overdue and reworked; and the
period the pages show when none is asked for (:func:`default_period`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import Connection, text

from gis.periods import SHANGHAI, Period, parse_period


@dataclass(frozen=True)
class CaseSummary:
    period: str
    total: int
    by_state: dict[str, int]
    by_department: list[dict]
    overdue_open: int
    closed_late: int
    reworked: int
    returned: int

    def to_dict(self) -> dict:
        return asdict(self)


def summarise_cases(conn: Connection, period: Period, now: datetime) -> CaseSummary:
    """Cases reported in ``period``: counts per state, per responsible department, and how many
    are overdue now (open past their node deadline), were closed late, reworked or returned."""
    params = {"start": period.start, "end": period.end, "now": now}
    where = "c.reported_at >= :start AND c.reported_at < :end"
    by_state = dict(conn.execute(text(
        f"SELECT c.state, count(*) FROM case_file c WHERE {where} GROUP BY c.state "
        "ORDER BY count(*) DESC"), params).all())
    departments = [dict(row) for row in conn.execute(text(
        f"""
        SELECT coalesce(d.name, '(not dispatched)') AS department, count(*) AS cases,
               count(*) FILTER (WHERE c.closed_at IS NOT NULL) AS closed,
               count(*) FILTER (WHERE c.closed_at IS NULL AND c.node_due_at < :now) AS overdue,
               count(*) FILTER (WHERE c.rework_count > 0) AS reworked
        FROM case_file c LEFT JOIN department d ON d.id = c.department_id
        WHERE {where} GROUP BY 1 ORDER BY 2 DESC, 1
        """), params).mappings()]
    figures = conn.execute(text(
        f"""
        SELECT count(*) AS total,
               count(*) FILTER (WHERE c.closed_at IS NULL AND c.node_due_at < :now) AS overdue,
               count(*) FILTER (WHERE c.closed_at > c.due_at) AS late,
               count(*) FILTER (WHERE c.rework_count > 0) AS reworked,
               count(*) FILTER (WHERE c.return_count > 0) AS returned
        FROM case_file c WHERE {where}
        """), params).one()
    return CaseSummary(period.label, figures.total, by_state, departments, figures.overdue,
                       figures.late, figures.reworked, figures.returned)


def default_period(conn: Connection, now: datetime | None = None) -> Period:
    """The last complete year with cases; the current year if there is none."""
    now = now or datetime.now(SHANGHAI)
    this_year = parse_period(str(now.year))
    latest = conn.execute(text("SELECT max(reported_at) FROM case_file WHERE reported_at < :s"),
                          {"s": this_year.start}).scalar()
    return parse_period(str(latest.astimezone(SHANGHAI).year)) if latest else this_year
