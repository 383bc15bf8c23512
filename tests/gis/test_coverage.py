"""Validation of boundary hierarchies: each failure is found, named and located."""

from __future__ import annotations

import shapely
from shapely.geometry import MultiPolygon, Polygon

from gis.coverage import validate_hierarchy
from tests.factories import lattice, small_hierarchy


def _set(levels, level, code, **values):
    frame = levels[level]
    index = frame.index[frame["code"] == code][0]
    for key, value in values.items():
        frame.loc[index, key] = value if key != "geometry" else None
        if key == "geometry":
            frame.geometry.array[index] = value  # keep the GeoSeries dtype
    return levels


def test_valid_hierarchy_passes_with_counts():
    frames, report = validate_hierarchy(small_hierarchy())
    assert report.ok, report.to_text()
    assert report.counts == {"district": 1, "street": 2, "community": 4, "grid": 16}
    assert list(frames["grid"]["grid_type"].unique()) == ["comprehensive"]


def test_invalid_geometry_is_repaired_and_reported():
    levels = small_hierarchy()
    (x0, y0), (x1, y1) = lattice(0, 3), lattice(1, 4)
    bowtie = Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1), (x0, y0)])
    # The bow-tie covers the same cell's two triangles... but not all of it: a gap too.
    _set(levels, "grid", "320213001001001", geometry=MultiPolygon([bowtie]))
    frames, report = validate_hierarchy(levels)
    repaired = [p for p in report.problems if p.kind == "invalid_geometry"]
    assert len(repaired) == 1 and repaired[0].repaired
    assert "Self-intersection" in repaired[0].message
    assert frames["grid"].geometry.is_valid.all()
    assert "gap" in report.kinds()


def test_gap_is_located():
    levels = small_hierarchy()
    (x0, y0), (x1, y1) = lattice(0, 3), lattice(1, 4)
    shrunk = shapely.box(x0, y0, x1 - 0.001, y1)  # a 0.001° strip (~95 m) left uncovered
    _set(levels, "grid", "320213001001001", geometry=MultiPolygon([shrunk]))
    _, report = validate_hierarchy(levels)
    gaps = [p for p in report.errors if p.kind == "gap"]
    assert len(gaps) == 1
    assert "320213001001" in gaps[0].message
    point = shapely.from_wkt(gaps[0].location)
    assert x1 - 0.001 < point.x < x1 and y0 < point.y < y1


def test_overlap_is_located_and_named():
    levels = small_hierarchy()
    (x0, y0), (x1, y1) = lattice(0, 3), lattice(1, 4)
    grown = shapely.box(x0, y0, x1 + 0.001, y1)
    _set(levels, "grid", "320213001001001", geometry=MultiPolygon([grown]))
    _, report = validate_hierarchy(levels)
    overlaps = [p for p in report.errors if p.kind == "overlap"]
    assert len(overlaps) == 1
    assert {overlaps[0].code, overlaps[0].message.split()[1]} == {
        "320213001001001", "320213001001002"}
    assert "coverage_edges" in report.kinds()


def test_child_outside_parent():
    levels = small_hierarchy()
    # a grid of the west street's north community drawn in the east street
    (x0, y0), (x1, y1) = lattice(2, 3), lattice(3, 4)
    frame = levels["grid"]
    frame.geometry.array[0] = MultiPolygon([shapely.box(x0, y0, x1, y1)])
    _, report = validate_hierarchy(levels)
    outside = [p for p in report.errors if p.kind == "outside_parent"]
    assert [p.code for p in outside] == [frame["code"][0]]
    assert {"gap", "overlap"} <= report.kinds()


def test_missing_parent_duplicate_malformed_and_prefix():
    levels = small_hierarchy()
    grids = levels["grid"]
    grids.loc[0, "parent_code"] = "320213009009"
    grids.loc[1, "code"] = grids.loc[2, "code"]
    grids.loc[3, "code"] = "32021300100100X"
    levels["community"].loc[0, "code"] = "320213002001"  # now duplicates the east one's code
    levels["community"].loc[1, "code"] = "320213002009"  # west street, east street's prefix
    _, report = validate_hierarchy(levels)
    kinds = report.kinds()
    assert {"missing_parent", "duplicate_code", "malformed_code",
            "code_prefix_mismatch"} <= kinds
    missing = [p for p in report.errors if p.kind == "missing_parent" and p.level == "grid"]
    assert any("320213009009" in p.message for p in missing)


def test_parent_found_spatially_when_not_given():
    levels = small_hierarchy()
    expected = list(levels["grid"]["parent_code"])
    levels["grid"]["parent_code"] = None
    levels["community"] = levels["community"].drop(columns="parent_code")
    frames, report = validate_hierarchy(levels)
    assert report.ok, report.to_text()
    assert list(frames["grid"]["parent_code"]) == expected


def test_edges_that_do_not_match_exactly_fail_coverage():
    levels = small_hierarchy()
    (x0, y0), (x1, y1) = lattice(0, 3), lattice(1, 4)
    # an extra vertex pushed 1 mm into the neighbour: far below the area tolerance
    nudged = Polygon([(x0, y0), (x1, y0), (x1 + 1e-8, (y0 + y1) / 2), (x1, y1), (x0, y1)])
    _set(levels, "grid", "320213001001001", geometry=MultiPolygon([nudged]))
    _, report = validate_hierarchy(levels)
    assert "coverage_edges" in report.kinds()
    assert "overlap" not in report.kinds()


def test_missing_level_and_empty_geometry_and_district_count():
    levels = small_hierarchy()
    del levels["street"]
    levels["grid"].geometry.array[5] = None
    levels["district"] = levels["district"].iloc[[0, 0]].reset_index(drop=True)
    _, report = validate_hierarchy(levels)
    assert {"missing_level", "empty_geometry", "district_count"} <= report.kinds()


def test_bad_grid_types():
    levels = small_hierarchy()
    grids = levels["grid"]
    grids.loc[0, "grid_type"] = "special"
    grids.loc[1, "grid_type"] = "dedicated"
    grids.loc[1, "dedicated_kind"] = "castle"
    grids.loc[2, "grid_type"] = "dedicated"
    grids.loc[2, "dedicated_kind"] = "school"
    _, report = validate_hierarchy(levels)
    bad = sorted((p.code, p.kind) for p in report.errors)
    assert bad == [(grids.loc[0, "code"], "bad_grid_type"),
                   (grids.loc[1, "code"], "bad_dedicated_kind")]


def test_report_renders_text_and_dict():
    levels = small_hierarchy()
    levels["grid"].loc[3, "code"] = "bad"
    _, report = validate_hierarchy(levels)
    text = report.to_text()
    assert text.startswith("INVALID") and "malformed_code" in text
    assert report.to_dict()["errors"] == len(report.errors)
