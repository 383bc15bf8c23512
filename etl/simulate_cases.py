"""Simulated cases: every simulated incident walked through the workflow, in memory, fast.

For each assigned incident of a ``gridgov simulate`` run (source key ``SIM<seed>-…``) that has
no case yet, a case path is drawn (docs/SIMULATION.md has the model and its knobs):

- the command centre accepts most reports and files them; a few are not accepted, duplicates,
  void or not filed;
- filed cases are dispatched as :func:`gis.routing.route_case` says (responsible department,
  the squadron of the street, copies); some are returned (buck-passing) and dispatched again,
  some supervised, some extended or suspended; the handler signs, handles, feeds back; on-site
  verification sometimes fails (rework); then verification, closing and evaluation;
- durations are working time (:class:`gis.worktime.WorkCalendar`), or clock time for classes
  whose handling deadline is in clock hours (emergencies); nothing happens after the end of
  the simulated range, so recent cases are still open.

How well a case goes depends on its community's *performance* in that year, drawn from a Beta
distribution whose mean and spread are per-year knobs (``data/catalogues/simulation.toml``,
tuned by :func:`calibrate`). The indicators are never written: they come out of
:mod:`gis.indicators` run on the simulated cases.

Every step is checked with :func:`gis.workflow.check_transition` and applied by
:class:`CaseMachine`, which derives the ``case_file`` columns and ``case_event`` rows exactly as
:meth:`gis.workflow.Workflow.act` would (a test replays paths through the real workflow and
compares), with the same :class:`DeadlineBook` and calendar. Rows are written with COPY in the
caller's transaction.
"""

from __future__ import annotations

import json
import math
import os
import random
import secrets
import time
import tomllib
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import numpy as np
from sqlalchemy import Connection, Engine, text

from gis.config import DATA_DIR, STORAGE_SRID
from gis.deadlines import DeadlineBook
from gis.routing import Route, route_case
from gis.workflow import (
    CLOSED_STATES,
    STAGE_OF_STATE,
    TERMINAL_STATES,
    Actor,
    WorkflowError,
    check_transition,
)
from gis.worktime import SHANGHAI, WorkCalendar

SIMULATION_TOML = DATA_DIR / "catalogues" / "simulation.toml"
SIM_KEY_PREFIX = "SIM{seed}-"
WORK_DAY_H = 7.5  # working hours in a working day (the default schedule)
MIN_GAP = timedelta(minutes=1)  # the shortest time between two events of a case
DUPLICATE_WINDOW = timedelta(days=3)
_ENDED = TERMINAL_STATES | CLOSED_STATES

#: District figures of DOMAIN.md §1 that the calibration aims at (2019 vs 2018).
TARGETS = {"on_time_closure": {2018: 0.847, 2019: 0.976},
           "pass_rate": {2018: 0.342, 2019: 0.886}}


# -- knobs ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class YearKnobs:
    """The knobs of one year (the calibration tunes ``performance_mean`` and
    ``late_closure``; ``occurrence`` and ``performance_spread`` are set by hand)."""

    occurrence: float = 1.0  # relative daily rate of incidents
    performance_mean: float = 0.6  # mean of the communities' performance (Beta)
    performance_spread: float = 8.0  # Beta concentration a + b: larger, more even communities
    late_closure: float = 0.3  # P(closure deadline missed) = late_closure × (1 − performance)


@dataclass(frozen=True)
class Branches:
    """Shares of the side paths: demo assumptions, the same every year."""

    not_accepted: float = 0.03
    duplicate: float = 0.03  # when a case of the class was opened in the grid in 3 days
    void: float = 0.005
    not_filed: float = 0.02
    returned: float = 0.12  # × (1 − performance), per dispatch, at most twice
    supervised: float = 0.5  # returned cases the shift leader supervises before re-dispatch
    overdue_supervised: float = 0.3  # late handling that is supervised
    rework: float = 0.4  # × (1 − performance), per verification, at most twice
    extension: float = 0.04
    extension_refused: float = 0.25
    suspended: float = 0.015
    evaluated: float = 0.9
    persistence: float = 0.6  # correlation of a community's performance between years


@dataclass(frozen=True)
class SimulationConfig:
    """Everything ``data/catalogues/simulation.toml`` holds."""

    years: dict[int, YearKnobs]
    branches: Branches = field(default_factory=Branches)
    calibration: dict = field(default_factory=dict)  # how the knobs were found, and the figures

    def year(self, year: int) -> YearKnobs:
        """The knobs of ``year``, else of the nearest year listed."""
        if not self.years:
            return YearKnobs()
        return self.years.get(year) or self.years[min(self.years, key=lambda y: abs(y - year))]

    def occurrence(self) -> dict[int, float]:
        return {year: knobs.occurrence for year, knobs in self.years.items()}

    def rounded(self, digits: int = 4) -> SimulationConfig:
        """The knobs as written to the TOML file (so figures measured with them reproduce)."""
        return replace(self, years={year: YearKnobs(**{k: round(v, digits) for k, v in
                                                       asdict(knobs).items()})
                                    for year, knobs in self.years.items()})

    def with_year(self, year: int, **changes: float) -> SimulationConfig:
        return replace(self, years={**self.years, year: replace(self.year(year), **changes)})

    @classmethod
    def initial(cls) -> SimulationConfig:
        """A starting point for a calibration without a knobs file."""
        return cls({2018: YearKnobs(performance_spread=6.0),
                    2019: YearKnobs(occurrence=0.85, performance_mean=0.7, late_closure=0.1)})

    @classmethod
    def load(cls, path: Path = SIMULATION_TOML) -> SimulationConfig:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
        years = {int(year): YearKnobs(**knobs) for year, knobs in raw.get("years", {}).items()}
        return cls(years, Branches(**raw.get("branches", {})), raw.get("calibration", {}))

    def dump(self, path: Path = SIMULATION_TOML) -> Path:
        lines = ["# Knobs of the case simulator (etl/simulate_cases.py, docs/SIMULATION.md).",
                 "# Written by `gridgov simulate --calibrate`; the figures are those the",
                 "# indicator engine gave on the cases simulated with these knobs.", ""]
        lines += _toml_table("calibration", self.calibration)
        lines += _toml_table("branches", asdict(self.branches))
        for year in sorted(self.years):
            lines += _toml_table(f"years.{year}", asdict(self.years[year]))
        Path(path).write_text("\n".join(lines), encoding="utf-8")
        return Path(path)


