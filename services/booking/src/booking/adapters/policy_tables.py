"""The callers and policies tables, on booking's one metadata object."""

from __future__ import annotations

import sqlalchemy as sa

from booking.adapters.tables import metadata

callers = sa.Table(
    "callers",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("display_name", sa.Text, nullable=False, server_default=""),
    sa.Column("trust_level", sa.Text, nullable=False, server_default="standard"),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Index("callers_tenant_email", "tenant_id", sa.func.lower(sa.column("email")), unique=True),
)

policies = sa.Table(
    "policies",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("condition_type", sa.Text, nullable=False),
    sa.Column("condition_value", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Index("policies_tenant", "tenant_id"),
)
