"""The booking saga in process, on real PostgreSQL, with fake participants.

Calendars and billing are one plain object (:class:`Participants`) behind the deps' ``rpc``:
it keeps what each participant would hold (written events, reserved and committed quota),
and can refuse, stall past the saga's timeout, or "crash" the saga (raise an exception
nothing in the service catches, as a killed process leaves its row) at any call. Recovery
is run in process. The tests check the row, what the participants hold in the end and
what the outbox announced, so a compensation that was skipped or ran twice shows.
"""

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
from booking.service_layer import booking_requests, booking_saga, lifecycle, projection
from booking.service_layer.deps import BookingDeps
from booking.service_layer.recovery import recover
from contracts import billing as bill
from contracts import booking as msg
from contracts import calendars as cal
from contracts import identity as ident
from contracts.envelope import Message
from contracts.rpc import ErrorKind, Rpc
from cortex_runtime.cursors import encode_cursor
from cortex_runtime.database import Database, UnitOfWork
from cortex_runtime.errors import ServiceError, ServiceUnavailable
from cortex_runtime.tables import outbox

pytestmark = pytest.mark.integration

TENANT = "tn_saga_in_process"
SLUG = "saga-owner"
TIMEOUT = 0.2  # the saga's wait for a participant


class Crash(BaseException):
    """The process stops here: nothing in the service catches it, the row stays put."""


@dataclass
class Participants:
    """Calendars and billing as the saga sees them, in memory.

    ``refuse[subject]``: the error that call raises; ``stall``: subjects whose call does its
    work and then answers too late (a timeout); ``crash_at``: the subject whose call
    crashes the saga, ``after`` its work was done or before.
    """

    events: set[str] = field(default_factory=set)  # booking ids with a provider event
    reserved: set[str] = field(default_factory=set)  # quota reserved, not settled
    committed: set[str] = field(default_factory=set)
    busy: list[cal.BusyInterval] = field(default_factory=list)  # what a live check finds
    refuse: dict[str, ServiceError] = field(default_factory=dict)
    stall: set[str] = field(default_factory=set)
    crash_at: str | None = None
    crash_after_work: bool = False
    calls: list[str] = field(default_factory=list)

    async def call(self, rpc: Rpc[Any, Any], request: Any, timeout: float | None = None) -> Any:
        subject = rpc.subject
        self.calls.append(subject)
        if subject in self.refuse:
            raise self.refuse[subject]
        if self.crash_at == subject and not self.crash_after_work:
            raise Crash(subject)
        reply = self._work(request)
        if self.crash_at == subject:
            raise Crash(subject)
        if subject in self.stall:
            await asyncio.sleep(timeout or 0)
            raise ServiceUnavailable("service_timeout", "The service did not answer in time.")
        return reply

    def _work(self, request: Message) -> Message:
        trace = request.caused()
        match request:
            case cal.GetFreeBusy():
                busy = self.busy if request.live else []
                return cal.FreeBusy(**trace, busy=busy, sources=[], unknown=[])
            case bill.ReserveBookingQuota():
                self.reserved.add(request.booking_id)
                return bill.QuotaReserved(
                    **trace, booking_id=request.booking_id, used=1, limit=None
                )
            case bill.CommitBookingQuota():
                self.reserved.discard(request.booking_id)
                self.committed.add(request.booking_id)
                return bill.QuotaSettled(**trace, booking_id=request.booking_id, state="committed")
            case bill.ReleaseBookingQuota():
                self.reserved.discard(request.booking_id)
                return bill.QuotaSettled(**trace, booking_id=request.booking_id, state="released")
            case cal.WriteBookingEvent():
                self.events.add(request.booking_id)
                return cal.BookingEventWritten(
                    **trace,
                    booking_id=request.booking_id,
                    provider=cal.Provider.CALDAV,
                    calendar_id="cal_1",
                    uid=request.booking_id,
                )
            case cal.DeleteBookingEvent():
                deleted = request.booking_id in self.events
                self.events.discard(request.booking_id)
                return cal.BookingEventDeleted(
                    **trace, booking_id=request.booking_id, deleted=deleted
                )
        raise AssertionError(f"no such participant call: {request!r}")

    def heal(self) -> None:
        self.refuse.clear()
        self.stall.clear()
        self.crash_at = None


