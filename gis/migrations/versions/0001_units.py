"""Governance units, boundary generations and point lookup.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

LEVELS = "('district', 'street', 'community', 'grid')"
KINDS = "('school', 'hospital', 'market', 'park', 'enterprise', 'scenic_area')"

# The edge rule, stated once: a point belongs to the grid whose polygon covers it (interior or
# boundary); on a shared edge or vertex several grids cover it and the smallest code wins.
GRID_AT = """
CREATE OR REPLACE FUNCTION gridgov_grid_at(pt geometry, gen integer DEFAULT NULL)
RETURNS bigint LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT u.id FROM unit u
    WHERE u.level = 'grid'
      AND u.generation_id = COALESCE(gen, (SELECT g.id FROM generation g WHERE g.active))
      AND ST_Covers(u.geom, pt)
    ORDER BY u.code
    LIMIT 1
$$;
"""

LOOKUP = """
CREATE OR REPLACE FUNCTION gridgov_lookup(x float8, y float8, gen integer DEFAULT NULL)
RETURNS TABLE (level text, id bigint, code text, name text)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH RECURSIVE chain AS (
        SELECT u.id, u.parent_id, u.level, u.code, u.name, 0 AS depth
        FROM unit u
        WHERE u.id = gridgov_grid_at(ST_SetSRID(ST_MakePoint(x, y), 4490), gen)
        UNION ALL
        SELECT p.id, p.parent_id, p.level, p.code, p.name, c.depth + 1
        FROM unit p JOIN chain c ON p.id = c.parent_id
    )
    SELECT level::text, id, code::text, name::text FROM chain ORDER BY depth
$$;
"""


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table(
        "generation",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("source", sa.Text, nullable=False, server_default=""),
        sa.Column("checksum", sa.String(64)),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True)),
        sa.Column("retired_at", sa.DateTime(timezone=True)),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.text("false")),
    )
    op.create_index("ix_generation_checksum", "generation", ["checksum"])
    op.create_index("uq_generation_one_active", "generation", ["active"], unique=True,
                    postgresql_where=sa.text("active"))
    op.create_table(
        "unit",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("generation_id", sa.Integer,
                  sa.ForeignKey("generation.id", ondelete="CASCADE",
                                name="fk_unit_generation_id_generation"),
                  nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("code", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("parent_id", sa.BigInteger,
                  sa.ForeignKey("unit.id", name="fk_unit_parent_id_unit")),
        sa.Column("grid_type", sa.String(16)),
        sa.Column("dedicated_kind", sa.String(16)),
        sa.Column("area_m2", sa.Float, nullable=False),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=4490, spatial_index=False),
                  nullable=False),
        sa.UniqueConstraint("generation_id", "code", name="uq_unit_generation_code"),
        sa.CheckConstraint(f"level IN {LEVELS}", name="ck_unit_level"),
        sa.CheckConstraint(
            "(level = 'grid' AND grid_type IN ('comprehensive', 'dedicated')) "
            "OR (level <> 'grid' AND grid_type IS NULL)",
            name="ck_unit_grid_type",
        ),
        sa.CheckConstraint(
            f"(grid_type = 'dedicated' AND dedicated_kind IN {KINDS}) "
            "OR (grid_type IS DISTINCT FROM 'dedicated' AND dedicated_kind IS NULL)",
            name="ck_unit_dedicated_kind",
        ),
        sa.CheckConstraint("(level = 'district') = (parent_id IS NULL)", name="ck_unit_parent"),
    )
    op.create_index("ix_unit_generation_id", "unit", ["generation_id"])
    op.create_index("ix_unit_parent_id", "unit", ["parent_id"])
    op.create_index("ix_unit_generation_level_code", "unit", ["generation_id", "level", "code"])
    op.create_index("idx_unit_geom", "unit", ["geom"], postgresql_using="gist")
    op.execute(GRID_AT)
    op.execute(LOOKUP)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS gridgov_lookup(float8, float8, integer)")
    op.execute("DROP FUNCTION IF EXISTS gridgov_grid_at(geometry, integer)")
    op.drop_table("unit")
    op.drop_table("generation")
