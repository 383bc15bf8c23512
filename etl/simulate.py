"""Demo incidents for the district: deterministic, plausible, optionally a little dirty.

Everything is drawn from one numpy generator seeded with ``seed``, always in the same order, so
the same arguments give the same rows and the same file bytes. The model is a demo assumption,
not a measurement:

- where: Gaussian hotspots around the old town (崇安寺, 南禅寺, 清名桥), the railway station,
  markets and 惠山古镇 (approximate WGS84/CGCS2000 positions), plus a background spread
  uniformly over the district, i.e. in proportion to grid area. A hotspot whose centre lies
  outside the given area is dropped and its share goes to the background.
- what: a class mix weighted toward the common events (暴露垃圾 E0102, 店外经营 E0404, 非机动车
  乱停放 E0406, 非法小广告 E0201, …), each hotspot biased toward its own typical events.
- when: a season per class (summer peak for garbage/odour/barbecues, plum-rain peak for
  waterlogging, winter only for snow and ice), a weekly rhythm per source (grid workers work
  weekdays, citizens call and use the app more at weekends) and an hour-of-day profile per
  source (grid workers keep working hours, the 12345 hotline runs 24 h).
- who: grid workers, the hotline, video patrol and the public app, each with its own key series.
- dirty rows (``dirty`` share): impossible dates, swapped lat/lon, GCJ-02 coordinates flagged in
  the ``crs`` column, unknown class codes, so the import's correction and rejection paths show.

Times are written with their offset (+08:00, Asia/Shanghai).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from gis.catalogues import read_classes
from gis.crs import wgs84_to_gcj02

Contains = Callable[[np.ndarray, np.ndarray], np.ndarray]

M_PER_DEG_LAT = 111_320.0
BACKGROUND_WEIGHT = 0.45  # share of reports away from every hotspot
COLUMNS = ("source_key", "source", "class_code", "description", "reported_at", "lon", "lat",
           "crs")


@dataclass(frozen=True)
class Hotspot:
    name: str
    lon: float
    lat: float
    sigma_m: float
    weight: float
    bias: dict[str, float] = field(default_factory=dict)  # class → weight multiplier


HOTSPOTS = (
    Hotspot("崇安寺", 120.305, 31.575, 350, 0.14, {"E0102": 2, "E0201": 2.5, "E0404": 1.5,
                                                    "E0204": 2, "E0408": 1.5}),
    Hotspot("南禅寺", 120.309, 31.566, 300, 0.09, {"E0404": 2.5, "E0401": 2.5, "E0102": 1.5}),
    Hotspot("无锡火车站", 120.303, 31.588, 300, 0.10, {"E0406": 3, "E0407": 4, "E0405": 2.5,
                                                        "E0402": 3}),
    Hotspot("清名桥古街", 120.318, 31.555, 250, 0.06, {"E0404": 2, "E0105": 3, "E0408": 2}),
    Hotspot("惠山古镇", 120.274, 31.583, 250, 0.05, {"E0404": 2, "E0102": 1.5}),
    Hotspot("迎龙桥菜场", 120.297, 31.559, 150, 0.06, {"E0404": 3, "E0401": 3, "E0103": 2,
                                                        "E0403": 2}),
    Hotspot("广益农贸市场", 120.330, 31.590, 150, 0.05, {"E0404": 3, "E0401": 3, "E0406": 2}),
)

#: Relative frequency of each class (demo assumption); classes not listed are not simulated.
CLASS_WEIGHTS = {
    "E0102": 20, "E0404": 12, "E0406": 11, "E0201": 10, "E0405": 6, "E0103": 5, "E0104": 5,
    "E0108": 4, "E0401": 4, "E0204": 2, "E0403": 2, "E0101": 2, "E0109": 2, "E0408": 2,
    "E0407": 1, "E0402": 1, "E0105": 1, "E0302": 2, "E0301": 1.5, "E0303": 1.5, "E0305": 1,
    "E0504": 1.5, "E0506": 1, "E0507": 0.6, "E0602": 2, "E0601": 1, "E0709": 0.5,
    "C0303": 2, "C0119": 1.5, "C0101": 1, "C0102": 1, "C0402": 1, "C0214": 1, "C0305": 1,
    "C0210": 0.5, "C0301": 0.5,
}
SUMMER = frozenset({"E0102", "E0103", "E0105", "E0109", "E0408", "E0602"})
RAIN = frozenset({"E0504", "E0506"})
WINTER = frozenset({"E0507"})

SOURCE_SHARES = {"grid_worker": 0.55, "hotline": 0.25, "video_patrol": 0.12, "api": 0.08}
KEY_PREFIX = {"grid_worker": "WG", "hotline": "RX", "video_patrol": "SP", "api": "APP"}
DESCRIPTION_PREFIX = {"grid_worker": "巡查发现：", "hotline": "市民来电反映：",
                      "video_patrol": "视频巡查发现：", "api": "市民随手拍："}
#: Monday … Sunday.
WEEKDAY = {
    "grid_worker": (1, 1, 1, 1, 1, 0.3, 0.2),
    "hotline": (1, 1, 1, 1, 1, 1.15, 1.2),
    "video_patrol": (1, 1, 1, 1, 1, 1, 1),
    "api": (0.9, 0.9, 0.9, 0.9, 1, 1.3, 1.3),
}
_WORK = (0.01,) * 8 + (1, 1, 1, 1, 0.3, 0.6, 1, 1, 1, 1, 0.3) + (0.02,) * 5
HOURS = {
    "grid_worker": _WORK,
    "hotline": (0.15,) * 7 + (0.5, 1.2, 1.2, 1.2, 1.2, 0.8, 0.8, 1, 1, 1, 1, 1.3, 1.3, 1.3,
                              1.3, 1.3, 0.5),
    "video_patrol": (0.7,) * 7 + (1.2,) * 13 + (0.8,) * 4,
    "api": (0.1,) * 7 + (1,) * 17,
}
DIRTY_KINDS = ("bad_date", "swapped", "gcj02", "unknown_class")
BAD_DATES = ("2019-02-30 08:15:00", "2019-13-01 10:00:00", "昨天下午", "", "0000-00-00 00:00")
UNKNOWN_CLASSES = ("E9999", "X0101", "E01")


@dataclass(frozen=True)
class Area:
    """Where reports may fall: a bounding box and an exact membership test."""

    bounds: tuple[float, float, float, float]
    contains: Contains

    @classmethod
    def from_geometry(cls, geometry) -> Area:
        shapely.prepare(geometry)
        return cls(tuple(shapely.bounds(geometry)),
                   lambda x, y: shapely.intersects_xy(geometry, x, y))

    @classmethod
    def from_grids(cls, grids) -> Area:
        """The area the grids of a generation cover, tested exactly as the import assigns."""
        from gis.assign import GridIndex

        index = GridIndex.from_geodataframe(grids)
        return cls(tuple(grids.total_bounds), lambda x, y: index.assign(x, y) >= 0)


def area_from_file(path: Path) -> Area:
    """The grids of a file with a ``grid`` layer (the shipped GeoPackage), else the union of
    the file's polygons (an outline). CGCS2000/WGS84 lon/lat is assumed."""
    import geopandas as gpd
    import pyogrio

    layers = [str(name) for name, _ in pyogrio.list_layers(path)]
    if "grid" in layers:
        return Area.from_grids(gpd.read_file(path, layer="grid"))
    frame = gpd.read_file(path)
    return Area.from_geometry(shapely.union_all(frame.geometry.to_numpy()))


