"""Cases by report time: the indicator cohorts and their recurrence windows are ranges of
``case_file.reported_at``; without an index of its own each one read the whole table.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_case_file_reported", "case_file", ["reported_at"])


def downgrade() -> None:
    op.drop_index("ix_case_file_reported", table_name="case_file")
