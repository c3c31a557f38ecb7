"""The UID a booking event's synced copy carries when it is not the booking's own (Graph
lists an event by its id): free/busy names the booking behind such an event too.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("booking_events", sa.Column("synced_uid", sa.Text, nullable=True))
    op.create_index(
        "booking_events_synced_uid",
        "booking_events",
        ["tenant_id", "synced_uid"],
        postgresql_where=sa.text("synced_uid IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("booking_events_synced_uid", table_name="booking_events")
    op.drop_column("booking_events", "synced_uid")
