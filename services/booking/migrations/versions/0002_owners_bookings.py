"""Owners (projection of identity's settings) and bookings with the exclusion constraint.

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
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.create_table(
        "owners",
        sa.Column("tenant_id", sa.Text, primary_key=True),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("display_name", sa.Text, nullable=False),
        sa.Column("slug", sa.Text, nullable=True, unique=True),
        sa.Column("open_scheduling", sa.Boolean, nullable=False),
        sa.Column("timezone", sa.Text, nullable=False),
        sa.Column("working_hours", postgresql.JSONB, nullable=False),
        sa.Column("booking_rules", postgresql.JSONB, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("settings_updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "bookings",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("slug", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("attendee_email", sa.Text, nullable=False),
        sa.Column("attendee_name", sa.Text, nullable=False, server_default=""),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("occupied_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("saga_step", sa.Text, nullable=False),
        sa.Column("needs_confirmation", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("hold_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("quota_reserved", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("event_written", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("calendar_event", postgresql.JSONB, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("idempotency_key", sa.Text, nullable=True),
        sa.Column("request_hash", sa.Text, nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("end_at > start_at AND occupied_until >= end_at", name="bookings_range"),
    )
    op.create_index("bookings_tenant_start", "bookings", ["tenant_id", "start_at"])
    op.create_index(
        "bookings_idempotency",
        "bookings",
        ["tenant_id", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.create_index(
        "bookings_unfinished",
        "bookings",
        ["updated_at"],
        postgresql_where=sa.text("saga_step NOT IN ('done', 'compensated')"),
    )
    # The final arbiter: no two active bookings of a tenant overlap (buffer included).
    op.execute(
        "ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap EXCLUDE USING gist "
        "(tenant_id WITH =, tstzrange(start_at, occupied_until, '[)') WITH &&) "
        "WHERE (status IN ('held', 'pending', 'confirmed'))"
    )


def downgrade() -> None:
    op.drop_table("bookings")
    op.drop_table("owners")
