"""`gridgov incidents import`: formats, mapping, CRS, swaps, rejects, de-duplication, atomicity.

Everything runs against a fresh PostGIS with the small exact hierarchy of tests.factories
(16 grids of 0.005° between 120.30–120.32 E and 31.56–31.58 N).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner
from sqlalchemy import text

import etl.incidents as incidents
from etl.cli import main
from etl.incidents import (
    FrameReader,
    ImportFileError,
    ImportOptions,
    ImportSetupError,
    import_file,
    import_reader,
    parse_mapping,
)
from gis.boundaries import activate, create_generation
from gis.catalogues import load_classes
from gis.config import PROJECT_ROOT
from gis.crs import from_cgcs2000
from tests.factories import lattice, small_hierarchy


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path, monkeypatch):
    """Rejects files of in-memory imports go to the current directory: keep it out of the repo."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def store(fresh_engine):
    load_classes(fresh_engine)
    activate(fresh_engine, create_generation(fresh_engine, small_hierarchy(), name="g1"))
    return fresh_engine


def centre(i: int, j: int) -> tuple[float, float]:
    """Centre of lattice cell (i, j), i.e. of one grid."""
    x, y = lattice(i, j)
    return round(x + 0.0025, 7), round(y + 0.0025, 7)


#: Cells and the grid each one is (see tests.factories.small_hierarchy).
CELLS = {(0, 3): "320213001001001", (1, 3): "320213001001002", (0, 0): "320213001002003",
         (2, 1): "320213002002001", (3, 0): "320213002002004"}


def sample_rows(n: int = 5, **overrides) -> list[dict]:
    rows = []
    cells = list(CELLS)
    for k in range(n):
        lon, lat = centre(*cells[k % len(cells)])
        row = {"source_key": f"K{k:04d}", "class_code": "E0102",
               "reported_at": f"2019-05-{1 + k % 28:02d} 09:30:00", "lon": lon, "lat": lat,
               "description": f"暴露垃圾 {k}"}
        row.update(overrides)
        rows.append(row)
    return rows


def write_csv(path: Path, rows: list[dict], encoding: str = "utf-8") -> Path:
    pd.DataFrame(rows).to_csv(path, index=False, encoding=encoding)
    return path


def stored(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(text(
            """
            SELECT i.source_key, i.source, i.class_code, i.description, i.reported_at,
                   ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat, i.orig_x, i.orig_y, i.orig_crs,
                   i.location_status, g.code AS grid, i.batch_id, i.generation_id,
                   i.community_id, i.street_id
            FROM incident i LEFT JOIN unit g ON g.id = i.grid_id ORDER BY i.source_key
            """)).all()


def rejects(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT row_number, field, reason, raw FROM incident_reject ORDER BY row_number"
        )).all()


def counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("incident", "incident_key", "import_batch", "incident_reject")}


def read_rejects_file(path: Path) -> list[dict]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def run(engine, path, **options):
    return import_file(engine, path, ImportOptions(**options))


# -- formats -------------------------------------------------------------------------------------
def test_csv_is_loaded_assigned_and_recorded_as_a_batch(store, tmp_path):
    path = write_csv(tmp_path / "in.csv", sample_rows(5))
    summary = run(store, path)
    assert (summary.rows_read, summary.loaded, summary.assigned, summary.rejected) == (5, 5, 5, 0)
    assert summary.encoding == "utf-8" and summary.crs == "wgs84"
    assert summary.rejects_file is None and not (tmp_path / "in.csv.rejects.csv").exists()
    rows = stored(store)
    assert [r.grid for r in rows] == list(CELLS.values())
    assert all(r.location_status == "assigned" and r.community_id and r.street_id for r in rows)
    assert {r.source for r in rows} == {"bulk_import"} and rows[0].description == "暴露垃圾 0"
    assert rows[0].reported_at.isoformat() == "2019-05-01T01:30:00+00:00"  # naive = +08:00
    with store.connect() as conn:
        batch = conn.execute(text("SELECT * FROM import_batch")).one()
    assert (batch.rows_read, batch.loaded, batch.duplicates, batch.rejected) == (5, 5, 0, 0)
    assert batch.source_file == str(path.resolve()) and batch.finished_at is not None
    assert batch.checksum == incidents.file_scan(path, False)[0]
    assert batch.options["stats"]["assigned"] == 5 and batch.options["format"] == "csv"
    assert {r.batch_id for r in rows} == {batch.id} == {summary.batch_id}


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gbk", "gb18030"])
def test_csv_encodings_are_detected_with_chinese_headers(store, tmp_path, encoding):
    frame = pd.DataFrame(sample_rows(3)).rename(columns={
        "source_key": "编号", "class_code": "类别编码", "reported_at": "上报时间",
        "lon": "经度", "lat": "纬度", "description": "描述"})
    path = tmp_path / "中文.csv"
    frame.to_csv(path, index=False, encoding=encoding)
    summary = run(store, path)
    assert summary.loaded == 3
    assert summary.encoding == ("utf-8" if encoding == "utf-8-sig" else "gb18030")
    assert [r.description for r in stored(store)] == ["暴露垃圾 0", "暴露垃圾 1", "暴露垃圾 2"]


