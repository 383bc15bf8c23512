"""Open311 GeoReport v2 on the case workflow: the business side of ``/open311/v2``.

- Services are the incident classes (``service_code`` = class code, name = minor class,
  group = major class); every service has a definition whose attributes depend on the class
  kind (:data:`ATTRIBUTES`), and submitted ``attribute[code]`` values are checked against it.
- A request filed through Open311 is a report like any other (:func:`gis.reporting.submit_report`
  with source ``open311``): assigned to its grid, opened as a case, routed and worked through
  :mod:`gis.workflow`. Its ``service_request_id`` is the case number.
- A request is ``closed`` once its case is closed or evaluated, or ended without being handled
  (not accepted, duplicate, void, not filed); every other state is ``open``
  (:data:`CLOSED_STATES`).
- Reporters' personal data (email, names, phone, account id) is not kept; ``device_id`` only
  enters a one-way hash that scopes the client's idempotency key.
- Reading is public, so only what :class:`Disclosure` allows is shown: requests that came in
  through a public channel (by default Open311 itself, :data:`PUBLIC_SOURCES`); of those, the
  classes about people, neighbours or public security (:data:`SENSITIVE_CLASSES`) are never
  listed and, asked for by id, come without text, position or media (:func:`redacted`).
  Cases from other sources are "not found", as if they did not exist.

Masking of free text for display belongs to the web layer (:mod:`webmap.serializers`).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Row, text

from gis.accounts import User
from gis.incidents import IncidentError
from gis.lookup import lookup_point
from gis.reporting import submit_report
from gis.routing import route_case
from gis.workflow import CLOSED_STATES as WORKFLOW_CLOSED
from gis.workflow import STATES, TERMINAL_STATES, InvalidInput, NotAllowed, Workflow

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
#: Bumped whenever the service definitions below change (discovery's ``changeset``).
CHANGESET = "2026-11-29T00:00:00+08:00"
SOURCE = "open311"
LOCAL = ZoneInfo("Asia/Shanghai")

#: Case states reported as ``closed``; all others are ``open``.
CLOSED_STATES = frozenset(WORKFLOW_CLOSED | TERMINAL_STATES)
STATUSES = ("open", "closed")
#: Roles whose API keys may file requests (an admin may too). Grid staff only in their grids.
FILING_ROLES = frozenset({"acceptor", "shift_leader", "supervisor", "grid_leader",
                          "grid_worker"})
MAX_REQUESTS = 1000
#: Sources whose requests are public: those filed through this interface, whose reporters
#: chose a public channel. Internal channels (grid workers, the 12345 hotline, video patrols,
#: bulk imports, API integrations) are case handling, not publication (docs/OPEN311.md).
PUBLIC_SOURCES = frozenset({"open311"})
#: Classes about people, neighbours or public security: a request in one is never listed, and
#: by id shows no description, notes, media or position (its place is given as the street).
SENSITIVE_CLASSES = frozenset({
    "E0402",  # 流浪乞讨: a person in need
    "E0601",  # 犬类扰民: a neighbour's dog
    "E0602",  # 噪声扰民: usually a neighbour or a shop next door
    "E0603",  # 邻里纠纷: a dispute between neighbours
    "E0707",  # 治安隐患: public-security risks
    "E0710",  # 矛盾纠纷: disputes
    "C0601",  # 监控电子眼: where surveillance cameras are broken
})
WINDOW = timedelta(days=90)
DESCRIPTION_LIMIT = 4000
TOKEN = re.compile(r"[A-Za-z0-9.~-]{1,64}")
KIND_NAMES = {"component": "部件", "event": "事件"}
UNIT_SUFFIX = re.compile(r"(街道|社区|园区)$")


# -- errors ---------------------------------------------------------------------------------------
class Open311Error(Exception):
    """A request that cannot be served; ``status`` is the HTTP status the spec asks for."""

    status = 400

    def __init__(self, description: str, status: int | None = None) -> None:
        super().__init__(description)
        if status is not None:
            self.status = status


class Forbidden(Open311Error):
    """Missing or invalid api_key, or one whose account may not do this."""

    status = 403


class NotFound(Open311Error):
    status = 404


# -- services -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Service:
    code: str
    kind: str
    group: str
    name: str
    line: str

    def to_dict(self) -> dict[str, Any]:
        kind = KIND_NAMES.get(self.kind, self.kind)
        return {"service_code": self.code, "service_name": self.name,
                "description": f"{self.group}类{kind}：{self.name}", "metadata": True,
                "type": "realtime", "keywords": ", ".join((kind, self.group, self.line)),
                "group": self.group}


_SERVICE_SQL = "SELECT code, kind, major_name, minor_name, line FROM incident_class"


def list_services(conn: Connection) -> list[Service]:
    """Every incident class, as a service, by code."""
    return [Service(*row) for row in conn.execute(text(f"{_SERVICE_SQL} ORDER BY code"))]


def get_service(conn: Connection, code: str) -> Service:
    row = conn.execute(text(f"{_SERVICE_SQL} WHERE code = :c"), {"c": code}).first()
    if row is None:
        raise NotFound(f"service_code {code!r} not found (see services.xml for the list)")
    return Service(*row)


def known_codes(conn: Connection, codes: Iterable[str]) -> None:
    """Raise for the first code that is not a service."""
    known = set(conn.execute(text("SELECT code FROM incident_class")).scalars())
    for code in codes:
        if code not in known:
            raise Open311Error(f"service_code: {code!r} is not a service code")


# -- service definitions --------------------------------------------------------------------------
@dataclass(frozen=True)
class Attribute:
    """One attribute of a service definition (GeoReport v2 field names)."""

    code: str
    label: str  # how its value is introduced in the case description
    datatype: str
    required: bool
    order: int
    description: str
    values: tuple[tuple[str, str], ...] = ()
    datatype_description: str | None = None
    max_length: int = 100

    def to_dict(self) -> dict[str, Any]:
        return {"variable": True, "code": self.code, "datatype": self.datatype,
                "required": self.required, "datatype_description": self.datatype_description,
                "order": self.order, "description": self.description,
                "values": [{"key": key, "name": name} for key, name in self.values]}

    def check(self, given: Sequence[str]) -> list[str]:
        """The submitted values, checked; raises :class:`Open311Error` saying what is wrong."""
        values = [value.strip() for value in given if value.strip()]
        label = f"attribute[{self.code}]"
        if not values:
            if self.required:
                raise Open311Error(f"{label}: required ({self._hint()})")
            return []
        if self.datatype != "multivaluelist" and len(values) > 1:
            raise Open311Error(f"{label}: takes one value, got {len(values)}")
        for value in values:
            self._check_one(label, value)
        return values

    def _check_one(self, label: str, value: str) -> None:
        if self.values and value not in dict(self.values):
            raise Open311Error(f"{label}: {value!r} is not one of {self._hint()}")
        if self.datatype in ("string", "text") and len(value) > self.max_length:
            raise Open311Error(f"{label}: at most {self.max_length} characters")
        if self.datatype == "string" and "\n" in value:
            raise Open311Error(f"{label}: a single line of text")
        if self.datatype == "number" and not _is_number(value):
            raise Open311Error(f"{label}: {value!r} is not a number")
        if self.datatype == "datetime":
            parse_w3c(value, label)

    def _hint(self) -> str:
        if self.values:
            return ", ".join(f"{key} ({name})" for key, name in self.values)
        return self.datatype_description or self.datatype

    def display(self, values: Sequence[str]) -> str:
        names = dict(self.values)
        return "、".join(names.get(value, value) for value in values)


def _is_number(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


LANDMARK = Attribute(
    "landmark", "参照物", "string", False, 2, "附近参照物（门牌号、店名、公交站等）",
    datatype_description="一行文字，至多 100 字 / one line, at most 100 characters")
#: The attributes of each class kind's service definitions.
ATTRIBUTES: dict[str, tuple[Attribute, ...]] = {
    "event": (
        Attribute("severity", "严重程度", "singlevaluelist", True, 1, "问题的严重程度",
                  (("minor", "轻微"), ("moderate", "一般"), ("serious", "严重"))),
        LANDMARK),
    "component": (
        Attribute("condition", "部件状况", "singlevaluelist", True, 1, "部件目前的状况",
                  (("damaged", "破损"), ("missing", "缺失"), ("displaced", "移位"),
                   ("blocked", "堵塞"), ("other", "其他"))),
        LANDMARK),
}


def attributes_of(service: Service) -> tuple[Attribute, ...]:
    return ATTRIBUTES.get(service.kind, (LANDMARK,))


def service_definition(service: Service) -> dict[str, Any]:
    return {"service_code": service.code,
            "attributes": [a.to_dict() for a in attributes_of(service)]}


def check_attributes(service: Service, submitted: Mapping[str, Sequence[str]]
                     ) -> dict[str, list[str]]:
    """The submitted attributes checked against the service's definition (unknown codes too)."""
    defined = {a.code: a for a in attributes_of(service)}
    for code in submitted:
        if code not in defined:
            raise Open311Error(f"attribute[{code}]: not an attribute of service {service.code} "
                               f"(use {', '.join(defined)})")
    checked = {code: attribute.check(submitted.get(code, ()))
               for code, attribute in defined.items()}
    return {code: values for code, values in checked.items() if values}


