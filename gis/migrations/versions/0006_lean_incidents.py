"""Leaner incident writes: unit references kept by immutable history, not per-row checks.

Every bulk-loaded row fired six foreign-key triggers and fed eight indexes. The unit and
generation ids an incident carries come from the assignment trigger or from the bulk loader's
lookup in the locked active generation, so the checks only cost time; instead, boundary history
is made immutable: units and generations cannot be deleted, and a unit's identity (code, level,
parent, generation, geometry) cannot change. The community and street indexes go too: rollups
run per grid and roll up by code.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

FOREIGN_KEYS = {
    "fk_incident_grid_id_unit": ("grid_id", "unit"),
    "fk_incident_community_id_unit": ("community_id", "unit"),
    "fk_incident_street_id_unit": ("street_id", "unit"),
    "fk_incident_generation_id_generation": ("generation_id", "generation"),
    "fk_incident_batch_id_import_batch": ("batch_id", "import_batch"),
}

IMMUTABLE_HISTORY = """
CREATE TRIGGER unit_no_delete BEFORE DELETE ON unit
    FOR EACH ROW EXECUTE FUNCTION gridgov_refuse_change();
CREATE TRIGGER unit_no_truncate BEFORE TRUNCATE ON unit
    FOR EACH STATEMENT EXECUTE FUNCTION gridgov_refuse_change();
CREATE TRIGGER unit_identity_fixed BEFORE UPDATE OF id, generation_id, level, code, parent_id, geom
    ON unit FOR EACH ROW EXECUTE FUNCTION gridgov_refuse_change();
CREATE TRIGGER generation_no_delete BEFORE DELETE ON generation
    FOR EACH ROW EXECUTE FUNCTION gridgov_refuse_change();
CREATE TRIGGER generation_no_truncate BEFORE TRUNCATE ON generation
    FOR EACH STATEMENT EXECUTE FUNCTION gridgov_refuse_change();
"""


def upgrade() -> None:
    for name in FOREIGN_KEYS:
        op.drop_constraint(name, "incident", type_="foreignkey")
    op.drop_index("ix_incident_community_reported", table_name="incident")
    op.drop_index("ix_incident_street_reported", table_name="incident")
    op.drop_index("ix_incident_batch", table_name="incident")
    op.execute(IMMUTABLE_HISTORY)


def downgrade() -> None:
    for trigger, table in (("unit_no_delete", "unit"), ("unit_no_truncate", "unit"),
                           ("unit_identity_fixed", "unit"),
                           ("generation_no_delete", "generation"),
                           ("generation_no_truncate", "generation")):
        op.execute(f"DROP TRIGGER {trigger} ON {table}")
    op.create_index("ix_incident_batch", "incident", ["batch_id"])
    op.create_index("ix_incident_street_reported", "incident", ["street_id", "reported_at"])
    op.create_index("ix_incident_community_reported", "incident",
                    ["community_id", "reported_at"])
    for name, (column, table) in FOREIGN_KEYS.items():
        op.create_foreign_key(name, "incident", table, [column], ["id"])
