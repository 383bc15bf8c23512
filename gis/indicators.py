"""Performance indicators per management unit and period, computed in PostGIS.

The definitions (see docs/INDICATORS.md for the full text and the reasons):

- Cohort: the cases *reported* in the period, counted against the unit they were filed under
  (by code, so units keep their figures across boundary generations).
- reports: incidents assigned to the unit in the period (every source).
- filing rate = filed / valid reports; valid reports = cases accepted (not rejected, duplicate
  or void at acceptance).
- handling rate = handled (fed back at least once) / due to handle (dispatched);
  on-time handling rate = handled by the handling deadline / due to handle.
- closure rate = closed / due to close; on-time closure rate = closed by the closure deadline /
  due to close. Due to close: filed cases that are closed, or whose closure deadline has passed
  at the evaluation moment (``as_of``: the end of the period, or now if earlier).
- rework rate = reworked (failed verification at least once) / handled.
- overdue: cases closed after their deadline, or still open past it at ``as_of``.
- occurrence rate: filed cases per km² per month and per grid per month.
- unit score (0–100): a weighted sum of on-time closure, closure, on-time handling and
  (1 − rework) rates; a unit with no case due scores 100. A unit passes when its score reaches
  the threshold; pass rate = passing units / all units of the level.
- rectification consolidation rate: closed cases whose problem does not recur (a case of the
  same class reported within ``consolidation_radius_m`` metres in the ``consolidation_days``
  days after closure) / closed cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from gis.periods import SHANGHAI, Period

LEVEL_COLUMN = {"grid": "grid_id", "community": "community_id", "street": "street_id"}
LEVELS = ("district", "street", "community", "grid")

RATES = {
    "filing_rate": ("filed", "valid_reports"),
    "handling_rate": ("handled", "due_to_handle"),
    "on_time_handling_rate": ("handled_on_time", "due_to_handle"),
    "closure_rate": ("closed", "due_to_close"),
    "on_time_closure_rate": ("closed_on_time", "due_to_close"),
    "rework_rate": ("reworked", "handled"),
    "consolidation_rate": ("consolidated", "closed"),
}
COUNTS = ("reports", "cases", "valid_reports", "filed", "due_to_handle", "handled",
          "handled_on_time", "due_to_close", "closed", "closed_on_time", "reworked", "overdue",
          "consolidated")
INDICATORS = (*COUNTS, *RATES, "occurrence_per_km2_month", "occurrence_per_grid_month",
              "score", "passed")


@dataclass(frozen=True)
class IndicatorConfig:
    """Thresholds and weights: local practice, so configuration, never code."""

    pass_threshold: float = 80.0
    weights: dict[str, float] = field(default_factory=lambda: {
        "on_time_closure_rate": 0.4, "closure_rate": 0.2, "on_time_handling_rate": 0.2,
        "rework_rate": 0.2})
    consolidation_days: int = 30
    consolidation_radius_m: float = 50.0


DEFAULT_CONFIG = IndicatorConfig()


def _units(conn: Connection, level: str) -> pd.DataFrame:
    rows = conn.execute(text(
        """
        SELECT u.code, u.name, p.code AS parent_code, u.area_m2 / 1e6 AS area_km2,
               (SELECT count(*) FROM unit g WHERE g.generation_id = u.generation_id
                  AND g.level = 'grid' AND left(g.code, length(u.code)) = u.code) AS grids
        FROM unit u JOIN generation gen ON gen.id = u.generation_id AND gen.active
        LEFT JOIN unit p ON p.id = u.parent_id
        WHERE u.level = :level ORDER BY u.code
        """), {"level": level}).mappings().all()
    if not rows:
        raise LookupError("no generation is active; run `gridgov boundaries load`")
    return pd.DataFrame(rows).set_index("code")


def _group_key(level: str, alias: str) -> tuple[str, str]:
    """SQL joining the cohort to the unit it counts for, and the expression of its code."""
    if level == "district":
        return "", "'district'"
    return f"JOIN unit lu ON lu.id = {alias}.{LEVEL_COLUMN[level]}", "lu.code"


def _case_counts(conn: Connection, level: str, period: Period, as_of: datetime,
                 config: IndicatorConfig) -> pd.DataFrame:
    join, key = _group_key(level, "c")
    sql = f"""
        SELECT {key} AS code,
          count(*) AS cases,
          count(*) FILTER (WHERE c.accepted_at IS NOT NULL) AS valid_reports,
          count(*) FILTER (WHERE c.filed_at IS NOT NULL) AS filed,
          count(*) FILTER (WHERE c.dispatched_at IS NOT NULL AND c.dispatched_at < :as_of)
            AS due_to_handle,
          count(*) FILTER (WHERE c.handled_at IS NOT NULL AND c.handled_at < :as_of) AS handled,
          count(*) FILTER (WHERE c.handled_at < :as_of AND c.handled_at <= c.handle_due_at)
            AS handled_on_time,
          count(*) FILTER (WHERE c.filed_at IS NOT NULL
                           AND (c.closed_at < :as_of OR c.due_at < :as_of)) AS due_to_close,
          count(*) FILTER (WHERE c.closed_at < :as_of) AS closed,
          count(*) FILTER (WHERE c.closed_at < :as_of AND c.closed_at <= c.due_at)
            AS closed_on_time,
          count(*) FILTER (WHERE c.rework_count > 0 AND c.handled_at < :as_of) AS reworked,
          count(*) FILTER (WHERE (c.closed_at < :as_of AND c.closed_at > c.due_at)
                           OR ((c.closed_at IS NULL OR c.closed_at >= :as_of)
                               AND c.due_at < :as_of)) AS overdue,
          count(*) FILTER (WHERE c.closed_at < :as_of AND NOT EXISTS (
              SELECT 1 FROM case_file r
              JOIN incident ri ON ri.id = r.incident_id
                              AND ri.reported_at = r.incident_reported_at
              WHERE r.class_code = c.class_code AND r.id <> c.id
                AND r.reported_at > c.closed_at
                AND r.reported_at <= c.closed_at + make_interval(days => :days)
                AND r.state NOT IN ('not_accepted', 'duplicate', 'void')
                AND ri.geom && ST_Expand(i.geom, :radius / 90000.0)
                AND ST_DWithin(ri.geom::geography, i.geom::geography, :radius))) AS consolidated
        FROM case_file c
        JOIN incident i ON i.id = c.incident_id AND i.reported_at = c.incident_reported_at
        {join}
        WHERE c.reported_at >= :start AND c.reported_at < :end
        GROUP BY 1
    """
    params = {"start": period.start, "end": period.end, "as_of": as_of,
              "days": config.consolidation_days, "radius": config.consolidation_radius_m}
    frame = pd.DataFrame(conn.execute(text(sql), params).mappings().all())
    return frame.set_index("code") if not frame.empty else pd.DataFrame(
        columns=[c for c in COUNTS if c != "reports"])


def _report_counts(conn: Connection, level: str, period: Period) -> pd.Series:
    join, key = _group_key(level, "i")
    rows = conn.execute(text(
        f"""SELECT {key} AS code, count(*) FROM incident i {join}
            WHERE i.location_status = 'assigned'
              AND i.reported_at >= :start AND i.reported_at < :end GROUP BY 1"""),
        {"start": period.start, "end": period.end}).all()
    return pd.Series(dict(rows), dtype="int64", name="reports")


def unit_indicators(conn: Connection, level: str, period: Period, *,
                    as_of: datetime | None = None,
                    config: IndicatorConfig = DEFAULT_CONFIG) -> pd.DataFrame:
    """Every indicator for every unit of ``level`` in the active generation, one row each
    (units without a case included, with zero counts and empty rates)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}")
    as_of = min(as_of or datetime.now(SHANGHAI), period.end)
    units = _units(conn, level)
    if level == "district":
        units.index = pd.Index(["district"] * len(units), name="code")
        units = units.assign(unit_code=_units(conn, level).index)
    counts = _case_counts(conn, level, period, as_of, config)
    frame = units.join(counts, how="left").join(_report_counts(conn, level, period), how="left")
    for column in COUNTS:
        frame[column] = frame[column].fillna(0).astype("int64") if column in frame else 0
    for rate, (numerator, denominator) in RATES.items():
        frame[rate] = _ratio(frame[numerator], frame[denominator])
    months = period.months
    frame["occurrence_per_km2_month"] = frame["filed"] / frame["area_km2"] / months
    frame["occurrence_per_grid_month"] = frame["filed"] / frame["grids"].clip(lower=1) / months
    frame["score"] = _score(frame, config)
    frame["passed"] = frame["score"] >= config.pass_threshold
    if level == "district":
        frame.index = frame.pop("unit_code")
        frame.index.name = "code"
    return frame


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    return (numerator / denominator.where(denominator > 0)).astype("float64")