def test_explicit_encoding_and_tab_delimiter(store, tmp_path):
    path = tmp_path / "in.txt"
    pd.DataFrame(sample_rows(2)).to_csv(path, index=False, sep="\t", encoding="gbk")
    assert run(store, path, encoding="gbk").loaded == 2


def _geo(rows: list[dict], crs="EPSG:4326") -> gpd.GeoDataFrame:
    frame = pd.DataFrame(rows)
    points = shapely.points(frame.pop("lon"), frame.pop("lat"))
    return gpd.GeoDataFrame(frame, geometry=points, crs=crs)


WRITERS = {
    "geojson": lambda rows, p: _geo(rows).to_file(p, driver="GeoJSON"),
    "gpkg": lambda rows, p: _geo(rows).to_file(p, layer="incidents", driver="GPKG"),
    "parquet": lambda rows, p: pd.DataFrame(rows).to_parquet(p),
    "geoparquet": lambda rows, p: _geo(rows).to_parquet(p),
}


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_every_file_format(store, tmp_path, fmt):
    path = tmp_path / f"in.{'parquet' if fmt == 'geoparquet' else fmt}"
    WRITERS[fmt](sample_rows(5), path)
    summary = run(store, path)
    assert summary.format == fmt
    assert (summary.loaded, summary.assigned) == (5, 5)
    assert [r.grid for r in stored(store)] == list(CELLS.values())


def test_geopackage_in_a_projected_crs_uses_the_file_crs(store, tmp_path):
    path = tmp_path / "metric.gpkg"
    _geo(sample_rows(5)).to_crs("EPSG:4549").to_file(path, layer="incidents")
    summary = run(store, path)
    assert summary.crs == "EPSG:4549" and summary.assigned == 5
    assert [r.grid for r in stored(store)] == list(CELLS.values())


def test_geopackage_layers(store, tmp_path):
    path = tmp_path / "two.gpkg"
    _geo(sample_rows(2)).to_file(path, layer="a")
    _geo(sample_rows(3)).to_file(path, layer="b")
    with pytest.raises(ImportFileError, match="choose one with --layer"):
        run(store, path)
    with pytest.raises(ImportFileError, match="no layer 'c'"):
        run(store, path, layer="c")
    assert run(store, path, layer="b").loaded == 3


def test_geometry_rows_that_are_not_points_are_rejected(store, tmp_path):
    frame = _geo(sample_rows(3))
    frame.loc[1, "geometry"] = shapely.box(120.30, 31.56, 120.301, 31.561)
    frame.loc[2, "geometry"] = None
    path = tmp_path / "in.geojson"
    frame.to_file(path)
    summary = run(store, path)
    assert summary.loaded == 1
    assert [(r.row_number, r.field, r.reason.split(":")[0]) for r in rejects(store)] == [
        (2, "geometry", "not a point"), (3, "geometry", "missing")]
    assert rejects(store)[0].raw["geometry"].startswith("POLYGON")


