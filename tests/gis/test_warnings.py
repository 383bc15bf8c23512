"""Risk early warning: the Poisson chart and Gi* hot spots on synthetic data with planted
spikes and clusters, the seasonal factor (by hand, and on a simulated seasonal null and a
planted trough spike), then a scan in the database with routing notices."""

from __future__ import annotations

from datetime import datetime, timedelta

import esda
import numpy as np
import pytest
import shapely
from scipy import stats
from sqlalchemy import text

from gis.incidents import report_incident
from gis.periods import SHANGHAI, parse_period
from gis.warnings import (
    ScanOptions,
    benjamini_hochberg,
    expected_counts,
    gi_star_hotspots,
    history_years,
    list_warnings,
    poisson_alarms,
    poisson_limit,
    poisson_tail,
    queen_weights,
    scan,
    seasonal_factor,
)
from tests.factories import lattice

N = 20  # a 20 × 20 lattice of square "grids"


@pytest.fixture(scope="module")
def weights():
    geoms = [shapely.box(i, j, i + 1, j + 1) for j in range(N) for i in range(N)]
    return queen_weights(geoms, [f"{j:02d}{i:02d}" for j in range(N) for i in range(N)])


# -- Poisson control chart -----------------------------------------------------------------------
def test_poisson_tail_and_limit():
    lam = 2.0
    by_hand = 1 - sum(np.exp(-lam) * lam ** k / np.prod(range(1, k + 1)) for k in range(5))
    assert poisson_tail([5], [lam])[0] == pytest.approx(by_hand)
    assert poisson_tail([0], [lam])[0] == pytest.approx(1.0)
    for alpha in (0.05, 1e-3, 1e-5):
        limit = int(poisson_limit([lam], alpha)[0])
        assert poisson_tail([limit], [lam])[0] <= alpha < poisson_tail([limit - 1], [lam])[0]


def test_expected_counts_scale_the_baseline_and_floor_at_half_an_event():
    assert expected_counts([365, 0], 30, 365).tolist() == [30.0, pytest.approx(0.5 * 30 / 365)]


def test_a_planted_spike_is_detected_and_noise_stays_quiet():
    rng = np.random.default_rng(1)
    expected = rng.uniform(0.5, 4, 1200)
    observed = rng.poisson(expected)
    observed[17] = int(expected[17] * 5 + 12)
    result = poisson_alarms(observed, expected, alpha=0.05, min_count=3)
    assert np.nonzero(result.alarm)[0].tolist() == [17]
    assert result.threshold == pytest.approx(0.05 / 1200)
    noisy_runs = sum(poisson_alarms(np.random.default_rng(s).poisson(expected), expected,
                                    alpha=0.05).alarm.any() for s in range(200))
    assert noisy_runs <= 20  # family-wise rate ≤ 5% (binomial 200 × 0.05 has sd ~3)


def test_a_rare_series_needs_min_count():
    result = poisson_alarms([2], [0.01], alpha=0.05, n_series=10, min_count=3)
    assert result.p_value[0] < 1e-3 and not result.alarm[0]


# -- the seasonal factor -------------------------------------------------------------------------
def _day(text_: str) -> datetime:
    return datetime.fromisoformat(text_).replace(tzinfo=SHANGHAI)


def test_seasonal_factor_known_thin_and_none():
    # a 30-day window twice as busy as its year: 600 events where 3640 a year give 300
    strong = seasonal_factor([600], [3640], 30)
    assert strong.raw == pytest.approx(2.0) and strong.expected == pytest.approx(300)
    assert strong.factor == pytest.approx(610 / 310) and strong.years == 1
    # pooled over years as a ratio of sums; large counts make the prior negligible
    pooled = seasonal_factor([40_000, 20_000], [364_000, 364_000], 28)
    assert pooled.raw == pytest.approx(60_000 / 56_000)
    assert pooled.factor == pytest.approx(60_010 / 56_010)
    # thin history is shrunk towards 1: 3 events where 1 was expected is 3× raw, 1.18 used
    thin = seasonal_factor([3], [12], 30)
    assert thin.raw == pytest.approx(3 / (12 * 30 / 364))
    assert thin.factor == pytest.approx(13 / (10 + 12 * 30 / 364)) and thin.factor < 1.2
    # clipped to [1/4, 4]
    assert seasonal_factor([5_000], [5_200], 30).factor == 4.0
    assert seasonal_factor([0], [36_400], 30).factor == 0.25
    # no history: no year, or years with no event at all
    assert seasonal_factor([], [], 30) == seasonal_factor([], [], 30, prior=0)
    assert seasonal_factor([], [], 30).factor == 1.0 and seasonal_factor([], [], 30).years == 0
    assert seasonal_factor([0, 0], [0, 0], 30).factor == 1.0
    assert seasonal_factor([0], [0], 30).raw is None
    with pytest.raises(ValueError):
        seasonal_factor([1], [], 30)