# -- dates ----------------------------------------------------------------------------------------
def parse_w3c(value: str, name: str) -> datetime:
    """A W3C date-time (``2010-01-01T00:00:00Z`` or with an offset), or a date, which means
    the start of that day in the district's time (Asia/Shanghai)."""
    value = value.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return datetime.combine(date.fromisoformat(value), time(), LOCAL)
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise Open311Error(f"{name}: {value!r} is not a W3C date-time "
                           "(e.g. 2010-01-01T00:00:00Z)") from None
    if moment.tzinfo is None:
        raise Open311Error(f"{name}: {value!r} needs a time zone (Z or ±hh:mm)")
    return moment


def w3c(moment: datetime | None) -> str | None:
    """``2019-05-10T09:00:00+08:00``: W3C date-time in the district's time."""
    return moment.astimezone(LOCAL).isoformat(timespec="seconds") if moment else None


# -- locations ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Place:
    """Where a request is filed: a point and, when it came from an address, what it stands for."""

    x: float
    y: float
    crs: str
    stands_for: str | None = None


LON_LAT = re.compile(r"\s*(-?\d{1,3}(?:\.\d+)?)\s*[,，]\s*(-?\d{1,2}(?:\.\d+)?)\s*")


def locate(conn: Connection, lat: float | None, lon: float | None,
           address_string: str | None, address_id: str | None) -> Place:
    """lat/long (WGS84), else an address string, else an address id (a unit code)."""
    if lat is not None and lon is not None:
        return _checked_point(lon, lat)
    if address_string:
        return locate_address(conn, address_string)
    if address_id:
        return _unit_place(conn, address_id)
    raise Open311Error("a location is required: lat and long, address_string or address_id")


