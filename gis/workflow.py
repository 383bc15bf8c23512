"""The case workflow: an explicit state machine with roles, scoping, deadlines and a trail.

Collect → accept → file → dispatch → handle → feed back → verify on site → close → evaluate,
with the branches seen in real systems: not accepted, duplicate, void, not filed, returned by a
department that does not hold the matter (counted as buck-passing, 推诿), rework when on-site
verification fails, suspension (挂账) and resumption, extension (延期) requested by the handler
and approved by the shift leader, supervision (督办) and copying to another department (抄告).

The rules live in :data:`TRANSITIONS` and are checked by :func:`check_transition` (pure, no
database), then applied by :func:`act`, which locks the case row, checks scoping, moves the
deadlines and appends one row to the append-only ``case_event`` trail.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, text

from gis.deadlines import DeadlineBook
from gis.routing import route_case
from gis.worktime import WorkCalendar

# -- the state machine ---------------------------------------------------------------------------
STATES = (
    "reported", "accepted", "filed", "dispatched", "handling", "fed_back", "verified", "closed",
    "evaluated", "suspended", "not_accepted", "duplicate", "void", "not_filed",
)
TERMINAL_STATES = frozenset({"evaluated", "not_accepted", "duplicate", "void", "not_filed"})
#: States after which a case counts as closed for the indicators.
CLOSED_STATES = frozenset({"closed", "evaluated"})
OPEN_STATES = frozenset(STATES) - TERMINAL_STATES - CLOSED_STATES

ROLES = ("admin", "acceptor", "shift_leader", "dispatcher", "handler", "grid_leader",
         "grid_worker", "supervisor", "viewer")
ON_SITE = frozenset({"grid_worker", "grid_leader", "supervisor"})
CENTRE = frozenset({"acceptor", "shift_leader", "dispatcher"})

#: The clock that runs in each state: the deadline-rule stage it is measured against.
STAGE_OF_STATE = {
    "reported": "accept", "accepted": "file", "filed": "dispatch", "dispatched": "handle",
    "handling": "handle", "fed_back": "verify", "verified": "close",
}


@dataclass(frozen=True)
class Transition:
    action: str
    sources: frozenset[str]
    target: str | None  # None: the state does not change (resume: back to where it was)
    roles: frozenset[str]
    needs_note: bool = False


def _t(action, sources, target, roles, needs_note=False) -> Transition:
    return Transition(action, frozenset(sources), target, frozenset(roles), needs_note)


_ACTIVE = ("reported", "accepted", "filed", "dispatched", "handling", "fed_back", "verified")
TRANSITIONS: dict[str, Transition] = {t.action: t for t in (
    _t("accept", ["reported"], "accepted", ["acceptor", "shift_leader"]),
    _t("reject", ["reported"], "not_accepted", ["acceptor", "shift_leader"], needs_note=True),
    _t("mark_duplicate", ["reported", "accepted"], "duplicate", ["acceptor", "shift_leader"]),
    _t("void", ["reported", "accepted", "filed"], "void", ["shift_leader"], needs_note=True),
    _t("file", ["accepted"], "filed", ["shift_leader"]),
    _t("decline_filing", ["accepted"], "not_filed", ["shift_leader"], needs_note=True),
    _t("dispatch", ["filed"], "dispatched", ["dispatcher", "shift_leader"]),
    _t("sign", ["dispatched"], "handling", ["handler"]),
    _t("return", ["dispatched", "handling"], "filed", ["handler"], needs_note=True),
    _t("feedback", ["handling"], "fed_back", ["handler"], needs_note=True),
    _t("verify_pass", ["fed_back"], "verified", ON_SITE),
    _t("verify_fail", ["fed_back"], "handling", ON_SITE, needs_note=True),
    _t("close", ["verified"], "closed", ["shift_leader"]),
    _t("evaluate", ["closed"], "evaluated", ["shift_leader"]),
    _t("suspend", ["dispatched", "handling"], "suspended", ["shift_leader"], needs_note=True),
    _t("resume", ["suspended"], None, ["shift_leader"]),
    _t("request_extension", ["dispatched", "handling"], None, ["handler"], needs_note=True),
    _t("approve_extension", ["dispatched", "handling"], None, ["shift_leader"]),
    _t("refuse_extension", ["dispatched", "handling"], None, ["shift_leader"], needs_note=True),
    _t("supervise", _ACTIVE, None, ["shift_leader"], needs_note=True),
    _t("copy_to", _ACTIVE, None, ["dispatcher", "shift_leader"]),
)}


class WorkflowError(Exception):
    """A transition that may not happen; ``status`` is the HTTP-like status a caller can use."""

    status = 409


class NotAllowed(WorkflowError):
    """The actor's role or scope does not allow this action on this case."""

    status = 403


