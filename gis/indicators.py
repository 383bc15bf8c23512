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

from collections.abc import Sequence
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


@dataclass(frozen=True)
class _GridCounts:
    """Counts by grid code (or by a prefix of it, when rolled up in the database already)."""

    cases: pd.DataFrame
    reports: pd.Series

    def rolled_up(self, units: pd.Index) -> tuple[pd.DataFrame, pd.Series]:
        """The counts of each unit of ``units`` (codes of one level), NaN where none."""
        prefix = _prefix_length(units)
        return (_by_prefix(self.cases, prefix).reindex(units),
                _by_prefix(self.reports, prefix).reindex(units))


def _by_prefix(counts: pd.DataFrame | pd.Series, prefix: int) -> pd.DataFrame | pd.Series:
    codes = counts.index.astype(str)
    if codes.is_unique and (codes.str.len() <= prefix).all():
        return counts  # already one row per code of this length
    return counts.groupby(codes.str[:prefix]).sum()


#: The consolidation search pairs each closed case with the candidate recurrences in the same
#: cells of space (degrees) and time (seconds) before the exact test. A closed case probes
#: every cell its search box overlaps: the box reaches further than the bounding-box test
#: (``radius / 90000`` degrees, plus the float4 rounding of PostGIS boxes, under 4e-5 degrees
#: at any longitude), and covers ``(closed_at, closed_at + days]``, so every pair that passes
#: the exact test is paired. A cell is as wide as the box, so a box overlaps at most 2 x 2
#: cells and 2 time buckets.
def _search_cells(config: IndicatorConfig) -> dict[str, float]:
    reach = abs(config.consolidation_radius_m) / 90000.0 + 1e-4
    return {"reach": reach, "cell": 4.0 * reach,
            "bucket": 2 * 86400.0 * (max(config.consolidation_days, 0) + 1)}