WRITE = cal.WRITE_BOOKING_EVENT.subject
DELETE = cal.DELETE_BOOKING_EVENT.subject
FREE_BUSY = cal.GET_FREE_BUSY.subject
RESERVE = bill.RESERVE_BOOKING_QUOTA.subject
COMMIT = bill.COMMIT_BOOKING_QUOTA.subject
RELEASE = bill.RELEASE_BOOKING_QUOTA.subject
DOWN = ServiceUnavailable("service_unavailable", "The service is not running.")


@dataclass
class Saga:
    deps: BookingDeps
    participants: Participants
    db: Database
    made: int = 0

    def request(self, **changes: Any) -> msg.CreateBooking:
        self.made += 1
        start = START + timedelta(hours=self.made)
        values: dict[str, Any] = {
            "tenant_id": None,
            "booking_id": f"bk_{self.made:020d}",
            "slug": SLUG,
            "start": start,
            "end": start + timedelta(minutes=30),
            "title": "Intro call",
            "attendee_email": "guest@example.com",
            "request_hash": f"hash-{self.made}",
        }
        values.update(changes)
        return msg.CreateBooking(**values)

    async def row(self, booking_id: str) -> Booking:
        async with UnitOfWork(self.db) as uow:
            row = await bookings.load(uow, booking_id)
        assert row is not None
        return row

    async def announced(self, booking_id: str) -> list[str]:
        """The booking events in the outbox for this booking, oldest first."""
        async with UnitOfWork(self.db) as uow:
            rows = await uow.execute(sa.select(outbox.c.subject, outbox.c.payload))
            found = []
            for subject, payload in rows:
                event = msg.BookingEvent.model_validate_json(payload)
                if event.booking.booking_id == booking_id:
                    found.append(subject.rsplit(".", 1)[-1])
            return found

    async def recover(self) -> int:
        await asyncio.sleep(0.01)  # the rows' updated_at is in the past
        return await recover(self.deps, timedelta(0))


START = (datetime.now(UTC) + timedelta(days=3)).replace(hour=8, minute=0, second=0, microsecond=0)


@pytest.fixture
async def saga(service_database: Callable[[str], str]) -> AsyncIterator[Saga]:
    db = Database(service_database("booking"), pool_size=2)
    participants = Participants()
    deps = BookingDeps(
        uow=lambda: UnitOfWork(db),
        rpc=participants,
        hold=timedelta(seconds=60),
        pending_expiry=timedelta(hours=48),
        participant_timeout=TIMEOUT,
        read=lambda: UnitOfWork(db, read_only=True),
    )
    await _owner(db, confirm=False)
    try:
        yield Saga(deps, participants, db)
    finally:
        await db.dispose()


async def _owner(db: Database, *, confirm: bool) -> None:
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
        booking_rules=ident.BookingRules(confirm_before_booking=confirm, min_notice_hours=0),
        updated_at=datetime.now(UTC),
        version=2 if confirm else 1,
    )
    async with UnitOfWork(db) as uow:
        await projection.project_settings(uow, settings)
        await uow.commit()


async def refused(saga: Saga, cmd: msg.CreateBooking, code: str) -> ServiceError:
    with pytest.raises(ServiceError) as failure:
        await booking_requests.create_booking(cmd, saga.deps)
    assert failure.value.code == code, failure.value.reply
    return failure.value


