"""Coordinate reference systems used by gridgov, vectorised over numpy arrays.

Storage datum
    All geometries are stored in CGCS2000 geographic lon/lat (EPSG:4490).  CGCS2000 and
    WGS84 (EPSG:4326, what phone GPS / browser geolocation report) differ by only a few
    centimetres at city scale (well under 1 m), so this module treats them as *identical*
    lon/lat: converting between ``"wgs84"`` and ``"cgcs2000"`` is the identity.

Metric work
    Areas, distances and buffers for Wuxi use EPSG:4549 (CGCS2000 / 3-degree Gauss-Kruger,
    central meridian 120E, false easting 500 km) via pyproj with ``always_xy=True``
    (EPSG:4490 officially has lat/lon axis order; we always pass lon/lat = x/y).

Chinese web-map offsets
    AMap (Gaode) and Tencent maps use GCJ-02, a deliberately obfuscated datum whose forward
    transform from WGS84 is a published closed formula (Krasovsky ellipsoid constants,
    a = 6378245.0, ee = 0.00669342162296594323).  It shifts points by a few hundred metres
    around Wuxi.  There is no closed-form inverse: ``gcj02_to_wgs84`` solves
    ``wgs84_to_gcj02(w) = g`` by fixed-point iteration (the offset's Jacobian is ~1e-2, so the
    iteration contracts quickly), vectorised over all points, until every residual is below
    1e-9 degrees (~0.1 mm); the round-trip error is far below 1 mm.

    Baidu uses BD-09, a further published distortion on top of GCJ-02.  The published
    ``bd09_to_gcj02`` formula is itself only an approximation (errors of a few metres), so
    ``bd09_to_gcj02`` here refines that first guess by iterating against the exact forward
    ``gcj02_to_bd09``.

Out-of-China rule
    Like the reference implementations (coordtransform, eviltransform, gcoord), the GCJ-02
    transform is only applied inside the rough China bounding box
    ``72.004 <= lon <= 137.8347, 0.8293 <= lat <= 55.8271``; points outside it are returned
    unchanged by ``wgs84_to_gcj02``/``gcj02_to_wgs84``.  (The BD-09 step is applied
    everywhere, as in the published formulas.)  Because of this cut the forward map is
    discontinuous at the box edge, so within ~0.01 deg of the edge (open sea / far west,
    never Wuxi) the inverse may not find an exact preimage; it still terminates.

Non-finite input
    Any point whose lon or lat is NaN or +/-inf comes out as (NaN, NaN); no function raises
    or loops on such input.
"""

from __future__ import annotations

import functools
import math
import re
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

__all__ = [
    "CHINA_BBOX",
    "METRIC_CRS",
    "STORAGE_CRS",
    "area_m2",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "from_cgcs2000",
    "from_metric",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "normalise_crs",
    "out_of_china",
    "to_cgcs2000",
    "to_metric",
    "transform_geometry",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]
Pair = tuple[FloatArray, FloatArray]

STORAGE_CRS = "EPSG:4490"  #: CGCS2000 geographic lon/lat, the storage datum
METRIC_CRS = "EPSG:4549"  #: CGCS2000 / 3-degree Gauss-Kruger CM 120E, metric work in Wuxi

#: (min_lon, min_lat, max_lon, max_lat) of the rough China box used by the GCJ-02 rule.
CHINA_BBOX = (72.004, 0.8293, 137.8347, 55.8271)

# Krasovsky 1940 ellipsoid, as used by the published GCJ-02 formula.
_GCJ_A = 6378245.0
_GCJ_EE = 0.00669342162296594323
# Published BD-09 constant.
_X_PI = 3.14159265358979324 * 3000.0 / 180.0

