"""bench/dashboard.py end to end on a small simulated district: its JSON line, the old and new
dashboard figures equal (zero disagreements), and no scratch copy left behind. Correctness only,
no timing."""

from __future__ import annotations

import json
import os
from datetime import date, datetime

import psycopg
import pytest

from bench import dashboard as bench_dashboard
from bench.assign import libpq
from etl.simulate_cases import SimulationConfig, load_cases, load_incidents, prepare_district
from gis.database import get_engine
from gis.periods import SHANGHAI

FIELDS = {"database", "setting", "cases", "repeat", "scenarios", "old_total_s", "new_total_s",
          "ratio_total", "ratio_min", "new_max_s", "disagreements"}


@pytest.fixture(scope="module")
def district_url(database_factory, template_name):
    url = database_factory.create("bench_dashboard", template=template_name)
    engine = get_engine(url)
    prepare_district(engine)
    config = SimulationConfig.load()
    start, end = date(2019, 11, 1), date(2019, 12, 31)
    load_incidents(engine, seed=8, start=start, end=end, count=600, config=config)
    load_cases(engine, seed=8, start=start, end=end, config=config,
               horizon=datetime(2020, 1, 1, tzinfo=SHANGHAI))
    engine.dispose()  # the benchmark copies it: no other connection may be open
    yield url
    database_factory.drop(url)


def test_dashboard_benchmark(capsys, district_url):
    returned = bench_dashboard.main(["--database-url", district_url, "--levels",
                                     "street,community", "--periods", "2019,2019-12",
                                     "--repeat", "1"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result == returned
    assert set(result) >= FIELDS
    assert result["cases"] == 600
    assert [s["scenario"] for s in result["scenarios"]] == [
        "street 2019", "street 2019-12", "community 2019", "community 2019-12",
        "street 2019 vs 2018"]
    assert result["disagreements"] == 0
    assert result["setting"] == "scratch copy; old way without index 0007"
    with psycopg.connect(libpq(district_url, "postgres")) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                            (f"gridgov_bench_{os.getpid()}%",)).fetchall()
    assert left == []


def test_dashboard_benchmark_in_place(capsys, district_url):
    result = bench_dashboard.main(["--database-url", district_url, "--levels", "district",
                                   "--periods", "2019-11", "--repeat", "1", "--in-place"])
    assert result["setting"].startswith("in place")
    assert [s["scenario"] for s in result["scenarios"]] == ["district 2019-11"]
    assert result["disagreements"] == 0
