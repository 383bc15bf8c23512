"""Load + assign simulated incidents into PostGIS, side by side on fresh scratch databases.

    python bench/load.py --rows 1e6

Every way starts from the same rows in memory (a pandas frame: source key, source, class, time,
CGCS2000 lon/lat; 90% clustered inside the district, 10% uniform over its bounding box, so some
fall outside) and ends with every incident stored and assigned (grid, community, street,
location status) on the active generation. Each runs in its own database copied from one
template (migrated, shipped generation and class catalogue loaded), so none sees another's rows
or indexes; all are dropped at the end, also on Ctrl-C or an error.

importer
    gridgov's path: ``etl.incidents.import_reader`` on a ``FrameReader`` (validation, time
    parsing, duplicate keys, GridIndex assignment in memory, COPY through
    ``gis.bulk_load.BulkLoad``), in one transaction. Timed end to end, index build included.
    The template's yearly partitions are empty, so ``BulkLoad`` builds each year aside (COPY into
    a bare table, then the indexes) and swaps it in at the end.
core (``--core``, default on)
    The same without the file machinery: GridIndex + ``BulkLoad`` with rows built here.
core, in place (``--in-place``)
    The core path with ``BulkLoad(swap_partitions=False)``: COPY straight into ``incident``, whose
    indexes are maintained row by row (what any load into a partition that has rows does).
insert+update
    The plain alternative: one multi-row INSERT per ``--batch`` rows (default 1,000; the rows
    sent as column arrays and unnested, the fastest plain form; ``--insert values`` uses a
    ``VALUES`` list instead, several times slower), then ANALYZE and one set-based
    ``UPDATE … FROM (SELECT DISTINCT ON … ST_Covers … ORDER BY code)`` setting grid, community
    and street. The ``incident_assign`` trigger is disabled for it: left on, it would assign every
    row at INSERT time one by one (the single-report path), which is not the set-based baseline
    and is slower; rows go in as ``outside`` of the active generation and the UPDATE marks the
    covered ones ``assigned``. It does not write ``incident_key`` (the duplicate guard the other
    two maintain), which only flatters it.

Assignments are read back from every database and compared row by row (by source key). The last
line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.assign import (  # noqa: E402
    GPKG,
    ScratchDatabase,
    Target,
    load_generation,
    load_grids,
    make_points,
    postgis_unavailable,
    server_url,
    sigterm_as_exit,
)

SEED = 20190102
CHUNK = 100_000  # rows per bulk_insert, as the importer's default chunk
SOURCES = ("grid_worker", "hotline", "video_patrol")
UPDATE_SQL = """
UPDATE incident i
SET grid_id = h.grid_id, community_id = h.community_id, street_id = c.parent_id,
    location_status = 'assigned'
FROM (SELECT DISTINCT ON (p.id, p.reported_at) p.id, p.reported_at, g.id AS grid_id,
             g.parent_id AS community_id
      FROM incident p
      JOIN unit g ON g.generation_id = %(g)s AND g.level = 'grid' AND ST_Covers(g.geom, p.geom)
      ORDER BY p.id, p.reported_at, g.code) h
JOIN unit c ON c.id = h.community_id
WHERE i.id = h.id AND i.reported_at = h.reported_at
"""
# One multi-row INSERT per batch, its rows sent as arrays (far faster than a VALUES list of
# thousands of parameters, so the baseline is not a straw man). Located, provisionally outside.
INSERT_SQL = """
INSERT INTO incident (source, source_key, class_code, description, reported_at, geom,
                      orig_x, orig_y, orig_crs, location_status, generation_id)
SELECT s, k, c, d, t, ST_SetSRID(ST_MakePoint(x, y), 4490), x, y, 'cgcs2000', 'outside', %s
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::float8[],
            %s::float8[]) AS u(s, k, c, d, t, x, y)
"""
READ_SQL = """
COPY (SELECT i.source_key, i.location_status, g.code, c.code, s.code
      FROM incident i
      LEFT JOIN unit g ON g.id = i.grid_id
      LEFT JOIN unit c ON c.id = i.community_id
      LEFT JOIN unit s ON s.id = i.street_id) TO STDOUT
