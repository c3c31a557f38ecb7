"""The identity service's own tables (its database alone holds them), as SQLModel models.

Each table is a pair of classes with one list of fields:

* the row, a SQLModel data model (frozen, validated): what the adapters' reads return,
  built from SQLAlchemy Core results with ``Row.model_validate(result._mapping)``, never
  attached to a session; :class:`TenantRow`, :class:`ApiKeyRow` (a key as its owner sees it),
  :class:`ActivityRow` (an item of the feed);
* the table model that inherits it (``table=True``): the table's definition, on identity's
  own :data:`metadata`, and the type ORM statements load; :class:`Tenant`, :class:`ApiKey`,
  :class:`Activity`.

Built from Core results, a page of table-model instances costs twice the data-model rows
(SQLAlchemy instruments each attribute as it is set), and an ORM read on the unit of work's
session costs more CPU than Core on the hot reads and leaves its objects in the session:
``python -m bench S9`` measures them, docs/architecture.md ("SQLModel and Core") has the
figures and says why statements stay Core. Every column names its SQL type, nullability and server
default as the migrations (written by hand, frozen) create it;
``tests/integration/test_identity_schema.py`` checks the two agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

JsonObject = dict[str, object]
"""A JSONB object as the driver returns it."""

TIMESTAMPTZ = sa.DateTime(timezone=True)


class IdentityModel(SQLModel, registry=registry()):
    """The base of identity's models: a registry of their own, so identity's own metadata
    (not SQLModel's process-wide default, which other packages' models would share)."""


metadata: sa.MetaData = IdentityModel.metadata


def _now() -> dict[str, object]:
    return {"server_default": sa.func.now()}


# --- tenants ---------------------------------------------------------------------------------


class NewTenant(IdentityModel):
    """What signing a tenant up decides; the database fills in the rest of a row."""

    model_config = {"frozen": True}  # a row is read, never changed in place

    id: str = Field(sa_type=sa.Text, primary_key=True)
    external_id: str | None = Field(sa_type=sa.Text, nullable=True)
    email: str = Field(sa_type=sa.Text, nullable=False)
    display_name: str = Field(
        sa_type=sa.Text, nullable=False, sa_column_kwargs={"server_default": ""}
    )
    user_type: str = Field(
        sa_type=sa.Text, nullable=False, sa_column_kwargs={"server_default": "individual"}
    )
    slug: str | None = Field(sa_type=sa.Text, nullable=True)
    timezone: str = Field(
        sa_type=sa.Text, nullable=False, sa_column_kwargs={"server_default": "UTC"}
    )
    working_hours: JsonObject = Field(sa_type=postgresql.JSONB, nullable=False)
    booking_rules: JsonObject = Field(sa_type=postgresql.JSONB, nullable=False)


class TenantRow(NewTenant):
    """A tenant with its settings; ``version`` moves on with every change."""

    open_scheduling: bool = Field(
        sa_type=sa.Boolean, nullable=False, sa_column_kwargs={"server_default": sa.false()}
    )
    created_at: datetime = Field(sa_type=TIMESTAMPTZ, nullable=False, sa_column_kwargs=_now())
    updated_at: datetime = Field(sa_type=TIMESTAMPTZ, nullable=False, sa_column_kwargs=_now())
    deleted_at: datetime | None = Field(sa_type=TIMESTAMPTZ, nullable=True)
    version: int = Field(
        sa_type=sa.BigInteger, nullable=False, sa_column_kwargs={"server_default": "1"}
    )


class Tenant(TenantRow, table=True):
    __tablename__ = "tenants"
    __table_args__ = (
        sa.Index("tenants_external_id", "external_id", unique=True),
        sa.Index("tenants_slug", "slug", unique=True),
        sa.Index(
            "tenants_live_email",
            sa.func.lower(sa.column("email")),
            unique=True,
            postgresql_where=sa.text("deleted_at IS NULL"),
        ),
    )
    model_config = {"frozen": False}  # SQLAlchemy sets a table model's attributes


# --- api_keys --------------------------------------------------------------------------------


class ApiKeyRow(IdentityModel):
    """A key as its owner sees it (never its secret)."""

    model_config = {"frozen": True}  # a row is read, never changed in place

    id: str = Field(sa_type=sa.Text, primary_key=True)
    name: str = Field(sa_type=sa.Text, nullable=False)
    prefix: str = Field(sa_type=sa.Text, nullable=False, unique=True)
    created_at: datetime = Field(sa_type=TIMESTAMPTZ, nullable=False, sa_column_kwargs=_now())
    last_used_at: datetime | None = Field(sa_type=TIMESTAMPTZ, nullable=True)


class ApiKey(ApiKeyRow, table=True):
    """A key with its tenant, the digest of its secret (never the secret) and revocation."""

    __tablename__ = "api_keys"
    __table_args__ = (sa.Index("api_keys_tenant", "tenant_id"),)
    model_config = {"frozen": False}  # SQLAlchemy sets a table model's attributes

    tenant_id: str = Field(sa_type=sa.Text, foreign_key="tenants.id", nullable=False)
    secret_hash: bytes = Field(sa_type=postgresql.BYTEA, nullable=False)
    revoked_at: datetime | None = Field(sa_type=TIMESTAMPTZ, nullable=True)


# --- activity --------------------------------------------------------------------------------


class ActivityRow(IdentityModel):
    """An item of a tenant's feed, as the feed shows it."""

    model_config = {"frozen": True}  # a row is read, never changed in place

    seq: int = Field(sa_type=sa.BigInteger, primary_key=True, sa_column_args=[sa.Identity()])
    type: str = Field(sa_type=sa.Text, nullable=False)
    summary: str = Field(sa_type=sa.Text, nullable=False)
    occurred_at: datetime = Field(sa_type=TIMESTAMPTZ, nullable=False)
    ids: dict[str, str] = Field(
        sa_type=postgresql.JSONB, nullable=False, sa_column_kwargs={"server_default": "{}"}
    )


class Activity(ActivityRow, table=True):
    """A feed item with its tenant and the event it came from (``event_id``: a re-sent event
    adds nothing)."""

    __tablename__ = "activity"
    __table_args__ = (
        sa.Index(
            "activity_tenant_time", "tenant_id", sa.text("occurred_at DESC"), sa.text("seq DESC")
        ),
    )
    model_config = {"frozen": False}  # SQLAlchemy sets a table model's attributes

    event_id: str = Field(sa_type=sa.Text, nullable=False, unique=True)
    tenant_id: str = Field(sa_type=sa.Text, nullable=False)


# --- the tables, for Core statements -----------------------------------------------------------

tenants = cast(sa.Table, Tenant.__table__)  # type: ignore[attr-defined]
api_keys = cast(sa.Table, ApiKey.__table__)  # type: ignore[attr-defined]
activity = cast(sa.Table, Activity.__table__)  # type: ignore[attr-defined]


def columns_of(table: sa.Table, row: type[IdentityModel]) -> tuple[sa.Column[Any], ...]:
    """The columns of ``table`` that ``row`` holds, in its order: what a read of such rows
    selects (``ApiKeyRow`` from ``api_keys``: never the secret's digest)."""
    return tuple(table.c[name] for name in row.model_fields)
