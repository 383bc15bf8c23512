"""The JSON API and the app factory, against a real PostGIS with the small test hierarchy."""

from __future__ import annotations

import pytest
import waitress
from click.testing import CliRunner

import webmap.api
import webmap.views
from app import create_app
from etl.cli import main
from gis.boundaries import activate, create_generation
from gis.crs import from_cgcs2000, to_metric
from gis.database import get_engine
from tests.factories import lattice, small_hierarchy
from webmap import GenerationStore

INSIDE = (lattice(0, 3)[0] + 0.001, lattice(0, 3)[1] + 0.001)  # in grid 320213001001001
CHAIN = ["320213001001001", "320213001001", "320213001", "320213"]


@pytest.fixture(scope="module")
def small_url(database_factory, template_name):
    url = database_factory.create("webmap_api", template=template_name)
    engine = get_engine(url)
    activate(engine, create_generation(engine, small_hierarchy(), name="small"))
    yield url
    database_factory.drop(url)


@pytest.fixture(scope="module")
def client(small_url):
    return create_app({"DATABASE_URL": small_url, "TESTING": True}).test_client()


@pytest.fixture
def empty_client(fresh_url):
    return create_app({"DATABASE_URL": fresh_url, "TESTING": True}).test_client()


def _error(response, status: int) -> str:
    assert response.status_code == status
    assert response.is_json
    body = response.get_json()
    assert body["error"]["status"] == status
    return body["error"]["message"]


# -- app factory ----------------------------------------------------------------------------------
def test_factory_takes_a_test_config(small_url):
    app = create_app({"DATABASE_URL": small_url, "TESTING": True, "CACHE_GENERATIONS": 2})
    assert app.testing and app.config["OSM_LAYER"] is False
    store = app.extensions["gridgov"]
    assert isinstance(store, GenerationStore) and store.size == 2
    assert store.engine.url.database == get_engine(small_url).url.database
    assert {"webmap", "api"} <= set(app.blueprints)


def test_serve_command_runs_the_app_on_waitress(small_url, monkeypatch):
    calls = []
    monkeypatch.setenv("DATABASE_URL", small_url)
    monkeypatch.setattr(waitress, "serve", lambda app, **kw: calls.append((app, kw)))
    result = CliRunner().invoke(main, ["serve", "--host", "127.0.0.1", "--port", "5099"])
    assert result.exit_code == 0, result.output
    ((app, options),) = calls
    assert options["host"] == "127.0.0.1" and options["port"] == 5099
    assert app.test_client().get("/api/generations").status_code == 200


# -- /api/point -----------------------------------------------------------------------------------
def test_point_inside_gives_the_chain(client):
    body = client.get("/api/point/4326/{},{}".format(*INSIDE)).get_json()
    assert body["inside"] is True
    assert body["lon"] == pytest.approx(INSIDE[0]) and body["lat"] == pytest.approx(INSIDE[1])
    assert [u["code"] for u in body["units"]] == CHAIN
    assert [u["level"] for u in body["units"]] == ["grid", "community", "street", "district"]
    assert body["units"][0]["name"] == "网格1"


def _srid_forms():
    lon, lat = INSIDE
    gx, gy = (float(v) for v in from_cgcs2000(lon, lat, "gcj02"))
    bx, by = (float(v) for v in from_cgcs2000(lon, lat, "bd09"))
    mx, my = (float(v) for v in to_metric(lon, lat))
    return [("4326", lon, lat), ("4490", lon, lat), ("wgs84", lon, lat),
            ("cgcs2000", lon, lat), ("CGCS2000", lon, lat), ("gcj02", gx, gy),
            ("bd09", bx, by), ("4549", mx, my)]


@pytest.mark.parametrize(("srid", "x", "y"), _srid_forms())
def test_point_in_every_srid_form(client, srid, x, y):
    body = client.get(f"/api/point/{srid}/{x!r},{y!r}").get_json()
    assert [u["code"] for u in body["units"]] == CHAIN
    assert body["lon"] == pytest.approx(INSIDE[0], abs=1e-7)
    assert body["lat"] == pytest.approx(INSIDE[1], abs=1e-7)


def test_point_outside(client):
    body = client.get("/api/point/wgs84/120.2,31.5").get_json()
    assert body["inside"] is False and body["units"] == []


@pytest.mark.parametrize("path", [
    "/api/point/3857/120.3,31.57", "/api/point/utm/120.3,31.57", "/api/point/4326/120.3",
    "/api/point/4326/a,b", "/api/point/4326/1,2,3", "/api/point/4326/nan,31.5",
    "/api/point/4326/120.3,inf", "/api/point/4326/120.3,31.57?generation=x",
])
def test_point_bad_input_is_400(client, path):
    assert _error(client.get(path), 400)


