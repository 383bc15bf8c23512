"""Incidents: classes, the partitioned incident table, import batches, quarantine, history.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Yearly partitions, created ahead; a default partition catches anything outside them, so an
# insert never fails for want of a partition.
PARTITIONS = """
CREATE OR REPLACE FUNCTION gridgov_ensure_incident_partitions(first_year integer, last_year integer)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    FOR y IN first_year..last_year LOOP
        EXECUTE format(
            'CREATE TABLE IF NOT EXISTS incident_y%s PARTITION OF incident '
            'FOR VALUES FROM (%L) TO (%L)',
            y, make_timestamptz(y, 1, 1, 0, 0, 0, 'Asia/Shanghai'),
            make_timestamptz(y + 1, 1, 1, 0, 0, 0, 'Asia/Shanghai'));
    END LOOP;
END $$;
SELECT gridgov_ensure_incident_partitions(2015, 2035);
CREATE TABLE IF NOT EXISTS incident_default PARTITION OF incident DEFAULT;
"""

# Assignment at insert through the GiST index, with the edge rule of gridgov_grid_at. The bulk
# loader assigns in memory with the same rule and says so with SET LOCAL gridgov.preassigned,
# in which case rows that carry their assignment keep it.
ASSIGN_TRIGGER = """
CREATE OR REPLACE FUNCTION gridgov_assign_incident() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    gen integer;
    grid bigint;
BEGIN
    IF TG_OP = 'INSERT' AND NEW.location_status IS NOT NULL
       AND coalesce(current_setting('gridgov.preassigned', true), '') = 'on' THEN
        RETURN NEW;
    END IF;
    NEW.grid_id := NULL; NEW.community_id := NULL; NEW.street_id := NULL;
    IF NEW.geom IS NULL THEN
        NEW.location_status := 'invalid';
        NEW.generation_id := NULL;
        RETURN NEW;
    END IF;
    SELECT g.id INTO gen FROM generation g WHERE g.active;
    NEW.generation_id := gen;
    grid := gridgov_grid_at(NEW.geom, gen);
    IF grid IS NULL THEN
        NEW.location_status := 'outside';
    ELSE
        SELECT u.id, u.parent_id, c.parent_id INTO NEW.grid_id, NEW.community_id, NEW.street_id
        FROM unit u JOIN unit c ON c.id = u.parent_id WHERE u.id = grid;
        NEW.location_status := 'assigned';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER incident_assign BEFORE INSERT OR UPDATE OF geom ON incident
    FOR EACH ROW EXECUTE FUNCTION gridgov_assign_incident();
