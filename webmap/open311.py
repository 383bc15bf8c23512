"""Open311 GeoReport v2 under ``/open311/v2``: discovery, services, requests, tokens.

The format is the extension (``services.json``, ``requests/123.xml``), XML and JSON alike, with
the spec's element names (JSON follows its Spark convention: containers become arrays). Errors
are the spec's error array in the requested format (XML when the extension is unknown): 400 for
bad input, 403 for a missing or invalid ``api_key``, 404 for an unknown service, request,
token or resource, 503 while the database is away.

Only ``POST requests`` needs an ``api_key``: an API token (:func:`gis.accounts.issue_token`)
whose account's role decides what it may do (:data:`gis.open311.FILING_ROLES`). It is
rate-limited per client (the api_key, else the address; ``OPEN311_POST_LIMIT``) with the app's
Flask-Limiter: 429 in the spec's error format, with ``Retry-After``. Reading is public and
shows only what :class:`gis.open311.Disclosure` allows (``OPEN311_PUBLIC_SOURCES``,
``OPEN311_SENSITIVE_CLASSES``). The blueprint
never looks at the session cookie, so it is exempt from the cookie CSRF check: a page on
another site can make a browser post here, but not with a key it does not know. The business
rules (services, attributes, statuses, locations, filing) are in :mod:`gis.open311`; this
module maps HTTP to them and masks free text on the way out. See docs/OPEN311.md.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, NoReturn
from xml.etree import ElementTree

from flask import Blueprint, Flask, Response, current_app, g, request
from sqlalchemy import Connection
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from gis import accounts
from gis import open311 as o311
from gis.accounts import User
from gis.masking import mask_id_number
from gis.models import SOURCES
from gis.workflow import Workflow
from webmap import auth, current_store
from webmap.serializers import scrub_phones

bp = Blueprint("open311", __name__, url_prefix="/open311/v2")

FORMATS = "<any(json, xml):fmt>"
CONTENT_TYPES = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
MIME_TYPES = ("text/xml", "application/json")
#: XML element of each item of a container (the Spark convention read backwards).
ITEM_NAMES = {"services": "service", "service_requests": "request", "errors": "error",
              "attributes": "attribute", "values": "value", "endpoints": "endpoint",
              "formats": "format"}
ATTRIBUTE_FIELD = re.compile(r"attribute\[([^\]\[]{1,64})\](\[\])?")
MEDIA_URL = re.compile(r"https?://[^\s<>\"]{1,2000}")
#: Characters XML 1.0 cannot carry (control characters other than tab and line breaks).
NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
WORKFLOW = "gridgov.workflow"  # shared with webmap.api_cases
DISCLOSURE = "gridgov.open311.disclosure"
#: Per client (api_key, else address) on POST requests: far above a district's whole intake
#: (~55 reports a day), low enough to stop a runaway or hostile client. OPEN311_POST_LIMIT.
POST_LIMIT = "30 per minute; 300 per hour"
#: An 18-character resident ID number (region, birth date, sequence, check character).
ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])"
                       r"(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx](?![0-9A-Za-z])")
MAX_IDS = 1000
DEFAULT_CONTACT = "梁溪区网格化服务管理指挥中心 / Liangxi District grid management command centre"
DEFAULT_KEY_SERVICE = ("API keys are API tokens issued by the platform's administrators "
                       "(gridgov users token <username> --name <client>)")


def _fail(status: int, description: str) -> NoReturn:
    raise o311.Open311Error(description, status)


def _engine():
    return current_store().engine


def _now() -> datetime:
    return datetime.now(UTC)


def _workflow(conn: Connection) -> Workflow:
    workflow = current_app.extensions.get(WORKFLOW)
    if workflow is None:
        workflow = current_app.extensions[WORKFLOW] = Workflow.load(conn)
    return workflow


# -- formats --------------------------------------------------------------------------------------
def _element(name: str, value: Any) -> ElementTree.Element:
    element = ElementTree.Element(name)
    if isinstance(value, Mapping):
        element.extend(_element(key, item) for key, item in value.items())
    elif isinstance(value, list):
        element.extend(_element(ITEM_NAMES[name], item) for item in value)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = NOT_IN_XML.sub("", str(value))
    return element


def to_xml(root: str, payload: Any) -> bytes:
    """The payload as a UTF-8 XML document whose root element is ``root``."""
    body = ElementTree.tostring(_element(root, payload), encoding="unicode")
    return f'<?xml version="1.0" encoding="utf-8"?>\n{body}\n'.encode()


def _answer(fmt: str, root: str, payload: Any, status: int = 200) -> Response:
    if fmt == "json":
        body = json.dumps(payload, ensure_ascii=False).encode()
    else:
        body = to_xml(root, payload)
    return Response(body, status=status, content_type=CONTENT_TYPES[fmt])


def _requested_format() -> str:
    fmt = (request.view_args or {}).get("fmt")
    if fmt in CONTENT_TYPES:
        return fmt
    return "json" if request.path.endswith(".json") else "xml"


def error_answer(status: int, description: str) -> Response:
    return _answer(_requested_format(), "errors",
                   [{"code": status, "description": description}], status)


# -- discovery and services -----------------------------------------------------------------------
@bp.get(f"/discovery.{FORMATS}")
def discovery(fmt: str) -> Response:
    """Where the endpoint is, what it speaks, whom to ask for a key."""
    config = current_app.config
    endpoint = {"specification": o311.SPECIFICATION,
                "url": config.get("OPEN311_URL") or request.host_url.rstrip("/") + bp.url_prefix,
                "changeset": o311.CHANGESET,
                "type": config.get("OPEN311_ENDPOINT_TYPE", "production"),
                "formats": list(MIME_TYPES)}
    return _answer(fmt, "discovery", {
        "changeset": o311.CHANGESET,
        "contact": config.get("OPEN311_CONTACT", DEFAULT_CONTACT),
        "key_service": config.get("OPEN311_KEY_SERVICE", DEFAULT_KEY_SERVICE),
        "endpoints": [endpoint]})


@bp.get(f"/services.{FORMATS}")
def services(fmt: str) -> Response:
    """The incident classes, as services."""
    with _engine().connect() as conn:
        listed = o311.list_services(conn)
    return _answer(fmt, "services", [service.to_dict() for service in listed])


@bp.get(f"/services/<service_code>.{FORMATS}")
def service_definition(service_code: str, fmt: str) -> Response:
    """The attributes a request for this service takes."""
    with _engine().connect() as conn:
        service = o311.get_service(conn, service_code)
    return _answer(fmt, "service_definition", o311.service_definition(service))


# -- requests -------------------------------------------------------------------------------------
def scrub_personal(text: str | None) -> str:
    """Free text with phone numbers and resident ID numbers masked."""
    return ID_NUMBER.sub(lambda match: mask_id_number(match[0]) or "", scrub_phones(text))


def request_json(item: o311.ServiceRequest) -> dict[str, Any]:
    """A request with its times in W3C format and its free text masked."""
    data = asdict(item)
    for key in ("requested_datetime", "updated_datetime", "expected_datetime"):
        data[key] = o311.w3c(data[key])
    for key in ("description", "status_notes"):
        data[key] = scrub_personal(data[key]) or None
    return data


def _disclosure() -> o311.Disclosure:
    return current_app.extensions[DISCLOSURE]


def _text(fields: Mapping[str, str], name: str) -> str | None:
    """An optional argument: empty counts as absent, as the spec says."""
    value = fields.get(name)
    return (value.strip() or None) if isinstance(value, str) else None


def _csv(args: MultiDict, name: str) -> list[str] | None:
    """A list argument: comma-separated, and/or given several times."""
    parts = [part.strip() for value in args.getlist(name) for part in value.split(",")]
    return [part for part in parts if part] or None


def _query(args: MultiDict) -> o311.Query:
    ids = _csv(args, "service_request_id")
    if ids is not None:  # overrides every other argument
        if len(ids) > MAX_IDS or any(len(part) > 40 for part in ids):
            _fail(400, f"service_request_id: at most {MAX_IDS} ids of at most 40 characters")
        return o311.Query(ids=ids)
    statuses = _csv(args, "status")
    for status in statuses or ():
        if status not in o311.STATUSES:
            _fail(400, f"status: {status!r} is not open or closed")
    start, end = (_text(args, name) for name in ("start_date", "end_date"))
    return o311.Query(
        service_codes=_csv(args, "service_code"), statuses=statuses,
        start=o311.parse_w3c(start, "start_date") if start else None,
        end=o311.parse_w3c(end, "end_date") if end else None)


@bp.get(f"/requests.{FORMATS}")
def list_requests(fmt: str) -> Response:
    """Requests by ids, or by service, status and a window of at most 90 days (default: the
    last 90), newest first, at most 1000."""
    query = _query(request.args)
    with _engine().connect() as conn:
        if query.service_codes:
            o311.known_codes(conn, query.service_codes)
        found = o311.find_requests(conn, query, _now(), _disclosure())
    return _answer(fmt, "service_requests", [request_json(item) for item in found])


@bp.get(f"/requests/<request_id>.{FORMATS}")
def one_request(request_id: str, fmt: str) -> Response:
    with _engine().connect() as conn:
        found = o311.get_request(conn, request_id, _disclosure())
    return _answer(fmt, "service_requests", [request_json(found)])


@bp.get(f"/tokens/<token>.{FORMATS}")
def token(token: str, fmt: str) -> Response:
    """The requests filed with this idempotency key."""
    with _engine().connect() as conn:
        return _answer(fmt, "service_requests", o311.resolve_token(conn, token))


# -- filing ---------------------------------------------------------------------------------------
def _fields() -> MultiDict:
    """The posted fields: form-encoded as the spec says, or a JSON object."""
    if not request.is_json:
        return request.form
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        _fail(400, "the body must be form-encoded or a JSON object")
    fields: MultiDict = MultiDict()
    for name, value in data.items():
        if name in ("attribute", "attributes") and isinstance(value, dict):
            for code, given in value.items():
                fields.setlist(f"attribute[{code}]", _strings(given))
        else:
            fields.setlist(name, _strings(value))
    return fields


def _strings(value: Any) -> list[str]:
    """A JSON value as the form values it stands for (a list: several values)."""
    return [_string(item) for item in (value if isinstance(value, list) else [value])]


def _string(value: Any) -> str:
    if value is None:
        return ""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _attributes(fields: MultiDict) -> dict[str, list[str]]:
    attributes: dict[str, list[str]] = {}
    for name in fields:
        match = ATTRIBUTE_FIELD.fullmatch(name)
        if match:
            attributes.setdefault(match[1], []).extend(fields.getlist(name))
        elif name.startswith("attribute"):
            _fail(400, f"{name}: attributes are sent as attribute[code]=value")
    return attributes


def _number(fields: Mapping[str, str], name: str) -> float | None:
    value = _text(fields, name)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        _fail(400, f"{name}: {value!r} is not a number")
    return number


def _media_url(fields: Mapping[str, str]) -> str | None:
    url = _text(fields, "media_url")
    if url is not None and not MEDIA_URL.fullmatch(url):
        _fail(400, "media_url: must be an http or https URL (it is stored, never fetched)")
    return url


def _submission(fields: MultiDict) -> o311.Submission:
    code = _text(fields, "service_code")
    if code is None:
        _fail(400, "service_code: required")
    lat, lon = _number(fields, "lat"), _number(fields, "long")
    if (lat is None) != (lon is None):
        _fail(400, "lat and long: send both or neither")
    return o311.Submission(
        service_code=code, lat=lat, lon=lon,
        address_string=_text(fields, "address_string"), address_id=_text(fields, "address_id"),
        description=fields.get("description", ""), media_url=_media_url(fields),
        attributes=_attributes(fields), device_id=_text(fields, "device_id"),
        idempotency_key=_text(fields, "idempotency_key")
        or _text(request.headers, "Idempotency-Key"))


def _client() -> str:
    """Whom a POST is counted against: its api_key (hashed: keys are not kept in the clear),
    else its address. Read without failing: a bad body is the view's 400 to give."""
    key = request.args.get("api_key", "")
    if request.is_json:
        body = request.get_json(silent=True)
        if isinstance(body, dict) and isinstance(body.get("api_key"), str):
            key = body["api_key"] or key
    else:
        key = request.form.get("api_key", "") or key
    if key.strip():
        return "key:" + hashlib.sha256(key.strip().encode()).hexdigest()[:32]
    return f"address:{request.remote_addr or '-'}"


