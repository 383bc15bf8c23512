"""Heat maps of problem rates per management unit: choropleths, incident heat, period change.

One page shows an indicator of ``gis.indicators`` per street, community and grid, each level a
base layer of the LayerControl (the chosen one shown), classified with mapclassify and coloured
so that red always means worse. An incident heat layer (Leaflet.heat, served locally) and
optional online base maps are overlays. With a second period the page shows the change
(after − before) on a diverging palette centred on 0 instead.

Builders take data (unit frames, indicator frames, heat points) and return a ``folium.Map``;
the data comes from ``gis`` (:mod:`gis.indicators`, :func:`gis.incident_heat.heat_points`,
:func:`gis.case_summary.default_period`); :func:`indicator_map` does both. No Flask here: the
CLI writes the map with ``webmap.maps.render_standalone``, the app serves it with
``webmap.maps.use_served_assets``.
"""

from __future__ import annotations

import html
import math
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

import folium
import folium.plugins
import geopandas as gpd
import mapclassify
import numpy as np
import pandas as pd
import shapely
from branca.element import MacroElement
from folium.template import Template
from sqlalchemy import Connection, Engine

from gis import incident_heat
from gis.crs import transform_geometry, wgs84_to_gcj02
from gis.incident_heat import HEAT_DECIMALS
from gis.indicators import INDICATORS, all_levels, compare_levels
from gis.models import SOURCES
from gis.periods import Period, parse_period
from webmap.maps import (
    BACKGROUND,
    DEFAULT_TOLERANCES_M,
    LEVEL_LABELS,
    MAP_CSS,
    MAP_JS,
    METRES_PER_DEGREE,
    RawElement,
)

MAP_LEVELS = ("street", "community", "grid")
SCHEMES = {"quantiles": "分位数", "natural_breaks": "自然断点（Jenks，k-means）",
           "fisher_jenks": "自然断点（Fisher-Jenks 最优）", "equal_interval": "等间距"}
BASES = {"none": "无底图", "osm": "OpenStreetMap", "amap": "高德地图"}
LAYOUTS = {"change": "变化图", "dual": "前后并排"}
DEFAULT_INDICATOR = "occurrence_per_km2_month"
DEFAULT_LEVEL = "community"
DEFAULT_SCHEME = "quantiles"
DEFAULT_K = 5
MAX_K = 9
#: Coordinate decimals per level: 5 (~1 m) is finer than the street outlines' 10 m tolerance.
DECIMALS = {"street": 5, "community": 6, "grid": 6}
AMAP_TILES = ("https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
              "&x={x}&y={y}&z={z}")
NATURAL_BREAKS_SEED = 0

# ColorBrewer palettes (9 classes), light to dark.
YL_OR_RD = ("#ffffcc", "#ffeda0", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c",
            "#bd0026", "#800026")
REDS = ("#fff5f0", "#fee0d2", "#fcbba1", "#fc9272", "#fb6a4a", "#ef3b2c", "#cb181d", "#a50f15",
        "#67000d")
BLUES = ("#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c",
         "#08306b")
NO_CHANGE = "#f7f7f7"
NO_DATA = "#d4d4d8"
NO_DATA_TEXT = "无数据"
HIGHLIGHT = {"weight": 3, "color": "#111827", "fillOpacity": 0.85}


# -- indicators -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class IndicatorSpec:
    """How an indicator reads: Chinese label, value kind and which direction is worse."""

    label: str
    kind: str  # count | rate | density | score | flag
    higher_is_worse: bool