_CASE_COUNTS_SQL = """
    WITH period AS (
        SELECT p.j, p.start_at, p.end_at, p.as_of
        FROM unnest(CAST(:starts AS timestamptz[]), CAST(:ends AS timestamptz[]),
                    CAST(:moments AS timestamptz[]))
             WITH ORDINALITY AS p(start_at, end_at, as_of, j)
    ),
    -- the cohort of every period, under its grid's code cut to the finest level asked for:
    -- a case reported in two of the periods (they may overlap) is there twice, each time
    -- with that period's evaluation moment
    cohort AS MATERIALIZED (
        SELECT p.j, p.as_of, left(lu.code, :prefix) AS code, c.id, c.class_code,
               c.incident_id, c.incident_reported_at, c.accepted_at, c.filed_at,
               c.dispatched_at, c.handled_at, c.handle_due_at, c.closed_at, c.due_at,
               c.rework_count
        FROM period p
        JOIN case_file c ON c.reported_at >= p.start_at AND c.reported_at < p.end_at
        JOIN unit lu ON lu.id = c.grid_id
    ),
    -- the cases whose consolidation counts (closed by the evaluation moment), each once,
    -- with the periods it counts in
    closed AS MATERIALIZED (
        SELECT id, code, class_code, closed_at,
               closed_at + make_interval(days => :days) AS recur_until,
               incident_id, incident_reported_at, array_agg(j) AS js
        FROM cohort WHERE closed_at < as_of
        GROUP BY id, code, class_code, closed_at, incident_id, incident_reported_at
    ),
    -- the cases that can mark one of them as recurring: valid, and reported after some
    -- closure and within the window of some closure
    later AS MATERIALIZED (
        SELECT r.id, r.class_code, r.reported_at, r.incident_id, r.incident_reported_at
        FROM case_file r
        WHERE r.reported_at > (SELECT min(closed_at) FROM closed)
          AND r.reported_at <= (SELECT max(recur_until) FROM closed)
          AND r.state NOT IN ('not_accepted', 'duplicate', 'void')
    ),
    -- both kinds at their incident's point: k (a closed case: its search box covers
    -- (closed_at, recur_until] and the bounding-box reach around the point) and r (a
    -- candidate recurrence: its report time and point)
    point AS MATERIALIZED (
        SELECT e.kind, e.id, e.code, e.js, e.class_code, e.at, e.recur_until, i.geom,
               ST_X(i.geom) AS x, ST_Y(i.geom) AS y
        FROM (SELECT 'k' AS kind, id, code, js, class_code, closed_at AS at, recur_until,
                     incident_id, incident_reported_at
              FROM closed
              UNION ALL
              SELECT 'r', id, NULL, NULL, class_code, reported_at, reported_at, incident_id,
                     incident_reported_at
              FROM later) e
        JOIN incident i ON i.id = e.incident_id AND i.reported_at = e.incident_reported_at
        WHERE i.geom IS NOT NULL
    ),
    -- the cells of space and time each point's box overlaps: a candidate's box is its point
    -- and report time, one cell; a closed case's overlaps at most 2 x 2 x 2
    boxed AS MATERIALIZED (
        SELECT p.kind, p.id, p.code, p.js, p.class_code, p.at, p.recur_until, p.geom,
               floor((p.x - p.reach) / :cell)::bigint AS x0,
               floor((p.x + p.reach) / :cell)::bigint AS x1,
               floor((p.y - p.reach) / :cell)::bigint AS y0,
               floor((p.y + p.reach) / :cell)::bigint AS y1,
               floor(date_part('epoch', p.at) / :bucket)::bigint AS t0,
               floor(date_part('epoch', p.recur_until) / :bucket)::bigint AS t1
        FROM (SELECT point.*, CASE kind WHEN 'k' THEN :reach ELSE 0.0 END AS reach
              FROM point) p
    ),
    probe AS MATERIALIZED (
        SELECT b.id, b.code, b.js, b.class_code, b.at AS closed_at, b.recur_until, b.geom,
               b.x0 + n.dx AS cx, b.y0 + n.dy AS cy, b.t0 + n.dt AS ct
        FROM boxed b
        CROSS JOIN (VALUES (0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1), (1, 0, 0), (1, 0, 1),
                           (1, 1, 0), (1, 1, 1)) AS n(dx, dy, dt)
        WHERE b.kind = 'k'
          AND b.x0 + n.dx <= b.x1 AND b.y0 + n.dy <= b.y1 AND b.t0 + n.dt <= b.t1
    ),
    target AS MATERIALIZED (
        SELECT id, class_code, at AS reported_at, geom, x0 AS cx, y0 AS cy, t0 AS ct
        FROM boxed WHERE kind = 'r'
    ),
    -- closed cases after which the problem came back, by the reference query's rule. A FULL
    -- JOIN, with the rule in a WHERE that keeps it full (COALESCE is not strict), can only
    -- run as a hash or merge join on the cell: never as a loop over all pairs, whatever the
    -- planner guesses of the sizes of these derived tables
    recurred AS (
        SELECT DISTINCT k.id, k.code, k.js
        FROM probe k
        FULL JOIN target r ON r.class_code = k.class_code AND r.cx = k.cx AND r.cy = k.cy
                           AND r.ct = k.ct
        WHERE coalesce(r.id <> k.id
                       AND r.reported_at > k.closed_at
                       AND r.reported_at <= k.recur_until
                       AND r.geom && ST_Expand(k.geom, :radius / 90000.0)
                       AND ST_DWithin(r.geom::geography, k.geom::geography, :radius), false)
    ),
    -- per period and code; consolidated = closed, less the recurred (a union, not a join)
    counted AS (
        SELECT c.j, c.code,
          count(*) AS cases,
          count(*) FILTER (WHERE c.accepted_at IS NOT NULL) AS valid_reports,
          count(*) FILTER (WHERE c.filed_at IS NOT NULL) AS filed,
          count(*) FILTER (WHERE c.dispatched_at IS NOT NULL AND c.dispatched_at < c.as_of)
            AS due_to_handle,
          count(*) FILTER (WHERE c.handled_at IS NOT NULL AND c.handled_at < c.as_of)
            AS handled,
          count(*) FILTER (WHERE c.handled_at < c.as_of AND c.handled_at <= c.handle_due_at)
            AS handled_on_time,
          count(*) FILTER (WHERE c.filed_at IS NOT NULL
                           AND (c.closed_at < c.as_of OR c.due_at < c.as_of)) AS due_to_close,
          count(*) FILTER (WHERE c.closed_at < c.as_of) AS closed,
          count(*) FILTER (WHERE c.closed_at < c.as_of AND c.closed_at <= c.due_at)
            AS closed_on_time,
          count(*) FILTER (WHERE c.rework_count > 0 AND c.handled_at < c.as_of) AS reworked,
          count(*) FILTER (WHERE (c.closed_at < c.as_of AND c.closed_at > c.due_at)
                           OR ((c.closed_at IS NULL OR c.closed_at >= c.as_of)
                               AND c.due_at < c.as_of)) AS overdue,
          count(*) FILTER (WHERE c.closed_at < c.as_of) AS consolidated
        FROM cohort c
        GROUP BY 1, 2
        UNION ALL
        SELECT u.j, x.code, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -count(*)
        FROM recurred x CROSS JOIN LATERAL unnest(x.js) AS u(j)
        GROUP BY 1, 2
    )
    SELECT j, code, sum(cases)::bigint AS cases, sum(valid_reports)::bigint AS valid_reports,
      sum(filed)::bigint AS filed, sum(due_to_handle)::bigint AS due_to_handle,
      sum(handled)::bigint AS handled, sum(handled_on_time)::bigint AS handled_on_time,
      sum(due_to_close)::bigint AS due_to_close, sum(closed)::bigint AS closed,
      sum(closed_on_time)::bigint AS closed_on_time, sum(reworked)::bigint AS reworked,
      sum(overdue)::bigint AS overdue, sum(consolidated)::bigint AS consolidated
    FROM counted
    GROUP BY 1, 2
"""

