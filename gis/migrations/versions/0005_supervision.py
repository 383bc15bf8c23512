"""Supervision: the spot-check list and registries, plans, append-only draws, visits and results;
credit subjects, records, lists and exchange imports; risk warnings and their notices.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


# Draws, their visits and recorded results are evidence: rows may be added, never changed or
# removed (gridgov_refuse_change comes from migration 0003). A redraw is a new row with a reason.
APPEND_ONLY_TABLES = ("spot_check_draw", "spot_check_visit", "spot_check_result")
APPEND_ONLY = "".join(
    f"""
CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION gridgov_refuse_change();
CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION gridgov_refuse_change();
"""
    for table in APPEND_ONLY_TABLES
)


def upgrade() -> None:
    op.create_table(
        "credit_import",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file", sa.Text(), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("inserted", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("updated", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("unchanged", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("rejected", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_import")),
    )
    op.create_table(
        "credit_subject",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("identifier", sa.String(length=18), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("legal_representative", sa.String(length=100), nullable=True),
        sa.Column("address", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("established_on", sa.Date(), nullable=True),
        sa.Column("level", sa.String(length=1), nullable=True),
        sa.Column("level_reason", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("level_on", sa.Date(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('enterprise', 'individual_business', 'person', 'social_organisation')",
            name=op.f("ck_credit_subject_kind"),
        ),
        sa.CheckConstraint(
            "level IS NULL OR level IN ('A', 'B', 'C', 'D')", name=op.f("ck_credit_subject_level")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_subject")),
        sa.UniqueConstraint("identifier", name=op.f("uq_credit_subject_identifier")),
    )
    op.create_table(
        "inspection_target",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("credit_code", sa.String(length=18), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("object_types", postgresql.ARRAY(sa.String(length=40)), nullable=False),
        sa.Column("legal_representative", sa.String(length=100), nullable=True),
        sa.Column("address", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("geom", Geometry("POINT", srid=4490, spatial_index=False), nullable=True),
        sa.Column("grid_code", sa.String(length=20), nullable=True),
        sa.Column("street_code", sa.String(length=9), nullable=True),
        sa.Column("credit_level", sa.String(length=1), nullable=True),
        sa.Column("complaints", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("demo", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "credit_level IS NULL OR credit_level IN ('A', 'B', 'C', 'D')",
            name=op.f("ck_inspection_target_credit_level"),
        ),
        sa.CheckConstraint(
            "kind IN ('enterprise', 'individual_business', 'social_organisation')",
            name=op.f("ck_inspection_target_kind"),
        ),
        sa.CheckConstraint("complaints >= 0", name=op.f("ck_inspection_target_complaints")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection_target")),
        sa.UniqueConstraint("credit_code", name=op.f("uq_inspection_target_credit_code")),
    )
    op.create_index(
        "idx_inspection_target_geom",
        "inspection_target",
        ["geom"],
        unique=False,
        postgresql_using="gist",
    )
    op.create_index(
        op.f("ix_inspection_target_grid_code"), "inspection_target", ["grid_code"], unique=False
    )
    op.create_index(
        op.f("ix_inspection_target_street_code"), "inspection_target", ["street_code"], unique=False
    )
    op.create_table(
        "spot_check_plan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("title", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("period", sa.String(length=40), nullable=True),
        sa.Column("tiers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("min_inspectors", sa.SmallInteger(), server_default=sa.text("2"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("min_inspectors >= 2", name=op.f("ck_spot_check_plan_min_inspectors")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spot_check_plan")),
        sa.UniqueConstraint("name", name=op.f("uq_spot_check_plan_name")),
    )
    op.create_table(
        "credit_import_reject",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=100), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["credit_import.id"],
            name=op.f("fk_credit_import_reject_import_id_credit_import"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_import_reject")),
    )
    op.create_index(
        op.f("ix_credit_import_reject_import_id"),
        "credit_import_reject",
        ["import_id"],
        unique=False,
    )
    op.create_table(
        "credit_list_entry",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("list_name", sa.String(length=10), nullable=False),
        sa.Column("reason_code", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("entered_on", sa.Date(), nullable=False),
        sa.Column("removed_on", sa.Date(), nullable=True),
        sa.Column("removal_reason", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("origin", sa.String(length=8), nullable=False),
        sa.Column("rule_key", sa.String(length=120), nullable=True),
        sa.Column(
            "decided_by", sa.String(length=200), server_default=sa.text("''"), nullable=False
        ),
        sa.CheckConstraint(
            "(origin = 'rule') = (rule_key IS NOT NULL)", name=op.f("ck_credit_list_entry_rule_key")
        ),
        sa.CheckConstraint(
            "list_name IN ('abnormal', 'blacklist')", name=op.f("ck_credit_list_entry_list_name")
        ),
        sa.CheckConstraint(
            "origin IN ('rule', 'manual')", name=op.f("ck_credit_list_entry_origin")
        ),
        sa.CheckConstraint(
            "reason_code IN ('no_annual_report', 'unreachable', 'abnormal_3y', "
            "'serious_penalty', 'repeat_penalties', 'manual')",
            name=op.f("ck_credit_list_entry_reason_code"),
        ),
        sa.CheckConstraint(
            "removed_on IS NULL OR removed_on >= entered_on",
            name=op.f("ck_credit_list_entry_dates"),
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["credit_subject.id"],
            name=op.f("fk_credit_list_entry_subject_id_credit_subject"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_list_entry")),
        sa.UniqueConstraint(
            "subject_id", "list_name", "rule_key", name="uq_credit_list_entry_subject_list_rule"
        ),
    )
    op.create_index(
        op.f("ix_credit_list_entry_subject_id"), "credit_list_entry", ["subject_id"], unique=False
    )
    op.create_table(
        "inspection_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("object_type", sa.String(length=40), nullable=False),
        sa.Column("line", sa.String(length=40), nullable=True),
        sa.Column("ratio", sa.Float(), nullable=True),
        sa.Column("frequency", sa.String(length=60), server_default=sa.text("''"), nullable=False),
        sa.Column("method", sa.String(length=100), server_default=sa.text("''"), nullable=False),
        sa.Column("qualification", sa.String(length=40), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("demo", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.CheckConstraint(
            "ratio IS NULL OR (ratio > 0 AND ratio <= 1)", name=op.f("ck_inspection_item_ratio")
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["department.id"],
            name=op.f("fk_inspection_item_department_id_department"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection_item")),
        sa.UniqueConstraint("code", name=op.f("uq_inspection_item_code")),
    )
    op.create_index(
        op.f("ix_inspection_item_department_id"), "inspection_item", ["department_id"], unique=False
    )
    op.create_table(
        "inspector",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("id_number", sa.String(length=18), nullable=True),
        sa.Column("phone", sa.String(length=30), nullable=True),
        sa.Column("certificate", sa.String(length=40), nullable=True),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("street_code", sa.String(length=9), nullable=True),
        sa.Column("qualifications", postgresql.ARRAY(sa.String(length=40)), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("demo", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_id"], ["department.id"], name=op.f("fk_inspector_department_id_department")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspector")),
        sa.UniqueConstraint("code", name=op.f("uq_inspector_code")),
    )
    op.create_index(
        op.f("ix_inspector_department_id"), "inspector", ["department_id"], unique=False
    )
    op.create_table(
        "risk_warning",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("method", sa.String(length=12), nullable=False),
        sa.Column("period", sa.String(length=40), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("series_kind", sa.String(length=8), nullable=False),
        sa.Column("series", sa.String(length=40), nullable=False),
        sa.Column("generation_id", sa.Integer(), nullable=False),
        sa.Column("grid_code", sa.String(length=20), nullable=False),
        sa.Column("street_code", sa.String(length=9), nullable=False),
        sa.Column("observed", sa.Float(), nullable=False),
        sa.Column("expected", sa.Float(), nullable=False),
        sa.Column("statistic", sa.Float(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("method IN ('poisson', 'gi_star')", name=op.f("ck_risk_warning_method")),
        sa.CheckConstraint(
            "series_kind IN ('line', 'class')", name=op.f("ck_risk_warning_series_kind")
        ),
        sa.ForeignKeyConstraint(
            ["generation_id"],
            ["generation.id"],
            name=op.f("fk_risk_warning_generation_id_generation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_warning")),
        sa.UniqueConstraint(
            "method",
            "period",
            "series",
            "grid_code",
            name="uq_risk_warning_method_period_series_grid",
        ),
    )
    op.create_index("ix_risk_warning_period_start", "risk_warning", ["period_start"], unique=False)
    op.create_table(
        "spot_check_draw",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.SmallInteger(), nullable=False),
        sa.Column("reason", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("seed", sa.String(length=100), nullable=False),
        sa.Column("algorithm", sa.String(length=40), nullable=False),
        sa.Column("inputs_json", sa.Text(), nullable=False),
        sa.Column("inputs_sha256", sa.String(length=64), nullable=False),
        sa.Column("result_json", sa.Text(), nullable=False),
        sa.Column("result_sha256", sa.String(length=64), nullable=False),
        sa.Column("drawn_by", sa.String(length=100), server_default=sa.text("''"), nullable=False),
        sa.Column(
            "drawn_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.CheckConstraint(
            "seq = 1 OR length(btrim(reason)) > 0", name=op.f("ck_spot_check_draw_redraw_reason")
        ),
        sa.CheckConstraint("seq >= 1", name=op.f("ck_spot_check_draw_seq")),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["spot_check_plan.id"],
            name=op.f("fk_spot_check_draw_plan_id_spot_check_plan"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spot_check_draw")),
        sa.UniqueConstraint("plan_id", "period", "seq", name="uq_spot_check_draw_plan_period_seq"),
    )
    op.create_table(
        "inspector_relation",
        sa.Column("inspector_id", sa.Integer(), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("note", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.ForeignKeyConstraint(
            ["inspector_id"],
            ["inspector.id"],
            name=op.f("fk_inspector_relation_inspector_id_inspector"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["target_id"],
            ["inspection_target.id"],
            name=op.f("fk_inspector_relation_target_id_inspection_target"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("inspector_id", "target_id", name=op.f("pk_inspector_relation")),
    )
    op.create_table(
        "spot_check_plan_item",
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["inspection_item.id"],
            name=op.f("fk_spot_check_plan_item_item_id_inspection_item"),
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["spot_check_plan.id"],
            name=op.f("fk_spot_check_plan_item_plan_id_spot_check_plan"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("plan_id", "item_id", name=op.f("pk_spot_check_plan_item")),
    )
    op.create_table(
        "spot_check_visit",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("draw_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("item_codes", postgresql.ARRAY(sa.String(length=40)), nullable=False),
        sa.Column("inspector_ids", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("note", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.CheckConstraint(
            "status IN ('assigned', 'understaffed')", name=op.f("ck_spot_check_visit_status")
        ),
        sa.ForeignKeyConstraint(
            ["draw_id"],
            ["spot_check_draw.id"],
            name=op.f("fk_spot_check_visit_draw_id_spot_check_draw"),
        ),
        sa.ForeignKeyConstraint(
            ["target_id"],
            ["inspection_target.id"],
            name=op.f("fk_spot_check_visit_target_id_inspection_target"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spot_check_visit")),
        sa.UniqueConstraint("draw_id", "seq", name="uq_spot_check_visit_draw_seq"),
    )
    op.create_index(
        op.f("ix_spot_check_visit_target_id"), "spot_check_visit", ["target_id"], unique=False
    )
    op.create_table(
        "warning_notice",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("warning_id", sa.BigInteger(), nullable=False),
        sa.Column("class_code", sa.String(length=5), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("handler_id", sa.Integer(), nullable=False),
        sa.Column("fallback", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("route_reason", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["class_code"],
            ["incident_class.code"],
            name=op.f("fk_warning_notice_class_code_incident_class"),
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["department.id"],
            name=op.f("fk_warning_notice_department_id_department"),
        ),
        sa.ForeignKeyConstraint(
            ["handler_id"], ["department.id"], name=op.f("fk_warning_notice_handler_id_department")
        ),
        sa.ForeignKeyConstraint(
            ["warning_id"],
            ["risk_warning.id"],
            name=op.f("fk_warning_notice_warning_id_risk_warning"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warning_notice")),
        sa.UniqueConstraint("warning_id", name=op.f("uq_warning_notice_warning_id")),
    )
    op.create_index(
        op.f("ix_warning_notice_department_id"), "warning_notice", ["department_id"], unique=False
    )
    op.create_table(
        "spot_check_result",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("visit_id", sa.BigInteger(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("findings", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("inspected_on", sa.Date(), nullable=False),
        sa.Column("inspector_ids", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("published", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("supersedes_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('compliant', 'rectify', 'penalty_referred', 'not_found')",
            name=op.f("ck_spot_check_result_outcome"),
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["inspection_item.id"],
            name=op.f("fk_spot_check_result_item_id_inspection_item"),
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"],
            ["inspector.id"],
            name=op.f("fk_spot_check_result_recorded_by_id_inspector"),
        ),
        sa.ForeignKeyConstraint(
            ["supersedes_id"],
            ["spot_check_result.id"],
            name=op.f("fk_spot_check_result_supersedes_id_spot_check_result"),
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["spot_check_visit.id"],
            name=op.f("fk_spot_check_result_visit_id_spot_check_visit"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spot_check_result")),
    )
    op.create_index(
        op.f("ix_spot_check_result_visit_id"), "spot_check_result", ["visit_id"], unique=False
    )
    op.create_table(
        "credit_record",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("title", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column(
            "department", sa.String(length=200), server_default=sa.text("''"), nullable=False
        ),
        sa.Column("serious", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("year", sa.SmallInteger(), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("power_item_code", sa.String(length=40), nullable=True),
        sa.Column("power_item_id", sa.Integer(), nullable=True),
        sa.Column("case_number", sa.String(length=24), nullable=True),
        sa.Column("case_id", sa.BigInteger(), nullable=True),
        sa.Column("inspection_result_id", sa.BigInteger(), nullable=True),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind <> 'annual_report' OR year IS NOT NULL", name=op.f("ck_credit_record_report_year")
        ),
        sa.CheckConstraint(
            "kind IN ('penalty', 'inspection', 'annual_report', 'licence', 'address_verified')",
            name=op.f("ck_credit_record_kind"),
        ),
        sa.CheckConstraint(
            "source IN ('local', 'city', 'province')", name=op.f("ck_credit_record_source")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case_file.id"], name=op.f("fk_credit_record_case_id_case_file")
        ),
        sa.ForeignKeyConstraint(
            ["inspection_result_id"],
            ["spot_check_result.id"],
            name=op.f("fk_credit_record_inspection_result_id_spot_check_result"),
        ),
        sa.ForeignKeyConstraint(
            ["power_item_id"],
            ["power_item.id"],
            name=op.f("fk_credit_record_power_item_id_power_item"),
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["credit_subject.id"],
            name=op.f("fk_credit_record_subject_id_credit_subject"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_record")),
        sa.UniqueConstraint("record_id", name=op.f("uq_credit_record_record_id")),
    )
    op.create_index(
        "ix_credit_record_subject_occurred",
        "credit_record",
        ["subject_id", "occurred_on"],
        unique=False,
    )
    op.create_index("ix_credit_record_updated_at", "credit_record", ["updated_at"], unique=False)
    op.execute(APPEND_ONLY)


def downgrade() -> None:
    op.drop_index("ix_credit_record_updated_at", table_name="credit_record")
    op.drop_index("ix_credit_record_subject_occurred", table_name="credit_record")
    op.drop_table("credit_record")
    op.drop_index(op.f("ix_spot_check_result_visit_id"), table_name="spot_check_result")
    op.drop_table("spot_check_result")
    op.drop_index(op.f("ix_warning_notice_department_id"), table_name="warning_notice")
    op.drop_table("warning_notice")
    op.drop_index(op.f("ix_spot_check_visit_target_id"), table_name="spot_check_visit")
    op.drop_table("spot_check_visit")
    op.drop_table("spot_check_plan_item")
    op.drop_table("inspector_relation")
    op.drop_table("spot_check_draw")
    op.drop_index("ix_risk_warning_period_start", table_name="risk_warning")
    op.drop_table("risk_warning")
    op.drop_index(op.f("ix_inspector_department_id"), table_name="inspector")
    op.drop_table("inspector")
    op.drop_index(op.f("ix_inspection_item_department_id"), table_name="inspection_item")
    op.drop_table("inspection_item")
    op.drop_index(op.f("ix_credit_list_entry_subject_id"), table_name="credit_list_entry")
    op.drop_table("credit_list_entry")
    op.drop_index(op.f("ix_credit_import_reject_import_id"), table_name="credit_import_reject")
    op.drop_table("credit_import_reject")
    op.drop_table("spot_check_plan")
    op.drop_index(op.f("ix_inspection_target_street_code"), table_name="inspection_target")
    op.drop_index(op.f("ix_inspection_target_grid_code"), table_name="inspection_target")
    op.drop_index(
        "idx_inspection_target_geom", table_name="inspection_target", postgresql_using="gist"
    )
    op.drop_table("inspection_target")
    op.drop_table("credit_subject")
    op.drop_table("credit_import")
