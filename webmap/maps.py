"""Folium builders: unit frames in, ``folium.Map`` out; and rendering that needs no network.

The unit map shows the streets, communities and grids of one generation (the frames
``gis.boundaries.read_generation`` returns), each polygon with a tooltip and a popup. It has no
base tiles by default, so it draws on a plain background without a network; polygons are
simplified per level as a coverage (shared edges stay shared) and coordinates rounded to 6
decimals (~0.1 m) to keep the page light.

:func:`use_served_assets` and :func:`inline_assets` replace the CDN links of any Folium map by
local copies (see :mod:`webmap.assets`): served from a URL, or written into the HTML itself for a
standalone file.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import folium
import geopandas as gpd
import numpy as np
import shapely
from branca.element import CssLink, Element, Figure, JavascriptLink
from folium.elements import JSCSSMixin

from webmap.assets import Asset, AssetError, asset_for_link, inline_css, inline_js

#: Simplification tolerance per level, in metres (converted at ~111.32 km per degree).
DEFAULT_TOLERANCES_M: dict[str, float] = {"street": 10.0, "community": 5.0, "grid": 2.0}
METRES_PER_DEGREE = 111_320.0
COORD_DECIMALS = 6

LEVEL_LABELS = {"district": "区", "street": "街道", "community": "社区", "grid": "网格"}
GRID_TYPE_LABELS = {"comprehensive": "综合网格", "dedicated": "专属网格"}
KIND_LABELS = {"school": "学校", "hospital": "医院", "market": "市场", "park": "园区",
               "enterprise": "企业", "scenic_area": "景区"}
FIELD_LABELS = {"name": "名称", "code": "代码", "level": "层级", "area": "面积",
                "parent": "上级", "type": "类型"}

STREET_STYLE = {"color": "#3f3f46", "weight": 3, "fillColor": "#a1a1aa", "fillOpacity": 0.08}
COMMUNITY_STYLE = {"color": "#2563eb", "weight": 1.5, "fillColor": "#93c5fd",
                   "fillOpacity": 0.15}
GRID_COLOURS = {"comprehensive": "#16a34a", "dedicated": "#ea580c"}
HIGHLIGHT_STYLE = {"weight": 4, "fillOpacity": 0.35}
BACKGROUND = "#f4f4f0"

#: What the unit map itself needs: Leaflet only (GeoJSON popups and tooltips need no jQuery).
MAP_JS = [("leaflet", "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js")]
MAP_CSS = [("leaflet_css", "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.css")]


# -- data -----------------------------------------------------------------------------------------
def format_area(area_m2: float) -> str:
    """``12.35 km²`` from 1 km² up, hectares below."""
    if area_m2 >= 1_000_000:
        return f"{area_m2 / 1_000_000:.2f} km²"
    return f"{area_m2 / 10_000:.2f} ha"


def simplify_level(geoms: np.ndarray, tolerance_m: float) -> np.ndarray:
    """Simplify one level as a coverage (neighbours keep a common edge), then round coordinates."""
    geoms = np.asarray(geoms, dtype=object)
    if tolerance_m > 0 and len(geoms):
        geoms = shapely.coverage_simplify(geoms, tolerance_m / METRES_PER_DEGREE)
    return shapely.transform(geoms, lambda xy: np.round(xy, COORD_DECIMALS))


def _grid_type_label(grid_type: object, kind: object) -> str:
    label = GRID_TYPE_LABELS.get(str(grid_type), str(grid_type))
    if isinstance(kind, str) and kind:
        label += f"（{KIND_LABELS.get(kind, kind)}）"
    return label


def display_collection(frame: gpd.GeoDataFrame, parents: Mapping[str, str],
                       tolerance_m: float = 0.0) -> dict:
    """A GeoJSON FeatureCollection of one level for display: id = code, HTML-escaped labels.

    ``parents`` maps a parent code to its name. Properties: name, code, level, area, parent,
    and for grids ``type`` (comprehensive or dedicated, with what a dedicated grid covers).
    """
    geoms = simplify_level(frame.geometry.array, tolerance_m)
    features = []
    for row, geom in zip(frame.itertuples(index=False), geoms, strict=True):
        parent_code = row.parent_code if isinstance(row.parent_code, str) else None
        props = {
            "name": html.escape(str(row.name)),
            "code": html.escape(str(row.code)),
            "level": LEVEL_LABELS.get(row.level, row.level),
            "area": format_area(float(row.area_m2)),
            "parent": html.escape(f"{parents.get(parent_code, '')} {parent_code}".strip())
            if parent_code else "",
        }
        if row.level == "grid":
            props["type"] = html.escape(_grid_type_label(row.grid_type, row.dedicated_kind))
        features.append({"type": "Feature", "id": str(row.code), "properties": props,
                         "geometry": shapely.geometry.mapping(geom)})
    return {"type": "FeatureCollection", "features": features}


# -- the map --------------------------------------------------------------------------------------
class Legend(Element):
    """A small fixed legend of the grid colours (inline style, so it works standalone)."""

    def __init__(self, title: str) -> None:
        super().__init__()
        rows = "".join(
            f'<div><i style="background:{colour}"></i>{GRID_TYPE_LABELS[key]}</div>'
            for key, colour in GRID_COLOURS.items()
        )
        self._html = (
            '<div class="gridgov-legend" style="position:fixed;bottom:28px;right:10px;'
            "z-index:1001;background:rgba(255,255,255,.92);padding:6px 10px;border-radius:4px;"
            'font:12px/1.6 sans-serif;box-shadow:0 1px 4px rgba(0,0,0,.3)">'
            f"<strong>{html.escape(title)}</strong>{rows}</div>"
            "<style>.gridgov-legend i{display:inline-block;width:12px;height:12px;"
            "margin-right:6px;vertical-align:-1px;opacity:.7}</style>"
        )

    def render(self, **kwargs) -> str:
        return self._html


def _geojson_layer(data: dict, name: str, style: Callable[[dict], dict], fields: list[str],
                   show: bool) -> folium.GeoJson:
    return folium.GeoJson(
        data, name=name, show=show, style_function=style,
        highlight_function=lambda _feature: HIGHLIGHT_STYLE,
        tooltip=folium.GeoJsonTooltip(fields=["name", "code"],
                                      aliases=[FIELD_LABELS["name"], FIELD_LABELS["code"]],
                                      sticky=True),
        popup=folium.GeoJsonPopup(fields=fields, aliases=[FIELD_LABELS[f] for f in fields]),
    )


def _grid_styler(grids: gpd.GeoDataFrame) -> Callable[[dict], dict]:
    """Style by grid type (looked up by feature id, so the page carries no extra property)."""
    types = dict(zip(grids["code"].astype(str), grids["grid_type"], strict=True))

    def style(feature: dict) -> dict:
        colour = GRID_COLOURS.get(types.get(feature["id"]), "#6b7280")
        return {"color": colour, "weight": 1, "fillColor": colour, "fillOpacity": 0.25}

    return style


def build_units_map(levels: Mapping[str, gpd.GeoDataFrame], *,
                    tolerances_m: Mapping[str, float] | None = None,
                    online_basemap: bool = False) -> folium.Map:
    """The street, community and grid layers of one generation on a tile-free map.

    ``levels`` is what ``gis.boundaries.read_generation`` returns. The grid layer starts
    hidden (the LayerControl switches it on). ``online_basemap`` adds an OpenStreetMap layer to
    the control, switched off: it needs the internet.
    """
    tolerances = {**DEFAULT_TOLERANCES_M, **(tolerances_m or {})}
    parents = {str(c): str(n) for lv in levels.values() for c, n in zip(lv["code"], lv["name"],
                                                                         strict=True)}
    minx, miny, maxx, maxy = (float(v) for v in levels["district"].total_bounds)
    fmap = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], zoom_start=13,
                      tiles=None, prefer_canvas=True, control_scale=True,
                      zoom_snap=0.25)
    fmap.default_js = list(MAP_JS)
    fmap.default_css = list(MAP_CSS)
    background = f"<style>.folium-map.leaflet-container{{background:{BACKGROUND}}}</style>"
    fmap.get_root().header.add_child(Element(background), name="gridgov_bg")
    if online_basemap:
        folium.TileLayer("OpenStreetMap", name="OpenStreetMap（需联网）", overlay=True,
                         show=False).add_to(fmap)
    common = ["name", "code", "level", "area", "parent"]
    layers = [
        ("street", "街道", lambda _f: STREET_STYLE, common, True),
        ("community", "社区", lambda _f: COMMUNITY_STYLE, common, True),
        ("grid", "网格", _grid_styler(levels["grid"]), [*common, "type"], False),
    ]
    for level, name, style, fields, show in layers:
        data = display_collection(levels[level], parents, tolerances.get(level, 0.0))
        _geojson_layer(data, name, style, fields, show).add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    fmap.get_root().html.add_child(Legend("网格类型"), name="gridgov_legend")
    fmap.fit_bounds([[miny, minx], [maxy, maxx]])
    return fmap


# -- offline rendering ----------------------------------------------------------------------------
class RawElement(Element):
    """An element that renders exactly the given text (no Jinja: library code has ``{{``)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self._text = text

    def render(self, **kwargs) -> str:
        return self._text


def _walk(element: Element) -> Iterator[Element]:
    yield element
    for child in list(element._children.values()):
        yield from _walk(child)


def _relink(fmap: folium.Map, make: Callable[[Asset], Element]) -> folium.Map:
    """Replace every CDN link the map's elements declare by ``make(asset)`` in the header."""
    figure = fmap.get_root()
    if not isinstance(figure, Figure):
        raise TypeError("the map must belong to a Figure")
    if any(isinstance(e, folium.Icon) for e in _walk(figure)):
        raise AssetError("folium.Icon markers need Leaflet.awesome-markers, which has no "
                         "offline copy; use CircleMarker or DivIcon")
    for element in _walk(figure):
        if not isinstance(element, JSCSSMixin):
            continue
        for name, url in [*element.default_js, *element.default_css]:
            asset = asset_for_link(name, url)
            if asset is not None and name not in figure.header._children:
                figure.header.add_child(make(asset), name=name)
        element.default_js = []
        element.default_css = []
    return fmap


def use_served_assets(fmap: folium.Map, base_url: str) -> folium.Map:
    """Point the map's scripts and stylesheets at ``base_url`` (e.g. ``/assets``).

    Call it once the map is complete: elements added later keep their CDN links.
    """
    root = base_url.rstrip("/")

    def link(asset: Asset) -> Element:
        url = f"{root}/{asset.url_path}"
        return CssLink(url) if asset.kind == "css" else JavascriptLink(url)

    return _relink(fmap, link)


def inline_assets(fmap: folium.Map) -> folium.Map:
    """Write the map's scripts and stylesheets into its HTML (images as ``data:`` URIs)."""

    def embed(asset: Asset) -> Element:
        if asset.kind == "css":
            return RawElement(f"<style>{inline_css(asset)}</style>")
        return RawElement(f"<script>{inline_js(asset)}</script>")

    return _relink(fmap, embed)


_EXTERNAL = re.compile(r"""<(?:script[^>]*\ssrc|link[^>]*\shref)\s*=\s*["']?(?:https?:)?//""",
                       re.IGNORECASE)


def check_offline(page: str) -> str:
    """Return ``page``; raise :class:`AssetError` if it loads a script or stylesheet remotely."""
    match = _EXTERNAL.search(page)
    if match:
        raise AssetError(f"page still loads a remote asset: {page[match.start():][:160]!r}")
    return page


@dataclass(frozen=True)
class MapParts:
    """A rendered map split for embedding in a page template."""

    header: str
    html: str
    script: str


@contextmanager
def compact_json() -> Iterator[None]:
    """While rendering, Folium writes data as compact UTF-8 JSON (~20% smaller pages).

    Jinja's ``tojson`` still escapes ``<``, ``>``, ``&`` and ``'``; only the separators and the
    ``\\uXXXX`` escapes of non-ASCII text change. The setting is restored afterwards.
    """
    policies = folium.GeoJson._template.environment.policies
    saved = policies["json.dumps_kwargs"]
    policies["json.dumps_kwargs"] = {**saved, "ensure_ascii": False, "separators": (",", ":")}
    try:
        yield
    finally:
        policies["json.dumps_kwargs"] = saved


def render_parts(fmap: folium.Map) -> MapParts:
    """Render the map and return its header, body HTML and script (checked offline)."""
    figure = fmap.get_root()
    with compact_json():
        figure.render()
        parts = MapParts(figure.header.render(), figure.html.render(), figure.script.render())
    check_offline(parts.header + parts.html)
    return parts


def render_standalone(fmap: folium.Map, title: str | None = None) -> str:
    """One self-contained HTML file: every script and stylesheet inlined."""
    figure = inline_assets(fmap).get_root()
    if title:
        figure.title = title
    with compact_json():
        return check_offline(figure.render())