def default_area_file() -> Path:
    """The shipped grids when generated, else the real district outline."""
    from gis.config import BOUNDARIES_DIR, SHIPPED_BOUNDARIES

    return SHIPPED_BOUNDARIES if SHIPPED_BOUNDARIES.exists() else (
        BOUNDARIES_DIR / "liangxi-outline.geojson")


def area_from_engine(engine) -> Area:
    from gis.boundaries import read_generation

    return Area.from_grids(read_generation(engine)["grid"])


# -- sampling ------------------------------------------------------------------------------------
def _normalised(weights) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    return w / w.sum()


def choose_places(rng: np.random.Generator, n: int, hotspots: list[Hotspot]) -> np.ndarray:
    """Hotspot index per report; ``len(hotspots)`` means background."""
    weights = [h.weight for h in hotspots] + [BACKGROUND_WEIGHT + sum(
        h.weight for h in HOTSPOTS if h not in hotspots)]
    return rng.choice(len(hotspots) + 1, size=n, p=_normalised(weights))


def choose_classes(rng: np.random.Generator, places: np.ndarray,
                   hotspots: list[Hotspot]) -> np.ndarray:
    """Class code per report from the base mix, biased by the report's hotspot."""
    codes = np.array(list(CLASS_WEIGHTS), dtype=object)
    base = np.array(list(CLASS_WEIGHTS.values()), dtype=np.float64)
    out = np.empty(len(places), dtype=object)
    for place in range(len(hotspots) + 1):
        rows = np.flatnonzero(places == place)
        bias = hotspots[place].bias if place < len(hotspots) else {}
        weights = base * np.array([bias.get(c, 1.0) for c in codes])
        out[rows] = rng.choice(codes, size=len(rows), p=_normalised(weights))
    return out


