"""Risk early warning: the Poisson chart (the exact conditional test of two Poisson rates: by
hand, against scipy, its exact size, a planted spike) and Gi* hot spots on synthetic data with
planted spikes and clusters, the seasonal factor (by hand, and on simulated null worlds with
and without a season and a planted trough spike), then a scan in the database with routing
notices."""

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
    conditional_limit,
    conditional_tail,
    expected_counts,
    gi_star_hotspots,
    history_years,
    list_warnings,
    poisson_alarms,
    queen_weights,
    rate_ratio_score,
    scan,
    seasonal_factor,
)
from tests.factories import lattice

N = 20  # a 20 × 20 lattice of square "grids"


@pytest.fixture(scope="module")
def weights():
    geoms = [shapely.box(i, j, i + 1, j + 1) for j in range(N) for i in range(N)]
    return queen_weights(geoms, [f"{j:02d}{i:02d}" for j in range(N) for i in range(N)])


# -- Poisson control chart: the conditional test -----------------------------------------------
JULY = 31 / 365  # the rate ratio r = f·t/T of a 31-day month against a 365-day baseline, f = 1


def test_conditional_tail_by_hand():
    # r = 1 (p0 = 1/2): 2 of n = 3 events in the period or more, (3 + 1) / 8
    assert conditional_tail([2], [1], 1.0)[0] == pytest.approx(4 / 8)
    # r = 1/2 (p0 = 1/3), x = 3, b = 2: (10·2² + 5·2 + 1) / 3⁵
    assert conditional_tail([3], [2], 0.5)[0] == pytest.approx(51 / 243)
    # no event in the baseline window: all x events in the period, p0^x
    p0 = 31 / (31 + 365)
    assert conditional_tail([3], [0], JULY)[0] == pytest.approx(p0 ** 3)
    assert conditional_tail([3], [0], JULY)[0] == pytest.approx(4.80e-4, rel=1e-3)
    # the seasonal factor scales the ratio: f = 2 doubles r, p0 = 62 / 427
    assert conditional_tail([3], [0], 2 * JULY)[0] == pytest.approx((62 / 427) ** 3)
    # nothing seen: p = 1, whatever the baseline
    assert conditional_tail([0, 0], [0, 40], JULY).tolist() == [1.0, 1.0]
    with pytest.raises(ValueError):
        conditional_tail([1], [1], 0.0)


def test_conditional_tail_is_scipys_one_sided_binomial_test():
    for x, b, r in [(1, 0, JULY), (3, 0, 1.42 * JULY), (5, 14, JULY), (9, 37, 0.41 * JULY),
                    (14, 6, 1.375 * JULY), (0, 3, JULY), (40, 400, 0.25 * JULY)]:
        n, p0 = x + b, r / (1 + r)
        exact = stats.binomtest(x, n, p0, alternative="greater").pvalue if n else 1.0
        assert conditional_tail([x], [b], r)[0] == pytest.approx(exact, rel=1e-9)
        assert conditional_tail([x], [b], r)[0] == pytest.approx(stats.binom.sf(x - 1, n, p0))


def test_conditional_limit_is_the_first_count_that_warns():
    # no baseline, 6.9e-6 (the demo's threshold): p0⁴ = 3.8e-5 > 6.9e-6 ≥ p0⁵ = 2.9e-6
    assert conditional_limit([0], JULY, 6.9e-6).tolist() == [5]
    baseline = np.arange(0, 120)
    for alpha in (0.05, 1e-3, 5e-5, 6.9e-6):
        for r in (0.25 * JULY, JULY, 1.42 * JULY, 4.0):
            limit = conditional_limit(baseline, r, alpha)
            assert (conditional_tail(limit, baseline, r) <= alpha).all()
            assert (conditional_tail(limit - 1, baseline, r) > alpha).all()
            assert (np.diff(limit) >= 0).all()  # more history, a higher limit
    assert conditional_limit([[3, 4], [5, 6]], JULY, 1e-3).shape == (2, 2)


def test_the_score_is_the_binomial_z_and_the_rise_over_lambda():
    x, b, r = 14, 6, 1.375 * JULY
    n, p0 = x + b, r / (1 + r)
    z = rate_ratio_score([x], [b], r)[0]
    assert z == pytest.approx((x - n * p0) / np.sqrt(n * p0 * (1 - p0)))
    assert z == pytest.approx((x - r * b) / np.sqrt(r * (x + b)))
    assert rate_ratio_score([3, 0], [0, 0], JULY).tolist() == [pytest.approx(np.sqrt(3 / JULY)),
                                                                0.0]


def test_expected_counts_scale_the_baseline_and_floor_at_half_an_event():
    assert expected_counts([365, 0], 30, 365).tolist() == [30.0, pytest.approx(0.5 * 30 / 365)]