def _toml_table(name: str, values: Mapping) -> list[str]:
    """A TOML table of scalars (strings, booleans, numbers, dates), sub-tables after."""
    out = [f"[{name}]"]
    out += [f"{key} = {_toml_value(value)}" for key, value in values.items()
            if not isinstance(value, dict)]
    out.append("")
    for key, value in values.items():
        if isinstance(value, dict):
            out += _toml_table(f"{name}.{key}", value)
    return out


def _toml_value(value) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(round(value, 4))
    return str(value)  # int, date


def community_performance(codes: list[str], years: list[int], config: SimulationConfig,
                          seed: int) -> dict[tuple[str, int], float]:
    """Performance (0–1) per (community code, year): the year's Beta quantile of a latent
    normal that persists between years (correlation ``branches.persistence``). The latent draws
    depend only on the seed and the code, so a knob moves every community the same way."""
    from scipy.special import betaincinv, ndtr

    rho = config.branches.persistence
    out = {}
    for code in codes:
        base = np.random.default_rng([seed, int(code)]).standard_normal()
        for year in years:
            knobs = config.year(year)
            noise = np.random.default_rng([seed, int(code), year]).standard_normal()
            quantile = ndtr(rho * base + math.sqrt(1 - rho * rho) * noise)
            a = knobs.performance_mean * knobs.performance_spread
            b = (1 - knobs.performance_mean) * knobs.performance_spread
            out[code, year] = float(np.clip(betaincinv(a, b, quantile), 0.001, 0.999))
    return out


# -- what the paths need from the database -------------------------------------------------------
@dataclass(frozen=True)
class SimIncident:
    id: int
    reported_at: datetime
    source: str
    class_code: str
    lon: float
    lat: float
    generation_id: int
    grid_id: int
    community_id: int
    street_id: int
    grid_code: str
    community_code: str
    street_code: str
    area_class: str

    @property
    def year(self) -> int:
        return self.reported_at.year


def pending_incidents(conn: Connection, seed: int, start: datetime,
                      end: datetime) -> list[SimIncident]:
    """Assigned incidents of the simulation ``seed`` reported in [start, end) without a case,
    in time order."""
    rows = conn.execute(text(
        """
        SELECT i.id, i.reported_at, i.source, i.class_code, ST_X(i.geom), ST_Y(i.geom),
               i.generation_id, i.grid_id, i.community_id, i.street_id, g.code, c.code, s.code,
               coalesce(ac.area_class, 'B')
        FROM incident i
        JOIN unit g ON g.id = i.grid_id
        JOIN unit c ON c.id = i.community_id
        JOIN unit s ON s.id = i.street_id
        LEFT JOIN grid_area_class ac ON ac.grid_code = g.code
        WHERE i.location_status = 'assigned' AND i.source_key LIKE :prefix
          AND i.reported_at >= :start AND i.reported_at < :end
          AND NOT EXISTS (SELECT 1 FROM case_file f WHERE f.incident_id = i.id
                          AND f.incident_reported_at = i.reported_at)
        ORDER BY i.reported_at, i.id
        """), {"prefix": SIM_KEY_PREFIX.format(seed=seed) + "%", "start": start, "end": end})
    return [SimIncident(r[0], r[1].astimezone(SHANGHAI), *r[2:]) for r in rows]


def reserve_case_ids(conn: Connection, n: int) -> list[int]:
    return sorted(conn.execute(text(
        "SELECT nextval('case_file_id_seq') FROM generate_series(1, :n)"), {"n": n}).scalars())


@dataclass(frozen=True)
class RoutedTo:
    """A route, its trail form (``details["route"]`` of a dispatch) and that trail as JSON."""

    route: Route
    details: dict
    trail_json: str


class RouteBook:
    """:func:`route_case` answers, cached per class, street and power-list period of the class
    (its route changes only where one of its power items starts or ends)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.breaks: dict[str, list[date]] = {}
        for class_code, valid_from, valid_to in conn.execute(text(
                """SELECT cp.class_code, p.valid_from, p.valid_to FROM class_power cp
                   JOIN power_item p ON p.id = cp.power_item_id""")):
            days = self.breaks.setdefault(class_code, [])
            days += [d for d in (valid_from, valid_to) if d is not None]
        self.breaks = {code: sorted(set(days)) for code, days in self.breaks.items()}
        self.cache: dict[tuple, RoutedTo] = {}

    def route(self, class_code: str, street_code: str, on: date) -> RoutedTo:
        key = (class_code, street_code, bisect_right(self.breaks.get(class_code, ()), on))
        found = self.cache.get(key)
        if found is None:
            route = route_case(self.conn, class_code, street_code, on)
            details = route.to_dict()
            found = self.cache[key] = RoutedTo(route, details, _dumps({"route": details}))
        return found


class Crew:
    """Who acts: staff of the catalogues (generic names where there are none)."""

    #: post → the role its staff act in
    CENTRE_ROLES: ClassVar[dict[str, str]] = {
        "acceptor": "acceptor", "call_taker": "acceptor", "shift_leader": "shift_leader",
        "dispatcher": "dispatcher", "supervisor": "supervisor"}
    LABELS: ClassVar[dict[str, str]] = {
        "acceptor": "受理员", "call_taker": "接线员", "shift_leader": "值班长",
        "dispatcher": "派遣员", "supervisor": "监督员"}
    CITIZEN = Actor("viewer", "市民（随手拍）")

    def __init__(self, conn: Connection) -> None:
        self.posts: dict[str, list[Actor]] = {}
        self.departments: dict[int, list[Actor]] = {}
        self.grids: dict[str, list[Actor]] = {}
        for staff_id, name, post, department_id in conn.execute(text(
                "SELECT id, name, post, department_id FROM staff WHERE active ORDER BY id")):
            if post in self.CENTRE_ROLES:
                actor = Actor(self.CENTRE_ROLES[post], name, staff_id)
                self.posts.setdefault(post, []).append(actor)
            elif post in ("enforcement_member", "management_member"):
                actor = Actor("handler", name, staff_id, department_id=department_id)
                self.departments.setdefault(department_id, []).append(actor)
        for staff_id, name, grid_code in conn.execute(text(
                """SELECT s.id, s.name, g.grid_code FROM staff_grid g JOIN staff s
                   ON s.id = g.staff_id WHERE g.role = 'worker' AND s.active
                   ORDER BY g.grid_code, s.id""")):
            actor = Actor("grid_worker", name, staff_id, grid_codes=frozenset({grid_code}))
            self.grids.setdefault(grid_code, []).append(actor)
        for post, label in self.LABELS.items():
            self.posts.setdefault(post, [Actor(self.CENTRE_ROLES[post], label)])
        for department_id, name in conn.execute(text("SELECT id, name FROM department")):
            self.departments.setdefault(department_id, [
                Actor("handler", f"{name}经办人", department_id=department_id)])

    @staticmethod
    def _pick(pool: list[Actor], u: float) -> Actor:
        return pool[min(int(u * len(pool)), len(pool) - 1)]

    def centre(self, post: str, u: float) -> Actor:
        return self._pick(self.posts[post], u)

    def handler(self, department_id: int, u: float) -> Actor:
        return self._pick(self.departments[department_id], u)

    def grid_worker(self, grid_code: str, u: float) -> Actor:
        pool = self.grids.get(grid_code)
        if pool is None:
            pool = self.grids[grid_code] = [
                Actor("grid_worker", "网格员", grid_codes=frozenset({grid_code}))]
        return self._pick(pool, u)

    def reporter(self, incident: SimIncident, u: float) -> Actor:
        if incident.source == "grid_worker":
            return self.grid_worker(incident.grid_code, u)
        if incident.source == "video_patrol":
            return self.centre("supervisor", u)
        if incident.source == "api":
            return self.CITIZEN
        return self.centre("call_taker", u)

    def on_site(self, incident: SimIncident, u: float) -> Actor:
        """Two times in three the grid's worker re-checks on site, else a supervisor."""
        if u < 2 / 3:
            return self.grid_worker(incident.grid_code, u * 1.5)
        return self.centre("supervisor", u)


