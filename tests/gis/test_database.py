"""The schema: migrations create exactly what the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from gis.database import include_object, normalise_url
from gis.models import Base


def test_normalise_url_uses_psycopg3():
    assert normalise_url("postgres://u:p@h/d") == "postgresql+psycopg://u:p@h/d"
    assert normalise_url("postgresql://u@h/d") == "postgresql+psycopg://u@h/d"
    assert normalise_url("postgresql+psycopg://u@h/d") == "postgresql+psycopg://u@h/d"


def test_migrations_match_models(fresh_engine):
    with fresh_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": include_object})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_unit_geometry_is_4490_multipolygon_with_gist(fresh_engine):
    with fresh_engine.connect() as conn:
        row = conn.execute(text(
            "SELECT type, srid FROM geometry_columns WHERE f_table_name = 'unit'")).one()
        indexes = conn.execute(text(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'unit'")).scalars().all()
    assert tuple(row) == ("MULTIPOLYGON", 4490)
    assert any("USING gist (geom)" in ix for ix in indexes)
    assert "generation" in inspect(fresh_engine).get_table_names()
