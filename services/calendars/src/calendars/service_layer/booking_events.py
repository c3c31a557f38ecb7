"""The saga's event writes: the booking's event written to, moved on, and deleted from, the
owner's receiving calendar, once each, with late writes refused."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from calendars.adapters import booking_event_repo, calendar_repo, event_repo, owner_repo
from calendars.adapters.connection_repo import Connection
from calendars.adapters.providers import CredentialsRejected, ProviderError
from calendars.adapters.ssrf import UrlRefused
from calendars.domain.remote import RemoteEvent
from calendars.service_layer.deps import CalendarsDeps
from calendars.service_layer.sync import lock_calendar_for_write, mark, sync_lock
from contracts import calendars as msg
from contracts.rpc import ErrorKind
from cortex_runtime.database import UnitOfWork
from cortex_runtime.deadlines import refuse_if_past
from cortex_runtime.errors import ServiceError, require_tenant


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _event_deleted(action: str = "written") -> ServiceError:
    return ServiceError(
        ErrorKind.CONFLICT,
        "booking_event_deleted",
        "The booking's event was deleted after this write was sent (the booking was undone "
        f"or ended): it is not {action}.",
    )


async def _refuse_if_deleted_since(
    uow: UnitOfWork, cmd: msg.WriteBookingEvent | msg.MoveBookingEvent
) -> None:
    """A delete of the booking's event refuses every write sent before it (a late write,
    still queued when the saga gave up and compensated); a write sent after a delete is a
    new decision of the saga's and goes ahead. Under the booking's lock."""
    deleted_at = await booking_event_repo.deleted_issued_at(uow, cmd.booking_id)
    if deleted_at is not None and _aware(cmd.occurred_at) <= deleted_at:
        raise _event_deleted("moved" if isinstance(cmd, msg.MoveBookingEvent) else "written")


TOMBSTONE_KEEP = timedelta(days=7)


async def purge_tombstones(deps: CalendarsDeps) -> int:
    """Forget tombstones long past any write they could refuse (every write carries a
    deadline of seconds; a week covers writes from before deadlines existed)."""
    async with deps.uow() as uow:
        purged = await booking_event_repo.purge_tombstones(uow, datetime.now(UTC) - TOMBSTONE_KEEP)
        await uow.commit()
    return purged


async def purge_tombstones_hourly(deps: CalendarsDeps) -> None:
    """The background loop of :func:`purge_tombstones`."""
    while True:
        await purge_tombstones(deps)
        await asyncio.sleep(3600)


async def write_booking_event(
    cmd: msg.WriteBookingEvent, deps: CalendarsDeps
) -> msg.BookingEventWritten:
    """Write the booking's event (UID = booking id) to the receiving calendar, once.

    The provider call runs inside the transaction that records it, under the booking's
    lock: if the record cannot be committed after the provider wrote, the delete below still
    finds the event by its UID. A write arriving after its deadline (the saga stopped
    waiting for it), or sent before a delete of the booking's event, is refused: it would
    create an event for a booking that failed."""
    tenant = require_tenant(cmd)
    refuse_if_past(cmd.deadline)
    async with deps.uow() as uow:
        await booking_event_repo.lock(uow, cmd.booking_id)
        refuse_if_past(cmd.deadline)  # waiting for the lock may have used it up
        await _refuse_if_deleted_since(uow, cmd)
        done = await booking_event_repo.written(uow, cmd.booking_id, tenant)
        if done is not None and done.deleted_at is None:
            return msg.BookingEventWritten(
                booking_id=cmd.booking_id,
                provider=msg.Provider(done.provider),
                calendar_id=done.remote_calendar_id,
                uid=done.uid,
            )
        target = await calendar_repo.receiving(uow, tenant)
        if target is None:
            return msg.BookingEventWritten(
                booking_id=cmd.booking_id, provider=None, calendar_id=None, uid=None
            )
        uid = cmd.booking_id
        connection = target.connection
        provider = await deps.providers.open_connection(
            connection, await owner_repo.zone(uow, tenant)
        )
        try:
            synced_uid = await provider.create_event(
                target.remote_id,
                uid,
                cmd.start,
                cmd.end,
                cmd.summary,
                cmd.description,
                cmd.attendee_email,
            )
        except CredentialsRejected as exc:
            await mark(deps, connection, msg.ConnectionStatus.EXPIRED, str(exc))
            raise ServiceError(ErrorKind.UPSTREAM, "calendar_expired", str(exc)) from exc
        except (ProviderError, UrlRefused) as exc:
            raise ServiceError(ErrorKind.UPSTREAM, "calendar_unavailable", str(exc)) from exc
        finally:
            await provider.aclose()
        await booking_event_repo.record(
            uow,
            booking_id=cmd.booking_id,
            tenant_id=tenant,
            connection_id=connection.id,
            remote_calendar_id=target.remote_id,
            uid=uid,
            synced_uid=synced_uid,
        )
        await uow.commit()
    return msg.BookingEventWritten(
        booking_id=cmd.booking_id,
        provider=msg.Provider(connection.provider),
        calendar_id=target.remote_id,
        uid=uid,
    )


def _no_event(booking_id: str) -> msg.BookingEventWritten:
    """The answer for a booking without an event (no calendar receives bookings)."""
    return msg.BookingEventWritten(booking_id=booking_id, provider=None, calendar_id=None, uid=None)


async def move_booking_event(
    cmd: msg.MoveBookingEvent, deps: CalendarsDeps
) -> msg.BookingEventWritten:
    """Move the booking's event (UID = booking id) to ``[start, end)`` in place: the same
    UID and provider event, no second one; moving it where it is already is a success.

    The rules of the write: under the booking's lock, refused past its deadline or when sent
    before a delete of the booking's event (and after a delete: there is nothing to move).
    Without a record of the write, the event is looked for by its UID on the receiving
    calendar, and recorded when found. A booking without an event (no calendar receives
    bookings, or its event is gone from the calendar) is answered as the write answers it.
    The synced copy of the event is replaced in the same transaction, so free/busy shows
    the new times, not the old, once this answers. Undoing a move is moving it back."""
    tenant = require_tenant(cmd)
    if cmd.end <= cmd.start:
        raise ServiceError(
            ErrorKind.INVALID, "invalid_range", "The event must end after it starts."
        )
    refuse_if_past(cmd.deadline)
    async with deps.uow() as uow:
        await booking_event_repo.lock(uow, cmd.booking_id)
        refuse_if_past(cmd.deadline)  # waiting for the lock may have used it up
        await _refuse_if_deleted_since(uow, cmd)
        written = await booking_event_repo.written_to(uow, cmd.booking_id, tenant)
        if written is not None and written.deleted_at is not None:
            raise ServiceError(
                ErrorKind.CONFLICT,
                "booking_event_deleted",
                "The booking's event was deleted (the booking was undone or ended): there is "
                "nothing to move.",
            )
        connection: Connection
        if written is not None:
            connection = written.connection
            calendar_id, uid = written.remote_calendar_id, written.uid
        else:
            target = await calendar_repo.receiving(uow, tenant)
            if target is None:
                return _no_event(cmd.booking_id)
            connection = target.connection
            calendar_id, uid = target.remote_id, cmd.booking_id
        moved = await _move(
            deps, connection, await owner_repo.zone(uow, tenant), calendar_id, uid, cmd
        )
        if moved is None:
            return _no_event(cmd.booking_id)
        if written is None or moved:
            await booking_event_repo.record(
                uow,
                booking_id=cmd.booking_id,
                tenant_id=tenant,
                connection_id=connection.id,
                remote_calendar_id=calendar_id,
                uid=uid,
                synced_uid=moved[0].uid if moved else None,
            )
        # stored under the connection's sync lock: a sync that read the provider before
        # the move cannot store the old times over it
        async with sync_lock(connection.id):
            await _store_copy(uow, cmd, connection, calendar_id, uid, moved)
            await uow.commit()
    return msg.BookingEventWritten(
        booking_id=cmd.booking_id,
        provider=msg.Provider(connection.provider),
        calendar_id=calendar_id,
        uid=uid,
    )


async def _move(
    deps: CalendarsDeps,
    connection: Connection,
    zone: str,
    calendar_id: str,
    uid: str,
    cmd: msg.MoveBookingEvent,
) -> list[RemoteEvent] | None:
    """The provider's move of the event; None when it has no event with the UID."""
    provider = await deps.providers.open_connection(connection, zone)
    try:
        return await provider.move_event(
            calendar_id, uid, cmd.start, cmd.end, cmd.summary, cmd.description
        )
    except CredentialsRejected as exc:
        await mark(deps, connection, msg.ConnectionStatus.EXPIRED, str(exc))
        raise ServiceError(ErrorKind.UPSTREAM, "calendar_expired", str(exc)) from exc
    except (ProviderError, UrlRefused) as exc:
        raise ServiceError(ErrorKind.UPSTREAM, "calendar_unavailable", str(exc)) from exc
    finally:
        await provider.aclose()