# -- the workflow, in memory ---------------------------------------------------------------------
CASE_COLUMNS = (
    "id", "number", "incident_id", "incident_reported_at", "class_code", "state",
    "suspended_from", "area_class", "generation_id", "grid_id", "community_id", "street_id",
    "department_id", "handler_id", "duplicate_of_id", "reported_at", "accepted_at", "filed_at",
    "dispatched_at", "handled_at", "verified_at", "closed_at", "evaluated_at", "node_due_at",
    "handle_due_at", "due_at", "rework_count", "return_count", "extension_count",
    "extension_pending", "supervised", "evaluation_score", "version", "updated_at")
EVENT_COLUMNS = ("case_id", "seq", "action", "from_state", "to_state", "actor_staff_id",
                 "actor_name", "actor_role", "at", "geom", "note", "photos", "details",
                 "node_due_at", "overdue")


@dataclass(frozen=True)
class Step:
    """One call of :meth:`gis.workflow.Workflow.act` (``details`` as its keyword arguments)."""

    action: str
    actor: Actor
    at: datetime
    note: str = ""
    location: tuple[float, float] | None = None
    details: dict = field(default_factory=dict)


@dataclass
class SimCase:
    row: dict  # the case_file row
    street_code: str
    events: list[tuple] = field(default_factory=list)  # case_event rows (EVENT_COLUMNS)
    copies: dict[int, datetime] = field(default_factory=dict)  # department id → copied at
    steps: list[Step] = field(default_factory=list)  # steps[0] opens the case
    pending_hours: float | None = None  # the extension waiting for approval

    @property
    def last_at(self) -> datetime:
        return self.events[-1][8]


class CaseMachine:
    """:meth:`Workflow.open_case` and :meth:`Workflow.act` without the database: the same
    rule check, deadlines and column changes, on a dict."""

    def __init__(self, calendar: WorkCalendar, deadlines: DeadlineBook,
                 routes: RouteBook) -> None:
        self.calendar, self.deadlines, self.routes = calendar, deadlines, routes
        self._trail_json: str | None = None

    def due(self, row: dict, stage: str, start: datetime) -> datetime | None:
        return self.deadlines.due(self.calendar, row["class_code"], row["area_class"], stage,
                                  start)

    def open(self, incident: SimIncident, case_id: int, opening: Step) -> SimCase:
        at = incident.reported_at
        row = dict.fromkeys(CASE_COLUMNS)
        row.update(
            id=case_id, number=f"{at:%Y%m%d}{case_id:08d}", incident_id=incident.id,
            incident_reported_at=at, class_code=incident.class_code, state="reported",
            area_class=incident.area_class, generation_id=incident.generation_id,
            grid_id=incident.grid_id, community_id=incident.community_id,
            street_id=incident.street_id, reported_at=at, rework_count=0, return_count=0,
            extension_count=0, extension_pending=False, supervised=False, version=1,
            updated_at=at)
        row["node_due_at"] = self.due(row, "accept", at)
        case = SimCase(row, incident.street_code, steps=[opening])
        case.events.append(_event(row, 1, "report", None, "reported", opening,
                                  row["node_due_at"], False,
                                  _dumps({"incident_id": incident.id})))
        return case

    def act(self, case: SimCase, step: Step) -> None:
        row = case.row
        try:
            transition = check_transition(row["state"], step.action, step.actor.role,
                                          note=step.note)
        except WorkflowError as exc:
            raise AssertionError(f"simulated case {row['id']}: illegal step: {exc}") from exc
        if step.at <= case.last_at:
            raise AssertionError(f"simulated case {row['id']}: {step.action} at {step.at} is "
                                 "not after the case's last event")
        overdue = row["node_due_at"] is not None and step.at > row["node_due_at"]
        target = transition.target or row["state"]
        changes: dict = {}
        details = dict(step.details)
        self._trail_json = None  # set by effects whose trail JSON is known already
        effect = getattr(self, f"_on_{step.action}", None)
        if effect is not None:
            target = effect(case, step.at, changes, details) or target
        if target != row["state"] and target in STAGE_OF_STATE and "node_due_at" not in changes:
            changes["node_due_at"] = self._node_due(row, target, step.at)
        elif target in _ENDED:
            changes.setdefault("node_due_at", None)
        changes.update(state=target, updated_at=step.at)
        event = _event(row, len(case.events) + 1, step.action, row["state"], target, step,
                       changes.get("node_due_at", row["node_due_at"]), overdue,
                       self._trail_json or _dumps(details))
        row.update(changes)
        row["version"] += 1
        case.events.append(event)
        case.steps.append(step)

    def _node_due(self, row: dict, state: str, at: datetime) -> datetime | None:
        if state in ("dispatched", "handling") and row["handle_due_at"] is not None:
            return row["handle_due_at"]
        return self.due(row, STAGE_OF_STATE[state], at)

    # .. the effects of Workflow._on_<action>, on the row ......................................
    def _on_accept(self, case, at, changes, details):
        changes["accepted_at"] = at

    def _on_mark_duplicate(self, case, at, changes, details):
        changes["duplicate_of_id"] = details["duplicate_of"]

    def _on_file(self, case, at, changes, details):
        changes["filed_at"] = at
        changes["due_at"] = self.due(case.row, "total", at)

    def _on_dispatch(self, case, at, changes, details):
        row = case.row
        routed = self.routes.route(row["class_code"], case.street_code, at.date())
        route = routed.route
        details.setdefault("route", routed.details)
        if details == {"route": routed.details}:
            self._trail_json = routed.trail_json
        changes.update(department_id=route.department_id, handler_id=route.handler_id,
                       dispatched_at=at)
        if row["handle_due_at"] is None:
            changes["handle_due_at"] = self.due(row, "handle", at)
        changes["node_due_at"] = changes.get("handle_due_at", row["handle_due_at"])
        for department_id in route.copy_department_ids:
            case.copies.setdefault(department_id, at)

    def _on_return(self, case, at, changes, details):
        changes.update(return_count=case.row["return_count"] + 1, handler_id=None)

    def _on_feedback(self, case, at, changes, details):
        changes["handled_at"] = at

    def _on_verify_pass(self, case, at, changes, details):
        changes["verified_at"] = at

    def _on_verify_fail(self, case, at, changes, details):
        changes["rework_count"] = case.row["rework_count"] + 1
        changes["node_due_at"] = case.row["handle_due_at"]

    def _on_close(self, case, at, changes, details):
        changes["closed_at"] = at

    def _on_evaluate(self, case, at, changes, details):
        changes.update(evaluation_score=float(details["score"]), evaluated_at=at)

    def _on_suspend(self, case, at, changes, details):
        changes.update(suspended_from=case.row["state"], node_due_at=None)

    def _on_resume(self, case, at, changes, details):
        row = case.row
        changes["suspended_from"] = None
        paused = self.calendar.elapsed(row["updated_at"], at, "work_hours")
        if row["handle_due_at"] is not None:
            changes["handle_due_at"] = self.calendar.add(row["handle_due_at"], paused,
                                                         "work_hours")
            changes["node_due_at"] = changes["handle_due_at"]
        if row["due_at"] is not None:
            changes["due_at"] = self.calendar.add(row["due_at"], paused, "work_hours")
        return row["suspended_from"]

    def _on_request_extension(self, case, at, changes, details):
        changes["extension_pending"] = True
        case.pending_hours = float(details["work_hours"])

    def _on_approve_extension(self, case, at, changes, details):
        row = case.row
        hours, case.pending_hours = case.pending_hours, None
        changes.update(extension_pending=False, extension_count=row["extension_count"] + 1,
                       handle_due_at=self.calendar.add(row["handle_due_at"], hours,
                                                       "work_hours"))
        changes["node_due_at"] = changes["handle_due_at"]
        if row["due_at"] is not None:
            changes["due_at"] = self.calendar.add(row["due_at"], hours, "work_hours")
        details["work_hours"] = hours

    def _on_refuse_extension(self, case, at, changes, details):
        case.pending_hours = None
        changes["extension_pending"] = False

    def _on_supervise(self, case, at, changes, details):
        changes["supervised"] = True


