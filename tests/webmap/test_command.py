"""The command centre pages: roles, the case queue, actions through the workflow, the
dashboard and its exports, against a real PostGIS with the small test hierarchy."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from gis.accounts import create_user
from gis.boundaries import activate, create_generation
from gis.catalogues import load_classes
from gis.deadlines import load_rules
from gis.workflow import Workflow, allowed_actions
from tests.casekit import new_case, run_to
from tests.factories import small_hierarchy, small_organisation
from webmap import create_app
from webmap.command import available_actions

PASSWORD = "correct horse 42"
LEADER_GRID = "320213001001001"
LEADER = ("王小明", "13812345678")
ROLES = ("acceptor", "shift_leader", "dispatcher", "supervisor", "viewer", "grid_worker",
         "handler", "admin")


@dataclass
class World:
    url: str
    engine: object
    departments: dict[str, int]
    cases: dict[str, int]  # state → a case in that state


def populate(url: str, engine) -> World:
    """Boundaries, catalogues, departments, one user per role, a grid leader and cases in
    several states (reported 2019-05-10, so all are overdue now)."""
    load_classes(engine)
    load_rules(engine)
    activate(engine, create_generation(engine, small_hierarchy(), name="g"))
    with engine.begin() as conn:
        departments = small_organisation(conn)
        workflow = Workflow.load(conn)
        staff = conn.execute(text(
            "INSERT INTO staff (code, name, post, phone) VALUES ('S1', :n, 'grid_leader', :p) "
            "RETURNING id"), {"n": LEADER[0], "p": LEADER[1]}).scalar_one()
        conn.execute(text("INSERT INTO staff_grid VALUES (:s, :g, 'leader')"),
                     {"s": staff, "g": LEADER_GRID})
        for role in ROLES:
            create_user(conn, role, PASSWORD, role, display_name=f"{role}-user",
                        staff_id=staff if role == "grid_worker" else None,
                        department_id=departments["squadron_320213001"]
                        if role == "handler" else None,
                        locale="en" if role == "viewer" else "zh_CN")
    cases = {}
    for state, last, cell in (("reported", None, (0, 3)), ("accepted", "accept", (0, 3)),
                              ("filed", "file", (2, 3)), ("fed_back", "feedback", (1, 3)),
                              ("verified", "verify_pass", (1, 2)),
                              ("evaluated", "evaluate", (0, 2))):
        case = new_case(engine, workflow, cell=cell)
        if last:
            case, _ = run_to(engine, workflow, departments, case, last)
        assert case.state == state
        cases[state] = case.id
    return World(url, engine, departments, cases)


@pytest.fixture(scope="module")
def world(database_factory, template_name) -> World:
    """A read-only world shared by the tests that do not act."""
    from gis.database import get_engine

    url = database_factory.create("command_ro", template=template_name)
    yield populate(url, get_engine(url))
    database_factory.drop(url)


@pytest.fixture
def rw_world(fresh_url, fresh_engine) -> World:
    """A world of its own for a test that changes cases."""
    return populate(fresh_url, fresh_engine)


def make_app(world: World):
    return create_app({"DATABASE_URL": world.url, "SECRET_KEY": "test", "TESTING": True,
                       "RATELIMIT_ENABLED": False})


@pytest.fixture(scope="module")
def app(world):
    return make_app(world)


def csrf_token(client, path: str = "/login") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page)[1]


def signed_in(app, role: str):
    client = app.test_client()
    response = client.post("/login", data={"username": role, "password": PASSWORD,
                                           "csrf_token": csrf_token(client)})
    assert response.status_code == 302, response.text
    return client


def shown_actions(page: str) -> set[str]:
    return set(re.findall(r'<input type="hidden" name="action" value="([a-z_]+)">', page))


# -- roles ----------------------------------------------------------------------------------------
PAGES = ("/command/map", "/command/cases", "/command/dashboard", "/command/dashboard.csv",
         "/command/dashboard.xlsx", "/command/map/points.json?layer=cases")


@pytest.mark.parametrize("role", ["acceptor", "shift_leader", "dispatcher", "supervisor",
                                  "viewer", "admin"])
def test_centre_roles_open_every_page(app, world, role):
    client = signed_in(app, role)
    for path in (*PAGES, f"/command/cases/{world.cases['filed']}"):
        response = client.get(path)
        assert response.status_code == 200, (role, path, response.text[:300])


@pytest.mark.parametrize("role", ["grid_worker", "handler"])
def test_field_roles_cannot_open_the_command_centre(app, world, role):
    client = signed_in(app, role)
    for path in (*PAGES, f"/command/cases/{world.cases['filed']}"):
        assert client.get(path).status_code == 403, path
    token = csrf_token(client)
    refused = client.post(f"/command/cases/{world.cases['filed']}/act",
                          data={"action": "dispatch", "csrf_token": token})
    assert refused.status_code == 403


def test_signed_out_visitors_are_sent_to_sign_in(app):
    response = app.test_client().get("/command/cases")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    api = app.test_client().get("/command/map/points.json",
                                headers={"Accept": "application/json"})
    assert api.status_code == 401


# -- the queue ------------------------------------------------------------------------------------
def test_queue_lists_filters_and_sorts(app, world):
    client = signed_in(app, "dispatcher")
    page = client.get("/command/cases").text
    assert all(f"/command/cases/{case_id}\"" in page for case_id in world.cases.values())
    filed = client.get("/command/cases?state=filed").text
    assert f"/command/cases/{world.cases['filed']}\"" in filed
    assert f"/command/cases/{world.cases['reported']}\"" not in filed
    east = client.get("/command/cases?unit=320213002").text  # the filed case is east
    assert f"/command/cases/{world.cases['filed']}\"" in east
    assert f"/command/cases/{world.cases['evaluated']}\"" not in east
    by_state = client.get("/command/cases?sort=state&dir=asc").text
    numbers = re.findall(r'href="/command/cases/(\d+)"', by_state)
    assert len(numbers) == len(world.cases)
    assert client.get("/command/cases?period=2019-13").status_code == 400
    assert client.get("/command/cases?unit=abc").status_code == 400


def test_queue_pages(app, world, monkeypatch):
    monkeypatch.setattr("webmap.command.PER_PAGE", 2)
    client = signed_in(app, "viewer")
    first = client.get("/command/cases").text
    assert len(re.findall(r'data-case="\d+"', first)) == 2 and 'rel="next"' in first
    pages = -(-len(world.cases) // 2)
    last = client.get(f"/command/cases?page={pages}").text
    assert len(re.findall(r'data-case="\d+"', last)) == len(world.cases) - 2 * (pages - 1)
    assert 'rel="next"' not in last


def test_map_points_are_geojson_with_links(app, world):
    client = signed_in(app, "viewer")
    cases = client.get("/command/map/points.json?layer=cases&state=filed").json
    assert [f["properties"]["id"] for f in cases["features"]] == [world.cases["filed"]]
    assert cases["features"][0]["properties"]["url"] == f"/command/cases/{world.cases['filed']}"
    incidents = client.get("/command/map/points.json?layer=incidents&source=grid_worker").json
    assert len(incidents["features"]) == len(world.cases)
    assert client.get("/command/map/points.json?layer=nope").status_code == 400


def test_map_page_links_units_to_the_queue_and_needs_no_cdn(app):
    page = signed_in(app, "viewer").get("/command/map?layer=cases&layer=incidents").text
    assert "/assets/leaflet/leaflet.js" in page and "/static/webmap/command.js" in page
    assert not re.search(r"""<(?:script[^>]*\ssrc|link[^>]*\shref)\s*=\s*["']?(?:https?:)?//""",
                         page)
    assert '"casesUrl": "/command/cases"' in page or '"casesUrl":"/command/cases"' in page