def test_history_years_windows_by_hand():
    period = parse_period("2019-07")
    # data from 2018-01-01: one earlier year, the window 52 weeks back (same weekdays), its
    # 364-day reference centred on it ((364 - 31) // 2 = 166 days before)
    (year,) = history_years(period.start, period.end, _day("2018-01-01"))
    assert year.back == 1 and year.window == (_day("2018-07-02"), _day("2018-08-02"))
    assert year.window[0].weekday() == period.start.weekday()
    assert year.reference == (_day("2018-01-17"), _day("2019-01-16"))
    # a trough month at the start of the data: the reference slides forward to the data
    (january,) = history_years(*_span("2019-01"), _day("2018-01-01"))
    assert january.window == (_day("2018-01-02"), _day("2018-02-02"))
    assert january.reference == (_day("2018-01-01"), _day("2018-12-31"))
    # a window across the new year is centred too
    (december,) = history_years(*_span("2019-12"), _day("2018-01-01"))
    assert december.window == (_day("2018-12-02"), _day("2019-01-02"))
    assert december.reference == (_day("2018-06-19"), _day("2019-06-18"))
    # a week's window: 364 - 7 = 357 spare days, 178 before it and 179 after
    (week,) = history_years(*_span("2019-03-04..2019-03-10"), _day("2010-01-01"), years=1)
    assert week.window == (_day("2018-03-05"), _day("2018-03-12"))
    assert week.reference == (_day("2018-03-05") - timedelta(days=178),
                              _day("2018-03-12") + timedelta(days=179))
    # three years back with data enough, each window in its reference
    years = history_years(period.start, period.end, _day("2010-01-01"), years=3)
    assert [y.back for y in years] == [1, 2, 3]
    assert years[2].window[0] == period.start - timedelta(days=3 * 364)
    assert all(y.reference[0] <= y.window[0] < y.window[1] <= y.reference[1] <= period.start
               and y.reference[1] - y.reference[0] == timedelta(days=364) for y in years)
    # no data, data only since the period's year, or a period of a year: no history
    assert history_years(period.start, period.end, None) == []
    assert history_years(period.start, period.end, _day("2018-07-05")) == []
    assert history_years(*_span("2019"), _day("2010-01-01")) == []


def _span(label: str) -> tuple[datetime, datetime]:
    period = parse_period(label)
    return period.start, period.end


class SeasonalWorld:
    """Poisson counts of ``n_grids`` grids from ``DATA_START`` on, no spike: each grid has an
    average rate of 0.5–4 a month and every grid follows one strong seasonal cycle,
    1 + 0.6 cos(2π (day of year − 196) / 365.25) (peak mid-July ×1.6, trough mid-January ×0.4,
    the shape of the simulator's summer classes, amplified). Counts are drawn per stretch
    between the ``cuts`` the chart needs (exact: a Poisson sum over days is Poisson)."""

    DATA_START = _day("2016-01-01")

    def __init__(self, seed: int, cuts, n_grids: int = 1000, amplitude: float = 0.6):
        rng = np.random.default_rng(seed)
        self.daily = rng.uniform(0.5, 4, n_grids) / 30.4375
        self.cuts = sorted(set(cuts) | {self.DATA_START})
        weight = []
        for a, b in zip(self.cuts, self.cuts[1:], strict=False):
            days = np.arange(np.datetime64(a.date()), np.datetime64(b.date()))
            doy = (days - days.astype("datetime64[Y]")).astype(np.int64) + 1
            weight.append((1 + amplitude * np.cos(2 * np.pi * (doy - 196) / 365.25)).sum())
        self.stretches = rng.poisson(self.daily[:, None] * np.array(weight)[None, :])

    def count(self, a: datetime, b: datetime) -> np.ndarray:
        inside = [i for i, (x, y) in enumerate(zip(self.cuts, self.cuts[1:], strict=False))
                  if a <= x and y <= b]
        assert inside and self.cuts[inside[0]] == a and self.cuts[inside[-1] + 1] == b
        return self.stretches[:, inside].sum(axis=1)


