"""Point → grid assignment, side by side: gridgov's GridIndex against the usual alternatives.

    python bench/assign.py --points 1e6
    python bench/assign.py --sizes 1e5,1e6,1e7

Grids come from the shipped GeoPackage (``data/boundaries/liangxi.gpkg``, layer ``grid``); if it is
absent a synthetic partition stands in, with a warning. Points are deterministic: 90% clustered
around hot spots inside the district, 10% uniform over the bounding box (some fall outside), or
with ``--uniform`` all uniform over the bounding box.

Every engine answers with the edge rule (covering grid, smallest code on ties, None outside), so
all answers must agree; ``sjoin(within)`` is the classic baseline of the acceptance criterion and
answers interior-only, so it could differ only on points exactly on a boundary. Slow reference
engines run on the first ``--ref-max`` points (the points are shuffled, so that is a fair sample);
their throughput is points per second on that sample, and agreement is checked on it.

An engine is a function ``(grids, x, y) -> object array of codes/None`` listed in ``ENGINES``; a
PostGIS runner (``UPDATE … FROM grid WHERE ST_Covers(grid.geom, point)`` ordered by code) can be
added there with the same signature. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gis.assign import GridIndex  # noqa: E402

GPKG = ROOT / "data" / "boundaries" / "liangxi.gpkg"
SEED = 20190101
Engine = Callable[[gpd.GeoDataFrame, np.ndarray, np.ndarray], np.ndarray]


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


def load_grids(path: Path) -> tuple[gpd.GeoDataFrame, str]:
    """The shipped grids, or a synthetic partition (with a warning) when the file is missing."""
    if path.exists():
        return gpd.read_file(path, layer="grid"), str(path)
    from tests.gis.synthetic_grids import synthetic_partition

    print(f"WARNING: {path} not found; benchmarking a SYNTHETIC 2,400-grid partition instead.")
    return synthetic_partition(), "synthetic partition"


def make_points(
    grids: gpd.GeoDataFrame, n: int, clustered_share: float = 0.9, seed: int = SEED
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` shuffled points: a share in hot-spot clusters inside the district, the rest uniform
    over the bounding box (so some fall outside)."""
    rng = np.random.default_rng(seed)
    n_clustered = round(clustered_share * n)
    clustered = _clustered_inside(grids, n_clustered, rng)
    minx, miny, maxx, maxy = grids.total_bounds
    uniform = rng.uniform((minx, miny), (maxx, maxy), size=(n - n_clustered, 2))
    xy = np.vstack([clustered, uniform])[rng.permutation(n)]
    return np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1])


