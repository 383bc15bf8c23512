"""The command centre (desktop): the map, the case queue, the case page with its actions, the
indicator dashboard and its exports, under ``/command``.

Every page needs a signed-in centre role (:data:`READ_ROLES`; the viewer reads only) and
calls ``gis`` for data and rules: :mod:`gis.command_centre` reads, :mod:`gis.workflow` decides
and applies actions, :mod:`gis.indicators` and :mod:`gis.case_summary` count. What is shown is
in the reader's language (:mod:`webmap.i18n`); personal data is masked.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import format_date, pgettext
from flask_babel import gettext as _
from werkzeug.routing import BuildError

from gis import command_centre as centre
from gis.case_summary import default_period
from gis.duplicates import suggest_duplicates
from gis.indicators import LEVELS, pass_rate, unit_indicators
from gis.masking import mask_name, mask_phone
from gis.models.incidents import SOURCES
from gis.periods import SHANGHAI, Period, parse_period
from gis.routing import route_case
from gis.workflow import STATES, TRANSITIONS, Workflow, WorkflowError, allowed_actions
from webmap import current_store
from webmap.auth import roles_required, user
from webmap.charts import bar_chart, line_chart
from webmap.exports import CSV_MIME, XLSX_MIME, Column, to_csv, to_xlsx
from webmap.i18n import (
    ACTION_LABELS,
    INDICATOR_LABELS,
    LEVEL_LABELS,
    ROLE_LABELS,
    SOURCE_LABELS,
    STATE_LABELS,
    label,
    number,
    points,
    rate,
    signed,
)

bp = Blueprint("command", __name__, url_prefix="/command", template_folder="templates")

#: Who may open the command centre, and who may act in it (admin always passes).
READ_ROLES = ("acceptor", "shift_leader", "dispatcher", "supervisor", "viewer")
ACT_ROLES = ("acceptor", "shift_leader", "dispatcher", "supervisor")
WORKFLOW_KEY = "gridgov.workflow"
PER_PAGE = 50
MAX_PAGE = 100_000


def _engine():
    return current_store().engine


def _now() -> datetime:
    return datetime.now(UTC)


def _workflow() -> Workflow:
    """The workflow (calendar and deadline book), loaded once per app."""
    workflow = current_app.extensions.get(WORKFLOW_KEY)
    if workflow is None:
        with _engine().connect() as conn:
            workflow = current_app.extensions[WORKFLOW_KEY] = Workflow.load(conn)
    return workflow


def _error_page(message: str, status: int = 400) -> tuple[str, int]:
    return render_template("command/error.html", message=message), status


class BadInput(ValueError):
    """A query parameter the page cannot use; the message is for the reader."""


@bp.errorhandler(BadInput)
def _bad_input(exc: BadInput) -> tuple[str, int]:
    return _error_page(str(exc))


def _period(value: str | None) -> Period | None:
    """The period a query parameter names, None when empty; :class:`BadInput` when wrong."""
    if not value or not value.strip():
        return None
    try:
        return parse_period(value)
    except ValueError:
        raise BadInput(_("Period: use 2019, 2019Q2, 2019-05 or 2019-01-01..2019-03-31.")
                       ) from None


def _default_period() -> Period:
    with _engine().connect() as conn:
        return default_period(conn)


@bp.app_template_filter("mask_name")
def _mask_name(value: str | None) -> str:
    return mask_name(value) or "—"


@bp.app_template_filter("mask_phone")
def _mask_phone(value: str | None) -> str:
    return mask_phone(value) or "—"


def _heat_map_url(**args: str) -> str | None:
    """The indicator heat map page, when that blueprint is installed."""
    try:
        return url_for("heatmaps.indicator_page", **args)
    except BuildError:
        return None


# -- filters --------------------------------------------------------------------------------------
FILTER_KEYS = ("state", "class", "unit", "department", "source", "period", "overdue")


def _case_filter(args: Mapping[str, str]) -> centre.CaseFilter:
    department = args.get("department", "")
    try:
        return centre.CaseFilter(
            state=args.get("state") or None,
            class_code=(args.get("class") or "").strip().upper() or None,
            unit=(args.get("unit") or "").strip() or None,
            department_id=int(department) if department.isdigit() else None,
            source=args.get("source") or None, period=_period(args.get("period")),
            overdue=args.get("overdue") == "1").check()
    except ValueError as exc:
        if isinstance(exc, BadInput):
            raise
        raise BadInput(_("Filter not understood: %(reason)s", reason=str(exc))) from None


def _filter_args(args: Mapping[str, str]) -> dict[str, str]:
    return {key: args[key] for key in FILTER_KEYS if args.get(key)}


def _choices() -> dict[str, list[tuple[str, str]]]:
    """The options of the filter selects, as (value, label) pairs in the reader's language."""
    with _engine().connect() as conn:
        classes = centre.incident_classes(conn)
        departments = centre.departments(conn)
    return {"states": [(s, label(STATE_LABELS, s)) for s in STATES],
            "sources": [(s, label(SOURCE_LABELS, s)) for s in SOURCES],
            "classes": [(code, f"{code} {major} / {minor}") for code, major, minor in classes],
            "departments": [(str(d.id), d.name) for d in departments]}


