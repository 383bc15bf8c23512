"""Validation of a boundary hierarchy before it may become a generation.

A hierarchy is a dict ``level -> GeoDataFrame`` (EPSG:4490) with the columns ``code``, ``name``,
``parent_code``, ``grid_type``, ``dedicated_kind`` and ``geometry``; an optional ``row`` column
carries the source row number into the report. :func:`validate_hierarchy` repairs what can be
repaired without changing meaning (invalid rings, through ``make_valid``), fills missing parent
codes spatially, and lists every problem it finds, each with the level, code, row, a reason and,
for spatial problems, a location. Nothing is dropped silently: a unit that cannot be used is an
error in the report, and a report with errors blocks the load.

Spatial checks run on the stored lon/lat coordinates, with areas in m². Gaps, overlaps and
spill-over smaller than ``area_tolerance_m2`` (default 1 m²) are ignored as digitising noise,
but GEOS coverage validation (``shapely.coverage_invalid_edges``) still reports sibling edges
that do not match exactly, so a hierarchy that passes is a true partition.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import asdict, dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis.models.units import DEDICATED_KINDS, GRID_TYPES, LEVELS

CODE_LENGTHS = {"district": (6,), "street": (9,), "community": (12,), "grid": (15, 14)}
EARTH_RADIUS_M = 6_371_008.8
COLUMNS = ("code", "name", "parent_code", "grid_type", "dedicated_kind")


@dataclass(frozen=True)
class Problem:
    level: str
    code: str | None
    kind: str
    message: str
    row: int | None = None
    location: str | None = None  # WKT point in EPSG:4490
    repaired: bool = False

    def __str__(self) -> str:
        where = f" row {self.row}" if self.row is not None else ""
        code = f" {self.code}" if self.code else ""
        at = f" at {self.location}" if self.location else ""
        tag = "repaired" if self.repaired else "error"
        return f"[{tag}] {self.level}{code}{where}: {self.kind}: {self.message}{at}"


@dataclass
class ValidationReport:
    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if not p.repaired]

    @property
    def ok(self) -> bool:
        return not self.errors

    def kinds(self) -> set[str]:
        return {p.kind for p in self.errors}

    def add(self, *args, **kwargs) -> None:
        self.problems.append(Problem(*args, **kwargs))

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "counts": self.counts,
            "errors": len(self.errors),
            "repaired": len(self.problems) - len(self.errors),
            "problems": [asdict(p) for p in self.problems],
        }

    def to_text(self) -> str:
        counts = ", ".join(f"{n} {level}" for level, n in self.counts.items())
        head = "valid" if self.ok else f"INVALID: {len(self.errors)} error(s)"
        return "\n".join([f"{head} ({counts})", *(str(p) for p in self.problems)])


class BoundaryValidationError(ValueError):
    """A hierarchy failed validation; ``report`` lists every problem."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(report.to_text())
        self.report = report


def _row(frame: pd.DataFrame, i: int) -> int | None:
    return int(frame["row"].iloc[i]) if "row" in frame.columns else None


def _point_wkt(geom) -> str | None:
    if geom is None or shapely.is_empty(geom):
        return None
    return shapely.to_wkt(shapely.point_on_surface(geom), rounding_precision=7)


def _area_m2(geom) -> float:
    """Area of a small lon/lat geometry in m², from the local scale at its latitude.

    The checks run on the stored lon/lat coordinates, as PostGIS's ST_Covers does: projecting
    first would bend straight edges differently for a parent and its children (a parent's long
    edge and the children's shorter chords along it) and invent slivers that are not there.
    """
    if shapely.is_empty(geom):
        return 0.0
    lat = math.radians(shapely.centroid(geom).y)
    metres_per_degree = math.pi / 180 * EARTH_RADIUS_M
    return float(shapely.area(geom)) * metres_per_degree**2 * math.cos(lat)


def normalise_frame(frame: gpd.GeoDataFrame, level: str) -> gpd.GeoDataFrame:
    """Give a level's frame the standard columns, string codes and the EPSG:4490 CRS."""
    out = frame.copy()
    if out.geometry.name != "geometry":
        out = out.rename_geometry("geometry")
    for column in COLUMNS:
        if column not in out.columns:
            out[column] = None
    for column in COLUMNS:
        out[column] = pd.Series([_clean_str(v) for v in out[column]], index=out.index,
                                dtype=object)
    if out.crs is None:
        out = out.set_crs(4490)
    elif out.crs.to_epsg() != 4490:
        out = out.to_crs(4490)
    out["level"] = level
    return out.reset_index(drop=True)


