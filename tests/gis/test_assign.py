"""The assignment engine against a brute-force reference of the edge rule, on adversarial points.

Reference: for each point, every grid whose polygon covers it (``shapely.intersects_xy``, true on
the boundary), smallest code wins, ``None`` if none. The engine must agree on every point.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

import gis.assign as assign_module
from gis.assign import GridIndex, assign_points
from tests.gis.synthetic_grids import shared_edge_segments, synthetic_partition

GPKG = Path(__file__).resolve().parents[2] / "data" / "boundaries" / "liangxi.gpkg"
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e6, -1e6, 1e300, -1e300, 5e-324]


# ---------------------------------------------------------------------------------------------
# Reference and point families
# ---------------------------------------------------------------------------------------------


def brute_force(gdf: gpd.GeoDataFrame, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Smallest code among all grids covering each point, else None (no index, no lattice)."""
    order = np.argsort(gdf["code"].to_numpy().astype(str))
    codes = gdf["code"].to_numpy()[order]
    geoms = gdf.geometry.to_numpy()[order]
    bounds = shapely.bounds(geoms)
    out = np.full(len(x), None, dtype=object)
    for k in range(len(geoms) - 1, -1, -1):  # descending, so the smallest code writes last
        minx, miny, maxx, maxy = bounds[k]
        near = np.flatnonzero((x >= minx) & (x <= maxx) & (y >= miny) & (y <= maxy))
        hit = shapely.intersects_xy(geoms[k], x[near], y[near])
        out[near[hit]] = codes[k]
    return out


