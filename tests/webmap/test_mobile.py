"""The phone pages under /m/, their JSON endpoints and the photo endpoints."""

from __future__ import annotations

import errno
import io
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import Engine, text

from gis import photos
from gis.accounts import create_user
from gis.boundaries import activate, create_generation
from gis.catalogues import load_classes
from gis.deadlines import load_rules
from gis.incidents import report_incident
from gis.periods import SHANGHAI
from gis.workflow import Actor, Workflow
from tests.factories import lattice, small_hierarchy, small_organisation
from tests.gis.test_photos import png_bomb
from tests.webmap.test_offline import EXTERNAL, refs
from webmap import create_app

PASSWORD = "correct horse 42"
MY_GRID = "320213001001001"  # cell (0, 3): the worker's grid
LEADERS_GRID = "320213001001002"  # cell (1, 3): the leader's second grid
FAR_GRID = "320213002001001"  # cell (2, 3): street 2, nobody's here


def inside(cell: tuple[int, int]) -> tuple[float, float]:
    x, y = lattice(*cell)
    return x + 0.0025, y + 0.0025


@dataclass
class Site:
    app: Flask
    engine: Engine
    departments: dict[str, int]

    def client(self, username: str | None = None) -> FlaskClient:
        client = self.app.test_client()
        if username:
            page = client.get("/login").get_data(as_text=True)
            token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
            answer = client.post("/login", data={"username": username, "password": PASSWORD,
                                                 "csrf_token": token})
            assert answer.status_code == 302, answer.text
        return client


def _staff(conn, code: str, name: str, post: str, grids: dict[str, str]) -> int:
    staff_id = conn.execute(text(
        "INSERT INTO staff (code, name, post) VALUES (:c, :n, :p) RETURNING id"),
        {"c": code, "n": name, "p": post}).scalar()
    for grid, role in grids.items():
        conn.execute(text("INSERT INTO staff_grid VALUES (:s, :g, :r)"),
                     {"s": staff_id, "g": grid, "r": role})
    return staff_id


@pytest.fixture
def site(fresh_url, fresh_engine, tmp_path) -> Site:
    load_classes(fresh_engine)
    load_rules(fresh_engine)
    activate(fresh_engine, create_generation(fresh_engine, small_hierarchy(), name="g"))
    with fresh_engine.begin() as conn:
        departments = small_organisation(conn)
        worker = _staff(conn, "W1", "王小明", "grid_worker", {MY_GRID: "worker"})
        leader = _staff(conn, "L1", "李长江", "grid_leader",
                        {MY_GRID: "leader", LEADERS_GRID: "leader"})
        create_user(conn, "worker", PASSWORD, "grid_worker", display_name="王小明",
                    staff_id=worker)
        create_user(conn, "leader", PASSWORD, "grid_leader", display_name="李长江",
                    staff_id=leader)
        create_user(conn, "super", PASSWORD, "supervisor", display_name="监督员")
        create_user(conn, "disp", PASSWORD, "dispatcher", display_name="调度员")
        create_user(conn, "viewer", PASSWORD, "viewer")
    app = create_app({"DATABASE_URL": fresh_url, "SECRET_KEY": "test", "TESTING": True,
                      "UPLOAD_DIR": str(tmp_path / "uploads"), "RATELIMIT_ENABLED": False})
    return Site(app, fresh_engine, departments)


def csrf(client: FlaskClient) -> str:
    return client.get("/api/mobile/csrf").json["token"]


def page_csrf(client: FlaskClient) -> str:
    """The token any page carries (the sign-in page is open to every role)."""
    page = client.get("/login").get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', page)[1]


def report(client: FlaskClient, cell=(0, 3), key="key-1", **extra):
    lon, lat = inside(cell)
    body = {"idempotency_key": key, "class_code": "E0102", "description": "垃圾堆放",
            "lon": lon, "lat": lat, "crs": "wgs84", **extra}
    return client.post("/api/mobile/reports", json=body, headers={"X-CSRFToken": csrf(client)})


def jpeg(size=(2400, 1800)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 120, 40)).save(buffer, "JPEG")
    return buffer.getvalue()


def upload(client: FlaskClient, data: bytes, name: str = "photo.jpg"):
    return client.post("/api/photos", data={"photo": (io.BytesIO(data), name)},
                       headers={"X-CSRFToken": csrf(client)},
                       content_type="multipart/form-data")


def count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()


