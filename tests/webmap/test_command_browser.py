"""The command centre in real headless Chromium with the network unplugged (as in
``test_offline``): a dispatcher signs in, opens the queue, dispatches a case by clicking, and
the map page draws with no JavaScript error and no request leaving the app."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from werkzeug.serving import make_server

from tests.webmap import test_command as kit
from tests.webmap import test_offline as offline

rw_world = kit.rw_world  # a world of its own: the test dispatches a case
browser = offline.browser  # Chromium over the DevTools pipe, skipped when not installed

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


class Tab:
    """One browser tab driven like a person: navigate, type, click, wait for the next page."""

    def __init__(self, devtools: offline.DevTools) -> None:
        self.devtools = devtools
        target = devtools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = devtools.send("Target.attachToTarget",
                                     {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            devtools.send(f"{domain}.enable", session=self.session)
        self.requested: list[str] = []
        self.errors: list[str] = []

    def _collect(self) -> None:
        for event in self.devtools.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Network.requestWillBeSent":
                self.requested.append(params["request"]["url"])
            elif (method in ("Runtime.exceptionThrown", "Network.loadingFailed")
                  or (method == "Log.entryAdded" and params["entry"]["level"] == "error")
                  or (method == "Runtime.consoleAPICalled" and params["type"] == "error")):
                self.errors.append(json.dumps(params, ensure_ascii=False)[:500])
        self.devtools.events.clear()

    def _until_loaded(self, action) -> None:
        self._collect()
        action()
        self.devtools.wait_for("Page.loadEventFired")
        self._collect()

    def open(self, url: str) -> None:
        self._until_loaded(lambda: self.devtools.send("Page.navigate", {"url": url},
                                                      session=self.session))

    def evaluate(self, expression: str):
        result = self.devtools.send("Runtime.evaluate", {
            "expression": expression, "returnByValue": True}, session=self.session)
        return result["result"].get("value")

    def type_into(self, selector: str, value: str) -> None:
        assert self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                             " if (!e) return false; e.focus(); return true; })()"), selector
        self.devtools.send("Input.insertText", {"text": value}, session=self.session)

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element; waits for the page it loads."""
        x, y = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        for kind in ("mousePressed", "mouseReleased"):
            self.devtools.send("Input.dispatchMouseEvent", {
                "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
                session=self.session)

    def click_and_wait(self, selector: str) -> None:
        self._until_loaded(lambda: self.click(selector))

    def text(self) -> str:
        return self.evaluate("document.body.innerText")


@pytest.fixture
def live_url(rw_world) -> Iterator[str]:
    app = kit.make_app(rw_world)
    app.config.update(SESSION_COOKIE_SECURE=False, REMEMBER_COOKIE_SECURE=False)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.mark.slow
def test_dispatcher_dispatches_by_clicking_and_the_map_draws_offline(browser, live_url,
                                                                     rw_world):
    tab = Tab(browser)
    tab.open(f"{live_url}/login?next=/command/cases")
    tab.type_into("input[name=username]", "dispatcher")
    tab.type_into("input[name=password]", kit.PASSWORD)
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
    probe: dict = {}
    for _ in range(100):  # the layers load by fetch, then Leaflet draws on animation frames
        probe = tab.evaluate(MAP_PROBE) or {}
        if probe.get("ready") and probe.get("painted"):
            break
        time.sleep(0.1)
    tab._collect()
    assert probe.get("ready") == "1", probe
    assert probe["version"] == "1.9.3"
    assert probe["units"] == 2 + 4  # streets and communities (grids start hidden)
    assert probe["points"] == 2 * len(rw_world.cases)  # each case and its incident
    assert probe["painted"] > 1000
    assert not tab.errors, tab.errors
    assert tab.requested and all(u.startswith(live_url) for u in tab.requested), tab.requested