_REPORT_COUNTS_SQL = """
    WITH per_grid AS (
        SELECT p.j, i.grid_id, count(*) AS reports
        FROM unnest(CAST(:starts AS timestamptz[]), CAST(:ends AS timestamptz[]))
             WITH ORDINALITY AS p(start_at, end_at, j)
        JOIN incident i ON i.reported_at >= p.start_at AND i.reported_at < p.end_at
        WHERE i.location_status = 'assigned'
          AND i.reported_at >= :first AND i.reported_at < :last
        GROUP BY 1, 2
    )
    SELECT g.j, left(u.code, :prefix) AS code, sum(g.reports)::bigint AS reports
    FROM per_grid g JOIN unit u ON u.id = g.grid_id
    GROUP BY 1, 2
"""


def _grid_counts_set(conn: Connection, periods: Sequence[Period], moments: Sequence[datetime],
                     config: IndicatorConfig, prefix: int) -> list[_GridCounts]:
    """Every count of every period's cohort per grid code, for all periods in one statement,
    rolled up in the database to the first ``prefix`` characters of the code (the finest
    level asked for; :meth:`_GridCounts.rolled_up` rolls up further).

    Equal, count for count, to :func:`_grid_case_counts_reference` and
    :func:`_grid_report_counts_reference` per period (a test holds them to it), but set-based:
    the consolidation test pairs closed cases with candidate recurrences by class and cell
    (:func:`_search_cells`) in one hash join instead of one spatial search per closed case,
    and each case's recurrence is settled once however many periods it is in. The other
    counts do not join cases to their incident: the foreign key makes that join a no-op."""
    if not periods:
        return []
    bounds = {"starts": [p.start for p in periods], "ends": [p.end for p in periods],
              "prefix": prefix}
    params = {**bounds, "moments": list(moments), "days": config.consolidation_days,
              "radius": config.consolidation_radius_m, **_search_cells(config)}
    columns = [c for c in COUNTS if c != "reports"]
    cases = pd.DataFrame(conn.execute(text(_CASE_COUNTS_SQL), params).mappings().all(),
                         columns=["j", "code", *columns])
    span = {"first": min(p.start for p in periods), "last": max(p.end for p in periods)}
    reports = pd.DataFrame(conn.execute(text(_REPORT_COUNTS_SQL), {**bounds, **span}).all(),
                           columns=["j", "code", "reports"])
    out = []
    for j in range(1, len(periods) + 1):
        mine = cases[cases["j"] == j].drop(columns="j").set_index("code")
        theirs = reports[reports["j"] == j]
        out.append(_GridCounts(mine, pd.Series(dict(zip(theirs["code"], theirs["reports"],
                                                        strict=True)),
                                               dtype="int64", name="reports")))
    return out


