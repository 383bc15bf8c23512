"""A synthetic grid partition shaped like Liangxi's, for tests and benchmark fallbacks.

The real grids (``data/boundaries/liangxi.gpkg``) are produced elsewhere and may be absent. This
builder gives a stand-in with the properties the assignment engine relies on: an exact partition
(neighbours share identical vertices, because every polygon comes out of one ``polygonize`` of
noded linework), MultiPolygon geometries, 15-digit codes in an order unrelated to position, a
concave outline, a grid with a hole (an enclave grid inside it) and a grid in two parts.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

# A concave, irregular outline of roughly 10 km x 12 km around Liangxi (lon/lat, EPSG:4490).
OUTLINE_XY = [
    (120.2440, 31.5150), (120.2900, 31.5120), (120.3100, 31.5300), (120.3480, 31.5220),
    (120.3500, 31.5700), (120.3300, 31.5800), (120.3450, 31.6050), (120.3200, 31.6280),
    (120.2800, 31.6250), (120.2850, 31.5950), (120.2600, 31.5900), (120.2420, 31.6000),
    (120.2500, 31.5600),
]  # fmt: skip
GRID_PRECISION = 1e-7  # degrees (~1 cm); all vertices sit on this lattice


def _seed_points(n: int, outline: shapely.Polygon, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` seeds uniformly inside ``outline`` by rejection."""
    minx, miny, maxx, maxy = outline.bounds
    shapely.prepare(outline)
    seeds = np.empty((0, 2))
    while len(seeds) < n:
        xy = rng.uniform((minx, miny), (maxx, maxy), size=(2 * n, 2))
        seeds = np.vstack([seeds, xy[shapely.contains_xy(outline, xy[:, 0], xy[:, 1])]])
    return seeds[:n]


def _linework(seeds: np.ndarray, outline: shapely.Polygon) -> shapely.Geometry:
    """Voronoi edges clipped to the outline plus the outline, noded on the precision lattice."""
    cells = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=outline.envelope)
    edges = shapely.intersection(shapely.boundary(shapely.get_parts(cells)), outline)
    # An enclave: a small square inside the first seed's cell becomes a grid with a hole around it.
    cx, cy = seeds[0]
    enclave = shapely.box(cx - 2e-4, cy - 2e-4, cx + 2e-4, cy + 2e-4).boundary
    lines = [*edges, outline.boundary, enclave]
    return shapely.union_all(shapely.set_precision(lines, GRID_PRECISION), grid_size=GRID_PRECISION)


def _codes(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unique 15-digit codes (320213 + street + community + sequence) in random spatial order."""
    seq = rng.permutation(n)
    street = 1 + seq // 2000
    community = 1 + (seq // 20) % 100
    grid = 1 + seq % 20
    parts = zip(street, community, grid, strict=True)
    return np.array([f"320213{s:03d}{c:03d}{g:03d}" for s, c, g in parts])


def synthetic_partition(n: int = 2400, seed: int = 20190101) -> gpd.GeoDataFrame:
    """Return a GeoDataFrame (code, name, parent_code, geometry) partitioning a Liangxi-like area.

    Rows come shuffled, so consumers cannot rely on row order. Two polygons that touch only at a
    corner are merged into one two-part MultiPolygon grid to exercise multi-part handling.
    """
    rng = np.random.default_rng(seed)
    outline = shapely.Polygon(OUTLINE_XY)
    linework = _linework(_seed_points(n, outline, rng), outline)
    pieces = shapely.get_parts(shapely.polygonize([linework]))
    shapely.prepare(outline)
    reps = shapely.point_on_surface(pieces)
    pieces = pieces[shapely.contains(outline, reps)]
    geoms = list(shapely.multipolygons([[p] for p in pieces]))
    geoms = _merge_two_parts(geoms, rng)
    order = rng.permutation(len(geoms))
    codes = _codes(len(geoms), rng)
    return gpd.GeoDataFrame(
        {
            "code": codes,
            "name": [f"网格{c[-3:]}" for c in codes],
            "parent_code": [c[:12] for c in codes],
        },
        geometry=[geoms[i] for i in order],
        crs="EPSG:4490",
    )


def _merge_two_parts(geoms: list, rng: np.random.Generator) -> list:
    """Merge one pair of non-adjacent polygons into a single two-part MultiPolygon grid."""
    i, j = 1, 1 + len(geoms) // 2
    if not shapely.intersects(geoms[i], geoms[j]):
        merged = shapely.multipolygons([*geoms[i].geoms, *geoms[j].geoms])
        geoms = [g for k, g in enumerate(geoms) if k not in (i, j)] + [merged]
    return geoms


def shared_edge_segments(gdf: gpd.GeoDataFrame) -> np.ndarray:
    """All boundary segments of all grids as an (m, 4) array x1, y1, x2, y2 (vertex coordinates)."""
    rings = shapely.get_rings(shapely.get_parts(np.asarray(gdf.geometry.values)))
    xy, ring_id = shapely.get_coordinates(rings, return_index=True)
    same = ring_id[1:] == ring_id[:-1]
    return np.hstack([xy[:-1][same], xy[1:][same]])