"""


def upgrade() -> None:
    op.create_table(
        "import_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_file", sa.Text(), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column(
            "options",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rows_read", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("loaded", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("duplicates", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("rejected", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_batch")),
    )
    op.create_table(
        "incident_assignment_history",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("incident_id", sa.BigInteger(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("generation_id", sa.Integer(), nullable=True),
        sa.Column("grid_id", sa.BigInteger(), nullable=True),
        sa.Column("community_id", sa.BigInteger(), nullable=True),
        sa.Column("street_id", sa.BigInteger(), nullable=True),
        sa.Column("location_status", sa.String(length=10), nullable=True),
        sa.Column(
            "replaced_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_assignment_history")),
    )
    op.create_index(
        op.f("ix_incident_assignment_history_incident_id"),
        "incident_assignment_history",
        ["incident_id"],
        unique=False,
    )
    op.create_table(
        "incident_class",
        sa.Column("code", sa.String(length=5), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("major_name", sa.String(length=50), nullable=False),
        sa.Column("minor_name", sa.String(length=100), nullable=False),
        sa.Column("line", sa.String(length=40), nullable=False),
        sa.CheckConstraint("code ~ '^[CE][0-9]{4}$'", name=op.f("ck_incident_class_code")),
        sa.CheckConstraint("kind IN ('component', 'event')", name=op.f("ck_incident_class_kind")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_incident_class")),
    )
    op.create_table(
        "incident_key",
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("source_key", sa.String(length=200), nullable=False),
        sa.Column("incident_id", sa.BigInteger(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "source_key", name=op.f("pk_incident_key")),
    )
    op.create_table(
        "incident_reject",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=100), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["import_batch.id"],
            name=op.f("fk_incident_reject_batch_id_import_batch"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_reject")),
    )
    op.create_index(
        op.f("ix_incident_reject_batch_id"), "incident_reject", ["batch_id"], unique=False
    )
    op.execute("CREATE SEQUENCE incident_id_seq")
    op.create_table(
        "incident",
        sa.Column(
            "id",
            sa.BigInteger(),
            server_default=sa.text("nextval('incident_id_seq')"),
            nullable=False,
        ),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("source_key", sa.String(length=200), nullable=True),
        sa.Column("class_code", sa.String(length=5), nullable=False),
        sa.Column("description", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("geom", Geometry("POINT", srid=4490, spatial_index=False), nullable=True),
        sa.Column("orig_x", sa.Float(), nullable=True),
        sa.Column("orig_y", sa.Float(), nullable=True),
        sa.Column("orig_crs", sa.String(length=32), nullable=True),
        sa.Column("location_status", sa.String(length=10), nullable=True),
        sa.Column("generation_id", sa.Integer(), nullable=True),
        sa.Column("grid_id", sa.BigInteger(), nullable=True),
        sa.Column("community_id", sa.BigInteger(), nullable=True),
        sa.Column("street_id", sa.BigInteger(), nullable=True),
        sa.Column("batch_id", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "location_status IN ('assigned', 'outside', 'invalid')",
            name=op.f("ck_incident_location_status"),
        ),
        sa.CheckConstraint(
            "source IN ('grid_worker', 'hotline', 'video_patrol', 'bulk_import', 'api', 'open311')",
            name=op.f("ck_incident_source"),
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["import_batch.id"], name=op.f("fk_incident_batch_id_import_batch")
        ),
        sa.ForeignKeyConstraint(
            ["class_code"],
            ["incident_class.code"],
            name=op.f("fk_incident_class_code_incident_class"),
        ),
        sa.ForeignKeyConstraint(
            ["community_id"], ["unit.id"], name=op.f("fk_incident_community_id_unit")
        ),
        sa.ForeignKeyConstraint(
            ["generation_id"], ["generation.id"], name=op.f("fk_incident_generation_id_generation")
        ),
        sa.ForeignKeyConstraint(["grid_id"], ["unit.id"], name=op.f("fk_incident_grid_id_unit")),
        sa.ForeignKeyConstraint(
            ["street_id"], ["unit.id"], name=op.f("fk_incident_street_id_unit")
        ),
        sa.PrimaryKeyConstraint("id", "reported_at", name=op.f("pk_incident")),
        postgresql_partition_by="RANGE (reported_at)",
    )
    op.create_index(
        "idx_incident_geom", "incident", ["geom"], unique=False, postgresql_using="gist"
    )
    op.create_index("ix_incident_batch", "incident", ["batch_id"], unique=False)
    op.create_index(
        "ix_incident_class_reported", "incident", ["class_code", "reported_at"], unique=False
    )
    op.create_index(
        "ix_incident_community_reported", "incident", ["community_id", "reported_at"], unique=False
    )
    op.create_index(
        "ix_incident_grid_reported", "incident", ["grid_id", "reported_at"], unique=False
    )
    op.create_index(
        "ix_incident_reported_brin",
        "incident",
        ["reported_at"],
        unique=False,
        postgresql_using="brin",
    )
    op.create_index(
        "ix_incident_street_reported", "incident", ["street_id", "reported_at"], unique=False
    )
    op.execute(PARTITIONS)
    op.execute(ASSIGN_TRIGGER)


def downgrade() -> None:
    op.drop_index("ix_incident_street_reported", table_name="incident")
    op.drop_index("ix_incident_reported_brin", table_name="incident", postgresql_using="brin")
    op.drop_index("ix_incident_grid_reported", table_name="incident")
    op.drop_index("ix_incident_community_reported", table_name="incident")
    op.drop_index("ix_incident_class_reported", table_name="incident")
    op.drop_index("ix_incident_batch", table_name="incident")
    op.drop_index("idx_incident_geom", table_name="incident", postgresql_using="gist")
    op.drop_table("incident")
    op.execute("DROP SEQUENCE incident_id_seq")
    op.execute("DROP FUNCTION gridgov_assign_incident()")
    op.execute("DROP FUNCTION gridgov_ensure_incident_partitions(integer, integer)")
    op.drop_index(op.f("ix_incident_reject_batch_id"), table_name="incident_reject")
    op.drop_table("incident_reject")
    op.drop_table("incident_key")
    op.drop_table("incident_class")
    op.drop_index(
        op.f("ix_incident_assignment_history_incident_id"), table_name="incident_assignment_history"
    )
    op.drop_table("incident_assignment_history")
    op.drop_table("import_batch")
