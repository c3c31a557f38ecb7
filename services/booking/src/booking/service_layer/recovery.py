"""Recovery: every replica sweeps the sagas no live process runs any more, and the pending
bookings nobody confirmed in time. What it does with each is the domain's decision
(:func:`booking.domain.saga.recovery_for`)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from booking.adapters import bookings
from booking.adapters.bookings import Booking
from booking.domain.saga import Recovery, Step, recovery_for
from booking.service_layer import booking_saga, reschedule_saga
from booking.service_layer.deps import BookingDeps
from booking.service_layer.lifecycle import end_pending
from booking.service_layer.saga_state import move
from contracts import booking as msg
from contracts.envelope import Message
from cortex_runtime.database import retry_lost_races
from cortex_runtime.errors import ServiceError

log = logging.getLogger(__name__)


async def run_recovery(deps: BookingDeps, interval_seconds: float) -> None:
    """Recover until cancelled; a sweep that found nothing waits ``interval_seconds``."""
    while True:
        if await recover(deps, deps.hold) == 0:
            await asyncio.sleep(interval_seconds)


async def recover(deps: BookingDeps, stale_after: timedelta, limit: int = 20) -> int:
    """Finish or undo sagas whose process stopped, expire holds and pending bookings.

    Rows are claimed with SKIP LOCKED and their ``updated_at`` bumped, so replicas share the
    work and a saga still running in a live process (it touches the row at every step) is
    left alone until it is older than ``stale_after``.
    """
    now = datetime.now(UTC)

    async def claim() -> list[Booking]:
        async with deps.uow() as uow:
            claimed = await bookings.claim_unfinished(uow, now, stale_after, limit)
            await uow.commit()
        return claimed

    claimed = await retry_lost_races(claim)
    cause = msg.GetBooking(booking_id="recovery")
    for row in claimed:
        try:
            await recover_one(deps, cause, row)
        except ServiceError as exc:
            log.warning(
                "recovery will retry", extra={"booking_id": row.id, "error": exc.reply.message}
            )
    return len(claimed)


async def recover_one(deps: BookingDeps, cause: Message, row: Booking) -> None:
    step = Step(row.saga_step)
    if step is Step.AWAITING_OWNER:
        await end_pending(
            deps,
            cause,
            row.id,
            msg.BookingStatus.EXPIRED,
            msg.BOOKING_EXPIRED,
            "Nobody confirmed it in time.",
        )
        return
    confirming = row.status == msg.BookingStatus.PENDING.value  # an owner's confirm
    what = recovery_for(step, row.event_written, confirming=confirming)
    log.info(
        "recovering saga", extra={"booking_id": row.id, "step": step.value, "action": what.value}
    )
    if what is Recovery.FORWARD:
        if step is not Step.COMMITTING:
            await move(deps, row.id, step, Step.COMMITTING)
        await booking_saga.finish(deps, cause, row.id)
    elif what is Recovery.RELEASE:
        await booking_saga.release(deps, cause, row)
    elif what is Recovery.RETURN:
        await booking_saga.back_to_owner(deps, row.id)
    elif what is Recovery.SWAP:
        await reschedule_saga.swap(deps, cause, row.id)
    elif what is Recovery.UNMOVE:
        await reschedule_saga.undo(
            deps, cause, row.id, "The reschedule did not complete in time.", certain=False
        )
    elif what is Recovery.BACKWARD:
        await booking_saga.undo(
            deps, cause, row.id, "The booking did not complete in time.", certain=False
        )
