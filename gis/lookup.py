"""Point lookup in PostGIS: the unit chain grid → community → street → district.

The rule lives in SQL (``gridgov_grid_at`` / ``gridgov_lookup``, created by migration 0001) so
every caller, Python or SQL, gets the same answer: a point belongs to the grid whose polygon
covers it (interior or boundary); a point on an edge or vertex shared by several grids goes to
the one with the smallest code; a point no grid covers is outside the district.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text

from gis.crs import to_cgcs2000


@dataclass(frozen=True)
class UnitRef:
    level: str
    id: int
    code: str
    name: str


@dataclass(frozen=True)
class LookupResult:
    lon: float
    lat: float
    chain: tuple[UnitRef, ...]

    @property
    def inside(self) -> bool:
        return bool(self.chain)

    def unit(self, level: str) -> UnitRef | None:
        return next((u for u in self.chain if u.level == level), None)

    def to_dict(self) -> dict:
        return {
            "lon": self.lon,
            "lat": self.lat,
            "inside": self.inside,
            "chain": [u.__dict__ for u in self.chain],
        }


def lookup_point(bind: Engine | Connection, x: float, y: float, crs: str = "cgcs2000",
                 generation_id: int | None = None) -> LookupResult:
    """Look up one point given in ``crs`` (wgs84, cgcs2000, gcj02, bd09 or EPSG:n)."""
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"coordinates must be finite numbers, got ({x}, {y})")
    lon, lat = (float(v) for v in to_cgcs2000(x, y, crs))
    sql = text("SELECT level, id, code, name FROM gridgov_lookup(:x, :y, :g)")
    params = {"x": lon, "y": lat, "g": generation_id}
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            rows = conn.execute(sql, params).all()
    else:
        rows = bind.execute(sql, params).all()
    return LookupResult(lon, lat, tuple(UnitRef(*row) for row in rows))