def _event(row: dict, seq: int, action: str, from_state: str | None, to_state: str,
           step: Step, node_due_at: datetime | None, overdue: bool, details_json: str) -> tuple:
    geom = (None if step.location is None
            else f"SRID={STORAGE_SRID};POINT({step.location[0]!r} {step.location[1]!r})")
    return (row["id"], seq, action, from_state, to_state, step.actor.staff_id, step.actor.name,
            step.actor.role, step.at, geom, step.note, "[]", details_json, node_due_at, overdue)


def _dumps(details: dict) -> str:
    """The trail's JSON of ``details``, as :meth:`Workflow._append` writes it."""
    return json.dumps(details, ensure_ascii=False, default=str) if details else "{}"


# -- the path model ------------------------------------------------------------------------------
#: Named uniform draws of a case: a knob moves a threshold, never which draw is used, so the
#: same seed gives the same case except where the knob changes its outcome.
SLOTS = {name: i for i, name in enumerate((
    "accept", "d_accept", "file", "d_file", "d_dispatch", "return", "return_signed0",
    "return_signed1", "d_sign_r0", "d_sign_r1", "d_return0", "d_return1", "supervise0",
    "supervise1", "d_supervise0", "d_supervise1", "d_redispatch0", "d_redispatch1", "d_sign",
    "extension", "ext_hours", "d_ext", "d_ext_decide", "ext_refused", "suspend", "d_suspend",
    "d_resume", "rework", "handle", "h0", "h1", "v0", "v1", "h_final", "fit_h", "late_h",
    "close", "overdue_supervise", "d_verify", "d_close", "fit_c", "late_c", "evaluate",
    "score", "d_evaluate", "reporter", "acceptor", "shift", "dispatcher", "handler", "on_site",
))}
CENTRE_SLOTS = {"acceptor": "acceptor", "shift_leader": "shift", "dispatcher": "dispatcher"}
NOTES = {
    "reject": "不属于受理范围", "void": "信息不实，作废",
    "decline_filing": "经核实问题不存在，不予立案",
    "return": "非本单位职责，申请退回", "supervise": "退回件督办", "overdue": "处置超时，督办",
    "feedback": "已按要求处置完毕", "rework": "现场核查未整改到位，返工",
    "suspend": "需多部门协调，挂账处理", "request_extension": "处置难度大，申请延期",
    "refuse_extension": "延期理由不充分，不予延期", "resume": "协调完毕，恢复办理",
}


class _Horizon(Exception):
    """The next step would happen after the end of the simulation."""