def _clustered_inside(grids: gpd.GeoDataFrame, n: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian clusters (σ 20 m – 1 km, heavy-tailed sizes) around grid points, kept inside."""
    geoms = grids.geometry.to_numpy()
    district = shapely.coverage_union_all(geoms)
    shapely.prepare(district)
    centres = shapely.get_coordinates(shapely.point_on_surface(geoms))
    weight = rng.pareto(1.2, len(centres)) + 0.05
    weight /= weight.sum()
    sigma = np.exp(rng.uniform(np.log(20), np.log(1000), len(centres)))  # metres
    metres = 1 / 111_000 if grids.crs is None or grids.crs.is_geographic else 1.0
    out = np.empty((0, 2))
    while len(out) < n:
        k = rng.choice(len(centres), size=int((n - len(out)) * 1.2) + 16, p=weight)
        xy = centres[k] + rng.normal(size=(len(k), 2)) * (sigma[k] * metres)[:, None]
        out = np.vstack([out, xy[shapely.contains_xy(district, xy[:, 0], xy[:, 1])]])
    return out[:n]


# ---------------------------------------------------------------------------------------------
# Engines: (grids, x, y) -> codes (object array, None where unassigned)
# ---------------------------------------------------------------------------------------------


def smallest_code_per_point(n: int, point: np.ndarray, code: np.ndarray) -> np.ndarray:
    """Reduce (point, code) match pairs to the smallest code per point, None if unmatched."""
    out = np.full(n, None, dtype=object)
    order = np.lexsort((code.astype(str), point))
    point, code = point[order], code[order]
    first = np.r_[True, point[1:] != point[:-1]] if len(point) else np.zeros(0, bool)
    out[point[first]] = code[first]
    return out


def sjoin_engine(predicate: str) -> Engine:
    """``geopandas.sjoin`` of point rows against the grids, smallest code kept per point."""

    def run(grids: gpd.GeoDataFrame, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y), crs=grids.crs)
        joined = gpd.sjoin(points, grids[["code", "geometry"]], predicate=predicate, how="inner")
        return smallest_code_per_point(
            len(x), joined.index.to_numpy(), joined["code"].to_numpy(dtype=object)
        )

    return run


def strtree_engine(grids: gpd.GeoDataFrame, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Plain shapely: one bulk ``STRtree.query(points, predicate="intersects")``."""
    geoms, codes = grids.geometry.to_numpy(), grids["code"].to_numpy(dtype=object)
    point, grid = shapely.STRtree(geoms).query(shapely.points(x, y), predicate="intersects")
    return smallest_code_per_point(len(x), point, codes[grid])


ENGINES: dict[str, Engine] = {
    "geopandas.sjoin(within)": sjoin_engine("within"),
    "geopandas.sjoin(covered_by)": sjoin_engine("covered_by"),
    "shapely STRtree.query(intersects)": strtree_engine,
}
BASELINE = "geopandas.sjoin(within)"


# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the results table."""

    engine: str
    points: int
    seconds: float
    disagreements: int | None = None

    @property
    def rate(self) -> float:
        return self.points / self.seconds if self.seconds else float("inf")


def timed(fn: Callable[[], np.ndarray], repeat: int = 1) -> tuple[np.ndarray, float]:
    """Result of ``fn`` and its best wall time over ``repeat`` runs (least disturbed by others)."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, min(times)


def runs_for(points: int, minimum: int) -> int:
    """Repeat count: short runs (under ~1e6 points) are repeated more, up to 10 times."""
    return max(minimum, min(10, 1_000_000 // max(points, 1)))


def run_size(grids: gpd.GeoDataFrame, n: int, args: argparse.Namespace) -> dict:
    """Build the index, time every engine on ``n`` points, print the table, return the summary."""
    x, y = make_points(grids, n, 0.0 if args.uniform else 0.9)
    ref_max, repeat = int(args.ref_max), args.repeat
    index, build = timed(lambda: GridIndex.from_geodataframe(grids))
    index.assign(x[:1000], y[:1000])  # warm-up: first-touch costs are not throughput
    ours, t_ours = timed(lambda: index.assign_codes(x, y), runs_for(n, repeat))
    _, t_single = timed(lambda: index.assign_codes(x, y, threads=1), runs_for(n, repeat))
    rows = [Row("gridgov GridIndex (all cores)", n, t_ours), Row("  … 1 thread", n, t_single)]
    m = min(n, ref_max)
    for name, engine in ENGINES.items():
        codes, seconds = timed(lambda engine=engine: engine(grids, x[:m], y[:m]), runs_for(m, 1))
        rows.append(Row(name, m, seconds, int(np.sum(codes != ours[:m]))))
    print_table(n, m, build, index, rows, (runs_for(n, repeat), runs_for(m, 1)))
    baseline = next(r for r in rows if r.engine == BASELINE)
    return {
        "points": n,
        "engine_pts_per_s": round(rows[0].rate),
        "sjoin_pts_per_s": round(baseline.rate),
        "ratio_vs_sjoin": round(rows[0].rate / baseline.rate, 1),
        "disagreements": int(sum(r.disagreements or 0 for r in rows)),
        "index_build_s": round(build, 3),
        "reference_points": m,
    }


def print_table(
    n: int, m: int, build: float, index: GridIndex, rows: list[Row], runs: tuple[int, int]
) -> None:
    """A readable table of throughput, speed-up over the baseline and disagreements."""
    stats = index.stats
    base = next(r for r in rows if r.engine == BASELINE).rate
    print(f"\n== {n:,} points ({stats['grids']:,} grids) ==")
    print(
        f"index build {build:.3f} s; lattice {stats['lattice'][0]}×{stats['lattice'][1]} cells, "
        f"{stats['boundary_share']:.1%} boundary cells, {stats['test_share']:.1%} of the area "
        f"needs exact tests, tables {stats['table_bytes'] / 1e6:.1f} MB"
    )
    print(f"best of {runs[0]} runs for GridIndex, of {runs[1]} for the others")
    if m < n:
        print(f"reference engines measured on the first {m:,} of the {n:,} (shuffled) points")
    head = ("engine", "points", "seconds", "points/s", "× sjoin", "disagree")
    print("{:36} {:>11} {:>9} {:>13} {:>8} {:>9}".format(*head))
    for r in rows:
        dis = "-" if r.disagreements is None else f"{r.disagreements:,}"
        print(
            f"{r.engine:36} {r.points:>11,} {r.seconds:>9.3f} {r.rate:>13,.0f} "
            f"{r.rate / base:>8.1f} {dis:>9}"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=float, default=1e5, help="number of points (default 1e5)")
    parser.add_argument("--sizes", help="comma-separated sizes, e.g. 1e5,1e6,1e7 (beats --points)")
    parser.add_argument(
        "--ref-max", type=float, default=1e6, help="points cap for the slow reference engines"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of the engine, best kept (more below 1e6)"
    )
    parser.add_argument(
        "--uniform", action="store_true", help="all points uniform over the bbox (no clusters)"
    )
    parser.add_argument("--grids", type=Path, default=GPKG, help="GeoPackage with a 'grid' layer")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")] if args.sizes else [int(args.points)]
    grids, source = load_grids(args.grids)
    mix = (
        "uniform over the bbox" if args.uniform else "90% clustered inside + 10% uniform over bbox"
    )
    print(f"grids: {source}; {len(grids):,} polygons; points: {mix}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        summaries = [run_size(grids, n, args) for n in sizes]
    result = dict(summaries[-1])
    if len(summaries) > 1:
        result["sizes"] = summaries
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
