"""The fast indicator path equals the reference path, figure for figure, on simulated data.

``gis.indicators`` computes the counts with one set-based statement for many periods at once
(``evaluate``); the reference queries (``reference=True``) read as docs/INDICATORS.md does, one
period at a time, with one correlated spatial search per closed case. The formulas themselves
are pinned by the hand-computed fixture of ``test_indicators.py``; here the two paths must agree
exactly (``check_exact``) on every indicator of every unit of every level, for calendar and
custom periods, overlapping and empty ones, evaluation moments inside and after the periods,
and several consolidation radii and windows.

One district database: the shipped Liangxi generation, every catalogue, four simulated months
of incidents and their cases (left open from 2019-12-20 on), and a few rows bent to the edges
of the rules: cases whose time differs from their incident's, and cases without a grid.
"""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from etl.simulate_cases import SimulationConfig, load_cases, load_incidents, prepare_district
from gis.case_summary import summarise_cases
from gis.command_centre import TREND_MONTHS, dashboard_figures
from gis.database import get_engine
from gis.indicators import (
    LEVELS,
    IndicatorConfig,
    _search_cells,
    compare_periods,
    evaluate,
    unit_indicators,
)
from gis.periods import SHANGHAI, months_ending, parse_period

SEED = 41
START, END = date(2019, 9, 1), date(2019, 12, 31)
HORIZON = datetime(2019, 12, 20, tzinfo=SHANGHAI)


@pytest.fixture(scope="module")
def engine(database_factory, template_name):
    url = database_factory.create("indicator_paths", template=template_name)
    engine = get_engine(url)
    prepare_district(engine)
    config = SimulationConfig.load()
    load_incidents(engine, seed=SEED, start=START, end=END, count=3000, config=config)
    load_cases(engine, seed=SEED, start=START, end=END, config=config, horizon=HORIZON)
    with engine.begin() as conn:
        # a case filed later than its incident was reported (the case's time is the cohort's),
        # and cases outside any grid (counted nowhere, still possible recurrences)
        conn.execute(text("""UPDATE case_file SET reported_at = reported_at + interval '3 days'
                             WHERE id % 97 = 0"""))
        conn.execute(text("UPDATE case_file SET grid_id = NULL WHERE id % 89 = 0"))
        conn.execute(text("ANALYZE"))
    yield engine
    engine.dispose()
    database_factory.drop(make_url(url).render_as_string(hide_password=False))


def assert_same(engine, requests, **kwargs):
    with engine.connect() as conn:
        fast = evaluate(conn, requests, **kwargs)
        reference = evaluate(conn, requests, reference=True, **kwargs)
    assert len(fast) == len(reference) == len(requests)
    for (period, levels), a, b in zip(requests, fast, reference, strict=True):
        assert list(a) == list(b) == list(levels)
        for level in levels:
            pd.testing.assert_frame_equal(a[level], b[level], check_exact=True,
                                          obj=f"{level} {period.label}")
    return fast


PERIODS = ("2019", "2019Q4", "2019-11", "2019-12", "2019-10-15..2019-12-10", "2018",
           "2019-09-01..2019-09-01")


def test_every_indicator_level_and_period(engine):
    requests = [(parse_period(p), LEVELS) for p in PERIODS]
    fast = assert_same(engine, requests)
    district = fast[0]["district"].iloc[0]
    assert district["cases"] > 2500 and 0 < district["consolidated"] < district["closed"]
    assert fast[5]["district"].iloc[0]["cases"] == 0  # 2018: nothing yet


@pytest.mark.parametrize("as_of", [datetime(2019, 12, 20, tzinfo=SHANGHAI),
                                   datetime(2019, 11, 15, 14, 30, tzinfo=SHANGHAI),
                                   datetime(2019, 9, 1, tzinfo=SHANGHAI)])
