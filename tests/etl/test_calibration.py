"""The shipped knobs reproduce the district's 2018 → 2019 figures (DOMAIN.md §1).

Incidents and cases are simulated with the seed, range and volume the calibration used (the
defaults of `gridgov simulate`, as `make demo` runs it), and every figure is read from the
indicator engine: nothing is written in. Each year is evaluated at its own end (the engine
caps ``as_of`` at the end of the period), so later events do not change it.
"""

from __future__ import annotations

import pytest

from etl.cli import main
from etl.simulate_cases import SimulationConfig, load_cases, load_incidents, prepare_district
from gis.database import get_engine
from gis.indicators import change_share, compare_periods, pass_rate, unit_indicators
from gis.periods import parse_period

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def knobs() -> SimulationConfig:
    return SimulationConfig.load()


@pytest.fixture(scope="module")
def simulated(database_factory, template_name, knobs):
    """2018–2019 simulated with the shipped knobs, as the calibration did."""
    run = knobs.calibration
    url = database_factory.create("calibration", template=template_name)
    engine = get_engine(url)
    prepare_district(engine)
    load_incidents(engine, seed=run["seed"], start=run["start"], end=run["end"],
                   count=run["count"], config=knobs)
    summary = load_cases(engine, seed=run["seed"], start=run["start"], end=run["end"],
                         config=knobs)
    assert summary.cases > 0.95 * run["count"]
    yield engine
    database_factory.drop(url)


def test_the_calibration_is_what_make_demo_runs(knobs):
    defaults = {p.name: p.default for p in main.commands["simulate"].params}
    run = knobs.calibration
    assert (defaults["seed"], defaults["count"]) == (run["seed"], run["count"])
    assert (defaults["start"], defaults["end"]) == (f"{run['start']:%Y-%m-%d}",
                                                    f"{run['end']:%Y-%m-%d}")
    assert defaults["cases"] is True


@pytest.mark.parametrize(("year", "expected"), [(2018, 0.847), (2019, 0.976)])
def test_on_time_closure_rate_of_the_district(simulated, year, expected):
    with simulated.connect() as conn:
        district = unit_indicators(conn, "district", parse_period(str(year)))
    assert district["due_to_close"].iloc[0] > 10_000
    assert district["on_time_closure_rate"].iloc[0] == pytest.approx(expected, abs=0.010)


@pytest.mark.parametrize(("year", "expected"), [(2018, 0.342), (2019, 0.886)])
def test_pass_rate_of_the_communities(simulated, year, expected):
    with simulated.connect() as conn:
        communities = unit_indicators(conn, "community", parse_period(str(year)))
    assert len(communities) == 156
    assert pass_rate(communities) == pytest.approx(expected, abs=0.03)


def test_occurrence_falls_in_most_communities(simulated):
    with simulated.connect() as conn:
        comparison = compare_periods(conn, "community", parse_period("2018"),
                                     parse_period("2019"))
    assert change_share(comparison, "occurrence_per_km2_month", "down") > 0.5


def test_the_recorded_figures_are_the_engines(simulated, knobs):
    """The figures written into simulation.toml are those the engine gives now."""
    with simulated.connect() as conn:
        for year in (2018, 2019):
            period = parse_period(str(year))
            district = unit_indicators(conn, "district", period)
            communities = unit_indicators(conn, "community", period)
            assert knobs.calibration[f"on_time_closure_{year}"] == pytest.approx(
                district["on_time_closure_rate"].iloc[0], abs=0.0001)
            assert knobs.calibration[f"pass_rate_{year}"] == pytest.approx(
                pass_rate(communities), abs=0.0001)