def _grid_case_counts_reference(conn: Connection, period: Period, as_of: datetime,
                                config: IndicatorConfig) -> pd.DataFrame:
    """The reference: every count of the cohort per grid code, written as the formulas read
    (docs/INDICATORS.md), one correlated spatial search per closed case. Slow (seconds for a
    year of a district); kept as the definition the fast path is tested and benchmarked
    against."""
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


def _grid_report_counts_reference(conn: Connection, period: Period) -> pd.Series:
    rows = conn.execute(text(
        """SELECT g.code, count(*) FROM incident i JOIN unit g ON g.id = i.grid_id
           WHERE i.location_status = 'assigned'
             AND i.reported_at >= :start AND i.reported_at < :end GROUP BY 1"""),
        {"start": period.start, "end": period.end}).all()
    return pd.Series(dict(rows), dtype="int64", name="reports")


def _grid_counts_reference(conn: Connection, period: Period, as_of: datetime,
                           config: IndicatorConfig) -> _GridCounts:
    return _GridCounts(_grid_case_counts_reference(conn, period, as_of, config),
                       _grid_report_counts_reference(conn, period))


def unit_indicators(conn: Connection, level: str, period: Period, *,
                    as_of: datetime | None = None, config: IndicatorConfig = DEFAULT_CONFIG,
                    reference: bool = False) -> pd.DataFrame:
    """Every indicator for every unit of ``level`` in the active generation, one row each
    (units without a case included, with zero counts and empty rates)."""
    return all_levels(conn, period, as_of=as_of, config=config, levels=(level,),
                      reference=reference)[level]


def all_levels(conn: Connection, period: Period, *, as_of: datetime | None = None,
               config: IndicatorConfig = DEFAULT_CONFIG, levels: tuple[str, ...] = LEVELS,
               reference: bool = False) -> dict[str, pd.DataFrame]:
    """:func:`unit_indicators` for several levels from one pass over the cases."""
    return evaluate(conn, [(period, levels)], as_of=as_of, config=config,
                    reference=reference)[0]


