"""Indicator heat maps: classification, colours, legends, no data, change, AMap shift, heat
points, the ``gridgov heatmap`` command and the ``/maps/indicator`` page (for the roles that
may read the command centre's dashboard).

Builder tests use the small test hierarchy with made-up values; the rest a database with a few
cases in April and May 2019 (see :func:`seed_cases`).
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import folium
import mapclassify
import numpy as np
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner
from sqlalchemy import text

from app import create_app
from etl.cli import main
from gis.accounts import GRID_ROLES, create_user, issue_token
from gis.boundaries import activate, create_generation, read_generation
from gis.case_summary import default_period
from gis.catalogues import load_classes
from gis.crs import wgs84_to_gcj02
from gis.database import get_engine
from gis.deadlines import load_rules
from gis.incident_heat import heat_points as load_heat_points
from gis.incidents import report_incident
from gis.indicators import INDICATORS
from gis.periods import parse_period
from gis.workflow import ROLES, Actor, Workflow
from tests.casekit import handler, new_case
from tests.factories import lattice, small_hierarchy, small_organisation
from tests.webmap.test_command import PASSWORD, signed_in
from webmap.api_cases import DISTRICT_ROLES
from webmap.command import READ_ROLES
from webmap.heatmaps import (
    BLUES,
    NO_CHANGE,
    NO_DATA,
    REDS,
    SCHEMES,
    SPECS,
    YL_OR_RD,
    MapOptions,
    build_indicator_map,
    classify,
    format_change,
    format_value,
    indicator_map,
    options_from,
    shade,
    shade_change,
)
from webmap.maps import check_offline, render_standalone

CST = ZoneInfo("Asia/Shanghai")
MAY, APRIL = parse_period("2019-05"), parse_period("2019-04")
G1, G2, G4 = "320213001001001", "320213001001002", "320213001001004"


# -- data -----------------------------------------------------------------------------------------
def _walk(engine, workflow, case, crew, start, *, close_late=False, stop_after_dispatch=False):
    """accept → file → dispatch (→ sign → feedback → verify → close), minutes apart; a late
    closure waits two days (the closure deadline is one working day after filing)."""
    at = start
    steps = [("accept", Actor("acceptor", "a"), {}), ("file", Actor("shift_leader", "s"), {}),
             ("dispatch", Actor("dispatcher", "d"), {})]
    if not stop_after_dispatch:
        steps += [("sign", crew, {}), ("feedback", crew, {"note": "ok"}),
                  ("verify_pass", Actor("supervisor", "v"), {}),
                  ("close", Actor("shift_leader", "s"), {})]
    for action, actor, kwargs in steps:
        at += timedelta(days=2) if close_late and action == "close" else timedelta(minutes=10)
        with engine.begin() as conn:
            workflow.act(conn, case.id, action, actor, at=at, **kwargs)


def seed_cases(url: str) -> None:
    """The small hierarchy with cases (all E0102, reported by grid workers):

    May 2019: G1 closed on time, G2 closed late, G4 dispatched and left open (overdue);
    April 2019: G1 closed late, G2 closed on time. Plus two hotline reports of E0708 in May
    (no case) in the east street, for the heat layer's filters. And one account per role,
    named after it, with the password ``PASSWORD``.
    """
    engine = get_engine(url)
    load_classes(engine)
    load_rules(engine)
    activate(engine, create_generation(engine, small_hierarchy(), name="small"))
    with engine.begin() as conn:
        departments = small_organisation(conn)
        crew = handler(departments)
        workflow = Workflow.load(conn)
        staff = conn.execute(text("INSERT INTO staff (code, name, post) VALUES "
                                  "('W1', '王小明', 'grid_worker') RETURNING id")).scalar_one()
        for role in ROLES:
            create_user(conn, role, PASSWORD, role,
                        staff_id=staff if role in GRID_ROLES else None,
                        department_id=crew.department_id if role == "handler" else None)
    monday_may, monday_april = (datetime(2019, m, d, 9, tzinfo=CST) for m, d in ((5, 6), (4, 8)))
    plan = [(monday_may, (0, 3), {}), (monday_may, (1, 3), {"close_late": True}),
            (monday_may, (1, 2), {"stop_after_dispatch": True}),
            (monday_april, (0, 3), {"close_late": True}), (monday_april, (1, 3), {})]
    for start, cell, how in plan:
        case = new_case(engine, workflow, at=start, cell=cell)
        _walk(engine, workflow, case, crew, start, **how)
    for cell in ((2, 1), (3, 0)):
        x, y = lattice(*cell)
        report_incident(engine, source="hotline", class_code="E0708", x=x + 0.002, y=y + 0.002,
                        reported_at=monday_may + timedelta(days=3))


@pytest.fixture(scope="module")
def cases_url(database_factory, template_name):
    url = database_factory.create("webmap_heat", template=template_name)
    seed_cases(url)
    yield url
    database_factory.drop(url)


@pytest.fixture(scope="module")
def db_levels(cases_url):
    return read_generation(get_engine(cases_url))


@pytest.fixture(scope="module")
def levels():
    """The small hierarchy as read_generation would give it (no database needed)."""
    return small_hierarchy()


def made_up(levels, indicator: str, values_by_level: dict[str, list[float]]) -> dict:
    """Indicator frames with every indicator 0 except ``indicator``, given per unit."""
    frames = {}
    for level, values in values_by_level.items():
        codes = levels[level]["code"].astype(str)
        frame = pd.DataFrame(0.0, index=pd.Index(codes, name="code"), columns=list(INDICATORS))
        frame[indicator] = values
        frames[level] = frame
    return frames


GRID_VALUES = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 15.0,
               math.nan, math.nan]
STREET_VALUES = [0.2, 0.9]
COMMUNITY_VALUES = [0.1, 0.4, 0.6, math.nan]


def _values(levels, indicator="occurrence_per_km2_month"):
    return made_up(levels, indicator, {"street": STREET_VALUES, "community": COMMUNITY_VALUES,
                                       "grid": GRID_VALUES})


def _layers(fmap: folium.Map) -> dict[str, folium.GeoJson]:
    return {c.layer_name: c for c in fmap._children.values() if isinstance(c, folium.GeoJson)}


def _fill(layer: folium.GeoJson, code: str) -> str:
    feature = next(f for f in layer.data["features"] if f["id"] == code)
    return layer.style_function(feature)["fillColor"]


# -- formatting and classification ----------------------------------------------------------------
def test_every_indicator_has_a_label_and_direction():
    assert set(SPECS) == set(INDICATORS)
    assert SPECS["on_time_closure_rate"].higher_is_worse is False
    assert SPECS["occurrence_per_km2_month"].higher_is_worse is True


def test_values_are_formatted_as_people_read_them():
    assert format_value("on_time_closure_rate", 0.7582) == "75.82%"
    assert format_value("filed", 1234.0) == "1,234"
    assert format_value("occurrence_per_km2_month", 3.456) == "3.46"
    assert format_value("score", 87.25) == "87.2"
    assert format_value("passed", 1.0) == "达标" and format_value("passed", 0.0) == "未达标"
    assert format_value("closure_rate", math.nan) == "无数据"
    assert format_change("closure_rate", -0.032) == "-3.20 个百分点"
    assert format_change("filed", 2.0) == "+2"


@pytest.mark.filterwarnings("ignore:Numba not installed")
@pytest.mark.parametrize("scheme, classifier", [
    ("quantiles", mapclassify.Quantiles), ("equal_interval", mapclassify.EqualInterval),
    ("fisher_jenks", mapclassify.FisherJenks), ("natural_breaks", mapclassify.NaturalBreaks)])
def test_classes_are_mapclassify_s(scheme, classifier):
    rng = np.random.default_rng(7)
    values = rng.gamma(2.0, 1.5, 120)
    values[[3, 50]] = np.nan
    finite = values[np.isfinite(values)]
    np.random.seed(0)  # the seed classify uses for the k-means starts of natural breaks
    expected = classifier(finite, k=5)
    got = classify(values, scheme, 5)
    assert np.allclose(got.bins, expected.bins)
    assert np.array_equal(got.yb[np.isfinite(values)], expected.yb)
    assert list(got.yb[[3, 50]]) == [-1, -1]


def test_natural_breaks_are_reproducible():
    values = np.random.default_rng(3).lognormal(0, 1, 400)
    assert classify(values, "natural_breaks").bins == classify(values, "natural_breaks").bins


def test_few_distinct_values_each_get_a_class():
    got = classify([1.0, 1.0, 2.0, math.nan], "fisher_jenks", 5)
    assert got.bins == (1.0, 2.0) and list(got.yb) == [0, 0, 1, -1]
    single = shade([0.5, 0.5], "closure_rate", "equal_interval", 5)
    assert single.colours[0] == single.colours[1] and len(single.rows) == 1


def test_all_missing_values_leave_every_unit_without_data():
    got = classify([math.nan, math.nan], "quantiles", 5)
    assert got.k == 0 and list(got.yb) == [-1, -1]
    shading = shade([math.nan, math.nan], "closure_rate")
    assert shading.colours == [None, None] and shading.rows == []


def test_worse_is_red_for_bad_and_good_indicators():
    values = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    bad = shade(values, "rework_rate", "quantiles", 5)  # more rework is worse
    good = shade(values, "on_time_closure_rate", "quantiles", 5)  # more on time is better
    darkest, palest = YL_OR_RD[-1], YL_OR_RD[1]
    assert bad.colours[-1] == darkest and bad.colours[0] == palest
    assert good.colours[0] == darkest and good.colours[-1] == palest
    assert bad.rows[0][0] == darkest and good.rows[0][0] == darkest  # legends: worst first


def test_change_palette_is_centred_on_zero_and_red_where_worse():
    change = np.array([-0.5, -0.1, 0.0, 0.1, 0.5, math.nan])
    up_worse = shade_change(change, "rework_rate")  # a rise of rework is worse
    assert up_worse.colours[2] == NO_CHANGE and up_worse.colours[5] is None
    assert up_worse.colours[4] in REDS and up_worse.colours[0] in BLUES
    up_better = shade_change(change, "on_time_closure_rate")
    assert up_better.colours[4] in BLUES and up_better.colours[0] in REDS
    assert up_better.colours[0] == up_worse.colours[4]  # the same size of change
    magnitudes = classify(np.abs(change[[0, 1, 3, 4]]), "quantiles", 3)
    assert up_worse.breaks == magnitudes.bins


# -- the map --------------------------------------------------------------------------------------
def test_each_level_is_a_switchable_layer_with_the_chosen_one_shown(levels):
    options = MapOptions(period=MAY, level="grid")
    fmap = build_indicator_map(levels, _values(levels), options)
    layers = _layers(fmap)
    assert list(layers) == ["街道", "社区", "网格"]
    assert [layer.overlay for layer in layers.values()] == [False] * 3  # radio buttons
    assert [layer.show for layer in layers.values()] == [False, False, True]
    assert [len(layer.data["features"]) for layer in layers.values()] == [2, 4, 16]
    assert any(isinstance(c, folium.LayerControl) for c in fmap._children.values())
    assert fmap.options["prefer_canvas"] is True
    page = render_standalone(fmap)
    legends = re.findall(r'<div class="gridgov-legend gridgov-heat-legend" data-layer="(\S+)" '
                         r'style="([^"]*)"', page)
    assert legends == [("街道", "display:none;"), ("社区", "display:none;"), ("网格", "")]
    assert '.on("baselayerchange"' in page


def test_legend_shows_the_scheme_and_the_breaks(levels):
    options = MapOptions(period=MAY, level="grid", scheme="equal_interval", k=5)
    page = render_standalone(build_indicator_map(levels, _values(levels), options))
    expected = mapclassify.EqualInterval(np.array(GRID_VALUES[:14]), k=5).bins
    breaks = "、".join(f"{b:.2f}" for b in expected)
    assert f"分级：{SCHEMES['equal_interval']}，5 级；断点：{breaks}" in page
    assert "0.00 – 3.00" in page  # the first class, from the smallest value


def test_units_without_data_are_grey_with_no_data_in_the_tooltip(levels):
    options = MapOptions(period=MAY, level="grid", indicator="on_time_closure_rate")
    values = _values(levels, "on_time_closure_rate")
    grid = _layers(build_indicator_map(levels, values, options))["网格"]
    missing = [f for f in grid.data["features"] if f["id"].endswith(("015", "016"))]
    (tooltip,) = [c for c in grid._children.values() if isinstance(c, folium.GeoJsonTooltip)]
    field = tooltip.fields[2]
    assert tooltip.aliases[2] == "按期结案率"
    for feature in missing:
        assert feature["properties"][field] == "无数据"
        style = grid.style_function(feature)
        assert style["fillColor"] == NO_DATA and style["dashArray"]
    present = grid.data["features"][1]["properties"][field]
    assert present == "50.00%"


def test_popups_carry_name_code_and_labelled_indicators(levels):
    fmap = build_indicator_map(levels, _values(levels), MapOptions(period=MAY, level="street"))
    street = _layers(fmap)["街道"]
    (popup,) = [c for c in street._children.values() if isinstance(c, folium.GeoJsonPopup)]
    assert popup.aliases[:3] == ["名称", "代码", "上级"]
    assert {"问题发生率（件/km²·月）", "按期结案率", "返工率", "考核达标"} <= set(popup.aliases)
    props = street.data["features"][0]["properties"]
    assert props["n"] == "街道1" and props["c"] == "320213001" and props["p"] == "测试区 320213"


def test_grid_geometry_is_light(levels):
    grid = _layers(build_indicator_map(levels, _values(levels),
                                       MapOptions(period=MAY, level="grid")))["网格"]
    coords = shapely.get_coordinates(shapely.from_geojson(
        [json.dumps(f["geometry"]) for f in grid.data["features"]]))
    assert np.array_equal(coords, np.round(coords, 6))


def test_amap_base_shifts_layers_and_heat_to_gcj02(levels):
    points = np.array([[31.5725, 120.3125, 3.0]])
    plain = build_indicator_map(levels, _values(levels), MapOptions(period=MAY),
                                heat_points=points)
    amap = build_indicator_map(levels, _values(levels), MapOptions(period=MAY, base="amap"),
                               heat_points=points)
    before = _layers(plain)["社区"].data["features"][0]["geometry"]["coordinates"][0][0][0]
    after = _layers(amap)["社区"].data["features"][0]["geometry"]["coordinates"][0][0][0]
    lon, lat = wgs84_to_gcj02(before[0], before[1])
    assert after == pytest.approx([float(lon), float(lat)], abs=1e-6)
    assert 0.003 < after[0] - before[0] < 0.006 and -0.004 < after[1] - before[1] < 0  # Wuxi
    page = render_standalone(amap)
    assert f"[{after[0]},{after[1]}]" in page and "webrd0{s}.is.autonavi.com" in page
    heat = next(c for c in amap._children.values() if isinstance(c, folium.plugins.HeatMap))
    hlon, hlat = wgs84_to_gcj02(120.3125, 31.5725)
    assert heat.data[0][:2] == pytest.approx([float(hlat), float(hlon)], abs=1e-5)


def test_no_base_map_unless_asked(levels):
    fmap = build_indicator_map(levels, _values(levels), MapOptions(period=MAY))
    assert not [c for c in fmap._children.values() if isinstance(c, folium.TileLayer)]
    osm = build_indicator_map(levels, _values(levels), MapOptions(period=MAY, base="osm"))
    (tiles,) = [c for c in osm._children.values() if isinstance(c, folium.TileLayer)]
    assert "openstreetmap" in tiles.tiles


@pytest.mark.parametrize("given, message", [
    ({"indicator": "happiness"}, "indicator"), ({"level": "province"}, "level"),
    ({"period": "2019-13"}, "period"), ({"scheme": "jenks"}, "scheme"), ({"k": "12"}, "k"),
    ({"k": "x"}, "k"), ({"base": "google"}, "base"), ({"source": "rumour"}, "source"),
    ({"class": "E01;--"}, "class"), ({"heat": "maybe"}, "yes/no")])
def test_bad_options_are_refused(given, message):
    with pytest.raises(ValueError, match=message):
        options_from(given, MAY)


def test_options_defaults():
    options = options_from({}, MAY)
    assert (options.indicator, options.level, options.scheme, options.k, options.base) == (
        "occurrence_per_km2_month", "community", "quantiles", 5, "none")
    assert options.period == MAY and options.compare is None
    assert options_from({"only": "1", "level": "grid"}, MAY).levels == ("grid",)


# -- from the database ----------------------------------------------------------------------------
def test_default_period_is_the_last_complete_year_with_cases(cases_url):
    with get_engine(cases_url).connect() as conn:
        assert default_period(conn, datetime(2021, 3, 1, tzinfo=CST)).label == "2019"
        assert default_period(conn, datetime(2019, 7, 1, tzinfo=CST)).label == "2019"


def test_indicator_map_from_the_database(cases_url, db_levels):
    options = MapOptions(period=MAY, level="grid", indicator="on_time_closure_rate")
    grid = _layers(indicator_map(get_engine(cases_url), options, db_levels))["网格"]
    rate = {f["id"]: f["properties"]["i0"] for f in grid.data["features"]}
    assert (rate[G1], rate[G2], rate[G4]) == ("100.00%", "0.00%", "0.00%")
    assert sum(v == "无数据" for v in rate.values()) == 13
    assert _fill(grid, G1) == YL_OR_RD[1] and _fill(grid, G2) == YL_OR_RD[-1]  # late is red


def test_change_map_values_are_after_minus_before(cases_url, db_levels):
    options = MapOptions(period=MAY, compare=APRIL, level="grid",
                         indicator="on_time_closure_rate")
    fmap = indicator_map(get_engine(cases_url), options, db_levels)
    grid = _layers(fmap)["网格"]
    props = {f["id"]: f["properties"] for f in grid.data["features"]}
    assert (props[G1]["b"], props[G1]["a"], props[G1]["d"]) == (
        "0.00%", "100.00%", "+100.00 个百分点")
    assert (props[G2]["b"], props[G2]["a"], props[G2]["d"]) == (
        "100.00%", "0.00%", "-100.00 个百分点")
    assert props[G4]["d"] == "无数据"  # no case in April: nothing to compare
    assert _fill(grid, G1) in BLUES and _fill(grid, G2) in REDS  # fewer on time: worse, red
    assert options.title == "按期结案率变化 · 2019-04 → 2019-05"


def test_heat_points_are_filtered_by_period_class_and_source(cases_url):
    with get_engine(cases_url).connect() as conn:
        may = load_heat_points(conn, MAY)
        hotline = load_heat_points(conn, MAY, source="hotline")
        e07 = load_heat_points(conn, MAY, class_code="E07")
        e0102 = load_heat_points(conn, MAY, class_code="E0102", source="grid_worker")
        april = load_heat_points(conn, APRIL)
    assert may[:, 2].sum() == 5 and hotline[:, 2].sum() == 2 and e07[:, 2].sum() == 2
    assert e0102[:, 2].sum() == 3 and april[:, 2].sum() == 2
    assert np.array_equal(may[:, :2], np.round(may[:, :2], 4))


def test_cli_writes_a_standalone_page(cases_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", cases_url)
    out = tmp_path / "map.html"
    result = CliRunner().invoke(main, ["heatmap", "--period", "2019-05", "--level", "grid",
                                       "--indicator", "on_time_closure_rate", "-o", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    check_offline(page)
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=", page)
    assert page.count("L.geoJson(") == 3 and "L.heatLayer(" in page
    assert '"街道"' in page and '"网格"' in page and "事件热力" in page
    assert "<title>按期结案率 · 2019-05</title>" in page


def test_cli_defaults_and_bad_input(cases_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", cases_url)
    out = tmp_path / "default.html"
    result = CliRunner().invoke(main, ["heatmap", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "问题发生率（件/km²·月） · 2019" in result.output  # last complete year with cases
    bad = CliRunner().invoke(main, ["heatmap", "--indicator", "nope", "-o", str(out)])
    assert bad.exit_code == 2 and "indicator" in bad.output


@pytest.fixture(scope="module")
def app(cases_url):
    return create_app({"DATABASE_URL": cases_url, "SECRET_KEY": "test", "TESTING": True,
                       "RATELIMIT_ENABLED": False})


@pytest.fixture(scope="module")
def client(app):
    """A dispatcher, signed in."""
    return signed_in(app, "dispatcher")


MAP_URL = "/maps/indicator?indicator=on_time_closure_rate&level=grid&period=2019-05"
#: who may open the map: whoever may read the dashboard and /api/indicators
MAP_ROLES = frozenset({*READ_ROLES, "admin"})


def test_the_map_is_for_the_dashboard_and_indicator_api_roles():
    assert frozenset(DISTRICT_ROLES) == MAP_ROLES
    assert {"grid_worker", "grid_leader", "handler"}.isdisjoint(MAP_ROLES)


def test_anonymous_visitors_are_sent_to_sign_in(app):
    client = app.test_client()
    response = client.get(MAP_URL)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    assert "maps/indicator" in response.headers["Location"]
    assert "L.geoJson(" not in response.get_data(as_text=True)
    api = client.get(MAP_URL, headers={"Accept": "application/json"})
    assert api.status_code == 401 and api.get_json()["error"]["status"] == 401
    bad_token = client.get(MAP_URL, headers={"Authorization": "Bearer ggv_nope"})
    assert bad_token.status_code == 302


@pytest.mark.parametrize("role", sorted(set(ROLES) - MAP_ROLES))
def test_roles_without_the_dashboard_are_refused(app, role):
    client = signed_in(app, role)
    response = client.get(MAP_URL)
    assert response.status_code == 403, role
    page = response.get_data(as_text=True)
    assert "L.geoJson(" not in page and "按期结案率" not in page
    api = client.get(MAP_URL, headers={"Accept": "application/json"})
    assert api.status_code == 403 and api.get_json()["error"]["status"] == 403


@pytest.mark.parametrize("role", sorted(MAP_ROLES))
def test_command_roles_get_the_map(app, role):
    response = signed_in(app, role).get(MAP_URL)
    assert response.status_code == 200, role
    assert "L.geoJson(" in response.get_data(as_text=True)
    assert "private" in response.headers["Cache-Control"]  # not for shared caches


def test_a_bearer_token_of_a_command_role_gets_the_map(app, cases_url):
    with get_engine(cases_url).begin() as conn:
        tokens = {role: issue_token(conn, conn.execute(text(
            "SELECT id FROM user_account WHERE username = :u"), {"u": role}).scalar_one(),
            "heat") for role in ("viewer", "grid_leader")}
    client = app.test_client()
    allowed = client.get(MAP_URL, headers={"Authorization": f"Bearer {tokens['viewer']}"})
    assert allowed.status_code == 200
    refused = client.get(MAP_URL, headers={"Authorization": f"Bearer {tokens['grid_leader']}",
                                           "Accept": "application/json"})
    assert refused.status_code == 403


def test_app_serves_the_map_with_local_assets(client):
    response = client.get("/maps/indicator?indicator=on_time_closure_rate&level=grid"
                          "&period=2019-05&scheme=natural_breaks&compare=2019-04")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    check_offline(page)
    assert '<script src="/assets/leaflet/leaflet.js"></script>' in page
    assert "/assets/folium/templates/leaflet_heat.min.js" in page
    assert '<form method="get" action="/maps/indicator">' in page
    assert '<option value="on_time_closure_rate" selected>' in page
    assert "按期结案率变化 · 2019-04 → 2019-05" in page
    for url in re.findall(r'(?:src|href)="(/assets/[^"]+)"', page):
        assert client.get(url).status_code == 200, url


@pytest.mark.parametrize("query", ["indicator=nope", "level=province", "period=2019Q5",
                                   "scheme=jenks", "compare=yesterday", "k=1"])
def test_app_refuses_bad_input(client, query):
    response = client.get(f"/maps/indicator?{query}")
    assert response.status_code == 400
    assert "参数错误" in response.get_data(as_text=True)


def test_side_by_side_maps_share_one_classification(cases_url, db_levels):
    options = MapOptions(period=MAY, compare=APRIL, level="grid", layout="dual",
                         indicator="on_time_closure_rate")
    dual = indicator_map(get_engine(cases_url), options, db_levels)
    assert isinstance(dual, folium.plugins.DualMap)
    before, after = (_layers(m)["网格"] for m in (dual.m1, dual.m2))
    assert [len(layer.data["features"]) for layer in (before, after)] == [16, 16]
    assert before.data["features"][0]["properties"]["i0"] == "0.00%"  # G1 in April
    assert after.data["features"][0]["properties"]["i0"] == "100.00%"  # G1 in May
    assert _fill(before, G1) == _fill(after, G2) == YL_OR_RD[-1]  # 0% on either side
    assert _fill(after, G1) == _fill(before, G2)
    page = render_standalone(dual, options.title)
    check_offline(page)
    assert "Leaflet.Sync" not in page and "L.Map.Sync" not in page
    assert page.index("L.Map.include({sync:") < page.index(".sync(map_")
    assert "2019-04" in page and "<title>按期结案率 · 2019-04 | 2019-05</title>" in page


def test_cli_side_by_side(cases_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", cases_url)
    out = tmp_path / "dual.html"
    result = CliRunner().invoke(main, ["heatmap", "--period", "2019-05", "--compare", "2019-04",
                                       "--side-by-side", "-o", str(out)])
    assert result.exit_code == 0, result.output
    page = check_offline(out.read_text(encoding="utf-8"))
    assert page.count("L.geoJson(") == 2 and "L.heatLayer(" not in page