class Walk:
    """Draws and applies one case's path, step after step."""

    def __init__(self, model: PathModel, case: SimCase, incident: SimIncident,
                 performance: float, draws: list[float]) -> None:
        self.model, self.case, self.incident = model, case, incident
        self.perf, self.draws = performance, draws
        self.calendar = model.machine.calendar
        self.branches = model.config.branches
        self.knobs = model.config.year(incident.year)
        self.t = incident.reported_at
        rule = model.machine.deadlines.rule(incident.class_code, incident.area_class, "handle")
        self.unit = "hours" if rule is not None and rule.unit in ("hours", "days") else (
            "work_hours")
        self.point = (incident.lon, incident.lat)
        self.close_on_time = self.u("close") >= self.knobs.late_closure * (1 - performance)
        self.handle_length = 3 * WORK_DAY_H

    # .. draws and time ..........................................................................
    def u(self, slot: str) -> float:
        return self.draws[SLOTS[slot]]

    def exp(self, slot: str, mean: float) -> float:
        return -mean * math.log1p(-self.u(slot))

    def next_time(self, base: datetime, hours: float, unit: str | None = None) -> datetime:
        """``hours`` of (working) time after ``base``, whole seconds, a minute at least."""
        later = self.calendar.add(base, max(hours, 0.0), unit or self.unit)
        return max(later, base + MIN_GAP).replace(microsecond=0)

    def at(self, hours: float, unit: str | None = None) -> datetime:
        return self.next_time(self.t, hours, unit)

    def do(self, action: str, actor: Actor, at: datetime, note: str = "",
           location: tuple[float, float] | None = None, **details) -> None:
        if at >= self.model.horizon:
            raise _Horizon
        self.model.machine.act(self.case, Step(action, actor, at, note, location, details))
        self.t = at

    def centre(self, post: str) -> Actor:
        return self.model.crew.centre(post, self.u(CENTRE_SLOTS[post]))

    def handler(self) -> Actor:
        return self.model.crew.handler(self.case.row["handler_id"], self.u("handler"))

    # .. the path ................................................................................
    def run(self) -> SimCase:
        try:
            if self.accept() and self.file():
                self.dispatch()
                self.buck_passing()
                self.do("sign", self.handler(),
                        self.at(0.1 + self.exp("d_sign", 0.3 + 1.2 * (1 - self.perf))))
                self.extension()
                self.suspension()
                self.handle()
                self.close()
                self.evaluate()
        except _Horizon:
            pass
        return self.case

    def accept(self) -> bool:
        b, r = self.branches, self.u("accept")
        at = self.at(0.05 + self.exp("d_accept", 0.25))
        original = self.model.original(self.incident)
        if r < b.not_accepted:
            self.do("reject", self.centre("acceptor"), at, NOTES["reject"])
        elif r < b.not_accepted + b.duplicate and original is not None:
            self.do("mark_duplicate", self.centre("acceptor"), at, duplicate_of=original)
        elif b.not_accepted + b.duplicate <= r < b.not_accepted + b.duplicate + b.void:
            self.do("void", self.centre("shift_leader"), at, NOTES["void"])
        else:
            self.do("accept", self.centre("acceptor"), at)
            self.model.remember(self.incident, self.case.row["id"])
            return True
        return False

    def file(self) -> bool:
        at = self.at(0.05 + self.exp("d_file", 0.2))
        if self.u("file") < self.branches.not_filed:
            self.do("decline_filing", self.centre("shift_leader"), at, NOTES["decline_filing"])
            return False
        self.do("file", self.centre("shift_leader"), at)
        return True

    def dispatch(self) -> None:
        self.do("dispatch", self.centre("dispatcher"), self.at(0.05 + self.exp("d_dispatch", 0.25)))
        row = self.case.row
        if row["handle_due_at"] is not None:
            self.handle_length = self.calendar.elapsed(self.t, row["handle_due_at"], self.unit)

    def buck_passing(self) -> None:
        """Returned by a department that says the matter is not its own, then dispatched
        again (the routing stands); the shift leader often supervises the case."""
        p = self.branches.returned * (1 - self.perf)
        r = self.u("return")
        for i in range((r < p) + (r < p * p)):
            if self.u(f"return_signed{i}") < 0.5:
                self.do("sign", self.handler(), self.at(0.1 + self.exp(f"d_sign_r{i}", 0.5)))
            self.do("return", self.handler(), self.at(0.3 + self.exp(f"d_return{i}", 1.5)),
                    NOTES["return"])
            if self.u(f"supervise{i}") < self.branches.supervised:
                self.do("supervise", self.centre("shift_leader"),
                        self.at(0.1 + self.exp(f"d_supervise{i}", 0.3)), NOTES["supervise"])
            self.do("dispatch", self.centre("dispatcher"),
                    self.at(0.1 + self.exp(f"d_redispatch{i}", 0.5)))

    def extension(self) -> None:
        if self.u("extension") >= self.branches.extension:
            return
        hours = WORK_DAY_H * (1 + int(self.u("ext_hours") * 3))
        self.do("request_extension", self.handler(), self.at(0.2 + self.exp("d_ext", 0.8)),
                NOTES["request_extension"], work_hours=hours)
        decided = self.at(0.1 + self.exp("d_ext_decide", 0.5), "work_hours")
        if self.u("ext_refused") < self.branches.extension_refused:
            self.do("refuse_extension", self.centre("shift_leader"), decided,
                    NOTES["refuse_extension"])
        else:
            self.do("approve_extension", self.centre("shift_leader"), decided)

    def suspension(self) -> None:
        """Suspended (挂账) for 2 working days to a few weeks; the clocks stop meanwhile."""
        if self.u("suspend") >= self.branches.suspended:
            return
        self.do("suspend", self.centre("shift_leader"), self.at(0.2 + self.exp("d_suspend", 1)),
                NOTES["suspend"])
        self.do("resume", self.centre("shift_leader"),
                self.at(WORK_DAY_H * (2 + self.exp("d_resume", 10)), "work_hours"),
                NOTES["resume"])

    def handle(self) -> None:
        """Feedback, failed verifications (rework) and the last feedback: all before the
        handling deadline with probability ``performance``, else the last one after it."""
        p = self.branches.rework * (1 - self.perf)
        reworks = (self.u("rework") < p) + (self.u("rework") < p * p)
        length = max(self.handle_length, 0.5)
        durations = []
        for i in range(reworks):
            durations += [length * (0.1 + 0.4 * self.u(f"h{i}")), 0.2 + self.exp(f"v{i}", 0.8)]
        durations.append(length * (0.15 + 0.6 * self.u("h_final")))
        due, closure_due = self.case.row["handle_due_at"], self.case.row["due_at"]
        on_time = self.u("handle") < self.perf
        target = due
        if self.close_on_time and due is not None and closure_due is not None:
            # closing on time needs the handling done before the closure deadline too, and
            # in time when the handling deadline is not before the closure deadline
            target = min(due, closure_due)
            on_time = on_time or self.calendar.elapsed(due, closure_due, self.unit) <= 0.2
        times = self.within(target, durations, "fit_h") if on_time else None
        if times is None:
            times = self.late(due, durations, self.handle_lateness(due, length))
        for i in range(reworks):
            self.do("feedback", self.handler(), times[2 * i], NOTES["feedback"])
            self.do("verify_fail", self.model.crew.on_site(self.incident, self.u("on_site")),
                    times[2 * i + 1], NOTES["rework"], self.point)
        self.overdue_supervision(due, times[-1])
        self.do("feedback", self.handler(), times[-1], NOTES["feedback"])

    def handle_lateness(self, due: datetime | None, length: float) -> float:
        """How long after the handling deadline a late handler feeds back; when the case is
        still to close on time, within the time left before the closure deadline."""
        natural = length * (0.05 + self.exp("late_h", 0.5))
        closure_due = self.case.row["due_at"]
        if due is None or closure_due is None or not self.close_on_time:
            return natural
        room = self.calendar.elapsed(due, closure_due, self.unit)
        return min(natural, room * (0.1 + 0.5 * self.u("fit_h"))) if room > 0.2 else natural

    def overdue_supervision(self, due: datetime | None, feedback_at: datetime) -> None:
        if due is None or self.u("overdue_supervise") >= self.branches.overdue_supervised:
            return
        at = max(self.t, due) + (feedback_at - max(self.t, due)) / 3
        at = at.replace(microsecond=0)
        if at > max(self.t, due) and feedback_at - at > MIN_GAP:
            self.do("supervise", self.centre("shift_leader"), at, NOTES["overdue"])

    def close(self) -> None:
        """On-site verification and closing: before the closure deadline when the case is to
        close on time and can, else after it (the re-check or the closing waits)."""
        due = self.case.row["due_at"]
        durations = [0.2 + self.exp("d_verify", 1.0), 0.05 + self.exp("d_close", 0.3)]
        times = self.within(due, durations, "fit_c") if self.close_on_time else None
        if times is None:
            times = self.late(due, durations, WORK_DAY_H * (0.2 + self.exp("late_c", 1.2)))
        self.do("verify_pass", self.model.crew.on_site(self.incident, self.u("on_site")),
                times[0], location=self.point)
        self.do("close", self.centre("shift_leader"), times[1])

    def evaluate(self) -> None:
        if self.u("evaluate") >= self.branches.evaluated:
            return
        row = self.case.row
        on_time = row["due_at"] is None or row["closed_at"] <= row["due_at"]
        score = (85 + 15 * self.u("score") if on_time else 60 + 25 * self.u("score"))
        score = max(0, round(score - 5 * row["rework_count"]))
        self.do("evaluate", self.centre("shift_leader"),
                self.at(0.5 + self.exp("d_evaluate", 4.0), "work_hours"), score=score)

    # .. fitting durations to deadlines ..........................................................
    def times(self, durations: list[float]) -> list[datetime]:
        out, base = [], self.t
        for hours in durations:
            base = self.next_time(base, hours)
            out.append(base)
        return out

    def within(self, due: datetime | None, durations: list[float],
               slot: str) -> list[datetime] | None:
        """Times for ``durations`` from now, shrunk to end before ``due``; None if they cannot."""
        if due is None:
            return self.times(durations)
        window = self.calendar.elapsed(self.t, due, self.unit)
        budget = window * (0.5 + 0.45 * self.u(slot))
        if budget <= 0.05 * len(durations):
            return None
        scale = min(1.0, budget / sum(durations))
        times = self.times([d * scale for d in durations])
        return times if times[-1] <= due else None

    def late(self, due: datetime | None, durations: list[float],
             lateness: float) -> list[datetime]:
        """Times for ``durations`` from now, the first stretched so the last comes
        ``lateness`` after ``due`` (when it would not be late anyway)."""
        times = self.times(durations)
        if due is None or times[-1] > due:
            return times
        gap = self.calendar.elapsed(self.t, due, self.unit)
        stretched = [max(gap - sum(durations[1:]), durations[0]) + lateness, *durations[1:]]
        times = self.times(stretched)
        if times[-1] <= due:  # rounding: make sure
            times[-1] = self.next_time(due, lateness)
        return times


