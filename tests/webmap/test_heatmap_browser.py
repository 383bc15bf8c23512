"""The heat map pages in real headless Chromium with the network unplugged: Leaflet runs, the
choropleth and the incident heat are drawn, switching level switches the legend, no JavaScript
error; the served page first sends the browser to sign in. Needs Debian's ``chromium``
(skipped without it); the driver is tests/browser.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from app import create_app
from gis.database import get_engine
from gis.periods import parse_period
from tests import browser as chromium
from tests.webmap.test_heatmaps import PASSWORD, seed_cases
from webmap.heatmaps import MapOptions, indicator_map
from webmap.maps import render_standalone

PROBE = """(() => {
  if (typeof L === "undefined") return {leaflet: false};
  const map = window[Object.keys(window).find(k => /^map_[0-9a-f]+$/.test(k))];
  let paths = 0, heat = 0;
  map.eachLayer(layer => {
    if (layer instanceof L.Path) paths += 1;
    if (L.HeatLayer && layer instanceof L.HeatLayer) heat += 1;
  });
  const painted = selector => {
    const canvas = document.querySelector(selector);
    if (!canvas) return 0;
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let count = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) count += 1;
    return count;
  };
  const labels = selector => [...document.querySelectorAll(selector)]
    .map(s => s.textContent.trim());
  const legends = [...document.querySelectorAll(".gridgov-heat-legend")]
    .filter(el => el.style.display !== "none").map(el => el.dataset.layer);
  return {leaflet: true, version: L.version, paths, heat,
          painted: painted(".leaflet-overlay-pane canvas:not(.leaflet-heatmap-layer)"),
          heatPainted: painted("canvas.leaflet-heatmap-layer"),
          bases: labels(".leaflet-control-layers-base label"),
          overlays: labels(".leaflet-control-layers-overlays label"), legends};
})()"""

SWITCH_TO_GRIDS = """(() => {
  const input = [...document.querySelectorAll(".leaflet-control-layers-base label")]
    .find(l => l.textContent.trim() === "网格").querySelector("input");
  input.click();
  return true;
})()"""


browser = chromium.browser  # Chromium with the network unplugged, skipped when not installed


@pytest.fixture(scope="module")
def heat_url(database_factory, template_name):
    url = database_factory.create("webmap_heat_browser", template=template_name)
    seed_cases(url)
    yield url
    database_factory.drop(url)


def _probe_until_drawn(tab: chromium.Tab, key: str = "painted") -> dict:
    # Leaflet draws on the next animation frames
    return tab.poll(PROBE, lambda probe: probe and probe.get(key)) or {}


@pytest.mark.slow
def test_chromium_draws_the_standalone_heat_map_without_network(browser, heat_url, tmp_path):
    options = MapOptions(period=parse_period("2019-05"), level="community", show_heat=True,
                         indicator="on_time_closure_rate")
    page = render_standalone(indicator_map(get_engine(heat_url), options), options.title)
    path = tmp_path / "heat.html"
    path.write_text(page, encoding="utf-8")
    tab = chromium.Tab(browser)
    tab.open(path.as_uri())
    probe = _probe_until_drawn(tab, "heatPainted")
    assert probe["leaflet"] and probe["version"] == "1.9.3"
    assert probe["bases"] == ["街道", "社区", "网格"]
    assert probe["overlays"] == ["事件热力（5 件）"]
    assert probe["paths"] == 4  # the four communities
    assert probe["painted"] > 1000 and probe["heat"] == 1 and probe["heatPainted"] > 100
    assert probe["legends"] == ["社区"]
    tab.evaluate(SWITCH_TO_GRIDS)
    switched = _probe_until_drawn(tab)
    assert switched["paths"] == 16 and switched["legends"] == ["网格"]
    assert not tab.errors, tab.errors
    assert all(u.startswith(("file:", "data:")) for u in tab.requested)


@pytest.fixture
def live_heat_url(heat_url) -> Iterator[str]:
    app = create_app({"DATABASE_URL": heat_url, "SECRET_KEY": "test", "TESTING": True,
                      "SECURE_COOKIES": False, "RATELIMIT_ENABLED": False})
    with chromium.live_server(app) as origin:
        yield f"{origin}/"


@pytest.mark.slow
def test_chromium_draws_the_served_change_map_without_network(browser, live_heat_url):
    query = "indicator=on_time_closure_rate&level=grid&period=2019-05&compare=2019-04"
    tab = chromium.Tab(browser)
    tab.open(f"{live_heat_url}maps/indicator?{query}")
    assert tab.evaluate("location.pathname") == "/login"  # sent to sign in first
    tab.type("input[name=username]", "viewer")
    tab.type("input[name=password]", PASSWORD)
    tab.click_and_wait("form.login button[type=submit]")
    assert tab.evaluate("location.pathname + location.search") == f"/maps/indicator?{query}"
    probe = _probe_until_drawn(tab)
    assert probe["leaflet"] and probe["paths"] == 16 and probe["painted"] > 1000
    assert probe["legends"] == ["网格"]
    assert not tab.errors, tab.errors
    assert all(u.startswith(live_heat_url) or u.startswith("data:") for u in tab.requested)


MOVE_LEFT = """(() => {
  const maps = Object.keys(window).filter(k => /^map_[0-9a-f]+$/.test(k)).map(k => window[k]);
  maps[0].setView([31.57, 120.31], 15, {animate: false});
  return true;
})()"""

DUAL_PROBE = """(() => {
  const maps = Object.keys(window).filter(k => /^map_[0-9a-f]+$/.test(k)).map(k => window[k]);
  return maps.map(m => {
    let paths = 0;
    m.eachLayer(layer => { if (layer instanceof L.Path) paths += 1; });
    return {lat: m.getCenter().lat, lng: m.getCenter().lng, zoom: m.getZoom(), paths};
  });
})()"""


@pytest.mark.slow
def test_chromium_keeps_the_side_by_side_maps_together(browser, heat_url, tmp_path):
    options = MapOptions(period=parse_period("2019-05"), compare=parse_period("2019-04"),
                         level="grid", layout="dual")
    path = tmp_path / "dual.html"
    path.write_text(render_standalone(indicator_map(get_engine(heat_url), options)),
                    encoding="utf-8")
    tab = chromium.Tab(browser)
    tab.open(path.as_uri())
    _probe_until_drawn(tab)
    time.sleep(0.5)
    tab.evaluate(MOVE_LEFT)
    time.sleep(0.5)
    left, right = tab.evaluate(DUAL_PROBE)
    assert left["paths"] == right["paths"] == 16
    assert (right["lat"], right["lng"], right["zoom"]) == pytest.approx(
        (left["lat"], left["lng"], left["zoom"]))
    assert left["zoom"] == 15
    assert not tab.errors, tab.errors
