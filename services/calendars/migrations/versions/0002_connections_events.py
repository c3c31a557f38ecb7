"""Connections, calendars, synced events, OAuth states, booking events.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "connections",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("email", sa.Text, nullable=False, server_default=""),
        sa.Column("server_url", sa.Text, nullable=True),
        sa.Column("username", sa.Text, nullable=True),
        sa.Column("secret", postgresql.BYTEA, nullable=False),
        sa.Column("access_token", postgresql.BYTEA, nullable=True),
        sa.Column("access_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.Text, nullable=False, server_default="ok"),
        sa.Column("status_reason", sa.Text, nullable=True),
        sa.Column("last_synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "next_sync_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.UniqueConstraint("tenant_id", "provider", name="connections_tenant_provider"),
    )
    op.create_table(
        "calendars",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column(
            "connection_id",
            sa.Text,
            sa.ForeignKey("connections.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("remote_id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("writable", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("contributes", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("receives_bookings", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("sync_token", sa.Text, nullable=True),
        sa.UniqueConstraint("connection_id", "remote_id", name="calendars_connection_remote"),
    )
    op.create_index("calendars_tenant", "calendars", ["tenant_id"])
    op.create_table(
        "events",
        sa.Column(
            "calendar_id",
            sa.Text,
            sa.ForeignKey("calendars.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("object_key", sa.Text, primary_key=True),
        sa.Column("uid", sa.Text, nullable=False),
        sa.Column("recurrence_id", sa.Text, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.Text, nullable=False, server_default=""),
        sa.Column("status", sa.Text, nullable=False, server_default="confirmed"),
        sa.Column("transparent", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("all_day", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_index("events_tenant_time", "events", ["tenant_id", "start_at", "end_at"])
    op.create_table(
        "oauth_states",
        sa.Column("state", sa.Text, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("code_verifier", postgresql.BYTEA, nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "booking_events",
        sa.Column("booking_id", sa.Text, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("connection_id", sa.Text, nullable=False),
        sa.Column("remote_calendar_id", sa.Text, nullable=False),
        sa.Column("uid", sa.Text, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    for table in ("booking_events", "oauth_states", "events", "calendars", "connections"):
        op.drop_table(table)