def _poisson_pmf(mean: float) -> np.ndarray:
    return stats.poisson.pmf(np.arange(int(mean + 12 * np.sqrt(mean) + 30)), mean)


@pytest.mark.parametrize("monthly", [0.5, 1.0, 2.0, 4.0, 8.0])
def test_the_conditional_test_keeps_its_level_exactly_where_the_known_rate_test_did_not(
        monthly):
    """The exact size of one grid's test at the level α/m = 0.05 / 1000, summed over every
    baseline count b and period count x a grid with a steady rate can have (no simulation):
    the conditional test stays within the level at any rate; the old chart, which took
    λ = max(b, ½)·t/T as the known mean, exceeds it (its baseline estimated low by chance)."""
    level, t, big_t = 0.05 / 1000, 31, 365
    pb, px = _poisson_pmf(monthly * 12), _poisson_pmf(monthly)
    b, x = np.meshgrid(np.arange(len(pb)), np.arange(len(px)), indexing="ij")
    joint = pb[:, None] * px[None, :]
    warns = (conditional_tail(x, b, t / big_t) <= level) & (x >= 3)
    old = (stats.poisson.sf(x - 1, expected_counts(b, t, big_t)) <= level) & (x >= 3)
    assert joint[warns].sum() <= level
    assert joint[old].sum() > level


def test_a_planted_spike_is_detected_and_noise_stays_quiet():
    rng = np.random.default_rng(1)
    monthly = rng.uniform(0.5, 4, 1200)
    baseline, observed = rng.poisson(monthly * 12), rng.poisson(monthly)
    observed[17] = int(monthly[17] * 5 + 12)
    result = poisson_alarms(observed, baseline, 1 / 12, alpha=0.05, min_count=3)
    assert np.nonzero(result.alarm)[0].tolist() == [17]
    assert result.threshold == pytest.approx(0.05 / 1200)
    assert (result.alarm == (observed >= result.limit)).all()
    assert result.statistic[17] == pytest.approx(rate_ratio_score(
        [observed[17]], [baseline[17]], 1 / 12)[0])
    noisy_runs = 0
    for seed in range(200):
        noise = np.random.default_rng(seed)
        noisy_runs += poisson_alarms(noise.poisson(monthly), noise.poisson(monthly * 12),
                                     1 / 12, alpha=0.05).alarm.any()
    assert noisy_runs <= stats.binom.ppf(0.999, 200, 0.05)  # 21; measured 2


def test_a_rare_series_needs_min_count():
    result = poisson_alarms([2], [0], [0.01], alpha=0.05, n_series=10, min_count=3)
    assert result.p_value[0] < 1e-3 and not result.alarm[0]
    assert result.limit[0] == 3  # 2 would pass the test; min_count sets the limit


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


def _chart(world: SeasonalWorld, period, *, seasonal: bool, observed: np.ndarray | None = None,
           known_rate: bool = False):
    """The chart of :func:`gis.warnings.scan` on the world's counts: each grid's count in the
    period against its count in the 365 days before, times the seasonal factor estimated
    from the district's totals in the same windows of earlier years. With ``known_rate``, the
    old chart instead: ``P(X ≥ x)`` for ``X ~ Poisson(f·max(b, ½)·t/365)``, λ taken as known."""
    baseline = world.count(period.start - timedelta(days=365), period.start)
    factor = 1.0
    if seasonal:
        years = history_years(period.start, period.end, SeasonalWorld.DATA_START)
        factor = seasonal_factor([world.count(*y.window).sum() for y in years],
                                 [world.count(*y.reference).sum() for y in years],
                                 period.days).factor
    if observed is None:
        observed = world.count(period.start, period.end)
    if known_rate:
        p = stats.poisson.sf(observed - 1, expected_counts(baseline, period.days, 365) * factor)
        return (p <= 0.05 / len(observed)) & (observed >= 3)
    return poisson_alarms(observed, baseline, factor * period.days / 365, alpha=0.05,
                          min_count=3).alarm


# Null worlds (no spike) per simulation, and the most worlds with a false alarm a chart within
# the family-wise α = 0.05 may have: the 99.9 % point of Binomial(1000, 0.05) (mean 50, sd 6.9).
# A chart whose family-wise rate is 5 % exceeds it with probability 0.1 %, whatever the seeds;
# one at the old chart's 10 % (measured 106 of 1000 flat worlds) fails it.
WORLDS = 1000
WITHIN_ALPHA = int(stats.binom.ppf(0.999, WORLDS, 0.05))


def _worlds(period, amplitude: float) -> list[SeasonalWorld]:
    cuts = _chart_cuts(period)
    return [SeasonalWorld(seed, cuts, amplitude=amplitude) for seed in range(WORLDS)]


