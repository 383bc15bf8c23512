"""The whole loop on a live app, with a grid worker's phone played by headless Chromium.

A worker on a 390×844 phone with a fixed GPS position signs in, reports an incident with a
photo and sees the grid it landed in; the command centre accepts, files and dispatches it and
the squadron signs and feeds back (through the JSON API, with bearer tokens); the worker
verifies it on the phone; the shift leader closes it, and the grid's indicators count one
closed case. A second test reports with the network off: the report waits in the phone's
outbox and reaches the server exactly once when the network is back, even when sent twice.

Needs Debian's ``chromium`` (skipped without it). The browser reaches nothing but the live
server on 127.0.0.1 (see ``tests/browser.py`` for the flags).
"""

from __future__ import annotations

import io
import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from PIL import ExifTags, Image
from sqlalchemy import Engine, text

from gis.accounts import create_user, issue_token
from gis.boundaries import activate, create_generation
from gis.catalogues import load_classes
from gis.deadlines import load_rules
from gis.indicators import unit_indicators
from gis.periods import SHANGHAI, Period
from tests import browser as chromium
from tests.factories import lattice, small_hierarchy, small_organisation
from webmap import create_app

pytestmark = pytest.mark.slow

PASSWORD = "correct horse 42"
GRID = "320213001001001"
x0, y0 = lattice(0, 3)
LON, LAT = x0 + 0.0025, y0 + 0.0025  # the worker's GPS fix, inside GRID
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True}
PHONE_UA = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0 Mobile Safari/537.36")


# -- the live site --------------------------------------------------------------------------------
@dataclass
class Site:
    url: str  # ends with "/"
    engine: Engine
    tokens: dict[str, str]
    uploads: Path

    def api(self, who: str, method: str, path: str, body: dict | None = None) -> dict:
        """Call the JSON API as one of the centre's users (bearer token: no CSRF)."""
        request = urllib.request.Request(
            self.url + path.lstrip("/"), method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.tokens[who]}",
                     "Content-Type": "application/json", "Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def scalar(self, sql: str, **params):
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()


@pytest.fixture
def site(fresh_url, fresh_engine, tmp_path) -> Iterator[Site]:
    load_classes(fresh_engine)
    load_rules(fresh_engine)
    activate(fresh_engine, create_generation(fresh_engine, small_hierarchy(), name="e2e"))
    tokens = {}
    with fresh_engine.begin() as conn:
        departments = small_organisation(conn)
        staff = conn.execute(text("INSERT INTO staff (code, name, post) VALUES "
                                  "('W1', '王小明', 'grid_worker') RETURNING id")).scalar()
        conn.execute(text("INSERT INTO staff_grid VALUES (:s, :g, 'worker')"),
                     {"s": staff, "g": GRID})
        create_user(conn, "worker", PASSWORD, "grid_worker", display_name="王小明",
                    staff_id=staff)
        centre = {"acceptor": {}, "shift_leader": {}, "dispatcher": {},
                  "handler": {"department_id": departments["squadron_320213001"]}}
        for role, extra in centre.items():
            user_id = create_user(conn, role, PASSWORD, role, **extra)
            tokens[role] = issue_token(conn, user_id, "e2e")
    uploads = tmp_path / "uploads"
    app = create_app({"DATABASE_URL": fresh_url, "SECRET_KEY": "e2e", "SECURE_COOKIES": False,
                      "RATELIMIT_ENABLED": False, "UPLOAD_DIR": str(uploads)})
    with chromium.live_server(app) as origin:
        yield Site(f"{origin}/", fresh_engine, tokens, uploads)


browser = chromium.browser  # Chromium over the DevTools pipe, skipped when not installed


