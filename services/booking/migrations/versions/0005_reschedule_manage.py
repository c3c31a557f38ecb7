"""Reschedule and the attendee's manage link.

A booking being moved holds its new interval in ``moving_start_at``..``moving_until`` (end +
buffer) beside its current one until the swap; the exclusion constraint covers both, so the
new slot is held before the old one is released and a row never overlaps itself.
``moving_by``/``moving_key``/``moving_hash``: who moves it and the request's Idempotency-Key
and body hash. ``history``: its previous times (with the keys that moved it).
``manage_token_hash``: SHA-256 of the attendee's manage-link token (the token is never stored).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

OCCUPIED = (
    "CASE WHEN moving_start_at IS NULL "
    "THEN tstzmultirange(tstzrange(start_at, occupied_until, '[)')) "
    "ELSE tstzmultirange(tstzrange(start_at, occupied_until, '[)'), "
    "tstzrange(moving_start_at, moving_until, '[)')) END"
)
ACTIVE = "status IN ('held', 'pending', 'confirmed')"


def upgrade() -> None:
    for name in ("moving_start_at", "moving_end_at", "moving_until"):
        op.add_column("bookings", sa.Column(name, sa.DateTime(timezone=True), nullable=True))
    for name in ("moving_by", "moving_key", "moving_hash", "manage_token_hash"):
        op.add_column("bookings", sa.Column(name, sa.Text, nullable=True))
    op.add_column(
        "bookings",
        sa.Column(
            "history", postgresql.JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")
        ),
    )
    op.create_check_constraint(
        "bookings_moving_range",
        "bookings",
        "moving_start_at IS NULL OR "
        "(moving_end_at > moving_start_at AND moving_until >= moving_end_at)",
    )
    op.execute("ALTER TABLE bookings DROP CONSTRAINT bookings_no_overlap")
    op.execute(
        "ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap EXCLUDE USING gist "
        f"(tenant_id WITH =, ({OCCUPIED}) WITH &&) WHERE ({ACTIVE})"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE bookings DROP CONSTRAINT bookings_no_overlap")
    op.execute(
        "ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap EXCLUDE USING gist "
        f"(tenant_id WITH =, tstzrange(start_at, occupied_until, '[)') WITH &&) WHERE ({ACTIVE})"
    )
    op.drop_constraint("bookings_moving_range", "bookings", type_="check")
    for name in (
        "history",
        "manage_token_hash",
        "moving_hash",
        "moving_key",
        "moving_by",
        "moving_until",
        "moving_end_at",
        "moving_start_at",
    ):
        op.drop_column("bookings", name)