def season_weight(class_code: str, day_of_year: np.ndarray) -> np.ndarray:
    """Relative frequency of a class through the year (1 = average)."""
    angle = 2 * np.pi * day_of_year / 365.25
    if class_code in WINTER:
        return np.maximum(np.cos(angle - 2 * np.pi * 15 / 365.25), 0) ** 4 * 6  # mid-Oct–mid-Apr
    if class_code in RAIN:
        return 1 + 2.5 * np.exp(-(((day_of_year - 180) / 18) ** 2))
    if class_code in SUMMER:
        return 1 + 0.6 * np.cos(angle - 2 * np.pi * 196 / 365.25)
    return np.ones_like(angle)


def sample_times(rng: np.random.Generator, sources: np.ndarray, classes: np.ndarray,
                 start: date, end: date,
                 year_weights: Mapping[int, float] | None = None) -> np.ndarray:
    """Local (Asia/Shanghai) times as ``datetime64[s]``: day by season × weekday (× the year's
    weight, 1 for years not listed), then hour."""
    days = np.arange(np.datetime64(start, "D"), np.datetime64(end, "D") + 1)
    doy = (days - days.astype("datetime64[Y]")).astype(np.int64) + 1
    dow = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    years = days.astype("datetime64[Y]").astype(np.int64) + 1970
    volume = np.array([(year_weights or {}).get(int(y), 1.0) for y in years])
    out = np.empty(len(sources), dtype="datetime64[s]")
    for source in SOURCE_SHARES:
        for code in CLASS_WEIGHTS:
            rows = np.flatnonzero((sources == source) & (classes == code))
            if not len(rows):
                continue
            p = _normalised(season_weight(code, doy) * np.asarray(WEEKDAY[source])[dow]
                            * volume)
            day = days[rng.choice(len(days), size=len(rows), p=p)]
            hour = rng.choice(24, size=len(rows), p=_normalised(HOURS[source]))
            second = rng.integers(0, 3600, size=len(rows))
            out[rows] = day.astype("datetime64[s]") + hour * 3600 + second
    return out


def sample_points(rng: np.random.Generator, places: np.ndarray, hotspots: list[Hotspot],
                  area: Area) -> tuple[np.ndarray, np.ndarray]:
    """Lon/lat per report (7 decimals, inside ``area``): Gaussian around hotspots, else uniform."""
    lon = np.full(len(places), np.nan)
    lat = np.full(len(places), np.nan)
    for place, spot in enumerate(hotspots):
        rows = np.flatnonzero(places == place)
        _fill(rng, rows, lon, lat, area, lambda k, s=spot: _gaussian(rng, s, k), rounds=30)
    rows = np.flatnonzero(np.isnan(lon))  # background, and any hotspot leftovers
    _fill(rng, rows, lon, lat, area, lambda k: _uniform(rng, area.bounds, k), rounds=10_000)
    return lon, lat


def _gaussian(rng: np.random.Generator, spot: Hotspot, k: int) -> tuple[np.ndarray, np.ndarray]:
    dx, dy = rng.normal(0.0, spot.sigma_m, size=(2, k))
    return (spot.lon + dx / (M_PER_DEG_LAT * np.cos(np.radians(spot.lat))),
            spot.lat + dy / M_PER_DEG_LAT)


def _uniform(rng: np.random.Generator, bounds, k: int) -> tuple[np.ndarray, np.ndarray]:
    minx, miny, maxx, maxy = bounds
    return rng.uniform(minx, maxx, size=k), rng.uniform(miny, maxy, size=k)


def _fill(rng, rows, lon, lat, area: Area, draw, rounds: int) -> None:
    """Draw points for ``rows`` until each lies in the area (after rounding), up to ``rounds``."""
    todo = rows
    for _ in range(rounds):
        if not len(todo):
            return
        x, y = (np.round(v, 7) for v in draw(len(todo)))
        inside = area.contains(x, y)
        lon[todo[inside]], lat[todo[inside]] = x[inside], y[inside]
        todo = todo[~inside]


def assign_sources(rng: np.random.Generator, n: int) -> np.ndarray:
    names = np.array(list(SOURCE_SHARES), dtype=object)
    return rng.choice(names, size=n, p=_normalised(list(SOURCE_SHARES.values())))


def describe(sources: np.ndarray, classes: np.ndarray, places: np.ndarray,
             hotspots: list[Hotspot]) -> np.ndarray:
    names = {row["code"]: row["minor_name"] for row in read_classes()}
    where = np.array([f"{h.name}附近" for h in hotspots] + [""], dtype=object)
    prefix = pd.Series(sources, dtype=object).map(DESCRIPTION_PREFIX)
    what = pd.Series(classes, dtype=object).map(names)
    return (prefix + pd.Series(where[places], dtype=object) + what).to_numpy(dtype=object)


