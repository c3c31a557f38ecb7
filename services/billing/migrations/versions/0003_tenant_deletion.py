"""A tenant's deletion (identity's tenant_deleted): when it happened, the subscription
still to cancel at Stripe, and the settings version the projection holds.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tenants", sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "tenants",
        sa.Column("settings_version", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.add_column("tenants", sa.Column("cancel_subscription_id", sa.Text, nullable=True))
    op.add_column(
        "tenants", sa.Column("cancel_attempts", sa.Integer, nullable=False, server_default="0")
    )
    op.add_column("tenants", sa.Column("cancel_next_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("tenants", sa.Column("cancel_error", sa.Text, nullable=True))
    op.create_index(
        "tenants_cancellations_due",
        "tenants",
        ["cancel_next_at"],
        postgresql_where=sa.text("cancel_subscription_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("tenants_cancellations_due", table_name="tenants")
    for column in (
        "cancel_error",
        "cancel_next_at",
        "cancel_attempts",
        "cancel_subscription_id",
        "settings_version",
        "deleted_at",
    ):
        op.drop_column("tenants", column)