def _post_limit() -> str:
    return current_app.config.get("OPEN311_POST_LIMIT") or POST_LIMIT


def _filer(conn: Connection, fields: Mapping[str, str]) -> User:
    """The account behind ``api_key`` (form field, or query parameter)."""
    key = _text(fields, "api_key") or _text(request.args, "api_key")
    if key is None:
        _fail(403, "api_key is required to create a request")
    g.open311_user = accounts.user_for_token(conn, key, _now())
    return o311.check_filer(g.open311_user)


@bp.post(f"/requests.{FORMATS}")
@auth.limiter.limit(_post_limit, key_func=_client, methods=["POST"])
def create_request(fmt: str) -> Response:
    """File a request: an incident in its grid and its case, in one transaction."""
    fields = _fields()
    with _engine().begin() as conn:
        filer = _filer(conn, fields)
    submission = _submission(fields)
    with _engine().begin() as conn:
        filed = o311.file_request(conn, _workflow(conn), filer, submission, _now())
    g.open311_filed = filed.request_id
    response = _answer(fmt, "service_requests", [{
        "service_request_id": filed.request_id, "service_notice": filed.service_notice,
        "account_id": None}])
    if filed.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.after_request
def _audit(response: Response) -> Response:
    """One audit row per write, as the api_key's account (never the session's)."""
    if request.method not in ("POST", "PUT", "PATCH", "DELETE"):
        return response
    g.audited = True  # the app-wide audit would attribute it to a session cookie
    if response.status_code == 429:  # throttled before the view: a row each would feed a flood
        return response
    try:
        with _engine().begin() as conn:
            accounts.audit(conn, g.get("open311_user"), request.endpoint or bp.name,
                           method=request.method, path=request.path,
                           target=g.get("open311_filed"), status=response.status_code,
                           remote_addr=request.remote_addr, details={"api_key": True})
    except Exception:  # a failing audit must not hide the answer; it is logged
        current_app.logger.exception("audit write failed for %s", request.path)
    return response


