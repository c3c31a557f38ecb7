"""The owner's zone (a projection of identity's settings), wall-clock times of events that
follow it, and the tombstones of deleted booking events.

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
    op.create_table(
        "owners",
        sa.Column("tenant_id", sa.Text, primary_key=True),
        sa.Column("timezone", sa.Text, nullable=False, server_default="UTC"),
        sa.Column("settings_version", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("settings_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    # floating and all-day events: their wall-clock times, read in the owner's zone
    op.add_column("events", sa.Column("local_start", sa.DateTime(timezone=False), nullable=True))
    op.add_column("events", sa.Column("local_end", sa.DateTime(timezone=False), nullable=True))
    op.create_index(
        "events_local",
        "events",
        ["calendar_id"],
        postgresql_where=sa.text("local_start IS NOT NULL"),
    )
    op.create_table(
        "booking_tombstones",
        sa.Column("booking_id", sa.Text, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("deleted_issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index("booking_tombstones_tenant", "booking_tombstones", ["tenant_id"])


def downgrade() -> None:
    op.drop_table("booking_tombstones")
    op.drop_index("events_local", table_name="events")
    op.drop_column("events", "local_end")
    op.drop_column("events", "local_start")
    op.drop_table("owners")