# -- map ------------------------------------------------------------------------------------------
@bp.get("/")
@roles_required(*READ_ROLES)
def index() -> Response:
    return redirect(url_for("command.cases"))


@bp.get("/map")
@roles_required(*READ_ROLES)
def map_page() -> str:
    """Units at every level, cases and incidents as filterable layers, links to the queue and
    the heat maps."""
    filters = _filter_args(request.args)
    _case_filter(filters)  # refuse bad input before the page is drawn
    layers = request.args.getlist("layer") or ["cases"]
    config = {
        "unitsUrl": url_for("api.units"),
        "casesUrl": url_for("command.cases"),
        "points": {layer: url_for("command.map_points", layer=layer, **filters)
                   for layer in ("cases", "incidents")},
        "show": layers,
        "heatUrl": _heat_map_url(),
        "period": filters.get("period", ""),
        "text": _map_text(),
    }
    period = filters.get("period")
    return render_template("command/map.html", filters=filters, layers=layers, config=config,
                           heat_url=_heat_map_url(period=period) if period else _heat_map_url(),
                           choices=_choices())


def _map_text() -> dict[str, Any]:
    return {"streets": _("Streets"), "communities": _("Communities"), "grids": _("Grids"),
            "cases": pgettext("map layer", "Cases"),
            "incidents": pgettext("map layer", "Incidents"), "caseList": _("Cases here"),
            "heatMap": _("Indicator heat map"), "open": _("Open case"),
            "truncated": _("Only the newest %(n)s are drawn.", n=number(centre.MAP_LIMIT)),
            "failed": _("Could not load a layer."),
            "states": {s: str(STATE_LABELS[s]) for s in STATES},
            "sources": {s: str(SOURCE_LABELS.get(s, s)) for s in SOURCES}}


@bp.get("/map/points.json")
@roles_required(*READ_ROLES)
def map_points() -> Response | tuple[Response, int]:
    """Cases (``layer=cases``) or incidents (``layer=incidents``) as GeoJSON points."""
    layer = request.args.get("layer", "cases")
    try:
        filters = _case_filter(request.args)
    except BadInput as exc:
        return jsonify(error={"status": 400, "message": str(exc)}), 400
    with _engine().connect() as conn:
        if layer == "incidents":
            data = centre.incident_points(conn, filters)
        elif layer == "cases":
            data = centre.case_points(conn, filters, now=_now())
        else:
            return jsonify(error={"status": 400, "message": "layer: cases or incidents"}), 400
    for feature in data["features"]:
        props = feature["properties"]
        if layer == "cases":
            props["url"] = url_for("command.case_page", case_id=props["id"])
        elif props.get("case_id"):
            props["url"] = url_for("command.case_page", case_id=props["case_id"])
    return jsonify(data)


