"""Sign-in, CSRF, tokens, throttling, role checks and the write audit."""

from __future__ import annotations

import re

import pytest
from flask import Blueprint, jsonify
from sqlalchemy import text

from gis.accounts import create_user, issue_token
from webmap import create_app
from webmap.auth import roles_required

PASSWORD = "correct horse 42"
probe = Blueprint("probe", __name__)


@probe.post("/api/probe")
@roles_required("dispatcher")
def probe_write():
    return jsonify(ok=True)


@probe.get("/probe/page")
@roles_required("dispatcher")
def probe_page():
    return "dispatcher page"


@pytest.fixture
def app(fresh_url, fresh_engine):
    with fresh_engine.begin() as conn:
        create_user(conn, "disp", PASSWORD, "dispatcher", display_name="调度员")
        create_user(conn, "viewer", PASSWORD, "viewer")
    app = create_app({"DATABASE_URL": fresh_url, "SECRET_KEY": "test", "TESTING": True})
    app.register_blueprint(probe)
    return app


def _csrf(client, path="/login"):
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page)[1]


def _login(client, username="disp", password=PASSWORD):
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": _csrf(client)})


def test_login_sets_a_hardened_session_cookie(app):
    client = app.test_client()
    response = _login(client)
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


def test_wrong_password_and_missing_csrf(app):
    client = app.test_client()
    response = _login(client, password="wrong password 1")
    assert response.status_code == 401 and "wrong username or password" in response.text
    no_token = client.post("/login", data={"username": "disp", "password": PASSWORD})
    assert no_token.status_code == 400


def test_roles_and_csrf_on_writes(app, fresh_engine):
    client = app.test_client()
    assert client.post("/api/probe").status_code == 400  # no CSRF token: refused first
    anonymous = client.post("/api/probe", headers={"X-CSRFToken": _csrf(client)})
    assert anonymous.status_code == 401 and anonymous.json["error"]["status"] == 401
    assert client.get("/probe/page").status_code == 302  # pages redirect to sign-in
    _login(client)
    token = _csrf(client)
    assert client.post("/api/probe").status_code == 400
    assert client.post("/api/probe", headers={"X-CSRFToken": token}).json == {"ok": True}
    viewer = app.test_client()
    _login(viewer, "viewer")
    refused = viewer.post("/api/probe", headers={"X-CSRFToken": _csrf(viewer)})
    assert refused.status_code == 403 and "viewer" in refused.json["error"]["message"]
    with fresh_engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT username, action, status FROM audit_log ORDER BY id")).all()
    assert ("disp", "login", 302) in rows
    assert ("disp", "probe.probe_write", 200) in rows
    assert ("viewer", "probe.probe_write", 403) in rows


def test_bearer_tokens_need_no_csrf(app, fresh_engine):
    with fresh_engine.begin() as conn:
        user_id = conn.execute(text("SELECT id FROM user_account WHERE username = 'disp'")
                               ).scalar()
        token = issue_token(conn, user_id, "integration")
    client = app.test_client()
    ok = client.post("/api/probe", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    bad = client.post("/api/probe", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401


def test_login_is_throttled(app):
    client = app.test_client()
    token = _csrf(client)
    statuses = [client.post("/login", data={"username": "disp", "password": "x",
                                            "csrf_token": token}).status_code
                for _ in range(12)]
    assert statuses[:10] == [401] * 10 and statuses[-1] == 429


def test_next_is_only_followed_within_the_site(app):
    client = app.test_client()
    token = _csrf(client)
    evil = client.post("/login?next=//evil.example/x", data={
        "username": "disp", "password": PASSWORD, "csrf_token": token})
    assert evil.headers["Location"] == "/"
    client = app.test_client()
    token = _csrf(client)
    good = client.post("/login?next=/probe/page", data={
        "username": "disp", "password": PASSWORD, "csrf_token": token})
    assert good.headers["Location"] == "/probe/page"