"""
ASSIGNMENT = ["status", "grid", "community", "street"]


# ---------------------------------------------------------------------------------------------
# Rows and databases
# ---------------------------------------------------------------------------------------------


def simulate(n: int, classes: list[str], seed: int = SEED) -> pd.DataFrame:
    """``n`` deterministic incidents as the importer reads them (times with their zone)."""
    grids, _ = load_grids(GPKG)
    lon, lat = make_points(grids, n, seed=seed)
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2018-01-01", tz="Asia/Shanghai")
    seconds = rng.integers(0, 2 * 365 * 86_400, n)
    return pd.DataFrame({
        "source_key": [f"bench-{i:08d}" for i in range(n)],
        "source": np.asarray(SOURCES, dtype=object)[rng.integers(0, len(SOURCES), n)],
        "class_code": np.asarray(classes, dtype=object)[rng.integers(0, len(classes), n)],
        "description": "",
        "reported_at": start + pd.to_timedelta(seconds, unit="s"),
        "lon": lon,
        "lat": lat,
    })  # fmt: skip


def make_template(url: str) -> tuple[ScratchDatabase, int, list[str]]:
    """A migrated scratch database with the shipped generation and the class catalogue."""
    from gis.catalogues import load_classes, read_classes
    from gis.database import get_engine

    template = ScratchDatabase(url, "template").__enter__()
    try:
        generation_id = load_generation(template, GPKG)
        load_classes(get_engine(template.url))
        template.release()
    except BaseException:
        template.drop()
        raise
    return template, generation_id, sorted(c["code"] for c in read_classes())


def read_assignments(db: ScratchDatabase) -> pd.DataFrame:
    """Status and grid/community/street codes of every stored incident, by source key."""
    buffer = io.BytesIO()
    with psycopg.connect(db.conninfo) as conn, conn.cursor().copy(READ_SQL) as copy:
        for block in copy:
            buffer.write(block)
    buffer.seek(0)
    names = ["source_key", *ASSIGNMENT]
    frame = pd.read_csv(
        buffer,
        sep="\t",
        header=None,
        names=names,
        dtype=str,
        keep_default_na=False,
        na_values={c: ["\\N"] for c in names},
    )
    return frame.set_index("source_key").sort_index()


def disagreements(a: pd.DataFrame, b: pd.DataFrame) -> int:
    """Rows stored in only one of ``a``/``b``, plus rows assigned differently."""
    both = a.index.intersection(b.index)
    missing = len(a) + len(b) - 2 * len(both)
    left, right = a.loc[both, ASSIGNMENT].fillna(""), b.loc[both, ASSIGNMENT].fillna("")
    return missing + int((left != right).any(axis=1).sum())


# ---------------------------------------------------------------------------------------------
# The ways to load
# ---------------------------------------------------------------------------------------------


def load_importer(db: ScratchDatabase, frame: pd.DataFrame, generation_id: int) -> None:
    """gridgov's import path on the frame: validate, assign in memory, COPY, one transaction."""
    from etl.incidents import FrameReader, ImportOptions, import_reader
    from gis.database import get_engine

    with tempfile.TemporaryDirectory() as tmp:
        options = ImportOptions(crs="cgcs2000", rejects=Path(tmp) / "rejects.csv")
        summary = import_reader(get_engine(db.url), FrameReader(frame, "bench"), options)
    if summary.loaded != len(frame):
        raise RuntimeError(f"the importer loaded {summary.loaded} of {len(frame)} rows")


def load_core(
    db: ScratchDatabase, frame: pd.DataFrame, generation_id: int, swap: bool = True
) -> dict[str, float]:
    """GridIndex + ``BulkLoad`` directly, in the importer's chunks, one transaction; the seconds
    spent building the index, assigning, writing the chunks and finishing (index + swap)."""
    from gis.assign import GridIndex
    from gis.boundaries import read_generation
    from gis.bulk_load import BulkLoad
    from gis.database import get_engine
    from gis.incidents import grid_chain_ids

    engine = get_engine(db.url)
    phases = dict.fromkeys(("index", "assign", "write", "finish"), 0.0)
    start = time.perf_counter()
    index = GridIndex.from_geodataframe(read_generation(engine, generation_id)["grid"])
    phases["index"] = time.perf_counter() - start
    with engine.begin() as conn:
        chain_by_code = grid_chain_ids(conn, generation_id)
        chain = np.array([chain_by_code[c] for c in index.codes], dtype=np.int64)
        load = BulkLoad(conn, swap_partitions=swap)
        for first in range(0, len(frame), CHUNK):
            part = frame.iloc[first : first + CHUNK]
            start = time.perf_counter()
            position = index.assign(part["lon"].to_numpy(), part["lat"].to_numpy())
            phases["assign"] += time.perf_counter() - start
            start = time.perf_counter()
            load.write(core_rows(part, first + 1, chain, position, generation_id))
            phases["write"] += time.perf_counter() - start
        start = time.perf_counter()
        load.finish()
        phases["finish"] = time.perf_counter() - start
    return phases


