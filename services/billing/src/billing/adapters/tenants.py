"""The tenants billing knows (``tenants``): plan, Stripe ids and subscription, the
projection of identity's settings, and the deletion with its Stripe cancellation.

Functions of a unit of work, as cosmicpython's repository: typed rows out (:class:`Tenant`),
one statement per change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from billing.adapters.tables import tenants
from contracts.billing import PlanTier
from contracts.identity import TenantSettings, UserType
from cortex_runtime.database import UnitOfWork


@dataclass(frozen=True)
class Tenant:
    """A tenant's row as the handlers read it."""

    tenant_id: str
    tier: PlanTier
    user_type: UserType
    email: str
    display_name: str
    stripe_customer_id: str | None
    stripe_subscription_id: str | None
    subscription_status: str | None
    period_start: datetime | None
    period_end: datetime | None
    stripe_event_at: datetime | None
    settings_version: int
    deleted_at: datetime | None
    cancel_subscription_id: str | None
    cancel_attempts: int


_COLUMNS = (
    tenants.c.tenant_id,
    tenants.c.tier,
    tenants.c.user_type,
    tenants.c.email,
    tenants.c.display_name,
    tenants.c.stripe_customer_id,
    tenants.c.stripe_subscription_id,
    tenants.c.subscription_status,
    tenants.c.period_start,
    tenants.c.period_end,
    tenants.c.stripe_event_at,
    tenants.c.settings_version,
    tenants.c.deleted_at,
    tenants.c.cancel_subscription_id,
    tenants.c.cancel_attempts,
)


def _tenant(row: sa.Row[Any]) -> Tenant:
    return Tenant(
        tenant_id=row.tenant_id,
        tier=PlanTier(row.tier),
        user_type=UserType(row.user_type),
        email=row.email,
        display_name=row.display_name,
        stripe_customer_id=row.stripe_customer_id,
        stripe_subscription_id=row.stripe_subscription_id,
        subscription_status=row.subscription_status,
        period_start=row.period_start,
        period_end=row.period_end,
        stripe_event_at=row.stripe_event_at,
        settings_version=row.settings_version,
        deleted_at=row.deleted_at,
        cancel_subscription_id=row.cancel_subscription_id,
        cancel_attempts=row.cancel_attempts,
    )


def _one_of(rows: sa.Result[Any]) -> Tenant | None:
    row = rows.first()
    return _tenant(row) if row is not None else None


def _where(tenant_id: str) -> sa.Update:
    return sa.update(tenants).where(tenants.c.tenant_id == tenant_id)


# --- reads ------------------------------------------------------------------------------------


async def get(uow: UnitOfWork, tenant_id: str) -> Tenant | None:
    return _one_of(await uow.execute(sa.select(*_COLUMNS).where(tenants.c.tenant_id == tenant_id)))


async def lock(uow: UnitOfWork, tenant_id: str) -> Tenant:
    """The tenant's row, locked; created on the free tier if billing had not heard of it."""
    await uow.execute(pg_insert(tenants).values(tenant_id=tenant_id).on_conflict_do_nothing())
    query = sa.select(*_COLUMNS).where(tenants.c.tenant_id == tenant_id).with_for_update()
    return _tenant((await uow.execute(query)).one())


async def lock_by_customer(uow: UnitOfWork, customer_id: str) -> Tenant | None:
    """The tenant whose Stripe customer is ``customer_id``, locked."""
    query = (
        sa.select(*_COLUMNS).where(tenants.c.stripe_customer_id == customer_id).with_for_update()
    )
    return _one_of(await uow.execute(query))


# --- plan and Stripe ------------------------------------------------------------------------


async def set_tier(uow: UnitOfWork, tenant_id: str, tier: PlanTier) -> None:
    await uow.execute(_where(tenant_id).values(tier=tier.value, updated_at=sa.func.now()))


async def set_customer(uow: UnitOfWork, tenant_id: str, customer_id: str) -> None:
    await uow.execute(
        _where(tenant_id).values(stripe_customer_id=customer_id, updated_at=sa.func.now())
    )


@dataclass(frozen=True)
class SubscriptionUpdate:
    """What a Stripe event changes on a tenant's row; a None leaves its column as it is."""

    event_at: datetime
    customer_id: str | None = None
    subscription_id: str | None = None
    subscription_status: str | None = None
    # the subscription is over: its id and period are cleared (``subscription_id`` unused)
    ends_subscription: bool = False
    period: tuple[datetime, datetime] | None = None
    # a deleted tenant's ``subscription_id``, to cancel at Stripe from now on
    cancel_now: bool = False