# -- errors ---------------------------------------------------------------------------------------
@bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def unknown(rest: str) -> Response:
    """Anything else under /open311/v2, answered in the spec's error format."""
    if request.method not in ("GET", "POST") or _served_to_get(request.path):
        return error_answer(405, f"{request.method} is not supported on {request.path}")
    return error_answer(404, f"no such resource: {request.path} (see discovery.xml)")


def _served_to_get(path: str) -> bool:
    """Whether another view serves ``path`` (to GET): then the method was wrong, not the path."""
    try:
        endpoint, _ = current_app.url_map.bind_to_environ(request.environ).match(
            path, method="GET")
    except HTTPException:
        return False
    return endpoint != f"{bp.name}.unknown"


@bp.errorhandler(o311.Open311Error)
def _refused(exc: o311.Open311Error) -> Response:
    return error_answer(exc.status, str(exc))


@bp.errorhandler(429)
def _throttled(exc: HTTPException) -> Response:
    """Flask-Limiter's 429 in the spec's format (the app-wide 429 answer is not)."""
    wait = 60
    limit = auth.limiter.current_limit
    if limit is not None:
        wait = max(1, int(limit.reset_at - time.time()))  # as Flask-Limiter's own header
    response = error_answer(429, f"too many requests from this client (at most "
                                 f"{exc.description}); try again in {wait} s")
    response.headers["Retry-After"] = str(wait)
    return response


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    return error_answer(status, exc.description or exc.name)