async def assert_failed(saga: Saga, booking_id: str) -> Booking:
    """Undone: failed, nothing held anywhere, announced requested then failed."""
    row = await saga.row(booking_id)
    assert (row.status, row.saga_step) == ("failed", Step.COMPENSATED.value)
    assert (row.quota_reserved, row.event_written, row.hold_expires_at) == (False, False, None)
    assert booking_id not in saga.participants.events
    assert booking_id not in saga.participants.reserved | saga.participants.committed
    assert await saga.announced(booking_id) == ["booking_requested", "booking_failed"]
    return row


async def assert_confirmed(saga: Saga, booking_id: str) -> None:
    row = await saga.row(booking_id)
    assert (row.status, row.saga_step) == ("confirmed", Step.DONE.value)
    assert row.calendar_event == {"provider": "caldav", "calendar_id": "cal_1", "uid": booking_id}
    assert booking_id in saga.participants.events & saga.participants.committed
    assert booking_id not in saga.participants.reserved
    assert await saga.announced(booking_id) == ["booking_requested", "booking_confirmed"]


# --- the happy paths ----------------------------------------------------------------------


async def test_a_booking_is_held_prepared_written_and_confirmed(saga: Saga) -> None:
    cmd = saga.request()
    reply = await booking_requests.create_booking(cmd, saga.deps)
    assert reply.booking.status is msg.BookingStatus.CONFIRMED
    await assert_confirmed(saga, cmd.booking_id)
    assert saga.participants.calls == [FREE_BUSY, FREE_BUSY, RESERVE, WRITE, COMMIT]
    # the same request again (no Idempotency-Key) is answered with the booking it made
    cmd_again = cmd.model_copy(update={"booking_id": "bk_99999999999999999999"})
    assert (await booking_requests.create_booking(cmd_again, saga.deps)).booking.booking_id == (
        cmd.booking_id
    )


async def test_a_pending_booking_waits_for_the_owner_and_is_confirmed(saga: Saga) -> None:
    await _owner(saga.db, confirm=True)
    cmd = saga.request()
    reply = await booking_requests.create_booking(cmd, saga.deps)
    assert reply.booking.status is msg.BookingStatus.PENDING
    assert cmd.booking_id in saga.participants.reserved
    assert cmd.booking_id not in saga.participants.events
    change = msg.ChangeBooking(tenant_id=TENANT, booking_id=cmd.booking_id)
    confirmed = await lifecycle.confirm_booking(change, saga.deps)
    assert confirmed.booking.status is msg.BookingStatus.CONFIRMED
    assert await saga.announced(cmd.booking_id) == [
        "booking_requested",
        "booking_pending",
        "booking_confirmed",
    ]


# --- each forward step failing ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "error", "code"),
    [
        (FREE_BUSY, DOWN, "calendar_unavailable"),  # the first (synced) read: nothing held
        (RESERVE, ServiceError(ErrorKind.PAYMENT_REQUIRED, "quota_exceeded", "Used up."), None),
        (RESERVE, DOWN, "billing_unavailable"),
        (WRITE, ServiceError(ErrorKind.UPSTREAM, "provider_error", "Refused."), None),
        (WRITE, DOWN, "calendar_write_failed"),
    ],
)
async def test_a_failing_step_is_undone_and_refused(
    saga: Saga, subject: str, error: ServiceError, code: str | None
) -> None:
    saga.participants.refuse[subject] = error
    cmd = saga.request()
    expected = code or ("quota_exceeded" if subject == RESERVE else "calendar_write_failed")
    await refused(saga, cmd, expected)
    if subject == FREE_BUSY:  # refused before the hold: no booking at all
        async with UnitOfWork(saga.db) as uow:
            assert await bookings.load(uow, cmd.booking_id) is None
        return
    await assert_failed(saga, cmd.booking_id)
    # the participants were asked to undo what they may have done
    assert RELEASE in saga.participants.calls
    assert (DELETE in saga.participants.calls) is (subject == WRITE)