def _score(frame: pd.DataFrame, config: IndicatorConfig) -> pd.Series:
    """Weighted rates; an empty rate (nothing due) counts as fully met. Rework counts inverted."""
    total = pd.Series(0.0, index=frame.index)
    for rate, weight in config.weights.items():
        values = frame[rate].fillna(0.0 if rate == "rework_rate" else 1.0)
        total += weight * (1.0 - values if rate == "rework_rate" else values)
    return 100.0 * total / sum(config.weights.values())


def pass_rate(frame: pd.DataFrame) -> float:
    """Passing units / all units."""
    return float(frame["passed"].mean()) if len(frame) else float("nan")


def compare_periods(conn: Connection, level: str, before: Period, after: Period, *,
                    as_of: datetime | None = None,
                    config: IndicatorConfig = DEFAULT_CONFIG) -> pd.DataFrame:
    """Each indicator in two periods per unit, with the change (after − before)."""
    a = unit_indicators(conn, level, before, as_of=as_of, config=config)
    b = unit_indicators(conn, level, after, as_of=as_of, config=config)
    numeric = [c for c in INDICATORS if c != "passed"]
    out = a[["name", "parent_code"]].copy()
    for column in numeric:
        out[f"{column}_before"] = a[column]
        out[f"{column}_after"] = b[column]
        out[f"{column}_change"] = b[column] - a[column]
    out["passed_before"], out["passed_after"] = a["passed"], b["passed"]
    return out


def change_share(comparison: pd.DataFrame, indicator: str, direction: str = "down") -> float:
    """Share of units whose indicator went down (or up) between the two periods."""
    change = comparison[f"{indicator}_change"].to_numpy(dtype=float)
    known = ~np.isnan(change)
    if not known.any():
        return float("nan")
    moved = change[known] < 0 if direction == "down" else change[known] > 0
    return float(moved.mean())
