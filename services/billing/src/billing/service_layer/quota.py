"""The booking quota, a participant of the booking saga: a booking reserves a unit of its
month's limit, then commits it or releases it; a reservation never settled expires."""

from __future__ import annotations

import logging
from datetime import date

from billing.adapters import quota, tenants
from billing.adapters.quota import Reservation
from billing.domain.plans import Plan
from billing.service_layer.accounts import plan_of, refuse_deleted
from billing.service_layer.deps import BillingDeps
from contracts import billing as msg
from contracts.envelope import Message
from contracts.rpc import ErrorKind
from cortex_runtime.database import UnitOfWork
from cortex_runtime.deadlines import refuse_if_past
from cortex_runtime.errors import ServiceError, require_tenant

log = logging.getLogger(__name__)

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


def _limit_reached(limit: int, plan: Plan) -> ServiceError:
    return ServiceError(
        ErrorKind.PAYMENT_REQUIRED,
        "booking_limit_reached",
        f"This month's booking limit is reached: the {plan.tier.value} plan allows {limit} "
        "bookings per month. Upgrade the plan or wait for the next month.",
        {"limit": limit, "tier": plan.tier.value},
    )


def _check_owner(cmd: Message, reservation: Reservation) -> None:
    if cmd.tenant_id and reservation.tenant_id and cmd.tenant_id != reservation.tenant_id:
        raise BOOKING_ID_TAKEN


async def expire_reservations(deps: BillingDeps, batch: int = 500) -> int:
    """One pass of the sweep: overdue reservations stop counting. Returns how many."""
    async with deps.uow() as uow:
        expired = await quota.expire_overdue(uow, None, batch)
        await uow.commit()
    if expired:
        log.info("quota reservations expired", extra={"count": expired})
    return expired


async def _take_or_refuse(
    uow: UnitOfWork, deps: BillingDeps, tenant_id: str, month: date
) -> tuple[int, int | None]:
    plan, user_type = plan_of(deps, await tenants.get(uow, tenant_id))
    limit = plan.bookings_per_month(user_type)
    used = await quota.take(uow, tenant_id, month, limit)
    # overdue reservations of this tenant may still count: free them, then try again
    if used is None and await quota.expire_overdue(uow, tenant_id, 1000):
        used = await quota.take(uow, tenant_id, month, limit)
    if used is None:
        assert limit is not None
        raise _limit_reached(limit, plan)
    return used, limit


async def reserve_booking_quota(
    cmd: msg.ReserveBookingQuota, deps: BillingDeps
) -> msg.QuotaReserved:
    """Count the booking in this month's limit, or refuse it (``booking_limit_reached``).

    A reservation counts for billing's hold, or longer when the booking asks for it (a
    pending booking commits only when its owner confirms, up to its own expiry)."""
    tenant_id = require_tenant(cmd)
    month = deps.month()
    refuse_if_past(cmd.deadline)
    async with deps.uow() as uow:
        refuse_deleted(await tenants.get(uow, tenant_id))
        if await quota.add_reservation(
            uow, cmd.booking_id, tenant_id, month, deps.hold, cmd.hold_until
        ):
            used, limit = await _take_or_refuse(uow, deps, tenant_id, month)
            refuse_if_past(cmd.deadline)  # waiting for the month's row may have used it up
            await uow.commit()
            return msg.QuotaReserved(
                **cmd.caused(), booking_id=cmd.booking_id, used=used, limit=limit
            )
        # the same booking again: answer as the first time, never count it twice
        reservation = await quota.locked(uow, cmd.booking_id)
        _check_owner(cmd, reservation)
        if reservation.state == "released":
            raise QUOTA_RELEASED
        if reservation.state == "expired":  # too late, but it may take a unit again
            used, limit = await _take_or_refuse(uow, deps, tenant_id, month)
            refuse_if_past(cmd.deadline)
            await quota.renew(uow, cmd.booking_id, month, deps.hold, cmd.hold_until)
            await uow.commit()
        else:
            plan, user_type = plan_of(deps, await tenants.get(uow, tenant_id))
            used = await quota.month_used(uow, tenant_id, reservation.month)
            limit = plan.bookings_per_month(user_type)
    return msg.QuotaReserved(**cmd.caused(), booking_id=cmd.booking_id, used=used, limit=limit)


async def commit_booking_quota(cmd: msg.CommitBookingQuota, deps: BillingDeps) -> msg.QuotaSettled:
    refuse_if_past(cmd.deadline)
    async with deps.uow() as uow:
        reservation = await quota.find_locked(uow, cmd.booking_id)
        if reservation is None:
            raise RESERVATION_NOT_FOUND
        _check_owner(cmd, reservation)
        if reservation.state == "released":
            raise QUOTA_RELEASED
        if reservation.state != "committed":
            month = reservation.month
            # committed after it expired: count it again if allowed
            if reservation.state == "expired":
                month = deps.month()
                await _take_or_refuse(uow, deps, reservation.tenant_id, month)
            await quota.mark_committed(uow, cmd.booking_id, month)
            refuse_if_past(cmd.deadline)
            await uow.commit()
    return msg.QuotaSettled(**cmd.caused(), booking_id=cmd.booking_id, state="committed")


async def release_booking_quota(
    cmd: msg.ReleaseBookingQuota, deps: BillingDeps
) -> msg.QuotaSettled:
    """Give a reservation (or a committed booking's unit) back. Releasing a booking never
    reserved leaves a marker, so a reservation arriving after its release cannot count."""
    async with deps.uow() as uow:
        if await quota.add_release_marker(uow, cmd.booking_id, cmd.tenant_id or "", deps.month()):
            await uow.commit()
            return msg.QuotaSettled(**cmd.caused(), booking_id=cmd.booking_id, state="unknown")
        reservation = await quota.locked(uow, cmd.booking_id)
        _check_owner(cmd, reservation)
        if reservation.state in ("reserved", "committed"):
            await quota.mark_released(uow, cmd.booking_id)
            await quota.give_back(uow, {(reservation.tenant_id, reservation.month): 1})
            await uow.commit()
    return msg.QuotaSettled(**cmd.caused(), booking_id=cmd.booking_id, state="released")
