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
so one exact test of a representative point labels the whole run. Each boundary cell is split
once more into ``_SUB`` × ``_SUB`` sub-cells, labelled the same way, which cuts the points left
undecided by another factor of about ``_SUB``. At query time a point's cell and sub-cell come from
integer arithmetic and almost every point is answered by array lookups; only points in boundary
sub-cells are tested exactly (``shapely.intersects_xy`` = covers for a point, on prepared
polygons) against their cell's short candidate list, sorted so the first hit has the smallest code.

Floating point: a point's cell comes from ``(x - x0) * (1 / dx)``, off from the exact affine
image by ~1e-12 cells at most; the ``_TOL`` = 1e-6-cell margin used when marking boundary cells
dwarfs that, so no point near a boundary can be answered from a table. ``_SUB`` is a power of two,
so sub-lattice coordinates are exactly ``_SUB`` times the lattice's and a sub-cell always lies in
the cell it was looked up from.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely

__all__ = ["GridIndex", "assign_points"]

_TOL = 1e-6  # safety margin, in cells, around every boundary segment
_UNCOVERED = -1  # lookup value: no grid covers this cell
# Cell table values <= -2 mean "boundary cell number -2 - value": look at its sub-cells.
_TEST = -2  # sub-cell table value: test the cell's candidates exactly
_SUB = 4  # sub-cells per side of a boundary cell; a power of two (see the module docstring)
_CHUNK = 1 << 17  # points per work unit: bounds temporaries, feeds the thread pool
_DEFAULT_CELLS_PER_GRID = 800  # lattice density: 3 ha grids → ~6 m cells, ~5% boundary cells
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

    def refined(self, k: int) -> _Lattice:
        """The same extent with cells ``k`` times smaller per side."""
        return _Lattice(self.x0, self.y0, self.dx / k, self.dy / k, self.nx * k, self.ny * k)

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


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    """``np.unique`` for int arrays by sorting (several times faster than its hash path here)."""
    a = np.sort(a)
    return a[np.r_[True, a[1:] != a[:-1]]] if len(a) else a


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


def _label_free_runs(lattice: _Lattice, boundary: np.ndarray, tree: shapely.STRtree) -> np.ndarray:
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
    boundary_cells = _sorted_unique(cells)
    pt, geom = tree.query(shapely.points(*lattice.centres(boundary_cells)), predicate="intersects")
    n_grids = np.int64(len(tree.geometries))
    pair_cell = np.concatenate([cells, boundary_cells[pt]])
    key = _sorted_unique(pair_cell * n_grids + np.concatenate([owner, geom]))
    cell_of_pair, candidates = np.divmod(key, n_grids)
    slot = np.searchsorted(boundary_cells, cell_of_pair)
    counts = np.bincount(slot, minlength=len(boundary_cells))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    return boundary_cells, offsets, candidates


def _first_covering(
    geoms: np.ndarray,
    offsets: np.ndarray,
    candidates: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    bcell: np.ndarray,
) -> np.ndarray:
    """Exact answers for points in boundary cells ``bcell``: the first candidate covering each.

    Candidates are sorted by position, so the first hit is the smallest code; testing in rounds
    (k-th candidate of every still-unanswered point) stops as soon as a point is hit.
    """
    res = np.full(len(x), _UNCOVERED, dtype=np.int64)
    start = offsets[bcell]
    count = offsets[bcell + 1] - start
    todo = np.arange(len(x))
    for k in range(int(count.max(initial=0))):
        todo = todo[count[todo] > k]
        cand = candidates[start[todo] + k]
        hit = shapely.intersects_xy(geoms[cand], x[todo], y[todo])
        res[todo[hit]] = cand[hit]
        todo = todo[~hit]
    return res


