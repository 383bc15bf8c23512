"""No CDN at run time: every script and stylesheet a page uses is served by the app or inlined.

The last test loads the page in real headless Chromium with every non-loopback address
unreachable, and checks that Leaflet ran and drew the polygons. It needs Debian's ``chromium``
package and is skipped without it.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import folium
import pytest
from werkzeug.serving import make_server

from app import create_app
from gis.boundaries import activate, create_generation, read_generation
from gis.database import get_engine
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
    expected = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
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
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-default-apps", "--remote-debugging-pipe",
    # the network is "unplugged": no name resolves and every request goes to a dead proxy,
    # except loopback (the live server), which Chromium never proxies
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--proxy-server=http://127.0.0.1:9",
]

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


class DevTools:
    """A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe``."""

    def __init__(self, binary: str, profile: str) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def wire_fds() -> None:  # the pipe protocol: Chromium reads fd 3 and writes fd 4
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.proc = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            preexec_fn=wire_fds, close_fds=False,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._from_chrome], [], [], remaining)[0]:
                raise TimeoutError("Chromium did not answer")
            chunk = os.read(self._from_chrome, 1 << 16)
            if not chunk:
                raise ConnectionError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 20.0) -> dict:
        self._next_id += 1
        message: dict = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event.get("method") == method:
                    return event
            self.events.append(self._read(deadline))

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError, TimeoutError, ConnectionError):
            self.send("Browser.close", timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


@pytest.fixture
def browser() -> Iterator[DevTools]:
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install -y chromium)")
    with tempfile.TemporaryDirectory(prefix="gridgov-chromium-") as profile:
        devtools = DevTools(CHROMIUM, profile)
        try:
            yield devtools
        finally:
            devtools.close()


@pytest.fixture
def live_url(app) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def _load(browser: DevTools, url: str) -> tuple[dict, list[str], list[str]]:
    """Open ``url`` in a new tab; return the probe, the requested URLs and the JS errors."""
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
        "sessionId"]
    for domain in ("Page", "Runtime", "Network", "Log"):
        browser.send(f"{domain}.enable", session=session)
    browser.send("Page.navigate", {"url": url}, session=session)
    browser.wait_for("Page.loadEventFired")
    probe: dict = {}
    for _ in range(50):  # Leaflet draws on the next animation frames
        probe = browser.send("Runtime.evaluate", {"expression": PROBE, "returnByValue": True},
                             session=session)["result"].get("value", {})
        if probe.get("painted"):
            break
        time.sleep(0.1)
    requested = [e["params"]["request"]["url"] for e in browser.events
                 if e.get("method") == "Network.requestWillBeSent"]
    errors = [json.dumps(e["params"]) for e in browser.events
              if e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
              or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")
              or e.get("method") == "Network.loadingFailed"]
    return probe, requested, errors


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