def vertex_owners(gdf: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Distinct vertex coordinates and how many distinct grids have each as a vertex."""
    parts, part_owner = shapely.get_parts(gdf.geometry.to_numpy(), return_index=True)
    xy, part = shapely.get_coordinates(parts, return_index=True)
    owner = part_owner[part]
    rows = np.unique(np.column_stack([xy, owner]), axis=0)
    coords, counts = np.unique(rows[:, :2], axis=0, return_counts=True)
    return coords, counts


def nudged(x: np.ndarray, y: np.ndarray, steps: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Each point moved by ``steps`` ulps in the eight compass directions (a hair either side)."""
    xs, ys = [], []
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            if dx or dy:
                xs.append(_ulps(x, dx * steps))
                ys.append(_ulps(y, dy * steps))
    return np.concatenate(xs), np.concatenate(ys)


def _ulps(a: np.ndarray, k: int) -> np.ndarray:
    """``a`` moved ``k`` representable doubles (negative k moves down)."""
    for _ in range(abs(k)):
        a = np.nextafter(a, np.inf if k > 0 else -np.inf)
    return a


def edge_points(gdf: gpd.GeoDataFrame, rng: np.random.Generator, n: int) -> np.ndarray:
    """Points on boundary segments: vertices, midpoints and random interpolations (m × 2)."""
    seg = shared_edge_segments(gdf)
    seg = seg[rng.choice(len(seg), size=min(n, len(seg)), replace=False)]
    t = rng.uniform(0, 1, size=(len(seg), 1))
    return np.vstack(
        [seg[:, :2], (seg[:, :2] + seg[:, 2:]) / 2, seg[:, :2] + t * (seg[:, 2:] - seg[:, :2])]
    )


def adversarial_points(gdf: gpd.GeoDataFrame, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """All point families at once: interior, edges, 3-way vertices, hairs, outside, non-finite."""
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = gdf.total_bounds
    uniform = rng.uniform((minx - 0.01, miny - 0.01), (maxx + 0.01, maxy + 0.01), (20_000, 2))
    on_edges = edge_points(gdf, rng, 3_000)
    coords, counts = vertex_owners(gdf)
    junctions = coords[counts >= 3][:2_000]
    hairs = np.column_stack(nudged(*np.vstack([on_edges, junctions]).T))
    pairs = [(a, b) for a in SPECIAL for b in [*SPECIAL, 31.57]] + [(120.3, b) for b in SPECIAL]
    special = np.array(pairs)
    xy = np.vstack([uniform, on_edges, junctions, hairs, special])
    return xy[:, 0].copy(), xy[:, 1].copy()


def assert_agrees(index: GridIndex, gdf: gpd.GeoDataFrame, x, y) -> None:
    """Engine codes equal the brute-force codes on every point; report a few offenders if not."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    got = index.assign_codes(x, y)
    want = brute_force(gdf, x, y)
    bad = np.flatnonzero(got != want)
    assert len(bad) == 0, [(x[i], y[i], got[i], want[i]) for i in bad[:5]]


# ---------------------------------------------------------------------------------------------
# Fixtures (module scoped, defined here: tests/conftest.py is deliberately not used)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grids() -> gpd.GeoDataFrame:
    return synthetic_partition()


@pytest.fixture(scope="module")
def index(grids) -> GridIndex:
    return GridIndex.from_geodataframe(grids)


@pytest.fixture(scope="module")
def small_grids() -> gpd.GeoDataFrame:
    return synthetic_partition(n=60, seed=3)


# ---------------------------------------------------------------------------------------------
# The synthetic partition is what it claims to be
# ---------------------------------------------------------------------------------------------


def test_synthetic_partition_is_an_exact_coverage(grids):
    geoms = grids.geometry.to_numpy()
    assert len(grids) == 2400
    assert shapely.coverage_is_valid(geoms)
    assert (shapely.get_type_id(geoms) == 6).all()  # MultiPolygon
    assert shapely.get_num_interior_rings(shapely.get_parts(geoms)).max() >= 1
    assert shapely.get_num_geometries(geoms).max() == 2
    assert (vertex_owners(grids)[1] >= 3).sum() > 1000


# ---------------------------------------------------------------------------------------------
# Agreement with the reference
# ---------------------------------------------------------------------------------------------


def test_agrees_on_all_adversarial_families(index, grids):
    x, y = adversarial_points(grids)
    assert_agrees(index, grids, x, y)


def test_shared_vertices_go_to_smallest_code(index, grids):
    coords, counts = vertex_owners(grids)
    junctions = coords[counts >= 3]
    got = index.assign_codes(junctions[:, 0], junctions[:, 1])
    geoms, codes = grids.geometry.to_numpy(), grids["code"].to_numpy()
    for (x, y), code in zip(junctions[:200], got[:200], strict=True):
        covering = codes[shapely.intersects_xy(geoms, x, y)]
        assert len(covering) >= 3
        assert code == min(covering)


def test_midpoints_and_interpolations_of_every_segment(index, grids):
    """Midpoints (often exactly on the edge) and interpolations (usually a hair off it)."""
    rng = np.random.default_rng(11)
    seg = shared_edge_segments(grids)
    t = rng.uniform(0, 1, size=(len(seg), 1))
    pts = np.vstack([(seg[:, :2] + seg[:, 2:]) / 2, seg[:, :2] + t * (seg[:, 2:] - seg[:, :2])])
    assert_agrees(index, grids, pts[:, 0], pts[:, 1])


def test_hairs_beyond_several_ulps(index, grids):
    rng = np.random.default_rng(5)
    pts = edge_points(grids, rng, 500)
    for steps in (2, 5, 1000):
        x, y = nudged(pts[:, 0], pts[:, 1], steps)
        assert_agrees(index, grids, x, y)


@pytest.mark.parametrize("refine", [1, assign_module._SUB])
def test_points_on_lattice_lines(index, grids, refine):
    """Points exactly on cell and sub-cell borders, and a hair off them."""
    lat = index._lattice.refined(refine)
    rng = np.random.default_rng(9)
    i = rng.integers(0, lat.nx, 5000)
    j = rng.integers(0, lat.ny, 5000)
    x, y = lat.x0 + i * lat.dx, lat.y0 + j * lat.dy
    xs, ys = nudged(x, y)
    assert_agrees(index, grids, np.concatenate([x, xs]), np.concatenate([y, ys]))


def test_outside_far_and_non_finite_are_unassigned(index):
    x = np.array([0.0, 1e6, -1e6, np.nan, np.inf, -np.inf, 120.3, 120.3, 120.3, 1e308])
    y = np.array([0.0, 1e6, 31.57, 31.57, 31.57, 31.57, np.nan, np.inf, -np.inf, -1e308])
    assert (index.assign(x, y) == -1).all()
    assert all(c is None for c in index.assign_codes(x, y))


def test_real_geopackage_agrees():
    if not GPKG.exists():
        pytest.skip(f"{GPKG} not generated yet (gis.partition.generate() writes it)")
    real = gpd.read_file(GPKG, layer="grid")
    index = GridIndex.from_geodataframe(real)
    x, y = adversarial_points(real, seed=1)
    assert_agrees(index, real, x, y)


def test_metric_crs_agrees(small_grids):
    """Nothing assumes lon/lat: the same partition in EPSG:4549 metres."""
    metric = small_grids.to_crs(4549)
    x, y = adversarial_points(metric, seed=2)
    assert_agrees(GridIndex.from_geodataframe(metric), metric, x, y)


@pytest.mark.parametrize("cell_size", [3e-5, 2e-4, 1e-3, 5e-2])
def test_any_cell_size_is_exact(small_grids, cell_size):
    index = GridIndex.from_geodataframe(small_grids, cell_size=cell_size)
    x, y = adversarial_points(small_grids, seed=3)
    assert_agrees(index, small_grids, x, y)


def test_overlapping_grids_still_follow_smallest_code():
    """Not a partition (e.g. a dedicated grid over a comprehensive one): the rule still holds."""
    boxes = [(0, 0, 10, 10), (5, 5, 15, 15), (2, 2, 3, 3), (0, 0, 30, 1), (12, 0, 13, 20)]
    gdf = gpd.GeoDataFrame(
        {"code": ["320213001001005", "320213001001001", "320213001001003", "320213001001002",
                  "320213001001004"]},
        geometry=[shapely.multipolygons([shapely.box(*b)]) for b in boxes],
    )  # fmt: skip
    index = GridIndex.from_geodataframe(gdf, cell_size=0.7)
    rng = np.random.default_rng(1)
    grid = np.arange(-1, 32, 0.5)
    gx, gy = np.meshgrid(grid, grid)
    x = np.concatenate([gx.ravel(), rng.uniform(-1, 31, 5000)])
    y = np.concatenate([gy.ravel(), rng.uniform(-1, 21, 5000)])
    assert_agrees(index, gdf, x, y)


def test_enclave_and_its_surround(index, grids):
    """A grid with a hole and the grid filling it: ring points go to the smaller code."""
    polys = shapely.get_parts(grids.geometry.to_numpy())
    holed = polys[shapely.get_num_interior_rings(polys) > 0][0]
    ring = shapely.get_coordinates(holed.interiors[0])
    centre = np.asarray(shapely.centroid(shapely.Polygon(ring)).coords)
    pts = np.vstack([ring, (ring[:-1] + ring[1:]) / 2, centre])
    assert_agrees(index, grids, pts[:, 0], pts[:, 1])
    assert index.assign_codes(centre[:, 0], centre[:, 1])[0] is not None


# ---------------------------------------------------------------------------------------------
# Property tests
# ---------------------------------------------------------------------------------------------

coordinate = st.floats(allow_nan=True, allow_infinity=True, width=64)
FRACTIONS = st.sampled_from([0.5, 0.25, 1 / 3, 0.1]) | st.floats(0, 1)


@st.composite
def point_batches(draw, gdf: gpd.GeoDataFrame, segments: np.ndarray):
    """A batch of points from one family, each then moved up to 3 ulps per axis (segment and
    vertex families): along a boundary segment, at a vertex, in the bbox, or any float at all."""
    family = draw(st.sampled_from(["segment", "vertex", "bbox", "any"]))
    n = draw(st.integers(1, 20))
    if family == "any":
        xs = draw(st.lists(coordinate, min_size=n, max_size=n))
        ys = draw(st.lists(coordinate, min_size=n, max_size=n))
        return np.array(xs), np.array(ys)
    if family == "bbox":
        minx, miny, maxx, maxy = gdf.total_bounds
        xs = draw(st.lists(st.floats(minx - 1e-3, maxx + 1e-3), min_size=n, max_size=n))
        ys = draw(st.lists(st.floats(miny - 1e-3, maxy + 1e-3), min_size=n, max_size=n))
        return np.array(xs), np.array(ys)
    k = draw(st.lists(st.integers(0, len(segments) - 1), min_size=n, max_size=n))
    seg = segments[k]
    where = st.sampled_from([0.0, 1.0]) if family == "vertex" else FRACTIONS
    t = np.array(draw(st.lists(where, min_size=n, max_size=n)))[:, None]
    xy = seg[:, :2] + t * (seg[:, 2:] - seg[:, :2])
    return _ulps(xy[:, 0], draw(st.integers(-3, 3))), _ulps(xy[:, 1], draw(st.integers(-3, 3)))


@pytest.fixture(scope="module")
def segments(small_grids) -> np.ndarray:
    return shared_edge_segments(small_grids)


@pytest.fixture(scope="module")
def small_index(small_grids) -> GridIndex:
    return GridIndex.from_geodataframe(small_grids)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_property_small_partition(small_index, small_grids, segments, data):
    x, y = data.draw(point_batches(small_grids, segments))
    assert_agrees(small_index, small_grids, x, y)


@pytest.fixture(scope="module")
def full_segments(grids) -> np.ndarray:
    return shared_edge_segments(grids)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_property_full_partition(index, grids, full_segments, data):
    x, y = data.draw(point_batches(grids, full_segments))
    assert_agrees(index, grids, x, y)


# ---------------------------------------------------------------------------------------------
# API contract
# ---------------------------------------------------------------------------------------------


def test_codes_sorted_and_row_order_irrelevant(grids, index):
    assert list(index.codes) == sorted(grids["code"])
    shuffled = grids.sample(frac=1.0, random_state=4)
    x, y = adversarial_points(grids, seed=4)
    again = GridIndex.from_geodataframe(shuffled)
    np.testing.assert_array_equal(again.assign(x, y), index.assign(x, y))


def test_positions_and_codes_agree(index, grids):
    x, y = adversarial_points(grids, seed=6)
    pos = index.assign(x, y)
    assert pos.dtype == np.int64
    codes = index.assign_codes(x, y)
    assert codes.dtype == object
    np.testing.assert_array_equal(codes[pos >= 0], index.codes[pos[pos >= 0]])
    assert all(c is None for c in codes[pos < 0])


def test_empty_single_scalar_and_shaped_input(index, grids):
    assert index.assign(np.array([]), np.array([])).shape == (0,)
    assert index.assign_codes([], []).shape == (0,)
    x, y = shapely.get_coordinates(grids.geometry.iloc[0].representative_point())[0]
    one = index.assign([x], [y])
    assert one.shape == (1,) and index.codes[one[0]] == grids["code"].iloc[0]
    assert index.assign(x, y).shape == ()
    grid_xy = np.full((3, 4), x), np.full((3, 4), y)
    assert (index.assign_codes(*grid_xy) == grids["code"].iloc[0]).all()
    with pytest.raises(ValueError, match="shapes differ"):
        index.assign([1.0, 2.0], [1.0])


def test_threads_and_chunks_do_not_change_answers(index, grids, monkeypatch):
    x, y = adversarial_points(grids, seed=8)
    want = index.assign(x, y, threads=1)
    monkeypatch.setattr(assign_module, "_CHUNK", 1000)
    np.testing.assert_array_equal(index.assign(x, y, threads=2), want)
    np.testing.assert_array_equal(index.assign(x, y, threads=1), want)


def test_pickle_round_trip(index, grids):
    clone = pickle.loads(pickle.dumps(index))
    assert shapely.is_prepared(clone._geoms).all()
    x, y = adversarial_points(grids, seed=10)
    np.testing.assert_array_equal(clone.assign(x, y), index.assign(x, y))
    np.testing.assert_array_equal(clone.codes, index.codes)


def test_assign_points_convenience(small_grids):
    x, y = adversarial_points(small_grids, seed=12)
    np.testing.assert_array_equal(assign_points(small_grids, x, y), brute_force(small_grids, x, y))


def test_duplicate_codes_rejected(small_grids):
    dup = small_grids.copy()
    dup.loc[dup.index[1], "code"] = dup["code"].iloc[0]
    with pytest.raises(ValueError, match="unique"):
        GridIndex.from_geodataframe(dup)


def test_no_grids_means_nothing_assigned():
    empty = gpd.GeoDataFrame({"code": []}, geometry=[])
    index = GridIndex.from_geodataframe(empty)
    assert (index.assign([120.3, np.nan], [31.5, 0.0]) == -1).all()


# ---------------------------------------------------------------------------------------------
# Lookup-table invariants (white box): a cell answered without a test is truly inside/outside
# ---------------------------------------------------------------------------------------------


def _cell_boxes(lat, cells: np.ndarray) -> np.ndarray:
    j, i = np.divmod(cells, lat.nx)
    return shapely.box(
        lat.x0 + i * lat.dx,
        lat.y0 + j * lat.dy,
        lat.x0 + (i + 1) * lat.dx,
        lat.y0 + (j + 1) * lat.dy,
    )


def _assert_boxes_answered_right(index: GridIndex, boxes: np.ndarray, labels: np.ndarray) -> None:
    """A box labelled g lies in g's interior; a box labelled -1 touches no grid at all."""
    inside = labels >= 0
    assert shapely.contains_properly(index._geoms[labels[inside]], boxes[inside]).all()
    tree = shapely.STRtree(index._geoms)
    assert len(tree.query(boxes[~inside], predicate="intersects")[0]) == 0


def test_table_cells_are_wholly_inside_their_grid(index):
    lat, table = index._lattice, index._table
    rng = np.random.default_rng(13)
    cells = np.concatenate(
        [
            rng.choice(np.flatnonzero(table >= 0), 20_000, replace=False),
            rng.choice(np.flatnonzero(table == -1), 20_000, replace=False),
        ]
    )
    _assert_boxes_answered_right(index, _cell_boxes(lat, cells), table[cells])


def test_sub_cells_are_wholly_inside_their_grid(index):
    sub_n = assign_module._SUB
    lat, fine, table, sub = index._lattice, index._lattice.refined(sub_n), index._table, index._sub
    rng = np.random.default_rng(14)
    slots = rng.choice(np.flatnonzero(sub != assign_module._TEST), 40_000, replace=False)
    b, (sj, si) = slots // sub_n**2, np.divmod(slots % sub_n**2, sub_n)
    cell = np.flatnonzero(table <= -2)[np.argsort(-table[table <= -2])][b]  # cell number b
    assert (table[cell] == -2 - b).all()
    j, i = np.divmod(cell, lat.nx)
    fine_cells = (j * sub_n + sj) * fine.nx + i * sub_n + si
    _assert_boxes_answered_right(index, _cell_boxes(fine, fine_cells), sub[slots])
    assert (sub[slots] >= 0).any() and (sub[slots] == -1).any()


def test_bad_cell_size_rejected(small_grids):
    for bad in (0.0, -1.0, np.nan, 1e-9):
        with pytest.raises(ValueError, match="cell_size"):
            GridIndex.from_geodataframe(small_grids, cell_size=bad)


def test_index_remembers_crs(index, grids):
    assert index.crs == grids.crs
