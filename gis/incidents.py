"""The incident store: one report at a time, in bulk, and reassignment to a new generation.

Every incident ends up attached to exactly one grid of the active generation (and so to its
community and street) or carries a location status saying why not (``outside`` the district,
``invalid`` coordinates). Single reports are assigned by the ``incident_assign`` trigger through
the GiST index; bulk loads arrive already assigned by the in-memory engine (same edge rule) and
are written with COPY by ``gis.bulk_load``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, text

from gis.crs import normalise_crs, to_cgcs2000
from gis.models import SOURCES


class IncidentError(ValueError):
    """A report that cannot be stored; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class StoredIncident:
    id: int
    reported_at: datetime
    location_status: str
    grid_code: str | None
    community_code: str | None
    street_code: str | None
    duplicate: bool = False


def known_class_codes(conn: Connection) -> set[str]:
    return set(conn.execute(text("SELECT code FROM incident_class")).scalars())


def _check_report(conn: Connection, source: str, class_code: str, reported_at: datetime) -> None:
    if source not in SOURCES:
        raise IncidentError("source", f"{source!r} is not one of {', '.join(SOURCES)}")
    exists = conn.execute(text("SELECT 1 FROM incident_class WHERE code = :c"),
                          {"c": class_code}).first()
    if exists is None:
        raise IncidentError("class_code", f"unknown class {class_code!r}")
    if reported_at.tzinfo is None:
        raise IncidentError("reported_at", "a time zone is required (e.g. +08:00)")


def report_incident(bind: Engine | Connection, *, source: str, class_code: str,
                    reported_at: datetime, x: float | None, y: float | None,
                    crs: str = "cgcs2000", description: str = "",
                    source_key: str | None = None) -> StoredIncident:
    """Store one report; the trigger assigns it. A repeated ``(source, source_key)`` returns the
    incident stored the first time (``duplicate=True``) instead of storing it again."""
    if isinstance(bind, Engine):
        with bind.begin() as conn:
            return report_incident(conn, source=source, class_code=class_code,
                                   reported_at=reported_at, x=x, y=y, crs=crs,
                                   description=description, source_key=source_key)
    conn = bind
    _check_report(conn, source, class_code, reported_at)
    crs = normalise_crs(crs)
    lon = lat = None
    if x is not None and y is not None and math.isfinite(x) and math.isfinite(y):
        lon, lat = (float(v) for v in to_cgcs2000(x, y, crs))
        if not (math.isfinite(lon) and math.isfinite(lat)):
            lon = lat = None
    if source_key is not None:
        # Two requests with one key at once (a double tap, a retry while the first is still
        # running): the second waits here until the first commits, then replays it, instead
        # of failing on the key's unique index.
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:s || '|' || :k, 0))"),
                     {"s": source, "k": source_key})
        existing = conn.execute(
            text("SELECT incident_id, reported_at FROM incident_key "
                 "WHERE source = :s AND source_key = :k"), {"s": source, "k": source_key}
        ).first()
        if existing is not None:
            return _stored(conn, existing.incident_id, existing.reported_at, duplicate=True)
    row = conn.execute(
        text(
            """
            INSERT INTO incident (source, source_key, class_code, description, reported_at,
                                  geom, orig_x, orig_y, orig_crs)
            VALUES (:source, :key, :cls, :desc, :at,
                    CASE WHEN CAST(:lon AS float8) IS NULL THEN NULL
                         ELSE ST_SetSRID(ST_MakePoint(:lon, :lat), 4490) END,
                    CAST(:x AS float8), CAST(:y AS float8), :crs)
            RETURNING id, reported_at
            """
        ),
        {"source": source, "key": source_key, "cls": class_code, "desc": description,
         "at": reported_at, "lon": lon, "lat": lat, "x": _finite(x), "y": _finite(y), "crs": crs},
    ).one()
    if source_key is not None:
        conn.execute(text("INSERT INTO incident_key VALUES (:s, :k, :id, :at)"),
                     {"s": source, "k": source_key, "id": row.id, "at": row.reported_at})
    return _stored(conn, row.id, row.reported_at)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _stored(conn: Connection, incident_id: int, reported_at: datetime,
            duplicate: bool = False) -> StoredIncident:
    row = conn.execute(
        text(
            """
            SELECT i.id, i.reported_at, i.location_status,
                   g.code AS grid, c.code AS community, s.code AS street
            FROM incident i
            LEFT JOIN unit g ON g.id = i.grid_id
            LEFT JOIN unit c ON c.id = i.community_id
            LEFT JOIN unit s ON s.id = i.street_id
            WHERE i.id = :id AND i.reported_at = :at
            """
        ),
        {"id": incident_id, "at": reported_at},
    ).one()
    return StoredIncident(row.id, row.reported_at, row.location_status, row.grid,
                          row.community, row.street, duplicate)


# -- bulk loads (gis.bulk_load) -------------------------------------------------------------
def grid_chain_ids(conn: Connection, generation_id: int) -> dict[str, tuple[int, int, int]]:
    """grid code → (grid id, community id, street id) for a generation: what a bulk load needs
    to turn the in-memory engine's grid codes into foreign keys."""
    rows = conn.execute(text(
        """
        SELECT g.code, g.id, c.id, c.parent_id
        FROM unit g JOIN unit c ON c.id = g.parent_id
        WHERE g.generation_id = :g AND g.level = 'grid'
        """
    ), {"g": generation_id})
    return {code: (grid, community, street) for code, grid, community, street in rows}


# -- reassignment --------------------------------------------------------------------------------
def reassign_incidents(conn: Connection, generation_id: int) -> int:
    """Reassign every located incident to ``generation_id`` in three set-based statements,
    keeping each incident's previous assignment in ``incident_assignment_history``.
    Returns the number of incidents whose assignment was replaced."""
    params = {"g": generation_id}
    moved = conn.execute(text(
        """
        INSERT INTO incident_assignment_history
            (incident_id, reported_at, generation_id, grid_id, community_id, street_id,
             location_status)
        SELECT id, reported_at, generation_id, grid_id, community_id, street_id,
               location_status
        FROM incident
        WHERE geom IS NOT NULL AND generation_id IS DISTINCT FROM :g
        """
    ), params).rowcount
    conn.execute(text(
        """
        WITH hit AS (
            SELECT DISTINCT ON (i.id, i.reported_at) i.id, i.reported_at, g.id AS grid_id,
                   g.parent_id AS community_id
            FROM incident i
            JOIN unit g ON g.generation_id = :g AND g.level = 'grid'
                       AND ST_Covers(g.geom, i.geom)
            WHERE i.geom IS NOT NULL AND i.generation_id IS DISTINCT FROM :g
            ORDER BY i.id, i.reported_at, g.code
        )
        UPDATE incident i
        SET grid_id = h.grid_id, community_id = h.community_id, street_id = c.parent_id,
            generation_id = :g, location_status = 'assigned'
        FROM hit h JOIN unit c ON c.id = h.community_id
        WHERE i.id = h.id AND i.reported_at = h.reported_at
        """
    ), params)
    conn.execute(text(
        """
        UPDATE incident
        SET grid_id = NULL, community_id = NULL, street_id = NULL, generation_id = :g,
            location_status = 'outside'
        WHERE geom IS NOT NULL AND generation_id IS DISTINCT FROM :g
        """
    ), params)
    return moved
