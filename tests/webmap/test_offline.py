"""No CDN at run time: every script and stylesheet a page uses is served by the app or inlined.

The last tests load the page in real headless Chromium with every non-loopback address
unreachable (``tests/browser.py``), and check that Leaflet ran and drew the polygons. They need
Debian's ``chromium`` package and are skipped without it.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import folium
import pytest

from app import create_app
from gis.boundaries import activate, create_generation, read_generation
from gis.database import get_engine
from tests import browser as chromium
from tests.factories import small_hierarchy
from webmap.maps import build_units_map, render_standalone

EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)


class AssetRefs(HTMLParser):
    """Collects ``<script src>`` and ``<link href>`` of a page, and counts inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script":
            if values.get("src"):
                self.urls.append(values["src"] or "")
            else:
                self.inline_scripts += 1
        elif tag == "link" and values.get("href"):
            self.urls.append(values["href"] or "")


def refs(page: str) -> AssetRefs:
    parser = AssetRefs()
    parser.feed(page)
    return parser


@pytest.fixture(scope="module")
def small_url(database_factory, template_name):
    url = database_factory.create("webmap_offline", template=template_name)
    engine = get_engine(url)
    activate(engine, create_generation(engine, small_hierarchy(), name="small"))
    yield url
    database_factory.drop(url)


@pytest.fixture(scope="module")
def app(small_url):
    return create_app({"DATABASE_URL": small_url, "TESTING": True})


@pytest.fixture(scope="module")
def page(app) -> str:
    response = app.test_client().get("/")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_page_loads_no_external_script_or_stylesheet(page):
    urls = refs(page).urls
    assert "/assets/leaflet/leaflet.js" in urls and "/assets/leaflet/leaflet.css" in urls
    assert not [u for u in urls if EXTERNAL.match(u)]
    assert "tile.openstreetmap.org" not in page  # no base tiles unless configured


def test_every_asset_is_served_with_its_content_type(app, page):
    client = app.test_client()
    expected = {".js": "text/javascript", ".css": "text/css", ".png": "image/png",
                ".svg": "image/svg+xml"}
    urls = [u for u in refs(page).urls if u.startswith(("/assets/", "/static/"))]
    css = client.get("/assets/leaflet/leaflet.css").get_data(as_text=True)
    images = re.findall(r"url\((images/[^)]+)\)", css)
    assert images
    urls += [f"/assets/leaflet/{image}" for image in images]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.mimetype == expected[Path(url).suffix], url
        assert response.content_length and response.content_length > 0


def test_page_is_gzipped_for_clients_that_accept_it(app, page):
    response = app.test_client().get("/", headers={"Accept-Encoding": "gzip, br"})
    assert response.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in response.headers["Vary"]
    assert gzip.decompress(response.data).decode() == page


def test_page_data_is_compact_utf8_json(page):
    assert '"name":"街道1"' in page and "\\u8857" not in page  # 街 not escaped
    assert folium.GeoJson._template.environment.policies["json.dumps_kwargs"] == {
        "sort_keys": True}  # restored after rendering


@pytest.mark.parametrize("path", ["/assets/leaflet/..%2F__init__.py",
                                  "/assets/leaflet/%2E%2E/__init__.py",
                                  "/assets/nothing/leaflet.js", "/assets/leaflet/nope.js"])
def test_assets_outside_the_bundles_are_not_served(app, path):
    assert app.test_client().get(path).status_code == 404


def test_osm_layer_is_offered_but_not_shown(small_url):
    client = create_app({"DATABASE_URL": small_url, "OSM_LAYER": True}).test_client()
    page = client.get("/").get_data(as_text=True)
    assert "tile.openstreetmap.org" in page
    assert not [u for u in refs(page).urls if EXTERNAL.match(u)]


def test_standalone_html_inlines_everything(small_url):
    page = render_standalone(build_units_map(read_generation(get_engine(small_url))), "t")
    found = refs(page)
    assert found.urls == []  # no <script src> and no <link href> at all
    assert 'version="1.9.3"' in page  # Leaflet itself is in the file
    assert "url(images/" not in page and "data:image/png;base64," in page
    assert "sourceMappingURL" not in page


# -- real browser ---------------------------------------------------------------------------------
browser = chromium.browser  # Chromium with the network unplugged, skipped when not installed

PROBE = """(() => {
  if (typeof L === "undefined") return {leaflet: false};
  const name = Object.keys(window).find(k => /^map_[0-9a-f]+$/.test(k));
  const map = window[name];
  let paths = 0;
  map.eachLayer(layer => { if (layer instanceof L.Path) paths += 1; });
  const canvas = document.querySelector(".leaflet-overlay-pane canvas");
  let painted = 0;
  if (canvas) {
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted += 1;
  }
  const overlays = [...document.querySelectorAll(".leaflet-control-layers-overlays label")]
    .map(s => s.textContent.trim());
  return {leaflet: true, version: L.version, paths, painted, overlays};
})()"""


@pytest.fixture
def live_url(app) -> Iterator[str]:
    with chromium.live_server(app) as origin:
        yield f"{origin}/"


def _load(browser: chromium.DevTools, url: str) -> tuple[dict, list[str], list[str]]:
    """Open ``url`` in a new tab; return the probe, the requested URLs and the JS errors."""
    tab = chromium.Tab(browser)
    tab.open(url)
    # Leaflet draws on the next animation frames
    probe = tab.poll(PROBE, lambda p: p and p.get("painted")) or {}
    return probe, tab.requested, tab.errors


def _assert_drawn(probe: dict, errors: list[str]) -> None:
    assert not [e for e in errors if "is not defined" in e], errors
    assert not errors, errors
    assert probe["leaflet"] and probe["version"] == "1.9.3"
    assert probe["paths"] == 2 + 4  # streets and communities; the grid layer starts hidden
    assert probe["painted"] > 1000  # pixels drawn on the canvas
    assert probe["overlays"] == ["街道", "社区", "网格"]


@pytest.mark.slow
def test_chromium_draws_the_served_page_without_network(browser, live_url):
    probe, requested, errors = _load(browser, live_url)
    _assert_drawn(probe, errors)
    assert requested and all(u.startswith(live_url) or u.startswith("data:") for u in requested)


@pytest.mark.slow
def test_chromium_draws_the_standalone_file_without_network(browser, small_url, tmp_path):
    page = render_standalone(build_units_map(read_generation(get_engine(small_url))))
    path = tmp_path / "map.html"
    path.write_text(page, encoding="utf-8")
    probe, requested, errors = _load(browser, path.as_uri())
    _assert_drawn(probe, errors)
    assert all(u.startswith(("file:", "data:")) for u in requested)
