"""The outbox and inbox tables that every service's own database holds.

They are defined once here and created by each service's own migrations in its own
database (pass ``MESSAGING`` beside the service's metadata to alembic); no table is
shared between databases.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

MESSAGING = sa.MetaData()

outbox = sa.Table(
    "outbox",
    MESSAGING,
    sa.Column("message_id", sa.Text, primary_key=True),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("payload", postgresql.BYTEA, nullable=False),
    sa.Column("headers", postgresql.JSONB, nullable=False, server_default="{}"),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Index(
        "outbox_unpublished",
        "created_at",
        postgresql_where=sa.text("published_at IS NULL"),
    ),
)
inbox = sa.Table(
    "inbox",
    MESSAGING,
    sa.Column("consumer", sa.Text, primary_key=True),
    sa.Column("message_id", sa.Text, primary_key=True),
    sa.Column(
        "handled_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Index("inbox_handled_at", "handled_at"),
)