# -- case queue -----------------------------------------------------------------------------------
@bp.get("/cases")
@roles_required(*READ_ROLES)
def cases() -> str:
    """The case queue: filters, sortable columns (overdue first by default), pages."""
    filters = _filter_args(request.args)
    sort = request.args.get("sort", "overdue")
    if sort not in centre.CASE_SORTS:
        raise BadInput(_("Unknown sort key."))
    descending = request.args.get("dir", "desc" if sort in ("overdue", "reported") else "asc"
                                  ) == "desc"
    page_number = request.args.get("page", "1")
    # bounded: a huge page number would overflow the query's OFFSET (a 500)
    page_number = min(int(page_number), MAX_PAGE) if page_number.isdigit() else 1
    with _engine().connect() as conn:
        page = centre.list_cases(conn, _case_filter(filters), now=_now(), sort=sort,
                                 descending=descending, page=page_number, per_page=PER_PAGE)
    return render_template("command/cases.html", page=page, filters=filters, sort=sort,
                           descending=descending, choices=_choices())


# -- one case -------------------------------------------------------------------------------------
#: Extra form fields per action (besides the note, which every action takes).
ACTION_FIELDS = {"mark_duplicate": ("duplicate_of",), "dispatch": ("department",),
                 "copy_to": ("department", "reason"), "evaluate": ("score",),
                 "request_extension": ("work_hours",)}
#: Actions that end or set back a case: drawn as warning buttons.
DANGER = frozenset({"reject", "void", "decline_filing", "verify_fail", "refuse_extension",
                    "mark_duplicate", "suspend"})


@dataclass(frozen=True)
class ActionForm:
    action: str
    needs_note: bool
    fields: tuple[str, ...]
    danger: bool


def available_actions(account, case: centre.CaseFile) -> list[str]:
    """What ``account`` may do to ``case`` now: the workflow's transitions for its role and the
    case's state, inside its scope; an extension can be decided only while one is pending."""
    if account is None or not account.case_scope().allows(case.grid_code, case.department_id,
                                                          case.handler_id):
        return []

    def possible(action: str) -> bool:
        if action in ("approve_extension", "refuse_extension"):
            return case.extension_pending
        return action != "request_extension" or not case.extension_pending

    return [a for a in allowed_actions(case.state, account.role) if possible(a)]


def action_forms(actions: list[str]) -> list[ActionForm]:
    return [ActionForm(a, TRANSITIONS[a].needs_note, ACTION_FIELDS.get(a, ()), a in DANGER)
            for a in actions]


def _case_context(case_id: int) -> dict[str, Any] | None:
    with _engine().connect() as conn:
        case = centre.get_case(conn, case_id, now=_now())
        if case is None:
            return None
        trail = centre.case_trail(conn, case_id)
        departments = centre.departments(conn)
        try:
            route = route_case(conn, case.class_code, case.street_code,
                               datetime.now(SHANGHAI).date())
        except LookupError:
            route = None
        duplicates = [] if case.lon is None else [
            d for d in suggest_duplicates(conn, case.class_code, case.lon, case.lat)
            if d.case_id != case.id]
    names = {d.id: d.name for d in departments}
    account = user()
    return {"case": case, "trail": trail, "route": route, "duplicates": duplicates,
            "departments": departments,
            "route_copies": [names.get(i, str(i)) for i in route.copy_department_ids]
            if route else [],
            "forms": action_forms(available_actions(account, case)),
            "may_act": account is not None and account.role in (*ACT_ROLES, "admin"),
            "photo_url": _photo_url}


def _photo_url(photo: Mapping[str, Any]) -> str | None:
    """Where a trail photo is served (``/photos/<id>``), when it can be."""
    if isinstance(photo.get("url"), str) and photo["url"].startswith("/"):
        return photo["url"]
    photo_id = photo.get("id")
    if isinstance(photo_id, int) or (isinstance(photo_id, str) and photo_id.isdigit()):
        try:
            return url_for("photos.show", photo_id=int(photo_id))
        except BuildError:
            return None
    return None


