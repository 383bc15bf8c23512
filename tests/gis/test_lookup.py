"""Point lookup in PostGIS, with the edge rule: covered, and the smallest code on shared edges."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import text

from gis.boundaries import activate, create_generation
from gis.crs import from_cgcs2000
from gis.lookup import lookup_point
from tests.factories import lattice, small_hierarchy


@pytest.fixture
def small_engine(fresh_engine):
    activate(fresh_engine, create_generation(fresh_engine, small_hierarchy(), name="small"))
    return fresh_engine


def _grid(engine, lon, lat, crs="cgcs2000"):
    unit = lookup_point(engine, lon, lat, crs).unit("grid")
    return unit.code if unit else None


def test_interior_point_gives_the_whole_chain(small_engine):
    x, y = lattice(0, 3)
    result = lookup_point(small_engine, x + 0.001, y + 0.001)
    assert [u.level for u in result.chain] == ["grid", "community", "street", "district"]
    assert [u.code for u in result.chain] == [
        "320213001001001", "320213001001", "320213001", "320213"]


def test_edge_and_vertex_points_go_to_the_smallest_code(small_engine):
    # shared edge between 320213001001001 (west) and 320213001001002 (east)
    x, y0 = lattice(1, 3)
    assert _grid(small_engine, x, y0 + 0.002) == "320213001001001"
    # the vertex shared by four grids of two communities and two streets
    x, y = lattice(2, 2)
    assert _grid(small_engine, x, y) == "320213001001004"
    # a vertex on the district's outer boundary still belongs to its grid
    x, y = lattice(4, 4)
    assert _grid(small_engine, x, y) == "320213002001002"


def test_hair_inside_and_outside(small_engine):
    x, y = lattice(0, 2)
    assert _grid(small_engine, math.nextafter(x, 200), y + 0.001) == "320213001001003"
    outside = lookup_point(small_engine, math.nextafter(x, 0), y + 0.001)
    assert not outside.inside and outside.unit("grid") is None


def test_outside_far_away_and_non_finite(small_engine):
    assert not lookup_point(small_engine, 0.0, 0.0).inside
    with pytest.raises(ValueError, match="finite"):
        lookup_point(small_engine, math.nan, 31.5)
    with pytest.raises(ValueError, match="finite"):
        lookup_point(small_engine, 120.3, math.inf)


def test_offset_crs_input_is_converted(small_engine):
    x, y = lattice(0, 3)
    lon, lat = (float(v) for v in from_cgcs2000(x + 0.0025, y + 0.0025, "gcj02"))
    assert _grid(small_engine, lon, lat, "gcj02") == "320213001001001"
    # the raw GCJ-02 reading taken as CGCS2000 lands hundreds of metres away, in another grid
    assert _grid(small_engine, lon, lat) != "320213001001001"


def test_sql_function_agrees(small_engine):
    x, y = lattice(1, 3)
    with small_engine.connect() as conn:
        rows = conn.execute(text("SELECT level, code FROM gridgov_lookup(:x, :y)"),
                            {"x": x, "y": y + 0.002}).all()
    assert rows[0] == ("grid", "320213001001001") and rows[-1] == ("district", "320213")


def test_lookup_in_a_given_generation(small_engine):
    second = small_hierarchy()
    second["grid"]["name"] = "新"
    new_id = create_generation(small_engine, second, name="second")
    x, y = lattice(0, 3)
    old = lookup_point(small_engine, x + 0.001, y + 0.001, generation_id=new_id)
    assert old.chain[0].name == "新"
    assert lookup_point(small_engine, x + 0.001, y + 0.001).chain[0].name == "网格1"