def test_typed_parquet_columns(store, tmp_path):
    frame = pd.DataFrame(sample_rows(4))
    frame["source_key"] = range(100, 104)  # integers
    frame["reported_at"] = pd.to_datetime(frame["reported_at"])  # naive → Asia/Shanghai
    frame.loc[3, "class_code"] = None
    path = tmp_path / "typed.parquet"
    frame.to_parquet(path)
    aware = tmp_path / "aware.parquet"
    frame.assign(reported_at=frame["reported_at"].dt.tz_localize("UTC"),
                 source_key=frame["source_key"] + 10).to_parquet(aware)
    summary = run(store, path)
    assert (summary.loaded, summary.rejected) == (3, 1)
    assert [(r.row_number, r.field, r.reason) for r in rejects(store)] == [
        (4, "class_code", "missing")]
    got = stored(store)
    assert got[0].source_key == "100"
    assert got[0].reported_at.isoformat() == "2019-05-01T01:30:00+00:00"
    run(store, aware)
    assert stored(store)[3].reported_at.isoformat() == "2019-05-01T09:30:00+00:00"


def test_a_header_only_file_loads_nothing(store, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("source_key,class_code,reported_at,lon,lat\n", encoding="utf-8")
    summary = run(store, path)
    assert (summary.rows_read, summary.loaded) == (0, 0) and summary.batch_id is not None


# -- columns -------------------------------------------------------------------------------------
def test_column_mapping_and_auto_detection(store, tmp_path):
    frame = pd.DataFrame(sample_rows(3)).rename(columns={
        "source_key": "Case No", "class_code": "Category", "reported_at": "Time",
        "lon": "LNG", "lat": "Latitude", "description": "remark"})
    frame["channel"] = "hotline"
    path = write_csv(tmp_path / "in.csv", frame.to_dict("records"))
    with pytest.raises(ImportFileError, match="no column 'nope' for source_key; columns are Case"):
        run(store, path, mapping={"source_key": "nope"})
    summary = run(store, path, mapping=parse_mapping(
        ["source_key=Case No", "description=remark", "source=channel"]))
    assert summary.loaded == 3
    rows = stored(store)
    assert [r.source_key for r in rows] == ["K0000", "K0001", "K0002"]
    assert {r.source for r in rows} == {"hotline"} and rows[0].description == "暴露垃圾 0"


def test_missing_required_column_is_a_file_error(store, tmp_path):
    path = write_csv(tmp_path / "in.csv", [{"lon": 120.3, "lat": 31.57, "when": "2019-01-01"}])
    with pytest.raises(ImportFileError, match=r"no column for class_code, reported_at.*--map"):
        run(store, path)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="STANDARD=COLUMN"):
        parse_mapping(["x"])
    with pytest.raises(ValueError, match="unknown standard column"):
        ImportOptions(mapping={"colour": "c"})
    with pytest.raises(ValueError, match="source"):
        ImportOptions(source="pigeon")
    with pytest.raises(ValueError, match="unknown CRS"):
        ImportOptions(crs="mars")
    with pytest.raises(ValueError, match="time zone"):
        ImportOptions(timezone="Mars/Olympus")


# -- coordinates ---------------------------------------------------------------------------------
@pytest.mark.parametrize("crs", ["wgs84", "cgcs2000", "gcj02", "bd09", "EPSG:4549", "EPSG:4326"])
def test_each_crs_is_converted_before_assignment(store, tmp_path, crs):
    rows = sample_rows(5)
    truth = [(r["lon"], r["lat"]) for r in rows]
    for row in rows:
        x, y = from_cgcs2000(row["lon"], row["lat"], crs)
        row["lon"], row["lat"] = float(x), float(y)
    summary = run(store, write_csv(tmp_path / "in.csv", rows), crs=crs)
    assert summary.assigned == 5 and summary.swapped == 0
    got = stored(store)
    assert [r.grid for r in got] == list(CELLS.values())
    for r, (lon, lat), row in zip(got, truth, rows, strict=True):
        assert abs(r.lon - lon) < 1e-7 and abs(r.lat - lat) < 1e-7
        assert (r.orig_x, r.orig_y) == (row["lon"], row["lat"])
    assert {r.orig_crs for r in got} == {"wgs84" if crs == "EPSG:4326" else crs}


def test_a_crs_column_overrides_the_file_crs_per_row(store, tmp_path):
    rows = sample_rows(3)
    gx, gy = from_cgcs2000(rows[1]["lon"], rows[1]["lat"], "gcj02")
    rows[1].update(lon=float(gx), lat=float(gy))
    for row, crs in zip(rows, ["", "GCJ-02", "wgs84"], strict=True):
        row["crs"] = crs
    rows.append({**sample_rows(4)[3], "crs": "mars"})
    summary = run(store, write_csv(tmp_path / "in.csv", rows))
    assert summary.assigned == 3
    assert [r.grid for r in stored(store)] == list(CELLS.values())[:3]
    assert [(r.row_number, r.field) for r in rejects(store)] == [(4, "crs")]