async def test_a_slot_the_live_check_finds_busy_is_undone_and_refused(saga: Saga) -> None:
    cmd = saga.request()
    saga.participants.busy = [cal.BusyInterval(start=cmd.start, end=cmd.end)]
    error = await refused(saga, cmd, "slot_unavailable")
    assert error.reply.details["next_slots"]  # the next free slots of its length
    await assert_failed(saga, cmd.booking_id)
    assert RESERVE not in saga.participants.calls


async def test_a_live_check_that_cannot_be_made_is_undone(saga: Saga) -> None:
    cmd = saga.request()
    calls = 0

    async def second_read_down(
        rpc: Rpc[Any, Any], request: Any, timeout: float | None = None
    ) -> Any:
        nonlocal calls
        if rpc.subject == FREE_BUSY and request.live:
            calls += 1
            raise DOWN
        return await Participants.call(saga.participants, rpc, request, timeout)

    saga.participants.call = second_read_down  # type: ignore[method-assign]
    await refused(saga, cmd, "calendar_unavailable")
    assert calls == 1
    await assert_failed(saga, cmd.booking_id)


async def test_a_commit_that_fails_past_the_pivot_is_finished_by_recovery(saga: Saga) -> None:
    saga.participants.refuse[COMMIT] = DOWN
    cmd = saga.request()
    reply = await booking_requests.create_booking(cmd, saga.deps)
    # the booking is made; the answer says it is not confirmed yet (the gateway: 202)
    assert reply.booking.status is msg.BookingStatus.HELD
    assert (await saga.row(cmd.booking_id)).saga_step == Step.COMMITTING.value
    saga.participants.heal()
    assert await saga.recover() == 1
    await assert_confirmed(saga, cmd.booking_id)


# --- a participant timing out -------------------------------------------------------------


@pytest.mark.parametrize("subject", [RESERVE, WRITE])
async def test_a_participant_that_answers_too_late_is_undone(saga: Saga, subject: str) -> None:
    """It did the work but answered after the saga stopped waiting: the saga undoes it."""
    saga.participants.stall.add(subject)
    cmd = saga.request()
    began = asyncio.get_running_loop().time()
    await refused(
        saga, cmd, "billing_unavailable" if subject == RESERVE else "calendar_write_failed"
    )
    assert asyncio.get_running_loop().time() - began >= TIMEOUT
    await assert_failed(saga, cmd.booking_id)


async def test_an_owners_confirm_that_times_out_stays_pending(saga: Saga) -> None:
    await _owner(saga.db, confirm=True)
    cmd = saga.request()
    await booking_requests.create_booking(cmd, saga.deps)
    saga.participants.stall.add(WRITE)
    change = msg.ChangeBooking(tenant_id=TENANT, booking_id=cmd.booking_id)
    with pytest.raises(ServiceError) as failure:
        await lifecycle.confirm_booking(change, saga.deps)
    assert failure.value.code == "calendar_unavailable"
    row = await saga.row(cmd.booking_id)
    assert (row.status, row.saga_step, row.event_written) == (
        "pending",
        Step.AWAITING_OWNER.value,
        True,  # the write may have happened: deleted by its UID if the booking ends
    )
    # the owner declines: the event that was written after all is deleted, quota released
    saga.participants.heal()
    await lifecycle.decline_booking(change, saga.deps)
    row = await saga.row(cmd.booking_id)
    assert (row.status, row.saga_step) == ("declined", Step.COMPENSATED.value)
    assert cmd.booking_id not in saga.participants.events | saga.participants.reserved


# --- each compensation failing ---------------------------------------------------------------


