"""Risk early warning: counts that rise significantly above their own baseline, and hot spots.

Two documented methods (docs/SUPERVISION.md §5), on the incidents of each grid × line (or
grid × class) in a period, by default for the food and drug safety, production safety and
environment lines:

- **Poisson control chart**, as the exact conditional test of two Poisson rates
  (Przyborowski–Wilenski). A series has ``x`` incidents in the period of ``t`` days and ``b``
  in the baseline window of ``T`` days before it (default 365). Under H0 its rate in the
  period is ``f`` (the series' **seasonal factor**, below) times its baseline rate, so the
  ratio of the two means is ``r = f·t / T`` and, given ``n = x + b``, ``X ~ Binomial(n, p0)``
  with ``p0 = r / (1 + r) = f·t / (f·t + T)``. The p-value is ``P(X ≥ x | n, p0)``
  (:func:`conditional_tail`): exact, and valid although the baseline rate is estimated from
  ``b`` (the old chart took ``λ = r·b`` as the known mean of a Poisson and alarmed too often
  where ``b`` came out low by chance). With ``b = 0`` (no event in the baseline window) it is
  ``p0^x``, the chance that all ``x`` events of the series fall in the period. The series
  warns when ``p ≤ α / m`` (Bonferroni over the ``m`` grid × series tested) and at least
  ``min_count`` incidents were seen. The control limit shown is the smallest count that would
  warn given ``b`` (:func:`conditional_limit`, at least ``min_count``). ``expected`` is
  ``λ = f·max(b, ½)·t / T`` (:func:`expected_counts`), the count the baseline rate predicts
  for the period (half an event per window when there was none); the statistic is the
  conditional score ``(x − r·b) / √(r·(x + b))`` (:func:`rate_ratio_score`); a warning's
  ``details`` keep ``limit`` and ``baseline`` (``b``).
- **Seasonal factor** (on by default, ``ScanOptions.seasonal``): one district-wide factor per
  series (line or class) and period, the same for every grid, estimated from the same
  calendar window of earlier years relative to those years' average rate
  (:func:`history_years`, :func:`seasonal_factor`). For ``k = 1 … seasonal_years`` (default 3)
  the window ``W_k`` is the period moved back ``364·k`` days (52 weeks: the same weekdays, so
  the weekly rhythm cancels; the season drifts 1.25 days a year), and its reference ``R_k`` is
  the 364-day window (52 whole weeks) centred on ``W_k``, slid as little as needed to lie
  between the start of the recorded data (the generation's first assigned incident, at local
  midnight) and the start of the period. A year is used only if ``R_k`` fits there. With
  ``C = Σ_k c_k`` (the series' district-wide count in the ``W_k``) and
  ``E = Σ_k r_k · |W| / 364`` (the count the ``R_k``'s average rate gives for the windows),
  ``f = (C + a) / (E + a)`` with ``a = seasonal_prior`` (default 10 events: the posterior mean
  of ``f`` under a Gamma(a, a) prior, mean 1), clipped to ``[1 / clip, clip]`` (default 4).
  With no usable year (or a period longer than 364 days) ``f = 1``. ``f`` is stored in each
  warning's ``details`` and listed per series in the scan result. It is taken as exact by the
  test (it is pooled over the district and shrunk towards 1, so its own noise is small).
- **Getis-Ord Gi\\*** (``esda.G_Local``, ``star=True``, binary queen contiguity of the grid
  polygons from ``libpysal``) on each grid's excess ``max(observed − expected, 0)`` (over
  the ``λ`` above): one-sided normal p-values of the z-scores, Benjamini–Hochberg at
  false-discovery rate ``q`` across the district's grids; grids with a significant positive
  z are hot spots.

:func:`scan` records each warning once per (method, period, series, grid) and sends it to the
responsible department with a notice that keeps the route (:func:`gis.routing.route_case`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats
from sqlalchemy import Connection, text

from gis.periods import SHANGHAI, Period
from gis.routing import route_case

FOCUS_LINES = ("food_drug", "production_safety", "environment")
DEFAULT_ALPHA = 0.05
DEFAULT_FDR = 0.05
DEFAULT_BASELINE_DAYS = 365
DEFAULT_MIN_COUNT = 3
DEFAULT_SEASONAL_YEARS = 3
DEFAULT_SEASONAL_PRIOR = 10.0
DEFAULT_SEASONAL_CLIP = 4.0
SEASON_SHIFT_DAYS = 364  # 52 weeks: a year back on the same weekdays
SEASON_REFERENCE_DAYS = 364  # 52 whole weeks: every weekday and (nearly) every season once
FloatArray = npt.NDArray[np.float64]


# -- the methods, pure ---------------------------------------------------------------------------
def expected_counts(baseline: npt.ArrayLike, period_days: float,
                    baseline_days: float) -> FloatArray:
    """λ = baseline count × period / baseline window, at least half an event per window: the
    count the baseline rate predicts for the period (shown, and the base of Gi*'s excess)."""
    scale = period_days / baseline_days
    return np.maximum(np.asarray(baseline, dtype=float), 0.5) * scale


def _ratio(ratio: npt.ArrayLike) -> FloatArray:
    r = np.asarray(ratio, dtype=float)
    if not np.all(np.isfinite(r) & (r > 0)):
        raise ValueError("the rate ratio f·t/T must be positive and finite")
    return r


def conditional_tail(observed: npt.ArrayLike, baseline: npt.ArrayLike,
                     ratio: npt.ArrayLike) -> FloatArray:
    """``P(X ≥ x | X + B = x + b)`` when ``X`` and ``B`` are independent Poisson counts whose
    means are in the ``ratio`` ``r`` (= f·t/T) to one another: ``X | n ~ Binomial(n, r/(1+r))``
    with ``n = x + b``. The p-value of the one-sided exact conditional test of two Poisson
    rates; ``p0^x`` when ``b = 0``, 1 when ``x = 0``."""
    x = np.asarray(observed, dtype=np.int64)
    b = np.asarray(baseline, dtype=np.int64)
    r = _ratio(ratio)
    return stats.binom.sf(x - 1, x + b, r / (1 + r))


def conditional_limit(baseline: npt.ArrayLike, ratio: npt.ArrayLike,
                      alpha: float) -> npt.NDArray[np.int64]:
    """The smallest count ``x`` with ``conditional_tail(x, b, r) ≤ alpha``: the upper control
    limit given the baseline count ``b``. The tail decreases as ``x`` grows with ``b`` fixed
    (it is ``P(NegBin(x, p0) ≤ b)``), so a doubling then bisection search finds it."""
    if not alpha > 0:
        raise ValueError("alpha must be positive")
    b, r = np.broadcast_arrays(np.asarray(baseline, dtype=np.int64), _ratio(ratio))
    if alpha >= 1 or b.size == 0:
        return np.zeros(b.shape, np.int64)
    pairs, inverse = np.unique(np.stack([b.ravel().astype(float), r.ravel()]), axis=1,
                               return_inverse=True)
    b_u, r_u = pairs[0].astype(np.int64), pairs[1]
    lo = np.zeros(len(b_u), np.int64)  # tail(0) = 1 > alpha
    hi = np.ones(len(b_u), np.int64)
    while (above := conditional_tail(hi, b_u, r_u) > alpha).any():
        lo, hi = np.where(above, hi, lo), np.where(above, hi * 2, hi)
    while (open_ := hi - lo > 1).any():
        mid = (lo + hi) // 2
        warns = conditional_tail(mid, b_u, r_u) <= alpha
        hi = np.where(open_ & warns, mid, hi)
        lo = np.where(open_ & ~warns, mid, lo)
    return hi[inverse.ravel()].reshape(b.shape)


def rate_ratio_score(observed: npt.ArrayLike, baseline: npt.ArrayLike,
                     ratio: npt.ArrayLike) -> FloatArray:
    """The conditional score ``(x − n·p0) / √(n·p0·(1 − p0))`` of the binomial above, which
    is ``(x − r·b) / √(r·(x + b))``: the rise over the baseline's prediction in standard
    errors that count both periods' noise (0 when ``x + b = 0``)."""
    x = np.asarray(observed, dtype=float)
    b = np.asarray(baseline, dtype=float)
    r = _ratio(ratio)
    spread = np.sqrt(r * (x + b))
    return np.divide(x - r * b, spread, out=np.zeros(np.broadcast(x, b, r).shape),
                     where=spread > 0)


@dataclass(frozen=True)
class HistoryYear:
    """The same window ``back`` years earlier and the reference year around it, ``[start, end)``."""

    back: int
    window: tuple[datetime, datetime]
    reference: tuple[datetime, datetime]


def history_years(start: datetime, end: datetime, data_start: datetime | None,
                  years: int = DEFAULT_SEASONAL_YEARS) -> list[HistoryYear]:
    """The earlier years usable for the seasonal factor of the period ``[start, end)``.

    Year ``k``'s window is the period moved back ``364·k`` days; its reference is the
    364-day window centred on it (whole days, an odd spare day after it), slid to lie within
    ``[data_start, start)``. Years whose reference does not fit there are left out; a period
    longer than 364 days (or no data) has none."""
    span = timedelta(days=SEASON_REFERENCE_DAYS)
    if data_start is None or end - start > span:
        return []
    found = []
    for k in range(1, years + 1):
        shift = timedelta(days=SEASON_SHIFT_DAYS * k)
        w_start, w_end = start - shift, end - shift
        pad = timedelta(days=(span - (w_end - w_start)).days // 2)
        lowest, highest = max(data_start, w_end - span), min(start - span, w_start)
        if lowest > highest:
            continue
        r_start = min(max(w_start - pad, lowest), highest)
        found.append(HistoryYear(k, (w_start, w_end), (r_start, r_start + span)))
    return found


@dataclass(frozen=True)
class SeasonalFactor:
    """A series' seasonal factor ``factor`` and what it was estimated from: ``observed`` (C)
    events in the windows of ``years`` earlier years, ``expected`` (E) from those years'
    average rate, ``raw`` = C / E (None when E = 0)."""

    factor: float
    raw: float | None
    observed: int
    expected: float
    years: int


def seasonal_factor(window_counts: Sequence[float], reference_counts: Sequence[float],
                    window_days: float, reference_days: float = SEASON_REFERENCE_DAYS, *,
                    prior: float = DEFAULT_SEASONAL_PRIOR,
                    clip: float = DEFAULT_SEASONAL_CLIP) -> SeasonalFactor:
    """``f = (C + prior) / (E + prior)`` clipped to ``[1/clip, clip]``, with ``C`` the sum of
    ``window_counts`` (the same window in earlier years) and ``E`` the sum of
    ``reference_counts × window_days / reference_days`` (what each year's average rate gives
    for the window); 1 with no year. Pure: counts in, factor out."""
    if len(window_counts) != len(reference_counts):
        raise ValueError("one reference count per window count")
    if not len(window_counts):
        return SeasonalFactor(1.0, None, 0, 0.0, 0)
    observed = float(np.sum(window_counts))
    expected = float(np.sum(reference_counts)) * window_days / reference_days
    factor = (observed + prior) / (expected + prior) if expected + prior > 0 else 1.0
    return SeasonalFactor(float(np.clip(factor, 1 / clip, clip)),
                          observed / expected if expected > 0 else None, round(observed),
                          expected, len(window_counts))


@dataclass(frozen=True)
class PoissonResult:
    p_value: FloatArray
    statistic: FloatArray
    limit: npt.NDArray[np.int64]
    threshold: float
    alarm: npt.NDArray[np.bool_]


def poisson_alarms(observed: npt.ArrayLike, baseline: npt.ArrayLike, ratio: npt.ArrayLike, *,
                   alpha: float = DEFAULT_ALPHA, n_series: int | None = None,
                   min_count: int = DEFAULT_MIN_COUNT) -> PoissonResult:
    """Series whose count in the period is significantly above ``ratio`` (f·t/T) times their
    baseline count, by the conditional test (:func:`conditional_tail`), Bonferroni-adjusted
    over ``n_series`` (default: as many as given), with at least ``min_count`` events. A
    series alarms exactly when its count reaches its ``limit``."""
    observed = np.asarray(observed, dtype=np.int64)
    baseline = np.asarray(baseline, dtype=np.int64)
    ratio = np.broadcast_to(_ratio(ratio), observed.shape)
    threshold = alpha / (n_series or max(len(observed), 1))
    p = conditional_tail(observed, baseline, ratio)
    limit = np.maximum(conditional_limit(baseline, ratio, threshold), min_count)
    return PoissonResult(p, rate_ratio_score(observed, baseline, ratio), limit, threshold,
                         (p <= threshold) & (observed >= min_count))


def benjamini_hochberg(p_values: npt.ArrayLike, q: float = DEFAULT_FDR
                       ) -> tuple[npt.NDArray[np.bool_], float]:
    """Rejections at false-discovery rate ``q``, and the p-value cut-off (0 when none)."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0:
        return np.zeros(0, bool), 0.0
    order = np.argsort(p, kind="stable")
    passed = p[order] <= q * np.arange(1, m + 1) / m
    if not passed.any():
        return np.zeros(m, bool), 0.0
    cutoff = float(p[order][np.nonzero(passed)[0].max()])
    return p <= cutoff, cutoff


def queen_weights(geometries, ids: list[str]):
    """Binary queen contiguity of polygons (shared edge or vertex), as a libpysal W."""
    from libpysal.weights import Queen

    return Queen.from_iterable(list(geometries), ids=list(ids), silence_warnings=True)


@dataclass(frozen=True)
class HotspotResult:
    z: FloatArray
    p_value: FloatArray
    cutoff: float
    hot: npt.NDArray[np.bool_]


def gi_star_hotspots(values: npt.ArrayLike, weights, q: float = DEFAULT_FDR) -> HotspotResult:
    """Getis-Ord Gi* hot spots of non-negative ``values`` aligned with ``weights``."""
    y = np.asarray(values, dtype=float)
    n = len(y)
    if n < 3 or y.sum() <= 0 or np.ptp(y) == 0:
        return HotspotResult(np.zeros(n), np.ones(n), 0.0, np.zeros(n, bool))
    from esda.getisord import G_Local

    g = G_Local(y, weights, transform="B", star=True, permutations=0)
    z = np.nan_to_num(np.asarray(g.Zs, dtype=float))
    p = stats.norm.sf(z)
    rejected, cutoff = benjamini_hochberg(p, q)
    return HotspotResult(z, p, cutoff, rejected & (z > 0))


# -- the data ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScanOptions:
    lines: tuple[str, ...] = FOCUS_LINES
    by: str = "line"
    alpha: float = DEFAULT_ALPHA
    fdr: float = DEFAULT_FDR
    baseline_days: int = DEFAULT_BASELINE_DAYS
    min_count: int = DEFAULT_MIN_COUNT
    methods: tuple[str, ...] = ("poisson", "gi_star")
    seasonal: bool = True
    seasonal_years: int = DEFAULT_SEASONAL_YEARS
    seasonal_prior: float = DEFAULT_SEASONAL_PRIOR
    seasonal_clip: float = DEFAULT_SEASONAL_CLIP


def _active_generation(conn: Connection) -> int:
    generation = conn.execute(text("SELECT id FROM generation WHERE active")).scalar()
    if generation is None:
        raise LookupError("no generation is active; run `gridgov boundaries load`")
    return generation


def read_grids(conn: Connection, generation_id: int) -> gpd.GeoDataFrame:
    return gpd.read_postgis(text(
        "SELECT code, geom FROM unit WHERE generation_id = :g AND level = 'grid' ORDER BY code"),
        conn, geom_col="geom", params={"g": generation_id})


def series_names(conn: Connection, options: ScanOptions) -> list[str]:
    if options.by == "line":
        return sorted(options.lines)
    return list(conn.execute(text(
        "SELECT code FROM incident_class WHERE line = ANY(:l) ORDER BY code"),
        {"l": list(options.lines)}).scalars())


def series_counts(conn: Connection, generation_id: int, period: Period,
                  options: ScanOptions) -> pd.DataFrame:
    """Observed (in the period) and baseline (in the window before it) counts per grid and
    series, only where either is non-zero."""
    key = "c.line" if options.by == "line" else "c.code"
    rows = conn.execute(text(
        f"""
        SELECT u.code AS grid_code, {key} AS series,
               count(*) FILTER (WHERE i.reported_at >= :start) AS observed,
               count(*) FILTER (WHERE i.reported_at < :start) AS baseline
        FROM incident i JOIN incident_class c ON c.code = i.class_code
        JOIN unit u ON u.id = i.grid_id
        WHERE i.generation_id = :g AND i.location_status = 'assigned'
          AND i.reported_at >= :from AND i.reported_at < :end AND c.line = ANY(:lines)
        GROUP BY 1, 2
        """), {"g": generation_id, "start": period.start, "end": period.end,
               "from": period.start - timedelta(days=options.baseline_days),
               "lines": list(options.lines)}).all()
    return pd.DataFrame(rows, columns=["grid_code", "series", "observed", "baseline"])


def data_start(conn: Connection, generation_id: int) -> datetime | None:
    """Local midnight of the day of the generation's first assigned incident (None if none)."""
    first = conn.execute(text(
        """SELECT min(reported_at) FROM incident
           WHERE generation_id = :g AND location_status = 'assigned'"""),
        {"g": generation_id}).scalar()
    if first is None:
        return None
    local = first.astimezone(SHANGHAI)
    return datetime(local.year, local.month, local.day, tzinfo=SHANGHAI)


def seasonal_factors(conn: Connection, generation_id: int, period: Period,
                     options: ScanOptions, series: list[str]) -> dict[str, SeasonalFactor]:
    """The seasonal factor of each series for the period (see :func:`history_years`), from
    the district-wide counts of the grids' assigned incidents."""
    years = history_years(period.start, period.end, data_start(conn, generation_id),
                          options.seasonal_years)
    key = "c.line" if options.by == "line" else "c.code"
    window: dict[str, list[int]] = {s: [0] * len(years) for s in series}
    reference: dict[str, list[int]] = {s: [0] * len(years) for s in series}
    for k, year in enumerate(years):
        for name, in_window, in_reference in conn.execute(text(
                f"""SELECT {key}, count(*) FILTER (WHERE i.reported_at >= :ws
                                                     AND i.reported_at < :we),
                           count(*)
                    FROM incident i JOIN incident_class c ON c.code = i.class_code
                    WHERE i.generation_id = :g AND i.location_status = 'assigned'
                      AND i.grid_id IS NOT NULL AND c.line = ANY(:lines)
                      AND i.reported_at >= :rs AND i.reported_at < :re
                    GROUP BY 1"""),
                {"g": generation_id, "lines": list(options.lines),
                 "ws": year.window[0], "we": year.window[1],
                 "rs": year.reference[0], "re": year.reference[1]}):
            if name in window:
                window[name][k], reference[name][k] = in_window, in_reference
    return {s: seasonal_factor(window[s], reference[s], period.days,
                               prior=options.seasonal_prior, clip=options.seasonal_clip)
            for s in series}


def full_table(grid_codes: list[str], series: list[str], counts: pd.DataFrame,
               period: Period, options: ScanOptions,
               factors: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Every grid × series, zero-filled, with the seasonal factor (``factors``, 1 for a series
    not given), the rate ratio ``f·t/T`` of the conditional test and the expected count."""
    index = pd.MultiIndex.from_product([series, grid_codes], names=["series", "grid_code"])
    table = (counts.set_index(["series", "grid_code"])[["observed", "baseline"]]
             .reindex(index, fill_value=0).astype("int64").reset_index())
    table["seasonal_factor"] = table["series"].map(lambda s: (factors or {}).get(s, 1.0))
    table["ratio"] = (table["seasonal_factor"].to_numpy(dtype=float) * period.days
                      / options.baseline_days)
    table["expected"] = (expected_counts(table["baseline"], period.days, options.baseline_days)
                         * table["seasonal_factor"].to_numpy(dtype=float))
    return table


# -- scanning ------------------------------------------------------------------------------------
@dataclass
class ScanResult:
    period: str
    generation_id: int
    n_series: int
    poisson_threshold: float
    warnings: list[dict] = field(default_factory=list)
    seasonal: bool = False
    seasonal_factors: dict[str, dict] = field(default_factory=dict)

    @property
    def new(self) -> int:
        return sum(1 for w in self.warnings if w["new"])

    def to_dict(self) -> dict:
        return {**asdict(self), "new": self.new}


def detect(table: pd.DataFrame, grids: gpd.GeoDataFrame, options: ScanOptions,
           n_series: int) -> tuple[list[dict], float]:
    """The warnings of a zero-filled table (pure: no database)."""
    found: list[dict] = []
    poisson = poisson_alarms(table["observed"], table["baseline"], table["ratio"],
                             alpha=options.alpha, n_series=n_series,
                             min_count=options.min_count)
    if "poisson" in options.methods:
        for i in np.nonzero(poisson.alarm)[0]:
            row = table.iloc[i]
            found.append(_warning("poisson", row, poisson.statistic[i], poisson.p_value[i],
                                  poisson.threshold, {"limit": int(poisson.limit[i]),
                                                      "baseline": int(row["baseline"])}))
    if "gi_star" in options.methods and len(grids) >= 3:
        weights = queen_weights(grids.geometry, grids["code"].tolist())
        for _, part in table.groupby("series", sort=True):
            part = (part.set_index("grid_code").reindex(grids["code"].to_numpy())
                    .rename_axis("grid_code").reset_index())
            excess = np.maximum(part["observed"] - part["expected"], 0)
            result = gi_star_hotspots(excess, weights, options.fdr)
            for i in np.nonzero(result.hot)[0]:
                found.append(_warning("gi_star", part.iloc[i], result.z[i], result.p_value[i],
                                      result.cutoff, {"excess": float(excess.iloc[i])}))
    return found, poisson.threshold


def _warning(method: str, row: pd.Series, statistic: float, p_value: float, threshold: float,
             details: dict) -> dict:
    return {"method": method, "series": str(row["series"]), "grid_code": str(row["grid_code"]),
            "street_code": str(row["grid_code"])[:9], "observed": float(row["observed"]),
            "expected": float(row["expected"]), "statistic": float(statistic),
            "p_value": float(p_value), "threshold": float(threshold),
            "details": {**details, "seasonal_factor": float(row.get("seasonal_factor", 1.0))}}


def scan(conn: Connection, period: Period, options: ScanOptions = ScanOptions(), *,
         record: bool = True) -> ScanResult:
    """Scan the period; with ``record``, store new warnings and route each with a notice."""
    if options.by not in ("line", "class"):
        raise ValueError(f"by: {options.by!r} is not line or class")
    generation = _active_generation(conn)
    grids = read_grids(conn, generation)
    series = series_names(conn, options)
    factors = seasonal_factors(conn, generation, period, options, series) \
        if options.seasonal else {}
    table = full_table(grids["code"].tolist(), series,
                       series_counts(conn, generation, period, options), period, options,
                       {s: f.factor for s, f in factors.items()})
    n_series = max(len(grids) * len(series), 1)
    found, threshold = detect(table, grids, options, n_series)
    result = ScanResult(period.label, generation, n_series, threshold, seasonal=options.seasonal,
                        seasonal_factors={s: asdict(f) for s, f in factors.items()})
    dominant = _dominant_classes(conn, generation, period, options) if record else {}
    for warning in found:
        warning["new"] = False
        if record:
            _record(conn, period, generation, options, warning, dominant)
        result.warnings.append(warning)
    return result


def _record(conn: Connection, period: Period, generation: int, options: ScanOptions,
            warning: dict, dominant: dict) -> None:
    row = conn.execute(text(
        """INSERT INTO risk_warning (method, period, period_start, period_end, series_kind,
               series, generation_id, grid_code, street_code, observed, expected, statistic,
               p_value, threshold, details)
           VALUES (:method, :period, :start, :end, :kind, :series, :g, :grid_code,
               :street_code, :observed, :expected, :statistic, :p_value, :threshold,
               CAST(:details AS jsonb))
           ON CONFLICT ON CONSTRAINT uq_risk_warning_method_period_series_grid DO NOTHING
           RETURNING id"""),
        {**warning, "period": period.label, "start": period.start, "end": period.end,
         "kind": options.by, "g": generation,
         "details": json.dumps(warning["details"], ensure_ascii=False)}).first()
    if row is None:
        warning["id"] = conn.execute(text(
            """SELECT id FROM risk_warning WHERE method = :m AND period = :p AND series = :s
                   AND grid_code = :g"""),
            {"m": warning["method"], "p": period.label, "s": warning["series"],
             "g": warning["grid_code"]}).scalar_one()
        return
    warning["id"], warning["new"] = row.id, True
    class_code = (warning["series"] if options.by == "class"
                  else dominant.get((warning["grid_code"], warning["series"]))
                  or dominant.get((None, warning["series"])))
    if class_code is None:
        return
    route = route_case(conn, class_code, warning["street_code"],
                       on=(period.end - timedelta(seconds=1)).date())
    conn.execute(text(
        """INSERT INTO warning_notice (warning_id, class_code, department_id, handler_id,
               fallback, route_reason) VALUES (:w, :c, :d, :h, :f, :r)"""),
        {"w": row.id, "c": class_code, "d": route.department_id, "h": route.handler_id,
         "f": route.fallback, "r": route.reason})
    warning["notice"] = {"class_code": class_code, "department": route.department_name,
                         "handler": route.handler_name, "reason": route.reason}


def _dominant_classes(conn: Connection, generation: int, period: Period,
                      options: ScanOptions) -> dict[tuple[str | None, str], str]:
    """The most reported class per (grid, line) in the period, and per line district-wide
    (key ``(None, line)``), falling back to the line's first class: the class a notice is
    routed by."""
    counts: dict[tuple[str | None, str], dict[str, int]] = defaultdict(dict)
    for grid, line, code, n in conn.execute(text(
            """SELECT u.code, c.line, c.code, count(*) FROM incident i
               JOIN incident_class c ON c.code = i.class_code JOIN unit u ON u.id = i.grid_id
               WHERE i.generation_id = :g AND i.reported_at >= :a AND i.reported_at < :b
                 AND c.line = ANY(:l) GROUP BY 1, 2, 3"""),
            {"g": generation, "a": period.start, "b": period.end, "l": list(options.lines)}):
        counts[(grid, line)][code] = n
        counts[(None, line)][code] = counts[(None, line)].get(code, 0) + n
    for line, code in conn.execute(text(
            "SELECT line, min(code) FROM incident_class WHERE line = ANY(:l) GROUP BY line"),
            {"l": list(options.lines)}):
        counts[(None, line)].setdefault(code, 0)
    return {key: min(codes, key=lambda c, d=codes: (-d[c], c)) for key, codes in counts.items()}


def list_warnings(conn: Connection, period: str | None = None) -> list[dict]:
    """Recorded warnings with their notices, newest period first."""
    return [dict(r) for r in conn.execute(text(
        """SELECT w.id, w.method, w.period, w.series_kind, w.series, w.grid_code, w.street_code,
                  w.observed, w.expected, w.statistic, w.p_value, w.threshold, w.details,
                  n.class_code, d.name AS department, h.name AS handler, n.route_reason
           FROM risk_warning w LEFT JOIN warning_notice n ON n.warning_id = w.id
           LEFT JOIN department d ON d.id = n.department_id
           LEFT JOIN department h ON h.id = n.handler_id
           WHERE CAST(:p AS text) IS NULL OR w.period = :p
           ORDER BY w.period_start DESC, w.method, w.p_value"""), {"p": period}).mappings()]
