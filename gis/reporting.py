"""A report from the field or the hotline: store the incident, open its case, in one step.

This is what the mobile pages, the REST API and Open311 call. The idempotency key a client
sends is scoped to the reporting user (``<user id>:<key>``), so a retry after a lost answer
returns the first result instead of a second incident.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text

from gis.accounts import User
from gis.crs import to_cgcs2000
from gis.duplicates import Candidate, suggest_duplicates
from gis.incidents import StoredIncident, report_incident
from gis.workflow import CaseView, InvalidInput, NotAllowed, Workflow


@dataclass(frozen=True)
class ReportResult:
    incident: StoredIncident
    case: CaseView | None
    possible_duplicates: list[Candidate]

    @property
    def replayed(self) -> bool:
        return self.incident.duplicate


def own_key_prefix(user_id: int) -> str:
    """How the source keys of a user's reports begin: ``<user id>:``."""
    return f"{user_id}:"


def submit_report(conn: Connection, workflow: Workflow, user: User, *, source: str,
                  class_code: str, x: float, y: float, crs: str, reported_at: datetime,
                  description: str = "", idempotency_key: str | None = None,
                  photos: Sequence[dict] = ()) -> ReportResult:
    """Store a report and open its case. Grid staff may only report inside their grids."""
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 100:
        raise InvalidInput("idempotency_key: 1 to 100 characters")
    key = f"{own_key_prefix(user.id)}{idempotency_key}" if idempotency_key else None
    if user.grid_scoped:
        _check_inside_own_grids(conn, user, x, y, crs)
    lon, lat = (float(v) for v in to_cgcs2000(x, y, crs))
    candidates = suggest_duplicates(conn, class_code, lon, lat)
    incident = report_incident(conn, source=source, class_code=class_code,
                               reported_at=reported_at, x=x, y=y, crs=crs,
                               description=description, source_key=key)
    if incident.duplicate:
        case_id = conn.execute(text(
            "SELECT id FROM case_file WHERE incident_id = :i AND incident_reported_at = :at"),
            {"i": incident.id, "at": incident.reported_at}).scalar()
        case = workflow.view(conn, case_id) if case_id else None
        return ReportResult(incident, case, [])
    case = None
    if incident.location_status == "assigned":
        case = workflow.open_case(conn, incident.id, incident.reported_at, user.actor(),
                                  note=description, photos=photos, location=(lon, lat))
    return ReportResult(incident, case, candidates)


def _check_inside_own_grids(conn: Connection, user: User, x: float, y: float, crs: str) -> None:
    from gis.lookup import lookup_point

    grid = lookup_point(conn, x, y, crs).unit("grid")
    if grid is None or grid.code not in user.grid_codes:
        where = f"grid {grid.code}" if grid else "outside the district"
        raise NotAllowed(f"the point is in {where}, not in your grids")
