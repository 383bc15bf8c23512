"""Performance indicators per management unit and period, computed in PostGIS.

The definitions (see docs/INDICATORS.md for the full text and the reasons):

- Cohort: the cases *reported* in the period, counted against the grid they were filed under
  and rolled up to coarser units by code prefix (so units keep their figures across boundary
  generations, and one pass over the cases serves every level).
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
    """The active generation's units of a level, with their area and number of grids."""
    rows = conn.execute(text(
        """
        SELECT u.code, u.name, p.code AS parent_code, u.area_m2 / 1e6 AS area_km2
        FROM unit u JOIN generation gen ON gen.id = u.generation_id AND gen.active
        LEFT JOIN unit p ON p.id = u.parent_id
        WHERE u.level = :level ORDER BY u.code
        """), {"level": level}).mappings().all()
    if not rows:
        raise LookupError("no generation is active; run `gridgov boundaries load`")
    units = pd.DataFrame(rows).set_index("code")
    grid_codes = pd.Index(conn.execute(text(
        """SELECT u.code FROM unit u JOIN generation gen ON gen.id = u.generation_id
           AND gen.active WHERE u.level = 'grid'""")).scalars().all())
    prefix = _prefix_length(units.index)
    units["grids"] = grid_codes.str[:prefix].value_counts().reindex(units.index, fill_value=0)
    return units


def _prefix_length(codes: pd.Index) -> int:
    """Codes of one level share a length (validated on import), and a unit's code is the
    prefix of every grid code below it: 6 for the district, 9 street, 12 community."""
    return int(codes.str.len().min())


def _grid_case_counts(conn: Connection, period: Period, as_of: datetime,
                      config: IndicatorConfig) -> pd.DataFrame:
    """Every count of the cohort per grid code. All counts add up over grids (each case has
    exactly one grid), so coarser levels are sums over code prefixes."""
    sql = """
        SELECT lu.code AS code,
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
        JOIN unit lu ON lu.id = c.grid_id
        WHERE c.reported_at >= :start AND c.reported_at < :end
        GROUP BY 1
    """
    params = {"start": period.start, "end": period.end, "as_of": as_of,
              "days": config.consolidation_days, "radius": config.consolidation_radius_m}
    rows = conn.execute(text(sql), params).mappings().all()
    columns = [c for c in COUNTS if c != "reports"]
    return pd.DataFrame(rows, columns=["code", *columns]).set_index("code")


def _grid_report_counts(conn: Connection, period: Period) -> pd.Series:
    rows = conn.execute(text(
        """SELECT g.code, count(*) FROM incident i JOIN unit g ON g.id = i.grid_id
           WHERE i.location_status = 'assigned'
             AND i.reported_at >= :start AND i.reported_at < :end GROUP BY 1"""),
        {"start": period.start, "end": period.end}).all()
    return pd.Series(dict(rows), dtype="int64", name="reports")


@dataclass(frozen=True)
class _GridCounts:
    cases: pd.DataFrame
    reports: pd.Series

    def rolled_up(self, prefix: int) -> pd.DataFrame:
        cases = self.cases.groupby(self.cases.index.astype(str).str[:prefix]).sum()
        reports = self.reports.groupby(self.reports.index.astype(str).str[:prefix]).sum()
        return cases.join(reports, how="outer")


def _grid_counts(conn: Connection, period: Period, as_of: datetime,
                 config: IndicatorConfig) -> _GridCounts:
    return _GridCounts(_grid_case_counts(conn, period, as_of, config),
                       _grid_report_counts(conn, period))


def unit_indicators(conn: Connection, level: str, period: Period, *,
                    as_of: datetime | None = None,
                    config: IndicatorConfig = DEFAULT_CONFIG) -> pd.DataFrame:
    """Every indicator for every unit of ``level`` in the active generation, one row each
    (units without a case included, with zero counts and empty rates)."""
    return all_levels(conn, period, as_of=as_of, config=config, levels=(level,))[level]


def all_levels(conn: Connection, period: Period, *, as_of: datetime | None = None,
               config: IndicatorConfig = DEFAULT_CONFIG,
               levels: tuple[str, ...] = LEVELS) -> dict[str, pd.DataFrame]:
    """:func:`unit_indicators` for several levels from one pass over the cases."""
    for level in levels:
        if level not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}")
    as_of = min(as_of or datetime.now(SHANGHAI), period.end)
    counts = _grid_counts(conn, period, as_of, config)
    return {level: _finish(_units(conn, level), counts, period, config) for level in levels}


def _finish(units: pd.DataFrame, counts: _GridCounts, period: Period,
            config: IndicatorConfig) -> pd.DataFrame:
    frame = units.join(counts.rolled_up(_prefix_length(units.index)), how="left")
    for column in COUNTS:
        frame[column] = frame[column].fillna(0).astype("int64") if column in frame else 0
    for rate, (numerator, denominator) in RATES.items():
        frame[rate] = _ratio(frame[numerator], frame[denominator])
    months = period.months
    frame["occurrence_per_km2_month"] = frame["filed"] / frame["area_km2"] / months
    frame["occurrence_per_grid_month"] = frame["filed"] / frame["grids"].clip(lower=1) / months
    frame["score"] = _score(frame, config)
    frame["passed"] = frame["score"] >= config.pass_threshold
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
    return compare_levels(conn, before, after, as_of=as_of, config=config,
                          levels=(level,))[level]


def compare_levels(conn: Connection, before: Period, after: Period, *,
                   as_of: datetime | None = None, config: IndicatorConfig = DEFAULT_CONFIG,
                   levels: tuple[str, ...] = LEVELS) -> dict[str, pd.DataFrame]:
    """:func:`compare_periods` for several levels from one pass per period."""
    a = all_levels(conn, before, as_of=as_of, config=config, levels=levels)
    b = all_levels(conn, after, as_of=as_of, config=config, levels=levels)
    return {level: _comparison(a[level], b[level]) for level in levels}


def _comparison(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
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