@pytest.mark.parametrize("crs", ["wgs84", "gcj02", "EPSG:4549"])
def test_swapped_lat_lon_is_detected_per_row(store, tmp_path, crs):
    rows = sample_rows(5)
    for row in rows:
        x, y = from_cgcs2000(row["lon"], row["lat"], crs)
        row["lon"], row["lat"] = float(x), float(y)
    for row in rows[1:3]:
        row["lon"], row["lat"] = row["lat"], row["lon"]
    summary = run(store, write_csv(tmp_path / "in.csv", rows), crs=crs)
    assert (summary.assigned, summary.swapped) == (5, 2)
    got = stored(store)
    assert [r.grid for r in got] == list(CELLS.values())
    assert got[1].orig_x == rows[1]["lon"]  # the original, as given, is kept
    with store.connect() as conn:
        assert conn.execute(text("SELECT options->'stats'->>'swapped' FROM import_batch")
                            ).scalar_one() == "2"


def test_outside_the_district_is_loaded_not_rejected(store, tmp_path):
    rows = sample_rows(3)
    rows[1].update(lon=120.9, lat=31.9)  # elsewhere in Jiangsu
    rows[2].update(lon=116.397, lat=39.909)  # Beijing
    summary = run(store, write_csv(tmp_path / "in.csv", rows))
    assert (summary.loaded, summary.assigned, summary.outside, summary.rejected) == (3, 1, 2, 0)
    got = stored(store)
    assert [r.location_status for r in got] == ["assigned", "outside", "outside"]
    assert got[1].grid is None and got[1].generation_id == got[0].generation_id


def test_keep_invalid_loads_bad_coordinates_as_invalid(store, tmp_path):
    rows = sample_rows(3)
    rows[1]["lon"] = "abc"
    rows[2]["lat"] = ""
    summary = run(store, write_csv(tmp_path / "in.csv", rows), keep_invalid=True)
    assert (summary.loaded, summary.invalid, summary.rejected) == (3, 2, 0)
    got = stored(store)
    assert [r.location_status for r in got] == ["assigned", "invalid", "invalid"]
    assert got[1].lon is None and got[1].generation_id is None and got[1].orig_y is not None


# -- times ---------------------------------------------------------------------------------------
def test_times_with_and_without_offsets_and_other_zones(store, tmp_path):
    times = ["2019-05-06 09:30:00", "2019-05-06T09:30:00+08:00", "2019-05-06T01:30:00Z",
             "2019/5/6 9:30", "2019年5月6日 09:30:00", "2019-05-06T02:30:00+01:00",
             "2019.05.06 09:30", "2019-05-06T09:30:00.000+0800", "2019-05-06 09:30 +08"]
    rows = [{**row, "reported_at": t} for row, t in zip(sample_rows(9), times, strict=True)]
    rows.append({**sample_rows(10)[9], "reported_at": "2019-05-06"})  # a date: local midnight
    run(store, write_csv(tmp_path / "in.csv", rows))
    got = [r.reported_at.isoformat() for r in stored(store)]
    assert got[:9] == ["2019-05-06T01:30:00+00:00"] * 9
    assert got[9] == "2019-05-05T16:00:00+00:00"


def test_timezone_option_applies_to_naive_times(store, tmp_path):
    path = write_csv(tmp_path / "in.csv", sample_rows(1, reported_at="2019-05-06 09:30"))
    run(store, path, timezone="UTC")
    assert stored(store)[0].reported_at.isoformat() == "2019-05-06T09:30:00+00:00"