def test_point_unknown_generation_is_404(client):
    assert _error(client.get("/api/point/4326/120.3,31.57?generation=999"), 404)


# -- /api/units -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("level", "count"), [("district", 1), ("street", 2), ("community", 4),
                                              ("grid", 16)])
def test_units_of_a_level_as_geojson(client, level, count):
    response = client.get(f"/api/units?level={level}")
    assert response.status_code == 200 and response.mimetype == "application/geo+json"
    body = response.get_json()
    assert body["type"] == "FeatureCollection" and len(body["features"]) == count
    feature = body["features"][0]
    assert set(feature["properties"]) == {"code", "name", "level", "parent_code", "area_m2",
                                          "grid_type", "dedicated_kind"}
    assert feature["geometry"]["type"] == "MultiPolygon"
    assert {f["properties"]["level"] for f in body["features"]} == {level}
    if level == "grid":
        assert feature["properties"]["grid_type"] == "comprehensive"
        assert feature["properties"]["parent_code"] == "320213001001"
        assert 200_000 < feature["properties"]["area_m2"] * 4 < 300_000 * 4


def test_units_all_levels_and_by_generation(client):
    body = client.get("/api/units").get_json()
    assert len(body["features"]) == 23
    generation = body["generation"]
    assert len(client.get(f"/api/units?level=street&generation={generation}")
               .get_json()["features"]) == 2


def test_units_bad_level_or_generation(client):
    assert "level" in _error(client.get("/api/units?level=county"), 400)
    assert _error(client.get("/api/units?generation=abc"), 400)
    assert _error(client.get("/api/units?level=street&generation=999"), 404)


def test_one_unit_and_unknown_code(client):
    response = client.get("/api/units/320213001001")
    assert response.status_code == 200 and response.mimetype == "application/geo+json"
    feature = response.get_json()
    assert feature["type"] == "Feature" and feature["id"] == "320213001001"
    assert feature["properties"]["name"] == "社区11"
    assert feature["properties"]["parent_code"] == "320213001"
    assert "320213999" in _error(client.get("/api/units/320213999"), 404)


def test_generations(client):
    (generation,) = client.get("/api/generations").get_json()["generations"]
    assert generation["active"] is True and generation["name"] == "small"
    assert generation["counts"] == {"district": 1, "street": 2, "community": 4, "grid": 16}
    assert generation["activated_at"].startswith("20")


# -- errors ---------------------------------------------------------------------------------------
def test_no_active_generation_is_503(empty_client):
    for path in ("/api/point/4326/120.3,31.57", "/api/units?level=street",
                 "/api/units/320213"):
        assert "gridgov boundaries load" in _error(empty_client.get(path), 503)
    assert empty_client.get("/api/generations").get_json() == {"generations": []}
    page = empty_client.get("/")
    assert page.status_code == 503 and b"gridgov boundaries load" in page.data


def test_unknown_route_and_method_under_api_are_json(client):
    assert _error(client.get("/api/nowhere"), 404)
    assert _error(client.post("/api/generations"), 405)
    page = client.get("/nowhere")
    assert page.status_code == 404 and not page.is_json


def test_crash_under_api_is_json_500(small_url, monkeypatch):
    def boom(_engine):
        raise RuntimeError("boom")

    monkeypatch.setattr(webmap.api, "list_generations", boom)
    client = create_app({"DATABASE_URL": small_url}).test_client()
    assert "boom" not in _error(client.get("/api/generations"), 500)


def test_database_down_is_503():
    client = create_app(
        {"DATABASE_URL": "postgresql+psycopg://nobody:x@127.0.0.1:9/none"}).test_client()
    assert "database" in _error(client.get("/api/generations"), 503)
    page = client.get("/")
    assert page.status_code == 503 and b"gridgov db status" in page.data


def test_site_icon_is_served_and_named_by_the_pages(client):
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    assert icon.data.startswith(b"<svg") and "max-age" in icon.headers["Cache-Control"]
    assert b'href="/static/webmap/favicon.svg"' in client.get("/login").data


# -- the home page and its cache -----------------------------------------------------------------
def test_home_page_is_built_once_per_generation(fresh_engine, fresh_url, monkeypatch):
    first = create_generation(fresh_engine, small_hierarchy(), name="first")
    activate(fresh_engine, first)
    builds = []
    real = webmap.views.build_units_map
    monkeypatch.setattr(webmap.views, "build_units_map",
                        lambda levels, **kw: builds.append(1) or real(levels, **kw))
    client = create_app({"DATABASE_URL": fresh_url, "TESTING": True}).test_client()
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert client.get("/").data == page.data and len(builds) == 1

    renamed = small_hierarchy()
    renamed["district"].loc[0, "name"] = "新区"
    activate(fresh_engine, create_generation(fresh_engine, renamed, name="second"))
    assert "新区".encode() in client.get("/").data and len(builds) == 2