async def record_stripe_event(uow: UnitOfWork, tenant_id: str, update: SubscriptionUpdate) -> None:
    values: dict[str, Any] = {"stripe_event_at": update.event_at, "updated_at": sa.func.now()}
    if update.customer_id:
        values["stripe_customer_id"] = update.customer_id
    if update.ends_subscription:
        values.update(stripe_subscription_id=None, period_start=None, period_end=None)
    elif update.subscription_id:
        values["stripe_subscription_id"] = update.subscription_id
    if update.subscription_status:
        values["subscription_status"] = update.subscription_status
    if update.period is not None:
        values.update(period_start=update.period[0], period_end=update.period[1])
    if update.cancel_now:
        if not update.subscription_id:
            raise ValueError("cancel_now needs the subscription to cancel")
        values.update(
            cancel_subscription_id=update.subscription_id,
            cancel_next_at=sa.func.now(),
            cancel_attempts=0,
        )
    await uow.execute(_where(tenant_id).values(**values))


# --- identity's settings and the tenant's deletion ------------------------------------------


async def project_settings(uow: UnitOfWork, settings: TenantSettings) -> None:
    """Keep the identity settings billing needs. Events arrive out of order: only a newer
    version is applied (by ``updated_at`` while neither side has a version), and nothing
    is applied to a deleted tenant."""
    values = {
        "user_type": settings.user_type.value,
        "email": settings.email,
        "display_name": settings.display_name,
        "settings_updated_at": settings.updated_at,
        "settings_version": settings.version,
    }
    statement = pg_insert(tenants).values(tenant_id=settings.tenant_id, **values)
    excluded = statement.excluded
    unversioned = sa.and_(tenants.c.settings_version == 0, excluded.settings_version == 0)
    await uow.execute(
        statement.on_conflict_do_update(
            index_elements=[tenants.c.tenant_id],
            set_={**values, "updated_at": sa.func.now()},
            where=sa.and_(
                tenants.c.deleted_at.is_(None),
                sa.or_(
                    tenants.c.settings_version < excluded.settings_version,
                    sa.and_(
                        unversioned,
                        sa.or_(
                            tenants.c.settings_updated_at.is_(None),
                            tenants.c.settings_updated_at <= excluded.settings_updated_at,
                        ),
                    ),
                ),
            ),
        )
    )


async def mark_deleted(
    uow: UnitOfWork, tenant_id: str, settings_version: int, cancel_subscription_id: str | None
) -> None:
    """Deleted now: e-mail and name erased; ``cancel_subscription_id`` (if any) is due for
    cancellation at once."""
    changes: dict[str, Any] = {
        "deleted_at": sa.func.now(),
        "email": "",
        "display_name": "",
        "settings_version": settings_version,
        "updated_at": sa.func.now(),
    }
    if cancel_subscription_id:
        changes.update(cancel_subscription_id=cancel_subscription_id, cancel_next_at=sa.func.now())
    await uow.execute(_where(tenant_id).values(**changes))


async def claim_due_cancellation(uow: UnitOfWork) -> Tenant | None:
    """The tenant whose subscription cancellation is due first, locked; one another replica
    holds is skipped (SKIP LOCKED), so replicas share them."""
    query = (
        sa.select(*_COLUMNS)
        .where(
            tenants.c.cancel_subscription_id.is_not(None),
            tenants.c.cancel_next_at <= sa.func.now(),
        )
        .order_by(tenants.c.cancel_next_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    return _one_of(await uow.execute(query))


async def postpone_cancellation(
    uow: UnitOfWork, tenant_id: str, attempts: int, delay: timedelta, error: str
) -> None:
    await uow.execute(
        _where(tenant_id).values(
            cancel_attempts=attempts,
            cancel_next_at=sa.func.now() + delay,
            cancel_error=error[:500],
        )
    )


async def cancellation_done(uow: UnitOfWork, tenant_id: str, *, was_current: bool) -> None:
    """Stripe cancelled the subscription; ``was_current``: it was the tenant's subscription,
    whose id and period are cleared."""
    ended: dict[str, Any] = {
        "cancel_subscription_id": None,
        "cancel_next_at": None,
        "cancel_error": None,
        "subscription_status": "canceled",
        "updated_at": sa.func.now(),
    }
    if was_current:
        ended.update(stripe_subscription_id=None, period_start=None, period_end=None)
    await uow.execute(_where(tenant_id).values(**ended))