def _clean_str(value) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _repair_geometries(frame: gpd.GeoDataFrame, level: str, report: ValidationReport) -> None:
    """make_valid invalid polygons (reported as repaired); unusable geometries are errors."""
    geoms = frame.geometry.array.copy()
    usable = np.ones(len(frame), dtype=bool)
    for i, geom in enumerate(geoms):
        code, row = frame["code"].iloc[i], _row(frame, i)
        if geom is None or shapely.is_empty(geom):
            report.add(level, code, "empty_geometry", "no geometry", row)
            usable[i] = False
            continue
        if not shapely.is_valid(geom):
            reason = shapely.is_valid_reason(geom)
            geom = _polygonal_part(shapely.make_valid(geom))
            report.add(level, code, "invalid_geometry", f"{reason}; repaired with make_valid",
                       row, shapely.to_wkt(shapely.point_on_surface(geom), rounding_precision=7)
                       if geom is not None else None, repaired=geom is not None)
        else:
            geom = _polygonal_part(geom)
        if geom is None:
            report.add(level, code, "not_polygonal", "geometry has no polygon area", row)
            usable[i] = False
            continue
        geoms[i] = geom
    frame["geometry"] = gpd.GeoSeries(list(geoms), index=frame.index, crs=frame.crs)
    frame["_usable"] = usable


def _polygonal_part(geom):
    """The polygons of a geometry as a MultiPolygon, or None when it has none."""
    parts = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
    polygons = [p for g in parts for p in shapely.get_parts(g) if not p.is_empty]
    return shapely.MultiPolygon(polygons) if polygons else None


def _check_codes(frame: gpd.GeoDataFrame, level: str, report: ValidationReport) -> None:
    lengths = CODE_LENGTHS[level]
    pattern = re.compile(r"^\d+$")
    for i, code in enumerate(frame["code"]):
        row = _row(frame, i)
        if code is None:
            report.add(level, None, "missing_code", "no code", row)
        elif not pattern.match(code) or len(code) not in lengths:
            want = " or ".join(str(n) for n in lengths)
            report.add(level, code, "malformed_code", f"a {level} code has {want} digits", row)
        if frame["name"].iloc[i] is None:
            report.add(level, code, "missing_name", "no name", row)
    duplicated = frame["code"].notna() & frame["code"].duplicated(keep=False)
    for i in np.flatnonzero(duplicated.to_numpy()):
        report.add(level, frame["code"].iloc[i], "duplicate_code",
                   "the code appears more than once in this level", _row(frame, i))


def _check_grid_types(frame: gpd.GeoDataFrame, report: ValidationReport) -> None:
    for i in range(len(frame)):
        code, row = frame["code"].iloc[i], _row(frame, i)
        grid_type = frame["grid_type"].iloc[i] or "comprehensive"
        kind = frame["dedicated_kind"].iloc[i]
        if grid_type not in GRID_TYPES:
            report.add("grid", code, "bad_grid_type",
                       f"grid_type {grid_type!r} is not one of {', '.join(GRID_TYPES)}", row)
        elif grid_type == "dedicated" and kind not in DEDICATED_KINDS:
            report.add("grid", code, "bad_dedicated_kind",
                       f"a dedicated grid covers one of {', '.join(DEDICATED_KINDS)}, "
                       f"not {kind!r}", row)
        elif grid_type == "comprehensive" and kind is not None:
            report.add("grid", code, "bad_dedicated_kind",
                       "a comprehensive grid has no dedicated_kind", row)
    frame["grid_type"] = frame["grid_type"].fillna("comprehensive")


def _fill_parents(child: gpd.GeoDataFrame, parent: gpd.GeoDataFrame) -> None:
    """Where a child has no parent code, take the parent covering its interior point."""
    todo = child["parent_code"].isna().to_numpy() & child["_usable"].to_numpy()
    if not todo.any() or parent.empty:
        return
    usable = parent[parent["_usable"]]
    points = shapely.point_on_surface(child.geometry.array[todo])
    tree = shapely.STRtree(usable.geometry.array)
    hits = tree.query(points, predicate="within")
    found: dict[int, str] = {}
    for point_index, parent_index in zip(*hits, strict=True):
        code = usable["code"].iloc[parent_index]
        if point_index not in found or code < found[point_index]:
            found[point_index] = code
    positions = np.flatnonzero(todo)
    for point_index, code in found.items():
        child.loc[positions[point_index], "parent_code"] = code


def _check_parents(child: gpd.GeoDataFrame, parent: gpd.GeoDataFrame, level: str,
                   report: ValidationReport) -> None:
    parent_codes = set(parent["code"].dropna())
    for i in range(len(child)):
        code, parent_code, row = child["code"].iloc[i], child["parent_code"].iloc[i], _row(child, i)
        if parent_code is None:
            report.add(level, code, "missing_parent",
                       "no parent code and no parent unit covers it", row)
        elif parent_code not in parent_codes:
            report.add(level, code, "missing_parent",
                       f"parent {parent_code} is not among the {LEVELS[LEVELS.index(level) - 1]}"
                       " units", row)
        elif code is not None and not code.startswith(parent_code):
            report.add(level, code, "code_prefix_mismatch",
                       f"the code does not start with its parent's code {parent_code}", row)


