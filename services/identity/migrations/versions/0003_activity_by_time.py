"""The activity feed is read newest first by occurred_at.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("activity_tenant_seq", table_name="activity")
    op.create_index(
        "activity_tenant_time",
        "activity",
        ["tenant_id", sa.text("occurred_at DESC"), sa.text("seq DESC")],
    )


def downgrade() -> None:
    op.drop_index("activity_tenant_time", table_name="activity")
    op.create_index("activity_tenant_seq", "activity", ["tenant_id", sa.text("seq DESC")])
