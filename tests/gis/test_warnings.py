"""Risk early warning: the Poisson chart and Gi* hot spots on synthetic data with planted
spikes and clusters, then a scan in the database with routing notices."""

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
    list_warnings,
    poisson_alarms,
    poisson_limit,
    poisson_tail,
    queen_weights,
    scan,
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
    assert warning["expected"] == pytest.approx(6 * 31 / 365)
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
