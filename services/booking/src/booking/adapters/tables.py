"""The booking service's own tables (its database alone holds them)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()

# A projection of identity's settings: what availability and booking need, by slug.
owners = sa.Table(
    "owners",
    metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("display_name", sa.Text, nullable=False),
    # identity keeps slugs unique; the projection mirrors them (the newest claim wins lookups)
    sa.Column("slug", sa.Text, nullable=True),
    sa.Column("open_scheduling", sa.Boolean, nullable=False),
    sa.Column("timezone", sa.Text, nullable=False),
    sa.Column("working_hours", postgresql.JSONB, nullable=False),
    sa.Column("booking_rules", postgresql.JSONB, nullable=False),
    sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("settings_updated_at", sa.DateTime(timezone=True), nullable=False),
    # identity's version of the tenant: only newer settings are applied
    sa.Column("settings_version", sa.BigInteger, nullable=False, server_default="0"),
    # bumped when the owner's calendars change: older cached free/busy answers are not served
    sa.Column("calendars_version", sa.BigInteger, nullable=False, server_default="0"),
)

# Bookings and their saga. ``occupied_until`` = end + buffer: the exclusion constraint over
# [start_at, occupied_until) of active rows is the final arbiter of double booking.
bookings = sa.Table(
    "bookings",
    metadata,
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
    # where the saga is: holding -> preparing -> writing -> committing -> done | compensated
    sa.Column("saga_step", sa.Text, nullable=False),
    sa.Column("needs_confirmation", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("hold_expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("quota_reserved", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("event_written", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("calendar_event", postgresql.JSONB, nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("idempotency_key", sa.Text, nullable=True),
    sa.Column("request_hash", sa.Text, nullable=True),
    # a reschedule under way: the new interval, held beside the current one (0005)
    sa.Column("moving_start_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("moving_end_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("moving_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("moving_by", sa.Text, nullable=True),
    sa.Column("moving_key", sa.Text, nullable=True),
    sa.Column("moving_hash", sa.Text, nullable=True),
    # previous times: [{start, end, changed_at, by, key?, hash?}], oldest first
    sa.Column("history", postgresql.JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("manage_token_hash", sa.Text, nullable=True),  # SHA-256 of the manage token
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Index("bookings_tenant_start", "tenant_id", "start_at"),
    sa.Index(
        "bookings_idempotency",
        "tenant_id",
        "idempotency_key",
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    ),
    sa.Index(
        "bookings_unfinished",
        "updated_at",
        postgresql_where=sa.text("saga_step NOT IN ('done', 'compensated')"),
    ),
)
