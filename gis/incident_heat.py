"""Incident density for heat maps: assigned incidents of a period binned to ~10 m cells.

A cell is the incident's CGCS2000 position rounded to :data:`HEAT_DECIMALS` decimals (about
10 m at Wuxi's latitude); its weight is the number of incidents in it. Only incidents assigned
to a grid count (not those outside the district or unplaced).
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import Connection, text

from gis.periods import Period

HEAT_DECIMALS = 4  # incidents are binned to ~10 m cells, weighted by their count


def heat_points(conn: Connection, period: Period, *, class_code: str | None = None,
                source: str | None = None) -> np.ndarray:
    """Assigned incidents reported in ``period`` as ``[lat, lon, count]`` rows, binned to
    ~10 m; ``class_code`` is a class code or a prefix of one (E01: every E01xx class),
    ``source`` one source."""
    filters = ["location_status = 'assigned'", "reported_at >= :start", "reported_at < :end"]
    if class_code:
        filters.append("class_code LIKE :cls")
    if source:
        filters.append("source = :source")
    sql = f"""
        SELECT round(ST_Y(geom)::numeric, {HEAT_DECIMALS})::float8 AS lat,
               round(ST_X(geom)::numeric, {HEAT_DECIMALS})::float8 AS lon, count(*) AS n
        FROM incident WHERE {' AND '.join(filters)} GROUP BY 1, 2 ORDER BY 1, 2"""
    rows = conn.execute(text(sql), {"start": period.start, "end": period.end,
                                    "cls": f"{class_code}%", "source": source}).all()
    return np.array(rows, dtype=float).reshape(-1, 3)
