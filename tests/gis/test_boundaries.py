"""Generations in PostGIS: load inactive, validate, activate atomically, keep history."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from gis.boundaries import (
    activate,
    active_generation_id,
    create_generation,
    list_generations,
    read_generation,
)
from gis.coverage import BoundaryValidationError
from gis.models import Generation, Unit
from tests.factories import small_hierarchy


def test_new_generation_is_inactive_until_activated(fresh_engine):
    generation_id = create_generation(fresh_engine, small_hierarchy(), name="first")
    with fresh_engine.connect() as conn:
        assert active_generation_id(conn) is None
        counts = dict(conn.execute(select(Unit.level, func.count()).group_by(Unit.level)).all())
    assert counts == {"district": 1, "street": 2, "community": 4, "grid": 16}
    assert activate(fresh_engine, generation_id) is None
    with fresh_engine.connect() as conn:
        assert active_generation_id(conn) == generation_id


def test_units_have_parents_areas_and_4490_geometry(fresh_engine):
    create_generation(fresh_engine, small_hierarchy(), name="g")
    with fresh_engine.connect() as conn:
        rows = conn.execute(text(
            """
            SELECT u.level, u.code, p.code AS parent, u.area_m2, ST_SRID(u.geom) AS srid,
                   ST_CoveredBy(u.geom, p.geom) AS nested
            FROM unit u LEFT JOIN unit p ON p.id = u.parent_id
            """)).mappings().all()
    for row in rows:
        assert row["srid"] == 4490
        if row["level"] == "district":
            assert row["parent"] is None
        else:
            assert row["code"].startswith(row["parent"]) and row["nested"]
    grid_area = next(r["area_m2"] for r in rows if r["level"] == "grid")
    # a 0.005° cell at 31.57°N: about 474 m × 554 m
    assert 0.26e6 < grid_area < 0.27e6


def test_activation_retires_the_previous_generation_which_stays_queryable(fresh_engine):
    first = create_generation(fresh_engine, small_hierarchy(), name="first")
    activate(fresh_engine, first)
    renamed = small_hierarchy()
    renamed["grid"]["name"] = [f"新网格{i}" for i in range(16)]
    second = create_generation(fresh_engine, renamed, name="second")
    assert activate(fresh_engine, second) == first
    infos = {info.id: info for info in list_generations(fresh_engine)}
    assert infos[second].active and not infos[first].active
    assert infos[first].retired_at is not None and infos[second].retired_at is None
    assert read_generation(fresh_engine)["grid"]["name"].iloc[0] == "新网格0"
    assert read_generation(fresh_engine, first)["grid"]["name"].iloc[0] == "网格1"
    # re-activating the old one flips back, again atomically
    assert activate(fresh_engine, first) == second
    with fresh_engine.connect() as conn:
        assert conn.execute(select(func.count()).where(Generation.active)).scalar() == 1


def test_only_one_generation_can_be_active_even_by_hand(fresh_engine):
    first = create_generation(fresh_engine, small_hierarchy(), name="a")
    second = create_generation(fresh_engine, small_hierarchy(), name="b")
    activate(fresh_engine, first)
    with pytest.raises(Exception, match="uq_generation_one_active"), fresh_engine.begin() as conn:
        conn.execute(text("UPDATE generation SET active = true WHERE id = :id"),
                     {"id": second})


def test_invalid_hierarchy_writes_nothing(fresh_engine):
    levels = small_hierarchy()
    levels["grid"].loc[0, "code"] = levels["grid"].loc[1, "code"]
    with pytest.raises(BoundaryValidationError) as excinfo:
        create_generation(fresh_engine, levels, name="bad")
    assert "duplicate_code" in excinfo.value.report.kinds()
    with fresh_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Generation)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(Unit)).scalar() == 0


def test_failure_mid_write_rolls_back_the_whole_generation(fresh_engine, monkeypatch):
    import gis.boundaries as boundaries

    real = boundaries._insert_level
    calls = []

    def failing(conn, generation_id, frame, parent_ids):
        calls.append(frame["level"].iloc[0])
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return real(conn, generation_id, frame, parent_ids)

    monkeypatch.setattr(boundaries, "_insert_level", failing)
    with pytest.raises(RuntimeError):
        create_generation(fresh_engine, small_hierarchy(), name="half")
    with fresh_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Unit)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(Generation)).scalar() == 0


def test_activating_unknown_or_incomplete_generation_fails(fresh_engine):
    with pytest.raises(LookupError):
        activate(fresh_engine, 999)
    with fresh_engine.begin() as conn:
        empty = conn.execute(text(
            "INSERT INTO generation (name) VALUES ('empty') RETURNING id")).scalar_one()
    with pytest.raises(ValueError, match="cannot be activated"):
        activate(fresh_engine, empty)


def test_read_generation_without_active_generation(fresh_engine):
    with pytest.raises(LookupError, match="no generation is active"):
        read_generation(fresh_engine)


def test_boundary_history_is_immutable(fresh_engine):
    create_generation(fresh_engine, small_hierarchy(), name="kept")
    refused = ["DELETE FROM unit", "DELETE FROM generation", "TRUNCATE unit CASCADE",
               "UPDATE unit SET code = code || '9'",
               "UPDATE unit SET geom = ST_Multi(ST_Buffer(geom, 0.001))"]
    for sql in refused:
        with pytest.raises(Exception, match="append-only"), fresh_engine.begin() as conn:
            conn.execute(text(sql))
    with fresh_engine.begin() as conn:  # a misspelt name may be corrected
        conn.execute(text("UPDATE unit SET name = '测试区（更正）' WHERE level = 'district'"))
        assert conn.execute(text("SELECT count(*) FROM unit")).scalar() == 23
