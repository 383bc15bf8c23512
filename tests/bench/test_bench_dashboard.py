"""bench/dashboard.py end to end on a small simulated district: its JSON line, and the old and
new dashboard figures equal (zero disagreements). Correctness only, no timing."""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest

from bench import dashboard as bench_dashboard
from etl.simulate_cases import SimulationConfig, load_cases, load_incidents, prepare_district
from gis.database import get_engine
from gis.periods import SHANGHAI

FIELDS = {"database", "cases", "repeat", "scenarios", "old_total_s", "new_total_s",
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
    engine.dispose()
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