@pytest.mark.parametrize("compensation", [DELETE, RELEASE])
async def test_a_compensation_that_fails_is_finished_by_recovery(
    saga: Saga, compensation: str
) -> None:
    saga.participants.refuse[WRITE] = DOWN
    saga.participants.refuse[compensation] = DOWN
    cmd = saga.request()
    # the caller hears why the booking failed, not that the clean-up is pending
    await refused(saga, cmd, "calendar_write_failed")
    row = await saga.row(cmd.booking_id)
    assert (row.status, row.saga_step) == ("held", Step.COMPENSATING.value)
    assert await saga.recover() == 1  # still down: the row stays for the next sweep
    assert (await saga.row(cmd.booking_id)).saga_step == Step.COMPENSATING.value
    saga.participants.heal()
    assert await saga.recover() == 1
    await assert_failed(saga, cmd.booking_id)
    assert await saga.recover() == 0


async def test_a_cancellation_whose_releases_fail_is_released_by_recovery(saga: Saga) -> None:
    cmd = saga.request()
    await booking_requests.create_booking(cmd, saga.deps)
    saga.participants.refuse[DELETE] = DOWN
    change = msg.ChangeBooking(tenant_id=TENANT, booking_id=cmd.booking_id, reason="Ill")
    reply = await lifecycle.cancel_booking(change, saga.deps)
    # the answer is the ended booking: the slot is free already
    assert (reply.booking.status, reply.booking.reason) == (msg.BookingStatus.CANCELLED, "Ill")
    row = await saga.row(cmd.booking_id)
    assert (row.saga_step, row.event_written, row.quota_reserved) == (
        Step.ENDING.value,
        True,
        True,
    )
    saga.participants.heal()
    assert await saga.recover() == 1
    row = await saga.row(cmd.booking_id)
    assert (row.status, row.saga_step) == ("cancelled", Step.COMPENSATED.value)
    assert cmd.booking_id not in saga.participants.events
    assert await saga.announced(cmd.booking_id) == [
        "booking_requested",
        "booking_confirmed",
        "booking_cancelled",
    ]


# --- a crash at each step, then recovery ------------------------------------------------------


@pytest.mark.parametrize(
    ("crash_at", "after_work", "step", "outcome"),
    [
        # the live check: nothing held but the hold
        (FREE_BUSY, False, Step.PREPARING, "failed"),
        # billing reserved, the answer never arrived: recovery releases it all the same
        (RESERVE, True, Step.PREPARING, "failed"),
        # the event was written, its answer lost: writing is undone, the event deleted by UID
        (WRITE, True, Step.WRITING, "failed"),
        (WRITE, False, Step.WRITING, "failed"),
        # past the pivot: recovery finishes it
        (COMMIT, False, Step.COMMITTING, "confirmed"),
        (COMMIT, True, Step.COMMITTING, "confirmed"),
    ],
)
async def test_a_crash_at_each_step_is_recovered(
    saga: Saga, crash_at: str, after_work: bool, step: Step, outcome: str
) -> None:
    cmd = saga.request()
    if crash_at == FREE_BUSY:  # the live read, the second one
        original = saga.participants.call

        async def crash_on_live(
            rpc: Rpc[Any, Any], request: Any, timeout: float | None = None
        ) -> Any:
            if rpc.subject == FREE_BUSY and request.live:
                raise Crash(FREE_BUSY)
            return await original(rpc, request, timeout)

        saga.participants.call = crash_on_live  # type: ignore[method-assign]
    else:
        saga.participants.crash_at = crash_at
        saga.participants.crash_after_work = after_work
    with pytest.raises(Crash):
        await booking_requests.create_booking(cmd, saga.deps)
    assert (await saga.row(cmd.booking_id)).saga_step == step.value
    saga.participants.__dict__.pop("call", None)
    saga.participants.heal()
    assert await saga.recover() == 1
    if outcome == "failed":
        await assert_failed(saga, cmd.booking_id)
        assert {DELETE, RELEASE} <= set(saga.participants.calls)  # thorough: both undone
    else:
        await assert_confirmed(saga, cmd.booking_id)
    assert await saga.recover() == 0