# -- rejects -------------------------------------------------------------------------------------
BAD = [  # (changes to a good row, field, reason starts with)
    ({"class_code": ""}, "class_code", "missing"),
    ({"class_code": "E9999"}, "class_code", "unknown class: 'E9999'"),
    ({"reported_at": ""}, "reported_at", "missing"),
    ({"reported_at": "2019-02-30 08:00"}, "reported_at", "unparseable time"),
    ({"reported_at": "昨天下午"}, "reported_at", "unparseable time"),
    ({"reported_at": "1899-01-01 08:00"}, "reported_at", "time out of range"),
    ({"reported_at": "2999-01-01 08:00"}, "reported_at", "time out of range"),
    ({"lon": ""}, "x", "missing"),
    ({"lat": ""}, "y", "missing"),
    ({"lon": "120,3"}, "x", "not a number"),
    ({"lat": "north"}, "y", "not a number"),
    ({"lon": "nan"}, "x", "not finite"),
    ({"lat": "inf"}, "x", "not finite"),
    ({"lon": "200"}, "x", "out of range"),
    ({"lat": "-95"}, "x", "out of range"),
    ({"source": "pigeon"}, "source", "unknown source: 'pigeon'"),
    ({"crs": "mars"}, "crs", "unknown CRS: 'mars'"),
    ({"source_key": "k" * 201}, "source_key", "longer than 200 characters"),
    ({"description": "长" * 4001}, "description", "longer than 4000 characters"),
]


def test_every_rejection_reason_in_table_and_file(store, tmp_path):
    good = sample_rows(len(BAD) + 2)
    rows = [{**row, "source": "grid_worker", "crs": ""} for row in good]
    for k, (change, _, _) in enumerate(BAD):
        rows[k + 1].update(change)
    path = write_csv(tmp_path / "in.csv", rows)
    with open(path, "a", encoding="utf-8") as handle:  # a line with too many fields
        handle.write("extra,E0102,2019-05-01 09:00,120.301,31.561,x,grid_worker,,surplus\n")
    summary = run(store, path)
    n = len(rows) + 1
    assert summary.rows_read == n
    assert summary.loaded + summary.duplicates + summary.rejected == n
    assert (summary.loaded, summary.rejected) == (2, len(BAD) + 1)
    expected = [(k + 2, f, r) for k, (_, f, r) in enumerate(BAD)]
    table = rejects(store)
    assert [(r.row_number, r.field) for r in table[:-1]] == [(k, f) for k, f, _ in expected]
    for got, (_, _, reason) in zip(table, expected, strict=False):
        assert got.reason.startswith(reason), (got.reason, reason)
    assert table[1].raw["class_code"] == "E9999" and table[1].raw["source_key"] == "K0002"
    malformed = table[-1]
    assert (malformed.row_number, malformed.field) == (n, None)
    assert "expected 8 fields, saw 9" in malformed.reason and "surplus" in malformed.raw["line"]
    in_file = read_rejects_file(tmp_path / "in.csv.rejects.csv")
    assert [(int(r["row_number"]), r["field"]) for r in in_file] == [
        (r.row_number, r.field or "") for r in table]
    assert in_file[1]["reason"] == table[1].reason and in_file[1]["class_code"] == "E9999"
    assert list(in_file[0])[:4] == ["row_number", "field", "reason", "source_key"]
    assert summary.rejected_by_reason["reported_at: unparseable time"] == 2
    assert summary.rejected_by_reason["line: malformed"] == 1


def test_rejects_path_option_and_unwritable_input_folder(store, tmp_path, monkeypatch):
    path = write_csv(tmp_path / "in.csv", sample_rows(2, class_code="E9999"))
    target = tmp_path / "out" / "bad.csv"
    target.parent.mkdir()
    assert run(store, path, rejects=target).rejects_file == str(target)
    assert len(read_rejects_file(target)) == 2
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: mode != os.W_OK and real_access(p, mode))
    monkeypatch.chdir(target.parent)
    summary = run(store, path)
    assert summary.rejects_file == str(target.parent / "in.csv.rejects.csv")


def test_row_numbers_survive_chunks_blank_lines_and_quoted_newlines(store, tmp_path):
    path = tmp_path / "in.csv"
    rows = sample_rows(30)
    rows[3]["description"] = "two\nlines"
    rows[10]["class_code"] = "E9999"
    rows[25]["class_code"] = "E9999"
    write_csv(path, rows)
    lines = path.read_text(encoding="utf-8").split("\n")
    lines.insert(8, "")  # a blank line
    lines.insert(15, "only,three,fields")
    path.write_text("\n".join(lines), encoding="utf-8")
    summary = run(store, path, chunk_size=4)
    assert summary.rows_read == 31
    got = [(r.row_number, r.field) for r in rejects(store)]
    # the inserted malformed line is data row 13 (header and blank line not counted, the row
    # with a quoted newline counted once), so the rows after it move down by one
    assert got == [(11, "class_code"), (13, None), (27, "class_code")]
    assert [r.description for r in stored(store)][3] == "two\nlines"


