"""Round trips with third-party Open311 client libraries against a live server on 127.0.0.1.

- civicbot (PyPI ``civicbot``, MIT): its ``Open311Client`` lists services, reads a service
  definition, checks and posts a request (form-encoded, ``attribute[code]=value``), and reads
  it back, in JSON.
- georeport (PyPI ``georeport``, Apache-2.0): reads services, a definition and requests, in
  XML (parsed by xmltodict) and JSON; it cannot post.

The app is served by the shared :func:`tests.browser.live_server` (a werkzeug server in a
thread), on the module's own database (the world of test_open311).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from civicbot.http import HttpError, HttpTransport, RateLimiter
from civicbot.open311 import Open311Client, ValidationError
from civicbot.registry import Endpoint
from georeport import GeoReport

from tests.browser import live_server
from tests.webmap.test_open311 import CAEB, GRID_WEST, World, build_world, point_in, validate


@pytest.fixture(scope="module")
def world(database_factory, template_name) -> Iterator[World]:
    url = database_factory.create("open311_client", template=template_name)
    yield build_world(url)
    database_factory.drop(url)


@pytest.fixture(scope="module")
def base_url(world: World) -> Iterator[str]:
    with live_server(world.app) as origin:
        yield f"{origin}/open311/v2"


@pytest.fixture
def civicbot(base_url: str) -> Open311Client:
    endpoint = Endpoint(id="liangxi", name="Liangxi District", base_url=base_url, write=True)
    return Open311Client(endpoint, HttpTransport(rate_limiter=RateLimiter(min_interval=0)))


def _post(client: Open311Client, api_key: str, **changes) -> list[dict]:
    lon, lat = point_in(GRID_WEST)
    fields = {"lat": lat, "lng": lon, "description": "桥下有积存垃圾",
              "attributes": {"severity": "serious", "landmark": "桥洞下"},
              "media_url": "https://example.org/photo/7.jpg", "device_id": "phone-1",
              **changes}
    prepared = client.create_request("E0102", dry_run=False, confirm="SEND", api_key=api_key,
                                     validate_remote=True, **fields)
    return prepared.response


def test_civicbot_round_trip(world, civicbot):
    services = civicbot.list_services()
    validate(services, "services.json")
    assert {"service_code": "E0102", "service_name": "暴露垃圾"}.items() <= next(
        s for s in services if s["service_code"] == "E0102").items()
    definition = civicbot.get_service_definition("E0102")
    validate(definition, "service-definition.json")
    answer = _post(civicbot, world.keys["app"])
    validate(answer, "#RequestResponse")
    number = answer[0]["service_request_id"]
    request = civicbot.get_request(number)
    validate([request], "requests.json")
    assert request["service_code"] == "E0102" and request["status"] == "open"
    assert request["address_id"] == GRID_WEST and request["agency_responsible"] == CAEB
    assert request["media_url"] == "https://example.org/photo/7.jpg"
    assert "严重程度：严重；参照物：桥洞下" in request["description"]
    listed = civicbot.list_requests(service_request_ids=[number], status="open")
    assert [r["service_request_id"] for r in listed] == [number]
    assert world.case(number)["state"] == "reported"


def test_civicbot_checks_against_our_service_definition(world, civicbot):
    with pytest.raises(ValidationError, match="severity"):
        _post(civicbot, world.keys["app"], attributes={"landmark": "桥洞下"})
    with pytest.raises(ValidationError, match="apocalyptic"):
        _post(civicbot, world.keys["app"], attributes={"severity": "apocalyptic"})


def test_civicbot_sees_the_servers_errors(world, civicbot):
    with pytest.raises(HttpError) as refused:
        _post(civicbot, "ggv_not-a-key")
    assert refused.value.status == 403 and '"code": 403' in refused.value.body
    with pytest.raises(HttpError) as outside:
        _post(civicbot, world.keys["app"], lat=39.9, lng=116.4)
    assert outside.value.status == 400 and "outside the district" in outside.value.body


def test_georeport_reads_xml(world, civicbot, base_url):
    number = _post(civicbot, world.keys["app"])[0]["service_request_id"]
    client = GeoReport(base_url, output_format="xml")
    services = client.get_service_list()
    service = next(s for s in services if s["service_code"] == "C0101")
    assert service["service_name"] == "上水井盖" and service["metadata"] == "true"
    definition = client.get_service_definition("C0101")
    attributes = definition["attributes"]["attribute"]
    assert [a["code"] for a in attributes] == ["condition", "landmark"]
    request = client.get_service_request(number)
    assert request["service_request_id"] == number and request["status"] == "open"
    assert request["address_id"] == GRID_WEST and request["zipcode"] is None
    listed = client.get_service_requests(service_request_id=number)
    assert listed["service_request_id"] == number  # xmltodict: one element is a dict


def test_georeport_reads_json(world, civicbot, base_url):
    number = _post(civicbot, world.keys["app"])[0]["service_request_id"]
    client = GeoReport(base_url)
    validate(client.get_service_list(), "services.json")
    request = client.get_service_request(number)
    validate([request], "requests.json")
    assert request["agency_responsible"] == CAEB
    listed = client.get_service_requests(service_code="E0102", status="open")
    validate(listed, "requests.json")
    assert number in [r["service_request_id"] for r in listed]
