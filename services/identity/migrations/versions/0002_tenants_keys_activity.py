"""Tenants with their settings, API keys, the activity feed.

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
        "tenants",
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
    )
    op.create_index("tenants_external_id", "tenants", ["external_id"], unique=True)
    op.create_index("tenants_slug", "tenants", ["slug"], unique=True)
    op.create_index(
        "tenants_live_email",
        "tenants",
        [sa.text("lower(email)")],
        unique=True,
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "api_keys",
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
    )
    op.create_index("api_keys_tenant", "api_keys", ["tenant_id"])
    op.create_table(
        "activity",
        sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.Text, nullable=False, unique=True),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ids", postgresql.JSONB, nullable=False, server_default="{}"),
    )
    op.create_index("activity_tenant_seq", "activity", ["tenant_id", sa.text("seq DESC")])


def downgrade() -> None:
    op.drop_table("activity")
    op.drop_table("api_keys")
    op.drop_table("tenants")