# -- de-duplication ------------------------------------------------------------------------------
def test_rerun_loads_nothing_twice_and_quarantines_duplicates(store, tmp_path):
    rows = sample_rows(5)
    rows.append({**rows[0], "description": "again"})  # same key inside the file
    path = write_csv(tmp_path / "in.csv", rows)
    first = run(store, path)
    assert (first.loaded, first.duplicates) == (5, 1)
    ids = {r.source_key: r for r in stored(store)}
    second = run(store, path)
    assert (second.rows_read, second.loaded, second.duplicates) == (6, 0, 6)
    assert counts(store)["incident"] == 5
    with store.connect() as conn:
        by_key = dict(conn.execute(text("SELECT source_key, incident_id FROM incident_key")).all())
        reasons = conn.execute(text(
            "SELECT row_number, field, reason FROM incident_reject WHERE batch_id = :b "
            "ORDER BY row_number"), {"b": second.batch_id}).all()
    assert len(ids) == 5
    assert [(r.field, r.reason) for r in reasons] == [
        ("source_key", f"duplicate of incident {by_key[row['source_key']]}") for row in rows]
    assert len(read_rejects_file(tmp_path / "in.csv.rejects.csv")) == 6


def test_rows_without_keys_get_content_keys(store, tmp_path):
    rows = sample_rows(4, source_key="")
    rows.append(dict(rows[0]))  # the same report twice
    path = write_csv(tmp_path / "in.csv", rows)
    first = run(store, path)
    assert (first.loaded, first.duplicates) == (4, 1)
    assert all(r.source_key.startswith("sha1:") for r in stored(store))
    # the same reports in another file, another order and another CRS are still recognised
    moved = [dict(r) for r in reversed(rows)]
    again = run(store, write_csv(tmp_path / "again.csv", moved))
    assert (again.loaded, again.duplicates) == (0, 5)
    no_dedupe = run(store, path, dedupe=False)
    assert (no_dedupe.loaded, no_dedupe.duplicates) == (5, 0)


def test_dry_run_counts_exactly_and_leaves_nothing(store, tmp_path):
    rows = sample_rows(6)
    rows[2]["class_code"] = "E9999"
    path = write_csv(tmp_path / "in.csv", rows)
    run(store, path)
    before = counts(store)
    path2 = write_csv(tmp_path / "more.csv", rows + sample_rows(8)[6:])
    dry = run(store, path2, dry_run=True)
    assert (dry.rows_read, dry.loaded, dry.duplicates, dry.rejected) == (8, 2, 5, 1)
    assert dry.batch_id is None and counts(store) == before
    real = run(store, path2)
    assert (real.loaded, real.duplicates, real.rejected) == (dry.loaded, dry.duplicates,
                                                              dry.rejected)


