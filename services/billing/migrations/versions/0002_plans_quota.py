"""Tenants' plans and Stripe ids, the booking quota's month counters and reservations.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("tenant_id", sa.Text, primary_key=True),
        sa.Column("tier", sa.Text, nullable=False, server_default="starter"),
        sa.Column("user_type", sa.Text, nullable=False, server_default="individual"),
        sa.Column("email", sa.Text, nullable=False, server_default=""),
        sa.Column("display_name", sa.Text, nullable=False, server_default=""),
        sa.Column("settings_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stripe_customer_id", sa.Text, nullable=True),
        sa.Column("stripe_subscription_id", sa.Text, nullable=True),
        sa.Column("subscription_status", sa.Text, nullable=True),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stripe_event_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("tier IN ('starter', 'pro', 'growth', 'scale')", name="tenants_tier"),
    )
    op.create_index("tenants_stripe_customer", "tenants", ["stripe_customer_id"], unique=True)
    op.create_table(
        "quota_months",
        sa.Column("tenant_id", sa.Text, primary_key=True),
        sa.Column("month", sa.Date, primary_key=True),
        sa.Column("used", sa.Integer, nullable=False, server_default="0"),
        sa.CheckConstraint("used >= 0", name="quota_months_used"),
    )
    op.create_table(
        "quota_reservations",
        sa.Column("booking_id", sa.Text, primary_key=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("month", sa.Date, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column(
            "reserved_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('reserved', 'committed', 'released', 'expired')",
            name="quota_reservations_state",
        ),
    )
    op.create_index(
        "quota_reservations_expiring",
        "quota_reservations",
        ["expires_at"],
        postgresql_where=sa.text("state = 'reserved'"),
    )
    op.create_index(
        "quota_reservations_committed", "quota_reservations", ["tenant_id", "committed_at"]
    )


def downgrade() -> None:
    op.drop_table("quota_reservations")
    op.drop_table("quota_months")
    op.drop_table("tenants")
