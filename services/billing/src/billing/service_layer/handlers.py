"""Billing's handlers: one per command or event, each in one unit of work."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from billing.adapters.stripe_api import Session
from billing.adapters.tables import quota_months, quota_reservations, tenants
from billing.domain import stripe_events
from billing.domain.plans import FREE_TIER, Plan, UnknownTier, billing_period, parse_tier
from billing.domain.stripe_events import InvalidPayload, InvalidSignature, PlanMove
from contracts import billing as msg
from contracts.envelope import Message
from contracts.identity import TenantSettings, UserType
from contracts.rpc import ErrorKind
from cortex_runtime.database import UnitOfWork
from cortex_runtime.deadlines import refuse_if_past
from cortex_runtime.errors import ServiceError

log = logging.getLogger(__name__)

UowFactory = Callable[[], UnitOfWork]

STRIPE_CONSUMER = "stripe_webhook"


class CallCounts(Protocol):
    async def calls(self, tenant_id: str, days: list[date]) -> dict[date, int]: ...


class StripePort(Protocol):
    async def create_customer(
        self, tenant_id: str, email: str, name: str, idempotency_key: str
    ) -> str: ...

    async def create_checkout_session(
        self,
        *,
        customer_id: str,
        price_id: str,
        tenant_id: str,
        tier: str,
        success_url: str,
        cancel_url: str,
        idempotency_key: str,
    ) -> Session: ...

    async def create_portal_session(
        self, *, customer_id: str, return_url: str, idempotency_key: str
    ) -> Session: ...

    async def cancel_subscription(self, subscription_id: str, idempotency_key: str) -> None: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Billing:
    """What the handlers need besides a unit of work: the plan table and configuration."""

    plans: Mapping[msg.PlanTier, Plan]
    prices: Mapping[msg.PlanTier, str] = field(default_factory=dict)
    hold: timedelta = timedelta(hours=50)
    webhook_secret: str = ""
    success_url: str = ""
    cancel_url: str = ""
    portal_return_url: str = ""
    clock: Callable[[], datetime] = _utcnow

    def tier_of_price(self) -> dict[str, msg.PlanTier]:
        return {price: tier for tier, price in self.prices.items()}

    def month(self) -> date:
        return self.clock().astimezone(UTC).date().replace(day=1)


# --- errors ---------------------------------------------------------------------------------


def _tenant_required() -> ServiceError:
    return ServiceError(ErrorKind.INVALID, "tenant_required", "The request names no tenant.")


def _limit_reached(limit: int, plan: Plan) -> ServiceError:
    return ServiceError(
        ErrorKind.PAYMENT_REQUIRED,
        "booking_limit_reached",
        f"This month's booking limit is reached: the {plan.tier.value} plan allows {limit} "
        "bookings per month. Upgrade the plan or wait for the next month.",
        {"limit": limit, "tier": plan.tier.value},
    )


QUOTA_RELEASED = ServiceError(
    ErrorKind.CONFLICT,
    "quota_released",
    "The booking's quota reservation was already released.",
)
RESERVATION_NOT_FOUND = ServiceError(
    ErrorKind.NOT_FOUND, "reservation_not_found", "No quota reservation for that booking."
)
BOOKING_ID_TAKEN = ServiceError(
    ErrorKind.CONFLICT, "booking_id_taken", "That booking id belongs to another tenant."
)
TENANT_DELETED = ServiceError(
    ErrorKind.NOT_FOUND, "tenant_deleted", "This account has been deleted."
)


def _refuse_deleted(row: sa.Row[Any] | None) -> None:
    if row is not None and row.deleted_at is not None:
        raise TENANT_DELETED


def _tenant_id(cmd: Message) -> str:
    tenant_id: str | None = cmd.tenant_id
    if not tenant_id:
        raise _tenant_required()
    return tenant_id


# --- tenants ----------------------------------------------------------------------------------


async def _tenant(uow: UnitOfWork, tenant_id: str) -> sa.Row[Any] | None:
    return (await uow.execute(sa.select(tenants).where(tenants.c.tenant_id == tenant_id))).first()


async def _locked_tenant(uow: UnitOfWork, tenant_id: str) -> sa.Row[Any]:
    """The tenant's row, locked; created on the free tier if billing had not heard of it."""
    await uow.execute(pg_insert(tenants).values(tenant_id=tenant_id).on_conflict_do_nothing())
    query = sa.select(tenants).where(tenants.c.tenant_id == tenant_id).with_for_update()
    return (await uow.execute(query)).one()


