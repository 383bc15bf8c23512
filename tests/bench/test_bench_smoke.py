"""The benchmarks run end to end at a tiny size: their JSON line and zero disagreements.

Correctness only, no timing: both scripts create their scratch databases on the test server
(``database_factory``'s) and must leave none behind.
"""

from __future__ import annotations

import json
import os

import psycopg
import pytest

from bench import assign as bench_assign
from bench import load as bench_load

ASSIGN_FIELDS = {"points", "engine_pts_per_s", "sjoin_pts_per_s", "ratio_vs_sjoin", "disagreements"}
POSTGIS_FIELDS = {
    "postgis_points",
    "postgis_update_pts_per_s",
    "postgis_copy_update_pts_per_s",
    "postgis_disagreements",
}
LOAD_FIELDS = {"rows", "copy_rows_per_s", "insert_update_rows_per_s", "ratio", "disagreements"}


def last_json(capsys: pytest.CaptureFixture) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def leftover_databases(server_url: str) -> list[str]:
    with psycopg.connect(bench_assign.libpq(server_url, "postgres")) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s",
            (f"gridgov_bench_{os.getpid()}%",),
        ).fetchall()
    return [name for (name,) in rows]


def test_assign_benchmark_with_postgis_and_dask(capsys, database_factory):
    url = database_factory.server_url
    returned = bench_assign.main(
        [
            "--points",
            "2000",
            "--repeat",
            "1",
            "--postgis",
            "--server-url",
            url,
            "--dask",
            "--dask-workers",
            "1",
        ]
    )
    result = last_json(capsys)
    assert result == returned
    assert set(result) >= ASSIGN_FIELDS | POSTGIS_FIELDS
    assert result["points"] == result["postgis_points"] == 2000
    assert result["disagreements"] == result["postgis_disagreements"] == 0
    assert result["dask_disagreements"] == 0
    assert leftover_databases(url) == []


def test_assign_benchmark_says_when_postgis_is_skipped(capsys):
    result = bench_assign.main(["--points", "2000", "--repeat", "1", "--no-postgis"])
    out = capsys.readouterr().out
    assert "PostGIS: SKIPPED (--no-postgis)" in out
    assert result["postgis"] == "skipped (--no-postgis)"
    assert result["disagreements"] == 0


def test_load_benchmark(capsys, database_factory):
    url = database_factory.server_url
    returned = bench_load.main(
        ["--rows", "2000", "--batch", "300", "--in-place", "--server-url", url])
    out = capsys.readouterr().out
    result = json.loads(out.strip().splitlines()[-1])
    assert result == returned
    assert set(result) >= LOAD_FIELDS
    assert result["rows"] == 2000
    assert result["disagreements"] == 0
    assert "core, in place (no swap)" in out and result["target_met"] is None
    assert "not judged at 2,000 rows" in out
    assert leftover_databases(url) == []


@pytest.mark.parametrize(("module", "size_key", "size", "ratio_key", "ratio", "disagree", "met"), [
    (bench_load, "rows", 1_000_000, "ratio", 3.2, 0, True),
    (bench_load, "rows", 1_000_000, "ratio", 2.9, 0, False),
    (bench_load, "rows", 1_000_000, "ratio", 9.0, 1, False),
    (bench_load, "rows", 5_000, "ratio", 9.0, 0, None),
    (bench_assign, "points", 10_000_000, "ratio_vs_sjoin", 150.0, 0, True),
    (bench_assign, "points", 10_000_000, "ratio_vs_sjoin", 19.9, 0, False),
    (bench_assign, "points", 10_000_000, "ratio_vs_sjoin", 150.0, 2, False),
    (bench_assign, "points", 1_000_000, "ratio_vs_sjoin", 150.0, 0, None),
])
def test_the_benchmarks_say_whether_their_target_is_met(capsys, module, size_key, size,
                                                         ratio_key, ratio, disagree, met):
    assert module.verdict({size_key: size, ratio_key: ratio, "disagreements": disagree}) is met
    out = capsys.readouterr().out
    assert {True: "MET (", False: "NOT MET", None: "not judged"}[met] in out
