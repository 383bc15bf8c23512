"""`gridgov boundaries import/export/list/activate` and `gridgov lookup` on real files."""

from __future__ import annotations

import json

import geopandas as gpd
import pytest
from click.testing import CliRunner

from etl.cli import main
from gis.crs import transform_geometry
from tests.factories import lattice, small_hierarchy


@pytest.fixture
def gridgov(fresh_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", fresh_url)
    runner = CliRunner()

    def run(*args, ok=True):
        result = runner.invoke(main, [str(a) for a in args], catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return run


def _write_levels(folder, levels, suffix, driver=None):
    paths = {}
    for level, frame in levels.items():
        path = folder / f"{level}{suffix}"
        frame.to_file(path, driver=driver, engine="pyogrio")
        paths[level] = path
    return paths


def _level_args(paths):
    return [arg for level, path in paths.items() for arg in (f"--{level}", path)]


def test_import_geojson_creates_inactive_generation_then_activates(gridgov, tmp_path):
    paths = _write_levels(tmp_path, small_hierarchy(), ".geojson")
    result = gridgov("boundaries", "import", *_level_args(paths), "--name", "test set")
    assert "valid (1 district, 2 street, 4 community, 16 grid)" in result.output
    assert "generation 1 created (inactive)" in result.output
    listing = json.loads(gridgov("boundaries", "list", "--json").output)
    assert listing[0]["name"] == "test set" and listing[0]["active"] is False
    gridgov("boundaries", "activate", "1")
    x, y = lattice(0, 3)
    out = gridgov("lookup", x + 0.001, y + 0.001).output
    assert out.splitlines()[0].split()[:2] == ["grid", "320213001001001"]


def test_import_shapefile_with_own_field_names(gridgov, tmp_path):
    levels = small_hierarchy()
    renamed = {level: frame.rename(columns={"code": "WGBM", "name": "WGMC",
                                            "parent_code": "SJBM"})
               .drop(columns=["grid_type", "dedicated_kind"], errors="ignore")
               for level, frame in levels.items()}
    paths = _write_levels(tmp_path, renamed, ".shp")
    gridgov("boundaries", "import", *_level_args(paths), "--activate")
    out = gridgov("lookup", *lattice(3, 0), "--json").output
    chain = json.loads(out)["chain"]
    assert chain[0]["code"].startswith("320213002002") and chain[0]["name"].startswith("网格")


def test_import_gcj02_geopackage_is_converted(gridgov, tmp_path):
    levels = small_hierarchy()
    shifted = {level: frame.set_geometry(
        transform_geometry(frame.geometry.array, "cgcs2000", "gcj02"), crs=4326)
        for level, frame in levels.items()}
    gpkg = tmp_path / "gcj.gpkg"
    for level, frame in shifted.items():
        frame.to_file(gpkg, layer=level, engine="pyogrio")
    gridgov("boundaries", "import", "--gpkg", gpkg, "--crs", "gcj02", "--activate")
    exported = tmp_path / "out.gpkg"
    gridgov("boundaries", "export", "-o", exported)
    back = gpd.read_file(exported, layer="grid")
    original = levels["grid"].set_index("code").geometry
    for code, geom in zip(back["code"], back.geometry, strict=True):
        # the round trip through GCJ-02 and back is sub-millimetre
        assert geom.equals_exact(original[code], tolerance=1e-8)


def test_bad_file_is_reported_in_full_and_nothing_is_written(gridgov, tmp_path):
    levels = small_hierarchy()
    levels["grid"].loc[0, "code"] = "12345"
    levels["grid"].loc[1, "parent_code"] = "320213999999"
    paths = _write_levels(tmp_path, levels, ".geojson")
    report = tmp_path / "report.json"
    result = gridgov("boundaries", "import", *_level_args(paths), "--report", report, ok=False)
    assert result.exit_code == 2
    assert "malformed_code" in result.output and "missing_parent" in result.output
    assert "row 2" in result.output  # rows are numbered from 1 in file order
    assert "nothing was imported" in result.output
    data = json.loads(report.read_text())
    assert data["ok"] is False and data["errors"] >= 2
    assert json.loads(gridgov("boundaries", "list", "--json").output) == []


def test_dry_run_writes_nothing(gridgov, tmp_path):
    paths = _write_levels(tmp_path, small_hierarchy(), ".geojson")
    result = gridgov("boundaries", "import", *_level_args(paths), "--dry-run")
    assert "dry run" in result.output
    assert json.loads(gridgov("boundaries", "list", "--json").output) == []


def test_missing_levels_are_copied_from_the_active_generation(gridgov, tmp_path):
    levels = small_hierarchy()
    paths = _write_levels(tmp_path, levels, ".geojson")
    gridgov("boundaries", "import", *_level_args(paths), "--activate")
    grids = levels["grid"].copy()
    grids["name"] = "新网格"
    grid_file = tmp_path / "new-grids.geojson"
    grids.to_file(grid_file, engine="pyogrio")
    gridgov("boundaries", "import", "--grid", grid_file, "--activate")
    listing = json.loads(gridgov("boundaries", "list", "--json").output)
    assert [g["active"] for g in listing] == [False, True]
    assert listing[1]["counts"] == {"district": 1, "street": 2, "community": 4, "grid": 16}
    out = json.loads(gridgov("lookup", *lattice(3, 0), "--json").output)
    assert out["chain"][0]["name"] == "新网格"


def test_unreadable_and_unknown_inputs_fail_clearly(gridgov, tmp_path):
    junk = tmp_path / "junk.geojson"
    junk.write_text("{not json")
    result = gridgov("boundaries", "import", "--grid", junk, ok=False)
    assert result.exit_code == 1 and "cannot read" in result.output
    paths = _write_levels(tmp_path, small_hierarchy(), ".geojson")
    result = gridgov("boundaries", "import", "--grid", paths["grid"], "--code-field", "nope",
                     ok=False)
    assert "no column 'nope'" in result.output
    result = gridgov("boundaries", "import", "--grid", paths["grid"], "--crs", "mars",
                     ok=False)
    assert "mars" in result.output


def test_export_formats(gridgov, tmp_path):
    paths = _write_levels(tmp_path, small_hierarchy(), ".geojson")
    gridgov("boundaries", "import", *_level_args(paths), "--activate")
    out = gridgov("boundaries", "export", "-o", tmp_path / "x.shp").output
    assert out.count("wrote") == 4
    streets = gpd.read_file(tmp_path / "x-street.shp")
    assert sorted(streets["parent"]) == ["320213", "320213"]
    gridgov("boundaries", "export", "-o", tmp_path / "g.geojson", "--level", "grid")
    assert len(gpd.read_file(tmp_path / "g.geojson")) == 16
    result = gridgov("boundaries", "export", "-o", tmp_path / "x.csv", ok=False)
    assert "unknown format" in result.output


def test_lookup_outside_and_json(gridgov, tmp_path):
    paths = _write_levels(tmp_path, small_hierarchy(), ".geojson")
    gridgov("boundaries", "import", *_level_args(paths), "--activate")
    assert "outside the district" in gridgov("lookup", "0", "0").output
    data = json.loads(gridgov("lookup", "0", "0", "--json").output)
    assert data["inside"] is False and data["chain"] == []