def _check_coverage(child: gpd.GeoDataFrame, parent: gpd.GeoDataFrame, level: str,
                    report: ValidationReport, area_tolerance_m2: float) -> None:
    """Units of a level must not overlap, and siblings must tile their parent exactly."""
    usable_child = child[child["_usable"]]
    usable_parent = parent[parent["_usable"]]
    parents = dict(zip(usable_parent["code"], usable_parent.geometry.array, strict=True))
    codes = usable_child["code"].to_numpy()
    rows = [_row(usable_child, i) for i in range(len(usable_child))]
    groups = usable_child.groupby("parent_code", dropna=True).indices

    _check_overlaps(usable_child.geometry.array, codes, rows, level, report, area_tolerance_m2)
    for parent_code, positions in groups.items():
        siblings = usable_child.geometry.array[positions]
        _check_edges(siblings, codes[positions], level, parent_code, report)
        outline = parents.get(parent_code)
        if outline is None:
            continue
        for i, geom in zip(positions, siblings, strict=True):
            spill = shapely.difference(geom, outline)
            if _area_m2(spill) > area_tolerance_m2:
                report.add(level, codes[i], "outside_parent",
                           f"{_area_m2(spill):.1f} m² lies outside parent {parent_code}",
                           rows[i], _point_wkt(spill))
        union = shapely.union_all(siblings)
        for gap in shapely.get_parts(shapely.difference(outline, union)):
            if _area_m2(gap) > area_tolerance_m2:
                report.add(level, None, "gap",
                           f"{_area_m2(gap):.1f} m² of parent {parent_code} is covered "
                           "by none of its children", None, _point_wkt(gap))
    for parent_code in set(parents) - set(groups):
        report.add(LEVELS[LEVELS.index(level) - 1], parent_code, "no_children",
                   f"has no {level} units", None)


def _check_overlaps(geoms, codes, rows, level, report, area_tolerance_m2) -> None:
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    keep = left < right
    for a, b in zip(left[keep], right[keep], strict=True):
        overlap = shapely.intersection(geoms[a], geoms[b])
        if _area_m2(overlap) > area_tolerance_m2:
            report.add(level, codes[a], "overlap",
                       f"overlaps {codes[b]} by {_area_m2(overlap):.1f} m²",
                       rows[a], _point_wkt(overlap))


def _check_edges(geoms, codes, level, parent_code, report) -> None:
    """GEOS coverage validation: edges of neighbours that do not match exactly."""
    if len(geoms) < 2 or shapely.coverage_is_valid(geoms):
        return
    for code, edges in zip(codes, shapely.coverage_invalid_edges(geoms), strict=True):
        if edges is not None and not shapely.is_empty(edges):
            report.add(level, code, "coverage_edges",
                       f"edges do not match its neighbours' within {parent_code} "
                       f"({len(shapely.get_parts(edges))} edge(s))", None, _point_wkt(edges))


def validate_hierarchy(levels: dict[str, gpd.GeoDataFrame], *,
                       area_tolerance_m2: float = 1.0) -> tuple[dict, ValidationReport]:
    """Repair, complete and check a hierarchy; returns the cleaned frames and the report."""
    report = ValidationReport()
    frames: dict[str, gpd.GeoDataFrame] = {}
    for level in LEVELS:
        if level not in levels:
            report.add(level, None, "missing_level", f"no {level} units were given")
            continue
        frame = normalise_frame(levels[level], level)
        report.counts[level] = len(frame)
        if frame.empty:
            report.add(level, None, "missing_level", f"the {level} layer is empty")
        _repair_geometries(frame, level, report)
        _check_codes(frame, level, report)
        if level == "grid":
            _check_grid_types(frame, report)
        else:
            frame["grid_type"] = None
            frame["dedicated_kind"] = None
        frames[level] = frame

    district = frames.get("district")
    if district is not None:
        if len(district) != 1:
            report.add("district", None, "district_count",
                       f"a generation has exactly one district, not {len(district)}")
        district["parent_code"] = None
    for upper, lower in itertools.pairwise(LEVELS):
        if upper in frames and lower in frames:
            _fill_parents(frames[lower], frames[upper])
            _check_parents(frames[lower], frames[upper], lower, report)
            _check_coverage(frames[lower], frames[upper], lower, report, area_tolerance_m2)
    return {level: frame.drop(columns="_usable") for level, frame in frames.items()}, report