class InvalidInput(WorkflowError):
    status = 400


@dataclass(frozen=True)
class Actor:
    """Who acts. Handlers carry their department; grid staff carry the grids they work in."""

    role: str
    name: str
    staff_id: int | None = None
    department_id: int | None = None
    grid_codes: frozenset[str] = field(default_factory=frozenset)


def allowed_actions(state: str, role: str) -> list[str]:
    """The actions a role may take on a case in ``state`` (scoping aside)."""
    return [t.action for t in TRANSITIONS.values() if state in t.sources and role in t.roles]


def check_transition(state: str, action: str, role: str, *, note: str = "") -> Transition:
    """Validate an action against the state machine; returns the transition or raises."""
    transition = TRANSITIONS.get(action)
    if transition is None:
        raise InvalidInput(f"unknown action {action!r}")
    if role not in transition.roles:
        raise NotAllowed(f"a {role} may not {action} (allowed: "
                         f"{', '.join(sorted(transition.roles))})")
    if state not in transition.sources:
        raise WorkflowError(f"cannot {action} a case that is {state}")
    if transition.needs_note and not note.strip():
        raise InvalidInput(f"{action} needs a note saying why")
    return transition


# -- applying transitions ------------------------------------------------------------------------
@dataclass(frozen=True)
class CaseView:
    id: int
    number: str
    state: str
    department_id: int | None
    handler_id: int | None
    node_due_at: datetime | None
    due_at: datetime | None
    rework_count: int
    seq: int