def test_evaluation_moments_inside_and_before_the_periods(engine, as_of):
    requests = [(parse_period(p), LEVELS) for p in ("2019Q4", "2019-11", "2019-12")]
    assert_same(engine, requests, as_of=as_of)


def test_requests_with_different_levels_in_one_statement(engine):
    """As the dashboard asks: its period at two levels, twelve months for the district."""
    months = [(parse_period(f"2019-{m:02d}"), ("district",)) for m in range(1, 13)]
    assert_same(engine, [(parse_period("2019"), ("community", "street")), *months])


@pytest.mark.parametrize(("days", "radius"), [(7, 10.0), (60, 150.0), (0, 50.0), (30, 0.0)])
def test_other_consolidation_windows_and_radii(engine, days, radius):
    config = IndicatorConfig(consolidation_days=days, consolidation_radius_m=radius)
    requests = [(parse_period(p), LEVELS) for p in ("2019-10", "2019-11-10..2019-12-05")]
    assert_same(engine, requests, config=config)


def test_recurrences_cross_cells_of_the_search(engine):
    """The data exercise the fast path's pairing: recurrences (by the reference rule) lie in
    another spatial cell or time bucket than the closed case they follow, not only in its own."""
    cells = _search_cells(IndicatorConfig())
    with engine.connect() as conn:
        crossings = conn.execute(text("""
            SELECT count(*) FILTER (WHERE floor(ST_X(i.geom) / :cell)
                                          <> floor(ST_X(ri.geom) / :cell)
                                      OR floor(ST_Y(i.geom) / :cell)
                                          <> floor(ST_Y(ri.geom) / :cell)) AS space,
                   count(*) FILTER (WHERE floor(date_part('epoch', c.closed_at) / :bucket)
                                       <> floor(date_part('epoch', r.reported_at) / :bucket))
                     AS time
            FROM case_file c
            JOIN incident i ON i.id = c.incident_id AND i.reported_at = c.incident_reported_at
            JOIN case_file r ON r.class_code = c.class_code AND r.id <> c.id
                            AND r.reported_at > c.closed_at
                            AND r.reported_at <= c.closed_at + interval '30 days'
                            AND r.state NOT IN ('not_accepted', 'duplicate', 'void')
            JOIN incident ri ON ri.id = r.incident_id AND ri.reported_at = r.incident_reported_at
            WHERE ST_DWithin(ri.geom::geography, i.geom::geography, 50)
            """), cells).one()
    assert crossings.space > 0 and crossings.time > 0


def test_dashboard_figures_equal_the_old_pages_calls(engine):
    """The dashboard's one statement gives what its separate reference calls gave."""
    period, compare = parse_period("2019Q4"), parse_period("2019Q3")
    with engine.connect() as conn:
        figures = dashboard_figures(conn, "community", period, now=HORIZON, compare=compare)
        old = {"table": unit_indicators(conn, "community", period, as_of=HORIZON,
                                        reference=True),
               "streets": unit_indicators(conn, "street", period, as_of=HORIZON,
                                          reference=True),
               "trend": [unit_indicators(conn, "district", month, as_of=HORIZON,
                                         reference=True).iloc[0]
                         for month in months_ending(period, TREND_MONTHS)],
               "comparison": compare_periods(conn, "community", compare, period, as_of=HORIZON,
                                             reference=True),
               "summary": summarise_cases(conn, period, HORIZON)}
    pd.testing.assert_frame_equal(figures.table, old["table"], check_exact=True)
    pd.testing.assert_frame_equal(figures.streets, old["streets"], check_exact=True)
    pd.testing.assert_frame_equal(figures.comparison, old["comparison"], check_exact=True)
    assert [m.label for m, _ in figures.trend] == [f"2019-{m:02d}" for m in range(1, 13)]
    for (_, new), before in zip(figures.trend, old["trend"], strict=True):
        pd.testing.assert_series_equal(new, before, check_exact=True)
    assert figures.summary == old["summary"]