# -- the case page and its actions ----------------------------------------------------------------
@pytest.mark.parametrize("role", ["acceptor", "shift_leader", "dispatcher", "supervisor",
                                  "viewer"])
@pytest.mark.parametrize("state", ["reported", "accepted", "filed", "fed_back", "verified",
                                   "evaluated"])
def test_forms_shown_are_the_allowed_actions(app, world, role, state):
    page = signed_in(app, role).get(f"/command/cases/{world.cases[state]}").text
    assert shown_actions(page) == set(allowed_actions(state, role))


def test_extension_decisions_only_while_one_is_pending(world):
    from datetime import UTC, datetime

    from gis.accounts import User
    from gis.command_centre import get_case

    with world.engine.connect() as conn:
        case = get_case(conn, world.cases["filed"], now=datetime.now(UTC))
    leader = User(1, "s", "s", "shift_leader", None, None, "zh_CN")
    dispatched = case.__class__(**{**case.__dict__, "state": "dispatched"})
    assert "approve_extension" not in available_actions(leader, dispatched)
    pending = case.__class__(**{**dispatched.__dict__, "extension_pending": True})
    assert {"approve_extension", "refuse_extension"} <= set(available_actions(leader, pending))


def test_case_page_shows_trail_route_and_duplicates(app, world):
    page = signed_in(app, "dispatcher").get(f"/command/cases/{world.cases['filed']}").text
    assert "办理轨迹" in page and "受理" in page and "立案" in page  # the trail, in Chinese
    assert "320213002中队" in page  # the route: the squadron of the case's street
    assert re.search(r'<option value="(\d+)" selected>综合行政执法局</option>', page)
    accepted = signed_in(app, "acceptor").get(f"/command/cases/{world.cases['accepted']}").text
    assert f'/command/cases/{world.cases["reported"]}"' in accepted  # same class and place