@dataclass
class Workflow:
    """Applies transitions with one calendar and one deadline book (both data, loaded once)."""

    calendar: WorkCalendar
    deadlines: DeadlineBook

    @classmethod
    def load(cls, conn: Connection) -> Workflow:
        return cls(WorkCalendar.from_csv(), DeadlineBook.load(conn))

    # .. opening ..................................................................................
    def open_case(self, conn: Connection, incident_id: int, incident_reported_at: datetime,
                  actor: Actor, at: datetime | None = None, *, note: str = "",
                  photos: Sequence[dict] = (),
                  location: tuple[float, float] | None = None) -> CaseView:
        """Open a case for an assigned incident, in state ``reported``."""
        incident = conn.execute(text(
            """
            SELECT i.class_code, i.reported_at, i.generation_id, i.grid_id, i.community_id,
                   i.street_id, i.location_status, g.code AS grid_code
            FROM incident i LEFT JOIN unit g ON g.id = i.grid_id
            WHERE i.id = :id AND i.reported_at = :at
            """
        ), {"id": incident_id, "at": incident_reported_at}).one_or_none()
        if incident is None:
            raise InvalidInput(f"there is no incident {incident_id}")
        if incident.location_status != "assigned":
            raise InvalidInput(f"incident {incident_id} is {incident.location_status}, not in "
                               "a grid: it cannot become a case")
        at = at or incident.reported_at
        area_class = conn.execute(text(
            "SELECT area_class FROM grid_area_class WHERE grid_code = :g"),
            {"g": incident.grid_code}).scalar() or "B"
        case_id = conn.execute(text("SELECT nextval('case_file_id_seq')")).scalar_one()
        number = f"{_local(at):%Y%m%d}{case_id:08d}"
        node_due = self.deadlines.due(self.calendar, incident.class_code, area_class, "accept", at)
        conn.execute(text(
            """
            INSERT INTO case_file (id, number, incident_id, incident_reported_at, class_code,
                state, area_class, generation_id, grid_id, community_id, street_id, reported_at,
                node_due_at)
            VALUES (:id, :number, :incident_id, :incident_at, :class_code, 'reported', :area,
                :generation, :grid, :community, :street, :at, :node_due)
            """
        ), {"id": case_id, "number": number, "incident_id": incident_id,
            "incident_at": incident_reported_at, "class_code": incident.class_code,
            "area": area_class, "generation": incident.generation_id, "grid": incident.grid_id,
            "community": incident.community_id, "street": incident.street_id, "at": at,
            "node_due": node_due})
        self._append(conn, case_id, 1, "report", None, "reported", actor, at, node_due, False,
                     note=note, photos=photos, location=location,
                     details={"incident_id": incident_id})
        return self.view(conn, case_id)

    # .. acting ...................................................................................
    def act(self, conn: Connection, case_id: int, action: str, actor: Actor, *,
            at: datetime, note: str = "", photos: Sequence[dict] = (),
            location: tuple[float, float] | None = None, **details) -> CaseView:
        """Apply ``action`` to a case as ``actor`` at time ``at``; returns the case after it."""
        if at.tzinfo is None:
            raise InvalidInput("at: a time zone is required")
        case = conn.execute(text("SELECT * FROM case_file WHERE id = :id FOR UPDATE"),
                            {"id": case_id}).mappings().one_or_none()
        if case is None:
            raise InvalidInput(f"there is no case {case_id}")
        transition = check_transition(case["state"], action, actor.role, note=note)
        self._check_scope(conn, case, actor)
        last = conn.execute(text("SELECT max(seq), max(at) FROM case_event WHERE case_id = :id"),
                            {"id": case_id}).one()
        if at < last[1]:
            raise InvalidInput(f"at: {at.isoformat()} is before the case's last event")
        seq = last[0] + 1
        overdue = case["node_due_at"] is not None and at > case["node_due_at"]
        target = transition.target or case["state"]
        changes: dict = {}
        handler = getattr(self, f"_on_{action}", None)
        if handler is not None:
            target = handler(conn, case, actor, at, changes, details) or target
        if target != case["state"] and target in STAGE_OF_STATE and "node_due_at" not in changes:
            changes["node_due_at"] = self._node_due(case, target, at)
        elif target in TERMINAL_STATES | CLOSED_STATES:
            changes.setdefault("node_due_at", None)
        changes.update(state=target, updated_at=at)
        assignments = ", ".join(f"{column} = :{column}" for column in changes)
        conn.execute(text(f"UPDATE case_file SET {assignments}, version = version + 1 "
                          "WHERE id = :case_id"), {**changes, "case_id": case_id})
        self._append(conn, case_id, seq, action, case["state"], target, actor, at,
                     changes.get("node_due_at", case["node_due_at"]), overdue, note=note,
                     photos=photos, location=location, details=details)
        return self.view(conn, case_id)

    def _node_due(self, case, state: str, at: datetime) -> datetime | None:
        if state in ("dispatched", "handling") and case["handle_due_at"] is not None:
            return case["handle_due_at"]
        return self.deadlines.due(self.calendar, case["class_code"], case["area_class"],
                                  STAGE_OF_STATE[state], at)

    def _check_scope(self, conn: Connection, case, actor: Actor) -> None:
        if actor.role == "handler" and (actor.department_id is None or actor.department_id
                                        not in (case["handler_id"], case["department_id"])):
            raise NotAllowed("this case is not dispatched to the actor's department")
        if actor.role in ("grid_worker", "grid_leader"):
            grid_code = conn.execute(text("SELECT code FROM unit WHERE id = :id"),
                                     {"id": case["grid_id"]}).scalar()
            if grid_code not in actor.grid_codes:
                raise NotAllowed("the case lies outside the actor's grids")

    # .. per-action effects (each returns a different target state, or None) .................
    def _on_accept(self, conn, case, actor, at, changes, details):
        changes["accepted_at"] = at

    def _on_mark_duplicate(self, conn, case, actor, at, changes, details):
        original = details.get("duplicate_of")
        exists = original is not None and conn.execute(
            text("SELECT 1 FROM case_file WHERE id = :id AND id <> :me"),
            {"id": original, "me": case["id"]}).first()
        if not exists:
            raise InvalidInput("mark_duplicate needs duplicate_of: the id of another case")
        changes["duplicate_of_id"] = original

    def _on_file(self, conn, case, actor, at, changes, details):
        changes["filed_at"] = at
        changes["due_at"] = self.deadlines.due(self.calendar, case["class_code"],
                                               case["area_class"], "total", at)

    def _on_dispatch(self, conn, case, actor, at, changes, details):
        street_code = conn.execute(text("SELECT code FROM unit WHERE id = :id"),
                                   {"id": case["street_id"]}).scalar()
        route = route_case(conn, case["class_code"], street_code, at.date())
        department_id = details.get("department_id") or route.department_id
        handler_id = details.get("handler_id") or (
            route.handler_id if department_id == route.department_id else department_id)
        details.setdefault("route", route.to_dict())
        changes.update(department_id=department_id, handler_id=handler_id, dispatched_at=at)
        if case["handle_due_at"] is None:
            changes["handle_due_at"] = self.deadlines.due(
                self.calendar, case["class_code"], case["area_class"], "handle", at)
        changes["node_due_at"] = changes.get("handle_due_at", case["handle_due_at"])
        for copy_id in route.copy_department_ids:
            self._copy(conn, case["id"], copy_id, at, "routing rule")

    def _on_return(self, conn, case, actor, at, changes, details):
        changes.update(return_count=case["return_count"] + 1, handler_id=None)

    def _on_feedback(self, conn, case, actor, at, changes, details):
        changes["handled_at"] = at

    def _on_verify_pass(self, conn, case, actor, at, changes, details):
        changes["verified_at"] = at

    def _on_verify_fail(self, conn, case, actor, at, changes, details):
        changes["rework_count"] = case["rework_count"] + 1
        # rework runs against the original handling deadline: a failed fix is not a new clock
        changes["node_due_at"] = case["handle_due_at"]

    def _on_close(self, conn, case, actor, at, changes, details):
        changes["closed_at"] = at

    def _on_evaluate(self, conn, case, actor, at, changes, details):
        score = details.get("score")
        if not isinstance(score, int | float) or not 0 <= score <= 100:
            raise InvalidInput("evaluate needs a score from 0 to 100")
        changes.update(evaluation_score=float(score), evaluated_at=at)

    def _on_suspend(self, conn, case, actor, at, changes, details):
        changes.update(suspended_from=case["state"], node_due_at=None)

    def _on_resume(self, conn, case, actor, at, changes, details):
        changes["suspended_from"] = None
        # the time spent suspended does not count against the handler
        paused = self.calendar.elapsed(case["updated_at"], at, "work_hours")
        if case["handle_due_at"] is not None:
            changes["handle_due_at"] = self.calendar.add(case["handle_due_at"], paused,
                                                         "work_hours")
            changes["node_due_at"] = changes["handle_due_at"]
        if case["due_at"] is not None:
            changes["due_at"] = self.calendar.add(case["due_at"], paused, "work_hours")
        return case["suspended_from"]

    def _on_request_extension(self, conn, case, actor, at, changes, details):
        if case["extension_pending"]:
            raise WorkflowError("an extension is already waiting for approval")
        hours = details.get("work_hours")
        if not isinstance(hours, int | float) or not 0 < hours <= 24 * 20:
            raise InvalidInput("request_extension needs work_hours (0 < hours <= 480)")
        changes["extension_pending"] = True

    def _on_approve_extension(self, conn, case, actor, at, changes, details):
        hours = self._pending_extension_hours(conn, case)
        changes.update(extension_pending=False, extension_count=case["extension_count"] + 1,
                       handle_due_at=self.calendar.add(case["handle_due_at"], hours,
                                                       "work_hours"))
        changes["node_due_at"] = changes["handle_due_at"]
        if case["due_at"] is not None:
            changes["due_at"] = self.calendar.add(case["due_at"], hours, "work_hours")
        details["work_hours"] = hours

    def _on_refuse_extension(self, conn, case, actor, at, changes, details):
        self._pending_extension_hours(conn, case)
        changes["extension_pending"] = False

    def _pending_extension_hours(self, conn, case) -> float:
        if not case["extension_pending"]:
            raise WorkflowError("no extension is waiting for approval")
        return float(conn.execute(text(
            """SELECT details->>'work_hours' FROM case_event
               WHERE case_id = :id AND action = 'request_extension'
               ORDER BY seq DESC LIMIT 1"""), {"id": case["id"]}).scalar_one())

    def _on_supervise(self, conn, case, actor, at, changes, details):
        changes["supervised"] = True

    def _on_copy_to(self, conn, case, actor, at, changes, details):
        department_id = details.get("department_id")
        if not conn.execute(text("SELECT 1 FROM department WHERE id = :id"),
                            {"id": department_id}).first():
            raise InvalidInput("copy_to needs department_id: an existing department")
        self._copy(conn, case["id"], department_id, at, details.get("reason", ""))

    @staticmethod
    def _copy(conn: Connection, case_id: int, department_id: int, at: datetime,
              reason: str) -> None:
        conn.execute(text(
            """INSERT INTO case_copy (case_id, department_id, at, reason)
               VALUES (:c, :d, :at, :r) ON CONFLICT DO NOTHING"""),
            {"c": case_id, "d": department_id, "at": at, "r": reason})

    # .. trail ....................................................................................
    @staticmethod
    def _append(conn: Connection, case_id: int, seq: int, action: str, from_state: str | None,
                to_state: str, actor: Actor, at: datetime, node_due_at, overdue: bool, *,
                note: str, photos: Sequence[dict], location, details: dict) -> None:
        conn.execute(text(
            """
            INSERT INTO case_event (case_id, seq, action, from_state, to_state, actor_staff_id,
                actor_name, actor_role, at, geom, note, photos, details, node_due_at, overdue)
            VALUES (:case_id, :seq, :action, :from_state, :to_state, :staff, :name, :role, :at,
                CASE WHEN CAST(:lon AS float8) IS NULL THEN NULL
                     ELSE ST_SetSRID(ST_MakePoint(:lon, :lat), 4490) END,
                :note, CAST(:photos AS jsonb), CAST(:details AS jsonb), :node_due, :overdue)
            """
        ), {"case_id": case_id, "seq": seq, "action": action, "from_state": from_state,
            "to_state": to_state, "staff": actor.staff_id, "name": actor.name,
            "role": actor.role, "at": at, "lon": location[0] if location else None,
            "lat": location[1] if location else None, "note": note,
            "photos": json.dumps(list(photos), ensure_ascii=False),
            "details": json.dumps(details, ensure_ascii=False, default=str),
            "node_due": node_due_at, "overdue": overdue})

    @staticmethod
    def view(conn: Connection, case_id: int) -> CaseView:
        row = conn.execute(text(
            """SELECT c.id, c.number, c.state, c.department_id, c.handler_id, c.node_due_at,
                      c.due_at, c.rework_count,
                      (SELECT max(seq) FROM case_event e WHERE e.case_id = c.id) AS seq
               FROM case_file c WHERE c.id = :id"""), {"id": case_id}).one()
        return CaseView(*row)


def _local(at: datetime) -> datetime:
    from zoneinfo import ZoneInfo

    return at.astimezone(ZoneInfo("Asia/Shanghai"))