def _chart_cuts(period) -> set[datetime]:
    years = history_years(period.start, period.end, SeasonalWorld.DATA_START)
    return {period.start, period.end, period.start - timedelta(days=365)} | {
        t for y in years for t in (*y.window, *y.reference)}


def _chart(world: SeasonalWorld, period, *, seasonal: bool, true_rates: bool = False,
           observed: np.ndarray | None = None):
    """The chart of :func:`gis.warnings.scan` on the world's counts: λ from the 365-day
    baseline (or the grids' true average rates), times the seasonal factor estimated from the
    district's totals in the same windows of earlier years."""
    if true_rates:
        expected = world.daily * period.days
    else:
        expected = expected_counts(world.count(period.start - timedelta(days=365),
                                               period.start), period.days, 365)
    if seasonal:
        years = history_years(period.start, period.end, SeasonalWorld.DATA_START)
        factor = seasonal_factor([world.count(*y.window).sum() for y in years],
                                 [world.count(*y.reference).sum() for y in years], period.days)
        expected = expected * factor.factor
    if observed is None:
        observed = world.count(period.start, period.end)
    return poisson_alarms(observed, expected, alpha=0.05, min_count=3)


def test_on_a_seasonal_null_the_seasonal_factor_keeps_the_peak_month_within_alpha():
    """200 seeded worlds × 1000 grids, no spike, July 2018 (the peak): with the grids' true
    average rates the stationary chart alarms in most worlds; times the seasonal factor
    estimated from 2016 and 2017 it alarms in no more than α of them (at most 10 of 200 on
    average, sd 3)."""
    period = parse_period("2018-07")
    cuts = _chart_cuts(period)
    assert len(history_years(period.start, period.end, SeasonalWorld.DATA_START)) == 2
    worlds = [SeasonalWorld(seed, cuts) for seed in range(200)]
    stationary = [_chart(w, period, seasonal=False, true_rates=True).alarm for w in worlds]
    seasonal = [_chart(w, period, seasonal=True, true_rates=True).alarm for w in worlds]
    assert sum(a.any() for a in stationary) >= 140  # measured 155
    assert sum(a.sum() for a in stationary) >= 200  # measured 286
    assert sum(a.any() for a in seasonal) <= 20  # measured 4


def test_on_a_seasonal_null_the_full_chart_alarms_far_less_with_the_seasonal_factor():
    """The same worlds with λ from each grid's own 365-day baseline, as the scan computes it.
    The seasonal factor removes the season's false alarms (185 → 31 worlds of 200); what is
    left is above α: the noise of a one-year baseline per grid, which the chart does not allow
    for. A flat world (no season) shows it too, 17 of 200 (docs/SUPERVISION.md §5)."""
    period = parse_period("2018-07")
    cuts = _chart_cuts(period)
    worlds = [SeasonalWorld(seed, cuts) for seed in range(200)]
    stationary = sum(_chart(w, period, seasonal=False).alarm.any() for w in worlds)
    seasonal = sum(_chart(w, period, seasonal=True).alarm.any() for w in worlds)
    flat = [SeasonalWorld(seed, cuts, amplitude=0) for seed in range(200)]
    flat_stationary = sum(_chart(w, period, seasonal=False).alarm.any() for w in flat)
    flat_seasonal = sum(_chart(w, period, seasonal=True).alarm.any() for w in flat)
    assert stationary >= 170 and seasonal <= 50  # measured 185 and 31
    assert flat_stationary <= 35 and flat_seasonal <= 35  # measured 17 and 17