def test_dispatch_by_form_applies_the_transition(rw_world):
    app = make_app(rw_world)
    client = signed_in(app, "dispatcher")
    case_id = rw_world.cases["filed"]
    token = csrf_token(client, f"/command/cases/{case_id}")
    response = client.post(f"/command/cases/{case_id}/act", data={
        "action": "dispatch", "department_id": str(rw_world.departments["caeb"]), "note": "",
        "csrf_token": token})
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).text
    assert "已完成：派遣。" in page and "已派遣" in page
    with rw_world.engine.connect() as conn:
        state, handler = conn.execute(text(
            "SELECT state, handler_id FROM case_file WHERE id = :id"), {"id": case_id}).one()
        audited = conn.execute(text(
            "SELECT username FROM audit_log WHERE action = 'command.act'")).scalars().all()
    assert state == "dispatched" and handler == rw_world.departments["squadron_320213002"]
    assert audited == ["dispatcher"]


def test_refusals_are_explained_in_the_users_language(rw_world):
    app = make_app(rw_world)
    client = signed_in(app, "dispatcher")
    case_id = rw_world.cases["verified"]
    token = csrf_token(client, f"/command/cases/{case_id}")
    closing = client.post(f"/command/cases/{case_id}/act",
                          data={"action": "close", "csrf_token": token})
    assert closing.status_code == 403
    assert "您的角色（派遣员）不能“结案”。" in closing.text
    leader = signed_in(app, "shift_leader")
    token = csrf_token(leader, f"/command/cases/{rw_world.cases['reported']}")
    no_note = leader.post(f"/command/cases/{rw_world.cases['reported']}/act",
                          data={"action": "reject", "csrf_token": token})
    assert no_note.status_code == 400 and "请填写原因。" in no_note.text
    late = leader.post(f"/command/cases/{rw_world.cases['evaluated']}/act",
                       data={"action": "close", "csrf_token": token})
    assert late.status_code == 409 and "该案件当前为“已评价”，无法“结案”。" in late.text


def test_post_without_csrf_is_refused(rw_world):
    app = make_app(rw_world)
    client = signed_in(app, "dispatcher")
    case_id = rw_world.cases["filed"]
    response = client.post(f"/command/cases/{case_id}/act", data={"action": "dispatch"})
    assert response.status_code == 400
    with rw_world.engine.connect() as conn:
        state = conn.execute(text("SELECT state FROM case_file WHERE id = :id"),
                             {"id": case_id}).scalar()
    assert state == "filed"


def test_viewer_reads_but_cannot_act(rw_world):
    app = make_app(rw_world)
    client = signed_in(app, "viewer")
    case_id = rw_world.cases["filed"]
    page = client.get(f"/command/cases/{case_id}").text
    assert shown_actions(page) == set()
    token = csrf_token(client, f"/command/cases/{case_id}")
    response = client.post(f"/command/cases/{case_id}/act",
                           data={"action": "dispatch", "csrf_token": token})
    assert response.status_code == 403


def test_shift_leader_walks_the_other_forms(rw_world):
    app = make_app(rw_world)
    client = signed_in(app, "shift_leader")
    token = csrf_token(client)

    def post(state: str, **data) -> int:
        case_id = rw_world.cases[state]
        return client.post(f"/command/cases/{case_id}/act",
                           data={"csrf_token": token, **data}).status_code

    assert post("accepted", action="mark_duplicate",
                duplicate_of=str(rw_world.cases["reported"])) == 303
    assert post("verified", action="close") == 303
    assert post("verified", action="evaluate", score="abc") == 400
    assert post("verified", action="evaluate", score="88") == 303
    assert post("filed", action="copy_to", department_id=str(rw_world.departments["msb"]),
                reason="市场") == 303
    assert post("filed", action="supervise", note="加快") == 303
    with rw_world.engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT id, state FROM case_file")).all())
        copies = conn.execute(text("SELECT count(*) FROM case_copy")).scalar()
    assert rows[rw_world.cases["accepted"]] == "duplicate"
    assert rows[rw_world.cases["verified"]] == "evaluated"
    assert copies >= 1


