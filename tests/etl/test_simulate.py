"""`gridgov simulate`: determinism, plausibility, everything inside the district, dirty rows."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner

from etl.cli import main
from etl.incidents import FrameReader, ImportOptions, import_file, import_reader
from etl.simulate import (
    CLASS_WEIGHTS,
    HOTSPOTS,
    M_PER_DEG_LAT,
    SOURCE_SHARES,
    Area,
    area_from_engine,
    area_from_file,
    simulate,
    write,
)
from gis.assign import GridIndex
from gis.boundaries import activate, create_generation, read_generation
from gis.catalogues import load_classes, read_classes
from gis.config import BOUNDARIES_DIR, SHIPPED_BOUNDARIES
from gis.models import SOURCES
from tests.factories import small_hierarchy

OUTLINE = BOUNDARIES_DIR / "liangxi-outline.geojson"


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path, monkeypatch):
    """Rejects files of in-memory imports go to the current directory: keep it out of the repo."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def liangxi_area() -> Area:
    return area_from_file(OUTLINE)


@pytest.fixture(scope="module")
def year(liangxi_area) -> pd.DataFrame:
    """A big sample for the plausibility checks."""
    return simulate(liangxi_area, seed=7, count=60_000)


@pytest.fixture
def store(fresh_engine):
    load_classes(fresh_engine)
    activate(fresh_engine, create_generation(fresh_engine, small_hierarchy(), name="g1"))
    return fresh_engine


# -- determinism ---------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".geojson"])
def test_same_seed_same_bytes_other_seed_other_rows(liangxi_area, tmp_path, suffix):
    def written(seed: int, name: str) -> bytes:
        frame = simulate(liangxi_area, seed=seed, count=2_000, dirty=0.05)
        return write(frame, tmp_path / f"{name}{suffix}").read_bytes()

    assert written(1, "a") == written(1, "b")
    assert written(1, "a") != written(2, "c")


def test_rows_are_well_formed(year):
    assert list(year.columns) == ["source_key", "source", "class_code", "description",
                                  "reported_at", "lon", "lat", "crs"]
    assert year["source_key"].is_unique
    assert set(year["source"]) <= set(SOURCES)
    known = {row["code"] for row in read_classes()}
    assert set(CLASS_WEIGHTS) <= known and set(year["class_code"]) <= known
    times = pd.to_datetime(year["reported_at"], format="ISO8601")
    assert times.is_monotonic_increasing
    assert times.min() >= pd.Timestamp("2018-01-01T00:00+08:00")
    assert times.max() < pd.Timestamp("2020-01-01T00:00+08:00")
    assert year["reported_at"].str.endswith("+08:00").all()


