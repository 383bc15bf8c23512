"""Vectorised in-memory point → grid assignment, exact under the shared edge rule.

THE EDGE RULE (identical to the PostGIS side, ``ST_Covers(grid.geom, point)`` ordered by code):
a point belongs to the grid whose polygon *covers* it (interior or boundary); when several grids
cover it (a shared edge or vertex), the smallest code (string order) wins; a point no grid covers
(outside the district, NaN, ±inf) is unassigned: position -1, code ``None``.

How it is fast without giving up exactness
------------------------------------------
At build time a regular lattice of cells is laid over the grids' extent. Every boundary segment
marks, conservatively, each cell it passes within ``_TOL`` cells of ("boundary cells"). A cell no
boundary comes near is either wholly inside one grid's interior or wholly outside every grid, so
its answer is one integer: a run of such cells along a lattice row is connected and boundary-free,
so one exact test of a representative point labels the whole run. At query time a point's cell is
found by integer arithmetic and most points are answered by one array lookup; only points in
boundary cells are tested exactly (``shapely.intersects_xy`` = covers for a point, on prepared
polygons) against that cell's short candidate list, sorted so the first hit has the smallest code.

Floating point: a point's cell comes from ``(x - x0) * (1 / dx)``, off from the exact affine
image by ~1e-12 cells at most; the ``_TOL`` = 1e-6-cell margin used when marking boundary cells
dwarfs that, so no point near a boundary can be answered from the lookup table.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import shapely

__all__ = ["GridIndex", "assign_points"]

_TOL = 1e-6  # safety margin, in cells, around every boundary segment
_UNCOVERED = -1  # lookup value: no grid covers this cell
# Lookup values <= -2 mean "boundary cell number -2 - value": test its candidates exactly.
_CHUNK = 1 << 18  # points per work unit: bounds temporaries and feeds the thread pool
_DEFAULT_CELLS_PER_GRID = 400  # lattice density: ~3 ha grids → ~8 m cells, ~6% boundary cells
_MAX_CELLS = 1 << 25  # lookup-table cap (128 MB of int32)


@dataclass(frozen=True)
class _Lattice:
    """A regular lattice of ``nx`` × ``ny`` cells of size ``dx`` × ``dy`` from (``x0``, ``y0``)."""

    x0: float
    y0: float
    dx: float
    dy: float
    nx: int
    ny: int

    @classmethod
    def covering(cls, bounds: np.ndarray, cell: float) -> _Lattice:
        """A lattice over ``bounds`` padded by two cells, so nothing covered lies near its edge."""
        minx, miny, maxx, maxy = (float(b) for b in bounds)
        x0, y0 = minx - 2 * cell, miny - 2 * cell
        nx = int(np.ceil((maxx - minx) / cell)) + 4
        ny = int(np.ceil((maxy - miny) / cell)) + 4
        return cls(x0, y0, cell, cell, nx, ny)

    def to_uv(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lattice coordinates (cell units); the same formula serves build and query."""
        return (x - self.x0) * (1.0 / self.dx), (y - self.y0) * (1.0 / self.dy)

    def centres(self, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coordinates of the centres of flat cell numbers ``cells``."""
        j, i = np.divmod(cells, self.nx)
        return self.x0 + (i + 0.5) * self.dx, self.y0 + (j + 0.5) * self.dy


def _segments(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All ring segments of all geometries: an (m, 4) array x1 y1 x2 y2, and each one's owner."""
    parts, part_owner = shapely.get_parts(geoms, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    xy, ring_of_vertex = shapely.get_coordinates(rings, return_index=True)
    same = ring_of_vertex[1:] == ring_of_vertex[:-1]
    owner = part_owner[ring_part[ring_of_vertex[:-1][same]]]
    return np.hstack([xy[:-1][same], xy[1:][same]]), owner


def _segment_cells(
    lattice: _Lattice, seg: np.ndarray, owner: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Flat cell numbers within ``_TOL`` of each segment (a conservative supercover), with owners.

    Per lattice column a segment spans, the v-range of its part over that column widened by
    ``_TOL`` on every side gives the rows; every cell the widened segment touches is returned.
    """
    u1, v1 = lattice.to_uv(seg[:, 0], seg[:, 1])
    u2, v2 = lattice.to_uv(seg[:, 2], seg[:, 3])
    umin, umax = np.minimum(u1, u2), np.maximum(u1, u2)
    vmin, vmax = np.minimum(v1, v2), np.maximum(v1, v2)
    col0 = np.floor(umin - _TOL).astype(np.int64)
    ncol = np.floor(umax + _TOL).astype(np.int64) - col0 + 1
    s = np.repeat(np.arange(len(seg)), ncol)
    col = col0[s] + _ramp(ncol)
    ua = np.maximum(umin[s], col - _TOL)
    ub = np.minimum(umax[s], col + 1 + _TOL)
    du = u2 - u1
    slope = np.divide(v2 - v1, du, out=np.zeros_like(du), where=du != 0)[s]
    va = np.clip(v1[s] + (ua - u1[s]) * slope, vmin[s], vmax[s])
    vb = np.clip(v1[s] + (ub - u1[s]) * slope, vmin[s], vmax[s])
    vertical = (du == 0)[s]
    lo = np.where(vertical, vmin[s], np.minimum(va, vb))
    hi = np.where(vertical, vmax[s], np.maximum(va, vb))
    row0 = np.floor(lo - _TOL).astype(np.int64)
    nrow = np.floor(hi + _TOL).astype(np.int64) - row0 + 1
    k = np.repeat(np.arange(len(col)), nrow)
    cells = (row0[k] + _ramp(nrow)) * lattice.nx + col[k]
    return cells, owner[s[k]]


def _ramp(counts: np.ndarray) -> np.ndarray:
    """0, 1, …, c-1 for each count c, concatenated (a vectorised ``np.arange`` per group)."""
    total = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total, dtype=np.int64) - starts


def _reference_assign(tree: shapely.STRtree, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The edge rule by brute force via the tree: smallest covering position per point, or -1.

    Used at build time only, for the few representative points (run starts, boundary cells).
    """
    pt, geom = tree.query(shapely.points(x, y), predicate="intersects")
    out = np.full(len(x), _UNCOVERED, dtype=np.int64)
    order = np.lexsort((geom, pt))
    pt, geom = pt[order], geom[order]
    first = np.r_[True, pt[1:] != pt[:-1]] if len(pt) else np.zeros(0, bool)
    out[pt[first]] = geom[first]
    return out


def _label_free_runs(
    lattice: _Lattice, boundary: np.ndarray, tree: shapely.STRtree
) -> np.ndarray:
    """Lookup table: grid position (or -1) for every non-boundary cell, 0 for boundary cells.

    A maximal run of non-boundary cells along a row is connected and touches no boundary, so
    every point in it has the same answer as the run's first cell centre.
    """
    free = ~boundary.reshape(lattice.ny, lattice.nx)
    starts = free.copy()
    starts[:, 1:] &= ~free[:, :-1]
    start_cells = np.flatnonzero(starts)
    labels = _reference_assign(tree, *lattice.centres(start_cells))
    run_id = np.cumsum(starts.ravel()) - 1
    table = labels[np.maximum(run_id, 0)]
    table[~free.ravel()] = 0
    return table


def _candidates(
    lattice: _Lattice, cells: np.ndarray, owner: np.ndarray, tree: shapely.STRtree
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boundary cells, and per cell its sorted candidate grid positions as CSR (offsets, values).

    Candidates: grids with a boundary segment near the cell, plus grids covering the cell centre.
    A grid covering any point of the cell is one or the other (a grid whose boundary stays away
    from a connected cell either contains all of it or none of it), so the list is complete even
    if grids overlapped; for a true partition the second set adds nothing.
    """
    boundary_cells = np.unique(cells)
    pt, geom = tree.query(shapely.points(*lattice.centres(boundary_cells)), predicate="intersects")
    n_grids = np.int64(len(tree.geometries))
    pair_cell = np.concatenate([cells, boundary_cells[pt]])
    key = np.unique(pair_cell * n_grids + np.concatenate([owner, geom]))
    cell_of_pair, candidates = np.divmod(key, n_grids)
    slot = np.searchsorted(boundary_cells, cell_of_pair)
    counts = np.bincount(slot, minlength=len(boundary_cells))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    return boundary_cells, offsets, candidates


def _default_cell(geoms: np.ndarray, bounds: np.ndarray) -> float:
    """Cell size giving ~``_DEFAULT_CELLS_PER_GRID`` cells per grid, within a memory cap."""
    mean_area = float(np.mean(shapely.area(geoms)))
    width, height = bounds[2] - bounds[0], bounds[3] - bounds[1]
    cell = np.sqrt(mean_area / _DEFAULT_CELLS_PER_GRID)
    floor_for_cap = np.sqrt(width * height / _MAX_CELLS)  # keep the table under ~128 MB
    return float(max(cell, floor_for_cap, np.finfo(float).tiny))


def _threads() -> int:
    """CPUs this process may use (the work releases the GIL, so threads scale)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class GridIndex:
    """Exact point → grid lookup under the edge rule; build once, query many times, picklable.

    ``codes`` holds the grid codes sorted (string order), so a smaller position is a smaller code
    and "smallest code wins" is "smallest position wins".
    """

    codes: np.ndarray

    def __init__(self, codes, geometries, *, cell_size: float | None = None) -> None:
        codes = np.array([str(c) for c in codes], dtype=object)
        geoms = np.asarray(geometries, dtype=object)
        if len(codes) != len(geoms):
            raise ValueError("codes and geometries differ in length")
        order = np.argsort(codes.astype(str), kind="stable")
        self.codes = codes[order]
        if len(set(self.codes)) != len(self.codes):
            raise ValueError("grid codes must be unique (the edge rule orders by code)")
        self._geoms = geoms[order]
        self._codes_or_none = np.append(self.codes, None)  # position -1 → None
        self._build(cell_size)

    @classmethod
    def from_geodataframe(cls, gdf, *, cell_size: float | None = None) -> GridIndex:
        """Build from a GeoDataFrame with ``code`` and ``geometry`` columns, in any row order."""
        return cls(gdf["code"].to_numpy(), gdf.geometry.to_numpy(), cell_size=cell_size)

    def _build(self, cell_size: float | None) -> None:
        """Lay the lattice, mark boundary cells, label the rest, and list boundary candidates."""
        geoms = self._geoms
        shapely.prepare(geoms)
        bounds = shapely.total_bounds(geoms)
        if not np.isfinite(bounds).all():  # no grids or only empty ones: nothing is covered
            self._lattice = _Lattice(0.0, 0.0, 1.0, 1.0, 1, 1)
            self._table = np.full(1, _UNCOVERED, dtype=np.int32)
            self._offsets, self._candidates = np.zeros(1, np.int64), np.zeros(0, np.int64)
            return
        cell = cell_size or _default_cell(geoms, bounds)
        lattice = _Lattice.covering(bounds, cell)
        tree = shapely.STRtree(geoms)
        seg_cells, seg_owner = _segment_cells(lattice, *_segments(geoms))
        boundary = np.zeros(lattice.nx * lattice.ny, dtype=bool)
        boundary[seg_cells] = True
        table = _label_free_runs(lattice, boundary, tree)
        cells, self._offsets, self._candidates = _candidates(lattice, seg_cells, seg_owner, tree)
        table[cells] = -2 - np.arange(len(cells))
        self._lattice, self._table = lattice, table.astype(np.int32)
        assert self._table[0] == _UNCOVERED  # the padded corner answers invalid points

    def __setstate__(self, state: dict) -> None:
        """Unpickle, then re-prepare the polygons (prepared state is not pickled)."""
        self.__dict__.update(state)
        shapely.prepare(self._geoms)

    @property
    def stats(self) -> dict:
        """Lattice size and boundary-cell share, for benchmarks and tuning."""
        lat = self._lattice
        return {
            "grids": len(self.codes),
            "cell_size": lat.dx,
            "lattice": (lat.ny, lat.nx),
            "boundary_cells": len(self._offsets) - 1,
            "boundary_share": (len(self._offsets) - 1) / (lat.nx * lat.ny),
            "mean_candidates": len(self._candidates) / max(len(self._offsets) - 1, 1),
            "table_bytes": self._table.nbytes,
        }

    def assign(self, lon, lat, *, threads: int | None = None) -> np.ndarray:
        """Position in ``codes`` of the grid each point belongs to under the edge rule, or -1."""
        x = np.asarray(lon, dtype=np.float64)
        y = np.asarray(lat, dtype=np.float64)
        if x.shape != y.shape:
            raise ValueError(f"lon and lat shapes differ: {x.shape} vs {y.shape}")
        shape, x, y = x.shape, x.ravel(), y.ravel()
        out = np.empty(len(x), dtype=np.int64)
        spans = [slice(s, s + _CHUNK) for s in range(0, len(x), _CHUNK)]
        workers = min(threads or _threads(), len(spans))
        if workers > 1:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(lambda s: self._assign_chunk(x[s], y[s], out[s]), spans))
        else:
            for s in spans:
                self._assign_chunk(x[s], y[s], out[s])
        return out.reshape(shape)

    def assign_codes(self, lon, lat, *, threads: int | None = None) -> np.ndarray:
        """Grid code per point (object array), ``None`` where unassigned."""
        return self._codes_or_none[self.assign(lon, lat, threads=threads)]

    def _assign_chunk(self, x: np.ndarray, y: np.ndarray, out: np.ndarray) -> None:
        """Answer one chunk into ``out``: table lookup, then exact tests in boundary cells."""
        lat = self._lattice
        u, v = lat.to_uv(x, y)
        ok = (u >= 0) & (u < lat.nx) & (v >= 0) & (v < lat.ny)  # False for NaN and ±inf
        with np.errstate(invalid="ignore"):
            cell = v.astype(np.int64) * lat.nx + u.astype(np.int64)
        cell[~ok] = 0  # the padded corner cell, which is uncovered
        out[:] = self._table[cell]
        hard = np.flatnonzero(out <= -2)
        if len(hard):
            out[hard] = self._resolve(x[hard], y[hard], -2 - out[hard])

    def _resolve(self, x: np.ndarray, y: np.ndarray, bcell: np.ndarray) -> np.ndarray:
        """Exact answers for points in boundary cells ``bcell``: the first candidate covering each.

        Candidates are sorted by position, so the first hit is the smallest code.
        """
        start = self._offsets[bcell]
        count = self._offsets[bcell + 1] - start
        point = np.repeat(np.arange(len(x)), count)
        cand = self._candidates[np.repeat(start, count) + _ramp(count)]
        hit = shapely.intersects_xy(self._geoms[cand], x[point], y[point])
        point, cand = point[hit], cand[hit]
        first = np.r_[True, point[1:] != point[:-1]] if len(point) else np.zeros(0, bool)
        res = np.full(len(x), _UNCOVERED, dtype=np.int64)
        res[point[first]] = cand[first]
        return res


def assign_points(grids_gdf, lon, lat) -> np.ndarray:
    """One-off convenience: grid code per point (``None`` where unassigned) for ``grids_gdf``."""
    return GridIndex.from_geodataframe(grids_gdf).assign_codes(lon, lat)