def test_on_a_seasonal_null_the_trough_month_stays_within_alpha():
    """January 2018 (the trough), λ from the 365-day baselines: the stationary chart is
    blind (no alarm, and so no power either), the seasonal chart alarms in no more than α of
    the worlds (measured 7 of 200)."""
    period = parse_period("2018-01")
    cuts = _chart_cuts(period)
    worlds = [SeasonalWorld(seed, cuts) for seed in range(200)]
    assert sum(_chart(w, period, seasonal=False).alarm.any() for w in worlds) == 0
    assert sum(_chart(w, period, seasonal=True).alarm.any() for w in worlds) <= 20


def test_a_spike_in_the_trough_month_is_found_by_the_seasonal_chart_only():
    """January 2018 (the trough, factor 0.41 from 2016 and 2017): a grid that averages 3 a
    month, so about 1.3 in January, reports 9. The stationary chart expects its yearly
    average (3.1 from its baseline: p = 0.005) and misses it; the seasonal chart expects 1.3
    (p = 8e-6 ≤ 0.05 / 1000) and finds it, and nothing else."""
    period = parse_period("2018-01")
    world = SeasonalWorld(7, _chart_cuts(period))
    observed = world.count(period.start, period.end)
    spike = int(np.argmin(np.abs(world.daily * period.days - 3)))  # about 3 a month
    assert observed[spike] <= 3
    observed[spike] = 9
    stationary = _chart(world, period, seasonal=False, observed=observed)
    seasonal = _chart(world, period, seasonal=True, observed=observed)
    assert not stationary.alarm.any()
    assert np.nonzero(seasonal.alarm)[0].tolist() == [spike]


# -- Benjamini-Hochberg and Gi* ------------------------------------------------------------------
def test_benjamini_hochberg_by_hand_and_as_esda():
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216])
    rejected, cutoff = benjamini_hochberg(p, 0.05)
    assert rejected.tolist() == [True, True] + [False] * 8 and cutoff == 0.008
    assert ((p <= esda.fdr(p, 0.05)) == rejected).all()  # esda gives k·q/m, same rejections
    assert not benjamini_hochberg(np.full(5, 0.5))[0].any()


def test_gi_star_finds_a_planted_cluster(weights):
    rng = np.random.default_rng(3)
    values = rng.poisson(2, N * N).astype(float)
    cluster = [j * N + i for j in range(8, 11) for i in range(5, 8)]
    values[cluster] += 8
    result = gi_star_hotspots(values, weights, q=0.05)
    hot = set(np.nonzero(result.hot)[0])
    assert set(cluster) <= hot
    near = {j * N + i for j in range(7, 12) for i in range(4, 9)}
    assert hot <= near  # only the cluster and its ring of neighbours
    z = esda.G_Local(values, weights, transform="B", star=True, permutations=0).Zs
    assert np.allclose(result.z, z)


def test_gi_star_with_fdr_keeps_false_positives_down_on_noise(weights):
    runs = [gi_star_hotspots(np.random.default_rng(s).poisson(2, N * N), weights, q=0.05).hot
            for s in range(100)]
    assert sum(r.any() for r in runs) <= 12
    assert sum(r.sum() for r in runs) / (100 * N * N) < 0.002


def test_gi_star_on_flat_values_finds_nothing(weights):
    assert not gi_star_hotspots(np.zeros(N * N), weights).hot.any()
    assert not gi_star_hotspots(np.full(N * N, 3.0), weights).hot.any()


# -- the scan in the database --------------------------------------------------------------------
def _report(conn, cell: tuple[int, int], at: datetime, class_code: str = "E0702") -> None:
    x, y = lattice(*cell)
    report_incident(conn, source="grid_worker", class_code=class_code, reported_at=at,
                    x=x + 0.002, y=y + 0.002)


@pytest.fixture
def reported(world):
    """A year of food-safety reports, one per grid every other month, then a May 2019 with a
    spike of 14 reports in the grid at lattice cell (0, 3)."""
    engine, _, departments = world
    start = datetime(2018, 5, 1, 10, tzinfo=SHANGHAI)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO class_route VALUES ('E0702', :d, 'responsible')"),
                     {"d": departments["msb"]})
        for month in range(0, 12, 2):
            for i in range(4):
                for j in range(4):
                    _report(conn, (i, j), start + timedelta(days=30 * month + i + j))
        may = datetime(2019, 5, 3, 9, tzinfo=SHANGHAI)
        for n in range(14):
            _report(conn, (0, 3), may + timedelta(hours=n))
        _report(conn, (2, 1), may, "E0704")
    return engine, departments