# -- plausibility --------------------------------------------------------------------------------
def _local(frame: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(frame["reported_at"].str[:19])


def test_hotspots_concentrate_reports(year, liangxi_area):
    spot = next(h for h in HOTSPOTS if h.name == "崇安寺")
    dx = (year["lon"] - spot.lon) * M_PER_DEG_LAT * np.cos(np.radians(spot.lat))
    dy = (year["lat"] - spot.lat) * M_PER_DEG_LAT
    near = float((np.hypot(dx, dy) < 500).mean())
    uniform = np.pi * 500**2 / 74.5e6  # the share a uniform spread would put there
    assert near > 6 * uniform
    station = next(h for h in HOTSPOTS if h.name == "无锡火车站")
    at_station = np.hypot((year["lon"] - station.lon) * 95_000,
                          (year["lat"] - station.lat) * M_PER_DEG_LAT) < 300
    station_mix = year.loc[at_station, "class_code"].value_counts(normalize=True)
    overall_mix = year["class_code"].value_counts(normalize=True)
    assert station_mix["E0407"] > 2 * overall_mix["E0407"]  # 黑车拉客 at the station


def test_weekly_and_daily_rhythm_by_source(year):
    local = _local(year)
    weekend = local.dt.day_of_week >= 5
    days = pd.Series(pd.date_range("2018-01-01", "2019-12-31")).dt.day_of_week >= 5
    per_day = {}
    for source in ("grid_worker", "hotline"):
        mine = year["source"] == source
        per_day[source] = ((mine & ~weekend).sum() / (~days).sum(),
                           (mine & weekend).sum() / days.sum())
    assert per_day["grid_worker"][0] > 2.5 * per_day["grid_worker"][1]
    assert per_day["hotline"][1] >= per_day["hotline"][0]
    hours = local.dt.hour
    worker = year["source"] == "grid_worker"
    assert ((hours[worker] >= 8) & (hours[worker] < 19)).mean() > 0.95
    assert (hours[year["source"] == "hotline"] < 7).mean() > 0.03


def test_class_mix_and_seasons(year):
    top = year["class_code"].value_counts().index[:5]
    assert top[0] == "E0102" and {"E0102", "E0404", "E0406", "E0201"} <= set(top)
    month = _local(year).dt.month
    garbage = year["class_code"] == "E0102"
    assert (garbage & (month == 7)).sum() > 1.5 * (garbage & (month == 1)).sum()
    ice = month[year["class_code"] == "E0507"]
    assert len(ice) and ice.isin([12, 1, 2]).mean() > 0.8 and not ice.isin(range(5, 10)).any()
    shares = year["source"].value_counts(normalize=True)
    for source, share in SOURCE_SHARES.items():
        assert abs(shares[source] - share) < 0.02


# -- inside the district -------------------------------------------------------------------------
def test_every_row_lies_in_the_outline(year, liangxi_area):
    assert liangxi_area.contains(year["lon"].to_numpy(), year["lat"].to_numpy()).all()


def test_small_district_every_row_loads_assigned(store):
    area = area_from_engine(store)
    frame = simulate(area, seed=3, count=3_000, start=date(2019, 1, 1), end=date(2019, 3, 31))
    places = {d.split("：")[1].split("附近")[0] for d in frame["description"] if "附近" in d}
    assert places == {"崇安寺", "南禅寺"}  # the hotspots inside this small district
    summary = import_reader(store, FrameReader(frame, "sim"), ImportOptions())
    assert (summary.loaded, summary.assigned, summary.rejected) == (3_000, 3_000, 0)


def test_a_geopackage_with_grids_is_filled_exactly(tmp_path):
    grids = small_hierarchy()["grid"]
    path = tmp_path / "small.gpkg"
    grids.to_file(path, layer="grid")
    frame = simulate(area_from_file(path), seed=2, count=5_000)
    codes = GridIndex.from_geodataframe(grids).assign_codes(frame["lon"], frame["lat"])
    assert all(code is not None for code in codes)


def test_liangxi_every_row_assigns(request):
    if not SHIPPED_BOUNDARIES.exists():
        pytest.skip(f"{SHIPPED_BOUNDARIES} not generated yet")
    grids = read_generation(request.getfixturevalue("liangxi_engine"))["grid"]
    frame = simulate(Area.from_grids(grids), seed=11, count=50_000)
    codes = GridIndex.from_geodataframe(grids).assign_codes(frame["lon"], frame["lat"])
    assert all(code is not None for code in codes)


# -- dirty rows ----------------------------------------------------------------------------------
def test_dirty_rows_exercise_the_import(store):
    frame = simulate(area_from_engine(store), seed=5, count=4_000, dirty=0.1)
    kinds = frame.pop("dirty").value_counts()
    assert set(kinds.index) == {"", "bad_date", "swapped", "gcj02", "unknown_class"}
    summary = import_reader(store, FrameReader(frame, "dirty"), ImportOptions())
    assert summary.rejected == kinds["bad_date"] + kinds["unknown_class"]
    assert summary.swapped == kinds["swapped"]
    assert summary.loaded == summary.assigned == 4_000 - summary.rejected
    assert "class_code: unknown class" in summary.rejected_by_reason
    assert set(summary.rejected_by_reason) <= {"reported_at: unparseable time",
                                               "reported_at: missing",
                                               "class_code: unknown class"}


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".geojson"])
def test_written_files_import_like_the_rows(store, tmp_path, suffix):
    frame = simulate(area_from_engine(store), seed=6, count=1_000, dirty=0.1)
    kinds = frame["dirty"].value_counts()
    path = write(frame, tmp_path / f"sim{suffix}")
    summary = import_file(store, path, ImportOptions())
    assert summary.rejected == kinds["bad_date"] + kinds["unknown_class"]
    assert summary.swapped == kinds["swapped"]
    assert summary.loaded == summary.assigned == 1_000 - summary.rejected


def test_an_area_outside_every_hotspot_gets_background_only():
    area = Area.from_geometry(shapely.box(120.40, 31.50, 120.41, 31.51))
    frame = simulate(area, seed=1, count=500)
    assert not frame["description"].str.contains("附近").any()
    assert area.contains(frame["lon"].to_numpy(), frame["lat"].to_numpy()).all()


# -- the command ---------------------------------------------------------------------------------
def test_cli_writes_without_loading(tmp_path):
    out = tmp_path / "sim.csv"
    result = CliRunner().invoke(main, ["simulate", "--no-load", "-o", str(out), "--count",
                                       "500", "--dirty", "--seed", "9"])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert len(frame) == 500 and "dirty" in frame.columns
    result = CliRunner().invoke(main, ["simulate", "--no-load"])
    assert result.exit_code == 2 and "--no-load needs -o" in result.output


def test_cli_loads_through_the_import_and_twice_loads_nothing(store, fresh_url, monkeypatch,
                                                              tmp_path):
    monkeypatch.setenv("DATABASE_URL", fresh_url)
    args = ["simulate", "--count", "800", "--seed", "4", "--start", "2019-01-01", "--end",
            "2019-06-30", "--quiet"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "simulated 800 incidents" in first.output and "loaded" in first.output
    again = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "sim.parquet"), "--json"])
    assert again.exit_code == 0, again.output
    payload = again.output[again.output.index("{"):]
    import json

    summary = json.loads(payload)
    assert (summary["loaded"], summary["duplicates"], summary["format"]) == (0, 800, "parquet")
