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

An engine is a function ``(grids, x, y) -> object array of codes/None`` listed in ``ENGINES``.
PostGIS (``--postgis``, on by default when a server is reachable) runs in a scratch database
``gridgov_bench_<pid>`` created on the server in use (migrated, the shipped generation loaded) and
dropped at the end, also on Ctrl-C or an error: the points are COPYed into an UNLOGGED table, given
a GiST index, and assigned by one set-based ``UPDATE … FROM … ST_Covers`` keeping the smallest code.
It reports the UPDATE alone and COPY + index + UPDATE, on the first ``--postgis-max`` points
(default ``--ref-max``). The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely
from sqlalchemy.engine import make_url

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


# ---------------------------------------------------------------------------------------------
# PostGIS: a scratch database and the set-based UPDATE
# ---------------------------------------------------------------------------------------------

POSTGIS = "PostGIS UPDATE … ST_Covers"
UPDATE_SQL = """
UPDATE pts SET grid_code = g.code
FROM (SELECT DISTINCT ON (p.id) p.id, u.code
      FROM pts p
      JOIN unit u ON u.generation_id = %(gen)s AND u.level = 'grid' AND ST_Covers(u.geom, p.geom)
      ORDER BY p.id, u.code) g
WHERE pts.id = g.id
"""
# One binary-COPY row: 2 fields, an int8 id and the point as 25-byte EWKB (little-endian,
# type Point with the SRID flag, SRID 4490). Field headers are big-endian, as COPY wants.
_COPY_ROW = np.dtype([
    ("fields", ">i2"), ("id_len", ">i4"), ("id", ">i8"), ("geom_len", ">i4"),
    ("order", "u1"), ("type", "<u4"), ("srid", "<u4"), ("x", "<f8"), ("y", "<f8"),
])  # fmt: skip
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_TRAILER = b"\xff\xff"


def server_url(url: str | None = None) -> str:
    """The SQLAlchemy URL of the server to use: ``url``, else the project's database."""
    from gis.database import database_url, normalise_url

    return normalise_url(url) if url else database_url()


def libpq(url: str, database: str | None = None) -> str:
    """``url`` as a libpq URL for psycopg, optionally for another database."""
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def postgis_unavailable(url: str | None = None) -> str | None:
    """Why PostGIS cannot be benchmarked (no server, no extension), or None when it can."""
    try:
        conninfo = libpq(server_url(url), "postgres")
        with psycopg.connect(conninfo, connect_timeout=5) as conn:
            found = conn.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'"
            ).fetchone()
    except Exception as exc:  # any failure to reach the server means "skip", with the reason
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
    return None if found else "the server has no postgis extension"


class ScratchDatabase:
    """``gridgov_bench_<pid>[_suffix]`` on the server: created migrated (or as a copy of
    ``template``) on enter, dropped on exit whatever happened (``WITH (FORCE)``)."""

    def __init__(self, url: str, suffix: str = "", template: str | None = None) -> None:
        self.server = url
        self.name = f"gridgov_bench_{os.getpid()}{'_' + suffix if suffix else ''}"
        self.template = template
        self.url = make_url(url).set(database=self.name).render_as_string(hide_password=False)
        self.conninfo = libpq(url, self.name)

    def _admin(self, sql: str) -> None:
        with psycopg.connect(libpq(self.server, "postgres"), autocommit=True) as conn:
            conn.execute(sql)

    def __enter__(self) -> ScratchDatabase:
        from gis.database import upgrade

        clause = f' TEMPLATE "{self.template}"' if self.template else ""
        self._admin(f'CREATE DATABASE "{self.name}"{clause}')
        try:
            if self.template is None:
                upgrade(self.url)
        except BaseException:
            self.drop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.drop()

    def release(self) -> None:
        """Close the project's pooled connections to this database (before copying it)."""
        from gis.database import get_engine

        get_engine(self.url).dispose()

    def drop(self) -> None:
        self.release()
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def load_generation(db: ScratchDatabase, path: Path) -> int:
    """The shipped (or given) GeoPackage as the active generation of ``db``; its id."""
    from gis.boundaries import load_shipped
    from gis.database import get_engine

    generation_id, _ = load_shipped(get_engine(db.url), path)
    with psycopg.connect(db.conninfo, autocommit=True) as conn:
        conn.execute("ANALYZE unit")
    return generation_id


@contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """Turn SIGTERM into SystemExit while inside, so ``finally`` blocks drop scratch databases."""

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def copy_points(conn: psycopg.Connection, x: np.ndarray, y: np.ndarray) -> None:
    """Binary COPY of the finite points into ``pts (id, geom)``; id = position in x/y."""
    ids = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    with conn.cursor().copy("COPY pts (id, geom) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(_COPY_HEADER)
        for part in np.array_split(ids, max(1, len(ids) // 1_000_000)):
            rows = np.empty(len(part), _COPY_ROW)
            rows["fields"], rows["id_len"], rows["geom_len"] = 2, 8, 25
            rows["order"], rows["type"], rows["srid"] = 1, 0x20000001, 4490
            rows["id"], rows["x"], rows["y"] = part, x[part], y[part]
            copy.write(rows.tobytes())
        copy.write(_COPY_TRAILER)


def read_codes(conn: psycopg.Connection, n: int) -> np.ndarray:
    """``pts.grid_code`` by id as an object array of ``n`` codes, None where NULL."""
    out = np.full(n, None, dtype=object)
    buffer = io.BytesIO()
    sql = "COPY (SELECT id, grid_code FROM pts WHERE grid_code IS NOT NULL) TO STDOUT"
    with conn.cursor().copy(sql) as copy:
        for block in copy:
            buffer.write(block)
    buffer.seek(0)
    if buffer.getbuffer().nbytes:
        frame = pd.read_csv(
            buffer,
            sep="\t",
            header=None,
            names=["id", "code"],
            dtype={"id": np.int64, "code": str},
            keep_default_na=False,
        )
        out[frame["id"].to_numpy()] = frame["code"].to_numpy(dtype=object)
    return out


class PostgisEngine:
    """The set-based PostGIS assignment in a scratch database; a context manager."""

    def __init__(self, url: str, grids_path: Path) -> None:
        self.db = ScratchDatabase(url)
        self.grids_path = grids_path
        self.generation_id = 0
        self.conn: psycopg.Connection | None = None

    def __enter__(self) -> PostgisEngine:
        self.db.__enter__()
        try:
            self.generation_id = load_generation(self.db, self.grids_path)
            self.conn = psycopg.connect(self.db.conninfo)
            self.conn.execute("SET work_mem = '256MB'")  # the DISTINCT ON sort stays in memory
        except BaseException:
            self.db.drop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.conn is not None:
            self.conn.close()
        self.db.drop()

    def run(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        """Codes for the points, and seconds spent in COPY, index and UPDATE (each committed)."""
        conn, phases = self.conn, {}
        conn.execute("DROP TABLE IF EXISTS pts")
        conn.execute(
            "CREATE UNLOGGED TABLE pts (id bigint, geom geometry(Point, 4490), grid_code text)"
        )
        conn.commit()
        for phase, work in (
            ("copy", lambda: copy_points(conn, x, y)),
            ("index", lambda: conn.execute("CREATE INDEX ON pts USING gist (geom); ANALYZE pts")),
            ("update", lambda: conn.execute(UPDATE_SQL, {"gen": self.generation_id})),
        ):
            start = time.perf_counter()
            work()
            conn.commit()
            phases[phase] = time.perf_counter() - start
        codes = read_codes(conn, len(x))
        conn.execute("DROP TABLE pts")
        conn.commit()
        return codes, phases

    def measure(self, x: np.ndarray, y: np.ndarray, reference: np.ndarray, repeat: int) -> list:
        """Rows for the UPDATE alone and for COPY + index + UPDATE (best of ``repeat``)."""
        best: dict[str, float] | None = None
        for _ in range(repeat):
            codes, phases = self.run(x, y)
            if best is None or sum(phases.values()) < sum(best.values()):
                best = phases
        disagreements = int(np.sum(codes != reference))
        return [
            Row(POSTGIS, len(x), best["update"], disagreements),
            Row("  … COPY + GiST index + UPDATE", len(x), sum(best.values())),
        ]


# ---------------------------------------------------------------------------------------------
# Dask: the same engine on a local cluster (for docs/DASK.md)
# ---------------------------------------------------------------------------------------------


def dask_comparison(
    index: GridIndex, x: np.ndarray, y: np.ndarray, ours: np.ndarray, client: object, repeat: int
) -> dict:
    """GridIndex in memory vs on Dask, two ways: points in memory → codes, and a Parquet file of
    points → a Parquet file of codes. Each Dask run ships the index to the workers again."""
    import dask.dataframe as dd

    from gis.assign_dask import assign_dask, assign_file

    n = len(x)
    frame = pd.DataFrame({"x": x, "y": y})
    ddf = dd.from_pandas(frame, npartitions=max(4, n // 1_000_000))
    warnings.filterwarnings("ignore", "Sending large graph", UserWarning)  # the points, by design
    codes, t_dask = timed(lambda: assign_dask(ddf, index, client).compute(), repeat)
    rows = [
        Row("memory: arrays → codes", n, timed(lambda: index.assign_codes(x, y), repeat)[1]),
        Row("Dask: dataframe → codes", n, t_dask, int(np.sum(codes.to_numpy(object) != ours))),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        points, out = Path(tmp) / "points.parquet", Path(tmp) / "codes"
        frame.to_parquet(points, row_group_size=1_000_000)

        def memory_file() -> None:
            read = pd.read_parquet(points)
            found = index.assign_codes(read["x"].to_numpy(), read["y"].to_numpy())
            pd.DataFrame({"grid_code": found}).to_parquet(out.with_suffix(".parquet"))

        def dask_file() -> None:
            found = assign_file(points, index, client, split_row_groups=True)
            found.astype("string").to_frame().to_parquet(out, write_index=False)

        rows.append(Row("memory: Parquet → Parquet", n, timed(memory_file, repeat)[1]))
        rows.append(Row("Dask: Parquet → Parquet", n, timed(dask_file, repeat)[1]))
        got = pd.read_parquet(out)["grid_code"].astype(object)
        rows[-1].disagreements = int(np.sum(got.where(got.notna(), None).to_numpy() != ours))
    workers = len(client.scheduler_info()["workers"])
    print(f"-- Dask ({workers} local worker processes, 1 thread each) vs memory, {n:,} points --")
    for r in rows:
        dis = "-" if r.disagreements is None else f"{r.disagreements:,}"
        print(f"{r.engine:36} {r.seconds:>9.3f} s {r.rate:>13,.0f} points/s {dis:>9}")
    return {
        "dask_pts_per_s": round(rows[1].rate),
        "dask_file_pts_per_s": round(rows[3].rate),
        "memory_file_pts_per_s": round(rows[2].rate),
        "dask_disagreements": (rows[1].disagreements or 0) + (rows[3].disagreements or 0),
    }


def run_size(
    grids: gpd.GeoDataFrame,
    n: int,
    args: argparse.Namespace,
    postgis: PostgisEngine | None,
    dask_client: object = None,
) -> dict:
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
    k = min(n, int(args.postgis_max or ref_max))
    if postgis is not None:
        rows += postgis.measure(x[:k], y[:k], ours[:k], min(runs_for(k, 1), 3))
    print_table(n, (m, k), build, index, rows, (runs_for(n, repeat), runs_for(m, 1)))
    summary = summarise(n, m, build, rows)
    if dask_client is not None:
        summary |= dask_comparison(index, x, y, ours, dask_client, min(runs_for(n, 1), 3))
        summary["disagreements"] += summary["dask_disagreements"]
    return summary


def summarise(n: int, m: int, build: float, rows: list[Row]) -> dict:
    """The JSON summary of one size; PostGIS figures only when it ran."""
    by_name = {r.engine: r for r in rows}
    baseline = by_name[BASELINE]
    summary = {
        "points": n,
        "engine_pts_per_s": round(rows[0].rate),
        "sjoin_pts_per_s": round(baseline.rate),
        "ratio_vs_sjoin": round(rows[0].rate / baseline.rate, 1),
        "disagreements": int(sum(r.disagreements or 0 for r in rows)),
        "index_build_s": round(build, 3),
        "reference_points": m,
    }
    if POSTGIS in by_name:
        update, total = by_name[POSTGIS], rows[rows.index(by_name[POSTGIS]) + 1]
        summary |= {
            "postgis_points": update.points,
            "postgis_update_pts_per_s": round(update.rate),
            "postgis_copy_update_pts_per_s": round(total.rate),
            "ratio_vs_postgis_update": round(rows[0].rate / update.rate, 1),
            "postgis_disagreements": update.disagreements,
        }
    return summary


def print_table(
    n: int,
    sample: tuple[int, int],
    build: float,
    index: GridIndex,
    rows: list[Row],
    runs: tuple[int, int],
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
    postgis = " (PostGIS ≤ 3)" if any(r.engine == POSTGIS for r in rows) else ""
    print(f"best of {runs[0]} runs for GridIndex, of {runs[1]} for the others{postgis}")
    for what, m in (("reference engines", sample[0]), ("PostGIS", sample[1])):
        if m < n and any(r.points == m for r in rows[2:]):
            print(f"{what} measured on the first {m:,} of the {n:,} (shuffled) points")
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
        "--postgis-max", type=float, help="points cap for PostGIS (default: --ref-max)"
    )
    parser.add_argument(
        "--postgis",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the PostGIS engine (default: when a server is reachable)",
    )
    parser.add_argument(
        "--dask", action="store_true", help="also compare with the Dask engine (local cluster)"
    )
    parser.add_argument("--dask-workers", type=int, default=2, help="local Dask workers")
    parser.add_argument(
        "--server-url", help="PostgreSQL server for the scratch database (default: the project's)"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of the engine, best kept (more below 1e6)"
    )
    parser.add_argument(
        "--uniform", action="store_true", help="all points uniform over the bbox (no clusters)"
    )
    parser.add_argument("--grids", type=Path, default=GPKG, help="GeoPackage with a 'grid' layer")
    return parser.parse_args(argv)


def postgis_engine(args: argparse.Namespace, grids_source: str) -> PostgisEngine | str:
    """The PostGIS engine if asked for (by default: if reachable), else why it is skipped."""
    if args.postgis is False:
        reason = "--no-postgis"
    else:
        reason = postgis_unavailable(args.server_url)
        if reason is None and grids_source != str(args.grids):
            reason = "the grids are synthetic, not a GeoPackage PostGIS can load"
    if reason is None:
        return PostgisEngine(server_url(args.server_url), args.grids)
    if args.postgis:
        raise SystemExit(f"PostGIS was asked for but cannot run: {reason}")
    print(f"PostGIS: SKIPPED ({reason})")
    return reason


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; prints the tables and, last, one JSON line (also returned)."""
    args = parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")] if args.sizes else [int(args.points)]
    grids, source = load_grids(args.grids)
    mix = (
        "uniform over the bbox" if args.uniform else "90% clustered inside + 10% uniform over bbox"
    )
    print(f"grids: {source}; {len(grids):,} polygons; points: {mix}")
    postgis = postgis_engine(args, source)
    engine = postgis if isinstance(postgis, PostgisEngine) else None
    with sigterm_as_exit(), warnings.catch_warnings(), ExitStack() as stack:
        warnings.simplefilter("ignore", RuntimeWarning)
        if engine is not None:
            stack.enter_context(engine)
            print(f"PostGIS: scratch database {engine.db.name}")
        client = None
        if args.dask:
            from gis.assign_dask import connect

            client = stack.enter_context(connect(n_workers=args.dask_workers))
        summaries = [run_size(grids, n, args, engine, client) for n in sizes]
    result = dict(summaries[-1])
    if engine is None:
        result["postgis"] = f"skipped ({postgis})"
    if len(summaries) > 1:
        result["sizes"] = summaries
    result["target_met"] = verdict(result)
    print(json.dumps(result, ensure_ascii=False))
    return result


@dataclass(frozen=True)
class Target:
    """An acceptance target: at ``size`` (in ``unit``), at least ``ratio`` times ``baseline``
    with zero disagreements."""

    size: int
    unit: str
    ratio: float
    baseline: str

    def judge(self, size: int, ratio: float, disagreements: int) -> bool | None:
        """Print and return whether the target is met; None (not judged) at other sizes."""
        measured = f"({ratio:.2f}×, {disagreements} disagreements)"
        head = f"target (≥{self.ratio:g}× {self.baseline} at {self.size:,} {self.unit}"
        if size != self.size:
            print(f"{head}): not judged at {size:,} {self.unit} {measured}")
            return None
        met = ratio >= self.ratio and disagreements == 0
        print(f"{head}, 0 disagreements): {'MET' if met else 'NOT MET'} {measured}")
        return met


TARGET = Target(10_000_000, "points", 20.0, "geopandas.sjoin")


def verdict(result: dict) -> bool | None:
    """Whether GridIndex is at least 20× ``geopandas.sjoin`` at 10⁷ points, 0 disagreements."""
    return TARGET.judge(result["points"], result["ratio_vs_sjoin"], result["disagreements"])


if __name__ == "__main__":
    main()