# -- atomicity -----------------------------------------------------------------------------------
def test_a_failure_mid_load_leaves_nothing_and_a_rerun_loads_everything(store, tmp_path,
                                                                        monkeypatch):
    rows = sample_rows(20)
    rows[3]["class_code"] = "E9999"
    path = write_csv(tmp_path / "in.csv", rows)
    real = incidents.BulkLoad.write
    calls = []

    def failing(load, rows_):
        result = real(load, rows_)  # the COPY has happened
        calls.append(result.loaded)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return result

    monkeypatch.setattr(incidents.BulkLoad, "write", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        run(store, path, chunk_size=5)
    assert sum(calls) > 0
    assert counts(store) == {"incident": 0, "incident_key": 0, "import_batch": 0,
                             "incident_reject": 0}
    assert not list(tmp_path.glob("*.rejects.csv*"))
    monkeypatch.setattr(incidents.BulkLoad, "write", real)
    summary = run(store, path, chunk_size=5)
    assert (summary.loaded, summary.rejected) == (19, 1)


def _partition_oids(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(text(
            "SELECT c.relname, c.oid FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'incident'::regclass")).all())


def test_empty_years_are_built_aside_swapped_in_and_rolled_back_whole(store, tmp_path,
                                                                    monkeypatch):
    """With the swap threshold at one row, an import into empty years takes the bulk path:
    the same rows, duplicates and rejects as ever; a failure after the swap undoes it all."""
    monkeypatch.setattr("gis.bulk_load.SWAP_MIN_ROWS", 1)
    rows = sample_rows(12)
    for k in range(6):  # half of them in 2018 (local time), the rest in 2019
        rows[k]["reported_at"] = f"2018-12-{20 + k} 09:30:00"
    rows[1]["class_code"] = "E9999"
    rows[7]["source_key"] = rows[6]["source_key"]
    path = write_csv(tmp_path / "in.csv", rows)
    before = _partition_oids(store)
    real = incidents._finish_batch

    def failing(conn, summary):
        raise RuntimeError("power cut")

    monkeypatch.setattr(incidents, "_finish_batch", failing)
    with pytest.raises(RuntimeError, match="power cut"):
        run(store, path, chunk_size=4)
    assert _partition_oids(store) == before
    assert counts(store) == {"incident": 0, "incident_key": 0, "import_batch": 0,
                             "incident_reject": 0}
    monkeypatch.setattr(incidents, "_finish_batch", real)
    summary = run(store, path, chunk_size=4)
    assert (summary.loaded, summary.duplicates, summary.rejected) == (10, 1, 1)
    assert summary.partitions_rebuilt == ["incident_y2018", "incident_y2019"]
    assert "swapped in (were empty): incident_y2018, incident_y2019" in summary.to_text()
    after = _partition_oids(store)
    assert {n for n in after if after[n] != before[n]} == {"incident_y2018", "incident_y2019"}
    loaded = stored(store)
    assert len(loaded) == 10 and all(r.location_status == "assigned" for r in loaded)
    assert [r.grid for r in loaded] == [CELLS[list(CELLS)[k % 5]] for k in range(12)
                                        if k not in (1, 7)]
    again = run(store, path, chunk_size=4)  # the partitions have rows now: loaded in place
    assert (again.loaded, again.duplicates, again.partitions_rebuilt) == (0, 11, [])


def _write_big_csv(path: Path, n: int) -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({
        "source_key": [f"B{k:07d}" for k in range(n)],
        "class_code": "E0102",
        "reported_at": "2019-05-06 09:30:00",
        "lon": np.round(rng.uniform(120.30, 120.32, n), 7),
        "lat": np.round(rng.uniform(31.56, 31.58, n), 7),
    })
    frame.to_csv(path, index=False)


@pytest.mark.slow
def test_sigkill_mid_import_leaves_nothing(store, fresh_url, tmp_path):
    path = tmp_path / "big.csv"
    n = 120_000
    _write_big_csv(path, n)
    env = {**os.environ, "DATABASE_URL": fresh_url}
    process = subprocess.Popen(
        [sys.executable, "-m", "etl.cli", "incidents", "import", str(path), "--chunk-size",
         "1000", "--quiet"], cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    try:
        _wait_for_loading(store, process)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    _wait_for_backends_to_end(store)
    assert counts(store) == {"incident": 0, "incident_key": 0, "import_batch": 0,
                             "incident_reject": 0}
    summary = run(store, path)
    assert (summary.rows_read, summary.loaded) == (n, n)


def _wait_for_loading(engine, process: subprocess.Popen, timeout: float = 60) -> None:
    """Until the import's transaction has written some chunks (its stage table is in use)."""
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode()
        with engine.connect() as conn:
            active = conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL "
                "AND query ILIKE '%incident%'")).scalar_one()
        seen = seen + 1 if active else 0
        if seen >= 5:
            return
        time.sleep(0.05)
    pytest.fail("the import never started loading")


