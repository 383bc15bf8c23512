"""The shipped Liangxi grid system, as loaded into PostGIS by `gridgov boundaries load`."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from gis.boundaries import load_shipped, read_generation
from gis.lookup import lookup_point

pytestmark = pytest.mark.usefixtures("liangxi_engine")


def _scalar(engine, sql, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def test_active_generation_has_1_16_156_2400(liangxi_engine):
    with liangxi_engine.connect() as conn:
        counts = dict(conn.execute(text(
            """SELECT u.level, count(*) FROM unit u JOIN generation g ON g.id = u.generation_id
               WHERE g.active GROUP BY u.level""")).all())
    assert counts == {"district": 1, "street": 16, "community": 156, "grid": 2400}


def test_load_is_idempotent(liangxi_engine):
    before = _scalar(liangxi_engine, "SELECT count(*) FROM unit")
    generation_id, changed = load_shipped(liangxi_engine)
    assert not changed
    assert _scalar(liangxi_engine, "SELECT count(*) FROM unit") == before
    assert _scalar(liangxi_engine, "SELECT count(*) FROM generation") == 1
    assert generation_id == _scalar(liangxi_engine, "SELECT id FROM generation WHERE active")


def test_every_geometry_is_valid_and_nested_with_agreeing_codes(liangxi_engine):
    assert _scalar(liangxi_engine, "SELECT count(*) FROM unit WHERE NOT ST_IsValid(geom)") == 0
    bad_nesting = _scalar(liangxi_engine, """
        SELECT count(*) FROM unit c JOIN unit p ON p.id = c.parent_id
        WHERE NOT ST_CoveredBy(c.geom, p.geom) OR left(c.code, length(p.code)) <> p.code""")
    assert bad_nesting == 0
    orphans = _scalar(liangxi_engine,
                      "SELECT count(*) FROM unit WHERE level <> 'district' AND parent_id IS NULL")
    assert orphans == 0


def test_children_tile_their_parent_in_postgis(liangxi_engine):
    # areas: the children of every parent add up to it (to a square metre)
    worst = _scalar(liangxi_engine, """
        SELECT max(abs(p.area_m2 - s.total)) FROM unit p
        JOIN (SELECT parent_id, sum(area_m2) AS total FROM unit GROUP BY parent_id) s
          ON s.parent_id = p.id""")
    assert worst < 1.0
    # no two grids share any interior
    overlaps = _scalar(liangxi_engine, """
        SELECT count(*) FROM unit a JOIN unit b
          ON a.level = 'grid' AND b.level = 'grid' AND a.id < b.id AND a.geom && b.geom
        WHERE ST_Relate(a.geom, b.geom, '2********')""")
    assert overlaps == 0


def test_every_grids_interior_point_looks_up_to_itself(liangxi_engine):
    mismatches = _scalar(liangxi_engine, """
        SELECT count(*) FROM unit u
        CROSS JOIN LATERAL (SELECT ST_PointOnSurface(u.geom) AS p) q
        WHERE u.level = 'grid' AND gridgov_grid_at(q.p) <> u.id""")
    assert mismatches == 0


def test_shared_vertices_go_to_the_smallest_covering_code(liangxi_engine):
    grids = read_generation(liangxi_engine)["grid"].sort_values("code")
    first, second = grids.iloc[0], grids.iloc[1]
    shared = first.geometry.boundary.intersection(second.geometry.boundary)
    assert not shared.is_empty
    x, y = shared.representative_point().coords[0]
    result = lookup_point(liangxi_engine, x, y)
    assert result.unit("grid").code == first["code"]
    assert [u.level for u in result.chain] == ["grid", "community", "street", "district"]
    assert result.unit("district").code == "320213"


def test_outside_points(liangxi_engine):
    assert not lookup_point(liangxi_engine, 120.40, 31.58).inside  # east of the district
    assert not lookup_point(liangxi_engine, 116.40, 39.90).inside  # Beijing


def test_street_names_are_the_real_ones(liangxi_engine):
    streets = read_generation(liangxi_engine)["street"]
    assert set(streets["name"]) == {f"{n}街道" for n in (
        "崇安寺", "通江", "广瑞路", "上马墩", "江海", "广益", "迎龙桥", "南禅寺", "清名桥",
        "金星", "金匮", "扬名", "黄巷", "山北", "北大街", "惠山")}
    assert streets.set_index("name").loc["广瑞路街道", "code"] == "320213025"
