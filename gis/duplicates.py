"""Duplicate suggestion: open cases of the same class near a new report.

Components (部件) are fixed assets, so two reports of one are metres apart; events spread wider.
The radius is per class prefix, most specific first, and is configuration, not a rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

#: Search radius in metres by class-code prefix; the longest matching prefix wins.
RADIUS_M = {"C": 15.0, "E": 50.0, "E04": 80.0, "E05": 150.0, "E07": 100.0}


def radius_for(class_code: str) -> float:
    matches = [prefix for prefix in RADIUS_M if class_code.startswith(prefix)]
    return RADIUS_M[max(matches, key=len)] if matches else 50.0


@dataclass(frozen=True)
class Candidate:
    case_id: int
    number: str
    state: str
    distance_m: float


def suggest_duplicates(conn: Connection, class_code: str, lon: float, lat: float,
                       limit: int = 5) -> list[Candidate]:
    """Open cases of ``class_code`` within the class's radius of (lon, lat), nearest first.

    The bounding-box test (a degree is at least 90 km here) lets the GiST index narrow the
    candidates before the exact geodesic distance."""
    rows = conn.execute(text(
        """
        SELECT c.id, c.number, c.state,
               ST_Distance(i.geom::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4490)
                           ::geography) AS distance
        FROM case_file c
        JOIN incident i ON i.id = c.incident_id AND i.reported_at = c.incident_reported_at
        WHERE c.class_code = :cls AND c.closed_at IS NULL
          AND c.state NOT IN ('not_accepted', 'duplicate', 'void', 'not_filed')
          AND i.geom && ST_Expand(ST_SetSRID(ST_MakePoint(:lon, :lat), 4490), :radius / 90000.0)
          AND ST_DWithin(i.geom::geography,
                         ST_SetSRID(ST_MakePoint(:lon, :lat), 4490)::geography, :radius)
        ORDER BY distance, c.id LIMIT :limit
        """), {"cls": class_code, "lon": lon, "lat": lat, "radius": radius_for(class_code),
               "limit": limit})
    return [Candidate(*row) for row in rows]