def _wait_for_backends_to_end(engine, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            others = conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state <> 'idle'")).scalar_one()
        if not others:
            return
        time.sleep(0.1)
    pytest.fail("the killed import's backend is still there")


# -- set-up errors and the command line ----------------------------------------------------------
def test_no_active_generation_is_a_setup_error(fresh_engine, tmp_path):
    load_classes(fresh_engine)
    with pytest.raises(ImportSetupError, match="no generation is active"):
        run(fresh_engine, write_csv(tmp_path / "in.csv", sample_rows(1)))


def test_an_activation_between_plan_and_load_is_refused(store, tmp_path, monkeypatch):
    real_plan = incidents.make_plan

    def plan_then_activate(engine, reader, options):
        plan = real_plan(engine, reader, options)
        activate(engine, create_generation(engine, small_hierarchy(), name="g2"))
        return plan

    monkeypatch.setattr(incidents, "make_plan", plan_then_activate)
    with pytest.raises(ImportSetupError, match="active generation changed"):
        run(store, write_csv(tmp_path / "in.csv", sample_rows(2)))
    assert counts(store)["import_batch"] == 0


def test_unreadable_files(store, tmp_path):
    with pytest.raises(ImportFileError, match="no such file"):
        run(store, tmp_path / "missing.csv")
    (tmp_path / "in.xlsx").write_bytes(b"PK")
    with pytest.raises(ImportFileError, match=r"unsupported format \.xlsx"):
        run(store, tmp_path / "in.xlsx")
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(ImportFileError, match="empty file"):
        run(store, tmp_path / "empty.csv")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ImportFileError, match="not a readable Parquet file"):
        run(store, tmp_path / "bad.parquet")


def test_frame_reader_imports_in_memory_rows(store):
    frame = pd.DataFrame(sample_rows(4))
    summary = import_reader(store, FrameReader(frame, "memory"), ImportOptions())
    assert (summary.loaded, summary.format) == (4, "frame")


@pytest.fixture
def cli(fresh_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", fresh_url)
    return lambda *args: CliRunner().invoke(main, [str(a) for a in args])


def test_cli_import_summary_json_and_exit_codes(store, cli, tmp_path):
    rows = sample_rows(4)
    rows[1]["class_code"] = "E9999"
    path = write_csv(tmp_path / "in.csv", rows)
    result = cli("incidents", "import", path, "--json", "--dry-run")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert (payload["rows_read"], payload["loaded"], payload["rejected"]) == (4, 3, 1)
    assert payload["rejected_by_reason"] == {"class_code: unknown class": 1}
    assert payload["rows_per_s"] > 0 and payload["dry_run"] is True
    result = cli("incidents", "import", path, "--map", "description=description",
                 "--source", "hotline")
    assert result.exit_code == 0, result.output
    assert "loaded" in result.output and "class_code: unknown class" in result.output
    assert {r.source for r in stored(store)} == {"hotline"}
    result = cli("incidents", "import", tmp_path / "nope.csv")
    assert result.exit_code == 2 and "nope.csv: no such file" in result.output
    result = cli("incidents", "import", path, "--map", "colour=x")
    assert result.exit_code == 2 and "unknown standard column" in result.output
    result = cli("incidents", "import", path, "--source", "pigeon")
    assert result.exit_code == 2


def test_cli_unexpected_error_exits_1(store, cli, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(incidents.BulkLoad, "write", broken)
    result = cli("incidents", "import", write_csv(tmp_path / "in.csv", sample_rows(2)))
    assert result.exit_code == 1 and "boom" in result.output
    assert counts(store)["import_batch"] == 0


def test_cli_catalogues_load(fresh_engine, cli):
    result = cli("catalogues", "load")
    assert result.exit_code == 0 and "incident classes loaded" in result.output
    with fresh_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM incident_class")).scalar_one() > 50


def test_dask_engine_gives_the_same_assignment(store, tmp_path):
    """--engine dask: the grid index broadcast to a local cluster, identical answers."""
    outside = {"source_key": "OUT", "class_code": "E0102", "reported_at": "2019-05-03 10:00",
               "lon": 120.0, "lat": 31.0, "description": "outside"}
    path = write_csv(tmp_path / "dask.csv", [*sample_rows(10), outside])
    summary = import_file(store, path, ImportOptions(engine="dask"))
    assert (summary.loaded, summary.assigned, summary.outside) == (11, 10, 1)
    rows = stored(store)
    expected = [CELLS[list(CELLS)[k % len(CELLS)]] for k in range(10)]
    assert [r.grid for r in rows if r.source_key != "OUT"] == expected
    with pytest.raises(ValueError, match="engine"):
        import_file(store, path, ImportOptions(engine="spark"))