@bp.get("/cases/<int:case_id>")
@roles_required(*READ_ROLES)
def case_page(case_id: int) -> str | tuple[str, int]:
    """Details, trail, route suggestion, possible duplicates and the actions allowed now."""
    context = _case_context(case_id)
    if context is None:
        return _error_page(_("There is no case %(id)s.", id=case_id), 404)
    return render_template("command/case.html", **context)


def _action_details(action: str, form: Mapping[str, str]) -> dict[str, Any]:
    """The workflow's keyword arguments for ``action`` from the posted form."""
    details: dict[str, Any] = {}
    fields = ACTION_FIELDS.get(action, ())
    if "department" in fields and form.get("department_id", "").isdigit():
        details["department_id"] = int(form["department_id"])
    if "reason" in fields:
        details["reason"] = form.get("reason", "").strip()
    if "score" in fields:
        details["score"] = _number(form.get("score"))
    if "work_hours" in fields:
        details["work_hours"] = _number(form.get("work_hours"))
    if "duplicate_of" in fields:
        reference = form.get("duplicate_of", "").strip() or form.get("duplicate_choice", "")
        with _engine().connect() as conn:
            details["duplicate_of"] = centre.find_case_id(conn, reference) if reference else None
    return details


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


@bp.post("/cases/<int:case_id>/act")
@roles_required(*ACT_ROLES)
def act(case_id: int) -> Response | tuple[str, int]:
    """Apply one workflow action as the signed-in user; errors come back on the case page."""
    action = request.form.get("action", "")
    note = request.form.get("note", "").strip()
    account = user()
    try:
        details = _action_details(action, request.form)
        with _engine().begin() as conn:
            _workflow().act(conn, case_id, action, account.actor(), at=_now(), note=note,
                            **details)
    except WorkflowError as exc:
        context = _case_context(case_id)
        if context is None:
            return _error_page(_("There is no case %(id)s.", id=case_id), 404)
        return render_template("command/case.html", error=workflow_message(exc),
                               **context), exc.status
    flash(_("Done: %(action)s.", action=label(ACTION_LABELS, action)), "success")
    return redirect(url_for("command.case_page", case_id=case_id), code=303)


#: The workflow's messages (English, for logs and API clients) → the reader's language.
_WORKFLOW_MESSAGES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"(\w+) needs a note"), lambda m: _("Write a note saying why.")),
    (re.compile(r"cannot (\w+) a case that is (\w+)"), lambda m: _(
        "This case is “%(state)s” now: “%(action)s” is not possible.",
        state=label(STATE_LABELS, m[2]), action=label(ACTION_LABELS, m[1]))),
    (re.compile(r"a (\w+) may not (\w+)"), lambda m: _(
        "Your role (%(role)s) may not “%(action)s”.", role=label(ROLE_LABELS, m[1]),
        action=label(ACTION_LABELS, m[2]))),
    (re.compile(r"needs duplicate_of"), lambda m: _(
        "Choose the original case (its number or id).")),
    (re.compile(r"needs a score"), lambda m: _("Give a score from 0 to 100.")),
    (re.compile(r"copy_to needs department_id"), lambda m: _("Choose a department.")),
    (re.compile(r"needs work_hours"), lambda m: _("Give the extra working hours (up to 480).")),
    (re.compile(r"no extension is waiting"), lambda m: _("No extension is waiting.")),
    (re.compile(r"already waiting"), lambda m: _("An extension is already waiting.")),
    (re.compile(r"before the case's last event"), lambda m: _(
        "The case has changed meanwhile: reload the page and try again.")),
    (re.compile(r"not dispatched to the actor's department"), lambda m: _(
        "This case is not dispatched to your department.")),
    (re.compile(r"outside the actor's grids"), lambda m: _("This case lies outside your grids.")),
    (re.compile(r"unknown action"), lambda m: _("Unknown action.")),
    (re.compile(r"there is no case"), lambda m: _("There is no such case.")),
]


