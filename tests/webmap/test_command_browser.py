"""The command centre in real headless Chromium with the network unplugged (see
``tests/browser.py``): a dispatcher signs in, opens the queue, dispatches a case by clicking,
and the map page draws with no JavaScript error and no request leaving the app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from tests import browser as chromium
from tests.webmap import test_command as kit

rw_world = kit.rw_world  # a world of its own: the test dispatches a case
browser = chromium.browser  # Chromium over the DevTools pipe, skipped when not installed

MAP_PROBE = """(() => {
  const map = window.gridgovCommandMap;
  if (typeof L === "undefined" || !map) return {leaflet: typeof L !== "undefined", map: false};
  let units = 0, points = 0;
  map.eachLayer(layer => {
    if (layer instanceof L.CircleMarker) points += 1;
    else if (layer instanceof L.Path) units += 1;
  });
  const canvas = document.querySelector(".leaflet-overlay-pane canvas");
  let painted = 0;
  if (canvas) {
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted += 1;
  }
  return {leaflet: true, map: true, version: L.version, units, points, painted,
          ready: document.body.getAttribute("data-map-ready")};
})()"""


@pytest.fixture
def live_url(rw_world) -> Iterator[str]:
    app = kit.make_app(rw_world)
    app.config.update(SESSION_COOKIE_SECURE=False, REMEMBER_COOKIE_SECURE=False)
    with chromium.live_server(app) as origin:
        yield origin


@pytest.mark.slow
def test_dispatcher_dispatches_by_clicking_and_the_map_draws_offline(browser, live_url,
                                                                     rw_world):
    tab = chromium.Tab(browser)
    tab.open(f"{live_url}/login?next=/command/cases")
    tab.type("input[name=username]", "dispatcher")
    tab.type("input[name=password]", kit.PASSWORD)
    tab.click_and_wait("form.login button[type=submit]")
    assert "案件列表" in tab.text()

    case_id = rw_world.cases["filed"]
    tab.click_and_wait(f'tr[data-case="{case_id}"] td a')
    assert "派遣建议" in tab.text()
    tab.click_and_wait('form[data-action="dispatch"] button[type=submit]')
    assert "已完成：派遣。" in tab.text()
    with rw_world.engine.connect() as conn:
        state = conn.execute(text("SELECT state FROM case_file WHERE id = :id"),
                             {"id": case_id}).scalar()
    assert state == "dispatched"

    tab.open(f"{live_url}/command/map?layer=cases&layer=incidents")
    # the layers load by fetch, then Leaflet draws on animation frames
    probe = tab.poll(MAP_PROBE, lambda p: p and p.get("ready") and p.get("painted"),
                     timeout=10) or {}
    assert probe.get("ready") == "1", probe
    assert probe["version"] == "1.9.3"
    assert probe["units"] == 2 + 4  # streets and communities (grids start hidden)
    assert probe["points"] == 2 * len(rw_world.cases)  # each case and its incident
    assert probe["painted"] > 1000
    assert not tab.errors, tab.errors
    assert tab.requested and all(u.startswith(live_url) for u in tab.requested), tab.requested