_VOLUME = ("count", True)  # problem volumes: more is worse
_DONE = ("count", False)  # work done: more is better
SPECS: dict[str, IndicatorSpec] = {
    "reports": IndicatorSpec("上报数", *_VOLUME),
    "cases": IndicatorSpec("案件数", *_VOLUME),
    "valid_reports": IndicatorSpec("有效上报数", *_VOLUME),
    "filed": IndicatorSpec("立案数", *_VOLUME),
    "due_to_handle": IndicatorSpec("应处置数", *_VOLUME),
    "handled": IndicatorSpec("已处置数", *_DONE),
    "handled_on_time": IndicatorSpec("按时处置数", *_DONE),
    "due_to_close": IndicatorSpec("应结案数", *_VOLUME),
    "closed": IndicatorSpec("结案数", *_DONE),
    "closed_on_time": IndicatorSpec("按期结案数", *_DONE),
    "reworked": IndicatorSpec("返工数", *_VOLUME),
    "overdue": IndicatorSpec("超期数", *_VOLUME),
    "consolidated": IndicatorSpec("整改巩固数", *_DONE),
    "filing_rate": IndicatorSpec("立案率", "rate", False),
    "handling_rate": IndicatorSpec("处置率", "rate", False),
    "on_time_handling_rate": IndicatorSpec("按时处置率", "rate", False),
    "closure_rate": IndicatorSpec("结案率", "rate", False),
    "on_time_closure_rate": IndicatorSpec("按期结案率", "rate", False),
    "rework_rate": IndicatorSpec("返工率", "rate", True),
    "consolidation_rate": IndicatorSpec("整改巩固率", "rate", False),
    "occurrence_per_km2_month": IndicatorSpec("问题发生率（件/km²·月）", "density", True),
    "occurrence_per_grid_month": IndicatorSpec("问题发生率（件/网格·月）", "density", True),
    "score": IndicatorSpec("考核得分", "score", False),
    "passed": IndicatorSpec("考核达标", "flag", False),
}
assert set(SPECS) == set(INDICATORS), "every indicator needs a label and a direction"

#: Shown in every popup besides the mapped indicator (a short list keeps grid pages light).
POPUP_INDICATORS = ("reports", "filed", "closure_rate", "on_time_closure_rate",
                    "on_time_handling_rate", "rework_rate", "overdue",
                    "occurrence_per_km2_month", "score", "passed")


def format_value(indicator: str, value: float | None) -> str:
    """A value as people read it: 93.72%, 12, 3.45, 87.5, 达标; ``无数据`` when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NO_DATA_TEXT
    kind = SPECS[indicator].kind
    if kind == "rate":
        return f"{100 * float(value):.2f}%"
    if kind == "count":
        return f"{round(float(value)):,}"
    if kind == "flag":
        return "达标" if value else "未达标"
    return f"{float(value):.1f}" if kind == "score" else f"{float(value):.2f}"


def format_change(indicator: str, value: float | None) -> str:
    """A change between periods: ``+3.20 个百分点`` for rates, ``−2`` for counts, ``0``."""
    if value is None or math.isnan(value):
        return NO_DATA_TEXT
    kind = SPECS[indicator].kind
    if kind == "rate":
        return f"{100 * value:+.2f} 个百分点"
    if kind in ("count", "flag"):
        return f"{round(value):+,}"
    return f"{value:+.1f}" if kind == "score" else f"{value:+.2f}"


# -- classification -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Classes:
    """mapclassify's result for the known values: upper bounds and a class per unit (−1: none)."""

    scheme: str
    bins: tuple[float, ...]
    lower: float
    yb: np.ndarray

    @property
    def k(self) -> int:
        return len(self.bins)


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Natural breaks runs k-means from random starts: fix them, leave the global state alone."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _classifier(scheme: str, values: np.ndarray, k: int) -> mapclassify.classifiers.MapClassifier:
    if scheme == "quantiles":
        return mapclassify.Quantiles(values, k=k)
    if scheme == "equal_interval":
        return mapclassify.EqualInterval(values, k=k)
    if scheme == "fisher_jenks":
        return mapclassify.FisherJenks(values, k=k)
    if scheme == "natural_breaks":
        with _seeded(NATURAL_BREAKS_SEED):
            return mapclassify.NaturalBreaks(values, k=k)
    raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}")