def _plan_of(cfg: Billing, row: sa.Row[Any] | None) -> tuple[Plan, UserType]:
    if row is None:
        return cfg.plans[FREE_TIER], UserType.INDIVIDUAL
    return cfg.plans[msg.PlanTier(row.tier)], UserType(row.user_type)


async def project_tenant(settings: TenantSettings, uow: UnitOfWork) -> None:
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


# Subscription statuses that still bill (or may): a deleted tenant's is cancelled.
LIVE_SUBSCRIPTION = ("active", "trialing", "past_due", "unpaid", "incomplete", "paused")


async def forget_tenant(
    event: Message, tenant_id: str, settings_version: int, uow: UnitOfWork
) -> None:
    """The tenant was deleted (identity's tenant_deleted). What billing ends:

    * its Stripe subscription, cancelled at once (no proration, no final invoice) by the
      cancellation loop, retried until Stripe confirms;
    * new work: quota reservations, checkout, portal and plan changes are refused;
    * the settings projection: e-mail and name are erased, later settings events ignored.

    What stays: the tenant's row (tier, Stripe ids, deletion time) and its committed
    bookings, the operator's billing records; a saga already past its pivot still commits.
    """
    row = await _locked_tenant(uow, tenant_id)
    if row.deleted_at is not None:
        return
    changes: dict[str, Any] = {
        "deleted_at": sa.func.now(),
        "email": "",
        "display_name": "",
        "settings_version": max(row.settings_version, settings_version),
        "updated_at": sa.func.now(),
    }
    subscription = row.stripe_subscription_id
    if subscription and (row.subscription_status or "active") in LIVE_SUBSCRIPTION:
        changes.update(cancel_subscription_id=subscription, cancel_next_at=sa.func.now())
    await uow.execute(sa.update(tenants).where(tenants.c.tenant_id == tenant_id).values(**changes))
    log.info(
        "tenant deleted",
        extra={"tenant_id": tenant_id, "cancels_subscription": "cancel_subscription_id" in changes},
    )


CANCEL_RETRY_MAX = timedelta(hours=1)


