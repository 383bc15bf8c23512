"""The Folium builder: three layers with tooltips and popups, light geometry, offline links."""

from __future__ import annotations

import folium
import folium.plugins
import numpy as np
import pytest
import shapely

from gis.boundaries import activate, create_generation, read_generation
from gis.database import get_engine
from tests.factories import small_hierarchy
from webmap.assets import AssetError
from webmap.maps import (
    GRID_COLOURS,
    build_units_map,
    display_collection,
    format_area,
    render_parts,
    render_standalone,
    simplify_level,
    use_served_assets,
)


@pytest.fixture(scope="module")
def levels(database_factory, template_name):
    url = database_factory.create("webmap_maps", template=template_name)
    engine = get_engine(url)
    activate(engine, create_generation(engine, small_hierarchy(), name="small"))
    yield read_generation(engine)
    database_factory.drop(url)


def _geojson_layers(fmap: folium.Map) -> dict[str, folium.GeoJson]:
    return {c.layer_name: c for c in fmap._children.values() if isinstance(c, folium.GeoJson)}


def _children(element, kind) -> list:
    return [c for c in element._children.values() if isinstance(c, kind)]


def test_three_layers_with_tooltips_and_popups(levels):
    fmap = build_units_map(levels)
    layers = _geojson_layers(fmap)
    assert list(layers) == ["街道", "社区", "网格"]
    assert [len(layer.data["features"]) for layer in layers.values()] == [2, 4, 16]
    for layer in layers.values():
        (tooltip,) = _children(layer, folium.GeoJsonTooltip)
        assert tooltip.fields == ["name", "code"]
        (popup,) = _children(layer, folium.GeoJsonPopup)
        assert {"name", "code", "level", "area", "parent"} <= set(popup.fields)
    assert "type" in _children(layers["网格"], folium.GeoJsonPopup)[0].fields
    assert [layer.show for layer in layers.values()] == [True, True, False]
    assert _children(fmap, folium.LayerControl)


def test_no_tiles_by_default_and_osm_only_on_request(levels):
    assert not _children(build_units_map(levels), folium.TileLayer)
    (tiles,) = _children(build_units_map(levels, online_basemap=True), folium.TileLayer)
    assert tiles.show is False and "openstreetmap" in tiles.tiles


def test_map_is_canvas_and_fits_the_district(levels):
    fmap = build_units_map(levels)
    assert fmap.options["prefer_canvas"] is True
    (fit,) = _children(fmap, folium.map.FitBounds)
    minx, miny, maxx, maxy = levels["district"].total_bounds
    assert np.allclose(fit.bounds, [[miny, minx], [maxy, maxx]])


def test_popup_properties(levels):
    parents = {c: n for lv in levels.values() for c, n in zip(lv["code"], lv["name"], strict=True)}
    grid = display_collection(levels["grid"], parents)["features"][0]
    assert grid["id"] == "320213001001001"
    assert grid["properties"] == {
        "name": "网格1", "code": "320213001001001", "level": "网格",
        "area": grid["properties"]["area"], "parent": "社区11 320213001001",
        "type": "综合网格",
    }
    assert grid["properties"]["area"].endswith(" ha")
    street = display_collection(levels["street"], parents)["features"][0]["properties"]
    assert street["area"].endswith(" km²") and "type" not in street


def test_grids_coloured_by_type(levels):
    grids = levels["grid"].copy()
    grids.loc[0, ["grid_type", "dedicated_kind"]] = ["dedicated", "school"]
    fmap = build_units_map({**levels, "grid": grids})
    page = render_standalone(fmap)
    assert GRID_COLOURS["dedicated"] in page and GRID_COLOURS["comprehensive"] in page
    first = _geojson_layers(fmap)["网格"].data["features"][0]["properties"]
    assert first["type"] == "专属网格（学校）"


def test_labels_are_html_escaped(levels):
    streets = levels["street"].copy()
    streets.loc[0, "name"] = "<img src=x onerror=alert(1)>"
    data = display_collection(streets, {})
    assert data["features"][0]["properties"]["name"] == "&lt;img src=x onerror=alert(1)&gt;"


def test_simplify_keeps_the_coverage_and_rounds():
    grids = small_hierarchy()["grid"].geometry.array
    dense = shapely.segmentize(np.asarray(grids, dtype=object), 0.0001)
    # jitter every vertex the same way, so shared edges stay shared but are no longer straight
    noisy = shapely.transform(dense, lambda xy: xy + 2e-6 * np.sin(xy * 1e4))
    simple = simplify_level(noisy, tolerance_m=2.0)
    assert shapely.get_num_coordinates(simple).sum() < shapely.get_num_coordinates(noisy).sum() / 5
    assert shapely.coverage_is_valid(simple)
    coords = shapely.get_coordinates(simple)
    assert np.array_equal(coords, np.round(coords, 6))


def test_format_area():
    assert format_area(2_345_678) == "2.35 km²"
    assert format_area(31_000) == "3.10 ha"


def test_served_assets_replace_every_cdn_link(levels):
    parts = render_parts(use_served_assets(build_units_map(levels), "/base/assets/"))
    assert '<script src="/base/assets/leaflet/leaflet.js"></script>' in parts.header
    assert 'href="/base/assets/leaflet/leaflet.css"' in parts.header
    assert "jquery" not in parts.header  # the unit map does not need it


def test_stock_folium_map_gets_local_copies_and_drops_marker_css():
    before = list(folium.Map.default_js)
    fmap = folium.Map(tiles=None)
    folium.plugins.HeatMap([[31.57, 120.3, 1.0]]).add_to(fmap)
    parts = render_parts(use_served_assets(fmap, "/assets"))
    for path in ("leaflet/leaflet.js", "jquery/jquery.min.js", "leaflet/leaflet.css",
                 "folium/templates/leaflet_heat.min.js"):
        assert f"/assets/{path}" in parts.header
    assert "bootstrap" not in parts.header and "awesome" not in parts.header
    assert folium.Map.default_js == before  # per-map lists, the class is untouched


def test_assets_without_an_offline_copy_are_refused():
    fmap = folium.Map(tiles=None)
    folium.Marker([31.57, 120.3], icon=folium.Icon()).add_to(fmap)
    with pytest.raises(AssetError, match="awesome-markers"):
        use_served_assets(fmap, "/assets")
    fmap = folium.Map(tiles=None)
    folium.plugins.Fullscreen().add_to(fmap)
    with pytest.raises(AssetError, match="no offline copy"):
        use_served_assets(fmap, "/assets")
