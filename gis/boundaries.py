"""Boundary generations in PostGIS: create (inactive, validated), activate, read back.

The flow follows MapIt: a new set of boundaries is validated in memory, written as an inactive
generation in one transaction, then activated atomically (the previous active generation is
retired in the same transaction and stays queryable). Nothing is half-loaded: any failure rolls
the whole generation back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import geopandas as gpd
import shapely
from sqlalchemy import Connection, Engine, func, insert, select, text, update

from gis.config import SHIPPED_BOUNDARIES
from gis.coverage import BoundaryValidationError, validate_hierarchy
from gis.crs import area_m2
from gis.incidents import reassign_incidents
from gis.models import LEVELS, Generation, Unit


@dataclass(frozen=True)
class GenerationInfo:
    id: int
    name: str
    source: str
    active: bool
    created_at: datetime
    activated_at: datetime | None
    retired_at: datetime | None
    counts: dict[str, int]


def file_checksum(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def create_generation(engine: Engine, levels: dict[str, gpd.GeoDataFrame], *, name: str,
                      source: str = "", checksum: str | None = None,
                      area_tolerance_m2: float = 1.0) -> int:
    """Validate ``levels`` and store them as a new, inactive generation; returns its id.

    Raises :class:`BoundaryValidationError` (with the full report) before writing anything when
    the hierarchy has errors.
    """
    frames, report = validate_hierarchy(levels, area_tolerance_m2=area_tolerance_m2)
    if not report.ok:
        raise BoundaryValidationError(report)
    with engine.begin() as conn:
        generation_id = conn.execute(
            insert(Generation).values(name=name, source=source, checksum=checksum)
            .returning(Generation.id)
        ).scalar_one()
        ids: dict[str, int] = {}
        for level in LEVELS:
            ids = _insert_level(conn, generation_id, frames[level], ids)
    return generation_id


def _insert_level(conn: Connection, generation_id: int, frame: gpd.GeoDataFrame,
                  parent_ids: dict[str, int]) -> dict[str, int]:
    geoms = shapely.force_2d(frame.geometry.array)
    areas = area_m2(geoms)
    rows = [
        {
            "generation_id": generation_id,
            "level": frame["level"].iloc[i],
            "code": frame["code"].iloc[i],
            "name": frame["name"].iloc[i],
            "parent_id": parent_ids.get(frame["parent_code"].iloc[i]),
            "grid_type": frame["grid_type"].iloc[i],
            "dedicated_kind": frame["dedicated_kind"].iloc[i],
            "area_m2": float(areas[i]),
            "geom": f"SRID=4490;{shapely.to_wkt(geoms[i], rounding_precision=-1)}",
        }
        for i in range(len(frame))
    ]
    result = conn.execute(insert(Unit).returning(Unit.code, Unit.id, sort_by_parameter_order=True),
                          rows)
    return {code: unit_id for code, unit_id in result}


def active_generation_id(conn: Connection) -> int | None:
    return conn.execute(select(Generation.id).where(Generation.active)).scalar_one_or_none()


def activate(engine: Engine, generation_id: int) -> int | None:
    """Make ``generation_id`` the active generation; returns the id it replaced (or None).

    One transaction: the generation table is locked so two activations cannot interleave, the
    old generation is retired, the new one activated and every incident reassigned to it (the
    old assignments go to the history table).
    """
    with engine.begin() as conn:
        conn.execute(text("LOCK TABLE generation IN SHARE ROW EXCLUSIVE MODE"))
        target = conn.execute(
            select(Generation.id, Generation.active).where(Generation.id == generation_id)
        ).one_or_none()
        if target is None:
            raise LookupError(f"there is no generation {generation_id}")
        if target.active:
            return generation_id
        _check_complete(conn, generation_id)
        previous = active_generation_id(conn)
        if previous is not None:
            conn.execute(update(Generation).where(Generation.id == previous)
                         .values(active=False, retired_at=func.now()))
        conn.execute(update(Generation).where(Generation.id == generation_id)
                     .values(active=True, activated_at=func.now(), retired_at=None))
        reassign_incidents(conn, generation_id)
    return previous


def _check_complete(conn: Connection, generation_id: int) -> None:
    counts = _level_counts(conn).get(generation_id, {})
    missing = [level for level in LEVELS if not counts.get(level)]
    if missing or counts.get("district") != 1:
        raise ValueError(
            f"generation {generation_id} cannot be activated: it needs one district and at "
            f"least one unit at every level (has {counts or 'none'})"
        )


def _level_counts(conn: Connection) -> dict[int, dict[str, int]]:
    rows = conn.execute(
        select(Unit.generation_id, Unit.level, func.count()).group_by(Unit.generation_id,
                                                                      Unit.level)
    )
    counts: dict[int, dict[str, int]] = {}
    for generation_id, level, n in rows:
        counts.setdefault(generation_id, {})[level] = n
    return {g: {lv: c[lv] for lv in LEVELS if lv in c} for g, c in counts.items()}


def list_generations(engine: Engine) -> list[GenerationInfo]:
    with engine.connect() as conn:
        counts = _level_counts(conn)
        rows = conn.execute(select(Generation.__table__).order_by(Generation.id)).mappings()
        return [
            GenerationInfo(id=r["id"], name=r["name"], source=r["source"], active=r["active"],
                           created_at=r["created_at"], activated_at=r["activated_at"],
                           retired_at=r["retired_at"], counts=counts.get(r["id"], {}))
            for r in rows
        ]


def read_generation(engine: Engine,
                    generation_id: int | None = None) -> dict[str, gpd.GeoDataFrame]:
    """The units of a generation (default: the active one) as one GeoDataFrame per level."""
    with engine.connect() as conn:
        if generation_id is None:
            generation_id = active_generation_id(conn)
            if generation_id is None:
                raise LookupError("no generation is active; run `gridgov boundaries load`")
        sql = text(
            """
            SELECT u.code, u.name, u.level, p.code AS parent_code, u.grid_type,
                   u.dedicated_kind, u.area_m2, u.geom
            FROM unit u LEFT JOIN unit p ON p.id = u.parent_id
            WHERE u.generation_id = :g ORDER BY u.code
            """
        )
        frame = gpd.read_postgis(sql, conn, geom_col="geom", params={"g": generation_id})
    if frame.empty:
        raise LookupError(f"generation {generation_id} has no units")
    frame = frame.rename_geometry("geometry")
    return {level: frame[frame["level"] == level].reset_index(drop=True) for level in LEVELS}


def load_shipped(engine: Engine, path: Path = SHIPPED_BOUNDARIES) -> tuple[int, bool]:
    """Load the shipped GeoPackage as the active generation, idempotently.

    Returns ``(generation_id, changed)``: a file already loaded (same checksum) is only
    re-activated if another generation became active since, and never loaded twice.
    """
    from gis.partition import read_geopackage

    checksum = file_checksum(path)
    with engine.connect() as conn:
        row = conn.execute(
            select(Generation.id, Generation.active).where(Generation.checksum == checksum)
            .order_by(Generation.id.desc()).limit(1)
        ).one_or_none()
    if row is not None:
        if row.active:
            return row.id, False
        activate(engine, row.id)
        return row.id, True
    generation_id = create_generation(
        engine, read_geopackage(path), name=f"Liangxi grid system ({Path(path).name})",
        source=str(path), checksum=checksum,
    )
    activate(engine, generation_id)
    return generation_id, True