def test_scan_warns_routes_and_records_once(reported):
    engine, departments = reported
    period = parse_period("2019-05")
    options = ScanOptions(methods=("poisson",))
    with engine.begin() as conn:
        stationary = scan(conn, period, ScanOptions(methods=("poisson",), seasonal=False),
                          record=False)
        dry = scan(conn, period, options, record=False)
        assert conn.execute(text("SELECT count(*) FROM risk_warning")).scalar() == 0
        result = scan(conn, period, options)
        again = scan(conn, period, options)
        notice = conn.execute(text("SELECT * FROM warning_notice")).mappings().one()
        listed = list_warnings(conn, "2019-05")
    assert [(w["method"], w["series"], w["grid_code"]) for w in dry.warnings] == [
        ("poisson", "food_drug", "320213001001001")]
    (warning,) = result.warnings
    assert warning["new"] and warning["observed"] == 14
    # the seasonal factor by hand: data from 2018-05-01, so one earlier year; its window
    # 2018-05-02..06-01 holds 15 of the first round of reports, its reference
    # 2018-05-01..2019-04-29 all 96 reports: f = (15 + 10) / (96 · 31 / 364 + 10)
    factor = (15 + 10) / (96 * 31 / 364 + 10)
    assert result.seasonal and result.seasonal_factors["food_drug"] == {
        "factor": pytest.approx(factor), "raw": pytest.approx(15 / (96 * 31 / 364)),
        "observed": 15, "expected": pytest.approx(96 * 31 / 364), "years": 1}
    assert result.seasonal_factors["environment"]["factor"] == 1.0  # no history: 1
    assert warning["expected"] == pytest.approx(6 * 31 / 365 * factor)
    assert warning["details"] == {"limit": warning["details"]["limit"],
                                  "seasonal_factor": pytest.approx(factor)}
    assert listed[0]["details"]["seasonal_factor"] == pytest.approx(factor)
    (flat,) = stationary.warnings
    assert flat["expected"] == pytest.approx(6 * 31 / 365)
    assert flat["details"]["seasonal_factor"] == 1.0
    assert not stationary.seasonal and stationary.seasonal_factors == {}
    assert result.n_series == 16 * 3 and result.poisson_threshold == pytest.approx(0.05 / 48)
    assert again.new == 0 and again.warnings[0]["id"] == warning["id"]
    assert notice["class_code"] == "E0702" and notice["department_id"] == departments["msb"]
    assert warning["notice"]["handler"] == "市场监督管理局"
    assert listed[0]["department"] == "市场监督管理局"


def test_scan_by_class_and_hot_spots(reported):
    engine, _ = reported
    with engine.begin() as conn:
        by_class = scan(conn, parse_period("2019-05"), ScanOptions(by="class"), record=False)
    assert {(w["method"], w["series"]) for w in by_class.warnings} >= {("poisson", "E0702")}
    hot = [w for w in by_class.warnings if w["method"] == "gi_star"]
    assert all(w["series"] == "E0702" and w["statistic"] > 0 for w in hot)
    with engine.connect() as conn:
        classes = conn.execute(text(
            "SELECT count(*) FROM incident_class WHERE line = ANY(:l)"),
            {"l": ["food_drug", "production_safety", "environment"]}).scalar()
    assert by_class.n_series == 16 * classes


def test_warning_map_renders_offline(reported):
    from gis.warnings import read_grids
    from webmap.maps import render_standalone
    from webmap.warning_maps import build_warnings_map

    engine, _ = reported
    with engine.begin() as conn:
        result = scan(conn, parse_period("2019-05"), record=False)
        grids = read_grids(conn, result.generation_id)
    page = render_standalone(build_warnings_map(grids, result.warnings), "风险预警")
    assert "320213001001001" in page and "食品药品安全" in page


def test_poisson_significance_matches_scipy():
    observed, expected = np.array([7, 12]), np.array([1.5, 3.0])
    assert np.allclose(poisson_tail(observed, expected),
                       [stats.poisson.sf(6, 1.5), stats.poisson.sf(11, 3.0)])
