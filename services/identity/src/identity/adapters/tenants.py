"""The tenants table: typed rows in, typed rows out (SQLAlchemy Core statements; the rows
are :mod:`identity.adapters.tables`' SQLModel data models)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from cortex_runtime.database import UnitOfWork, constraint_name
from identity.adapters.tables import NewTenant, TenantRow, tenants

UniqueField = Literal["slug", "email", "external_id"]

_UNIQUE: Mapping[str, UniqueField] = {
    "tenants_slug": "slug",
    "tenants_live_email": "email",
    "tenants_external_id": "external_id",
}


class Taken(Exception):
    """A write ran into a unique value another tenant holds (``field``)."""

    def __init__(self, field: UniqueField) -> None:
        super().__init__(f"another tenant holds that {field}")
        self.field: UniqueField = field


@dataclass(frozen=True, slots=True)
class DeletedTenant:
    id: str
    version: int


@dataclass(frozen=True, slots=True)
class PublicPage:
    email: str
    slug: str
    display_name: str


def _row(row: sa.Row[tuple[object, ...]]) -> TenantRow:
    return TenantRow.model_validate(row._mapping)


def _taken(exc: IntegrityError) -> Exception:
    """:class:`Taken` for a tenant's unique constraint, else ``exc`` itself."""
    field = _UNIQUE.get(constraint_name(exc))
    return Taken(field) if field is not None else exc


# get_settings reads this on every call (read-your-writes, availability): built once, so
# neither the statement nor its cache key is made again per read (``python -m bench S9``)
_LIVE = sa.select(tenants).where(
    tenants.c.id == sa.bindparam("tenant_id"), tenants.c.deleted_at.is_(None)
)
_LIVE_LOCKED = _LIVE.with_for_update()


async def live(uow: UnitOfWork, tenant_id: str, *, lock: bool = False) -> TenantRow | None:
    """The tenant unless deleted; ``lock``: FOR UPDATE until the unit of work ends."""
    query = _LIVE_LOCKED if lock else _LIVE
    row = (await uow.execute(query, {"tenant_id": tenant_id})).first()
    return _row(row) if row is not None else None


async def by_external_id(uow: UnitOfWork, external_id: str) -> TenantRow | None:
    """The tenant with that external (Clerk) id, deleted or not."""
    row = (
        await uow.execute(sa.select(tenants).where(tenants.c.external_id == external_id))
    ).first()
    return _row(row) if row is not None else None


async def live_by_external_id(uow: UnitOfWork, external_id: str) -> TenantRow | None:
    row = (
        await uow.execute(
            sa.select(tenants).where(
                tenants.c.external_id == external_id, tenants.c.deleted_at.is_(None)
            )
        )
    ).first()
    return _row(row) if row is not None else None


async def insert(uow: UnitOfWork, new: NewTenant) -> TenantRow:
    """Insert ``new``; :class:`Taken` if its slug, e-mail or external id is held."""
    statement = (
        sa.insert(tenants)
        .values(
            id=new.id,
            external_id=new.external_id,
            email=new.email,
            display_name=new.display_name,
            user_type=new.user_type,
            slug=new.slug,
            timezone=new.timezone,
            working_hours=new.working_hours,
            booking_rules=new.booking_rules,
        )
        .returning(tenants)
    )
    try:
        return _row((await uow.execute(statement)).one())
    except IntegrityError as exc:
        raise _taken(exc) from exc


async def update(uow: UnitOfWork, tenant_id: str, changes: Mapping[str, object]) -> TenantRow:
    """Write ``changes`` (column values) and stamp ``updated_at``; the version moves on when
    anything changed. :class:`Taken` if a new slug or e-mail is held."""
    statement = (
        sa.update(tenants)
        .where(tenants.c.id == tenant_id)
        .values(
            **changes,
            updated_at=sa.func.now(),
            version=tenants.c.version + (1 if changes else 0),
        )
        .returning(tenants)
    )
    try:
        return _row((await uow.execute(statement)).one())
    except IntegrityError as exc:
        raise _taken(exc) from exc


async def delete_by_external_id(uow: UnitOfWork, external_id: str) -> DeletedTenant | None:
    """Mark the live tenant with that external id deleted (its page closed, its slug freed)."""
    row = (
        await uow.execute(
            sa.update(tenants)
            .where(tenants.c.external_id == external_id, tenants.c.deleted_at.is_(None))
            .values(
                deleted_at=sa.func.now(),
                open_scheduling=False,
                slug=None,
                updated_at=sa.func.now(),
                version=tenants.c.version + 1,
            )
            .returning(tenants.c.id, tenants.c.version)
        )
    ).first()
    return DeletedTenant(id=row.id, version=row.version) if row is not None else None


async def public_page(uow: UnitOfWork, email: str) -> PublicPage | None:
    """The open scheduling page of the live tenant with that (lower-case) e-mail."""
    row = (
        await uow.execute(
            sa.select(tenants.c.email, tenants.c.slug, tenants.c.display_name).where(
                sa.func.lower(tenants.c.email) == email,
                tenants.c.deleted_at.is_(None),
                tenants.c.open_scheduling.is_(True),
                tenants.c.slug.is_not(None),
            )
        )
    ).first()
    if row is None:
        return None
    return PublicPage(email=row.email, slug=row.slug, display_name=row.display_name)