def _sub_table(
    lattice: _Lattice,
    cells: np.ndarray,
    segments: tuple[np.ndarray, np.ndarray],
    geoms: np.ndarray,
    offsets: np.ndarray,
    candidates: np.ndarray,
) -> np.ndarray:
    """Answers for the ``_SUB`` × ``_SUB`` sub-cells of each boundary cell: grid, -1 or ``_TEST``.

    Sub-cell ``(sj, si)`` of boundary cell ``b`` sits at ``b * _SUB² + sj * _SUB + si``. A sub-cell
    no segment comes near has one answer throughout, found by testing its centre against the
    cell's (complete) candidate list.
    """
    per = _SUB * _SUB
    fine = lattice.refined(_SUB)
    fj, fi = np.divmod(_segment_cells(fine, *segments)[0], fine.nx)  # repeats are harmless
    coarse = (fj // _SUB) * lattice.nx + fi // _SUB
    slot = np.minimum(np.searchsorted(cells, coarse), len(cells) - 1)
    inside = cells[slot] == coarse  # always true; a mark elsewhere would be harmless anyway
    marked = np.zeros(len(cells) * per, dtype=bool)
    marked[(slot * per + (fj % _SUB) * _SUB + fi % _SUB)[inside]] = True
    free = np.flatnonzero(~marked)
    b, (sj, si) = free // per, np.divmod(free % per, _SUB)
    j, i = np.divmod(cells[b], lattice.nx)
    x, y = fine.centres((j * _SUB + sj) * fine.nx + i * _SUB + si)
    sub = np.full(len(cells) * per, _TEST, dtype=np.int32)
    sub[free] = _first_covering(geoms, offsets, candidates, x, y, b)
    return sub


def _default_cell(geoms: np.ndarray, bounds: np.ndarray) -> float:
    """Cell size giving ~``_DEFAULT_CELLS_PER_GRID`` cells per grid, within the table cap."""
    width, height = bounds[2] - bounds[0], bounds[3] - bounds[1]
    cell = np.sqrt(np.nanmean(shapely.area(geoms)) / _DEFAULT_CELLS_PER_GRID)
    cap = max(np.sqrt(width * height / _MAX_CELLS), max(width, height) / 4096)
    cell = max(float(np.nan_to_num(cell)), float(cap))
    return cell if cell > 0 else 1.0  # degenerate (zero-extent) grids: any cell will do


def _check_cell(cell: float, bounds: np.ndarray) -> None:
    """Refuse a cell size whose lattice would not fit the table cap."""
    width, height = bounds[2] - bounds[0], bounds[3] - bounds[1]
    if not (np.isfinite(cell) and cell > 0):
        raise ValueError(f"cell_size must be a positive number, got {cell!r}")
    if (width / cell + 4) * (height / cell + 4) > 4 * _MAX_CELLS:
        raise ValueError(f"cell_size {cell!r} is too small for grids spanning {width} × {height}")


def _check_padding(table: np.ndarray) -> None:
    """The outer ring of cells must answer "uncovered": clamped outside points land there."""
    ring = np.concatenate([table[0], table[-1], table[:, 0], table[:, -1]])
    if (ring != _UNCOVERED).any():
        raise RuntimeError("lattice padding is not uncovered; the lattice is laid out wrongly")


def _clamped_uv(lat: _Lattice, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lattice coordinates clamped into the lattice, NaN sent to 0, computed in place.

    Anything outside the lattice (or NaN) lands in the outermost row or column, which is padding
    and answers "uncovered" — correct for such points — so no separate range mask is needed.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        u = np.subtract(x, lat.x0)
        u *= 1.0 / lat.dx
        v = np.subtract(y, lat.y0)
        v *= 1.0 / lat.dy
    np.fmax(u, 0.0, out=u)  # fmax/fmin return the number when the other operand is NaN
    np.fmin(u, lat.nx - 1, out=u)
    np.fmax(v, 0.0, out=v)
    np.fmin(v, lat.ny - 1, out=v)
    return u, v


def _threads() -> int:
    """CPUs this process may use (the table lookups release the GIL, so they scale)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class GridIndex:
    """Exact point → grid lookup under the edge rule; build once, query many times, picklable.

    ``codes`` holds the grid codes sorted (string order), so a smaller position is a smaller code
    and "smallest code wins" is "smallest position wins".
    """

    codes: np.ndarray
    crs: object  # the grids' CRS when built from a GeoDataFrame; points must be in it

    def __init__(
        self,
        codes: npt.ArrayLike,
        geometries: npt.ArrayLike,
        *,
        cell_size: float | None = None,
        crs: object = None,
    ) -> None:
        """Index ``geometries`` (shapely, any order) under ``codes``; ``cell_size`` in CRS units."""
        self.crs = crs
        codes = np.array([str(c) for c in np.asarray(codes, dtype=object)], dtype=object)
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
        geoms = gdf.geometry.to_numpy()
        return cls(gdf["code"].to_numpy(), geoms, cell_size=cell_size, crs=gdf.crs)

    def _build(self, cell_size: float | None) -> None:
        """Lay the lattice, mark boundary cells, label the rest, and list boundary candidates."""
        geoms = self._geoms
        shapely.prepare(geoms)
        present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        bounds = shapely.total_bounds(geoms[present]) if present.any() else np.full(4, np.nan)
        if not np.isfinite(bounds).all():  # no grids or only empty ones: nothing is covered
            self._lattice = _Lattice(0.0, 0.0, 1.0, 1.0, 1, 1)
            self._table = np.full(1, _UNCOVERED, dtype=np.int32)
            self._sub = np.zeros(0, dtype=np.int32)
            self._offsets, self._candidates = np.zeros(1, np.int64), np.zeros(0, np.int64)
            return
        cell = _default_cell(geoms[present], bounds) if cell_size is None else cell_size
        _check_cell(cell, bounds)
        lattice = _Lattice.covering(bounds, cell)
        tree = shapely.STRtree(geoms)
        segments = _segments(geoms)
        seg_cells, seg_owner = _segment_cells(lattice, *segments)
        boundary = np.zeros(lattice.nx * lattice.ny, dtype=bool)
        boundary[seg_cells] = True
        table = _label_free_runs(lattice, boundary, tree)
        cells, offsets, candidates = _candidates(lattice, seg_cells, seg_owner, tree)
        table[cells] = -2 - np.arange(len(cells))
        self._sub = _sub_table(lattice, cells, segments, geoms, offsets, candidates)
        self._lattice, self._table = lattice, table.astype(np.int32)
        self._offsets, self._candidates = offsets, candidates
        _check_padding(self._table.reshape(lattice.ny, lattice.nx))

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
            "test_share": np.count_nonzero(self._sub == _TEST) / (lat.nx * lat.ny * _SUB * _SUB),
            "mean_candidates": len(self._candidates) / max(len(self._offsets) - 1, 1),
            "table_bytes": self._table.nbytes + self._sub.nbytes,
        }

    def assign(
        self, lon: npt.ArrayLike, lat: npt.ArrayLike, *, threads: int | None = None
    ) -> np.ndarray:
        """Position in ``codes`` of the grid each point belongs to under the edge rule, or -1.

        ``lon``/``lat`` (any equal shapes, in the grids' CRS) give an int64 array of that shape.
        ``threads`` defaults to the usable CPUs.
        """
        x = np.asarray(lon, dtype=np.float64)
        y = np.asarray(lat, dtype=np.float64)
        if x.shape != y.shape:
            raise ValueError(f"lon and lat shapes differ: {x.shape} vs {y.shape}")
        shape, x, y = x.shape, x.ravel(), y.ravel()
        out = np.empty(len(x), dtype=np.int64)
        hard = np.concatenate([np.zeros(0, np.int64), *self._lookup(x, y, out, threads)])
        for h in np.array_split(hard, max(1, -(-len(hard) // _CHUNK))):
            bcell = -2 - out[h]
            out[h] = _first_covering(
                self._geoms, self._offsets, self._candidates, x[h], y[h], bcell
            )
        return out.reshape(shape)

    def assign_codes(
        self, lon: npt.ArrayLike, lat: npt.ArrayLike, *, threads: int | None = None
    ) -> np.ndarray:
        """Grid code per point (object array), ``None`` where unassigned."""
        return self._codes_or_none[self.assign(lon, lat, threads=threads)]

    def _lookup(self, x: np.ndarray, y: np.ndarray, out: np.ndarray, threads: int | None) -> list:
        """Table lookups for all points, chunked over threads; the boundary-cell points per chunk.

        Only this numpy phase runs in threads: the exact tests hold the GIL, and interleaving
        them with the lookups makes both wait on it (slower than one thread).
        """
        starts = range(0, len(x), _CHUNK)

        def run(start: int) -> np.ndarray:
            s = slice(start, start + _CHUNK)
            return start + self._lookup_chunk(x[s], y[s], out[s])

        workers = min(threads or _threads(), len(starts))
        if workers <= 1:
            return [run(start) for start in starts]
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(run, starts))

    def _lookup_chunk(self, x: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Table answers into ``out``; returns the indices still needing an exact test.

        Those keep ``-2 - boundary cell`` in ``out``.
        """
        lat = self._lattice
        u, v = _clamped_uv(lat, x, y)
        col, row = u.astype(np.int32), v.astype(np.int32)
        cell = row * np.int32(lat.nx)  # < 2**31 cells: int32 halves the memory traffic
        cell += col
        out[:] = self._table[cell]
        hard = np.flatnonzero(out <= -2)
        # Sub-cell within the boundary cell: u * _SUB is exact and lies in [col, col + 1) * _SUB.
        si = (u[hard] * _SUB).astype(np.int64) - col[hard] * _SUB
        sj = (v[hard] * _SUB).astype(np.int64) - row[hard] * _SUB
        answer = self._sub[(-2 - out[hard]) * (_SUB * _SUB) + sj * _SUB + si]
        decided = answer != _TEST
        out[hard[decided]] = answer[decided]
        return hard[~decided]


def assign_points(grids_gdf, lon: npt.ArrayLike, lat: npt.ArrayLike) -> np.ndarray:
    """One-off convenience: grid code per point (``None`` where unassigned) for ``grids_gdf``.

    Builds an index each call (about a second for 2,400 grids); keep a :class:`GridIndex` instead
    when assigning repeatedly.
    """
    return GridIndex.from_geodataframe(grids_gdf).assign_codes(lon, lat)