def test_on_a_flat_null_the_conditional_chart_stays_within_alpha():
    """1000 seeded flat worlds (no season) × 1000 grids, July 2018: the chart raises a false
    alarm in no more than α of them, with or without the seasonal factor (measured 31 and
    29 of 1000); the old chart, which took each grid's baseline rate as known, did not (106)."""
    assert WITHIN_ALPHA == 73
    period = parse_period("2018-07")
    worlds = _worlds(period, 0.0)
    stationary = sum(_chart(w, period, seasonal=False).any() for w in worlds)
    seasonal = sum(_chart(w, period, seasonal=True).any() for w in worlds)
    old = sum(_chart(w, period, seasonal=False, known_rate=True).any() for w in worlds)
    assert stationary <= WITHIN_ALPHA and seasonal <= WITHIN_ALPHA  # measured 31 and 29
    assert old > WITHIN_ALPHA  # measured 106


def test_on_a_seasonal_null_the_peak_month_is_within_alpha_with_the_seasonal_factor():
    """The same with the season, July 2018 (the peak, factor from 2016 and 2017): without the
    factor the chart alarms in most worlds (the period's rate is 1.6 times the baseline's);
    with it, in no more than α of them (measured 24 of 1000)."""
    period = parse_period("2018-07")
    assert len(history_years(period.start, period.end, SeasonalWorld.DATA_START)) == 2
    worlds = _worlds(period, 0.6)
    stationary = [_chart(w, period, seasonal=False) for w in worlds]
    seasonal = sum(_chart(w, period, seasonal=True).any() for w in worlds)
    assert sum(a.any() for a in stationary) >= 500  # measured 629
    assert sum(a.sum() for a in stationary) >= 800  # measured 984
    assert seasonal <= WITHIN_ALPHA  # measured 24


def test_on_a_seasonal_null_the_trough_month_stays_within_alpha():
    """January 2018 (the trough): the stationary chart is blind (no alarm, and so no power
    either), the seasonal chart alarms in no more than α of the worlds (measured 12 of
    1000)."""
    period = parse_period("2018-01")
    worlds = _worlds(period, 0.6)
    assert sum(_chart(w, period, seasonal=False).any() for w in worlds) == 0
    assert sum(_chart(w, period, seasonal=True).any() for w in worlds) <= WITHIN_ALPHA


def test_a_spike_in_the_trough_month_is_found_by_the_seasonal_chart_only():
    """January 2018 (the trough, factor 0.41 from 2016 and 2017): a grid that averages 3 a
    month, so about 1.3 in January, with 37 in its baseline year, reports 9. Without the
    factor the chart compares 9 with its yearly average (λ = 3.1: p = 0.009, limit 14) and
    misses it; with it, λ = 1.3 (p = 1.9e-5 ≤ 0.05 / 1000, limit 9): found, and nothing
    else."""
    period = parse_period("2018-01")
    world = SeasonalWorld(7, _chart_cuts(period))
    observed = world.count(period.start, period.end)
    spike = int(np.argmin(np.abs(world.daily * period.days - 3)))  # about 3 a month
    assert observed[spike] <= 3
    assert world.count(period.start - timedelta(days=365), period.start)[spike] == 37
    observed[spike] = 9
    stationary = _chart(world, period, seasonal=False, observed=observed)
    seasonal = _chart(world, period, seasonal=True, observed=observed)
    assert not stationary.any()
    assert np.nonzero(seasonal)[0].tolist() == [spike]


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
    # the conditional test by hand: 14 of the grid's 14 + 6 events fall in May, where the
    # baseline's rate times f gives each a chance p0 = r / (1 + r), r = f · 31 / 365
    r = factor * 31 / 365
    p0 = r / (1 + r)
    assert warning["p_value"] == pytest.approx(stats.binom.sf(13, 20, p0))
    assert warning["statistic"] == pytest.approx((14 - 20 * p0) / np.sqrt(20 * p0 * (1 - p0)))
    assert warning["threshold"] == pytest.approx(0.05 / 48)
    limit = warning["details"]["limit"]
    assert stats.binom.sf(limit - 1, limit + 6, p0) <= 0.05 / 48 < stats.binom.sf(
        limit - 2, limit + 5, p0)
    assert warning["details"] == {"limit": limit, "baseline": 6,
                                  "seasonal_factor": pytest.approx(factor)}
    assert listed[0]["details"]["seasonal_factor"] == pytest.approx(factor)
    (flat,) = stationary.warnings
    assert flat["expected"] == pytest.approx(6 * 31 / 365)
    assert flat["p_value"] == pytest.approx(stats.binom.sf(13, 20, 31 / (31 + 365)))
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