def source_keys(seed: int, sources: np.ndarray) -> np.ndarray:
    """``SIM<seed>-<prefix>-<n>``, numbered per source in row order."""
    frame = pd.DataFrame({"source": sources})
    number = frame.groupby("source").cumcount().to_numpy() + 1
    prefix = frame["source"].map(KEY_PREFIX).to_numpy(dtype=object)
    return np.array([f"SIM{seed}-{p}-{k:07d}" for p, k in zip(prefix, number, strict=True)],
                    dtype=object)


def make_dirty(rng: np.random.Generator, frame: pd.DataFrame, share: float) -> pd.DataFrame:
    """Spoil ``share`` of the rows, evenly over ``DIRTY_KINDS``; adds a ``dirty`` column."""
    frame = frame.copy()
    frame["dirty"] = ""
    rows = np.flatnonzero(rng.random(len(frame)) < share)
    kinds = rng.choice(len(DIRTY_KINDS), size=len(rows))
    for k, kind in enumerate(DIRTY_KINDS):
        hit = rows[kinds == k]
        frame.loc[hit, "dirty"] = kind
        if kind == "bad_date":
            frame.loc[hit, "reported_at"] = rng.choice(BAD_DATES, size=len(hit))
        elif kind == "swapped":
            frame.loc[hit, ["lon", "lat"]] = frame.loc[hit, ["lat", "lon"]].to_numpy()
        elif kind == "gcj02":
            gx, gy = wgs84_to_gcj02(frame.loc[hit, "lon"], frame.loc[hit, "lat"])
            frame.loc[hit, "lon"], frame.loc[hit, "lat"] = np.round(gx, 7), np.round(gy, 7)
            frame.loc[hit, "crs"] = "gcj02"
        else:
            frame.loc[hit, "class_code"] = rng.choice(UNKNOWN_CLASSES, size=len(hit))
    return frame


def simulate(area: Area, *, seed: int = 2018, start: date = date(2018, 1, 1),
             end: date = date(2019, 12, 31), count: int = 20_000,
             dirty: float = 0.0,
             year_weights: Mapping[int, float] | None = None) -> pd.DataFrame:
    """``count`` reports between ``start`` and ``end`` (inclusive) inside ``area``.

    Columns: ``COLUMNS`` (+ ``dirty`` naming the spoiling when ``dirty`` > 0), sorted by time.
    ``year_weights`` scales the daily rate per year (the occurrence knobs of
    ``etl.simulate_cases``); years not listed weigh 1.
    """
    if end < start:
        raise ValueError("end is before start")
    rng = np.random.default_rng(seed)
    hotspots = [h for h in HOTSPOTS if bool(area.contains(np.array([h.lon]), np.array([h.lat]))[0])]
    places = choose_places(rng, count, hotspots)
    classes = choose_classes(rng, places, hotspots)
    sources = assign_sources(rng, count)
    local = sample_times(rng, sources, classes, start, end, year_weights)
    lon, lat = sample_points(rng, places, hotspots, area)
    order = np.lexsort((np.arange(count), local))
    frame = pd.DataFrame({
        "source": sources[order], "class_code": classes[order],
        "description": describe(sources, classes, places, hotspots)[order],
        "reported_at": np.char.add(np.datetime_as_string(local[order], unit="s"), "+08:00"),
        "lon": lon[order], "lat": lat[order], "crs": "wgs84",
    })
    frame.insert(0, "source_key", source_keys(seed, frame["source"].to_numpy()))
    frame["reported_at"] = frame["reported_at"].astype(object)
    return make_dirty(rng, frame, dirty) if dirty > 0 else frame


# -- writing -------------------------------------------------------------------------------------
def write(frame: pd.DataFrame, path: Path) -> Path:
    """Write as CSV (UTF-8), Parquet or GeoJSON by extension; byte-identical for equal frames."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame.to_csv(path, index=False, encoding="utf-8", float_format="%.7f", lineterminator="\n")
    elif suffix in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    elif suffix in (".geojson", ".json"):
        import geopandas as gpd

        points = shapely.points(frame["lon"].to_numpy(), frame["lat"].to_numpy())
        gpd.GeoDataFrame(frame.drop(columns=["lon", "lat"]), geometry=points,
                         crs="EPSG:4326").to_file(path, driver="GeoJSON", layer="incidents")
    else:
        raise ValueError(f"{path}: write .csv, .parquet or .geojson")
    return path