def _checked_point(lon: float, lat: float) -> Place:
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180
            and -90 <= lat <= 90):
        raise Open311Error(f"lat/long: ({lat}, {lon}) is not a WGS84 position")
    return Place(lon, lat, "wgs84")


def locate_address(conn: Connection, address: str) -> Place:
    """An address without a geocoder: a ``lon,lat`` pair, or the name of a grid, community or
    street of the active generation (its interior point; the most specific one named wins)."""
    pair = LON_LAT.fullmatch(address)
    if pair:
        return _checked_point(float(pair[1]), float(pair[2]))
    rows = conn.execute(text(
        """SELECT u.level, u.name, p.name AS parent_name, ST_X(s.pt) AS x, ST_Y(s.pt) AS y
           FROM unit u JOIN generation g ON g.id = u.generation_id AND g.active
           LEFT JOIN unit p ON p.id = u.parent_id
           CROSS JOIN LATERAL (SELECT ST_PointOnSurface(u.geom) AS pt) s
           WHERE u.level IN ('grid', 'community', 'street')
             AND (strpos(:a, u.name) > 0 OR :a = regexp_replace(u.name, :suffix, ''))"""),
        {"a": address.strip(), "suffix": UNIT_SUFFIX.pattern}).all()
    chosen = _most_specific(rows, address)
    return Place(chosen.x, chosen.y, "cgcs2000", chosen.name)


def _most_specific(rows: Sequence[Row], address: str) -> Row:
    for level in ("grid", "community", "street"):
        found = [row for row in rows if row.level == level]
        if len(found) > 1:  # prefer the ones whose parent the address names too
            found = [row for row in found
                     if row.parent_name and row.parent_name in address] or found
        if len(found) == 1:
            return found[0]
        if found:
            names = ", ".join(f"{row.parent_name or ''}{row.name}" for row in found)
            raise Open311Error(f"address_string: {address!r} matches several places "
                               f"({names}); name its community or street too")
    raise Open311Error(
        f"address_string: {address!r} could not be located (no geocoder: send lat/long, a "
        "'lon,lat' pair, or the name of a street, community or grid of the district)")