async def _store_copy(
    uow: UnitOfWork,
    cmd: msg.MoveBookingEvent,
    connection: Connection,
    calendar_id: str,
    uid: str,
    moved: list[RemoteEvent],
) -> None:
    """Replace the stored copy of the moved event (when its calendar is still there) and
    announce that the tenant's synced events changed."""
    calendar = await calendar_repo.by_remote_id(uow, connection.id, calendar_id)
    if calendar is None:
        return
    zone = await lock_calendar_for_write(uow, calendar)
    if zone is None:
        return
    await event_repo.replace_copy(uow, calendar, {uid}, moved, zone)
    await uow.add_event(
        msg.CALENDAR_SYNCED.subject,
        msg.CalendarSynced(
            **cmd.caused(),
            connection_id=connection.id,
            provider=msg.Provider(connection.provider),
        ),
    )


async def delete_booking_event(
    cmd: msg.DeleteBookingEvent, deps: CalendarsDeps
) -> msg.BookingEventDeleted:
    """Delete the booking's event; idempotent.

    Without a record of the write (the write's record was lost, e.g. the database went away
    right after the provider wrote), the event is looked for by its UID on the receiving
    calendar: nothing Cortex wrote may outlive its booking. Every delete leaves a tombstone
    (kept even when the provider cannot be reached, for the retry) that refuses any write
    of the booking's event sent before it."""
    tenant = require_tenant(cmd)
    async with deps.uow() as uow:
        await booking_event_repo.lock(uow, cmd.booking_id)
        await booking_event_repo.leave_tombstone(
            uow, cmd.booking_id, tenant, _aware(cmd.occurred_at)
        )
        written = await booking_event_repo.written_to(uow, cmd.booking_id, tenant)
        if written is not None and written.deleted_at is not None:
            await uow.commit()
            return msg.BookingEventDeleted(booking_id=cmd.booking_id, deleted=False)
        connection: Connection
        if written is not None:
            connection = written.connection
            calendar_id, uid = written.remote_calendar_id, written.uid
        else:
            target = await calendar_repo.receiving(uow, tenant)
            if target is None:
                await uow.commit()
                return msg.BookingEventDeleted(booking_id=cmd.booking_id, deleted=False)
            connection = target.connection
            calendar_id, uid = target.remote_id, cmd.booking_id
        provider = await deps.providers.open_connection(
            connection, await owner_repo.zone(uow, tenant)
        )
        try:
            await provider.delete_event(calendar_id, uid)
        except (ProviderError, UrlRefused) as exc:
            await uow.commit()  # the tombstone stays; the record waits for the retry
            raise ServiceError(ErrorKind.UPSTREAM, "calendar_unavailable", str(exc)) from exc
        finally:
            await provider.aclose()
        if written is not None:
            await booking_event_repo.mark_deleted(uow, cmd.booking_id)
        await uow.commit()
    return msg.BookingEventDeleted(booking_id=cmd.booking_id, deleted=written is not None)