@dataclass
class PathModel:
    """Shared by the walks of one run: the machine, the crew, the knobs, the end of time."""

    machine: CaseMachine
    crew: Crew
    config: SimulationConfig
    horizon: datetime
    recent: dict[tuple[int, str], tuple[int, datetime]] = field(default_factory=dict)

    def original(self, incident: SimIncident) -> int | None:
        """A case of the same class opened in the same grid in the last days, if any."""
        found = self.recent.get((incident.grid_id, incident.class_code))
        if found is None or incident.reported_at - found[1] > DUPLICATE_WINDOW:
            return None
        return found[0]

    def remember(self, incident: SimIncident, case_id: int) -> None:
        self.recent[incident.grid_id, incident.class_code] = (case_id, incident.reported_at)

    def walk(self, incident: SimIncident, case_id: int, performance: float,
             draws: list[float]) -> SimCase:
        """Open the incident's case as its reporter, then walk it."""
        location = None if incident.source == "hotline" else (incident.lon, incident.lat)
        opening = Step("report", self.crew.reporter(incident, draws[SLOTS["reporter"]]),
                       incident.reported_at, location=location)
        case = self.machine.open(incident, case_id, opening)
        return Walk(self, case, incident, performance, draws).run()


def case_draws(seed: int, incident_id: int) -> list[float]:
    """The uniform draws of one case: they depend only on the seed and the incident."""
    stream = random.Random(seed * 10**12 + incident_id)
    return [stream.random() for _ in SLOTS]


# -- a run ---------------------------------------------------------------------------------------
@dataclass
class CaseSummary:
    cases: int = 0
    events: int = 0
    copies: int = 0
    states: dict[str, int] = field(default_factory=dict)
    draw_seconds: float = 0.0  # drawing the paths in memory
    seconds: float = 0.0  # everything, writing included
    skipped: str = ""

    @property
    def drawn_per_second(self) -> float:
        return self.cases / self.draw_seconds if self.draw_seconds > 0 else 0.0

    def to_text(self) -> str:
        if self.skipped:
            return f"cases: none simulated ({self.skipped})"
        states = ", ".join(f"{n:,} {state}" for state, n in
                           sorted(self.states.items(), key=lambda kv: -kv[1]))
        return (f"cases: {self.cases:,} simulated through the workflow ({self.events:,} events, "
                f"{self.copies:,} copies; drawn at {self.drawn_per_second:,.0f} cases/s, "
                f"{self.seconds:.1f} s in all)" + (f"; now {states}" if states else ""))


def not_ready(conn: Connection) -> str:
    """Why cases cannot be simulated in this database ('' when they can)."""
    if conn.execute(text("SELECT 1 FROM deadline_rule LIMIT 1")).first() is None:
        return "no deadline rules: run `gridgov catalogues load`"
    if conn.execute(text("SELECT 1 FROM department WHERE kind = 'command_centre'")
                    ).first() is None:
        return "no departments: run `gridgov catalogues load`"
    return ""


