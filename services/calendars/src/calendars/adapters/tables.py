"""The calendars service's own tables (its database alone holds them)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()

connections = sa.Table(
    "connections",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("email", sa.Text, nullable=False, server_default=""),
    sa.Column("server_url", sa.Text, nullable=True),
    sa.Column("username", sa.Text, nullable=True),
    # password (CalDAV) or refresh token (OAuth), Fernet-encrypted
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

calendars = sa.Table(
    "calendars",
    metadata,
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
    sa.Index("calendars_tenant", "tenant_id"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column(
        "calendar_id", sa.Text, sa.ForeignKey("calendars.id", ondelete="CASCADE"), primary_key=True
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
    # floating and all-day times as written (wall clock): such an event follows the owner's
    # zone, and start_at/end_at are computed again when the zone changes; NULL otherwise
    sa.Column("local_start", sa.DateTime(timezone=False), nullable=True),
    sa.Column("local_end", sa.DateTime(timezone=False), nullable=True),
    sa.Index("events_tenant_time", "tenant_id", "start_at", "end_at"),
    sa.Index("events_local", "calendar_id", postgresql_where=sa.text("local_start IS NOT NULL")),
)

# The owner as calendars needs it: a projection of identity's settings (the zone floating
# and all-day events are read in), applied in version order; ``deleted`` is final.
owners = sa.Table(
    "owners",
    metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("timezone", sa.Text, nullable=False, server_default="UTC"),
    sa.Column("settings_version", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("settings_updated_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
)

oauth_states = sa.Table(
    "oauth_states",
    metadata,
    sa.Column("state", sa.Text, primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("code_verifier", postgresql.BYTEA, nullable=False),
    sa.Column("redirect_uri", sa.Text, nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

booking_events = sa.Table(
    "booking_events",
    metadata,
    sa.Column("booking_id", sa.Text, primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("connection_id", sa.Text, nullable=False),
    sa.Column("remote_calendar_id", sa.Text, nullable=False),
    sa.Column("uid", sa.Text, nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
    # the UID its synced copy (events.uid) carries when it is not ``uid``: Graph's event id
    sa.Column("synced_uid", sa.Text, nullable=True),
    sa.Index(
        "booking_events_synced_uid",
        "tenant_id",
        "synced_uid",
        postgresql_where=sa.text("synced_uid IS NOT NULL"),
    ),
)

# A booking event's delete, remembered: a write the saga issued before it (a late write,
# still queued when the saga gave up and compensated) is refused instead of creating an
# event for a failed booking.
booking_tombstones = sa.Table(
    "booking_tombstones",
    metadata,
    sa.Column("booking_id", sa.Text, primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("deleted_issued_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Index("booking_tombstones_tenant", "tenant_id"),
)