async def test_a_crash_right_after_the_hold_is_undone_by_recovery(
    saga: Saga, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_move = booking_saga.move

    async def crash_before_preparing(*args: Any, **kwargs: Any) -> Booking | None:
        if args[2:4] == (Step.HOLDING, Step.PREPARING):
            raise Crash("after the hold")
        return await real_move(*args, **kwargs)

    monkeypatch.setattr(booking_saga, "move", crash_before_preparing)
    cmd = saga.request()
    with pytest.raises(Crash):
        await booking_requests.create_booking(cmd, saga.deps)
    monkeypatch.undo()
    assert (await saga.row(cmd.booking_id)).saga_step == Step.HOLDING.value
    assert await saga.recover() == 1
    await assert_failed(saga, cmd.booking_id)


async def test_an_owners_confirm_that_crashed_while_writing_is_pending_again(saga: Saga) -> None:
    await _owner(saga.db, confirm=True)
    cmd = saga.request()
    await booking_requests.create_booking(cmd, saga.deps)
    saga.participants.crash_at = WRITE
    change = msg.ChangeBooking(tenant_id=TENANT, booking_id=cmd.booking_id)
    with pytest.raises(Crash):
        await lifecycle.confirm_booking(change, saga.deps)
    saga.participants.heal()
    assert await saga.recover() == 1
    row = await saga.row(cmd.booking_id)
    assert (row.status, row.saga_step) == ("pending", Step.AWAITING_OWNER.value)
    assert cmd.booking_id in saga.participants.reserved  # it still holds its quota
    confirmed = await lifecycle.confirm_booking(change, saga.deps)
    assert confirmed.booking.status is msg.BookingStatus.CONFIRMED


async def test_a_pending_booking_nobody_confirms_expires(saga: Saga) -> None:
    await _owner(saga.db, confirm=True)
    cmd = saga.request()
    await booking_requests.create_booking(cmd, saga.deps)
    async with UnitOfWork(saga.db) as uow:
        await uow.execute(
            sa.text("UPDATE bookings SET hold_expires_at = now() - interval '1 s' WHERE id = :id"),
            {"id": cmd.booking_id},
        )
        await uow.commit()
    assert await saga.recover() == 1
    row = await saga.row(cmd.booking_id)
    assert (row.status, row.saga_step, row.reason) == (
        "expired",
        Step.COMPENSATED.value,
        "Nobody confirmed it in time.",
    )
    assert cmd.booking_id not in saga.participants.reserved
    assert await saga.announced(cmd.booking_id) == [
        "booking_requested",
        "booking_pending",
        "booking_expired",
    ]


# --- the owner's list ---------------------------------------------------------------------


async def test_the_owners_list_pages_latest_first(saga: Saga) -> None:
    made = [saga.request() for _ in range(3)]
    for cmd in made:
        await booking_requests.create_booking(cmd, saga.deps)
    first = await lifecycle.list_bookings(msg.ListBookings(tenant_id=TENANT, limit=2), saga.deps)
    assert [b.booking_id for b in first.bookings] == [made[2].booking_id, made[1].booking_id]
    assert first.next_cursor is not None
    rest = await lifecycle.list_bookings(
        msg.ListBookings(tenant_id=TENANT, limit=2, cursor=first.next_cursor), saga.deps
    )
    assert [b.booking_id for b in rest.bookings] == [made[0].booking_id]
    assert rest.next_cursor is None
    another_lists = encode_cursor("a", START, 7)  # identity's activity feed's kind
    for wrong in ("nonsense", "bk_not_base64!", another_lists, first.next_cursor + "x"):
        with pytest.raises(ServiceError) as failure:
            await lifecycle.list_bookings(
                msg.ListBookings(tenant_id=TENANT, cursor=wrong), saga.deps
            )
        assert failure.value.code == "invalid_cursor"
    with pytest.raises(ServiceError) as failure:
        await lifecycle.list_bookings(msg.ListBookings(), saga.deps)
    assert (failure.value.kind, failure.value.code) == (ErrorKind.UNAUTHORIZED, "tenant_required")
