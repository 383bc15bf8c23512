"""Bulk loads: COPY in chunks, key claims, and empty partitions built aside and swapped in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from gis.boundaries import activate, active_generation_id, create_generation
from gis.bulk_load import BULK_COLUMNS, BulkLoad
from gis.catalogues import load_classes
from gis.incidents import grid_chain_ids, report_incident
from tests.factories import small_hierarchy

GRID = "320213001001004"
LON, LAT = 120.31, 31.571  # inside GRID


@pytest.fixture
def store(fresh_engine):
    load_classes(fresh_engine)
    activate(fresh_engine, create_generation(fresh_engine, small_hierarchy(), name="g1"))
    return fresh_engine


def make_rows(conn, n: int, start: datetime, *, first_row: int = 1,
              keys: list[str | None] | None = None) -> pd.DataFrame:
    """``n`` incidents an hour apart from ``start``, all at one point of ``GRID``."""
    generation = active_generation_id(conn)
    grid, community, street = grid_chain_ids(conn, generation)[GRID]
    rows = np.arange(first_row, first_row + n)
    return pd.DataFrame({
        "row_number": rows, "source": "bulk_import",
        "source_key": keys if keys is not None else [f"k{r}" for r in rows],
        "class_code": "E0102", "description": [f"第{r}条\n\"引号\", 逗号" for r in rows],
        "reported_at": [start + timedelta(hours=int(h)) for h in range(n)],
        "lon": LON, "lat": LAT, "orig_x": LON, "orig_y": LAT, "orig_crs": "cgcs2000",
        "location_status": "assigned", "generation_id": generation, "grid_id": grid,
        "community_id": community, "street_id": street,
    })[list(BULK_COLUMNS)]  # fmt: skip


def partition_state(conn, name: str) -> dict:
    """What makes ``name`` a proper partition: bound, indexes (and their parents), constraints,
    triggers, and foreign keys pointing at it."""
    oid = conn.execute(text("SELECT CAST(:n AS regclass)::oid"), {"n": name}).scalar_one()
    return {
        "bound": conn.execute(text("SELECT pg_get_expr(relpartbound, oid) FROM pg_class "
                                   "WHERE oid = :o"), {"o": oid}).scalar_one(),
        "indexes": sorted(conn.execute(text(
            """SELECT c.relname, pg_get_indexdef(i.indexrelid), p.inhparent::regclass::text
               FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
               LEFT JOIN pg_inherits p ON p.inhrelid = i.indexrelid
               WHERE i.indrelid = :o"""), {"o": oid}).all()),
        "constraints": sorted(conn.execute(text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = :o"),
            {"o": oid}).all()),
        "triggers": sorted(conn.execute(text(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = :o AND NOT tgisinternal"),
            {"o": oid}).scalars()),
        "referenced_by": conn.execute(text(
            "SELECT count(*) FROM pg_constraint WHERE confrelid = :o"), {"o": oid}).scalar_one(),
    }


def test_empty_partitions_are_built_aside_and_swapped_in_identical(store):
    with store.connect() as conn:
        before = {y: partition_state(conn, f"incident_y{y}") for y in (2019, 2020)}
    with store.begin() as conn:
        load = BulkLoad(conn, swap_min_rows=100)
        # two chunks, crossing from 2019 into 2020 (local time)
        first = load.write(make_rows(conn, 150, datetime(2019, 12, 25, tzinfo=UTC)))
        second = load.write(make_rows(conn, 150, datetime(2019, 12, 31, 12, tzinfo=UTC),
                                      first_row=151))
        report = load.finish()
    assert first.loaded == second.loaded == 150
    assert report.swapped == ["incident_y2019", "incident_y2020"] and report.poured == []
    with store.connect() as conn:
        after = {y: partition_state(conn, f"incident_y{y}") for y in (2019, 2020)}
        leftovers = conn.execute(text(
            "SELECT count(*) FROM pg_class WHERE relname LIKE 'incident%load%'")).scalar_one()
        stored = conn.execute(text(
            """SELECT i.tableoid::regclass::text AS part, count(*) AS n,
                      count(*) FILTER (WHERE g.code = :grid AND i.description LIKE '第%') AS ok
               FROM incident i JOIN unit g ON g.id = i.grid_id GROUP BY 1 ORDER BY 1"""),
            {"grid": GRID}).all()
        keys = conn.execute(text(
            "SELECT count(*) FROM incident_key k JOIN incident i "
            "ON i.id = k.incident_id AND i.reported_at = k.reported_at")).scalar_one()
    assert after == before
    assert leftovers == 0
    assert [(r.part, r.n, r.ok) for r in stored] == [
        ("incident_y2019", 154, 154), ("incident_y2020", 146, 146)]
    assert keys == 300
    # the swapped-in partition behaves like any other: the trigger assigns single reports
    later = report_incident(store, source="hotline", class_code="E0102",
                            reported_at=datetime(2019, 6, 1, tzinfo=UTC), x=LON, y=LAT)
    assert later.grid_code == GRID


def test_small_loads_are_poured_into_the_store(store):
    with store.connect() as conn:
        oid = conn.execute(text("SELECT 'incident_y2019'::regclass::oid")).scalar_one()
    with store.begin() as conn:
        load = BulkLoad(conn)
        load.write(make_rows(conn, 20, datetime(2019, 3, 1, tzinfo=UTC)))
        report = load.finish()
    assert report.swapped == [] and len(report.poured) == 1
    with store.connect() as conn:
        assert conn.execute(text("SELECT 'incident_y2019'::regclass::oid")).scalar_one() == oid
        assert conn.execute(text("SELECT count(*) FROM incident_y2019")).scalar_one() == 20


def test_a_partition_that_has_rows_is_loaded_in_place(store):
    report_incident(store, source="hotline", class_code="E0102",
                    reported_at=datetime(2019, 2, 1, tzinfo=UTC), x=LON, y=LAT)
    with store.begin() as conn:
        load = BulkLoad(conn, swap_min_rows=1)
        load.write(make_rows(conn, 30, datetime(2019, 3, 1, tzinfo=UTC)))
        report = load.finish()
    assert report.swapped == [] and report.poured == []
    with store.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM incident_y2019")).scalar_one() == 31


@pytest.mark.parametrize("isolation", ["READ COMMITTED", "REPEATABLE READ"])
def test_rows_arriving_during_the_load_make_it_pour_instead(store, isolation):
    """Another session stores a row in the partition while the load runs. The emptiness check
    must not trust the snapshot: under repeatable read that row is invisible to the load's
    queries, yet a swap would drop it."""
    conn = store.connect().execution_options(isolation_level=isolation)
    with conn, conn.begin():
        conn.execute(text("SELECT count(*) FROM incident"))  # the snapshot is taken here
        load = BulkLoad(conn, swap_min_rows=1)
        load.write(make_rows(conn, 30, datetime(2019, 3, 1, tzinfo=UTC)))
        report_incident(store, source="hotline", class_code="E0102",  # another session
                        reported_at=datetime(2019, 2, 1, tzinfo=UTC), x=LON, y=LAT)
        report = load.finish()
    assert report.swapped == [] and len(report.poured) == 1
    with store.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM incident_y2019")).scalar_one() == 31


def test_a_partition_written_meanwhile_is_poured_and_the_others_still_swapped(store):
    with store.begin() as conn:
        load = BulkLoad(conn, swap_min_rows=1)
        load.write(make_rows(conn, 20, datetime(2019, 3, 1, tzinfo=UTC)))
        load.write(make_rows(conn, 20, datetime(2020, 3, 1, tzinfo=UTC), first_row=21))
        report_incident(store, source="hotline", class_code="E0102",  # another session
                        reported_at=datetime(2019, 2, 1, tzinfo=UTC), x=LON, y=LAT)
        report = load.finish()
        parts = dict(conn.execute(text(
            "SELECT tableoid::regclass::text, count(*) FROM incident GROUP BY 1")).all())
    assert report.swapped == ["incident_y2020"] and len(report.poured) == 1
    assert report.poured[0].startswith("incident_y2019_load_")
    assert parts == {"incident_y2019": 21, "incident_y2020": 20}


def test_a_busy_store_makes_the_swap_give_up_and_pour(store):
    with store.connect() as reader:
        reader.execute(text("SELECT count(*) FROM incident"))  # holds a lock until rollback
        with store.begin() as conn:
            load = BulkLoad(conn, swap_min_rows=1, lock_timeout_ms=200)
            load.write(make_rows(conn, 30, datetime(2019, 3, 1, tzinfo=UTC)))
            report = load.finish()
            timeout = conn.execute(text("SHOW lock_timeout")).scalar_one()
        reader.rollback()
    assert report.swapped == [] and len(report.poured) == 1
    assert timeout == "0"  # the swap's timeout does not outlive it
    with store.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM incident_y2019")).scalar_one() == 30


def test_duplicate_keys_within_and_across_chunks_and_loads(store):
    with store.begin() as conn:
        load = BulkLoad(conn, swap_min_rows=1)
        one = load.write(make_rows(conn, 3, datetime(2019, 3, 1, tzinfo=UTC),
                                   keys=["a", "b", "a"]))
        two = load.write(make_rows(conn, 3, datetime(2019, 4, 1, tzinfo=UTC), first_row=4,
                                   keys=["b", None, None]))
        load.finish()
        ids = dict(conn.execute(text("SELECT source_key, id FROM incident "
                                     "WHERE source_key IS NOT NULL")).all())
    assert (one.loaded, two.loaded) == (2, 2)
    assert one.duplicates == [(3, ids["a"])] and two.duplicates == [(4, ids["b"])]
    with store.begin() as conn:
        again = BulkLoad(conn).write(make_rows(conn, 1, datetime(2019, 5, 1, tzinfo=UTC),
                                               keys=["a"]))
    assert again.loaded == 0 and again.duplicates == [(1, ids["a"])]


def test_a_rolled_back_load_leaves_nothing(store):
    with store.connect() as conn:
        before = partition_state(conn, "incident_y2019")
    with store.connect() as conn:
        with conn.begin() as tx:
            load = BulkLoad(conn, swap_min_rows=1)
            load.write(make_rows(conn, 50, datetime(2019, 3, 1, tzinfo=UTC)))
            assert load.finish().swapped == ["incident_y2019"]
            tx.rollback()
        assert partition_state(conn, "incident_y2019") == before
        counts = conn.execute(text(
            "SELECT (SELECT count(*) FROM incident), (SELECT count(*) FROM incident_key)")).one()
    assert tuple(counts) == (0, 0)


def test_bad_rows_are_refused_with_row_and_column(store):
    with store.begin() as conn:
        rows = make_rows(conn, 3, datetime(2019, 3, 1, tzinfo=UTC))
        rows.loc[1, "description"] = "bad\x00byte"
        with pytest.raises(ValueError, match="row 2: description contains a NUL"):
            BulkLoad(conn).write(rows)
        with pytest.raises(ValueError, match="lack column"):
            BulkLoad(conn).write(rows.drop(columns=["lon"]))


def test_timestamps_and_points_are_spelled_exactly():
    """The numpy-built COPY text equals pandas' and shapely's spelling, value for value."""
    import shapely

    from gis.bulk_load import _ewkb_points, _timestamps

    rng = np.random.default_rng(7)
    micros = rng.integers(-(10**15), 4 * 10**15, 5_000)
    micros[:4] = [0, -1, 10**15 + 999_999, 951_782_400 * 10**6]  # epoch, before, .999999, 29 Feb
    expected = pd.to_datetime(micros, unit="us", utc=True).strftime("%Y-%m-%d %H:%M:%S.%f+00")
    assert _timestamps(micros).to_pylist() == list(expected)
    far = np.array([-(10**17)], dtype=np.int64)  # year < 1000: Arrow's own spelling
    assert str(_timestamps(far).type) == "timestamp[us, tz=UTC]"
    lon, lat = rng.uniform(-180, 180, 1_000), rng.uniform(-90, 90, 1_000)
    lon[3], lat[7] = np.nan, np.inf
    points = shapely.set_srid(shapely.points(lon, lat), 4490)
    expected = shapely.to_wkb(points, hex=True, include_srid=True).tolist()
    expected[3] = expected[7] = None
    assert _ewkb_points(lon, lat).to_pylist() == expected


def test_a_key_stored_concurrently_turns_the_row_into_its_duplicate(store):
    """Another session stores key "x" while the load claims it: the load's fast INSERT fails on
    the unique index once that session commits, and the careful claim takes over."""
    import threading

    other = store.connect()
    tx = other.begin()
    first = report_incident(other, source="bulk_import", class_code="E0102", source_key="x",
                            reported_at=datetime(2019, 2, 1, tzinfo=UTC), x=LON, y=LAT)
    timer = threading.Timer(0.5, tx.commit)
    timer.start()
    try:
        with store.begin() as conn:
            result = BulkLoad(conn).write(make_rows(conn, 2, datetime(2019, 3, 1, tzinfo=UTC),
                                                    keys=["x", "y"]))
    finally:
        timer.join()
        other.close()
    assert result.loaded == 1 and result.duplicates == [(1, first.id)]


def test_a_role_that_may_only_insert_loads_in_place(store):
    """An importer role with INSERT but not ownership cannot detach or attach partitions."""
    import os
    import uuid

    role = f"gridgov_test_loader_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with store.connect() as conn:
        if not conn.execute(text("SELECT rolcreaterole OR rolsuper FROM pg_roles "
                                 "WHERE rolname = current_user")).scalar_one():
            pytest.skip("the test role may not create roles")
    with store.begin() as conn:
        conn.execute(text(f"CREATE ROLE {role} NOLOGIN"))
        try:
            conn.execute(text(f"GRANT USAGE ON SCHEMA public TO {role}"))
            conn.execute(text("GRANT SELECT, INSERT ON incident, incident_key, unit, generation "
                              f"TO {role}"))
            conn.execute(text(f"GRANT USAGE ON SEQUENCE incident_id_seq TO {role}"))
            conn.execute(text(f"SET LOCAL ROLE {role}"))
            load = BulkLoad(conn, swap_min_rows=1)
            load.write(make_rows(conn, 30, datetime(2019, 3, 1, tzinfo=UTC)))
            report = load.finish()
        finally:
            conn.execute(text("RESET ROLE"))
        stored = conn.execute(text("SELECT count(*) FROM incident_y2019")).scalar_one()
        conn.execute(text(f"DROP OWNED BY {role}"))
        conn.execute(text(f"DROP ROLE {role}"))
    assert (report.swapped, report.poured, stored) == ([], [], 30)