@dataclass
class Setting:
    """What the paths need from the database, loaded once (reusable across runs)."""

    machine: CaseMachine
    crew: Crew

    @classmethod
    def load(cls, conn: Connection, calendar: WorkCalendar | None = None) -> Setting:
        machine = CaseMachine(calendar or WorkCalendar.from_csv(), DeadlineBook.load(conn),
                              RouteBook(conn))
        return cls(machine, Crew(conn))


def simulate_cases(conn: Connection, *, seed: int, start: date, end: date,
                   config: SimulationConfig, setting: Setting | None = None,
                   horizon: datetime | None = None) -> list[SimCase]:
    """Case paths, in memory, for the pending incidents of simulation ``seed`` reported from
    ``start`` to ``end`` (inclusive). Nothing happens at or after ``horizon`` (default: the end
    of ``end``, or now if earlier; incidents reported later wait for a later run). Case ids are
    taken from the sequence."""
    first, stop = _midnight(start), _midnight(end + timedelta(days=1))
    horizon = horizon or min(stop, datetime.now(SHANGHAI))
    incidents = pending_incidents(conn, seed, first, min(stop, horizon))
    if not incidents:
        return []
    setting = setting or Setting.load(conn)
    setting.machine.routes.conn = conn
    model = PathModel(setting.machine, setting.crew, config, horizon)
    performance = community_performance(sorted({i.community_code for i in incidents}),
                                        sorted({i.year for i in incidents}), config, seed)
    ids = reserve_case_ids(conn, len(incidents))
    return [model.walk(incident, case_id, performance[incident.community_code, incident.year],
                       case_draws(seed, incident.id))
            for incident, case_id in zip(incidents, ids, strict=True)]


def write_cases(conn: Connection, cases: list[SimCase], *, trail: bool = True) -> CaseSummary:
    """COPY the cases, their trail and their copies (in the caller's transaction). Without
    ``trail`` only ``case_file`` is written (all the indicators read; calibration trials)."""
    cursor = conn.connection.driver_connection.cursor()
    summary = CaseSummary(cases=len(cases))
    with cursor.copy(f"COPY case_file ({', '.join(CASE_COLUMNS)}) FROM STDIN") as copy:
        for case in cases:
            copy.write_row([case.row[c] for c in CASE_COLUMNS])
    summary.states = dict(Counter(case.row["state"] for case in cases))
    if trail:
        _copy_trail(cursor, cases, summary)
    # fresh statistics: the indicator queries plan badly on a table the planner thinks empty
    cursor.execute("ANALYZE case_file" + (", case_event, case_copy" if trail else ""))
    return summary


def _copy_trail(cursor, cases: list[SimCase], summary: CaseSummary) -> None:
    with cursor.copy(f"COPY case_event ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
        for case in cases:
            for event in case.events:
                copy.write_row(event)
            summary.events += len(case.events)
    with cursor.copy("COPY case_copy (case_id, department_id, at, reason) FROM STDIN") as copy:
        for case in cases:
            for department_id, at in case.copies.items():
                copy.write_row((case.row["id"], department_id, at, "routing rule"))
            summary.copies += len(case.copies)


def load_cases(engine: Engine, *, seed: int, start: date, end: date,
               config: SimulationConfig | None = None,
               horizon: datetime | None = None) -> CaseSummary:
    """Simulate and write the cases of simulation ``seed`` in one transaction. Incidents that
    already have a case are left alone, so a second run adds nothing."""
    started = time.perf_counter()
    config = config or SimulationConfig.load()
    with engine.begin() as conn:
        reason = not_ready(conn)
        if reason:
            return CaseSummary(skipped=reason)
        cases = simulate_cases(conn, seed=seed, start=start, end=end, config=config,
                               horizon=horizon)
        drawn = time.perf_counter()
        summary = write_cases(conn, cases)
    summary.draw_seconds = drawn - started
    summary.seconds = time.perf_counter() - started
    return summary


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=SHANGHAI)


# -- incidents of a simulation -------------------------------------------------------------------
def load_incidents(engine: Engine, *, seed: int, start: date, end: date, count: int,
                   config: SimulationConfig):
    """Simulate incidents with the knobs' occurrence per year and load them through the
    import path (as `gridgov simulate` does); returns the import summary."""
    from etl.incidents import FrameReader, ImportOptions, import_reader
    from etl.simulate import area_from_engine, simulate

    frame = simulate(area_from_engine(engine), seed=seed, start=start, end=end, count=count,
                     year_weights=config.occurrence())
    reader = FrameReader(frame, name=f"simulated-incidents-seed{seed}", crs="wgs84")
    summary = import_reader(engine, reader, ImportOptions(crs="wgs84"))
    with engine.begin() as conn:
        conn.execute(text("ANALYZE incident"))
    return summary


# -- figures from the indicator engine -----------------------------------------------------------
@dataclass(frozen=True)
class Figures:
    """What the indicator engine says about one year (each year evaluated at its end)."""

    year: int
    on_time_closure: float  # district
    pass_rate: float  # communities
    communities: int

    def to_text(self) -> str:
        return (f"{self.year}: on-time closure {100 * self.on_time_closure:.1f}%, community "
                f"pass rate {100 * self.pass_rate:.1f}% ({self.communities} communities)")


def year_figures(conn: Connection, year: int) -> Figures:
    from gis.indicators import pass_rate, unit_indicators
    from gis.periods import parse_period

    period = parse_period(str(year))
    district = unit_indicators(conn, "district", period)
    communities = unit_indicators(conn, "community", period)
    return Figures(year, float(district["on_time_closure_rate"].iloc[0]),
                   pass_rate(communities), len(communities))


def occurrence_down_share(conn: Connection, before: int, after: int) -> float:
    """Share of communities whose occurrence rate (filed cases per km² per month) fell."""
    from gis.indicators import change_share, compare_periods
    from gis.periods import parse_period

    comparison = compare_periods(conn, "community", parse_period(str(before)),
                                 parse_period(str(after)))
    return change_share(comparison, "occurrence_per_km2_month", "down")