def workflow_message(exc: WorkflowError) -> str:
    """The reason an action was refused, in the reader's language."""
    text = str(exc)
    for pattern, message in _WORKFLOW_MESSAGES:
        match = pattern.search(text)
        if match:
            return message(match)
    return _("The action was refused: %(reason)s", reason=text)


# -- dashboard ------------------------------------------------------------------------------------
TABLE_INDICATORS = ("reports", "filed", "closure_rate", "on_time_closure_rate",
                    "on_time_handling_rate", "rework_rate", "overdue",
                    "occurrence_per_km2_month", "score", "passed")
COMPARE_INDICATORS = ("on_time_closure_rate", "closure_rate", "overdue", "score")
RATE_COLUMNS = frozenset({"filing_rate", "handling_rate", "on_time_handling_rate",
                          "closure_rate", "on_time_closure_rate", "rework_rate",
                          "consolidation_rate"})
SORT_COLUMNS = frozenset({"code", "name", *TABLE_INDICATORS})


def _kind(indicator: str) -> str:
    if indicator in RATE_COLUMNS:
        return "rate"
    if indicator == "passed":
        return "bool"
    return "float" if indicator in ("score", "occurrence_per_km2_month") else "int"


@dataclass(frozen=True)
class DashboardQuery:
    level: str
    period: Period
    compare: Period | None
    sort: str
    descending: bool
    within: str = ""  # a unit code: only the units inside it

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> DashboardQuery:
        level = args.get("level", "street")
        if level not in LEVELS:
            raise BadInput(_("Unknown level."))
        sort = args.get("sort", "code")
        if sort not in SORT_COLUMNS:
            raise BadInput(_("Unknown sort key."))
        within = args.get("within", "").strip()
        if within and not within.isdigit():
            raise BadInput(_("Unit code: digits only."))
        period = _period(args.get("period")) or _default_period()
        return cls(level, period, _period(args.get("compare")), sort,
                   args.get("dir", "asc") == "desc", within)

    def args(self, **changes: str) -> dict[str, str]:
        out = {"level": self.level, "period": self.period.label, "sort": self.sort,
               "dir": "desc" if self.descending else "asc"}
        if self.compare:
            out["compare"] = self.compare.label
        if self.within:
            out["within"] = self.within
        return {**out, **changes}

    def narrow(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows of the units inside :attr:`within` (all rows without it)."""
        if not self.within:
            return frame
        return frame[frame.index.astype(str).str.startswith(self.within)]


def indicator_table(conn, query: DashboardQuery) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The indicator frame of the query's level and period, and :func:`indicator_rows`."""
    frame = query.narrow(unit_indicators(conn, query.level, query.period))
    return frame, indicator_rows(conn, query, frame)


def indicator_rows(conn, query: DashboardQuery, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One sorted dict per unit of ``frame``: code, name, every indicator, and at grid level
    the grid's leader (personal data: mask before showing)."""
    leaders = centre.grid_leaders(conn) if query.level == "grid" else {}
    rows = []
    for code, record in zip(frame.index, frame.to_dict("records"), strict=True):
        row = {"code": str(code), **record}
        if query.level == "grid":
            leader = leaders.get(str(code))
            row["leader"] = leader.name if leader else None
            row["leader_phone"] = leader.phone if leader else None
        rows.append(row)

    def missing(row: dict[str, Any]) -> bool:
        value = row.get(query.sort)
        return value is None or (isinstance(value, float) and math.isnan(value))

    rows.sort(key=lambda row: (0 if missing(row) else row[query.sort], row["code"]),
              reverse=query.descending)
    rows.sort(key=missing)  # units without a value last, whatever the direction
    return rows


def _charts(conn, query: DashboardQuery, figures: centre.DashboardFigures,
            rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Bars of the on-time closure rate per street; the district's monthly trend."""
    if query.level != "street":
        streets = DashboardQuery("street", query.period, None, "code", False, query.within[:9])
        rows = indicator_rows(conn, streets, streets.narrow(figures.streets))
    streets = sorted(rows, key=lambda r: r["code"])
    bars = bar_chart([(r["name"], r["on_time_closure_rate"]) for r in streets],
                     title=_("On-time closure rate per street, %(period)s",
                             period=query.period.label), value_text=rate)
    months = [month for month, _ in figures.trend]
    trend = [district for _, district in figures.trend]
    labels = [format_date(m.start.date(), "yyyy-MM" if i == 0 or m.start.month == 1 else "LLL")
              for i, m in enumerate(months)]
    line = line_chart(
        labels, [(_("On-time closure rate"), [t["on_time_closure_rate"] for t in trend]),
                 (_("Closure rate"), [t["closure_rate"] for t in trend])],
        title=_("Monthly trend, district"), value_text=lambda v: rate(v, 0))
    return {"bars": bars, "trend": line}


def _comparison(query: DashboardQuery,
                figures: centre.DashboardFigures) -> list[dict[str, Any]] | None:
    if figures.comparison is None:
        return None
    frame = query.narrow(figures.comparison)
    return [{"code": str(code), **record}
            for code, record in zip(frame.index, frame.to_dict("records"), strict=True)]


@bp.get("/dashboard")
@roles_required(*READ_ROLES)
def dashboard() -> str | tuple[str, int]:
    """Indicators per unit with pass/fail, period comparison, charts and the case summary."""
    query = DashboardQuery.from_args(request.args)
    try:
        with _engine().connect() as conn:
            figures = centre.dashboard_figures(conn, query.level, query.period, now=_now(),
                                               compare=query.compare)
            frame = query.narrow(figures.table)
            rows = indicator_rows(conn, query, frame)
            context = {"rows": rows, "charts": _charts(conn, query, figures, rows),
                       "comparison": _comparison(query, figures), "summary": figures.summary}
    except LookupError:
        return _error_page(_("No boundaries are loaded yet."), 503)
    passed = pass_rate(frame)
    return render_template(
        "command/dashboard.html", query=query, levels=LEVELS, columns=TABLE_INDICATORS,
        compare_columns=COMPARE_INDICATORS, kinds={c: _kind(c) for c in TABLE_INDICATORS},
        pass_rate=passed, heat_url=_heat_map_url(level=query.level, period=query.period.label,
                                                 indicator="on_time_closure_rate"),
        format_change=_format_change, **context)


def _format_change(indicator: str, value: float | None) -> str:
    if _kind(indicator) == "rate":
        return points(value)
    return signed(value, 1 if _kind(indicator) == "float" else 0)


# -- exports --------------------------------------------------------------------------------------
def export_columns(level: str) -> list[Column]:
    """The dashboard table as export columns, headers in the reader's language."""
    columns = [Column("code", _("Code")), Column("name", _("Name"))]
    columns += [Column(i, str(INDICATOR_LABELS[i]), _kind(i)) for i in TABLE_INDICATORS]
    if level == "grid":
        columns += [Column("leader", _("Grid leader"), mask=mask_name),
                    Column("leader_phone", _("Phone"), mask=mask_phone)]
    return columns


def _export(fmt: str) -> Response:
    query = DashboardQuery.from_args(request.args)
    with _engine().connect() as conn:
        rows = indicator_table(conn, query)[1]
    columns = export_columns(query.level)
    yes_no = (_("yes"), _("no"))
    name = f"indicators-{query.level}-{query.period.label}.{fmt}"
    if fmt == "csv":
        body, mime = to_csv(columns, rows, yes_no=yes_no, rate_suffix=" (%)"), CSV_MIME
    else:
        body = to_xlsx(columns, rows, sheet=f"{label(LEVEL_LABELS, query.level)} "
                       f"{query.period.label}", yes_no=yes_no,
                       highlight=lambda r: None if r["passed"] else "FEE2E2")
        mime = XLSX_MIME
    response = Response(body, mimetype=mime)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@bp.get("/dashboard.csv")
@roles_required(*READ_ROLES)
def dashboard_csv() -> Response:
    return _export("csv")


@bp.get("/dashboard.xlsx")
@roles_required(*READ_ROLES)
def dashboard_xlsx() -> Response:
    return _export("xlsx")
