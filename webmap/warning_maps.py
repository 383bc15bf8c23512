"""Folium builder for risk warnings: grids and warnings in, ``folium.Map`` out (tile-free).

Grids with a Poisson warning are outlined in red, Gi* hot spots filled orange, both in one
layer per series (line or class) with the observed and expected counts in the tooltip. Render
offline with :func:`webmap.maps.render_standalone`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import folium
import geopandas as gpd
import shapely

from webmap.maps import BACKGROUND, MAP_CSS, MAP_JS

LINE_LABELS = {"food_drug": "食品药品安全", "production_safety": "安全生产",
               "environment": "生态环境"}
METHOD_LABELS = {"poisson": "泊松控制图", "gi_star": "Gi* 热点"}
POISSON_STYLE = {"color": "#dc2626", "weight": 3, "fillColor": "#fca5a5", "fillOpacity": 0.35}
HOTSPOT_STYLE = {"color": "#ea580c", "weight": 1, "fillColor": "#fb923c", "fillOpacity": 0.55}
BOTH_STYLE = {"color": "#dc2626", "weight": 3, "fillColor": "#fb923c", "fillOpacity": 0.6}
OUTLINE_STYLE = {"color": "#a1a1aa", "weight": 0.3, "fillOpacity": 0}


def _features(grids: gpd.GeoDataFrame, found: list[dict]) -> dict:
    geoms = dict(zip(grids["code"].astype(str), grids.geometry, strict=True))
    by_grid: dict[str, list[dict]] = defaultdict(list)
    for warning in found:
        by_grid[warning["grid_code"]].append(warning)
    features = []
    for code, group in sorted(by_grid.items()):
        if code not in geoms:
            continue
        methods = sorted({w["method"] for w in group})
        first = group[0]
        features.append({
            "type": "Feature", "id": code,
            "properties": {"grid": code, "methods": "、".join(METHOD_LABELS[m] for m in methods),
                           "observed": int(first["observed"]),
                           "expected": round(float(first["expected"]), 2),
                           "style": "both" if len(methods) > 1 else methods[0]},
            "geometry": shapely.geometry.mapping(geoms[code])})
    return {"type": "FeatureCollection", "features": features}


def _style(feature: dict) -> dict:
    return {"both": BOTH_STYLE, "poisson": POISSON_STYLE}.get(feature["properties"]["style"],
                                                                HOTSPOT_STYLE)


def build_warnings_map(grids: gpd.GeoDataFrame, warnings: Iterable[dict]) -> folium.Map:
    """A map of the warnings (dicts with method, series, grid_code, observed, expected) over
    the grids (a frame with ``code`` and geometry, CGCS2000 lon/lat)."""
    minx, miny, maxx, maxy = (float(v) for v in grids.total_bounds)
    fmap = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], zoom_start=13,
                      tiles=None, prefer_canvas=True, control_scale=True)
    fmap.default_js, fmap.default_css = list(MAP_JS), list(MAP_CSS)
    fmap.get_root().header.add_child(folium.Element(
        f"<style>.folium-map.leaflet-container{{background:{BACKGROUND}}}</style>"))
    outline = gpd.GeoDataFrame({"code": grids["code"].astype(str)},
                               geometry=grids.geometry.simplify(0.00002), crs=grids.crs)
    folium.GeoJson(outline.__geo_interface__, name="网格", style_function=lambda _f: OUTLINE_STYLE,
                   control=False).add_to(fmap)
    by_series: dict[str, list[dict]] = defaultdict(list)
    for warning in warnings:
        by_series[warning["series"]].append(warning)
    for series, found in sorted(by_series.items()):
        folium.GeoJson(
            _features(grids, found), name=f"{LINE_LABELS.get(series, series)}（{len(found)}）",
            style_function=_style,
            tooltip=folium.GeoJsonTooltip(
                fields=["grid", "methods", "observed", "expected"],
                aliases=["网格", "方法", "本期", "基线期望"])).add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    fmap.fit_bounds([[miny, minx], [maxy, maxx]])
    return fmap
