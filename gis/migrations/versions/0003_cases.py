"""Organisation, the power list, routing, deadlines, cases and their append-only trail.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The trail is evidence ("实时留痕"): rows may be added, never changed or removed.
APPEND_ONLY = """
CREATE OR REPLACE FUNCTION gridgov_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER case_event_append_only BEFORE UPDATE OR DELETE ON case_event
    FOR EACH ROW EXECUTE FUNCTION gridgov_refuse_change();
CREATE TRIGGER case_event_no_truncate BEFORE TRUNCATE ON case_event
    FOR EACH STATEMENT EXECUTE FUNCTION gridgov_refuse_change();
"""


def upgrade() -> None:
    op.create_table(
        "deadline_rule",
        sa.Column("class_code", sa.String(length=5), nullable=False),
        sa.Column("area_class", sa.String(length=1), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("amount", sa.Double(), nullable=False),
        sa.Column("unit", sa.String(length=12), nullable=False),
        sa.CheckConstraint(
            "unit IN ('work_hours', 'work_days', 'hours', 'days')",
            name=op.f("ck_deadline_rule_unit"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_deadline_rule_amount")),
        sa.PrimaryKeyConstraint("class_code", "area_class", "stage", name=op.f("pk_deadline_rule")),
    )
    op.create_table(
        "department",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("street_code", sa.String(length=20), nullable=True),
        sa.Column("line", sa.String(length=40), nullable=True),
        sa.Column("demo", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.CheckConstraint(
            "kind IN ('bureau', 'professional_team', 'enforcement_team', 'squadron', "
            "'command_centre', 'street_office')",
            name=op.f("ck_department_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["department.id"], name=op.f("fk_department_parent_id_department")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_department")),
        sa.UniqueConstraint("code", name=op.f("uq_department_code")),
    )
    op.create_index(op.f("ix_department_street_code"), "department", ["street_code"], unique=False)
    op.create_table(
        "grid_area_class",
        sa.Column("grid_code", sa.String(length=20), nullable=False),
        sa.Column("area_class", sa.String(length=1), nullable=False),
        sa.CheckConstraint(
            "area_class IN ('A', 'B', 'C')", name=op.f("ck_grid_area_class_area_class")
        ),
        sa.PrimaryKeyConstraint("grid_code", name=op.f("pk_grid_area_class")),
    )
    op.create_table(
        "class_route",
        sa.Column("class_code", sa.String(length=5), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=12), nullable=False),
        sa.CheckConstraint("role IN ('responsible', 'copy')", name=op.f("ck_class_route_role")),
        sa.ForeignKeyConstraint(
            ["class_code"],
            ["incident_class.code"],
            name=op.f("fk_class_route_class_code_incident_class"),
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["department.id"],
            name=op.f("fk_class_route_department_id_department"),
        ),
        sa.PrimaryKeyConstraint("class_code", "department_id", name=op.f("pk_class_route")),
    )
    op.create_index(
        "uq_class_route_one_responsible",
        "class_route",
        ["class_code"],
        unique=True,
        postgresql_where=sa.text("role = 'responsible'"),
    )
    op.create_table(
        "power_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("original_department_id", sa.Integer(), nullable=False),
        sa.Column("executing_department_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("demo", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.CheckConstraint(
            "kind IN ('penalty', 'coercive_measure')", name=op.f("ck_power_item_kind")
        ),
        sa.CheckConstraint(
            "valid_to IS NULL OR valid_to > valid_from", name=op.f("ck_power_item_validity")
        ),
        sa.ForeignKeyConstraint(
            ["executing_department_id"],
            ["department.id"],
            name=op.f("fk_power_item_executing_department_id_department"),
        ),
        sa.ForeignKeyConstraint(
            ["original_department_id"],
            ["department.id"],
            name=op.f("fk_power_item_original_department_id_department"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_power_item")),
        sa.UniqueConstraint("code", name=op.f("uq_power_item_code")),
    )
    op.create_index(
        op.f("ix_power_item_executing_department_id"),
        "power_item",
        ["executing_department_id"],
        unique=False,
    )
    op.create_table(
        "staff",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("post", sa.String(length=30), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("phone", sa.String(length=30), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("demo", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.CheckConstraint(
            "post IN ('grid_leader', 'grid_worker', 'supervisor', 'call_taker', 'acceptor', "
            "'shift_leader', 'dispatcher', 'management_member', 'enforcement_member')",
            name=op.f("ck_staff_post"),
        ),
        sa.ForeignKeyConstraint(
            ["department_id"], ["department.id"], name=op.f("fk_staff_department_id_department")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff")),
        sa.UniqueConstraint("code", name=op.f("uq_staff_code")),
    )
    op.create_index(op.f("ix_staff_department_id"), "staff", ["department_id"], unique=False)
    op.create_table(
        "class_power",
        sa.Column("class_code", sa.String(length=5), nullable=False),
        sa.Column("power_item_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["class_code"],
            ["incident_class.code"],
            name=op.f("fk_class_power_class_code_incident_class"),
        ),
        sa.ForeignKeyConstraint(
            ["power_item_id"],
            ["power_item.id"],
            name=op.f("fk_class_power_power_item_id_power_item"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("class_code", "power_item_id", name=op.f("pk_class_power")),
    )
    op.create_table(
        "staff_grid",
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("grid_code", sa.String(length=20), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.CheckConstraint("role IN ('leader', 'worker')", name=op.f("ck_staff_grid_role")),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff.id"],
            name=op.f("fk_staff_grid_staff_id_staff"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("staff_id", "grid_code", name=op.f("pk_staff_grid")),
    )
    op.create_index("ix_staff_grid_grid_code", "staff_grid", ["grid_code"], unique=False)
    op.create_table(
        "case_file",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("number", sa.String(length=24), nullable=False),
        sa.Column("incident_id", sa.BigInteger(), nullable=False),
        sa.Column("incident_reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("class_code", sa.String(length=5), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("suspended_from", sa.String(length=20), nullable=True),
        sa.Column("area_class", sa.String(length=1), server_default=sa.text("'B'"), nullable=False),
        sa.Column("generation_id", sa.Integer(), nullable=True),
        sa.Column("grid_id", sa.BigInteger(), nullable=True),
        sa.Column("community_id", sa.BigInteger(), nullable=True),
        sa.Column("street_id", sa.BigInteger(), nullable=True),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("handler_id", sa.Integer(), nullable=True),
        sa.Column("duplicate_of_id", sa.BigInteger(), nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("node_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("handle_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rework_count", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("return_count", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "extension_count", sa.SmallInteger(), server_default=sa.text("0"), nullable=False
        ),
        sa.Column(
            "extension_pending", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.Column("supervised", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("evaluation_score", sa.Float(), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["class_code"],
            ["incident_class.code"],
            name=op.f("fk_case_file_class_code_incident_class"),
        ),
        sa.ForeignKeyConstraint(
            ["community_id"], ["unit.id"], name=op.f("fk_case_file_community_id_unit")
        ),
        sa.ForeignKeyConstraint(
            ["department_id"], ["department.id"], name=op.f("fk_case_file_department_id_department")
        ),
        sa.ForeignKeyConstraint(
            ["duplicate_of_id"],
            ["case_file.id"],
            name=op.f("fk_case_file_duplicate_of_id_case_file"),
        ),
        sa.ForeignKeyConstraint(
            ["generation_id"], ["generation.id"], name=op.f("fk_case_file_generation_id_generation")
        ),
        sa.ForeignKeyConstraint(["grid_id"], ["unit.id"], name=op.f("fk_case_file_grid_id_unit")),
        sa.ForeignKeyConstraint(
            ["handler_id"], ["department.id"], name=op.f("fk_case_file_handler_id_department")
        ),
        sa.ForeignKeyConstraint(
            ["incident_id", "incident_reported_at"],
            ["incident.id", "incident.reported_at"],
            name="fk_case_file_incident",
        ),
        sa.ForeignKeyConstraint(
            ["street_id"], ["unit.id"], name=op.f("fk_case_file_street_id_unit")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_file")),
        sa.UniqueConstraint("incident_id", "incident_reported_at", name="uq_case_file_incident"),
        sa.UniqueConstraint("number", name=op.f("uq_case_file_number")),
    )
    op.create_index(op.f("ix_case_file_class_code"), "case_file", ["class_code"], unique=False)
    op.create_index(
        "ix_case_file_community_reported",
        "case_file",
        ["community_id", "reported_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_case_file_department_id"), "case_file", ["department_id"], unique=False
    )
    op.create_index("ix_case_file_due", "case_file", ["due_at"], unique=False)
    op.create_index(
        "ix_case_file_grid_reported", "case_file", ["grid_id", "reported_at"], unique=False
    )
    op.create_index(op.f("ix_case_file_handler_id"), "case_file", ["handler_id"], unique=False)
    op.create_index(
        "ix_case_file_open_node_due",
        "case_file",
        ["node_due_at"],
        unique=False,
        postgresql_where=sa.text("closed_at IS NULL"),
    )
    op.create_index(op.f("ix_case_file_state"), "case_file", ["state"], unique=False)
    op.create_index(
        "ix_case_file_street_reported", "case_file", ["street_id", "reported_at"], unique=False
    )
    op.create_table(
        "case_copy",
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case_file.id"], name=op.f("fk_case_copy_case_id_case_file")
        ),
        sa.ForeignKeyConstraint(
            ["department_id"], ["department.id"], name=op.f("fk_case_copy_department_id_department")
        ),
        sa.PrimaryKeyConstraint("case_id", "department_id", name=op.f("pk_case_copy")),
    )
    op.create_table(
        "case_event",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=30), nullable=False),
        sa.Column("from_state", sa.String(length=20), nullable=True),
        sa.Column("to_state", sa.String(length=20), nullable=False),
        sa.Column("actor_staff_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(length=100), nullable=False),
        sa.Column("actor_role", sa.String(length=30), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("geom", Geometry("POINT", srid=4490, spatial_index=False), nullable=True),
        sa.Column("note", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column(
            "photos",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("node_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("overdue", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_staff_id"], ["staff.id"], name=op.f("fk_case_event_actor_staff_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case_file.id"], name=op.f("fk_case_event_case_id_case_file")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_event")),
        sa.UniqueConstraint("case_id", "seq", name="uq_case_event_case_seq"),
    )
    op.create_index("ix_case_event_at", "case_event", ["at"], unique=False)
    op.execute(APPEND_ONLY)


def downgrade() -> None:
    op.drop_index("ix_case_event_at", table_name="case_event")
    op.drop_table("case_event")
    op.execute("DROP FUNCTION gridgov_refuse_change()")
    op.drop_table("case_copy")
    op.drop_index("ix_case_file_street_reported", table_name="case_file")
    op.drop_index(op.f("ix_case_file_state"), table_name="case_file")
    op.drop_index(
        "ix_case_file_open_node_due",
        table_name="case_file",
        postgresql_where=sa.text("closed_at IS NULL"),
    )
    op.drop_index(op.f("ix_case_file_handler_id"), table_name="case_file")
    op.drop_index("ix_case_file_grid_reported", table_name="case_file")
    op.drop_index("ix_case_file_due", table_name="case_file")
    op.drop_index(op.f("ix_case_file_department_id"), table_name="case_file")
    op.drop_index("ix_case_file_community_reported", table_name="case_file")
    op.drop_index(op.f("ix_case_file_class_code"), table_name="case_file")
    op.drop_table("case_file")
    op.drop_index("ix_staff_grid_grid_code", table_name="staff_grid")
    op.drop_table("staff_grid")
    op.drop_table("class_power")
    op.drop_index(op.f("ix_staff_department_id"), table_name="staff")
    op.drop_table("staff")
    op.drop_index(op.f("ix_power_item_executing_department_id"), table_name="power_item")
    op.drop_table("power_item")
    op.drop_index(
        "uq_class_route_one_responsible",
        table_name="class_route",
        postgresql_where=sa.text("role = 'responsible'"),
    )
    op.drop_table("class_route")
    op.drop_table("grid_area_class")
    op.drop_index(op.f("ix_department_street_code"), table_name="department")
    op.drop_table("department")
    op.drop_table("deadline_rule")