def evaluate(conn: Connection, requests: Sequence[tuple[Period, Sequence[str]]], *,
             as_of: datetime | None = None, config: IndicatorConfig = DEFAULT_CONFIG,
             reference: bool = False) -> list[dict[str, pd.DataFrame]]:
    """:func:`all_levels` for several (period, levels) requests from one statement over the
    cases of all their periods (overlapping or not): one dict per request, in order. Each
    period is evaluated at its own moment, its end or ``as_of`` (default now) if earlier.

    ``reference=True`` computes each request with the reference queries instead, which read
    as the formulas do and are slow: for the tests and benchmarks that hold the two equal."""
    for _, levels in requests:
        for level in levels:
            if level not in LEVELS:
                raise ValueError(f"level must be one of {', '.join(LEVELS)}")
    now = as_of or datetime.now(SHANGHAI)
    periods = [period for period, _ in requests]
    moments = [min(now, period.end) for period in periods]
    wanted = dict.fromkeys(level for _, levels in requests for level in levels)
    units = {level: _units(conn, level) for level in wanted}
    if reference:
        counts = [_grid_counts_reference(conn, period, moment, config)
                  for period, moment in zip(periods, moments, strict=True)]
    else:
        finest = max((_prefix_length(u.index) for u in units.values()), default=0)
        counts = _grid_counts_set(conn, periods, moments, config, finest)
    return [{level: _finish(units[level], grid_counts, period, config) for level in levels}
            for (period, levels), grid_counts in zip(requests, counts, strict=True)]


def _finish(units: pd.DataFrame, counts: _GridCounts, period: Period,
            config: IndicatorConfig) -> pd.DataFrame:
    """The units with their counts, rates, occurrence, score and pass, one row each. Computed
    on whole columns at once (numpy): the page asks for a dozen of these at a time."""
    cases, reports = counts.rolled_up(units.index)
    columns: dict[str, np.ndarray] = dict(zip(
        cases.columns, cases.fillna(0).to_numpy(dtype="int64").T, strict=True))
    columns["reports"] = reports.fillna(0).to_numpy(dtype="int64")
    for column in COUNTS:
        columns.setdefault(column, np.zeros(len(units), dtype="int64"))
    for rate, (numerator, denominator) in RATES.items():
        columns[rate] = _ratio(columns[numerator], columns[denominator])
    months = period.months
    filed = columns["filed"]
    columns["occurrence_per_km2_month"] = filed / units["area_km2"].to_numpy() / months
    columns["occurrence_per_grid_month"] = (
        filed / np.maximum(units["grids"].to_numpy(), 1) / months)
    columns["score"] = _score(columns, config)
    columns["passed"] = columns["score"] >= config.pass_threshold
    return pd.concat([units, pd.DataFrame(columns, index=units.index)], axis=1)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator; empty (NaN) where the denominator is not positive."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = numerator / denominator
    out[denominator <= 0] = np.nan
    return out


def _score(columns: dict[str, np.ndarray], config: IndicatorConfig) -> np.ndarray:
    """Weighted rates; an empty rate (nothing due) counts as fully met. Rework counts inverted."""
    total = np.zeros(len(columns["cases"]))
    for rate, weight in config.weights.items():
        values = np.nan_to_num(columns[rate], nan=0.0 if rate == "rework_rate" else 1.0)
        total += weight * (1.0 - values if rate == "rework_rate" else values)
    return 100.0 * total / sum(config.weights.values())


def pass_rate(frame: pd.DataFrame) -> float:
    """Passing units / all units."""
    return float(frame["passed"].mean()) if len(frame) else float("nan")


def compare_periods(conn: Connection, level: str, before: Period, after: Period, *,
                    as_of: datetime | None = None, config: IndicatorConfig = DEFAULT_CONFIG,
                    reference: bool = False) -> pd.DataFrame:
    """Each indicator in two periods per unit, with the change (after − before)."""
    return compare_levels(conn, before, after, as_of=as_of, config=config,
                          levels=(level,), reference=reference)[level]


def compare_levels(conn: Connection, before: Period, after: Period, *,
                   as_of: datetime | None = None, config: IndicatorConfig = DEFAULT_CONFIG,
                   levels: tuple[str, ...] = LEVELS,
                   reference: bool = False) -> dict[str, pd.DataFrame]:
    """:func:`compare_periods` for several levels from one pass over both periods."""
    a, b = evaluate(conn, [(before, levels), (after, levels)], as_of=as_of, config=config,
                    reference=reference)
    return {level: comparison(a[level], b[level]) for level in levels}


def comparison(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Two frames of one level (before, after) side by side, with the change."""
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