def classify(values: Sequence[float] | np.ndarray, scheme: str = DEFAULT_SCHEME,
             k: int = DEFAULT_K) -> Classes:
    """Classify the finite values with mapclassify; NaN stays unclassified (class −1).

    With no more distinct values than ``k``, each distinct value is a class of its own
    (``mapclassify.UserDefined``); with none at all there are no classes.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}")
    array = np.asarray(values, dtype=float)
    known = np.isfinite(array)
    yb = np.full(len(array), -1, dtype=int)
    if not known.any():
        return Classes(scheme, (), math.nan, yb)
    finite = array[known]
    distinct = np.unique(finite)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "not enough unique values", "no numba"
        if len(distinct) <= k:
            result = mapclassify.UserDefined(finite, bins=list(distinct))
        else:
            result = _classifier(scheme, finite, k)
    yb[known] = np.asarray(result.yb, dtype=int)
    return Classes(scheme, tuple(float(b) for b in result.bins), float(finite.min()), yb)


# -- colours and legends --------------------------------------------------------------------------
@dataclass(frozen=True)
class Shading:
    """Colours per unit (``None``: no data) and the legend rows that explain them."""

    colours: list[str | None]
    rows: list[tuple[str, str]]  # (colour, label), worst first
    breaks: tuple[float, ...]
    note: str


def ramp(palette: Sequence[str], k: int, start: int = 1) -> list[str]:
    """``k`` colours spread over ``palette`` from ``palette[start]`` to its darkest."""
    if k <= 1:
        return [palette[(start + len(palette) - 1) // 2]] if k == 1 else []
    return [palette[int(i)] for i in np.round(np.linspace(start, len(palette) - 1, k))]


def _range_label(indicator: str, low: float, high: float) -> str:
    if low == high:
        return format_value(indicator, high)
    return f"{format_value(indicator, low)} – {format_value(indicator, high)}"


def shade(values: pd.Series | np.ndarray, indicator: str, scheme: str = DEFAULT_SCHEME,
          k: int = DEFAULT_K) -> Shading:
    """A sequential palette over the classes; reversed for indicators where higher is better,
    so the darkest red is always the worst class."""
    classes = classify(np.asarray(values, dtype=float), scheme, k)
    colours = ramp(YL_OR_RD, classes.k)
    if not SPECS[indicator].higher_is_worse:
        colours = colours[::-1]
    lows = (classes.lower, *classes.bins[:-1])
    rows = [(colours[i], _range_label(indicator, lows[i], classes.bins[i]))
            for i in range(classes.k)]
    per_unit = [colours[c] if c >= 0 else None for c in classes.yb]
    worst_first = rows[::-1] if SPECS[indicator].higher_is_worse else rows
    breaks = "、".join(format_value(indicator, b) for b in classes.bins) or "—"
    note = f"分级：{SCHEMES[scheme]}，{classes.k} 级；断点：{breaks}"
    return Shading(per_unit, worst_first, classes.bins, note)


def shade_change(change: pd.Series | np.ndarray, indicator: str, scheme: str = DEFAULT_SCHEME,
                 k: int = DEFAULT_K) -> Shading:
    """A diverging palette centred on 0: the sizes of the changes are classified (``scheme``,
    ⌈k/2⌉ classes), rises and falls are shaded the same way; red where it got worse."""
    values = np.asarray(change, dtype=float)
    moved = np.isfinite(values) & (values != 0)
    magnitude = classify(np.abs(values[moved]), scheme, max(1, math.ceil(k / 2)))
    worse_up = SPECS[indicator].higher_is_worse
    up = ramp(REDS if worse_up else BLUES, magnitude.k, start=2)
    down = ramp(BLUES if worse_up else REDS, magnitude.k, start=2)
    colours: list[str | None] = [None if not np.isfinite(v) else NO_CHANGE for v in values]
    for index, cls in zip(np.flatnonzero(moved), magnitude.yb, strict=True):
        colours[index] = (up if values[index] > 0 else down)[cls]
    lows = (magnitude.lower, *magnitude.bins[:-1])
    labels = [_range_label_change(indicator, lows[i], magnitude.bins[i])
              for i in range(magnitude.k)]
    rises = [(up[i], "+" + labels[i]) for i in range(magnitude.k)][::-1]
    falls = [(down[i], "−" + labels[i]) for i in range(magnitude.k)]
    rows = [*rises, (NO_CHANGE, "0（无变化）"), *falls]
    if not worse_up:
        rows = rows[::-1]
    breaks = "、".join(_change_magnitude(indicator, b) for b in magnitude.bins) or "—"
    note = f"变化幅度分级：{SCHEMES[scheme]}，每侧 {magnitude.k} 级；断点：±{breaks}"
    return Shading(colours, rows, magnitude.bins, note)


def _change_magnitude(indicator: str, value: float) -> str:
    return format_change(indicator, value).lstrip("+")


def _range_label_change(indicator: str, low: float, high: float) -> str:
    if low == high:
        return _change_magnitude(indicator, high)
    return f"{_change_magnitude(indicator, low)} – {_change_magnitude(indicator, high)}"


def legend_html(title: str, shading: Shading, layer: str, *, visible: bool,
                no_data: int) -> str:
    """A fixed legend box (inline styles, no branca), tied to its layer by ``data-layer``."""
    rows = "".join(f'<div><i style="background:{colour}"></i>{html.escape(label)}</div>'
                   for colour, label in shading.rows)
    if no_data:
        rows += f'<div><i class="gridgov-nodata"></i>{NO_DATA_TEXT}（{no_data}）</div>'
    display = "" if visible else "display:none;"
    return (
        f'<div class="gridgov-legend gridgov-heat-legend" data-layer="{html.escape(layer)}" '
        f'style="{display}">'
        f"<strong>{html.escape(title)}</strong>"
        f'<div class="gridgov-note">{html.escape(shading.note)}</div>{rows}</div>'
    )


LEGEND_CSS = f"""<style>
.gridgov-heat-legend{{position:fixed;bottom:28px;right:10px;z-index:1001;max-width:17em;
background:rgba(255,255,255,.94);padding:6px 10px;border-radius:4px;font:12px/1.6 sans-serif;
box-shadow:0 1px 4px rgba(0,0,0,.3)}}
.gridgov-heat-legend i{{display:inline-block;width:14px;height:12px;margin-right:6px;
vertical-align:-1px;border:1px solid rgba(0,0,0,.15)}}
.gridgov-heat-legend .gridgov-note{{color:#52525b;font-size:11px;line-height:1.4;margin:2px 0 4px}}
.gridgov-nodata{{background:repeating-linear-gradient(45deg,{NO_DATA} 0 3px,#fff 3px 6px)}}
.folium-map.leaflet-container{{background:{BACKGROUND}}}
</style>"""


class LegendSwitch(MacroElement):
    """Shows the legend of the level the LayerControl switches to."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        {{ this._parent.get_name() }}.on("baselayerchange", function (e) {
          document.querySelectorAll(".gridgov-heat-legend").forEach(function (el) {
            el.style.display = el.getAttribute("data-layer") === e.name ? "" : "none";
          });
        });
        {% endmacro %}
    """)


# -- what a page shows ----------------------------------------------------------------------------
@dataclass(frozen=True)
class MapOptions:
    """Everything that selects a heat map page; :meth:`check` validates it."""

    period: Period
    indicator: str = DEFAULT_INDICATOR
    level: str = DEFAULT_LEVEL
    scheme: str = DEFAULT_SCHEME
    k: int = DEFAULT_K
    compare: Period | None = None
    base: str = "none"
    heat: bool = True
    show_heat: bool = False
    heat_class: str | None = None
    heat_source: str | None = None
    levels: tuple[str, ...] = MAP_LEVELS
    layout: str = "change"  # with ``compare``: the change map, or "dual": the two side by side

    def check(self) -> MapOptions:
        """Raise ``ValueError`` naming the first bad option; return self."""
        _one_of("indicator", self.indicator, SPECS)
        _one_of("level", self.level, MAP_LEVELS)
        _one_of("scheme", self.scheme, SCHEMES)
        _one_of("base", self.base, BASES)
        _one_of("layout", self.layout, LAYOUTS)
        if not 2 <= self.k <= MAX_K:
            raise ValueError(f"k: the number of classes must be between 2 and {MAX_K}")
        if self.level not in self.levels or not set(self.levels) <= set(MAP_LEVELS):
            raise ValueError(f"levels: a subset of {', '.join(MAP_LEVELS)} with the level")
        if self.heat_source is not None:
            _one_of("source", self.heat_source, SOURCES)
        if self.heat_class is not None and not re.fullmatch(r"[A-Z]\d{0,4}", self.heat_class):
            raise ValueError("class: an incident class code or its prefix, e.g. E0102 or E01")
        return self

    @property
    def dual(self) -> bool:
        return self.compare is not None and self.layout == "dual"

    @property
    def crs(self) -> str:
        """The CRS the page draws in: GCJ-02 under AMap tiles, else CGCS2000 (≈ WGS84)."""
        return "gcj02" if self.base == "amap" else "cgcs2000"

    @property
    def title(self) -> str:
        label = SPECS[self.indicator].label
        if self.dual:
            return f"{label} · {self.compare.label} | {self.period.label}"
        if self.compare is not None:
            return f"{label}变化 · {self.compare.label} → {self.period.label}"
        return f"{label} · {self.period.label}"


def _one_of(name: str, value: str, allowed: Mapping | Sequence) -> None:
    if value not in allowed:
        raise ValueError(f"{name}: {value!r} is not one of {', '.join(allowed)}")


def options_from(values: Mapping[str, str | None], today: Period) -> MapOptions:
    """Options from text (a query string, the CLI's options); ``today`` is the default period.

    Keys: indicator, level, period, compare, layout (change/dual), scheme, k, base, class,
    source, heat (0/1), show_heat (0/1), only (1: the chosen level alone). Raises
    ``ValueError`` on bad input.
    """
    def get(name: str) -> str | None:
        value = values.get(name)
        return value.strip() if isinstance(value, str) and value.strip() else None

    try:
        k = int(get("k") or DEFAULT_K)
    except ValueError:
        raise ValueError("k: a whole number of classes") from None
    level = get("level") or DEFAULT_LEVEL
    return MapOptions(
        period=parse_period(get("period")) if get("period") else today,
        compare=parse_period(get("compare")) if get("compare") else None,
        indicator=get("indicator") or DEFAULT_INDICATOR, level=level,
        scheme=get("scheme") or DEFAULT_SCHEME, k=k, base=get("base") or "none",
        heat_class=get("class"), heat_source=get("source"),
        heat=_flag(get("heat"), True), show_heat=_flag(get("show_heat"), False),
        levels=(level,) if _flag(get("only"), False) else MAP_LEVELS,
        layout=get("layout") or "change",
    ).check()


def _flag(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{value!r} is not a yes/no value (1 or 0)")


# -- loading --------------------------------------------------------------------------------------
def load_values(conn: Connection, options: MapOptions) -> dict[str, pd.DataFrame]:
    """Per level, the indicator frame (or the comparison frame) indexed by unit code."""
    levels = tuple(options.levels)
    if options.compare is None:
        return all_levels(conn, options.period, levels=levels)
    return compare_levels(conn, options.compare, options.period, levels=levels)


# -- geometry -------------------------------------------------------------------------------------
def display_geometries(frame: gpd.GeoDataFrame, level: str, crs: str = "cgcs2000") -> np.ndarray:
    """One level simplified as a coverage, shifted to ``crs`` if needed, rounded per level."""
    geoms = np.asarray(frame.geometry.array, dtype=object)
    tolerance = DEFAULT_TOLERANCES_M.get(level, 0.0) / METRES_PER_DEGREE
    if tolerance > 0 and len(geoms):
        geoms = shapely.coverage_simplify(geoms, tolerance)
    if crs != "cgcs2000":
        geoms = transform_geometry(geoms, "cgcs2000", crs)
    decimals = DECIMALS.get(level, 6)
    return shapely.transform(geoms, lambda xy: np.round(xy, decimals))


def shift_points(points: np.ndarray, crs: str) -> np.ndarray:
    """Heat points (lat, lon, weight) moved to ``crs`` (GCJ-02 under AMap), re-rounded."""
    if crs != "gcj02" or not len(points):
        return points
    lon, lat = wgs84_to_gcj02(points[:, 1], points[:, 0])
    return np.column_stack([np.round(lat, HEAT_DECIMALS + 1), np.round(lon, HEAT_DECIMALS + 1),
                            points[:, 2]])


# -- layers ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LevelLayer:
    """What one level's choropleth needs: a GeoJSON collection, fields, shading."""

    data: dict
    tooltip: list[tuple[str, str]]  # (property, label)
    popup: list[tuple[str, str]]
    shading: Shading
    no_data: int = 0


def _feature(code: str, geom: shapely.Geometry, props: dict[str, str]) -> dict:
    return {"type": "Feature", "id": code, "properties": props,
            "geometry": shapely.geometry.mapping(geom)}


def _units(frame: gpd.GeoDataFrame, names: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """Name, code and parent of each unit of a level frame, HTML-escaped."""
    for code, name, parent in zip(frame["code"], frame["name"], frame["parent_code"],
                                  strict=True):
        parent = parent if isinstance(parent, str) else ""
        yield {"n": html.escape(str(name)), "c": html.escape(str(code)),
               "p": html.escape(f"{names.get(parent, '')} {parent}".strip())}


def value_layer(frame: gpd.GeoDataFrame, values: pd.DataFrame, geoms: np.ndarray,
                options: MapOptions, names: Mapping[str, str],
                shading: Shading | None = None) -> LevelLayer:
    """The choropleth of one period: the indicator and the popup's key indicators per unit
    (classified on its own values unless a ``shading`` is given)."""
    codes = frame["code"].astype(str).tolist()
    table = values.reindex(codes)
    indicator = options.indicator
    series = pd.Series(_numbers(table[indicator]), dtype=float)
    shading = shading or shade(series.to_numpy(), indicator, options.scheme, options.k)
    shown = [indicator, *(i for i in POPUP_INDICATORS if i != indicator)]
    features = []
    texts = {name: [format_value(name, v) for v in _numbers(table[name])] for name in shown}
    for i, (props, geom) in enumerate(zip(_units(frame, names), geoms, strict=True)):
        props.update({f"i{j}": texts[name][i] for j, name in enumerate(shown)})
        features.append(_feature(codes[i], geom, props))
    labels = [(f"i{j}", SPECS[name].label) for j, name in enumerate(shown)]
    return LevelLayer({"type": "FeatureCollection", "features": features},
                      tooltip=[("n", "名称"), ("c", "代码"), labels[0]],
                      popup=[("n", "名称"), ("c", "代码"), ("p", "上级"), *labels],
                      shading=shading, no_data=int(series.isna().sum()))


def change_layer(frame: gpd.GeoDataFrame, values: pd.DataFrame, geoms: np.ndarray,
                 options: MapOptions, names: Mapping[str, str]) -> LevelLayer:
    """The change map: after − before per unit, with both values in the popup."""
    assert options.compare is not None
    codes = frame["code"].astype(str).tolist()
    indicator = options.indicator
    table = values.reindex(codes)
    before = np.array(_numbers(table[f"{indicator}_before"]))
    after = np.array(_numbers(table[f"{indicator}_after"]))
    change = after - before
    shading = shade_change(change, indicator, options.scheme, options.k)
    features = []
    texts = {"b": [format_value(indicator, v) for v in before],
             "a": [format_value(indicator, v) for v in after],
             "d": [format_change(indicator, v) for v in change]}
    for i, (props, geom) in enumerate(zip(_units(frame, names), geoms, strict=True)):
        props.update({key: column[i] for key, column in texts.items()})
        features.append(_feature(codes[i], geom, props))
    label = SPECS[indicator].label
    return LevelLayer({"type": "FeatureCollection", "features": features},
                      tooltip=[("n", "名称"), ("c", "代码"), ("d", f"{label}变化")],
                      popup=[("n", "名称"), ("c", "代码"), ("p", "上级"),
                             ("b", f"{label}（{options.compare.label}）"),
                             ("a", f"{label}（{options.period.label}）"),
                             ("d", "变化（后 − 前）")],
                      shading=shading, no_data=int(np.isnan(change).sum()))


def _numbers(column: pd.Series) -> list[float]:
    """A column as floats (booleans as 0/1, missing as NaN)."""
    return pd.to_numeric(column.astype(object), errors="coerce").astype(float).tolist()


def _styler(codes: Sequence[str], colours: Sequence[str | None], level: str
            ) -> Callable[[dict], dict]:
    fills = dict(zip(codes, colours, strict=True))
    weight = {"street": 1.5, "community": 1.0, "grid": 0.5}.get(level, 1.0)

    def style(feature: dict) -> dict:
        colour = fills.get(feature["id"])
        if colour is None:  # no data: grey, dashed outline (canvas cannot hatch)
            return {"color": "#71717a", "weight": weight, "dashArray": "3 3",
                    "fillColor": NO_DATA, "fillOpacity": 0.55}
        return {"color": "#52525b", "weight": weight, "fillColor": colour, "fillOpacity": 0.75}

    return style


def _geojson(layer: LevelLayer, level: str, codes: Sequence[str], show: bool) -> folium.GeoJson:
    tip_fields, tip_labels = zip(*layer.tooltip, strict=True)
    pop_fields, pop_labels = zip(*layer.popup, strict=True)
    return folium.GeoJson(
        layer.data, name=LEVEL_LABELS[level], overlay=False, show=show,
        style_function=_styler(codes, layer.shading.colours, level),
        highlight_function=lambda _f: HIGHLIGHT,
        tooltip=folium.GeoJsonTooltip(fields=list(tip_fields), aliases=list(tip_labels),
                                      sticky=True),
        popup=folium.GeoJsonPopup(fields=list(pop_fields), aliases=list(pop_labels)),
    )


# -- the map --------------------------------------------------------------------------------------
def _base_map(bounds: Sequence[float], options: MapOptions) -> folium.Map:
    minx, miny, maxx, maxy = bounds
    fmap = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], zoom_start=13,
                      tiles=None, prefer_canvas=True, control_scale=True, zoom_snap=0.25)
    fmap.default_js = list(MAP_JS)
    fmap.default_css = list(MAP_CSS)
    fmap.get_root().header.add_child(RawElement(LEGEND_CSS), name="gridgov_heat_css")
    _base_tiles(fmap, options)
    fmap.fit_bounds([[miny, minx], [maxy, maxx]])
    return fmap


def _base_tiles(fmap: folium.Map, options: MapOptions) -> None:
    """The chosen online base map, as an overlay under the choropleth (needs the internet)."""
    if options.base == "osm":
        folium.TileLayer("OpenStreetMap", name="OpenStreetMap（需联网）", overlay=True,
                         show=True).add_to(fmap)
    elif options.base == "amap":
        folium.TileLayer(AMAP_TILES, attr="© 高德地图 AutoNavi", name="高德地图（需联网）",
                         subdomains="1234", max_zoom=18, overlay=True, show=True).add_to(fmap)


def _heat_layer(points: np.ndarray, options: MapOptions) -> folium.plugins.HeatMap:
    total = int(points[:, 2].sum()) if len(points) else 0
    parts = [f"{total:,} 件", *(p for p in (options.heat_class, options.heat_source) if p)]
    data = [[lat, lon, int(count)] for lat, lon, count in points.tolist()]
    return folium.plugins.HeatMap(data, name=f"事件热力（{'，'.join(parts)}）",
                                  overlay=True, show=options.show_heat, radius=14, blur=12,
                                  min_opacity=0.35, max_zoom=17)


def build_indicator_map(levels: Mapping[str, gpd.GeoDataFrame],
                        values: Mapping[str, pd.DataFrame], options: MapOptions, *,
                        heat_points: np.ndarray | None = None) -> folium.Map:
    """The page: a choropleth per level in ``options.levels`` (the chosen one shown), a legend
    per level, the heat layer if points are given, the chosen base map.

    ``levels`` is what ``gis.boundaries.read_generation`` returns; ``values`` what
    :func:`load_values` returns (comparison frames when ``options.compare`` is set).
    """
    options.check()
    names = {str(c): str(n) for lv in levels.values()
             for c, n in zip(lv["code"], lv["name"], strict=True)}
    outline = display_geometries(levels["district"], "district", options.crs)
    fmap = _base_map(shapely.total_bounds(outline), options)
    make = change_layer if options.compare is not None else value_layer
    for level in options.levels:
        frame = levels[level]
        geoms = display_geometries(frame, level, options.crs)
        layer = make(frame, values[level], geoms, options, names)
        codes = frame["code"].astype(str).tolist()
        _geojson(layer, level, codes, show=level == options.level).add_to(fmap)
        title = f"{options.title} · {LEVEL_LABELS[level]}"
        legend = legend_html(title, layer.shading, LEVEL_LABELS[level],
                             visible=level == options.level, no_data=layer.no_data)
        fmap.get_root().html.add_child(RawElement(legend), name=f"gridgov_legend_{level}")
    if heat_points is not None:
        _heat_layer(shift_points(heat_points, options.crs), options).add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    fmap.add_child(LegendSwitch())
    return fmap


# -- side by side ---------------------------------------------------------------------------------
#: Stands in for the Leaflet.Sync plugin DualMap loads from a CDN (no installed package ships
#: it): ``a.sync(b)`` makes ``b`` follow ``a``'s centre and zoom.
SYNC_JS = """
L.Map.include({sync: function (other) {
  var self = this;
  (this._gridgovFollowers = this._gridgovFollowers || []).push(other);
  if (this._gridgovFollowers.length === 1) {
    this.on("move zoomend", function () {
      if (self._gridgovSyncing) return;
      self._gridgovFollowers.forEach(function (map) {
        map._gridgovSyncing = true;
        map.setView(self.getCenter(), self.getZoom(), {animate: false});
        map._gridgovSyncing = false;
      });
    });
  }
  return this;
}});
"""


def period_frame(comparison: pd.DataFrame, side: str) -> pd.DataFrame:
    """One period's indicators (``side``: before or after) out of a comparison frame."""
    return pd.DataFrame({name: comparison[f"{name}_{side}"] for name in INDICATORS},
                        index=comparison.index)


def _split(shading: Shading, n: int) -> tuple[Shading, Shading]:
    return (replace(shading, colours=shading.colours[:n]),
            replace(shading, colours=shading.colours[n:]))


def _period_label(text: str, left: str) -> RawElement:
    return RawElement(
        f'<div style="position:fixed;top:10px;left:{left};transform:translateX(-50%);'
        'z-index:1001;background:rgba(255,255,255,.94);padding:2px 10px;border-radius:4px;'
        f'font:bold 13px/1.6 sans-serif;box-shadow:0 1px 4px rgba(0,0,0,.3)">'
        f"{html.escape(text)}</div>")


def build_dual_map(levels: Mapping[str, gpd.GeoDataFrame], comparison: pd.DataFrame,
                   options: MapOptions) -> folium.plugins.DualMap:
    """The two periods side by side at ``options.level``, panned and zoomed together, on one
    classification of both periods' values (so a colour means the same on either side)."""
    assert options.compare is not None
    level = options.level
    names = {str(c): str(n) for lv in levels.values()
             for c, n in zip(lv["code"], lv["name"], strict=True)}
    minx, miny, maxx, maxy = shapely.total_bounds(
        display_geometries(levels["district"], "district", options.crs))
    dual = folium.plugins.DualMap(location=[(miny + maxy) / 2, (minx + maxx) / 2],
                                  zoom_start=13, tiles=None, prefer_canvas=True,
                                  control_scale=True, zoom_snap=0.25)
    dual.default_js = []  # Leaflet.Sync: replaced by SYNC_JS
    figure = dual.get_root()
    figure.header.add_child(RawElement(LEGEND_CSS), name="gridgov_heat_css")
    figure.script.add_child(RawElement(SYNC_JS), name="gridgov_sync")  # before the .sync()
    frame = levels[level]
    codes = frame["code"].astype(str).tolist()
    geoms = display_geometries(frame, level, options.crs)
    table = comparison.reindex(codes)
    both = np.concatenate([_numbers(table[f"{options.indicator}_{side}"])
                           for side in ("before", "after")])
    pooled = shade(both, options.indicator, options.scheme, options.k)
    sides = zip((dual.m1, dual.m2), ("before", "after"), _split(pooled, len(codes)),
                (options.compare, options.period), ("25%", "75%"), strict=True)
    for fmap, side, shading, period, left in sides:
        fmap.default_js, fmap.default_css = list(MAP_JS), list(MAP_CSS)
        _base_tiles(fmap, options)
        layer = value_layer(frame, period_frame(comparison, side), geoms, options, names,
                            shading)
        _geojson(layer, level, codes, show=True).add_to(fmap)
        fmap.fit_bounds([[miny, minx], [maxy, maxx]])
        figure.html.add_child(_period_label(period.label, left), name=f"gridgov_{side}")
    title = f"{SPECS[options.indicator].label} · {LEVEL_LABELS[level]}（两期同一分级）"
    no_data = sum(colour is None for colour in pooled.colours)
    figure.html.add_child(RawElement(legend_html(title, pooled, LEVEL_LABELS[level],
                                                 visible=True, no_data=no_data)),
                          name="gridgov_legend")
    return dual


def indicator_map(engine: Engine, options: MapOptions,
                  levels: Mapping[str, gpd.GeoDataFrame] | None = None
                  ) -> folium.Map | folium.plugins.DualMap:
    """Read the indicators (and heat points) from PostGIS and build the map: the choropleths,
    the change map, or the two periods side by side (``layout="dual"``: no heat layer)."""
    from gis.boundaries import read_generation

    options.check()
    levels = levels if levels is not None else read_generation(engine)
    if options.dual:
        options = replace(options, levels=(options.level,))
    with engine.connect() as conn:
        values = load_values(conn, options)
        if options.dual:
            return build_dual_map(levels, values[options.level], options)
        points = (incident_heat.heat_points(conn, options.period, class_code=options.heat_class,
                                            source=options.heat_source)
                  if options.heat else None)
    return build_indicator_map(levels, values, options, heat_points=points)
