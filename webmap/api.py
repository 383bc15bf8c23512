"""The JSON API under ``/api``: point lookup in the manner of MapIt, units as GeoJSON, generations.

Errors are JSON too: ``{"error": {"status": 400, "message": "…"}}`` — bad input 400, unknown
unit or generation 404, no active generation or no database 503.
"""

from __future__ import annotations

import math
from typing import Any, NoReturn

import geopandas as gpd
import shapely.geometry
from flask import Blueprint, Response, jsonify, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

from gis.boundaries import list_generations
from gis.lookup import lookup_point
from gis.models import LEVELS
from webmap import current_store

bp = Blueprint("api", __name__, url_prefix="/api")

#: MapIt-style SRIDs and names accepted by /api/point -> gis.crs names.
SRIDS = {"4326": "wgs84", "4490": "cgcs2000", "4549": "EPSG:4549", "wgs84": "wgs84",
         "cgcs2000": "cgcs2000", "gcj02": "gcj02", "bd09": "bd09"}
UNIT_PROPERTIES = ("code", "name", "level", "parent_code", "area_m2", "grid_type",
                   "dedicated_kind")
GEOJSON = "application/geo+json"


class ApiError(HTTPException):
    """An error with a status and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(description=message)
        self.code = status


def _fail(status: int, message: str) -> NoReturn:
    raise ApiError(status, message)


def error_response(status: int, message: str) -> tuple[Response, int]:
    return jsonify(error={"status": status, "message": message}), status


# -- helpers --------------------------------------------------------------------------------------
def _generation_id() -> int:
    """``?generation=N`` or the active generation (503 when there is none)."""
    raw = request.args.get("generation")
    if raw is not None:
        try:
            return int(raw)
        except ValueError:
            _fail(400, f"generation must be an integer id, not {raw!r}")
    generation_id = current_store().active_id()
    if generation_id is None:
        _fail(503, "no boundary generation is active; load one with `gridgov boundaries load`")
    return generation_id


def _levels(generation_id: int) -> dict[str, gpd.GeoDataFrame]:
    try:
        return current_store().levels(generation_id)
    except LookupError:
        _fail(404, f"there is no generation {generation_id} (or it has no units)")


def _value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _features(frame: gpd.GeoDataFrame) -> list[dict]:
    records = frame[list(UNIT_PROPERTIES)].to_dict("records")
    return [
        {"type": "Feature", "id": record["code"],
         "properties": {key: _value(record[key]) for key in UNIT_PROPERTIES},
         "geometry": shapely.geometry.mapping(geom)}
        for record, geom in zip(records, frame.geometry.array, strict=True)
    ]


def _geojson(payload: dict) -> Response:
    response = jsonify(payload)
    response.mimetype = GEOJSON
    return response


# -- endpoints ------------------------------------------------------------------------------------
@bp.get("/point/<srid>/<coords>")
def point(srid: str, coords: str) -> Response:
    """The units covering a point, e.g. ``/api/point/4326/120.30,31.57``."""
    crs = SRIDS.get(srid.lower())
    if crs is None:
        _fail(400, f"unknown srid {srid!r}: use one of {', '.join(SRIDS)}")
    try:
        x, y = (float(part) for part in coords.split(","))
    except ValueError:
        _fail(400, f"coordinates must be 'x,y' numbers, not {coords!r}")
    generation_id = _generation_id()
    if "generation" in request.args and not any(
            info.id == generation_id for info in list_generations(current_store().engine)):
        _fail(404, f"there is no generation {generation_id}")
    try:
        result = lookup_point(current_store().engine, x, y, crs, generation_id)
    except ValueError as exc:
        _fail(400, str(exc))
    if not (math.isfinite(result.lon) and math.isfinite(result.lat)):
        _fail(400, f"({x}, {y}) in {srid} has no CGCS2000 position")
    return jsonify(lon=result.lon, lat=result.lat, inside=result.inside,
                   generation=generation_id,
                   units=[{"level": u.level, "code": u.code, "name": u.name}
                          for u in result.chain])


@bp.get("/units")
def units() -> Response:
    """The units of one level (``?level=street``; all levels without it) as GeoJSON."""
    level = request.args.get("level")
    if level is not None and level not in LEVELS:
        _fail(400, f"unknown level {level!r}: use one of {', '.join(LEVELS)}")
    generation_id = _generation_id()
    levels = _levels(generation_id)
    chosen = [level] if level else list(LEVELS)
    features = [f for lv in chosen for f in _features(levels[lv])]
    return _geojson({"type": "FeatureCollection", "generation": generation_id,
                     "features": features})


@bp.get("/units/<code>")
def unit(code: str) -> Response:
    """One unit by code, as a GeoJSON Feature."""
    generation_id = _generation_id()
    for frame in _levels(generation_id).values():
        match = frame[frame["code"] == code]
        if len(match):
            return _geojson({**_features(match)[0], "generation": generation_id})
    _fail(404, f"no unit with code {code!r} in generation {generation_id}")


@bp.get("/generations")
def generations() -> Response:
    """Every boundary generation, the active one flagged."""
    infos = list_generations(current_store().engine)
    return jsonify(generations=[
        {**info.__dict__,
         **{key: getattr(info, key).isoformat() if getattr(info, key) else None
            for key in ("created_at", "activated_at", "retired_at")}}
        for info in infos
    ])


# -- errors ---------------------------------------------------------------------------------------
@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> tuple[Response, int]:
    return error_response(exc.code or 500, exc.description or exc.name)


@bp.errorhandler(OperationalError)
def _database_down(_exc: OperationalError) -> tuple[Response, int]:
    return error_response(503, "the database is not reachable")


def _under_api() -> bool:
    return request.path == bp.url_prefix or request.path.startswith(f"{bp.url_prefix}/")


@bp.app_errorhandler(404)
@bp.app_errorhandler(405)
@bp.app_errorhandler(500)
def _routing_error(exc: HTTPException) -> HTTPException | tuple[Response, int]:
    """JSON for errors raised before a view under /api (no route, wrong method, crash)."""
    if not _under_api():
        return exc
    if isinstance(exc, InternalServerError):
        return error_response(500, "internal server error")
    return error_response(exc.code or 500, exc.description or exc.name)