@pytest.fixture
def camera_photo(tmp_path) -> Path:
    """A 3000×2000 phone photo with the GPS position in its EXIF."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneCo"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps.update({ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (31.0, 34.0, 39.0),
                ExifTags.GPS.GPSLongitudeRef: "E",
                ExifTags.GPS.GPSLongitude: (120.0, 18.0, 9.0)})
    path = tmp_path / "IMG_0001.jpg"
    image = Image.radial_gradient("L").resize((3000, 2000)).convert("RGB")
    image.save(path, "JPEG", exif=exif, quality=90)
    return path


# -- the phone ------------------------------------------------------------------------------------
class Phone(chromium.Tab):
    """One tab emulating a phone at the worker's GPS position; paths are relative to the site."""

    def __init__(self, browser: chromium.DevTools, base_url: str) -> None:
        super().__init__(browser, domains=("Page", "Runtime", "Network", "DOM"))
        self.base = base_url
        self.send("Emulation.setDeviceMetricsOverride", PHONE)
        self.send("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
        self.send("Emulation.setUserAgentOverride", {"userAgent": PHONE_UA})
        browser.send("Browser.grantPermissions", {"permissions": ["geolocation"],
                                                  "origin": base_url.rstrip("/")})
        self.send("Emulation.setGeolocationOverride",
                  {"latitude": LAT, "longitude": LON, "accuracy": 8})
        self.worker_sessions: list[str] = []

    def open(self, path: str, timeout: float = 30.0) -> None:
        super().open(self.base + path.lstrip("/"), timeout)

    def tap(self, selector: str) -> None:
        """A real pointer press and release in the middle of the element."""
        box = self.box(selector)
        assert box["height"] >= 44, f"{selector} is a small touch target ({box['height']} px)"
        self.click_at(box["x"], box["y"])

    def tap_and_wait(self, selector: str) -> None:
        """Tap a link and wait for the page it opens."""
        self.until_loaded(lambda: self.tap(selector))

    def sign_in(self, username: str, then: str) -> None:
        self.open(f"login?next={then}")
        self.type("input[name=username]", username)
        self.type("input[name=password]", PASSWORD)
        self.until_loaded(lambda: self.evaluate(
            "document.querySelector('form.login').requestSubmit()"))
        assert self.evaluate("location.pathname") == then

    def set_offline(self, offline: bool) -> None:
        """Cut (or restore) the network of the page and of its service worker."""
        conditions = {"offline": offline, "latency": 0, "downloadThroughput": -1,
                      "uploadThroughput": -1}
        for session in (self.session, *self.worker_sessions):
            self.send("Network.emulateNetworkConditions", conditions, session=session)

    def attach_service_worker(self) -> None:
        self.wait("navigator.serviceWorker.ready.then(r => !!r.active)")
        self.wait("!!navigator.serviceWorker.controller")
        targets = self.devtools.send("Target.getTargets")["targetInfos"]
        for info in targets:
            if info["type"] == "service_worker" and info["url"].startswith(self.base):
                session = self.devtools.send("Target.attachToTarget", {
                    "targetId": info["targetId"], "flatten": True})["sessionId"]
                self.send("Network.enable", session=session)
                self.worker_sessions.append(session)
        assert self.worker_sessions, "no service worker target"

    def fill_report(self, description: str, photo: Path) -> None:
        self.wait("document.getElementById('location-text').textContent.startsWith('GPS')")
        self.evaluate("(() => { const s = document.getElementById('class-code');"
                      " s.value = 'E0102'; s.dispatchEvent(new Event('change')); })()")
        self.type("#description", description)
        self.choose_files("#photos", photo)
        self.wait("document.querySelectorAll('#previews img').length === 1")


# -- checks ---------------------------------------------------------------------------------------
def assert_clean_photo(site: Site, photo_id: int) -> None:
    """The stored file is a JPEG of at most 1600 px with no EXIF (so no GPS)."""
    path = site.scalar("SELECT path FROM photo WHERE id = :i", i=photo_id)
    stored = Image.open(io.BytesIO((site.uploads / path).read_bytes()))
    assert stored.format == "JPEG" and max(stored.size) <= 1600
    assert dict(stored.getexif()) == {} and "exif" not in stored.info


def today() -> Period:
    start = datetime.now(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
    return Period("today", start, start + timedelta(days=1))


# -- the tests ------------------------------------------------------------------------------------
def test_report_dispatch_handle_verify_close(site, browser, camera_photo):
    phone = Phone(browser, site.url)
    phone.sign_in("worker", "/m/report")

    # 1. the worker reports with a photo and sees where it landed
    phone.fill_report("小区门口垃圾堆放", camera_photo)
    phone.tap("#submit")
    shown = phone.wait("(() => { const p = document.getElementById('result-grid');"
                       " return p && p.textContent; })()")
    assert GRID in shown and "街道1" in shown and "社区11" in shown and "网格1" in shown
    number = phone.evaluate("document.getElementById('result-case').textContent")
    case_id = site.scalar("SELECT id FROM case_file WHERE number = :n", n=number)
    assert site.scalar("SELECT count(*) FROM incident") == 1
    assert site.scalar("SELECT g.code FROM case_file c JOIN unit g ON g.id = c.grid_id "
                       "WHERE c.id = :c", c=case_id) == GRID
    photo_id = site.scalar("SELECT (photos->0->>'photo_id')::int FROM case_event "
                           "WHERE case_id = :c AND seq = 1", c=case_id)
    assert photo_id is not None
    assert_clean_photo(site, photo_id)
    assert phone.evaluate("document.getElementById('outbox').hidden") is True

    # 2. the command centre accepts, files and dispatches; the squadron signs and feeds back
    path = f"/api/cases/{case_id}/transitions"
    for who, action, note in [("acceptor", "accept", ""), ("shift_leader", "file", ""),
                              ("dispatcher", "dispatch", ""), ("handler", "sign", ""),
                              ("handler", "feedback", "已清运")]:
        answer = site.api(who, "POST", path, {"action": action, "note": note})
        assert answer["state"] == {"accept": "accepted", "file": "filed",
                                   "dispatch": "dispatched", "sign": "handling",
                                   "feedback": "fed_back"}[action]

    # 3. the worker finds it among the tasks and verifies it on site
    phone.open("/m/tasks")
    phone.tap_and_wait(f'a[data-case="{case_id}"]')
    assert phone.evaluate("location.pathname") == f"/m/cases/{case_id}"
    phone.wait("document.getElementById('location-text').textContent.startsWith('GPS')")
    phone.type("#verify-note", "现场已清理干净")
    phone.tap("#verify-pass")
    phone.wait("!!document.getElementById('verify-done')")
    assert site.scalar("SELECT state FROM case_file WHERE id = :c", c=case_id) == "verified"
    where = site.scalar("SELECT ST_AsText(geom) FROM case_event WHERE case_id = :c AND "
                        "action = 'verify_pass'", c=case_id)
    assert where.startswith("POINT(120.302")

    # 4. the shift leader closes it; the grid's figures and the map follow
    assert site.api("shift_leader", "POST", path, {"action": "close"})["state"] == "closed"
    with site.engine.connect() as conn:
        figures = unit_indicators(conn, "grid", today(),
                                  as_of=datetime.now(SHANGHAI) + timedelta(seconds=1))
    assert figures.loc[GRID, ["reports", "cases", "closed"]].tolist() == [1, 1, 1]
    assert figures["closed"].sum() == 1
    point = site.api("acceptor", "GET", f"/api/point/4326/{LON},{LAT}")
    assert [u["code"] for u in point["units"] if u["level"] == "grid"] == [GRID]
    phone.open("/m/")
    assert phone.evaluate("document.getElementById('task-count').textContent") == "0"
    assert phone.wait("document.querySelectorAll('.leaflet-interactive').length") >= 1
    phone.open("/m/tasks")
    assert "已结案" in phone.evaluate("document.getElementById('report-list').textContent")


def test_an_offline_report_is_sent_once_when_the_network_returns(site, browser, camera_photo):
    phone = Phone(browser, site.url)
    phone.sign_in("worker", "/m/report")
    phone.attach_service_worker()
    phone.wait("caches.match('/m/report').then(r => !!r)")

    # the page opens with no network at all: the service worker keeps the app shell
    phone.set_offline(True)
    phone.reload()
    sources = {e["params"]["response"]["url"].removeprefix(site.url.rstrip("/")):
               e["params"]["response"].get("serviceWorkerResponseSource")
               for e in phone.events("Network.responseReceived", since_navigation=True)}
    assert sources["/m/report"] == "cache-storage"
    assert sources["/static/webmap/mobile.js"] == "cache-storage"
    assert phone.evaluate("navigator.onLine") is False
    assert phone.evaluate("document.getElementById('net').hidden") is False
    assert phone.evaluate("fetch('/api/mobile/csrf').then(() => 'online', () => 'offline')") == (
        "offline")

    # the report waits in the outbox, photo included
    phone.fill_report("路灯不亮", camera_photo)
    phone.tap("#submit")
    phone.wait("document.getElementById('outbox-count').textContent.startsWith('1 条')")
    assert "1 report waiting" in phone.evaluate(
        "document.getElementById('outbox-count').textContent")
    assert phone.evaluate("document.getElementById('result').className") == "result queued"
    job = phone.evaluate("gridgov.outbox.all().then(j => { window.sentCopy = j[0];"
                   " return {n: j.length, photos: j[0].photos.length,"
                   " blob: j[0].photos[0] instanceof Blob, key: j[0].key}; })")
    assert job["n"] == 1 and job["photos"] == 1 and job["blob"]
    assert site.scalar("SELECT count(*) FROM incident") == 0

    # back online: the "online" event sends it, once
    phone.set_offline(False)
    phone.wait("gridgov.outbox.all().then(j => j.length === 0)", timeout=30)
    shown = phone.wait("(() => { const p = document.getElementById('result-grid');"
                       " return p && p.textContent; })()")
    assert GRID in shown
    assert phone.evaluate("document.getElementById('outbox').hidden") is True
    assert site.scalar("SELECT count(*) FROM incident") == 1
    assert site.scalar("SELECT count(*) FROM photo") == 1

    # a forced second flush of the same report (as after a lost answer) creates nothing new
    replay = phone.evaluate("""(async () => {
        await gridgov.outbox.put({...window.sentCopy, nextTry: 0, attempts: 0});
        await gridgov.flush();
        const left = await gridgov.outbox.all();
        return {left: left.length, replayed: gridgov.results.get(window.sentCopy.key).replayed};
    })()""")
    assert replay == {"left": 0, "replayed": True}
    assert site.scalar("SELECT count(*) FROM incident") == 1
    assert site.scalar("SELECT count(*) FROM case_file") == 1
    assert site.scalar("SELECT count(*) FROM photo") == 1
    assert site.scalar("SELECT source_key FROM incident") == (
        f"{site.scalar('SELECT id FROM user_account WHERE username = :u', u='worker')}:"
        f"{job['key']}")
    photo_id = site.scalar("SELECT (photos->0->>'photo_id')::int FROM case_event")
    assert_clean_photo(site, photo_id)
