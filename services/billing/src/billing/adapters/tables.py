"""The billing service's own tables (its database alone holds them)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

RESERVATION_STATES = ("reserved", "committed", "released", "expired")

# A tenant as billing knows it: its plan, its Stripe ids, and the projection of the
# identity settings billing needs (user type; e-mail and name for the Stripe customer).
tenants = sa.Table(
    "tenants",
    metadata,
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
    # identity's settings version the projection holds (events arrive out of order)
    sa.Column("settings_version", sa.BigInteger, nullable=False, server_default="0"),
    # the tenant was deleted (identity's tenant_deleted): nothing new is billed or counted
    sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
    # a deleted tenant's subscription still to cancel at Stripe (retried until it is)
    sa.Column("cancel_subscription_id", sa.Text, nullable=True),
    sa.Column("cancel_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("cancel_next_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("cancel_error", sa.Text, nullable=True),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.CheckConstraint("tier IN ('starter', 'pro', 'growth', 'scale')", name="tenants_tier"),
    sa.Index("tenants_stripe_customer", "stripe_customer_id", unique=True),
    sa.Index(
        "tenants_cancellations_due",
        "cancel_next_at",
        postgresql_where=sa.text("cancel_subscription_id IS NOT NULL"),
    ),
)

# One row per tenant and calendar month: bookings reserved or committed in it. Every
# reservation's change of state updates it in the same transaction; the conditional
# UPDATE on this row (a row lock) is what keeps concurrent reservations within the limit.
quota_months = sa.Table(
    "quota_months",
    metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("month", sa.Date, primary_key=True),
    sa.Column("used", sa.Integer, nullable=False, server_default="0"),
    sa.CheckConstraint("used >= 0", name="quota_months_used"),
)

quota_reservations = sa.Table(
    "quota_reservations",
    metadata,
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
    sa.Index(
        "quota_reservations_expiring",
        "expires_at",
        postgresql_where=sa.text("state = 'reserved'"),
    ),
    sa.Index("quota_reservations_committed", "tenant_id", "committed_at"),
)