def _database_down(_exc: Exception) -> Response:
    response = error_answer(503, "the database is not reachable; try again shortly")
    response.headers["Retry-After"] = "5"
    return response


for _error in (OperationalError, InterfaceError, PoolTimeout):
    bp.register_error_handler(_error, _database_down)


# -- wiring ---------------------------------------------------------------------------------------
def init_app(app: Flask) -> None:
    """Register the blueprint, exempt from the cookie CSRF check: it authenticates by api_key
    alone and never reads the session, so there is no cookie for a forged request to ride.
    Reads what is public from the settings (a bad one stops the app here, not at a request)."""
    app.extensions[DISCLOSURE] = disclosure_of(app.config)
    app.register_blueprint(bp)
    auth.csrf.exempt(bp)


def disclosure_of(config: Mapping[str, Any]) -> o311.Disclosure:
    """``OPEN311_PUBLIC_SOURCES`` and ``OPEN311_SENSITIVE_CLASSES``: lists, or comma-separated
    texts (as from ``GRIDGOV_…`` in the environment); unset, the defaults of gis.open311."""
    sources = _setting(config, "OPEN311_PUBLIC_SOURCES", o311.PUBLIC_SOURCES)
    unknown = sorted(sources - set(SOURCES))
    if unknown:
        raise ValueError(f"OPEN311_PUBLIC_SOURCES: {', '.join(unknown)} not among "
                         f"{', '.join(SOURCES)}")
    classes = _setting(config, "OPEN311_SENSITIVE_CLASSES", o311.SENSITIVE_CLASSES)
    return o311.Disclosure(sources, classes)


def _setting(config: Mapping[str, Any], name: str, default: frozenset[str]) -> frozenset[str]:
    value = config.get(name)
    if value is None:
        return default
    items = value.split(",") if isinstance(value, str) else value
    return frozenset(str(item).strip() for item in items if str(item).strip())
