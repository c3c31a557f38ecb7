"""The identity service's own tables (its database alone holds them)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("external_id", sa.Text, nullable=True),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("display_name", sa.Text, nullable=False, server_default=""),
    sa.Column("user_type", sa.Text, nullable=False, server_default="individual"),
    sa.Column("slug", sa.Text, nullable=True),
    sa.Column("open_scheduling", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("timezone", sa.Text, nullable=False, server_default="UTC"),
    sa.Column("working_hours", postgresql.JSONB, nullable=False),
    sa.Column("booking_rules", postgresql.JSONB, nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("version", sa.BigInteger, nullable=False, server_default="1"),
    sa.Index("tenants_external_id", "external_id", unique=True),
    sa.Index("tenants_slug", "slug", unique=True),
    sa.Index(
        "tenants_live_email",
        sa.func.lower(sa.column("email")),
        unique=True,
        postgresql_where=sa.text("deleted_at IS NULL"),
    ),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("tenant_id", sa.Text, sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("prefix", sa.Text, nullable=False, unique=True),
    sa.Column("secret_hash", postgresql.BYTEA, nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("api_keys_tenant", "tenant_id"),
)

activity = sa.Table(
    "activity",
    metadata,
    sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("event_id", sa.Text, nullable=False, unique=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ids", postgresql.JSONB, nullable=False, server_default="{}"),
    sa.Index("activity_tenant_time", "tenant_id", sa.text("occurred_at DESC"), sa.text("seq DESC")),
)