# -- pages ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("username", ["worker", "leader"])
def test_pages_render_for_grid_staff_with_local_assets_only(site, username):
    client = site.client(username)
    for path in ("/m/", "/m/report", "/m/tasks"):
        response = client.get(path)
        assert response.status_code == 200, path
        page = response.get_data(as_text=True)
        assert 'name="viewport"' in page and 'name="csrf-token"' in page
        assert "/static/webmap/mobile.js" in page
        assert not [u for u in refs(page).urls if EXTERNAL.match(u)], path
    home = client.get("/m/").get_data(as_text=True)
    assert "/assets/leaflet/leaflet.js" in home and MY_GRID in home
    assert (LEADERS_GRID in home) == (username == "leader")
    form = client.get("/m/report").get_data(as_text=True)
    assert 'value="E0102"' in form and 'capture="environment"' in form
    assert 'accept="image/*"' in form


@pytest.mark.parametrize("username", ["disp", "viewer"])
def test_pages_are_refused_to_other_roles(site, username):
    client = site.client(username)
    assert client.get("/m/").status_code == 403
    answer = client.post("/api/mobile/reports", json={},
                         headers={"X-CSRFToken": page_csrf(client)})
    assert answer.status_code == 403 and "may not" in answer.json["error"]["message"]


def test_anonymous_is_sent_to_sign_in_and_api_answers_401(site):
    client = site.client()
    assert client.get("/m/report").status_code == 302
    assert client.get("/api/mobile/csrf").status_code == 401
    assert client.get("/photos/1").status_code in (302, 401)


def test_service_worker_is_served_from_m_with_its_shell(site):
    response = site.client().get("/m/sw.js")
    assert response.status_code == 200 and response.mimetype == "text/javascript"
    assert response.headers["Service-Worker-Allowed"] == "/m/"
    source = response.get_data(as_text=True)
    assert "__VERSION__" not in source and "__PRECACHE__" not in source
    for path in ("/m/report", "/static/webmap/mobile.js", "/assets/leaflet/leaflet.js",
                 "/assets/leaflet/images/marker-icon.png"):
        assert f'"{path}"' in source
        if not path.startswith("/m/"):
            assert site.client().get(path).status_code == 200, path


# -- reports --------------------------------------------------------------------------------------
def test_a_report_is_assigned_on_the_server(site):
    client = site.client("worker")
    answer = report(client)
    assert answer.status_code == 201, answer.json
    body = answer.json
    assert body["incident"]["grid"] == {"code": MY_GRID, "name": "网格1"}
    assert body["incident"]["community"]["name"] == "社区11"
    assert body["incident"]["street"]["name"] == "街道1"
    assert body["case"]["state"] == "reported" and body["replayed"] is False
    second = report(client, key="key-2").json
    assert [d["case_id"] for d in second["possible_duplicates"]] == [body["case"]["id"]]
    tasks = client.get("/m/tasks").get_data(as_text=True)
    assert body["case"]["number"] in tasks and "已上报" in tasks


def test_a_report_outside_my_grids_is_refused_clearly(site):
    answer = report(site.client("worker"), cell=(2, 3))
    assert answer.status_code == 403
    message = answer.json["error"]["message"]
    assert "不在您负责的网格内" in message and FAR_GRID in message
    assert "not in your grids" in message
    assert count(site.engine, "incident") == 0


def test_a_replay_with_the_same_key_returns_the_first_report(site):
    client = site.client("worker")
    first = report(client, key="same")
    again = report(client, key="same", description="sent twice")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["replayed"] is True
    assert again.json["incident"]["id"] == first.json["incident"]["id"]
    assert again.json["case"]["id"] == first.json["case"]["id"]
    assert count(site.engine, "incident") == 1 and count(site.engine, "case_file") == 1


@pytest.mark.parametrize(("change", "message"), [
    ({"idempotency_key": ""}, "idempotency_key"),
    ({"class_code": "X9999"}, "class_code"),
    ({"lon": None, "lat": None}, "location"),
    ({"crs": "gcj02"}, "crs"),
    ({"photo_ids": ["1"]}, "photo_ids"),
    ({"reported_at": "2019-05-10T10:00:00"}, "time zone"),
    ({"reported_at": "2001-05-10T10:00:00+08:00"}, "clock"),
])
def test_bad_reports_are_400_with_the_field(site, change, message):
    answer = report(site.client("worker"), **change)
    assert answer.status_code == 400 and message in answer.json["error"]["message"]


def test_writes_need_the_csrf_token(site):
    client = site.client("worker")
    lon, lat = inside((0, 3))
    answer = client.post("/api/mobile/reports", json={"idempotency_key": "k", "lon": lon,
                                                      "lat": lat, "class_code": "E0102"})
    assert answer.status_code == 400 and "CSRF" in answer.json["error"]["message"]
    assert client.post("/api/photos").status_code == 400