def core_rows(
    frame: pd.DataFrame, first: int, chain: np.ndarray, position: np.ndarray, generation_id: int
) -> pd.DataFrame:
    """``gis.bulk_load.BULK_COLUMNS`` for a chunk; ``chain`` holds (grid, community, street) ids
    per grid of the index, ``position`` the grid of each row (-1 outside)."""
    hit = position >= 0
    ids = chain[np.maximum(position, 0)]
    unit = {name: pd.arrays.IntegerArray(ids[:, k], ~hit)
            for k, name in enumerate(("grid_id", "community_id", "street_id"))}
    return pd.DataFrame({
        "row_number": np.arange(first, first + len(frame)),
        "source": frame["source"].to_numpy(), "source_key": frame["source_key"].to_numpy(),
        "class_code": frame["class_code"].to_numpy(),
        "description": frame["description"].to_numpy(),
        "reported_at": frame["reported_at"].array,
        "lon": frame["lon"].to_numpy(), "lat": frame["lat"].to_numpy(),
        "orig_x": frame["lon"].to_numpy(), "orig_y": frame["lat"].to_numpy(),
        "orig_crs": "cgcs2000", "location_status": np.where(hit, "assigned", "outside"),
        "generation_id": generation_id, **unit,
    })  # fmt: skip


def load_insert_update(
    db: ScratchDatabase,
    frame: pd.DataFrame,
    generation_id: int,
    batch: int = 1000,
    form: str = "arrays",
) -> dict[str, float]:
    """Plain INSERTs in batches (trigger disabled), then ANALYZE and one set-based UPDATE.

    ``form``: ``arrays`` sends each batch as column arrays (``INSERT … SELECT … FROM unnest``),
    ``values`` as one ``VALUES`` list of ``batch`` rows (the textbook form, slower)."""
    phases: dict[str, float] = {}
    with psycopg.connect(db.conninfo) as conn:
        conn.execute("ALTER TABLE incident DISABLE TRIGGER incident_assign")
        conn.execute("SET work_mem = '256MB'")
        conn.commit()
        start = time.perf_counter()
        with conn.cursor() as cur:
            for columns in _batches(frame, batch):
                if form == "values":
                    flat = [v for row in zip(*columns, strict=True) for v in (*row, *row[-2:])]
                    cur.execute(_values_sql(len(columns[0]), generation_id), flat)
                else:
                    cur.execute(INSERT_SQL, [generation_id, *columns])
        conn.commit()
        phases["insert"] = time.perf_counter() - start
        start = time.perf_counter()
        conn.execute("ANALYZE incident")
        conn.execute(UPDATE_SQL, {"g": generation_id})
        conn.commit()
        phases["update"] = time.perf_counter() - start
    return phases


def _batches(frame: pd.DataFrame, size: int) -> Iterator[list[list]]:
    """``INSERT_SQL``'s column arrays, ``size`` rows at a time."""
    columns = [frame["source"].tolist(), frame["source_key"].tolist(),
               frame["class_code"].tolist(), frame["description"].tolist(),
               list(frame["reported_at"].dt.to_pydatetime()), frame["lon"].tolist(),
               frame["lat"].tolist()]  # fmt: skip
    for start in range(0, len(frame), size):
        yield [column[start : start + size] for column in columns]


@lru_cache(maxsize=4)
def _values_sql(rows: int, generation_id: int) -> str:
    """A ``VALUES`` INSERT of ``rows`` rows of 9 parameters (``_batches`` order + lon, lat)."""
    value = sql.SQL(
        "(%s, %s, %s, %s, %s, ST_SetSRID(ST_MakePoint(%s, %s), 4490), %s, %s, 'cgcs2000', "
        "'outside', {})"
    ).format(sql.Literal(generation_id))
    head = sql.SQL(
        "INSERT INTO incident (source, source_key, class_code, description, reported_at, geom, "
        "orig_x, orig_y, orig_crs, location_status, generation_id) VALUES "
    )
    return (head + sql.SQL(", ").join([value] * rows)).as_string(None)


# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------

Loader = Callable[[ScratchDatabase, pd.DataFrame, int], "dict[str, float] | None"]


@dataclass
class Result:
    """One way of loading: wall time, its phases, and the assignments it stored."""

    way: str
    rows: int
    seconds: float
    phases: dict[str, float]
    stored: pd.DataFrame

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else float("inf")


def run_way(
    way: str, load: Loader, url: str, template: str, frame: pd.DataFrame, generation_id: int
) -> Result:
    """``load`` the frame into a fresh copy of the template, timed; read back what it stored."""
    with ScratchDatabase(url, way.split("+")[0].split()[0], template=template) as db:
        start = time.perf_counter()
        phases = load(db, frame, generation_id) or {}
        seconds = time.perf_counter() - start
        stored = read_assignments(db)
    return Result(way, len(frame), seconds, phases, stored)


def print_table(results: list[Result], baseline: Result) -> None:
    """Rows per second, the ratio to the baseline and disagreements with the importer."""
    print("{:28} {:>10} {:>9} {:>11} {:>9} {:>9}  phases".format(
        "way", "rows", "seconds", "rows/s", "× base", "disagree"))  # fmt: skip
    for r in results:
        phases = ", ".join(f"{k} {v:.2f} s" for k, v in r.phases.items())
        print(
            f"{r.way:28} {r.rows:>10,} {r.seconds:>9.2f} {r.rate:>11,.0f} "
            f"{r.rate / baseline.rate:>9.1f} {disagreements(results[0].stored, r.stored):>9,}  "
            f"{phases}"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=float, default=1e6, help="incidents (default 1e6)")
    parser.add_argument("--batch", type=int, default=1000, help="rows per INSERT (baseline)")
    parser.add_argument(
        "--insert",
        choices=("arrays", "values"),
        default="arrays",
        help="baseline INSERT form: column arrays + unnest (default), or a VALUES list",
    )
    parser.add_argument(
        "--core",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time GridIndex + BulkLoad without the importer",
    )
    parser.add_argument(
        "--in-place",
        action="store_true",
        help="also time the core path writing into the existing partitions (no swap)",
    )
    parser.add_argument(
        "--server-url", help="PostgreSQL server for the scratch databases (default: the project's)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; prints the table and, last, one JSON line (also returned)."""
    args = parse_args(argv)
    reason = postgis_unavailable(args.server_url)
    if reason is not None:
        raise SystemExit(f"bench/load.py needs PostGIS: {reason}")
    url, n = server_url(args.server_url), int(args.rows)
    ways: list[tuple[str, Loader]] = [("importer (COPY)", load_importer)]
    if args.core:
        ways.append(("core GridIndex+BulkLoad", load_core))
    if args.in_place:
        ways.append(("core, in place (no swap)",
                     lambda db, f, g: load_core(db, f, g, swap=False)))
    ways.append(
        ("insert+update", lambda db, f, g: load_insert_update(db, f, g, args.batch, args.insert))
    )
    with sigterm_as_exit():
        template, generation_id, classes = make_template(url)
        try:
            frame = simulate(n, classes)
            print(f"{n:,} simulated incidents; template database {template.name}")
            results = [run_way(w, load, url, template.name, frame, generation_id)
                       for w, load in ways]  # fmt: skip
        finally:
            template.drop()
    ours, base = results[0], results[-1]
    print_table(results, base)
    summary = {
        "rows": n,
        "copy_rows_per_s": round(ours.rate),
        "insert_update_rows_per_s": round(base.rate),
        "ratio": round(ours.rate / base.rate, 2),
        "disagreements": sum(disagreements(ours.stored, r.stored) for r in results[1:]),
    }
    if args.core:
        summary["core_rows_per_s"] = round(results[1].rate)
    summary["target_met"] = verdict(summary)
    print(json.dumps(summary))
    return summary


TARGET = Target(1_000_000, "rows", 3.0, "insert+update")


def verdict(summary: dict) -> bool | None:
    """Whether the importer is at least 3× INSERT + set-based UPDATE at 10⁶ rows, with zero
    disagreements."""
    return TARGET.judge(summary["rows"], summary["ratio"], summary["disagreements"])


if __name__ == "__main__":
    main()