def _unit_place(conn: Connection, code: str) -> Place:
    row = conn.execute(text(
        """SELECT u.name, ST_X(ST_PointOnSurface(u.geom)) AS x,
                  ST_Y(ST_PointOnSurface(u.geom)) AS y
           FROM unit u JOIN generation g ON g.id = u.generation_id AND g.active
           WHERE u.code = :c AND u.level IN ('grid', 'community', 'street')"""),
        {"c": code.strip()}).first()
    if row is None:
        raise Open311Error(f"address_id: {code!r} is not the code of a grid, community or "
                           "street of the district")
    return Place(row.x, row.y, "cgcs2000", row.name)


def _check_inside(conn: Connection, place: Place) -> None:
    if not lookup_point(conn, place.x, place.y, place.crs).inside:
        raise Open311Error(f"the location ({place.y}, {place.x}) is outside the district: "
                           "requests are taken only inside its grids")


# -- filing ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Submission:
    """What a client posted, parsed (numbers as numbers, attributes as lists of values)."""

    service_code: str
    lat: float | None = None
    lon: float | None = None
    address_string: str | None = None
    address_id: str | None = None
    description: str = ""
    media_url: str | None = None
    attributes: Mapping[str, Sequence[str]] = field(default_factory=dict)
    device_id: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Filed:
    request_id: str
    service_notice: str
    replayed: bool


def check_filer(user: User | None) -> User:
    if user is None:
        raise Forbidden("invalid api_key received -- can't proceed with create_request")
    if user.role not in FILING_ROLES and user.role != "admin":
        raise Forbidden(f"this api_key's account (role {user.role}) may not create requests")
    return user


def file_request(conn: Connection, workflow: Workflow, user: User, submission: Submission,
                 now: datetime) -> Filed:
    """Check a submission and file it as a report with its case (a replay answers the first)."""
    service = get_service(conn, submission.service_code)
    attributes = check_attributes(service, submission.attributes)
    place = locate(conn, submission.lat, submission.lon, submission.address_string,
                   submission.address_id)
    _check_inside(conn, place)
    description = compose_description(service, submission, attributes, place)
    try:
        result = submit_report(
            conn, workflow, user, source=SOURCE, class_code=service.code, x=place.x,
            y=place.y, crs=place.crs, reported_at=now, description=description,
            idempotency_key=_idempotency_key(submission),
            photos=[{"media_url": submission.media_url}] if submission.media_url else [])
    except NotAllowed as exc:
        raise Forbidden(f"this api_key may not file here: {exc}") from None
    except (InvalidInput, IncidentError) as exc:
        raise Open311Error(str(exc)) from None
    if result.case is None:
        raise Open311Error("the request could not be filed as a case")
    request = get_request(conn, result.case.number, disclosure=None)
    return Filed(result.case.number, request.service_notice, result.replayed)


def compose_description(service: Service, submission: Submission,
                        attributes: Mapping[str, list[str]], place: Place) -> str:
    """The client's description, then its attributes and address as one line of notes."""
    names = {a.code: a for a in attributes_of(service)}
    notes = [f"{names[code].label}：{names[code].display(values)}"
             for code, values in attributes.items()]
    if submission.address_string:
        notes.append(f"地址：{submission.address_string.strip()}")
    if place.stands_for:
        notes.append(f"位置取{place.stands_for}内的代表点")
    body = submission.description.strip()
    composed = "\n".join(part for part in (body, f"【{'；'.join(notes)}】" if notes else "")
                         if part)
    if len(composed) > DESCRIPTION_LIMIT:
        raise Open311Error(f"description: at most {DESCRIPTION_LIMIT} characters, attribute and "
                           "address notes included")
    return composed


def _idempotency_key(submission: Submission) -> str | None:
    """``o311:<device hash>:<key>``; the reporting user is prefixed by submit_report."""
    key = submission.idempotency_key
    if key is None:
        return None
    if not TOKEN.fullmatch(key):
        raise Open311Error("idempotency_key: 1 to 64 letters, digits, '.', '~' or '-'")
    device = submission.device_id
    digest = hashlib.sha256(device.encode()).hexdigest()[:16] if device else "-"
    return f"o311:{digest}:{key}"


def resolve_token(conn: Connection, token: str) -> list[dict[str, str]]:
    """The requests filed with idempotency key ``token`` (by any device), oldest first."""
    if not TOKEN.fullmatch(token):
        raise NotFound(f"token {token!r} not found")
    numbers = conn.execute(text(
        """SELECT c.number FROM incident_key k
           JOIN case_file c ON c.incident_id = k.incident_id
                           AND c.incident_reported_at = k.reported_at
           WHERE k.source = :s AND right(k.source_key, length(:t) + 1) = ':' || :t
           ORDER BY c.reported_at, c.id"""), {"s": SOURCE, "t": token}).scalars().all()
    if not numbers:
        raise NotFound(f"token {token!r} not found")
    return [{"service_request_id": number, "token": token} for number in numbers]