def test_an_offline_report_keeps_the_time_it_was_made(site):
    made = (datetime.now(SHANGHAI) - timedelta(hours=3)).replace(microsecond=0)
    answer = report(site.client("worker"), reported_at=made.isoformat())
    with site.engine.connect() as conn:
        stored = conn.execute(text("SELECT reported_at FROM incident WHERE id = :i"),
                              {"i": answer.json["incident"]["id"]}).scalar()
    assert stored == made


# -- photos ---------------------------------------------------------------------------------------
def test_photo_upload_is_checked_downscaled_and_served_by_id(site):
    client = site.client("worker")
    answer = upload(client, jpeg(), name="../../etc/passwd.jpg")
    assert answer.status_code == 201, answer.json
    assert (answer.json["width"], answer.json["height"]) == (1600, 1200)
    photo = client.get(answer.json["url"])
    assert photo.status_code == 200 and photo.mimetype == "image/jpeg"
    assert photo.headers["X-Content-Type-Options"] == "nosniff"
    assert "private" in photo.headers["Cache-Control"]
    assert Image.open(io.BytesIO(photo.data)).size == (1600, 1200)
    uploads = [p.name for p in Path(site.app.config["UPLOAD_DIR"]).rglob("*") if p.is_file()]
    assert uploads == [f"{_sha(site)}.jpg"]  # the client's file name is never used
    for path in ("/photos/..%2F..%2Fetc%2Fpasswd", "/photos/../../etc/passwd",
                 "/photos/%2e%2e/secret_key", "/photos/1.jpg", "/photos/999"):
        assert client.get(path).status_code == 404, path


def _sha(site: Site) -> str:
    with site.engine.connect() as conn:
        return conn.execute(text("SELECT sha256 FROM photo")).scalar()


@pytest.mark.parametrize(("data", "status", "message"), [
    (b"<?php system($_GET['c']); ?>", 400, "not a JPEG, PNG or WebP"),
    (b"<html><script>alert(1)</script></html>", 400, "not a JPEG, PNG or WebP"),
    (png_bomb(), 400, "too many pixels"),
    (b"\xff\xd8\xff" + b"\0" * (10 * 1024 * 1024), 413, "too large"),  # read, then refused
    (b"\xff\xd8\xff" + b"\0" * (12 * 1024 * 1024), 413, "too large"),  # refused unread
], ids=["php", "html", "bomb", "oversized", "far-oversized"])
def test_bad_uploads_are_refused_with_a_message(site, data, status, message):
    answer = upload(site.client("worker"), data)
    assert answer.status_code == status and message in answer.json["error"]["message"]
    assert count(site.engine, "photo") == 0