# -- dashboard and exports ------------------------------------------------------------------------
def test_dashboard_shows_indicators_charts_and_summary(app):
    client = signed_in(app, "viewer")  # the viewer's setting is English
    page = client.get("/command/dashboard?level=street&period=2019").text
    assert "Indicators per unit" in page and "街道1" in page and "街道2" in page
    assert page.count("<svg") == 2 and "On-time closure rate per street, 2019" in page
    assert 'class="pass"' in page or 'class="fail"' in page
    assert "Case summary" in page
    compared = client.get("/command/dashboard?level=street&period=2019&compare=2018").text
    assert "Comparison: 2018 → 2019" in compared
    grid = client.get("/command/dashboard?level=grid&period=2019").text
    assert "王**" in grid and "138****5678" in grid and LEADER[1] not in grid
    assert client.get("/command/dashboard?level=planet").status_code == 400
    assert client.get("/command/dashboard?sort=nope").status_code == 400


def test_dashboard_sorts_by_any_column(app):
    client = signed_in(app, "acceptor")
    ascending = client.get("/command/dashboard?level=grid&period=2019&sort=code&dir=asc").text
    descending = client.get("/command/dashboard?level=grid&period=2019&sort=code&dir=desc").text
    codes = re.findall(r"<td>(3202130\d{8})</td>", ascending)
    assert codes == sorted(codes) and len(codes) == 16
    assert re.findall(r"<td>(3202130\d{8})</td>", descending) == codes[::-1]
    east = client.get("/command/dashboard?level=grid&period=2019&within=320213002").text
    assert re.findall(r"<td>(3202130\d{8})</td>", east) == [c for c in codes
                                                          if c.startswith("320213002")]
    assert client.get("/command/dashboard?within=x").status_code == 400


def test_csv_export_is_localised_masked_and_excel_friendly(app):
    zh = signed_in(app, "acceptor").get("/command/dashboard.csv?level=grid&period=2019")
    assert zh.mimetype == "text/csv" and "attachment" in zh.headers["Content-Disposition"]
    assert zh.data.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads UTF-8
    rows = list(csv.reader(io.StringIO(zh.data.decode("utf-8-sig"))))
    header = rows[0]
    assert header[:3] == ["代码", "名称", "上报数"] and "按期结案率 (%)" in header
    assert header[-2:] == ["网格长", "电话"]
    leader = next(r for r in rows[1:] if r[0] == LEADER_GRID)
    assert leader[-2:] == ["王**", "138****5678"]
    assert LEADER[0] not in zh.data.decode("utf-8-sig")
    en = signed_in(app, "viewer").get("/command/dashboard.csv?level=street&period=2019")
    header = next(csv.reader(io.StringIO(en.data.decode("utf-8-sig"))))
    assert header[:3] == ["Code", "Name", "Reports"] and "On-time closure rate (%)" in header


def test_xlsx_export_opens_with_openpyxl(app):
    response = signed_in(app, "viewer").get("/command/dashboard.xlsx?level=grid&period=2019")
    assert response.mimetype.endswith("spreadsheetml.sheet")
    sheet = load_workbook(io.BytesIO(response.data)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("Code", "Name", "Reports") and rows[0][-2:] == ("Grid leader", "Phone")
    assert len(rows) == 1 + 16
    leader = next(r for r in rows[1:] if r[0] == LEADER_GRID)
    assert leader[-2:] == ("王**", "138****5678")
    rate_column = rows[0].index("On-time closure rate")
    assert sheet.cell(row=2, column=rate_column + 1).number_format == "0.00%"



def test_trail_photos_become_thumbnails(app, world):
    from webmap.command import _photo_url

    with app.test_request_context():
        assert _photo_url({"id": 7}) == "/photos/7"
        assert _photo_url({"url": "/photos/8"}) == "/photos/8"
        assert _photo_url({"id": "p1"}) is None  # not a stored photo: shown as a label
    page = signed_in(app, "supervisor").get(f"/command/cases/{world.cases['fed_back']}").text
    assert '<span class="tag">照片</span>' in page  # the feedback's photo {"id": "p1"}
