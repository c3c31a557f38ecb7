"""The reschedule step of the booking saga in process, on real PostgreSQL, with fake
participants (calendars and billing in memory, as in test_saga_in_process): the new slot
held before the old is released, the event moved (never duplicated), each forward step
failing, a compensation failing, a crash before and after the pivot with recovery, the
Idempotency-Key, and the attendee's manage link."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from booking.adapters import bookings
from booking.adapters.bookings import Booking
from booking.domain.saga import Step
from booking.service_layer import booking_requests, projection, reschedule_saga, rescheduling
from booking.service_layer.deps import BookingDeps
from booking.service_layer.recovery import recover
from contracts import billing as bill
from contracts import booking as msg
from contracts import booking_changes as changes
from contracts import calendars as cal
from contracts import identity as ident
from contracts.envelope import Message
from contracts.rpc import ErrorKind, Rpc
from cortex_runtime.database import Database, UnitOfWork
from cortex_runtime.errors import ServiceError, ServiceUnavailable
from cortex_runtime.tables import outbox

pytestmark = pytest.mark.integration

TENANT = "tn_reschedule_in_process"
SLUG = "reschedule-owner"
TIMEOUT = 0.2
MOVE = cal.MOVE_BOOKING_EVENT.subject
FREE_BUSY = cal.GET_FREE_BUSY.subject
RESERVE = bill.RESERVE_BOOKING_QUOTA.subject
DOWN = ServiceUnavailable("service_unavailable", "The service is not running.")
REFUSED = ServiceError(ErrorKind.UPSTREAM, "calendar_unavailable", "The server said no.")
START = (datetime.now(UTC) + timedelta(days=3)).replace(hour=8, minute=0, second=0, microsecond=0)


class Crash(BaseException):
    """The process stops here: nothing in the service catches it, the row stays put."""


@dataclass
class Participants:
    """Calendars and billing in memory. ``events``: booking id -> its event's times.
    ``failing[subject]``: errors the next calls raise, one each; ``stall``: subjects whose
    next call works and then times out; ``crash_at``: the next call of that subject does its
    work and crashes the saga."""

    events: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)
    reserved: set[str] = field(default_factory=set)
    busy: list[cal.BusyInterval] = field(default_factory=list)  # what a live check finds
    failing: dict[str, list[ServiceError]] = field(default_factory=dict)
    stall: set[str] = field(default_factory=set)
    crash_at: str | None = None
    calls: list[str] = field(default_factory=list)

    async def call(self, rpc: Rpc[Any, Any], request: Any, timeout: float | None = None) -> Any:
        subject = rpc.subject
        self.calls.append(subject)
        if self.failing.get(subject):
            raise self.failing[subject].pop(0)
        reply = self._work(request)
        if self.crash_at == subject:
            self.crash_at = None
            raise Crash(subject)
        if subject in self.stall:
            self.stall.discard(subject)
            await asyncio.sleep(timeout or 0)
            raise ServiceUnavailable("service_timeout", "The service did not answer in time.")
        return reply

    def _written(self, trace: dict[str, Any], booking_id: str) -> cal.BookingEventWritten:
        return cal.BookingEventWritten(
            **trace,
            booking_id=booking_id,
            provider=cal.Provider.CALDAV,
            calendar_id="cal_1",
            uid=booking_id,
        )

    def _work(self, request: Message) -> Message:
        trace = request.caused()
        match request:
            case cal.GetFreeBusy():
                own = [
                    cal.BusyEvent(start=a, end=b, summary="Intro call", booking_id=i)
                    for i, (a, b) in self.events.items()
                    if a < request.end and b > request.start
                ]
                busy = [cal.BusyInterval(start=e.start, end=e.end) for e in own]
                busy += self.busy if request.live else []
                return cal.FreeBusy(**trace, busy=busy, events=own, sources=[], unknown=[])
            case bill.ReserveBookingQuota():
                self.reserved.add(request.booking_id)
                return bill.QuotaReserved(
                    **trace, booking_id=request.booking_id, used=1, limit=None
                )
            case bill.CommitBookingQuota() | bill.ReleaseBookingQuota():
                state = "committed" if isinstance(request, bill.CommitBookingQuota) else "released"
                self.reserved.discard(request.booking_id)
                return bill.QuotaSettled(**trace, booking_id=request.booking_id, state=state)
            case cal.WriteBookingEvent():
                self.events[request.booking_id] = (request.start, request.end)
                return self._written(trace, request.booking_id)
            case cal.MoveBookingEvent():
                if request.booking_id in self.events:
                    self.events[request.booking_id] = (request.start, request.end)
                return self._written(trace, request.booking_id)
            case cal.DeleteBookingEvent():
                deleted = self.events.pop(request.booking_id, None) is not None
                return cal.BookingEventDeleted(
                    **trace, booking_id=request.booking_id, deleted=deleted
                )
        raise AssertionError(f"no such participant call: {request!r}")


@dataclass
class World:
    deps: BookingDeps
    participants: Participants
    db: Database
    made: int = 0

    async def book(self, hour: int, *, minutes: int = 30) -> msg.BookingInfo:
        self.made += 1
        start = START + timedelta(hours=hour)
        token = f"token-{self.made}"
        cmd = msg.CreateBooking(
            booking_id=f"bk_{self.made:020d}",
            slug=SLUG,
            start=start,
            end=start + timedelta(minutes=minutes),
            title="Intro call",
            attendee_email="guest@example.com",
            request_hash=f"hash-{self.made}",
            manage_token_hash=changes.manage_token_hash(token),
        )
        return (await booking_requests.create_booking(cmd, self.deps)).booking

    def move(self, booking_id: str, hour: float, **extra: Any) -> changes.RescheduleBooking:
        start = START + timedelta(hours=hour)
        return changes.RescheduleBooking(
            tenant_id=TENANT,
            booking_id=booking_id,
            start=start,
            end=start + timedelta(minutes=30),
            **extra,
        )

    async def reschedule(self, booking_id: str, hour: float, **extra: Any) -> msg.BookingReply:
        return await rescheduling.reschedule_booking(
            self.move(booking_id, hour, **extra), self.deps
        )

    async def refused(self, booking_id: str, hour: float, code: str) -> ServiceError:
        with pytest.raises(ServiceError) as failure:
            await self.reschedule(booking_id, hour)
        assert failure.value.code == code, failure.value.reply
        return failure.value

    async def row(self, booking_id: str) -> Booking:
        async with UnitOfWork(self.db) as uow:
            row = await bookings.load(uow, booking_id)
        assert row is not None
        return row

    async def rescheduled_events(self) -> list[changes.BookingRescheduled]:
        async with UnitOfWork(self.db) as uow:
            rows = await uow.execute(
                sa.select(outbox.c.payload).where(
                    outbox.c.subject == changes.BOOKING_RESCHEDULED.subject
                )
            )
            return [changes.BookingRescheduled.model_validate_json(p) for (p,) in rows]

    async def recover(self) -> int:
        await asyncio.sleep(0.01)
        return await recover(self.deps, timedelta(0))

    async def kept_old(self, booking: msg.BookingInfo) -> None:
        """The reschedule undone: the old times, the event there, nothing else held."""
        row = await self.row(booking.booking_id)
        assert (row.start_at, row.end_at) == (booking.start, booking.end)
        assert (row.saga_step, row.status) == (Step.DONE.value, "confirmed")
        assert (row.moving_start_at, row.moving_until, row.history) == (None, None, ())
        assert self.participants.events[booking.booking_id] == (booking.start, booking.end)
        assert await self.rescheduled_events() == []


async def _owner(db: Database, *, confirm: bool = False, notice: int = 0, version: int = 1) -> None:
    hours = [ident.WorkingInterval(start="07:00", end="20:00")]
    settings = ident.TenantSettings(
        tenant_id=TENANT,
        email="owner@example.com",
        display_name="Owner",
        slug=SLUG,
        open_scheduling=True,
        user_type=ident.UserType.INDIVIDUAL,
        timezone="UTC",
        working_hours={day: hours for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
        booking_rules=ident.BookingRules(
            confirm_before_booking=confirm, min_notice_hours=notice, buffer_minutes=0
        ),
        updated_at=datetime.now(UTC),
        version=version,
    )
    async with UnitOfWork(db) as uow:
        await projection.project_settings(uow, settings)
        await uow.commit()


@pytest.fixture
async def world(service_database: Callable[[str], str]) -> AsyncIterator[World]:
    db = Database(service_database("booking"), pool_size=4)
    participants = Participants()
    deps = BookingDeps(
        uow=lambda: UnitOfWork(db),
        rpc=participants,
        hold=timedelta(seconds=60),
        pending_expiry=timedelta(hours=48),
        participant_timeout=TIMEOUT,
        read=lambda: UnitOfWork(db, read_only=True),
    )
    await _owner(db)
    try:
        yield World(deps, participants, db)
    finally:
        await db.dispose()


# --- the happy path --------------------------------------------------------------------------


async def test_a_booking_moves_its_event_and_keeps_its_id_and_quota(world: World) -> None:
    booking = await world.book(1)
    world.participants.calls.clear()
    moved = (await world.reschedule(booking.booking_id, 5)).booking
    assert moved.booking_id == booking.booking_id
    assert (moved.start, moved.status) == (START + timedelta(hours=5), msg.BookingStatus.CONFIRMED)
    # the event moved (one event, the same one); no quota asked for: the unit is unchanged
    assert world.participants.events == {booking.booking_id: (moved.start, moved.end)}
    assert RESERVE not in world.participants.calls
    assert world.participants.calls == [FREE_BUSY, FREE_BUSY, MOVE]
    assert [(h.start, h.end, h.by) for h in moved.history] == [
        (booking.start, booking.end, msg.ChangedBy.OWNER)
    ]
    (event,) = await world.rescheduled_events()
    assert (event.old.start, event.new.start) == (booking.start, moved.start)
    row = await world.row(booking.booking_id)
    assert (row.saga_step, row.moving_start_at) == (Step.DONE.value, None)
    # the old slot is free at once: another booking takes it
    assert (await world.book(1)).status is msg.BookingStatus.CONFIRMED


async def test_a_move_overlapping_its_own_times_is_allowed(world: World) -> None:
    booking = await world.book(1, minutes=60)
    start = booking.start + timedelta(minutes=30)
    cmd = changes.RescheduleBooking(
        tenant_id=TENANT, booking_id=booking.booking_id, start=start, end=start + timedelta(hours=1)
    )
    moved = (await rescheduling.reschedule_booking(cmd, world.deps)).booking
    assert (moved.start, moved.end) == (start, start + timedelta(hours=1))


async def test_a_taken_slot_is_a_conflict_and_the_booking_keeps_its_slot(world: World) -> None:
    booking = await world.book(1)
    other = await world.book(3)
    error = await world.refused(booking.booking_id, 3, "slot_unavailable")
    assert error.kind is ErrorKind.CONFLICT
    clash = error.reply.details["conflict"]
    assert datetime.fromisoformat(clash["start"]) == other.start  # its event, as a booking's
    assert "next_slots" in error.reply.details
    await world.kept_old(booking)
    assert (await world.row(other.booking_id)).start_at == other.start


async def test_the_new_slot_obeys_the_owners_rules(world: World) -> None:
    booking = await world.book(1)
    await world.refused(booking.booking_id, 14, "outside_working_hours")  # 22:00
    await world.refused(booking.booking_id, -80, "too_soon")
    await world.kept_old(booking)


async def test_a_slot_needing_confirmation_makes_it_pending(world: World) -> None:
    booking = await world.book(1)
    await _owner(world.db, confirm=True, version=2)
    moved = (await world.reschedule(booking.booking_id, 4)).booking
    assert moved.status is msg.BookingStatus.PENDING
    row = await world.row(booking.booking_id)
    assert (row.saga_step, row.hold_expires_at is not None) == (Step.AWAITING_OWNER.value, True)
    assert world.participants.events[booking.booking_id] == (moved.start, moved.end)


# --- each forward step failing -------------------------------------------------------------


async def test_a_busy_calendar_at_the_live_check_keeps_the_old_slot(world: World) -> None:
    booking = await world.book(1)
    new = START + timedelta(hours=5)
    world.participants.busy = [cal.BusyInterval(start=new, end=new + timedelta(minutes=30))]
    await world.refused(booking.booking_id, 5, "slot_unavailable")
    await world.kept_old(booking)


async def test_calendars_down_at_the_live_check_keeps_the_old_slot(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    booking = await world.book(1)
    world.participants.failing[FREE_BUSY] = [DOWN]
    await world.refused(booking.booking_id, 5, "calendar_unavailable")  # the first read
    await world.kept_old(booking)
    world.participants.failing[FREE_BUSY] = []

    # the live check (second read) down: the hold is released again
    async def second_read_down(*args: Any, **kwargs: Any) -> Any:
        world.participants.failing[FREE_BUSY] = [DOWN]
        return await original(*args, **kwargs)

    original = reschedule_saga._check_live
    monkeypatch.setattr(reschedule_saga, "_check_live", second_read_down)
    await world.refused(booking.booking_id, 5, "calendar_unavailable")
    monkeypatch.setattr(reschedule_saga, "_check_live", original)
    await world.kept_old(booking)


@pytest.mark.parametrize("failure", [REFUSED, DOWN])
async def test_a_failed_move_moves_the_event_back_and_keeps_the_old_slot(
    world: World, failure: ServiceError
) -> None:
    booking = await world.book(1)
    world.participants.failing[MOVE] = [failure]
    await world.refused(booking.booking_id, 5, "calendar_move_failed")
    await world.kept_old(booking)
    assert world.participants.calls[-1] == MOVE  # moved back


async def test_a_move_that_times_out_after_moving_is_moved_back(world: World) -> None:
    booking = await world.book(1)
    world.participants.stall.add(MOVE)  # the event moved, the answer came too late
    await world.refused(booking.booking_id, 5, "calendar_move_failed")
    await world.kept_old(booking)


# --- a compensation failing --------------------------------------------------------------


async def test_a_move_back_out_of_reach_is_finished_by_recovery(world: World) -> None:
    booking = await world.book(1)
    world.participants.stall.add(MOVE)  # moved, then no answer
    world.participants.failing[MOVE] = []
    original = world.participants.call
    backs = {"n": 0}

    async def move_back_down(rpc: Rpc[Any, Any], request: Any, timeout: float | None = None) -> Any:
        if rpc.subject == MOVE and request.start == booking.start and backs["n"] == 0:
            backs["n"] += 1
            raise DOWN
        return await original(rpc, request, timeout)

    world.participants.call = move_back_down  # type: ignore[method-assign]
    await world.refused(booking.booking_id, 5, "calendar_move_failed")
    row = await world.row(booking.booking_id)
    # both intervals still held: the old one is never let go before the reschedule is done
    assert (row.saga_step, row.start_at, row.moving_start_at) == (
        Step.MOVING.value,
        booking.start,
        START + timedelta(hours=5),
    )
    assert await world.recover() == 1
    await world.kept_old(booking)


# --- crashes, and recovery ---------------------------------------------------------------------


async def test_a_crash_before_the_pivot_is_undone_by_recovery(world: World) -> None:
    booking = await world.book(1)
    world.participants.crash_at = MOVE  # the event moved, the process died before recording it
    with pytest.raises(Crash):
        await world.reschedule(booking.booking_id, 5)
    assert (await world.row(booking.booking_id)).saga_step == Step.MOVING.value
    assert await world.recover() == 1
    await world.kept_old(booking)


async def test_a_crash_after_the_pivot_is_finished_by_recovery(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    booking = await world.book(1)

    async def crash(*args: Any, **kwargs: Any) -> Any:
        raise Crash("swap")

    swap = reschedule_saga.swap
    monkeypatch.setattr(reschedule_saga, "swap", crash)
    with pytest.raises(Crash):
        await world.reschedule(booking.booking_id, 5)
    assert (await world.row(booking.booking_id)).saga_step == Step.SWAPPING.value
    monkeypatch.setattr(reschedule_saga, "swap", swap)
    assert await world.recover() == 1
    row = await world.row(booking.booking_id)
    new = START + timedelta(hours=5)
    assert (row.saga_step, row.start_at, row.moving_start_at) == (Step.DONE.value, new, None)
    assert world.participants.events[booking.booking_id][0] == new
    assert len(await world.rescheduled_events()) == 1


# --- the Idempotency-Key -----------------------------------------------------------------------


async def test_the_same_key_answers_again_and_another_body_is_refused(world: World) -> None:
    booking = await world.book(1)
    first = await world.reschedule(booking.booking_id, 5, idempotency_key="k1", request_hash="h1")
    again = await world.reschedule(booking.booking_id, 5, idempotency_key="k1", request_hash="h1")
    assert again.replayed and again.booking.start == first.booking.start
    assert len(again.booking.history) == 1
    with pytest.raises(ServiceError) as reused:
        await world.reschedule(booking.booking_id, 6, idempotency_key="k1", request_hash="h2")
    assert reused.value.code == "idempotency_key_reused"


# --- the attendee's manage link ------------------------------------------------------------


def _link(booking: msg.BookingInfo, token: str) -> dict[str, Any]:
    return {"slug": SLUG, "booking_id": booking.booking_id, "token": token}


async def test_the_manage_link_reads_moves_and_cancels_its_booking_only(world: World) -> None:
    first = await world.book(1)  # token-1
    second = await world.book(2)  # token-2
    got = await rescheduling.get_managed_booking(
        changes.ManagedBooking(**_link(first, "token-1")), world.deps
    )
    assert got.booking.booking_id == first.booking_id
    for wrong in ("token-2", "token-x", ""):  # another booking's, a guess
        with pytest.raises(ServiceError) as missing:
            await rescheduling.get_managed_booking(
                changes.ManagedBooking(**_link(first, wrong)), world.deps
            )
        assert missing.value.code == "booking_not_found"
    start = START + timedelta(hours=6)
    moved = await rescheduling.reschedule_managed_booking(
        changes.RescheduleManagedBooking(
            **_link(first, "token-1"), start=start, end=start + timedelta(minutes=30)
        ),
        world.deps,
    )
    assert moved.booking.history[0].by is msg.ChangedBy.ATTENDEE
    cancelled = await rescheduling.cancel_managed_booking(
        changes.CancelManagedBooking(**_link(second, "token-2")), world.deps
    )
    assert cancelled.booking.status is msg.BookingStatus.CANCELLED
    assert second.booking_id not in world.participants.events


async def test_min_notice_applies_to_the_attendees_changes(world: World) -> None:
    booking = await world.book(1)  # START+1h: about 3 days ahead
    await _owner(world.db, notice=24 * 5, version=2)
    start = START + timedelta(days=6)
    for request in (
        changes.RescheduleManagedBooking(
            **_link(booking, "token-1"), start=start, end=start + timedelta(minutes=30)
        ),
        changes.CancelManagedBooking(**_link(booking, "token-1")),
    ):
        with pytest.raises(ServiceError) as late:
            if isinstance(request, changes.RescheduleManagedBooking):
                await rescheduling.reschedule_managed_booking(request, world.deps)
            else:
                await rescheduling.cancel_managed_booking(request, world.deps)
        assert late.value.code == "too_soon"
    assert (await world.row(booking.booking_id)).status == "confirmed"


# --- a storm -----------------------------------------------------------------------------------


async def test_of_many_reschedules_into_one_slot_exactly_one_moves(world: World) -> None:
    booked = [await world.book(h) for h in range(8)]
    results = await asyncio.gather(
        *(world.reschedule(b.booking_id, 9) for b in booked), return_exceptions=True
    )
    moved = [r for r in results if isinstance(r, msg.BookingReply)]
    refused = [r for r in results if isinstance(r, ServiceError)]
    assert len(moved) == 1, results
    assert {r.code for r in refused} == {"slot_unavailable"}
    winner = moved[0].booking.booking_id
    for b in booked:
        row = await world.row(b.booking_id)
        assert row.moving_start_at is None
        if b.booking_id != winner:
            assert (row.start_at, world.participants.events[b.booking_id][0]) == (b.start,) * 2