async def cancel_subscriptions(
    uow_factory: UowFactory, cfg: Billing, stripe: StripePort | None, batch: int = 10
) -> int:
    """One pass of the cancellation loop: cancel due subscriptions of deleted tenants at
    Stripe (each claimed with SKIP LOCKED, so replicas share them); a failure is retried
    after a growing delay (up to an hour). Returns how many were tried."""
    if stripe is None:
        return 0
    tried = 0
    for _ in range(batch):
        async with uow_factory() as uow:
            row = (
                await uow.execute(
                    sa.select(tenants)
                    .where(
                        tenants.c.cancel_subscription_id.is_not(None),
                        tenants.c.cancel_next_at <= sa.func.now(),
                    )
                    .order_by(tenants.c.cancel_next_at)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).first()
            if row is None:
                return tried
            tried += 1
            subscription = row.cancel_subscription_id
            try:
                await stripe.cancel_subscription(
                    subscription, f"cortex-cancel-{row.tenant_id}-{subscription}"
                )
            except ServiceError as exc:
                attempts = row.cancel_attempts + 1
                delay = min(timedelta(seconds=2**attempts), CANCEL_RETRY_MAX)
                await uow.execute(
                    sa.update(tenants)
                    .where(tenants.c.tenant_id == row.tenant_id)
                    .values(
                        cancel_attempts=attempts,
                        cancel_next_at=sa.func.now() + delay,
                        cancel_error=exc.reply.message[:500],
                    )
                )
                await uow.commit()
                log.warning(
                    "subscription cancellation will be retried",
                    extra={"tenant_id": row.tenant_id, "attempts": attempts},
                )
                continue
            ended: dict[str, Any] = {
                "cancel_subscription_id": None,
                "cancel_next_at": None,
                "cancel_error": None,
                "subscription_status": "canceled",
                "updated_at": sa.func.now(),
            }
            if row.stripe_subscription_id == subscription:
                ended.update(stripe_subscription_id=None, period_start=None, period_end=None)
            await uow.execute(
                sa.update(tenants).where(tenants.c.tenant_id == row.tenant_id).values(**ended)
            )
            cause = msg.GetPlan(tenant_id=row.tenant_id)
            await _move_plan(uow, cfg, cause, row, FREE_TIER, "stripe", "canceled")
            await uow.commit()
            log.info(
                "deleted tenant's subscription cancelled",
                extra={"tenant_id": row.tenant_id, "subscription_id": subscription},
            )
    return tried


# --- plans ---------------------------------------------------------------------------------


async def _move_plan(
    uow: UnitOfWork,
    cfg: Billing,
    cause: Message,
    row: sa.Row[Any],
    tier: msg.PlanTier,
    source: Literal["stripe", "operator"],
    subscription_status: str | None,
) -> bool:
    """Put the (locked) tenant on ``tier``; emits ``plan_changed`` when the tier changes."""
    previous = msg.PlanTier(row.tier)
    if previous is tier:
        return False
    await uow.execute(
        sa.update(tenants)
        .where(tenants.c.tenant_id == row.tenant_id)
        .values(tier=tier.value, updated_at=sa.func.now())
    )
    limits = cfg.plans[tier].limits(UserType(row.user_type))
    await uow.add_event(
        msg.PLAN_CHANGED.subject,
        msg.PlanChanged(
            **cause.caused(tenant_id=row.tenant_id),
            tier=tier,
            previous_tier=previous,
            source=source,
            calls_daily_limit=limits.calls_daily_limit,
            bookings_limit=limits.bookings_limit,
            calendars_limit=limits.calendars_limit,
            subscription_status=subscription_status,
        ),
    )
    log.info(
        "plan changed",
        extra={"tenant_id": row.tenant_id, "tier": tier.value, "previous": previous.value},
    )
    return True


def _tier_or_invalid(value: str) -> msg.PlanTier:
    try:
        return parse_tier(value)
    except UnknownTier as exc:
        raise ServiceError(ErrorKind.INVALID, "unknown_plan", str(exc)) from exc


async def set_plan(cmd: msg.SetPlan, uow_factory: UowFactory, cfg: Billing) -> msg.PlanSet:
    """The operator's plan change (``cortex plan set``): the same path as Stripe's."""
    tenant_id = _tenant_id(cmd)
    tier = _tier_or_invalid(cmd.tier)
    async with uow_factory() as uow:
        row = await _locked_tenant(uow, tenant_id)
        _refuse_deleted(row)
        changed = await _move_plan(uow, cfg, cmd, row, tier, "operator", row.subscription_status)
        await uow.commit()
    return msg.PlanSet(tier=tier, previous_tier=msg.PlanTier(row.tier), changed=changed)


async def _month_used(uow: UnitOfWork, tenant_id: str, month: date) -> int:
    used = (
        await uow.execute(
            sa.select(quota_months.c.used).where(
                quota_months.c.tenant_id == tenant_id, quota_months.c.month == month
            )
        )
    ).scalar()
    return int(used or 0)


async def get_plan(
    cmd: msg.GetPlan, uow_factory: UowFactory, cfg: Billing, counters: CallCounts
) -> msg.PlanReply:
    tenant_id = _tenant_id(cmd)
    async with uow_factory() as uow:
        row = await _tenant(uow, tenant_id)
        used = await _month_used(uow, tenant_id, cfg.month())
    plan, user_type = _plan_of(cfg, row)
    today = cfg.clock().astimezone(UTC).date()
    calls = await counters.calls(tenant_id, [today])
    return msg.PlanReply(
        **cmd.caused(),
        tier=plan.tier,
        user_type=user_type,
        calls_daily_limit=plan.calls_per_day,
        bookings_limit=plan.bookings_per_month(user_type),
        calendars_limit=plan.calendars,
        bookings_used=used,
        calls_today=calls[today],
        subscription_status=row.subscription_status if row is not None else None,
    )


# --- the booking quota ---------------------------------------------------------------------


async def _take(uow: UnitOfWork, tenant_id: str, month: date, limit: int | None) -> int | None:
    """Count one more booking in ``month`` unless the limit is reached: the new count, or None.

    The conditional UPDATE locks the month's row: concurrent takers wait for each other
    and each sees the count the previous one left, so the limit is never passed.
    """
    await uow.execute(
        pg_insert(quota_months).values(tenant_id=tenant_id, month=month).on_conflict_do_nothing()
    )
    condition = quota_months.c.used < limit if limit is not None else sa.true()
    used = (
        await uow.execute(
            sa.update(quota_months)
            .where(quota_months.c.tenant_id == tenant_id, quota_months.c.month == month, condition)
            .values(used=quota_months.c.used + 1)
            .returning(quota_months.c.used)
        )
    ).scalar()
    return int(used) if used is not None else None


async def _give_back(uow: UnitOfWork, counts: Mapping[tuple[str, date], int]) -> None:
    for (tenant_id, month), count in sorted(counts.items()):  # one lock order: no deadlock
        await uow.execute(
            sa.update(quota_months)
            .where(quota_months.c.tenant_id == tenant_id, quota_months.c.month == month)
            .values(used=sa.func.greatest(quota_months.c.used - count, 0))
        )


async def _expire(uow: UnitOfWork, tenant_id: str | None, batch: int) -> int:
    """Expire overdue reservations (all tenants' or one's) that no one else holds."""
    overdue = sa.select(quota_reservations.c.booking_id).where(
        quota_reservations.c.state == "reserved",
        quota_reservations.c.expires_at <= sa.func.now(),
    )
    if tenant_id is not None:
        overdue = overdue.where(quota_reservations.c.tenant_id == tenant_id)
    claimed = overdue.order_by(quota_reservations.c.expires_at).limit(batch)
    rows = (
        await uow.execute(
            sa.update(quota_reservations)
            .where(
                quota_reservations.c.booking_id.in_(
                    claimed.with_for_update(skip_locked=True).scalar_subquery()
                )
            )
            .values(state="expired", released_at=sa.func.now())
            .returning(quota_reservations.c.tenant_id, quota_reservations.c.month)
        )
    ).all()
    await _give_back(uow, Counter((row.tenant_id, row.month) for row in rows))
    return len(rows)


async def expire_reservations(uow_factory: UowFactory, batch: int = 500) -> int:
    """One pass of the sweep: overdue reservations stop counting. Returns how many."""
    async with uow_factory() as uow:
        expired = await _expire(uow, None, batch)
        await uow.commit()
    if expired:
        log.info("quota reservations expired", extra={"count": expired})
    return expired


async def _take_or_refuse(
    uow: UnitOfWork, cfg: Billing, tenant_id: str, month: date
) -> tuple[int, int | None]:
    plan, user_type = _plan_of(cfg, await _tenant(uow, tenant_id))
    limit = plan.bookings_per_month(user_type)
    used = await _take(uow, tenant_id, month, limit)
    # overdue reservations of this tenant may still count: free them, then try again
    if used is None and await _expire(uow, tenant_id, 1000):
        used = await _take(uow, tenant_id, month, limit)
    if used is None:
        assert limit is not None
        raise _limit_reached(limit, plan)
    return used, limit


def _hold_until(cmd: msg.ReserveBookingQuota, cfg: Billing) -> Any:
    """A reservation counts for billing's hold, or longer when the booking asks for it (a
    pending booking commits only when its owner confirms, up to its own expiry)."""
    held = sa.func.now() + cfg.hold
    return held if cmd.hold_until is None else sa.func.greatest(held, cmd.hold_until)


async def reserve_booking_quota(
    cmd: msg.ReserveBookingQuota, uow_factory: UowFactory, cfg: Billing
) -> msg.QuotaReserved:
    tenant_id = _tenant_id(cmd)
    month = cfg.month()
    refuse_if_past(cmd.deadline)
    async with uow_factory() as uow:
        _refuse_deleted(await _tenant(uow, tenant_id))
        inserted = (
            await uow.execute(
                pg_insert(quota_reservations)
                .values(
                    booking_id=cmd.booking_id,
                    tenant_id=tenant_id,
                    month=month,
                    state="reserved",
                    expires_at=_hold_until(cmd, cfg),
                )
                .on_conflict_do_nothing()
                .returning(quota_reservations.c.booking_id)
            )
        ).first()
        if inserted is not None:
            used, limit = await _take_or_refuse(uow, cfg, tenant_id, month)
            refuse_if_past(cmd.deadline)  # waiting for the month's row may have used it up
            await uow.commit()
            return msg.QuotaReserved(
                **cmd.caused(), booking_id=cmd.booking_id, used=used, limit=limit
            )
        # the same booking again: answer as the first time, never count it twice
        row = await _locked_reservation(uow, cmd.booking_id)
        _check_owner(cmd, row)
        if row.state == "released":
            raise QUOTA_RELEASED
        if row.state == "expired":  # too late, but it may take a unit again
            used, limit = await _take_or_refuse(uow, cfg, tenant_id, month)
            refuse_if_past(cmd.deadline)
            await uow.execute(
                sa.update(quota_reservations)
                .where(quota_reservations.c.booking_id == cmd.booking_id)
                .values(
                    state="reserved",
                    month=month,
                    expires_at=_hold_until(cmd, cfg),
                    released_at=None,
                )
            )
            await uow.commit()
        else:
            plan, user_type = _plan_of(cfg, await _tenant(uow, tenant_id))
            used = await _month_used(uow, tenant_id, row.month)
            limit = plan.bookings_per_month(user_type)
    return msg.QuotaReserved(**cmd.caused(), booking_id=cmd.booking_id, used=used, limit=limit)


async def _locked_reservation(uow: UnitOfWork, booking_id: str) -> sa.Row[Any]:
    return (
        await uow.execute(
            sa.select(quota_reservations)
            .where(quota_reservations.c.booking_id == booking_id)
            .with_for_update()
        )
    ).one()


def _check_owner(cmd: Message, row: sa.Row[Any]) -> None:
    if cmd.tenant_id and row.tenant_id and cmd.tenant_id != row.tenant_id:
        raise BOOKING_ID_TAKEN


async def commit_booking_quota(
    cmd: msg.CommitBookingQuota, uow_factory: UowFactory, cfg: Billing
) -> msg.QuotaSettled:
    refuse_if_past(cmd.deadline)
    async with uow_factory() as uow:
        row = (
            await uow.execute(
                sa.select(quota_reservations)
                .where(quota_reservations.c.booking_id == cmd.booking_id)
                .with_for_update()
            )
        ).first()
        if row is None:
            raise RESERVATION_NOT_FOUND
        _check_owner(cmd, row)
        if row.state == "released":
            raise QUOTA_RELEASED
        if row.state != "committed":
            month = row.month
            if row.state == "expired":  # committed after it expired: count it again if allowed
                month = cfg.month()
                await _take_or_refuse(uow, cfg, row.tenant_id, month)
            await uow.execute(
                sa.update(quota_reservations)
                .where(quota_reservations.c.booking_id == cmd.booking_id)
                .values(state="committed", month=month, committed_at=sa.func.now())
            )
            refuse_if_past(cmd.deadline)
            await uow.commit()
    return msg.QuotaSettled(**cmd.caused(), booking_id=cmd.booking_id, state="committed")


async def release_booking_quota(
    cmd: msg.ReleaseBookingQuota, uow_factory: UowFactory, cfg: Billing
) -> msg.QuotaSettled:
    """Give a reservation (or a committed booking's unit) back. Releasing a booking never
    reserved leaves a marker, so a reservation arriving after its release cannot count."""
    async with uow_factory() as uow:
        marker = (
            await uow.execute(
                pg_insert(quota_reservations)
                .values(
                    booking_id=cmd.booking_id,
                    tenant_id=cmd.tenant_id or "",
                    month=cfg.month(),
                    state="released",
                    expires_at=sa.func.now(),
                    released_at=sa.func.now(),
                )
                .on_conflict_do_nothing()
                .returning(quota_reservations.c.booking_id)
            )
        ).first()
        if marker is not None:
            await uow.commit()
            return msg.QuotaSettled(**cmd.caused(), booking_id=cmd.booking_id, state="unknown")
        row = await _locked_reservation(uow, cmd.booking_id)
        _check_owner(cmd, row)
        if row.state in ("reserved", "committed"):
            await uow.execute(
                sa.update(quota_reservations)
                .where(quota_reservations.c.booking_id == cmd.booking_id)
                .values(state="released", released_at=sa.func.now())
            )
            await _give_back(uow, {(row.tenant_id, row.month): 1})
            await uow.commit()
    return msg.QuotaSettled(**cmd.caused(), booking_id=cmd.booking_id, state="released")


# --- usage ----------------------------------------------------------------------------------


async def get_daily_usage(
    cmd: msg.GetDailyUsage, uow_factory: UowFactory, cfg: Billing, counters: CallCounts
) -> msg.DailyUsage:
    tenant_id = _tenant_id(cmd)
    now = cfg.clock()
    today = now.astimezone(UTC).date()
    async with uow_factory() as uow:
        row = await _tenant(uow, tenant_id)
        period = billing_period(
            now,
            row.period_start if row is not None else None,
            row.period_end if row is not None else None,
        )
        day = sa.func.date(sa.func.timezone("UTC", quota_reservations.c.committed_at))
        start = datetime.combine(period.start, datetime.min.time(), UTC)
        end = datetime.combine(period.end + timedelta(days=1), datetime.min.time(), UTC)
        booked = (
            await uow.execute(
                sa.select(day.label("day"), sa.func.count().label("n"))
                .where(
                    quota_reservations.c.tenant_id == tenant_id,
                    quota_reservations.c.state == "committed",
                    quota_reservations.c.committed_at >= start,
                    quota_reservations.c.committed_at < end,
                )
                .group_by(day)
            )
        ).all()
    bookings = {r.day: int(r.n) for r in booked}
    days = period.days_until(today)
    calls = await counters.calls(tenant_id, days)
    return msg.DailyUsage(
        **cmd.caused(),
        period_start=period.start,
        period_end=period.end,
        days=[
            msg.DayUsage(date=d, api_calls=calls.get(d, 0), bookings=bookings.get(d, 0))
            for d in days
        ],
        calls_today=calls.get(today, 0),
    )


# --- Stripe checkout and portal ----------------------------------------------------------------


def _stripe_off() -> ServiceError:
    return ServiceError(
        ErrorKind.UNAVAILABLE,
        "stripe_not_configured",
        "Payments are not configured on this server (no Stripe key or price).",
    )


async def create_checkout(
    cmd: msg.CreateCheckout, uow_factory: UowFactory, cfg: Billing, stripe: StripePort | None
) -> msg.CheckoutCreated:
    tenant_id = _tenant_id(cmd)
    tier = _tier_or_invalid(cmd.plan_tier)
    if not cfg.plans[tier].paid:
        raise ServiceError(
            ErrorKind.INVALID,
            "plan_not_purchasable",
            f"The {tier.value} plan is free: cancel the subscription in the billing portal "
            "to return to it.",
        )
    price = cfg.prices.get(tier)
    if stripe is None or not price:
        raise _stripe_off()
    async with uow_factory() as uow:
        row = await _locked_tenant(uow, tenant_id)
        _refuse_deleted(row)
        if row.tier == tier.value:
            raise ServiceError(
                ErrorKind.INVALID, "already_on_plan", f"You are already on the {tier.value} plan."
            )
        customer_id = row.stripe_customer_id
        if not customer_id:  # once per tenant: the row stays locked while Stripe answers
            customer_id = await stripe.create_customer(
                tenant_id, row.email, row.display_name, f"cortex-customer-{tenant_id}"
            )
            await uow.execute(
                sa.update(tenants)
                .where(tenants.c.tenant_id == tenant_id)
                .values(stripe_customer_id=customer_id, updated_at=sa.func.now())
            )
        await uow.commit()
    session = await stripe.create_checkout_session(
        customer_id=customer_id,
        price_id=price,
        tenant_id=tenant_id,
        tier=tier.value,
        success_url=cfg.success_url,
        cancel_url=cfg.cancel_url,
        idempotency_key=f"cortex-checkout-{tenant_id}-{tier.value}-{cmd.correlation_id}",
    )
    return msg.CheckoutCreated(**cmd.caused(), url=session.url, session_id=session.id)


async def create_portal(
    cmd: msg.CreatePortal, uow_factory: UowFactory, cfg: Billing, stripe: StripePort | None
) -> msg.PortalCreated:
    tenant_id = _tenant_id(cmd)
    async with uow_factory() as uow:
        row = await _tenant(uow, tenant_id)
    _refuse_deleted(row)
    if row is None or not row.stripe_customer_id:
        raise ServiceError(
            ErrorKind.INVALID,
            "no_billing_account",
            "There is no billing account yet: choose a plan with POST /api/v1/billing/checkout "
            "first.",
        )
    if stripe is None:
        raise _stripe_off()
    session = await stripe.create_portal_session(
        customer_id=row.stripe_customer_id,
        return_url=cfg.portal_return_url,
        idempotency_key=f"cortex-portal-{tenant_id}-{cmd.correlation_id}",
    )
    return msg.PortalCreated(**cmd.caused(), url=session.url)


# --- Stripe webhooks ---------------------------------------------------------------------------


async def receive_stripe_webhook(
    cmd: msg.ReceiveStripeWebhook, uow_factory: UowFactory, cfg: Billing
) -> msg.StripeWebhookHandled:
    try:
        event = stripe_events.verify(cmd.payload, cmd.signature, cfg.webhook_secret, cfg.clock())
    except InvalidSignature as exc:
        raise ServiceError(ErrorKind.INVALID, "invalid_signature", str(exc)) from exc
    except InvalidPayload as exc:
        raise ServiceError(ErrorKind.INVALID, "invalid_payload", str(exc)) from exc

    def handled(
        status: Literal["processed", "duplicate", "ignored"], tenant_id: str | None = None
    ) -> msg.StripeWebhookHandled:
        return msg.StripeWebhookHandled(
            **cmd.caused(),
            status=status,
            event_type=event.type,
            affected_tenant_id=tenant_id,
        )

    async with uow_factory() as uow:
        if not await uow.first_delivery(STRIPE_CONSUMER, event.id):
            return handled("duplicate")
        move = stripe_events.plan_move(event, cfg.tier_of_price())
        row = await _tenant_for(uow, move) if move is not None else None
        if move is None or row is None:
            await uow.commit()  # remembered as seen, so a re-send is a duplicate too
            return handled("ignored")
        await _apply_move(uow, cfg, cmd, event, row, move)
        await uow.commit()
    return handled("processed", row.tenant_id)


async def _tenant_for(uow: UnitOfWork, move: PlanMove) -> sa.Row[Any] | None:
    """The tenant an event is about: by our metadata, else by its Stripe customer."""
    if move.tenant_hint:
        return await _locked_tenant(uow, move.tenant_hint)
    if not move.customer_id:
        return None
    return (
        await uow.execute(
            sa.select(tenants)
            .where(tenants.c.stripe_customer_id == move.customer_id)
            .with_for_update()
        )
    ).first()


async def _apply_move(
    uow: UnitOfWork,
    cfg: Billing,
    cmd: msg.ReceiveStripeWebhook,
    event: stripe_events.StripeEvent,
    row: sa.Row[Any],
    move: PlanMove,
) -> None:
    if row.stripe_event_at is not None and event.created < row.stripe_event_at:
        log.info(
            "older Stripe event skipped", extra={"event_id": event.id, "tenant_id": row.tenant_id}
        )
        return
    if row.deleted_at is not None:
        await _after_deletion(uow, event, row, move)
        return
    current = row.stripe_subscription_id
    other = bool(current and move.subscription_id and move.subscription_id != current)
    if other and (move.ends_subscription or move.tier is FREE_TIER):
        # the end of a subscription the tenant has replaced: its current one stands
        log.info("event about a replaced subscription", extra={"event_id": event.id})
        return
    changes: dict[str, Any] = {"stripe_event_at": event.created, "updated_at": sa.func.now()}
    if move.customer_id and not row.stripe_customer_id:
        changes["stripe_customer_id"] = move.customer_id
    if move.ends_subscription:
        changes.update(stripe_subscription_id=None, period_start=None, period_end=None)
    elif move.subscription_id:
        changes["stripe_subscription_id"] = move.subscription_id
    if move.subscription_status:
        changes["subscription_status"] = move.subscription_status
    if move.period_start and move.period_end:
        changes.update(period_start=move.period_start, period_end=move.period_end)
    await uow.execute(
        sa.update(tenants).where(tenants.c.tenant_id == row.tenant_id).values(**changes)
    )
    if move.tier is not None:
        await _move_plan(
            uow, cfg, cmd, row, move.tier, "stripe", changes.get("subscription_status")
        )


async def _after_deletion(
    uow: UnitOfWork, event: stripe_events.StripeEvent, row: sa.Row[Any], move: PlanMove
) -> None:
    """A Stripe event about a deleted tenant moves no plan; a subscription it still has
    (e.g. a checkout paid just before the deletion, announced after it) is cancelled."""
    changes: dict[str, Any] = {"stripe_event_at": event.created, "updated_at": sa.func.now()}
    if move.subscription_status:
        changes["subscription_status"] = move.subscription_status
    if move.ends_subscription:
        if move.subscription_id == row.stripe_subscription_id:
            changes.update(stripe_subscription_id=None, period_start=None, period_end=None)
    elif move.subscription_id and (move.subscription_status or "active") in LIVE_SUBSCRIPTION:
        changes.update(
            stripe_subscription_id=move.subscription_id,
            cancel_subscription_id=move.subscription_id,
            cancel_next_at=sa.func.now(),
            cancel_attempts=0,
        )
    await uow.execute(
        sa.update(tenants).where(tenants.c.tenant_id == row.tenant_id).values(**changes)
    )