# -- calibration ---------------------------------------------------------------------------------
@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """A new, migrated database on the server of ``server_url``, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    from gis.database import get_engine, upgrade

    name = f"gridgov_calibrate_{os.getpid()}_{secrets.token_hex(3)}"
    admin = make_url(server_url).set(drivername="postgresql", database="postgres"
                                     ).render_as_string(hide_password=False)
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        upgrade(url)
        yield url
    finally:
        get_engine(url).dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def prepare_district(engine: Engine) -> None:
    """The shipped Liangxi generation and every catalogue, as `make demo` loads them."""
    from gis.boundaries import load_shipped
    from gis.catalogues import load_catalogues

    load_shipped(engine)
    load_catalogues(engine)


def trial(engine: Engine, config: SimulationConfig, year: int, *, seed: int,
          setting: Setting, horizon: datetime) -> Figures:
    """Simulate the cases of one year with ``config``, measure, and roll everything back."""
    with engine.connect() as conn:
        tx = conn.begin()
        try:
            cases = simulate_cases(conn, seed=seed, start=date(year, 1, 1),
                                   end=date(year, 12, 31), config=config, setting=setting,
                                   horizon=horizon)
            write_cases(conn, cases, trail=False)
            return year_figures(conn, year)
        finally:
            tx.rollback()


def solve(measure: Callable[[float], float], target: float, low: float, high: float, *,
          tolerance: float, increasing: bool, start: float | None = None, step: float = 0.05,
          max_steps: int = 8) -> tuple[float, float]:
    """The knob in [low, high] whose (monotone) measure is closest to ``target``: steps from
    ``start`` (doubling) until the target is bracketed, then false position (Illinois);
    returns (knob, measure). A target out of reach gives the nearest end."""
    sign = 1.0 if increasing else -1.0
    best: tuple[float, float] | None = None

    def probe(x: float) -> float:  # rises with x; 0 at the target
        nonlocal best
        value = measure(x)
        if best is None or abs(value - target) < abs(best[1] - target):
            best = (x, value)
        return sign * (value - target)

    a = (low + high) / 2 if start is None else start
    fa = probe(a)
    if abs(fa) <= tolerance:
        return best
    direction = 1.0 if fa < 0 else -1.0
    while True:
        b = min(max(a + direction * step, low), high)
        fb = probe(b)
        if abs(fb) <= tolerance or (fb < 0) != (fa < 0):
            break
        if b in (low, high):
            return best
        a, fa, step = b, fb, 2 * step
    if abs(fb) <= tolerance:
        return best
    if fa > 0:
        a, fa, b, fb = b, fb, a, fa
    side = 0
    for _ in range(max_steps):
        x = (a * fb - b * fa) / (fb - fa)
        fx = probe(x)
        if abs(fx) <= tolerance:
            break
        if fx < 0:
            a, fa = x, fx
            fb, side = (fb / 2, side) if side == -1 else (fb, -1)
        else:
            b, fb = x, fx
            fa, side = (fa / 2, side) if side == 1 else (fa, 1)
    return best


def calibrate_year(engine: Engine, config: SimulationConfig, year: int, *, seed: int,
                   setting: Setting, horizon: datetime, rounds: int = 3,
                   log: Callable[[str], None] = print) -> tuple[SimulationConfig, Figures]:
    """Coordinate search on one year's knobs: ``late_closure`` for the on-time closure rate,
    then ``performance_mean`` for the pass rate, until both are within tolerance."""
    targets = {k: v[year] for k, v in TARGETS.items()}

    tried: dict[tuple[float, float], Figures] = {}

    def run(candidate: SimulationConfig) -> Figures:
        knobs = candidate.year(year)
        key = (round(knobs.performance_mean, 6), round(knobs.late_closure, 6))
        if key not in tried:
            tried[key] = trial(engine, candidate, year, seed=seed, setting=setting,
                               horizon=horizon)
            log(f"  mean {key[0]:.4f} late {key[1]:.4f} → {tried[key].to_text()}")
        return tried[key]

    figures = run(config)
    for _ in range(rounds):
        if _close_enough(figures, targets):
            break
        config = _tune(config, year, "late_closure", run, targets)
        config = _tune(config, year, "performance_mean", run, targets)
        figures = run(config)
    return config, figures


#: knob → (measure, low, high, whether the measure rises with the knob)
SEARCH = {"late_closure": ("on_time_closure", 0.0, 1.0, False),
          "performance_mean": ("pass_rate", 0.05, 0.95, True)}
#: how near a measure must come to its target (a pass-rate step is one community: 0.0064)
TOLERANCE = {"on_time_closure": 0.0015, "pass_rate": 0.005}


def _tune(config: SimulationConfig, year: int, knob: str,
          run: Callable[[SimulationConfig], Figures],
          targets: dict[str, float]) -> SimulationConfig:
    """``config`` with the one knob of ``year`` that brings its measure nearest the target."""
    measure, low, high, increasing = SEARCH[knob]
    value, _ = solve(lambda x: getattr(run(config.with_year(year, **{knob: x})), measure),
                     targets[measure], low, high, tolerance=TOLERANCE[measure],
                     increasing=increasing, start=getattr(config.year(year), knob))
    return config.with_year(year, **{knob: value})


def _close_enough(figures: Figures, targets: dict[str, float]) -> bool:
    return all(abs(getattr(figures, measure) - target) <= TOLERANCE[measure]
               for measure, target in targets.items())


def calibrate(server_url: str, *, seed: int, start: date, end: date, count: int,
              config: SimulationConfig, log: Callable[[str], None] = print
              ) -> tuple[SimulationConfig, list[Figures], float]:
    """Search the knobs in a scratch database (created and dropped on ``server_url``'s
    server): the shipped district and catalogues, incidents simulated once with the knobs'
    occurrence, then per year :func:`calibrate_year`. Returns the tuned config (with the
    figures recorded in it), the figures and the share of communities whose occurrence fell."""
    from gis.database import get_engine

    years = list(range(start.year, end.year + 1))
    horizon = min(_midnight(end + timedelta(days=1)), datetime.now(SHANGHAI))
    with scratch_database(server_url) as url:
        engine = get_engine(url)
        log("preparing a scratch database: boundaries, catalogues, incidents")
        prepare_district(engine)
        load_incidents(engine, seed=seed, start=start, end=end, count=count, config=config)
        with engine.connect() as conn:
            setting = Setting.load(conn)
        results = []
        for year in years:
            if year not in TARGETS["on_time_closure"]:
                continue
            log(f"calibrating {year}")
            config, figures = calibrate_year(engine, config, year, seed=seed,
                                             setting=setting, horizon=horizon, log=log)
            results.append(figures)
        config = config.rounded()
        load_cases(engine, seed=seed, start=start, end=end, config=config, horizon=horizon)
        with engine.connect() as conn:
            results = [year_figures(conn, f.year) for f in results]
            share = occurrence_down_share(conn, years[0], years[-1]) if len(years) > 1 else 0.0
    record = {"seed": seed, "start": start, "end": end, "count": count,
              "occurrence_down_share": round(share, 4)}
    for figures in results:
        record[f"on_time_closure_{figures.year}"] = round(figures.on_time_closure, 4)
        record[f"pass_rate_{figures.year}"] = round(figures.pass_rate, 4)
    return replace(config, calibration=record), results, share

