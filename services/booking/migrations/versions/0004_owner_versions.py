"""The owners projection applies identity's versions in order and tracks calendar changes.

``settings_version`` is identity's version of the tenant (a projection applies only newer
ones; forgetting an owner advances it). Slugs are unique in identity, their owner; the
projection only mirrors them, so it no longer carries a unique index that an event arriving
before another tenant's release of the slug could run into (the newest claim wins lookups).
``calendars_version`` is bumped when the owner's calendars change, so availability never
serves a free/busy answer cached before that change.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "owners", sa.Column("settings_version", sa.BigInteger, nullable=False, server_default="0")
    )
    op.add_column(
        "owners", sa.Column("calendars_version", sa.BigInteger, nullable=False, server_default="0")
    )
    op.drop_constraint("owners_slug_key", "owners", type_="unique")
    op.create_index(
        "owners_slug",
        "owners",
        ["slug", sa.text("settings_updated_at DESC")],
        postgresql_where=sa.text("slug IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("owners_slug", table_name="owners")
    op.create_unique_constraint("owners_slug_key", "owners", ["slug"])
    op.drop_column("owners", "calendars_version")
    op.drop_column("owners", "settings_version")