# -- requests -------------------------------------------------------------------------------------
def status_of(state: str) -> str:
    return "closed" if state in CLOSED_STATES else "open"


def states_of(statuses: Iterable[str]) -> list[str]:
    wanted = set(statuses)
    return [state for state in STATES if status_of(state) in wanted]


#: What a client is told about a request in a state that ends it.
END_NOTICES = {"closed": "已办结", "evaluated": "已办结并完成评价", "not_accepted": "不予受理",
               "duplicate": "重复上报，已并入其他案件办理", "void": "已作废",
               "not_filed": "不予立案"}


def service_notice(state: str, agency: str | None, expected: datetime | None) -> str:
    if state in END_NOTICES:
        return END_NOTICES[state]
    if state == "suspended":
        return "暂缓处理（挂账）"
    notice = f"已登记，由{agency}负责处理" if agency else "已登记"
    if expected is not None:
        notice += f"，应于{expected.astimezone(LOCAL):%Y-%m-%d %H:%M}前办结"
    return notice


@dataclass(frozen=True)
class ServiceRequest:
    """One request in GeoReport v2 terms (free text still unmasked: the web layer masks)."""

    service_request_id: str
    status: str
    status_notes: str | None
    service_name: str | None
    service_code: str
    description: str | None
    agency_responsible: str | None
    service_notice: str
    requested_datetime: datetime
    updated_datetime: datetime
    expected_datetime: datetime | None
    address: str | None
    address_id: str | None
    zipcode: None
    lat: float | None
    long: float | None
    media_url: str | None


@dataclass(frozen=True)
class Disclosure:
    """What public reads may see: the public sources, and the sensitive classes among them."""

    sources: frozenset[str] = PUBLIC_SOURCES
    sensitive_classes: frozenset[str] = SENSITIVE_CLASSES

    def redacts(self, class_code: str) -> bool:
        return class_code in self.sensitive_classes


#: The default for public reads; ``None`` (internal use) shows every case in full.
PUBLIC = Disclosure()


def redacted(item: ServiceRequest, street: str | None) -> ServiceRequest:
    """A request of a sensitive class as the public sees it: status, class, dates, agency and
    notice; no description, notes, media, grid or position, only the ``street`` as address."""
    return replace(item, status_notes=None, description=None, address=street,
                   address_id=None, lat=None, long=None, media_url=None)


@dataclass(frozen=True)
class Query:
    """GET requests: ids override everything else; otherwise a window of at most 90 days."""

    ids: list[str] | None = None
    service_codes: list[str] | None = None
    start: datetime | None = None
    end: datetime | None = None
    statuses: list[str] | None = None

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        start, end = self.start, self.end
        if start is None and end is None:
            return now - WINDOW, now
        start = start or end - WINDOW
        end = end or start + WINDOW
        if end < start:
            raise Open311Error("end_date: before start_date")
        if end - start > WINDOW:
            raise Open311Error("start_date/end_date: may not span more than 90 days")
        return start, end


_REQUEST_SQL = """
    SELECT c.id, c.number, c.state, c.class_code, i.source, c.reported_at, c.updated_at,
           c.closed_at, c.due_at, c.handle_due_at, k.minor_name AS service_name, i.description,
           d.name AS department_name, g.code AS grid_code, g.name AS grid_name,
           cm.name AS community_name, s.name AS street_name, s.code AS street_code,
           ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat,
           (SELECT e.note FROM case_event e WHERE e.case_id = c.id AND e.seq > 1
              AND e.note <> '' ORDER BY e.seq DESC LIMIT 1) AS last_note,
           (SELECT p ->> 'media_url' FROM case_event e
              CROSS JOIN LATERAL jsonb_array_elements(e.photos) p
            WHERE e.case_id = c.id AND e.seq = 1 AND jsonb_typeof(p) = 'object'
              AND p ? 'media_url' LIMIT 1) AS media_url
    FROM case_file c
    JOIN incident i ON i.id = c.incident_id AND i.reported_at = c.incident_reported_at
    LEFT JOIN incident_class k ON k.code = c.class_code
    LEFT JOIN department d ON d.id = c.department_id
    LEFT JOIN unit g ON g.id = c.grid_id
    LEFT JOIN unit cm ON cm.id = c.community_id
    LEFT JOIN unit s ON s.id = c.street_id"""