#: Iteration stops once every point's residual is below this (degrees; ~0.1 mm).
_TOL_DEG = 1e-9
_MAX_ITER = 50


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _prepare(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray, tuple[int, ...]]:
    """Broadcast to float64 1-d copies; non-finite points become (NaN, NaN)."""
    x, y = np.broadcast_arrays(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
    shape = x.shape
    x = x.reshape(-1).copy()
    y = y.reshape(-1).copy()
    bad = ~(np.isfinite(x) & np.isfinite(y))
    if bad.any():
        x[bad] = np.nan
        y[bad] = np.nan
    return x, y, shape


def _finish(x: FloatArray, y: FloatArray, shape: tuple[int, ...]) -> Pair:
    return x.reshape(shape), y.reshape(shape)


def out_of_china(lon: ArrayLike, lat: ArrayLike) -> npt.NDArray[np.bool_]:
    """True where a point lies outside the rough China bounding box (GCJ-02 not applied).

    NaN coordinates count as out of China (they are passed through unchanged).
    """
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    min_lon, min_lat, max_lon, max_lat = CHINA_BBOX
    with np.errstate(invalid="ignore"):
        inside = (x >= min_lon) & (x <= max_lon) & (y >= min_lat) & (y <= max_lat)
    return ~inside


def _gcj_offset(lon: FloatArray, lat: FloatArray) -> Pair:
    """GCJ-02 offset (dlon, dlat) in degrees at WGS84 (lon, lat), ignoring the China box."""
    x = lon - 105.0
    y = lat - 35.0
    pi = math.pi
    sx = np.sqrt(np.abs(x))
    common = (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0

    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sx
    dlat += common
    dlat += (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0

    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sx
    dlon += common
    dlon += (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0

    radlat = lat / 180.0 * pi
    magic = np.sin(radlat)
    magic = 1.0 - _GCJ_EE * magic * magic
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_GCJ_A * (1.0 - _GCJ_EE)) / (magic * sqrtmagic) * pi)
    dlon = (dlon * 180.0) / (_GCJ_A / sqrtmagic * np.cos(radlat) * pi)
    return dlon, dlat


def _wgs_to_gcj_flat(x: FloatArray, y: FloatArray) -> Pair:
    """Forward GCJ-02 on flat float arrays (NaN-safe; out-of-China unchanged)."""
    gx = x.copy()
    gy = y.copy()
    inside = ~out_of_china(x, y)
    if inside.any():
        dlon, dlat = _gcj_offset(x[inside], y[inside])
        gx[inside] += dlon
        gy[inside] += dlat
    return gx, gy


def _invert(
    forward: Callable[[FloatArray, FloatArray], Pair],
    tx: FloatArray,
    ty: FloatArray,
    gx: FloatArray,
    gy: FloatArray,
    tol: float = _TOL_DEG,
    max_iter: int = _MAX_ITER,
) -> Pair:
    """Solve ``forward(x, y) = (tx, ty)`` by fixed-point iteration from guess (gx, gy).

    ``forward`` must be close to a translation (Jacobian near identity), which holds for
    both GCJ-02 and BD-09.  Only points not yet converged are re-evaluated; NaN points are
    never active, so the loop always terminates.
    """
    x = gx.copy()
    y = gy.copy()
    active = np.flatnonzero(np.isfinite(tx) & np.isfinite(ty))
    for _ in range(max_iter):
        if active.size == 0:
            break
        fx, fy = forward(x[active], y[active])
        rx = fx - tx[active]
        ry = fy - ty[active]
        x[active] -= rx
        y[active] -= ry
        keep = (np.abs(rx) > tol) | (np.abs(ry) > tol)
        active = active[keep]
    return x, y


# ---------------------------------------------------------------------------
# GCJ-02 / BD-09
# ---------------------------------------------------------------------------


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> Pair:
    """WGS84 (≈ CGCS2000) lon/lat → GCJ-02 (AMap/Tencent) with the published formula.

    Points outside the rough China bounding box (:data:`CHINA_BBOX`) are returned unchanged.
    """
    x, y, shape = _prepare(lon, lat)
    gx, gy = _wgs_to_gcj_flat(x, y)
    return _finish(gx, gy, shape)


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> Pair:
    """GCJ-02 lon/lat → WGS84 (≈ CGCS2000), precise inverse by fixed-point iteration.

    Iterates until every point's residual ``|wgs84_to_gcj02(w) - g|`` is below 1e-9 deg
    (round-trip error well below 1 mm).  Points outside the China box are unchanged.
    """
    gx, gy, shape = _prepare(lon, lat)
    # First guess: subtract the offset evaluated at the GCJ-02 point itself (~1 m error).
    wx, wy = _wgs_to_gcj_flat(gx, gy)
    x0 = 2.0 * gx - wx
    y0 = 2.0 * gy - wy
    x, y = _invert(_wgs_to_gcj_flat, gx, gy, x0, y0)
    return _finish(x, y, shape)


def _gcj_to_bd_flat(x: FloatArray, y: FloatArray) -> Pair:
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _bd_to_gcj_approx_flat(bx: FloatArray, by: FloatArray) -> Pair:
    """The published (approximate) BD-09 → GCJ-02 formula."""
    x = bx - 0.0065
    y = by - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> Pair:
    """GCJ-02 lon/lat → BD-09 (Baidu) with the published formula."""
    x, y, shape = _prepare(lon, lat)
    bx, by = _gcj_to_bd_flat(x, y)
    return _finish(bx, by, shape)


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> Pair:
    """BD-09 lon/lat → GCJ-02, precise.

    Starts from the published approximate inverse and refines it by iterating against
    :func:`gcj02_to_bd09` until residuals are below 1e-9 deg.
    """
    bx, by, shape = _prepare(lon, lat)
    x0, y0 = _bd_to_gcj_approx_flat(bx, by)
    x, y = _invert(_gcj_to_bd_flat, bx, by, x0, y0)
    return _finish(x, y, shape)


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> Pair:
    """WGS84 (≈ CGCS2000) lon/lat → BD-09 (via GCJ-02)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> Pair:
    """BD-09 lon/lat → WGS84 (≈ CGCS2000), precise (via GCJ-02)."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


# ---------------------------------------------------------------------------
# CRS names and pyproj
# ---------------------------------------------------------------------------

_ALIASES = {
    "wgs84": "wgs84",
    "wgs1984": "wgs84",
    "cgcs2000": "cgcs2000",
    "cgcs": "cgcs2000",
    "gcj02": "gcj02",
    "gcj": "gcj02",
    "amap": "gcj02",
    "gaode": "gcj02",
    "bd09": "bd09",
    "bd09ll": "bd09",
    "baidu": "bd09",
}

_EPSG_RE = re.compile(r"^(?:epsg:?)?(\d{4,6})$")
#: EPSG codes that are one of the named geographic systems.
_EPSG_NAMED = {4326: "wgs84", 4490: "cgcs2000"}


@functools.lru_cache(maxsize=256)
def _epsg_known(code: int) -> bool:
    try:
        CRS.from_epsg(code)
    except CRSError:
        return False
    return True


def normalise_crs(name: str) -> str:
    """Normalise a CRS name to ``"wgs84"``, ``"cgcs2000"``, ``"gcj02"``, ``"bd09"`` or ``"EPSG:n"``.

    Case, spaces, ``-`` and ``_`` are ignored for the named systems ("GCJ-02", "bd-09",
    "WGS84").  ``"EPSG:4326"``/``"4326"`` map to ``"wgs84"`` and ``"EPSG:4490"``/``"4490"``
    to ``"cgcs2000"``; any other EPSG code pyproj knows is returned as ``"EPSG:n"``.

    Raises:
        ValueError: if the name is not a string or not a known CRS.
    """
    if not isinstance(name, str):
        raise ValueError(f"CRS name must be a string, got {name!r}")
    key = re.sub(r"[\s_\-]+", "", name.strip().lower())
    if key in _ALIASES:
        return _ALIASES[key]
    m = _EPSG_RE.match(key)
    if m:
        code = int(m.group(1))
        if code in _EPSG_NAMED:
            return _EPSG_NAMED[code]
        if _epsg_known(code):
            return f"EPSG:{code}"
        raise ValueError(f"unknown EPSG code in CRS name {name!r}")
    raise ValueError(
        f"unknown CRS {name!r}: expected wgs84, cgcs2000, gcj02, bd09 or 'EPSG:<code>'"
    )


@functools.lru_cache(maxsize=64)
def _transformer(src: str, dst: str) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


def _pyproj(src: str, dst: str, x: ArrayLike, y: ArrayLike) -> Pair:
    fx, fy, shape = _prepare(x, y)
    ox, oy = _transformer(src, dst).transform(fx, fy)
    ox = np.asarray(ox, dtype=np.float64)
    oy = np.asarray(oy, dtype=np.float64)
    bad = ~(np.isfinite(ox) & np.isfinite(oy))
    if bad.any():
        ox[bad] = np.nan
        oy[bad] = np.nan
    return _finish(ox, oy, shape)


def _identity(x: ArrayLike, y: ArrayLike) -> Pair:
    fx, fy, shape = _prepare(x, y)
    return _finish(fx, fy, shape)


def to_cgcs2000(x: ArrayLike, y: ArrayLike, crs: str) -> Pair:
    """Convert coordinates in ``crs`` to CGCS2000 lon/lat (EPSG:4490, ≈ WGS84)."""
    name = normalise_crs(crs)
    if name in ("wgs84", "cgcs2000"):
        return _identity(x, y)
    if name == "gcj02":
        return gcj02_to_wgs84(x, y)
    if name == "bd09":
        return bd09_to_wgs84(x, y)
    return _pyproj(name, STORAGE_CRS, x, y)


def from_cgcs2000(lon: ArrayLike, lat: ArrayLike, crs: str) -> Pair:
    """Convert CGCS2000 lon/lat (EPSG:4490, ≈ WGS84) to coordinates in ``crs``."""
    name = normalise_crs(crs)
    if name in ("wgs84", "cgcs2000"):
        return _identity(lon, lat)
    if name == "gcj02":
        return wgs84_to_gcj02(lon, lat)
    if name == "bd09":
        return wgs84_to_bd09(lon, lat)
    return _pyproj(STORAGE_CRS, name, lon, lat)


def to_metric(lon: ArrayLike, lat: ArrayLike) -> Pair:
    """CGCS2000 lon/lat (EPSG:4490) → EPSG:4549 Gauss-Kruger easting/northing in metres."""
    return _pyproj(STORAGE_CRS, METRIC_CRS, lon, lat)


def from_metric(x: ArrayLike, y: ArrayLike) -> Pair:
    """EPSG:4549 easting/northing in metres → CGCS2000 lon/lat (EPSG:4490)."""
    return _pyproj(METRIC_CRS, STORAGE_CRS, x, y)


def _pyproj_name(crs: str) -> str | None:
    """EPSG name of a CRS for pyproj/geopandas; None for GCJ-02/BD-09 (no EPSG code)."""
    name = normalise_crs(crs)
    return {"wgs84": "EPSG:4326", "cgcs2000": STORAGE_CRS}.get(
        name, name if name.startswith("EPSG:") else None
    )


def _converter(src: str, dst: str) -> Callable[[FloatArray, FloatArray], Pair]:
    """Return a vectorised (x, y) → (x, y) function from ``src`` to ``dst``."""
    s = normalise_crs(src)
    d = normalise_crs(dst)
    geographic = ("wgs84", "cgcs2000")
    if s == d or (s in geographic and d in geographic):
        return _identity
    if s.startswith("EPSG:") and d.startswith("EPSG:"):
        return functools.partial(_pyproj, s, d)

    def convert(x: FloatArray, y: FloatArray) -> Pair:
        return from_cgcs2000(*to_cgcs2000(x, y, s), d)

    return convert


def transform_geometry(geom_or_array: Any, src: str, dst: str) -> Any:
    """Transform a shapely geometry (or array of geometries) from ``src`` to ``dst``.

    ``src``/``dst`` are any names accepted by :func:`normalise_crs`.  All coordinates of
    all geometries are converted in one vectorised call (``shapely.transform`` with
    ``interleaved=False``); Z values, if present, are kept unchanged.  Returns a geometry
    for a geometry, a GeoSeries (same index, ``crs`` set to ``dst`` where it has an EPSG
    code, else None) for a GeoSeries, and a numpy array of geometries otherwise.
    """
    convert = _converter(src, dst)
    gpd = sys.modules.get("geopandas")  # only a GeoSeries if geopandas is already loaded
    if gpd is not None and isinstance(geom_or_array, gpd.GeoSeries):
        values = transform_geometry(np.asarray(geom_or_array.values, dtype=object), src, dst)
        return gpd.GeoSeries(values, index=geom_or_array.index, crs=_pyproj_name(dst))

    def func(x: FloatArray, y: FloatArray, z: FloatArray | None = None) -> tuple:
        ox, oy = convert(x, y)
        if z is None:
            return ox, oy
        return ox, oy, z

    return shapely.transform(geom_or_array, func, include_z=None, interleaved=False)


def area_m2(geoms: Any) -> FloatArray:
    """Areas in m² of CGCS2000 lon/lat (EPSG:4490) geometries, computed in EPSG:4549."""
    arr = np.asarray(geoms, dtype=object)
    metric = transform_geometry(arr, "cgcs2000", METRIC_CRS)
    return np.asarray(shapely.area(metric), dtype=np.float64)