def test_png_is_accepted_and_a_full_disk_is_507_leaving_nothing(site, monkeypatch):
    client = site.client("worker")
    buffer = io.BytesIO()
    Image.new("RGBA", (3200, 800), (0, 0, 255, 100)).save(buffer, "PNG")
    answer = upload(client, buffer.getvalue(), name="shot.png")
    assert answer.status_code == 201 and (answer.json["width"], answer.json["height"]) == (
        1600, 400)
    assert client.get(answer.json["url"]).mimetype == "image/jpeg"

    def full(handle, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(photos, "_write_chunk", full)
    refused = upload(client, jpeg())
    assert refused.status_code == 507 and "full" in refused.json["error"]["message"]
    files = [p for p in Path(site.app.config["UPLOAD_DIR"]).rglob("*") if p.is_file()]
    assert len(files) == 1 and count(site.engine, "photo") == 1  # only the PNG's


def test_upload_without_a_file_is_400(site):
    client = site.client("worker")
    answer = client.post("/api/photos", data={}, headers={"X-CSRFToken": csrf(client)})
    assert answer.status_code == 400 and "photo" in answer.json["error"]["message"]


def test_photos_are_attached_and_shown_only_to_those_allowed(site):
    worker = site.client("worker")
    photo_id = upload(worker, jpeg()).json["id"]
    answer = report(worker, photo_ids=[photo_id])
    assert answer.status_code == 201
    case_page = worker.get(answer.json["case"]["url"]).get_data(as_text=True)
    assert f"/photos/{photo_id}" in case_page
    leader = site.client("leader")  # the case is in one of the leader's grids
    assert leader.get(f"/photos/{photo_id}").status_code == 200
    assert site.client("disp").get(f"/photos/{photo_id}").status_code == 200
    with site.engine.begin() as conn:  # a worker of another grid sees nothing
        far = _staff(conn, "W2", "赵六", "grid_worker", {FAR_GRID: "worker"})
        create_user(conn, "far", PASSWORD, "grid_worker", staff_id=far)
    assert site.client("far").get(f"/photos/{photo_id}").status_code == 404
    stolen = report(site.client("leader"), key="other", photo_ids=[photo_id])
    assert stolen.status_code == 400 and "no such photo" in stolen.json["error"]["message"]


# -- tasks and verification ------------------------------------------------------------------------
def _fed_back_case(site: Site, cell: tuple[int, int]) -> int:
    """A case walked by the centre and the squadron up to feedback."""
    lon, lat = inside(cell)
    now = datetime.now(SHANGHAI) - timedelta(hours=1)
    street = "320213001" if cell[0] < 2 else "320213002"
    squadron = Actor("handler", "张队员", department_id=site.departments[f"squadron_{street}"])
    with site.engine.begin() as conn:
        workflow = Workflow.load(conn)
        incident = report_incident(conn, source="hotline", class_code="E0102",
                                   reported_at=now, x=lon, y=lat)
        case = workflow.open_case(conn, incident.id, incident.reported_at,
                                  Actor("acceptor", "受理员"))
        steps = [("accept", Actor("acceptor", "刘受理"), ""),
                 ("file", Actor("shift_leader", "陈值班"), ""),
                 ("dispatch", Actor("dispatcher", "周派遣"), ""),
                 ("sign", squadron, ""), ("feedback", squadron, "已清理")]
        for minutes, (action, actor, note) in enumerate(steps, start=1):
            workflow.act(conn, case.id, action, actor, at=now + timedelta(minutes=minutes),
                         note=note)
    return case.id


def test_tasks_show_the_cases_waiting_in_my_grids(site):
    mine = _fed_back_case(site, (0, 3))
    leaders = _fed_back_case(site, (1, 3))
    far = _fed_back_case(site, (2, 3))

    def listed(username: str) -> set[int]:
        page = site.client(username).get("/m/tasks").get_data(as_text=True)
        return {int(i) for i in re.findall(r'data-case="(\d+)"', page)}

    assert listed("worker") == {mine}
    assert listed("leader") == {mine, leaders}
    assert listed("super") == {mine, leaders, far}
    home = site.client("worker").get("/m/").get_data(as_text=True)
    assert re.search(r'id="task-count">1<', home)


def test_verification_through_the_page_endpoint(site):
    mine = _fed_back_case(site, (0, 3))
    far = _fed_back_case(site, (2, 3))
    client = site.client("worker")
    token = csrf(client)

    def verify(case_id: int, **body):
        return client.post(f"/api/mobile/cases/{case_id}/verify", json=body,
                           headers={"X-CSRFToken": token})

    assert verify(mine, result="fail").status_code == 400  # failing needs a note
    refused = verify(far, result="pass")
    assert refused.status_code == 403 and "outside" in refused.json["error"]["message"]
    photo_id = upload(client, jpeg((800, 600))).json["id"]
    lon, lat = inside((0, 3))
    done = verify(mine, result="pass", note="已整改", lon=lon, lat=lat, photo_ids=[photo_id])
    assert done.status_code == 200 and done.json["case"]["state"] == "verified"
    assert verify(mine, result="pass").status_code == 409  # not waiting any more
    with site.engine.connect() as conn:
        event = conn.execute(text(
            "SELECT actor_name, note, photos, ST_X(geom) FROM case_event WHERE case_id = :c "
            "ORDER BY seq DESC LIMIT 1"), {"c": mine}).one()
    assert event[:2] == ("王小明", "已整改") and event[2][0]["photo_id"] == photo_id
    assert event[3] == pytest.approx(lon)


def test_case_page_masks_other_peoples_names(site):
    case_id = _fed_back_case(site, (0, 3))
    page = site.client("worker").get(f"/m/cases/{case_id}").get_data(as_text=True)
    assert "张**" in page and "张队员" not in page and "刘*" in page
    assert 'id="verify-form"' in page and "已清理" in page
    far = _fed_back_case(site, (2, 3))
    assert site.client("worker").get(f"/m/cases/{far}").status_code == 404
    assert site.client("worker").get("/m/cases/999999").status_code == 404


def test_my_report_stays_visible_to_me(site):
    worker = site.client("worker")
    case_id = report(worker).json["case"]["id"]
    page = worker.get(f"/m/cases/{case_id}").get_data(as_text=True)
    assert "王小明" in page  # my own name is not masked
    assert 'id="verify-form"' not in page  # nothing to verify yet
