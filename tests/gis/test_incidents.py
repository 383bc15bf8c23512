"""The incident store: trigger assignment, de-duplication, bulk COPY, reassignment with history."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pandas as pd
import pytest
from sqlalchemy import text

from gis.boundaries import activate, active_generation_id, create_generation
from gis.bulk_load import BULK_COLUMNS, bulk_insert
from gis.catalogues import load_classes
from gis.crs import from_cgcs2000
from gis.incidents import IncidentError, grid_chain_ids, report_incident
from tests.factories import lattice, small_hierarchy

AT = datetime(2019, 5, 6, 9, 30, tzinfo=UTC)


@pytest.fixture
def store(fresh_engine):
    load_classes(fresh_engine)
    activate(fresh_engine, create_generation(fresh_engine, small_hierarchy(), name="g1"))
    return fresh_engine


def _report(engine, x, y, **kwargs):
    values = {"source": "grid_worker", "class_code": "E0102", "reported_at": AT}
    values.update(kwargs)
    return report_incident(engine, x=x, y=y, **values)


def test_report_is_assigned_at_insert_with_its_chain(store):
    x, y = lattice(0, 3)
    stored = _report(store, x + 0.001, y + 0.001, description="垃圾")
    assert stored.location_status == "assigned"
    assert (stored.grid_code, stored.community_code, stored.street_code) == (
        "320213001001001", "320213001001", "320213001")


def test_edge_outside_and_invalid_locations(store):
    x, y = lattice(1, 3)
    assert _report(store, x, y + 0.002).grid_code == "320213001001001"  # smallest code
    outside = _report(store, 0.5, 0.5)
    assert outside.location_status == "outside" and outside.grid_code is None
    invalid = _report(store, math.nan, 31.5)
    assert invalid.location_status == "invalid"
    none = _report(store, None, None)
    assert none.location_status == "invalid"


def test_original_coordinates_and_crs_are_kept(store):
    x, y = lattice(2, 1)
    gx, gy = (float(v) for v in from_cgcs2000(x + 0.002, y + 0.002, "gcj02"))
    stored = _report(store, gx, gy, crs="GCJ-02")
    assert stored.grid_code == "320213002002001"
    with store.connect() as conn:
        row = conn.execute(text(
            "SELECT orig_x, orig_y, orig_crs, ST_X(geom) AS lon FROM incident")).one()
    assert (row.orig_x, row.orig_y, row.orig_crs) == (gx, gy, "gcj02")
    assert abs(row.lon - (x + 0.002)) < 1e-8


def test_bad_reports_name_their_field(store):
    with pytest.raises(IncidentError) as excinfo:
        _report(store, 120.3, 31.57, class_code="E9999")
    assert excinfo.value.field == "class_code"
    with pytest.raises(IncidentError, match="source"):
        _report(store, 120.3, 31.57, source="pigeon")
    with pytest.raises(IncidentError, match="time zone"):
        _report(store, 120.3, 31.57, reported_at=datetime(2019, 1, 1))


def test_repeated_source_key_returns_the_first_incident(store):
    x, y = lattice(0, 0)
    first = _report(store, x + 0.001, y + 0.001, source="api", source_key="phone-1:42")
    again = _report(store, x + 0.001, y + 0.001, source="api", source_key="phone-1:42")
    assert again.duplicate and again.id == first.id
    with store.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM incident")).scalar() == 1


def test_incidents_land_in_yearly_partitions(store):
    x, y = lattice(0, 0)
    _report(store, x + 0.001, y + 0.001, reported_at=AT)
    _report(store, x + 0.001, y + 0.001, reported_at=datetime(2050, 1, 1, tzinfo=UTC))
    with store.connect() as conn:
        rows = dict(conn.execute(text(
            "SELECT tableoid::regclass::text, count(*) FROM incident GROUP BY 1")).all())
    assert rows == {"incident_y2019": 1, "incident_default": 1}


def test_bulk_insert_keeps_preassignment_and_reports_duplicates(store):
    with store.begin() as conn:
        generation = active_generation_id(conn)
        chain = grid_chain_ids(conn, generation)
        grid, community, street = chain["320213002001004"]
        rows = pd.DataFrame([
            (1, "bulk_import", "k1", "E0102", "", AT, 120.31, 31.571, 120.31, 31.571,
             "cgcs2000", "assigned", generation, grid, community, street),
            (2, "bulk_import", "k1", "E0102", "", AT, 120.31, 31.571, 120.31, 31.571,
             "cgcs2000", "assigned", generation, grid, community, street),
            (3, "bulk_import", None, "E0102", "", AT, None, None, None, None, "cgcs2000",
             "invalid", None, None, None, None),
        ], columns=BULK_COLUMNS)
        result = bulk_insert(conn, rows, batch_id=None)
    assert result.loaded == 2
    assert [row for row, _ in result.duplicates] == [2]
    with store.begin() as conn:
        again = bulk_insert(conn, rows.iloc[:1], batch_id=None)
        stored = conn.execute(text(
            "SELECT g.code FROM incident i JOIN unit g ON g.id = i.grid_id")).scalars().all()
    assert again.loaded == 0 and again.duplicates[0][1] == result.duplicates[0][1]
    assert stored == ["320213002001004"]


def test_activation_reassigns_and_keeps_history(store):
    x, y = lattice(0, 3)
    inside = _report(store, x + 0.001, y + 0.001)
    twin = _report(store, x + 0.001, y + 0.001, source="hotline")
    # generation 2: the whole hierarchy shifted one cell east, so both points fall outside
    shifted = small_hierarchy()
    for frame in shifted.values():
        frame.geometry = frame.geometry.translate(xoff=0.005)
    new_id = create_generation(store, shifted, name="g2")
    activate(store, new_id)
    with store.connect() as conn:
        rows = conn.execute(text(
            """SELECT i.id, i.location_status, i.generation_id, g.code
               FROM incident i LEFT JOIN unit g ON g.id = i.grid_id ORDER BY i.id""")).all()
        history = conn.execute(text(
            """SELECT h.incident_id, g.code FROM incident_assignment_history h
               JOIN unit g ON g.id = h.grid_id ORDER BY h.incident_id""")).all()
    assert all(r.generation_id == new_id for r in rows)
    assert {r.location_status for r in rows} == {"outside"}
    assert history == [(inside.id, "320213001001001"), (twin.id, "320213001001001")]
    # moving a point by hand re-runs the trigger
    with store.begin() as conn:
        conn.execute(text(
            "UPDATE incident SET geom = ST_SetSRID(ST_MakePoint(:x, :y), 4490) WHERE id = :id"),
            {"x": x + 0.006, "y": y + 0.001, "id": inside.id})
        code = conn.execute(text(
            "SELECT g.code FROM incident i JOIN unit g ON g.id = i.grid_id WHERE i.id = :id"),
            {"id": inside.id}).scalar()
    assert code == "320213001001001"


def test_reassignment_moves_points_between_grids(store):
    x, y = lattice(1, 3)
    east_half = _report(store, x + 0.004, y + 0.001)
    assert east_half.grid_code == "320213001001002"
    # generation 2 shifts every boundary 0.0045° east: the point is now in the first grid
    shifted = small_hierarchy()
    for frame in shifted.values():
        frame.geometry = frame.geometry.translate(xoff=0.0045)
    activate(store, create_generation(store, shifted, name="g2"))
    with store.connect() as conn:
        code = conn.execute(text(
            "SELECT g.code FROM incident i JOIN unit g ON g.id = i.grid_id")).scalar()
    assert code == "320213001001001"