def find_requests(conn: Connection, query: Query, now: datetime,
                  disclosure: Disclosure | None = PUBLIC) -> list[ServiceRequest]:
    """The requests matching ``query`` that ``disclosure`` shows (None: every case), newest
    first, at most :data:`MAX_REQUESTS`. Asked for by id, sensitive ones come redacted; in a
    search they are left out."""
    where, params = _where(query, now, disclosure)
    rows = conn.execute(text(
        f"{_REQUEST_SQL} WHERE {' AND '.join(where) or 'TRUE'} "
        "ORDER BY c.reported_at DESC, c.id DESC LIMIT :limit"),
        {**params, "limit": MAX_REQUESTS}).mappings().all()
    return _to_requests(conn, rows, disclosure)


def _where(query: Query, now: datetime, disclosure: Disclosure | None
           ) -> tuple[list[str], dict[str, Any]]:
    where: list[str] = []
    params: dict[str, Any] = {}
    if disclosure is not None:
        where.append("i.source = ANY(:sources)")
        params["sources"] = sorted(disclosure.sources)
    if query.ids is not None:
        return [*where, "c.number = ANY(:ids)"], {**params, "ids": query.ids}
    if disclosure is not None and disclosure.sensitive_classes:
        where.append("NOT (c.class_code = ANY(:sensitive))")
        params["sensitive"] = sorted(disclosure.sensitive_classes)
    start, end = query.window(now)
    where += ["c.reported_at >= :start", "c.reported_at <= :end"]
    params.update(start=start, end=end)
    if query.service_codes:
        where.append("c.class_code = ANY(:codes)")
        params["codes"] = query.service_codes
    if query.statuses:
        where.append("c.state = ANY(:states)")
        params["states"] = states_of(query.statuses)
    return where, params


def get_request(conn: Connection, request_id: str,
                disclosure: Disclosure | None = PUBLIC) -> ServiceRequest:
    """One request as ``disclosure`` shows it (None: any case, in full); a case it hides is
    not found, exactly like an unknown id."""
    rows = conn.execute(text(f"{_REQUEST_SQL} WHERE c.number = :n"),
                        {"n": request_id}).mappings().all()
    if disclosure is not None:
        rows = [row for row in rows if row["source"] in disclosure.sources]
    if not rows:
        raise NotFound(f"service request {request_id!r} not found")
    return _to_requests(conn, rows, disclosure)[0]


def _to_requests(conn: Connection, rows: Sequence[Mapping[str, Any]],
                 disclosure: Disclosure | None) -> list[ServiceRequest]:
    agencies: dict[str, str | None] = {}
    found = [_request(row, _agency(conn, row, agencies)) for row in rows]
    if disclosure is None:
        return found
    return [redacted(item, row["street_name"]) if disclosure.redacts(item.service_code)
            else item for item, row in zip(found, rows, strict=True)]


def _agency(conn: Connection, row: Mapping[str, Any], cache: dict[str, str | None]
            ) -> str | None:
    """The department the case went to, or the one its routing names before dispatch."""
    if row["department_name"]:
        return row["department_name"]
    code = row["class_code"]
    if code not in cache:  # the responsible department depends on the class only
        try:
            cache[code] = route_case(conn, code, row["street_code"]).department_name
        except LookupError:
            cache[code] = None
    return cache[code]


def _request(row: Mapping[str, Any], agency: str | None) -> ServiceRequest:
    state = row["state"]
    expected = row["due_at"] or row["handle_due_at"]
    closed = state in WORKFLOW_CLOSED and row["closed_at"] is not None
    places = [row["street_name"], row["community_name"], row["grid_name"]]
    return ServiceRequest(
        service_request_id=row["number"], status=status_of(state), status_notes=row["last_note"],
        service_name=row["service_name"], service_code=row["class_code"],
        description=row["description"] or None, agency_responsible=agency,
        service_notice=service_notice(state, agency, expected),
        requested_datetime=row["reported_at"],
        updated_datetime=row["closed_at"] if closed else row["updated_at"],
        expected_datetime=expected,
        address=" · ".join(p for p in places if p) or None, address_id=row["grid_code"],
        zipcode=None, lat=_coordinate(row["lat"]), long=_coordinate(row["lon"]),
        media_url=row["media_url"])


def _coordinate(value: float | None) -> float | None:
    return None if value is None else round(float(value), 7)
