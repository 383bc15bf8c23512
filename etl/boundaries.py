"""Reading boundary files (GeoJSON, Shapefile, GeoPackage; any CRS) into a hierarchy.

Field names differ from one supplier to the next, so each standard column (code, name, parent
code, grid type, dedicated kind) can be named on the command line; when it is not, a short list
of usual names is tried. Coordinates in GCJ-02 or BD-09 (files from AMap or Baidu tools claim
EPSG:4326 but are offset) are converted when ``crs`` says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pyogrio
from sqlalchemy import Engine

from gis.boundaries import read_generation
from gis.crs import normalise_crs, transform_geometry
from gis.models import LEVELS

FIELD_CANDIDATES = {
    "code": ("code", "adcode", "gbcode", "wgbm", "bm", "dm"),
    "name": ("name", "wgmc", "mc"),
    "parent_code": ("parent_code", "parent", "sjbm", "sjdm"),
    "grid_type": ("grid_type", "type"),
    "dedicated_kind": ("dedicated_kind", "kind"),
}


class BoundaryFileError(ValueError):
    """A boundary file cannot be read as asked; the message names the file and the reason."""


@dataclass
class FieldMap:
    """Source column for each standard column; None means "look for a usual name"."""

    code: str | None = None
    name: str | None = None
    parent_code: str | None = None
    grid_type: str | None = None
    dedicated_kind: str | None = None


def _resolve_column(frame: gpd.GeoDataFrame, standard: str, given: str | None,
                    path: Path) -> str | None:
    columns = {c.lower(): c for c in frame.columns if c != frame.geometry.name}
    if given is not None:
        if given not in frame.columns:
            raise BoundaryFileError(
                f"{path}: no column {given!r} for {standard}; columns are "
                f"{', '.join(sorted(columns.values()))}"
            )
        return given
    return next((columns[c] for c in FIELD_CANDIDATES[standard] if c in columns), None)


def read_level(path: Path | str, level: str, *, layer: str | None = None,
               crs: str | None = None, fields: FieldMap | None = None) -> gpd.GeoDataFrame:
    """Read one level's units from a file into the standard columns, in EPSG:4490.

    ``crs`` overrides the file's own CRS (needed for GCJ-02/BD-09, and for files without one).
    Row numbers (1-based, in file order) go into a ``row`` column for the validation report.
    """
    path = Path(path)
    if level not in LEVELS:
        raise BoundaryFileError(f"unknown level {level!r}; levels are {', '.join(LEVELS)}")
    if not path.exists():
        raise BoundaryFileError(f"{path}: no such file")
    try:
        frame = gpd.read_file(path, layer=layer, engine="pyogrio")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError) as exc:
        raise BoundaryFileError(f"{path}: cannot read ({exc})") from exc
    fields = fields or FieldMap()
    out = gpd.GeoDataFrame({"row": range(1, len(frame) + 1)}, geometry=frame.geometry.values,
                           crs=frame.crs)
    for standard in FIELD_CANDIDATES:
        column = _resolve_column(frame, standard, getattr(fields, standard), path)
        out[standard] = frame[column].to_numpy() if column else None
    if out["code"].isna().all():
        raise BoundaryFileError(
            f"{path}: no code column found (tried {', '.join(FIELD_CANDIDATES['code'])}); "
            "name it with --code-field"
        )
    return _to_storage_crs(out, crs, path)


def _to_storage_crs(frame: gpd.GeoDataFrame, crs: str | None, path: Path) -> gpd.GeoDataFrame:
    if crs is None:
        if frame.crs is None:
            raise BoundaryFileError(f"{path}: the file has no CRS; say which with --crs")
        return frame.to_crs(4490)
    try:
        name = normalise_crs(crs)
    except ValueError as exc:
        raise BoundaryFileError(f"--crs: {exc}") from exc
    geoms = transform_geometry(frame.geometry.array, name, "cgcs2000")
    return frame.set_geometry(gpd.GeoSeries(geoms, index=frame.index), crs=4490)


def read_hierarchy(sources: dict[str, Path | str], *, gpkg: Path | str | None = None,
                   crs: str | None = None, fields: FieldMap | None = None,
                   engine: Engine | None = None) -> dict[str, gpd.GeoDataFrame]:
    """Read every level: from ``sources`` (level → file), from a GeoPackage whose layers are
    named after the levels, and for levels given by neither, from the active generation."""
    levels: dict[str, gpd.GeoDataFrame] = {}
    if gpkg is not None:
        layers = {name for name, _ in pyogrio.list_layers(gpkg)}
        for level in LEVELS:
            if level in layers:
                levels[level] = read_level(gpkg, level, layer=level, crs=crs, fields=fields)
    for level, path in sources.items():
        levels[level] = read_level(path, level, crs=crs, fields=fields)
    if not levels:
        raise BoundaryFileError("no boundary file given")
    missing = [level for level in LEVELS if level not in levels]
    if missing and engine is not None:
        try:
            current = read_generation(engine)
        except LookupError:
            current = {}
        for level in missing:
            if level in current:
                levels[level] = current[level]
    return levels


EXPORT_COLUMNS = ["code", "name", "level", "parent_code", "grid_type", "dedicated_kind", "area_m2"]
SHAPEFILE_NAMES = {"parent_code": "parent", "dedicated_kind": "ded_kind", "grid_type": "grid_type"}
DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON", ".shp": "ESRI Shapefile"}


def export_levels(levels: dict[str, gpd.GeoDataFrame], path: Path | str,
                  level: str | None = None) -> list[Path]:
    """Write a generation out. A GeoPackage gets one layer per level; GeoJSON and Shapefile,
    which hold one layer, get one file per level (``<name>-<level>.<ext>``) unless ``level``
    picks one. Returns the files written."""
    path = Path(path)
    driver = DRIVERS.get(path.suffix.lower())
    if driver is None:
        raise BoundaryFileError(
            f"{path}: unknown format; use one of {', '.join(sorted(DRIVERS))}")
    chosen = [level] if level else list(LEVELS)
    written: list[Path] = []
    if driver == "GPKG":
        path.unlink(missing_ok=True)
    for name in chosen:
        frame = levels[name][[*EXPORT_COLUMNS, "geometry"]]
        if driver == "GPKG":
            frame.to_file(path, layer=name, driver=driver, engine="pyogrio")
            if path not in written:
                written.append(path)
            continue
        target = path if level else path.with_name(f"{path.stem}-{name}{path.suffix}")
        if driver == "ESRI Shapefile":
            frame = frame.rename(columns=SHAPEFILE_NAMES)
            frame.to_file(target, driver=driver, engine="pyogrio", encoding="UTF-8")
        else:
            frame.to_file(target, driver=driver, engine="pyogrio")
        written.append(target)
    return written
